//! Tenants end to end, on both stores (API.md "Tenants: apps, merchants and their keys (v1.1)"):
//! the registry changed while the bridge runs (admin API), merchant keys that reach only their
//! merchant's apps, pairwise person ids and login answers that show a tenant only its own apps,
//! and the session_key sealed in the bearer token instead of a stash item.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};
use shared::ids::{MerchantId, PersonId};
use shared::model::Owner;
use shared::store::{Attr, Item};
use wxbridge_e2e::*;

// ---- helpers -------------------------------------------------------------------------------

/// A merchant onboarded while the bridge runs: a mini program and an official account.
const M3_MP: &str = "wx4d5e6f7a8b90c301";
const M3_OA: &str = "wx4d5e6f7a8b90c302";

fn m3_mp() -> Value {
    json!({"name": "Merchant 3 mini program", "kind": "mini_program", "role": "merchant_mp", "owner": "m3",
        "open_platform": "op_m3", "secret": "3c0ffee3c0ffee3c0ffee3c0ffee3c0f"})
}

/// The OA as the merchant creates it in WeChat (the simulator reads `web_auth_domains`, the
/// bridge ignores it).
fn m3_oa() -> Value {
    json!({"name": "Merchant 3 official account", "kind": "official_account", "role": "merchant_oa", "owner": "m3",
        "open_platform": "op_m3", "secret": "3beef3beef3beef3beef3beef3beef3b",
        "token": "m3Token0a1b2c3d4e5f", "encoding_aes_key": "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM",
        "safe_mode": false, "web_auth_domains": ["127.0.0.1", "localhost"]})
}

/// An app of the test registry, as its document.
fn registered(e: &Env, appid: &str) -> Value {
    e.registry()["apps"].as_array().unwrap().iter().find(|a| a["appid"] == appid).unwrap().clone()
}

fn merchant_key(e: &Env, m: &str) -> String {
    e.registry()["merchant_keys"][m].as_str().unwrap().to_owned()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

async fn ok(e: &Env, user: &str, app: &str) -> Value {
    e.login(user, app).await.expect_ok().clone()
}

/// A pass from the user's mini program (targets before the pivot), confirmed: its answer.
async fn link(e: &Env, user: &str, token: &Value, targets: &[&str]) -> Value {
    let walk = e.link_via_webview(user, token.as_str().unwrap(), json!({"targets": targets})).await;
    let c = walk.confirmed.unwrap_or_else(|| panic!("no confirm code: {:?} {}", walk.hops, walk.last.text));
    let v = c.expect_ok().clone();
    assert_eq!(v["pivot_linked"], true, "{v}");
    v
}

fn linked_apps(v: &Value) -> Vec<String> {
    let mut a: Vec<String> = v["linked"].as_array().unwrap().iter().map(|l| s(&l["appid"])).collect();
    a.sort();
    a
}

fn sorted(apps: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = apps.iter().map(|a| a.to_string()).collect();
    v.sort();
    v
}

/// Every `owner` named in an answer's `linked`.
fn linked_owners(v: &Value) -> Vec<String> {
    let mut o: Vec<String> = v["linked"].as_array().unwrap().iter().map(|l| s(&l["owner"])).collect();
    o.dedup();
    o
}

/// The bridge token's claims (no verification: what any holder of the token can read).
fn claims(token: &Value) -> Value {
    let payload = token.as_str().unwrap().split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The id merchant `m` is shown for the platform-wide person `platform_id`.
fn pairwise(e: &Env, platform_id: &str, m: &str) -> String {
    e.stack
        .bridge
        .pairwise()
        .id(&PersonId::parse(platform_id).unwrap(), &Owner::Merchant(MerchantId::parse(m).unwrap()))
        .unwrap()
}

/// The platform-wide person behind an identity (operators' look-up).
async fn platform_id_of(e: &Env, appid: &str, openid: &str) -> String {
    s(&e.get(&format!("/v1/identities/{appid}/{openid}"), Some(&e.admin_key())).await.expect_ok()["person_id"])
}

async fn translate(e: &Env, key: &str, from: &str, openid: &str, to: &str) -> Answer {
    e.get(&format!("/v1/translate?from_appid={from}&openid={openid}&to_appid={to}"), Some(key)).await
}

/// Every item of the store, by (PK, SK).
async fn items(e: &Env) -> BTreeMap<(String, String), Item> {
    let key = |it: &Item, k: &str| match it.get(k) {
        Some(Attr::S(v)) => v.clone(),
        other => format!("{other:?}"),
    };
    e.store().scan_all().await.unwrap().into_iter().map(|it| ((key(&it, "PK"), key(&it, "SK")), it)).collect()
}

/// A merchant creates the app in WeChat's console (the simulator), then an operator registers
/// it with the bridge: the created app's info.
async fn onboard(e: &Env, appid: &str, doc: &Value) -> Value {
    let sim = e.put(&format!("/sim/apps/{appid}"), doc, None).await;
    assert!(sim.status == 201 || sim.status == 200, "{}", sim.text);
    let a = e.put(&format!("/v1/admin/apps/{appid}"), doc, Some(&e.admin_key())).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body
}

// ---- tests ---------------------------------------------------------------------------------

both_stores!(a_merchant_onboarded_while_running_logs_in_and_links_at_once, |kind| async move {
    let e = env(kind).await;
    let admin = e.admin_key();

    // WeChat knows m3's apps before the bridge does: a login is refused until it is registered.
    let sim = e.put(&format!("/sim/apps/{M3_MP}"), &m3_mp(), None).await;
    assert_eq!(sim.status, 201, "{}", sim.text);
    e.login("tess", M3_MP).await.expect_problem(404, "unknown_app");
    e.post("/v1/admin/merchants/m3/keys", &json!({}), Some(&admin)).await.expect_problem(404, "not_found");

    // Registered: the answer is the app without its secrets.
    let mp = onboard(&e, M3_MP, &m3_mp()).await;
    assert_eq!((s(&mp["appid"]), s(&mp["owner"]), s(&mp["kind"])), (M3_MP.into(), "m3".into(), "mini_program".into()));
    assert_eq!(mp["role"], "merchant_mp");
    let oa = onboard(&e, M3_OA, &m3_oa()).await;
    assert_eq!(oa["role"], "merchant_oa");
    // (`has_token` / `has_encoding_aes_key`: see the test at the end.)
    for a in [&mp, &oa] {
        assert!(a.get("secret").is_none() && a.get("token").is_none() && a.get("encoding_aes_key").is_none(), "{a}");
    }
    let text = e.get(&format!("/v1/admin/apps/{M3_OA}"), Some(&admin)).await.expect_ok().to_string();
    for secret in ["3beef3beef3beef3beef3beef3beef3b", "m3Token0a1b2c3d4e5f", "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1"] {
        assert!(!text.contains(secret), "{text}");
    }
    // The same document again replaces it.
    assert_eq!(e.put(&format!("/v1/admin/apps/{M3_MP}"), &m3_mp(), Some(&admin)).await.status, 200);
    let listed = e.get("/v1/admin/apps", Some(&admin)).await.expect_ok()["apps"].clone();
    for appid in [M3_MP, M3_OA] {
        let entry =
            listed.as_array().unwrap().iter().find(|a| a["appid"] == appid).unwrap_or_else(|| panic!("{listed}"));
        assert_eq!(entry["owner"], "m3");
    }

    // A key for the new merchant, shown once.
    let issued = e.post("/v1/admin/merchants/m3/keys", &json!({}), Some(&admin)).await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    assert_eq!(issued.body["holder"], "merchant:m3");
    let m3_key = s(&issued.body["key"]);
    let ids = e.get("/v1/admin/merchants/m3/keys", Some(&admin)).await.expect_ok().clone();
    assert_eq!(ids["key_ids"], json!([issued.body["key_id"]]));
    assert!(!ids.to_string().contains(&m3_key), "the key itself is never shown again");

    // A user logs into m3's mini program at once, and links m3's OA and the pivot in one pass.
    let m = ok(&e, "tess", M3_MP).await;
    assert_eq!((&m["new_person"], &m["pivot_linked"]), (&json!(true), &json!(false)));
    assert_eq!(linked_apps(&m), [M3_MP]);
    let walk = e.link_via_webview("tess", m["token"].as_str().unwrap(), json!({"targets": [M3_OA]})).await;
    let authorizes: Vec<&String> = walk.hops.iter().filter(|h| h.contains("/connect/oauth2/authorize")).collect();
    assert_eq!(authorizes.len(), 2, "{:?}", walk.hops);
    assert!(authorizes[0].contains(M3_OA) && authorizes[1].contains(PIVOT_OA), "{authorizes:?}");
    let c = walk.confirmed.expect("a confirm code").expect_ok().clone();
    assert_eq!(c["pivot_linked"], true);
    assert_eq!(linked_apps(&c), sorted(&[M3_MP, M3_OA]), "m3 is shown only its own apps");

    // The platform's mini program meets the same pivot openid: one person.
    let p = ok(&e, "tess", PLATFORM_MP).await;
    link(&e, "tess", &p["token"], &[]).await;
    let platform_id = s(&ok(&e, "tess", PLATFORM_MP).await["person_id"]);
    let again = ok(&e, "tess", M3_MP).await;
    assert_eq!(s(&again["person_id"]), pairwise(&e, &platform_id, "m3"));
    assert_ne!(s(&again["person_id"]), platform_id);

    // Translation with m3's key, from the platform mini program into m3's apps.
    let (p_openid, _) = e.truth("tess", PLATFORM_MP).await;
    let (m_openid, _) = e.truth("tess", M3_MP).await;
    let (oa_openid, _) = e.truth("tess", M3_OA).await;
    let tr = translate(&e, &m3_key, PLATFORM_MP, &p_openid, M3_MP).await;
    assert_eq!(tr.expect_ok()["openid"], m_openid.as_str());
    assert_eq!(tr.body["person_id"], again["person_id"], "m3's key sees the id m3's own login answers");
    let tr = translate(&e, &m3_key, PLATFORM_MP, &p_openid, M3_OA).await;
    assert_eq!(tr.expect_ok()["openid"], oa_openid.as_str());
    translate(&e, &m3_key, PLATFORM_MP, &p_openid, MERCHANT1_MP).await.expect_problem(403, "forbidden");
    // The service key sees the platform-wide id.
    let tr = translate(&e, &e.service_key(), PLATFORM_MP, &p_openid, M3_MP).await;
    assert_eq!(tr.expect_ok()["person_id"], platform_id.as_str());
    // The authorizer in front of m3's routes: m3's openid and m3's id.
    let who = e.get("/merchant-api/m3/whoami", p["token"].as_str()).await;
    assert_eq!(who.expect_ok()["authorizer"]["openid"], m_openid.as_str());
    assert_eq!(who.body["authorizer"]["person_id"], again["person_id"]);

    // The merchant resets the mini program's AppSecret in WeChat: logins fail until the
    // operator puts the new one, then work at once, for the same person.
    let rotated = {
        let mut d = m3_mp();
        d["secret"] = json!("4d00d14d00d14d00d14d00d14d00d14d");
        d
    };
    assert_eq!(e.put(&format!("/sim/apps/{M3_MP}"), &rotated, None).await.status, 200);
    let stale = e.login("tess", M3_MP).await;
    assert!(stale.status >= 400 && stale.body["token"].is_null(), "{}", stale.text);
    assert_eq!(e.put(&format!("/v1/admin/apps/{M3_MP}"), &rotated, Some(&admin)).await.status, 200);
    assert_eq!(ok(&e, "tess", M3_MP).await["person_id"], again["person_id"]);
});

both_stores!(a_site_registered_while_running_binds_only_through_its_accounts, |kind| async move {
    let e = env(kind).await;
    let admin = e.admin_key();
    // m3's official account, in safe mode: pushes are encrypted with its EncodingAESKey.
    let mut oa = m3_oa();
    oa["safe_mode"] = json!(true);
    onboard(&e, M3_OA, &oa).await;
    let site = json!({"login_url": "https://m3.example.com/login", "official_accounts": [M3_OA]});
    let created = e.put("/v1/admin/sites/m3-shop", &site, Some(&admin)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(e.put("/v1/admin/sites/m3-shop", &site, Some(&admin)).await.status, 200);
    let issued = e.post("/v1/admin/sites/m3-shop/keys", &json!({}), Some(&admin)).await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    assert_eq!(issued.body["holder"], "site:m3-shop");
    let key = s(&issued.body["key"]);
    e.post("/v1/admin/sites/nowhere/keys", &json!({}), Some(&admin)).await.expect_problem(404, "not_found");

    // Its key makes scenes on its own account only.
    for other in [PIVOT_OA, MERCHANT1_OA] {
        e.post("/v1/qr/scenes", &json!({"site_user_id": "shopper-1", "appid": other}), Some(&key))
            .await
            .expect_problem(403, "forbidden");
    }
    let sc = e.post("/v1/qr/scenes", &json!({"site_user_id": "shopper-1", "appid": M3_OA}), Some(&key)).await;
    assert_eq!(sc.status, 201, "{}", sc.text);
    let (r, walk) = e.scan_and_confirm("ivy", sc.body["ticket"].as_str().unwrap()).await;
    assert_eq!(r["event"], "subscribe", "{r}");
    assert_eq!(walk.result().as_deref(), Some("bound"), "{}", walk.last.text);
    let st = e.get(&format!("/v1/qr/scenes/{}", s(&sc.body["scene"])), Some(&key)).await.expect_ok().clone();
    let (openid, _) = e.truth("ivy", M3_OA).await;
    assert_eq!((s(&st["status"]), s(&st["openid"])), ("bound".to_owned(), openid.clone()));
    // The site is shown its own pairwise id of the person.
    let platform_id = platform_id_of(&e, M3_OA, &openid).await;
    let site_owner = Owner::Site(shared::ids::SiteId::parse("m3-shop").unwrap());
    let expected = e.stack.bridge.pairwise().id(&PersonId::parse(&platform_id).unwrap(), &site_owner).unwrap();
    assert_eq!(s(&st["person_id"]), expected);
    assert_ne!(s(&st["person_id"]), platform_id);
    // Another site cannot read the scene.
    e.get(&format!("/v1/qr/scenes/{}", s(&sc.body["scene"])), Some(&e.site_key()))
        .await
        .expect_problem(404, "not_found");
});

both_stores!(a_merchant_key_cannot_leave_its_tenant, |kind| async move {
    let e = env(kind).await;
    let admin = e.admin_key();
    // A person every tenant knows: m1's, m2's and the platform's mini programs, linked.
    for app in [MERCHANT1_MP, MERCHANT2_MP, PLATFORM_MP] {
        let t = ok(&e, "kim", app).await;
        link(&e, "kim", &t["token"], &[]).await;
    }
    let (p_openid, _) = e.truth("kim", PLATFORM_MP).await;
    let (m1_openid, _) = e.truth("kim", MERCHANT1_MP).await;
    let m1_key = merchant_key(&e, "m1");
    let m1_id = s(&ok(&e, "kim", MERCHANT1_MP).await["person_id"]);

    // Into its own apps: answered, with m1's id.
    let own = translate(&e, &m1_key, PLATFORM_MP, &p_openid, MERCHANT1_MP).await;
    assert_eq!(own.expect_ok()["openid"], m1_openid.as_str());
    assert_eq!(own.body["person_id"], m1_id.as_str());

    // Anywhere else: forbidden, and the answer names nothing of the person.
    let before = items(&e).await;
    for to in [MERCHANT2_MP, MERCHANT2_OA, PLATFORM_MP, PIVOT_OA] {
        let a = translate(&e, &m1_key, MERCHANT1_MP, &m1_openid, to).await;
        a.expect_problem(403, "forbidden");
        let (to_openid, _) = e.truth("kim", to).await;
        assert!(!a.text.contains(&to_openid), "{}", a.text);
    }
    translate(&e, &merchant_key(&e, "m2"), PLATFORM_MP, &p_openid, MERCHANT1_MP).await.expect_problem(403, "forbidden");
    // Nor from another tenant's openids into its own (two merchants would join customers on
    // them), nor telling which foreign appids exist.
    let (m2_openid, _) = e.truth("kim", MERCHANT2_MP).await;
    translate(&e, &m1_key, MERCHANT2_MP, &m2_openid, MERCHANT1_MP).await.expect_problem(403, "forbidden");
    translate(&e, &m1_key, MERCHANT1_MP, &m1_openid, "wxnotregistered01").await.expect_problem(403, "forbidden");
    // Nor does a merchant key reach the operators' routes.
    let person = platform_id_of(&e, PLATFORM_MP, &p_openid).await;
    e.get(&format!("/v1/persons/{person}"), Some(&m1_key)).await.expect_problem(403, "forbidden");
    e.get("/v1/admin/apps", Some(&m1_key)).await.expect_problem(403, "forbidden");
    assert!(items(&e).await == before, "a refused translation changes nothing");
    assert_eq!(translate(&e, &m1_key, PLATFORM_MP, &p_openid, MERCHANT1_MP).await.expect_ok(), own.expect_ok());

    // A second key for m1; revoked, it stops at once, and m1's other key still answers.
    let issued = e.post("/v1/admin/merchants/m1/keys", &json!({}), Some(&admin)).await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let (fresh, fresh_id) = (s(&issued.body["key"]), s(&issued.body["key_id"]));
    translate(&e, &fresh, PLATFORM_MP, &p_openid, MERCHANT1_MP).await.expect_ok();
    translate(&e, &fresh, PLATFORM_MP, &p_openid, MERCHANT2_MP).await.expect_problem(403, "forbidden");
    let demo_id = shared::registry::key_id(&shared::registry::key_hash(&m1_key)).to_owned();
    let mut ids: Vec<String> = e.get("/v1/admin/merchants/m1/keys", Some(&admin)).await.expect_ok()["key_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    ids.sort();
    assert_eq!(ids, {
        let mut v = vec![demo_id.clone(), fresh_id.clone()];
        v.sort();
        v
    });
    // Keys are filed per merchant: m2 cannot revoke (or name) m1's.
    e.delete(&format!("/v1/admin/merchants/m2/keys/{fresh_id}"), Some(&admin)).await.expect_problem(404, "not_found");
    assert_eq!(e.delete(&format!("/v1/admin/merchants/m1/keys/{fresh_id}"), Some(&admin)).await.status, 204);
    translate(&e, &fresh, PLATFORM_MP, &p_openid, MERCHANT1_MP).await.expect_problem(401, "invalid_token");
    e.delete(&format!("/v1/admin/merchants/m1/keys/{fresh_id}"), Some(&admin)).await.expect_problem(404, "not_found");
    translate(&e, &m1_key, PLATFORM_MP, &p_openid, MERCHANT1_MP).await.expect_ok();
    // The seeded key too.
    assert_eq!(e.delete(&format!("/v1/admin/merchants/m1/keys/{demo_id}"), Some(&admin)).await.status, 204);
    translate(&e, &m1_key, PLATFORM_MP, &p_openid, MERCHANT1_MP).await.expect_problem(401, "invalid_token");
    assert_eq!(e.get("/v1/admin/merchants/m1/keys", Some(&admin)).await.expect_ok()["key_ids"], json!([]));
    // m2's key is untouched.
    translate(&e, &merchant_key(&e, "m2"), PLATFORM_MP, &p_openid, MERCHANT2_MP).await.expect_ok();
});

both_stores!(answers_to_a_merchant_show_nothing_of_other_merchants, |kind| async move {
    let e = env(kind).await;
    // m1's mini program first, then the platform's: two persons (conditional unionids, and
    // two open platforms anyway) until the pivot joins them.
    let m1_first = ok(&e, "uma", MERCHANT1_MP).await;
    let (m1_openid, _) = e.truth("uma", MERCHANT1_MP).await;
    let a_platform = platform_id_of(&e, MERCHANT1_MP, &m1_openid).await;
    assert_eq!(s(&m1_first["person_id"]), pairwise(&e, &a_platform, "m1"));
    assert_ne!(s(&m1_first["person_id"]), a_platform, "m1 never sees the platform-wide id");
    assert_eq!(claims(&m1_first["token"])["sub"], m1_first["person_id"], "nor does its token");
    let p_first = ok(&e, "uma", PLATFORM_MP).await;
    let b_platform = s(&p_first["person_id"]);
    assert_ne!(a_platform, b_platform);

    let m1_confirm = link(&e, "uma", &m1_first["token"], &[MERCHANT1_OA]).await;
    assert_eq!(linked_apps(&m1_confirm), sorted(&[MERCHANT1_MP, MERCHANT1_OA]));
    assert_eq!(m1_confirm["person_id"], m1_first["person_id"], "no merge yet");
    // The platform's pass meets the pivot openid m1's person has: the two persons merge.
    let p_confirm = link(&e, "uma", &p_first["token"], &[]).await;
    assert_eq!(linked_apps(&p_confirm), sorted(&[PLATFORM_MP, PIVOT_OA]), "the platform's own apps only");
    let m2_first = ok(&e, "uma", MERCHANT2_MP).await;
    let m2_confirm = link(&e, "uma", &m2_first["token"], &[MERCHANT2_OA]).await;
    assert_eq!(linked_apps(&m2_confirm), sorted(&[MERCHANT2_MP, MERCHANT2_OA]));

    // One person now; each owner sees its own apps and its own id.
    let p = ok(&e, "uma", PLATFORM_MP).await;
    let m1 = ok(&e, "uma", MERCHANT1_MP).await;
    let m2 = ok(&e, "uma", MERCHANT2_MP).await;
    let survivor = s(&p["person_id"]);
    assert!(survivor == a_platform || survivor == b_platform, "{survivor}");
    let (m1_id, m2_id) = (s(&m1["person_id"]), s(&m2["person_id"]));
    assert_eq!(m1_id, pairwise(&e, &survivor, "m1"), "m1 sees the surviving person's pairwise id");
    assert_eq!(m2_id, pairwise(&e, &survivor, "m2"));
    // Observed: the merge keeps the person of the side that brought the pivot openid first (m1's
    // person, `a_platform`); the platform's later person is absorbed. So m1's id did not change
    // across the merge, while the platform's own id for this user did (b → a).
    assert_eq!(survivor, a_platform, "the person that already had the pivot survives");
    assert_eq!(m1_id, s(&m1_first["person_id"]), "m1's id is the same before and after the merge");
    assert_ne!(s(&p_first["person_id"]), survivor);
    assert!(m1_id != m2_id && m1_id != survivor && m2_id != survivor, "{m1_id} {m2_id} {survivor}");
    for (app, id) in [(PLATFORM_MP, &survivor), (MERCHANT1_MP, &m1_id), (MERCHANT2_MP, &m2_id)] {
        assert_eq!(&s(&ok(&e, "uma", app).await["person_id"]), id, "stable across logins");
    }
    assert_eq!(linked_apps(&p), sorted(&[PLATFORM_MP, PIVOT_OA]));
    assert_eq!(linked_apps(&m1), sorted(&[MERCHANT1_MP, MERCHANT1_OA]));
    assert_eq!(linked_owners(&m1), ["m1"]);
    assert_eq!(linked_apps(&m2), sorted(&[MERCHANT2_MP, MERCHANT2_OA]));
    assert_eq!(linked_owners(&m2), ["m2"]);
    for (v, id) in [(&p, &survivor), (&m1, &m1_id), (&m2, &m2_id)] {
        assert_eq!(v["pivot_linked"], true);
        assert_eq!(&s(&claims(&v["token"])["sub"]), id, "the token's sub is the id its owner is shown");
    }

    // /v1/me: everything for the platform's app, only the owner's for a merchant's.
    let me = e.get("/v1/me", p["token"].as_str()).await.expect_ok().clone();
    assert_eq!(s(&me["person_id"]), survivor);
    let all = [PLATFORM_MP, PIVOT_OA, MERCHANT1_MP, MERCHANT1_OA, MERCHANT2_MP, MERCHANT2_OA];
    assert_eq!(linked_apps(&me), sorted(&all));
    let m1_me = e.get("/v1/me", m1["token"].as_str()).await.expect_ok().clone();
    assert_eq!((s(&m1_me["person_id"]), linked_apps(&m1_me)), (m1_id.clone(), sorted(&[MERCHANT1_MP, MERCHANT1_OA])));
    let m2_me = e.get("/v1/me", m2["token"].as_str()).await.expect_ok().clone();
    assert_eq!((s(&m2_me["person_id"]), linked_apps(&m2_me)), (m2_id.clone(), sorted(&[MERCHANT2_MP, MERCHANT2_OA])));
    // A token m1 got before the merge answers the survivor, as m1 sees it.
    assert_eq!(e.get("/v1/me", m1_first["token"].as_str()).await.expect_ok()["person_id"], m1_id.as_str());

    // Translation agrees with the logins: each key sees its own owner's id.
    let (p_openid, _) = e.truth("uma", PLATFORM_MP).await;
    let via = |key: String, to: &'static str| {
        let e = &e;
        let p_openid = p_openid.clone();
        async move { s(&translate(e, &key, PLATFORM_MP, &p_openid, to).await.expect_ok()["person_id"]) }
    };
    assert_eq!(via(merchant_key(&e, "m1"), MERCHANT1_MP).await, m1_id);
    assert_eq!(via(merchant_key(&e, "m2"), MERCHANT2_MP).await, m2_id);
    assert_eq!(via(e.service_key(), MERCHANT1_MP).await, survivor);
    let who = e.get("/merchant-api/m1/whoami", p["token"].as_str()).await;
    assert_eq!(who.expect_ok()["authorizer"]["person_id"], m1_id.as_str());

    // Nothing m1 is shown names the platform-wide ids, m2's id, or another tenant's apps.
    let mut others = vec![a_platform.clone(), b_platform.clone(), m2_id.clone()];
    others.extend(all.iter().filter(|a| !a.starts_with("wx2b3c")).map(|a| a.to_string()));
    for app in [PLATFORM_MP, PIVOT_OA, MERCHANT2_MP, MERCHANT2_OA] {
        others.push(e.truth("uma", app).await.0);
    }
    let shown_to_m1 = [
        m1_first.to_string(),
        claims(&m1_first["token"]).to_string(),
        m1_confirm.to_string(),
        claims(&m1_confirm["token"]).to_string(),
        m1.to_string(),
        claims(&m1["token"]).to_string(),
        m1_me.to_string(),
        translate(&e, &merchant_key(&e, "m1"), PLATFORM_MP, &p_openid, MERCHANT1_MP).await.text,
        who.text.clone(),
    ];
    for text in &shown_to_m1 {
        for other in &others {
            assert!(!text.contains(other.as_str()), "m1 was shown {other}: {text}");
        }
    }

    // The other order: the platform's person has the pivot first, m1's person is new and is
    // absorbed when its pass meets the pivot. Observed: m1's id then changes to the survivor's
    // pairwise id; the id m1 was shown before the merge is never answered again (no route
    // takes a pairwise id, so nothing "resolves" it), though m1's old token still works and
    // answers the new id.
    let p = ok(&e, "ursa", PLATFORM_MP).await;
    link(&e, "ursa", &p["token"], &[]).await;
    let survivor = s(&p["person_id"]);
    let m1_before = ok(&e, "ursa", MERCHANT1_MP).await;
    assert_eq!(m1_before["pivot_linked"], false);
    link(&e, "ursa", &m1_before["token"], &[]).await;
    let m1_after = ok(&e, "ursa", MERCHANT1_MP).await;
    assert_eq!(s(&ok(&e, "ursa", PLATFORM_MP).await["person_id"]), survivor, "the pivot's person survives");
    assert_eq!(s(&m1_after["person_id"]), pairwise(&e, &survivor, "m1"));
    assert_ne!(m1_after["person_id"], m1_before["person_id"], "m1's id changed with the merge");
    assert_eq!(e.get("/v1/me", m1_before["token"].as_str()).await.expect_ok()["person_id"], m1_after["person_id"]);
    let (ursa_openid, _) = e.truth("ursa", PLATFORM_MP).await;
    let tr = translate(&e, &merchant_key(&e, "m1"), PLATFORM_MP, &ursa_openid, MERCHANT1_MP).await;
    assert_eq!(tr.expect_ok()["person_id"], m1_after["person_id"]);
});

both_stores!(registry_bad_input_is_refused_and_changes_nothing, |kind| async move {
    let e = env(kind).await;
    let admin = e.admin_key();
    let before = items(&e).await;
    let list = e.get("/v1/admin/apps", Some(&admin)).await.expect_ok().clone();
    // The seed's component apps are WeChat's side only until their merchant authorizes.
    let seeded = e.registry()["apps"].as_array().unwrap().iter().filter(|a| a["auth"] != "component").count();
    assert_eq!(list["apps"].as_array().unwrap().len(), seeded, "{list}");
    let m1_info = e.get(&format!("/v1/admin/apps/{MERCHANT1_MP}"), Some(&admin)).await.expect_ok().clone();
    let pivot_info = e.get(&format!("/v1/admin/apps/{PIVOT_OA}"), Some(&admin)).await.expect_ok().clone();

    // Only the admin key: the service, merchant and site keys are forbidden, no key is 401.
    let new_oa = json!({"kind": "official_account", "owner": "m1", "secret": "5ecret5ecret5ecret5ecret5ecret5e",
        "token": "tok", "encoding_aes_key": "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM"});
    let site = json!({"official_accounts": [PIVOT_OA]});
    for key in [e.service_key(), merchant_key(&e, "m1"), e.site_key(), e.m1_site_key()] {
        let k = Some(key.as_str());
        e.get("/v1/admin/apps", k).await.expect_problem(403, "forbidden");
        e.get(&format!("/v1/admin/apps/{MERCHANT1_MP}"), k).await.expect_problem(403, "forbidden");
        e.put("/v1/admin/apps/wx2b3c4d5e6f708199", &new_oa, k).await.expect_problem(403, "forbidden");
        e.delete(&format!("/v1/admin/apps/{MERCHANT1_MP}"), k).await.expect_problem(403, "forbidden");
        e.put("/v1/admin/sites/demo-site", &site, k).await.expect_problem(403, "forbidden");
        e.post("/v1/admin/merchants/m1/keys", &json!({}), k).await.expect_problem(403, "forbidden");
        e.get("/v1/admin/merchants/m1/keys", k).await.expect_problem(403, "forbidden");
        e.delete("/v1/admin/merchants/m1/keys/0123456789ab", k).await.expect_problem(403, "forbidden");
    }
    for k in [None, Some("adm_not-the-key")] {
        e.get("/v1/admin/apps", k).await.expect_problem(401, "invalid_token");
        e.put("/v1/admin/apps/wx2b3c4d5e6f708199", &new_oa, k).await.expect_problem(401, "invalid_token");
        e.post("/v1/admin/merchants/m1/keys", &json!({}), k).await.expect_problem(401, "invalid_token");
    }

    let put = |appid: &str, doc: Value| {
        let (e, admin, path) = (&e, admin.clone(), format!("/v1/admin/apps/{appid}"));
        async move { e.put(&path, &doc, Some(&admin)).await }
    };
    let with = |base: &Value, change: Value| {
        let mut d = base.clone();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                d.as_object_mut().unwrap().remove(k);
            } else {
                d[k] = v.clone();
            }
        }
        d
    };
    // A second pivot.
    let pivot = registered(&e, PIVOT_OA);
    put("wx1a2b3c4d5e6f7099", with(&pivot, json!({"appid": null}))).await.expect_problem(409, "registry_conflict");
    // An app registered to one owner, claimed by another (and the pivot claimed by a merchant).
    let m1_mp = registered(&e, MERCHANT1_MP);
    put(MERCHANT1_MP, with(&m1_mp, json!({"owner": "m2", "open_platform": "op_m2"})))
        .await
        .expect_problem(409, "registry_conflict");
    put(PIVOT_OA, with(&pivot, json!({"owner": "m1", "role": "merchant_oa"})))
        .await
        .expect_problem(409, "registry_conflict");
    // An app whose kind changes (its identities were filed under the old one).
    put(MERCHANT1_MP, with(&m1_mp, json!({"kind": "mobile_app", "role": "app"})))
        .await
        .expect_problem(409, "registry_conflict");
    // A body naming another appid than the path, or naming it oddly.
    put(MERCHANT1_MP, with(&m1_mp, json!({"appid": 123}))).await.expect_problem(400, "invalid_request");
    // Official accounts without what pushes need.
    for change in [
        json!({"token": null}),
        json!({"token": ""}),
        json!({"encoding_aes_key": null}),
        json!({"encoding_aes_key": "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1"}),
        json!({"encoding_aes_key": "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoMA"}),
    ] {
        put("wx2b3c4d5e6f708199", with(&new_oa, change.clone())).await.expect_problem(400, "invalid_request");
        // An existing OA changed so is refused too (its token is not dropped).
        put(MERCHANT1_OA, with(&registered(&e, MERCHANT1_OA), change)).await.expect_problem(400, "invalid_request");
    }
    // A website for a merchant the registry does not know (no mini program, no OA yet).
    let site_app = json!({"kind": "website", "owner": "m9", "secret": "5ecret5ecret5ecret5ecret5ecret5e"});
    put("wx9d9d9d9d9d9d9d01", site_app).await.expect_problem(400, "invalid_request");
    // Shapes that cannot work.
    for bad in [
        with(&m1_mp, json!({"role": "merchant_oa"})),
        with(&m1_mp, json!({"role": "platform_mp"})),
        with(&m1_mp, json!({"secret": ""})),
        with(&m1_mp, json!({"kind": "pager"})),
        with(&m1_mp, json!({"appid": MERCHANT2_MP})),
        with(
            &m1_mp,
            json!({"primary": true, "kind": "official_account", "role": "merchant_oa", "token": "t",
            "encoding_aes_key": "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM"}),
        ),
        json!("not an object"),
        json!({}),
    ] {
        put(MERCHANT1_MP, bad).await.expect_problem(400, "invalid_request");
    }
    let raw = e
        .http
        .put(e.url(&format!("/v1/admin/apps/{MERCHANT1_MP}")))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    Env::answer(raw).await.expect_problem(400, "invalid_request");
    // Sites naming an unregistered official account, or a mini program as one.
    for oas in [json!(["wx9d9d9d9d9d9d9d02"]), json!([PIVOT_OA, MERCHANT1_MP])] {
        e.put("/v1/admin/sites/demo-site", &json!({"official_accounts": oas}), Some(&admin))
            .await
            .expect_problem(400, "invalid_request");
        e.put("/v1/admin/sites/new-site", &json!({"official_accounts": oas}), Some(&admin))
            .await
            .expect_problem(400, "invalid_request");
    }
    // Keys for a merchant with no app; unknown, malformed key ids; unknown apps.
    e.post("/v1/admin/merchants/m9/keys", &json!({}), Some(&admin)).await.expect_problem(404, "not_found");
    e.delete("/v1/admin/merchants/m1/keys/0123456789ab", Some(&admin)).await.expect_problem(404, "not_found");
    e.delete("/v1/admin/merchants/m1/keys/not-a-key-id", Some(&admin)).await.expect_problem(404, "not_found");
    e.get("/v1/admin/apps/wx9d9d9d9d9d9d9d03", Some(&admin)).await.expect_problem(404, "unknown_app");
    e.delete("/v1/admin/apps/wx9d9d9d9d9d9d9d03", Some(&admin)).await.expect_problem(404, "unknown_app");

    // Nothing changed: the store item for item, and what the admin API shows.
    let after = items(&e).await;
    let changed: Vec<_> = after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k).collect();
    let gone: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    assert!(changed.is_empty() && gone.is_empty(), "changed {changed:?}, gone {gone:?}");
    assert_eq!(e.get("/v1/admin/apps", Some(&admin)).await.expect_ok(), &list);
    assert_eq!(e.get(&format!("/v1/admin/apps/{MERCHANT1_MP}"), Some(&admin)).await.expect_ok(), &m1_info);
    assert_eq!(e.get(&format!("/v1/admin/apps/{PIVOT_OA}"), Some(&admin)).await.expect_ok(), &pivot_info);
    // And the bridge works as before: m1 logs in, the pivot is still the pass's last hop.
    let m = ok(&e, "val", MERCHANT1_MP).await;
    assert_eq!(m["linked"][0]["owner"], "m1");
    let walk = e.link_via_webview("val", m["token"].as_str().unwrap(), json!({})).await;
    assert!(
        walk.hops.iter().any(|h| h.contains("/connect/oauth2/authorize") && h.contains(PIVOT_OA)),
        "{:?}",
        walk.hops
    );
    walk.confirmed.unwrap().expect_ok();
});

both_stores!(a_removed_app_stops_logging_in_and_keeps_its_links, |kind| async move {
    let e = env(kind).await;
    let admin = e.admin_key();
    let m = ok(&e, "wes", MERCHANT1_MP).await;
    link(&e, "wes", &m["token"], &[MERCHANT1_OA]).await;
    let p = ok(&e, "wes", PLATFORM_MP).await;
    link(&e, "wes", &p["token"], &[]).await;
    let platform_id = s(&ok(&e, "wes", PLATFORM_MP).await["person_id"]);
    let (m_openid, _) = e.truth("wes", MERCHANT1_MP).await;
    let (p_openid, _) = e.truth("wes", PLATFORM_MP).await;
    ok(&e, "xan", MERCHANT1_MP).await;

    assert_eq!(e.delete(&format!("/v1/admin/apps/{MERCHANT1_MP}"), Some(&admin)).await.status, 204);
    e.get(&format!("/v1/admin/apps/{MERCHANT1_MP}"), Some(&admin)).await.expect_problem(404, "unknown_app");
    e.delete(&format!("/v1/admin/apps/{MERCHANT1_MP}"), Some(&admin)).await.expect_problem(404, "unknown_app");
    let list = e.get("/v1/admin/apps", Some(&admin)).await.expect_ok().clone();
    assert!(!list.to_string().contains(MERCHANT1_MP), "{list}");
    // Its logins stop at once, for everyone (WeChat still knows the app).
    for user in ["wes", "xan", "yara"] {
        e.login(user, MERCHANT1_MP).await.expect_problem(404, "unknown_app");
    }
    // A token it issued before names an app that is gone.
    e.get("/v1/me", m["token"].as_str()).await.expect_problem(401, "invalid_token");
    // m1's backend routes have no mini program to answer for.
    assert_eq!(e.get("/merchant-api/m1/whoami", p["token"].as_str()).await.status, 403);
    // Translation into it: no such app.
    translate(&e, &e.service_key(), PLATFORM_MP, &p_openid, MERCHANT1_MP).await.expect_problem(404, "unknown_app");

    // Its links stay: the operators' look-ups and the platform's /v1/me still list it.
    let person = e.get(&format!("/v1/persons/{platform_id}"), Some(&admin)).await.expect_ok().clone();
    let ids = person["identities"].as_array().unwrap();
    let kept = ids.iter().find(|i| i["appid"] == MERCHANT1_MP).unwrap_or_else(|| panic!("{person}"));
    assert_eq!(
        (s(&kept["openid"]), s(&kept["owner"]), s(&kept["kind"])),
        (m_openid.clone(), "m1".into(), "mini_program".into())
    );
    assert_eq!(ids.len(), 4, "{person}");
    assert_eq!(platform_id_of(&e, MERCHANT1_MP, &m_openid).await, platform_id);
    let me = e.get("/v1/me", p["token"].as_str()).await.expect_ok().clone();
    assert!(linked_apps(&me).contains(&MERCHANT1_MP.to_owned()), "{me}");
    // m1's other app is untouched.
    let (oa_openid, _) = e.truth("wes", MERCHANT1_OA).await;
    let tr = translate(&e, &merchant_key(&e, "m1"), PLATFORM_MP, &p_openid, MERCHANT1_OA).await;
    assert_eq!(tr.expect_ok()["openid"], oa_openid.as_str());

    // Registered again: the same person logs in, still linked.
    let again = e.put(&format!("/v1/admin/apps/{MERCHANT1_MP}"), &registered(&e, MERCHANT1_MP), Some(&admin)).await;
    assert_eq!(again.status, 201, "{}", again.text);
    let back = ok(&e, "wes", MERCHANT1_MP).await;
    assert_eq!((&back["new_person"], &back["pivot_linked"]), (&json!(false), &json!(true)));
    assert_eq!(s(&back["person_id"]), pairwise(&e, &platform_id, "m1"));
    assert_eq!(linked_apps(&back), sorted(&[MERCHANT1_MP, MERCHANT1_OA]));
    let tr = translate(&e, &merchant_key(&e, "m1"), PLATFORM_MP, &p_openid, MERCHANT1_MP).await;
    assert_eq!(tr.expect_ok()["openid"], m_openid.as_str());
    assert_eq!(e.get("/merchant-api/m1/whoami", p["token"].as_str()).await.status, 200, "m1's primary again");
});

both_stores!(a_removed_apps_identities_can_still_be_unlinked_and_erased, |kind| async move {
    let e = env_with(kind, UnionIdMode::Always).await;
    let admin = e.admin_key();
    let ola = ok(&e, "ola", MERCHANT1_MP).await;
    let pam = ok(&e, "pam", MERCHANT1_MP).await;
    assert!(ola["unionid"].is_string() && pam["unionid"].is_string());
    let (ola_openid, _) = e.truth("ola", MERCHANT1_MP).await;
    let (pam_openid, pam_unionid) = e.truth("pam", MERCHANT1_MP).await;
    let x = platform_id_of(&e, MERCHANT1_MP, &ola_openid).await;
    let y = platform_id_of(&e, MERCHANT1_MP, &pam_openid).await;
    assert_eq!(e.delete(&format!("/v1/admin/apps/{MERCHANT1_MP}"), Some(&admin)).await.status, 204);

    // Unlink: the identity leaves the person, though its app is gone.
    let unlink = e.delete(&format!("/v1/persons/{x}/identities/{MERCHANT1_MP}/{ola_openid}"), Some(&admin)).await;
    assert_eq!(unlink.status, 204, "{}", unlink.text);
    let after = e.get(&format!("/v1/persons/{x}"), Some(&admin)).await;
    assert!(!after.text.contains(&ola_openid), "{}", after.text);
    // Erase: nothing of the person is left, its unionid included.
    assert_eq!(e.delete(&format!("/v1/persons/{y}"), Some(&admin)).await.status, 204);
    e.get(&format!("/v1/persons/{y}"), Some(&admin)).await.expect_problem(404, "not_found");
    let left: Vec<_> = items(&e)
        .await
        .into_iter()
        .filter(|(_, it)| {
            let text = format!("{it:?}");
            text.contains(&y) || text.contains(&pam_openid) || text.contains(pam_unionid.as_deref().unwrap())
        })
        .map(|(k, _)| k)
        .collect();
    assert!(left.is_empty(), "erased person still named by {left:?}");

    // Registered again: both log in as new persons; the unlinked identity stays apart from x.
    let again = e.put(&format!("/v1/admin/apps/{MERCHANT1_MP}"), &registered(&e, MERCHANT1_MP), Some(&admin)).await;
    assert_eq!(again.status, 201, "{}", again.text);
    let ola2 = ok(&e, "ola", MERCHANT1_MP).await;
    assert_eq!(ola2["new_person"], true, "{ola2}");
    assert_ne!(platform_id_of(&e, MERCHANT1_MP, &ola_openid).await, x);
    assert_eq!(ok(&e, "pam", MERCHANT1_MP).await["new_person"], true);
});

both_stores!(the_session_key_rides_sealed_in_the_token, |kind| async move {
    let e = env(kind).await;
    let stashes = |items: &BTreeMap<(String, String), Item>| {
        items.keys().filter(|(pk, _)| pk.starts_with("STASH#")).cloned().collect::<Vec<_>>()
    };

    // A first login whose unionid WeChat does not disclose: the login's transaction, no more.
    e.stack.store_counts.take();
    let a = ok(&e, "zoe", PLATFORM_MP).await;
    let counts = e.stack.store_counts.take();
    println!("first login, unionid unknown: {counts:?}");
    assert_eq!(a["unionid"], Value::Null);
    assert_eq!((counts.writes, counts.transactions), (0, 1), "no stash write: {counts:?}");
    assert!(stashes(&items(&e).await).is_empty());
    // The session_key is in the token, sealed: neither the answer nor the claims show it.
    let session_key = e.stack.sim.session_key("zoe", PLATFORM_MP).unwrap();
    let c = claims(&a["token"]);
    assert!(c["sk"].is_string(), "{c}");
    assert!(!a.to_string().contains(&session_key) && !c.to_string().contains(&session_key), "{c}");

    // The second step opens it: the unionid is learnt, the person kept; still no stash.
    let info = e.wx_userinfo("zoe", PLATFORM_MP).await;
    let u = e.post("/v1/mp/userinfo", &info, a["token"].as_str()).await;
    let (_, unionid) = e.truth("zoe", PLATFORM_MP).await;
    assert_eq!(u.expect_ok()["unionid"], json!(unionid));
    assert_eq!(u.body["person_id"], a["person_id"]);
    assert!(stashes(&items(&e).await).is_empty());
    // Once the unionid is known, a login seals nothing, and userinfo has nothing to open.
    let known = ok(&e, "zoe", PLATFORM_MP).await;
    assert_eq!(known["unionid"], json!(unionid));
    assert!(claims(&known["token"]).get("sk").is_none(), "{}", claims(&known["token"]));
    e.post("/v1/mp/userinfo", &info, known["token"].as_str()).await.expect_problem(400, "ticket_invalid");

    // Bound to its user: another user's encryptedData does not open with this token's key.
    let b = ok(&e, "yves", PLATFORM_MP).await;
    ok(&e, "xena", PLATFORM_MP).await;
    let xena_info = e.wx_userinfo("xena", PLATFORM_MP).await;
    let wrong = e.post("/v1/mp/userinfo", &xena_info, b["token"].as_str()).await;
    assert!(wrong.status == 400 && wrong.code() != "", "{}", wrong.text);
    assert!(!wrong.text.contains(&e.truth("xena", PLATFORM_MP).await.1.unwrap()), "{}", wrong.text);

    // Its own life: 600 s (the stash ttl). Past it the userinfo is refused, the token still good.
    let info = e.wx_userinfo("yves", PLATFORM_MP).await;
    e.advance_clock(601).await;
    e.post("/v1/mp/userinfo", &info, b["token"].as_str()).await.expect_problem(400, "ticket_invalid");
    assert_eq!(e.get("/v1/me", b["token"].as_str()).await.expect_ok()["person_id"], b["person_id"]);
    assert!(stashes(&items(&e).await).is_empty());
    // Nothing was lost: yves consented in WeChat (wx.getUserInfo), so the next login brings
    // the unionid by itself, for the same person.
    let again = ok(&e, "yves", PLATFORM_MP).await;
    assert_eq!(again["unionid"], json!(e.truth("yves", PLATFORM_MP).await.1));
    assert_eq!(again["person_id"], b["person_id"]);
});

both_stores!(two_operators_cannot_make_two_pivots_or_two_owners_at_once, |kind| async move {
    let e = env(kind).await;
    let admin = e.admin_key();
    let mut pivot = registered(&e, PIVOT_OA);
    pivot.as_object_mut().unwrap().remove("appid");
    let mut current = PIVOT_OA.to_owned();
    for round in 0..3 {
        // The pivot goes; two operators each register another one at the same moment.
        assert_eq!(e.delete(&format!("/v1/admin/apps/{current}"), Some(&admin)).await.status, 204);
        let (a, b) = (format!("wx1a2b3c4d5e6f71{round}a"), format!("wx1a2b3c4d5e6f71{round}b"));
        let (pa, pb) = (format!("/v1/admin/apps/{a}"), format!("/v1/admin/apps/{b}"));
        let (ra, rb) = tokio::join!(e.put(&pa, &pivot, Some(&admin)), e.put(&pb, &pivot, Some(&admin)));
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}: {} / {}", ra.text, rb.text);
        let (won, lost) = if ra.status == 201 { (a, b) } else { (b, a) };
        e.get(&format!("/v1/admin/apps/{lost}"), Some(&admin)).await.expect_problem(404, "unknown_app");
        // The pass ends at the winner.
        let t = ok(&e, &format!("rho{round}"), PLATFORM_MP).await;
        let ticket = e.post("/v1/auth/tickets", &json!({}), t["token"].as_str()).await;
        let (_, location, _) = e.browse(&format!("rho{round}"), ticket.body["url"].as_str().unwrap()).await;
        assert!(location.as_deref().unwrap_or_default().contains(&format!("appid={won}")), "{location:?}");
        current = won;
    }
    // One new appid claimed by two merchants at once: one owner.
    let doc =
        |owner: &str| json!({"kind": "mini_program", "owner": owner, "secret": "5ecret5ecret5ecret5ecret5ecret5e"});
    let (d1, d2) = (doc("m1"), doc("m2"));
    let (r1, r2) = tokio::join!(
        e.put("/v1/admin/apps/wx5e5e5e5e5e5e5e01", &d1, Some(&admin)),
        e.put("/v1/admin/apps/wx5e5e5e5e5e5e5e01", &d2, Some(&admin)),
    );
    let mut statuses = [r1.status, r2.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", r1.text, r2.text);
    let winner = if r1.status == 201 { "m1" } else { "m2" };
    let info = e.get("/v1/admin/apps/wx5e5e5e5e5e5e5e01", Some(&admin)).await.expect_ok().clone();
    assert_eq!(info["owner"], winner);
});

/// A second mini program of merchant 1, on the same open platform (so it shares unionids).
const M1_MP2: &str = "wx2b3c4d5e6f708103";

/// Ola's merchant-1 identity (with its unionid) is unlinked — with its app removed from the
/// registry at that moment, or not — then merchant 1 adds a second mini program on the same
/// open platform and ola logs into both. Answers: who holds the unionid right after the
/// unlink, the person ola was unlinked from, ola's new person, and whom the second joined.
async fn unlink_then_a_second_mini_program(e: &Env, removed: bool) -> (Option<String>, String, String, String) {
    let admin = e.admin_key();
    ok(e, "ola", MERCHANT1_MP).await;
    let (openid, unionid) = e.truth("ola", MERCHANT1_MP).await;
    let x = platform_id_of(e, MERCHANT1_MP, &openid).await;
    if removed {
        assert_eq!(e.delete(&format!("/v1/admin/apps/{MERCHANT1_MP}"), Some(&admin)).await.status, 204);
    }
    let unlink = e.delete(&format!("/v1/persons/{x}/identities/{MERCHANT1_MP}/{openid}"), Some(&admin)).await;
    assert_eq!(unlink.status, 204, "{}", unlink.text);
    let union = shared::store::Key::new(format!("U#op_m1#{}", unionid.unwrap()), "U");
    let held =
        e.store().get(&union).await.unwrap().and_then(|it| shared::store::ItemExt::s(&it, "person").map(str::to_owned));
    if removed {
        let again = e.put(&format!("/v1/admin/apps/{MERCHANT1_MP}"), &registered(e, MERCHANT1_MP), Some(&admin)).await;
        assert_eq!(again.status, 201, "{}", again.text);
    }
    let mut mp2 = registered(e, MERCHANT1_MP);
    mp2.as_object_mut().unwrap().remove("appid");
    onboard(e, M1_MP2, &mp2).await;
    assert_eq!(ok(e, "ola", MERCHANT1_MP).await["new_person"], true);
    let x2 = platform_id_of(e, MERCHANT1_MP, &openid).await;
    assert_ne!(x2, x);
    ok(e, "ola", M1_MP2).await;
    let (openid2, _) = e.truth("ola", M1_MP2).await;
    (held, x, x2, platform_id_of(e, M1_MP2, &openid2).await)
}

both_stores!(unlinking_retires_the_unionid_so_the_next_app_joins_the_new_person, |kind| async move {
    let e = env_with(kind, UnionIdMode::Always).await;
    let (held, _, x2, joined) = unlink_then_a_second_mini_program(&e, false).await;
    assert_eq!(held, None, "retired with the identity");
    assert_eq!(joined, x2, "the second mini program joins ola's person of now");
});

both_stores!(unlinking_a_removed_apps_identity_retires_its_unionid, |kind| async move {
    let e = env_with(kind, UnionIdMode::Always).await;
    let (held, x, x2, joined) = unlink_then_a_second_mini_program(&e, true).await;
    assert_eq!(joined, x2, "the second mini program joined {joined}; ola was unlinked from {x}");
    assert_eq!(held, None, "unlink left the unionid naming {x}");
});

both_stores!(admin_app_info_tells_whether_an_oa_has_its_push_secrets, |kind| async move {
    let e = env(kind).await;
    let admin = e.admin_key();
    let oa = onboard(&e, M3_OA, &m3_oa()).await;
    assert_eq!((&oa["has_token"], &oa["has_encoding_aes_key"]), (&json!(true), &json!(true)), "PUT: {oa}");
    for appid in [M3_OA, PIVOT_OA, MERCHANT1_OA] {
        let info = e.get(&format!("/v1/admin/apps/{appid}"), Some(&admin)).await.expect_ok().clone();
        assert_eq!((&info["has_token"], &info["has_encoding_aes_key"]), (&json!(true), &json!(true)), "GET: {info}");
    }
    let mp = e.get(&format!("/v1/admin/apps/{MERCHANT1_MP}"), Some(&admin)).await.expect_ok().clone();
    assert_eq!((&mp["has_token"], &mp["has_encoding_aes_key"]), (&json!(false), &json!(false)), "{mp}");
});

both_stores!(a_registry_import_with_one_bad_entry_imports_nothing_and_names_it, |kind| async move {
    let e = env(kind).await;
    let registrar = || e.stack.bridge.registrar().unwrap();
    let before = items(&e).await;
    let mut seed: Value = serde_json::from_str(&test_registry()).unwrap();
    // A new merchant's apps, and one entry that claims m1's mini program for m2.
    let apps = seed["apps"].as_array_mut().unwrap();
    apps.push(json!({"appid": "wximport0000000001", "kind": "mini_program", "owner": "m7", "secret": "s7"}));
    let m1 = apps.iter_mut().find(|a| a["appid"] == MERCHANT1_MP).unwrap();
    m1["owner"] = json!("m2");
    m1["open_platform"] = json!("op_m2");
    let seed = shared::registry::Registry::from_json(&seed.to_string()).unwrap();
    match registrar().import(&seed).await {
        Err(shared::Error::RegistryConflict(m)) => assert!(m.contains(MERCHANT1_MP), "{m}"),
        other => panic!("expected a registry_conflict naming {MERCHANT1_MP}, got {other:?}"),
    }
    assert!(items(&e).await == before, "nothing imported");
    // A document that does not hold together is refused before anything is read.
    let mut bad: Value = serde_json::from_str(&test_registry()).unwrap();
    bad["apps"][5].as_object_mut().unwrap().remove("token");
    let err = shared::registry::Registry::from_json(&bad.to_string()).unwrap_err();
    assert!(err.detail().contains(MERCHANT1_OA), "{}", err.detail());
    // The same document twice changes nothing the second time.
    let demo = shared::registry::Registry::from_json(&test_registry()).unwrap();
    registrar().import(&demo).await.unwrap();
    let once = items(&e).await;
    registrar().import(&demo).await.unwrap();
    let keys = |m: &BTreeMap<(String, String), Item>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&items(&e).await), keys(&once), "a second import writes no new item");
});

both_stores!(a_site_key_is_listed_and_revoked_at_once, |kind| async move {
    let e = env(kind).await;
    let admin = e.admin_key();
    let issued = e.post("/v1/admin/sites/demo-site/keys", &json!({}), Some(&admin)).await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let (key, id) = (s(&issued.body["key"]), s(&issued.body["key_id"]));
    let scene = |key: String| {
        let e = &e;
        async move { e.post("/v1/qr/scenes", &json!({"site_user_id": "rev-1"}), Some(&key)).await }
    };
    assert_eq!(scene(key.clone()).await.status, 201);
    let ids = e.get("/v1/admin/sites/demo-site/keys", Some(&admin)).await.expect_ok().clone();
    let ids: Vec<String> = ids["key_ids"].as_array().unwrap().iter().map(s).collect();
    assert!(ids.contains(&id) && ids.len() == 2, "the seeded key and the new one: {ids:?}");
    assert!(!ids.iter().any(|i| key.contains(i.as_str())), "ids are not the keys");
    let del = e.delete(&format!("/v1/admin/sites/demo-site/keys/{id}"), Some(&admin)).await;
    assert_eq!(del.status, 204, "{}", del.text);
    scene(key).await.expect_problem(401, "invalid_token");
    assert_eq!(scene(e.site_key()).await.status, 201, "the other key still works");
    // Another site's path revokes nothing of it; a merchant key cannot revoke.
    e.delete(&format!("/v1/admin/sites/m1-shop/keys/{id}"), Some(&admin)).await.expect_problem(404, "not_found");
    e.delete(&format!("/v1/admin/sites/demo-site/keys/{id}"), Some(&merchant_key(&e, "m1")))
        .await
        .expect_problem(403, "forbidden");
});
