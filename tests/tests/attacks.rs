//! Attacks end to end, over HTTP, on both stores: what an attacker can get hold of — a forwarded
//! URL, a QR code on someone else's screen, a leaked code, another tenant's key, a captured push,
//! a lookalike return URL — links or binds nothing (checked on the store itself), and the honest
//! path still works afterwards (ARCHITECTURE.md §4, API.md v1.1).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Value};
use shared::store::{Attr, Item};
use wechat_sim::crypto::push_signature;
use wxbridge_e2e::*;

// ---- helpers -------------------------------------------------------------------------------

/// Every item of the store, by (PK, SK).
type Items = BTreeMap<(String, String), Item>;

async fn items(e: &Env) -> Items {
    items_of(e.store().as_ref()).await
}

async fn items_of(store: &dyn shared::store::Store) -> Items {
    store
        .scan_all()
        .await
        .expect("the store lists its items")
        .into_iter()
        .map(|it| ((attr(&it, "PK"), attr(&it, "SK")), it))
        .collect()
}

fn attr(it: &Item, name: &str) -> String {
    match it.get(name) {
        Some(Attr::S(v)) => v.clone(),
        Some(Attr::N(n)) => n.to_string(),
        None => String::new(),
    }
}

/// The association proper: identities, unionids, persons with their memberships and marks —
/// not the refs persons keep to short-lived items (tickets, scenes, codes).
fn associations(all: &Items) -> Items {
    all.iter()
        .filter(|((pk, sk), _)| {
            (pk.starts_with("ID#") || pk.starts_with("U#") || pk.starts_with("P#")) && !sk.starts_with("R#")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Items whose PK starts so.
fn family<'a>(all: &'a Items, prefix: &str) -> Vec<&'a (String, String)> {
    all.keys().filter(|(pk, _)| pk.starts_with(prefix)).collect()
}

/// What changed between two snapshots, for failure messages.
fn diff(before: &Items, after: &Items) -> String {
    let mut out = String::new();
    for (k, v) in after {
        match before.get(k) {
            None => out.push_str(&format!("+ {k:?} {v:?}\n")),
            Some(old) if old != v => out.push_str(&format!("~ {k:?} {old:?} -> {v:?}\n")),
            _ => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        out.push_str(&format!("- {k:?}\n"));
    }
    out
}

#[track_caller]
fn assert_same(before: &Items, after: &Items, what: &str) {
    assert!(before == after, "{what}: the association changed:\n{}", diff(before, after));
}

/// The keys of the items whose text (any attribute, key included) contains `word`.
fn mentions<'a>(all: &'a Items, word: &str) -> Vec<&'a (String, String)> {
    all.iter()
        .filter(|(_, it)| it.values().any(|v| matches!(v, Attr::S(s) if s.contains(word))))
        .map(|(k, _)| k)
        .collect()
}

async fn login(e: &Env, user: &str, appid: &str) -> Value {
    e.login(user, appid).await.expect_ok().clone()
}

fn tok(v: &Value) -> &str {
    v["token"].as_str().expect("a token")
}

fn pid(v: &Value) -> String {
    v["person_id"].as_str().expect("a person id").to_owned()
}

fn oid(v: &Value) -> &str {
    v["openid"].as_str().expect("an openid")
}

/// Every app of the person behind an identity, as operators see it (a merchant's app is shown
/// only its owner's apps, so what it is shown cannot tell whether anything else was linked).
async fn held(e: &Env, appid: &str, openid: &str) -> Vec<String> {
    apps(lookup(e, appid, openid).await.expect_ok())
}

fn apps(v: &Value) -> Vec<String> {
    let list = if v["identities"].is_array() { &v["identities"] } else { &v["linked"] };
    let mut a: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("no identities in {v}"))
        .iter()
        .map(|l| l["appid"].as_str().unwrap().to_owned())
        .collect();
    a.sort();
    a
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn me(e: &Env, token: &str) -> Value {
    e.get("/v1/me", Some(token)).await.expect_ok().clone()
}

async fn ticket(e: &Env, token: &str, body: Value) -> String {
    let t = e.post("/v1/auth/tickets", &body, Some(token)).await;
    assert_eq!(t.status, 201, "ticket: {}", t.text);
    t.body["url"].as_str().unwrap().to_owned()
}

async fn confirm(e: &Env, code: &str, token: &str) -> Answer {
    e.post("/v1/auth/confirm", &json!({ "code": code }), Some(token)).await
}

/// Who holds this identity, as operators see it.
async fn lookup(e: &Env, appid: &str, openid: &str) -> Answer {
    e.get(&format!("/v1/identities/{appid}/{openid}"), Some(&e.admin_key())).await
}

async fn admin_delete(e: &Env, path: &str) -> u16 {
    e.http.delete(e.url(path)).bearer_auth(e.admin_key()).send().await.unwrap().status().as_u16()
}

async fn new_scene(e: &Env, key: &str, body: Value) -> Value {
    let a = e.post("/v1/qr/scenes", &body, Some(key)).await;
    assert_eq!(a.status, 201, "scene: {}", a.text);
    a.body
}

async fn poll(e: &Env, key: &str, scene: &Value) -> Answer {
    e.get(&format!("/v1/qr/scenes/{}", scene["scene"].as_str().unwrap()), Some(key)).await
}

async fn status_of(e: &Env, key: &str, scene: &Value) -> String {
    poll(e, key, scene).await.expect_ok()["status"].as_str().unwrap().to_owned()
}

fn reply(scan: &Value) -> String {
    scan["reply"].as_str().unwrap_or("").to_owned()
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

// ---- 1. a ticket URL opened by another WeChat user ---------------------------------------

both_stores!(a_ticket_url_opened_by_another_wechat_user_links_nothing, |kind| async move {
    let e = env(kind).await;
    let alice = login(&e, "alice", PLATFORM_MP).await;
    let mallory = login(&e, "mallory", PLATFORM_MP).await;
    let before = items(&e).await;
    // Mallory's mini program makes tickets; Alice opens their URLs (sent in a chat) in her WeChat.
    let mut leaked = Vec::new();
    for body in [json!({}), json!({"return_url": RETURN_URL})] {
        let url = ticket(&e, tok(&mallory), body).await;
        let walk = e.webview("alice", &url).await;
        assert_eq!(walk.result().as_deref(), Some("pending"), "the pass links nothing by itself: {:?}", walk.hops);
        let code = walk.confirm_code().expect("the pass ends with a confirm code");
        // Alice's mini program cannot take Mallory's pass for its own.
        confirm(&e, &code, tok(&alice)).await.expect_problem(403, "confirm_mismatch");
        leaked.push(code);
    }
    assert_same(&associations(&before), &associations(&items(&e).await), "after Alice's browser ran Mallory's passes");
    let a = me(&e, tok(&alice)).await;
    let m = me(&e, tok(&mallory)).await;
    assert_eq!((pid(&a), apps(&a)), (pid(&alice), sorted(&[PLATFORM_MP])), "Alice gained nothing");
    assert_eq!((pid(&m), apps(&m)), (pid(&mallory), sorted(&[PLATFORM_MP])), "Mallory gained nothing");
    let (alice_pivot, _) = e.truth("alice", PIVOT_OA).await;
    lookup(&e, PIVOT_OA, &alice_pivot).await.expect_problem(404, "not_found");

    // The honest paths: each links their own pivot openid.
    let w = e.link_via_webview("alice", tok(&alice), json!({})).await;
    assert_eq!(w.confirmed.unwrap().expect_ok()["pivot_linked"], true);
    assert_eq!(lookup(&e, PIVOT_OA, &alice_pivot).await.expect_ok()["person_id"], pid(&alice).as_str());
    let w = e.link_via_webview("mallory", tok(&mallory), json!({})).await;
    assert_eq!(w.confirmed.unwrap().expect_ok()["pivot_linked"], true);
    let (mallory_pivot, _) = e.truth("mallory", PIVOT_OA).await;
    assert_eq!(lookup(&e, PIVOT_OA, &mallory_pivot).await.expect_ok()["person_id"], pid(&mallory).as_str());
    // Even holding a code of Alice's browser, Mallory cannot join her now.
    let before = associations(&items(&e).await);
    confirm(&e, &leaked[0], tok(&mallory)).await.expect_problem(409, "identity_conflict");
    assert_same(&before, &associations(&items(&e).await), "after a refused leaked confirm");
    assert_eq!(apps(&me(&e, tok(&alice)).await), sorted(&[PLATFORM_MP, PIVOT_OA]));
    assert_eq!(apps(&me(&e, tok(&mallory)).await), sorted(&[PLATFORM_MP, PIVOT_OA]));
});

// ---- 2. a WeChat authorize URL with someone else's state ----------------------------------

both_stores!(a_forwarded_authorize_url_completes_in_no_other_browser, |kind| async move {
    let e = env(kind).await;
    let alice = login(&e, "alice", PLATFORM_MP).await;
    let mallory = login(&e, "mallory", PLATFORM_MP).await;
    let url = ticket(&e, tok(&mallory), json!({})).await;
    // Mallory's browser starts the pass (and gets the cookie bound to the state).
    let (status, location, _) = e.browse("mallory", &url).await;
    assert_eq!(status, 302);
    let authorize = location.unwrap().split('#').next().unwrap().to_owned();
    assert!(authorize.contains("/connect/oauth2/authorize") && authorize.contains("state="), "{authorize}");
    let before = associations(&items(&e).await);
    // The ticket URL itself is spent once started.
    e.browse("alice", &url).await.2.expect_problem(400, "ticket_invalid");

    // Alice's browser, without the cookie, authorizes with Mallory's state: refused.
    let walk = e.webview("alice", &authorize).await;
    assert!(walk.hops.iter().any(|h| h.contains("/v1/auth/callback")), "{:?}", walk.hops);
    walk.last.expect_problem(400, "state_invalid");
    // Alice's browser holding a pass cookie of its own: still not Mallory's.
    let own = ticket(&e, tok(&alice), json!({})).await;
    let (status, _, _) = e.browse("alice", &own).await;
    assert_eq!(status, 302);
    e.webview("alice", &authorize).await.last.expect_problem(400, "state_invalid");
    assert_same(&before, &associations(&items(&e).await), "after Alice's browser used Mallory's state");
    let (alice_pivot, _) = e.truth("alice", PIVOT_OA).await;
    lookup(&e, PIVOT_OA, &alice_pivot).await.expect_problem(404, "not_found");

    // The state was not spent: Mallory's own browser finishes the same pass, and he confirms it.
    let walk = e.webview("mallory", &authorize).await;
    assert_eq!(walk.result().as_deref(), Some("pending"), "{:?} {}", walk.hops, walk.last.text);
    let code = walk.confirm_code().unwrap();
    let done = confirm(&e, &code, tok(&mallory)).await;
    assert_eq!(done.expect_ok()["pivot_linked"], true);
    let (mallory_pivot, _) = e.truth("mallory", PIVOT_OA).await;
    assert_eq!(lookup(&e, PIVOT_OA, &mallory_pivot).await.expect_ok()["person_id"], pid(&mallory).as_str());
    lookup(&e, PIVOT_OA, &alice_pivot).await.expect_problem(404, "not_found");
    assert_eq!(apps(&me(&e, tok(&alice)).await), sorted(&[PLATFORM_MP]));
});

// ---- 3. a confirm with another identity's token -------------------------------------------

both_stores!(a_confirm_with_another_identitys_token_is_refused, |kind| async move {
    let e = env(kind).await;
    let alice = login(&e, "alice", PLATFORM_MP).await;
    let mallory = login(&e, "mallory", PLATFORM_MP).await;
    // Mallory's person also has the platform's second mini program (joined by the unionid).
    let data = e.wx_userinfo("mallory", PLATFORM_MP).await;
    let u = e
        .post(
            "/v1/mp/userinfo",
            &json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}),
            Some(tok(&mallory)),
        )
        .await;
    u.expect_ok();
    let mallory2 = login(&e, "mallory", PLATFORM_MP2).await;
    assert_eq!(pid(&mallory2), pid(&mallory), "one person, two apps");
    let merchant = login(&e, "mallory", MERCHANT1_MP).await;

    let walk = e.pass_via_webview("mallory", tok(&mallory), json!({})).await;
    let code = walk.confirm_code().unwrap();
    let before = associations(&items(&e).await);
    // Another person's token; the same person's token from another app; another app's person.
    for (who, token) in [("alice", tok(&alice)), ("platform mp2", tok(&mallory2)), ("merchant mp", tok(&merchant))] {
        let a = confirm(&e, &code, token).await;
        assert_eq!((a.status, a.code()), (403, "confirm_mismatch"), "{who}: {}", a.text);
    }
    // No token, or a forged one.
    e.post("/v1/auth/confirm", &json!({"code": code}), None).await.expect_problem(401, "invalid_token");
    let forged = format!("{}x", tok(&mallory));
    confirm(&e, &code, &forged).await.expect_problem(401, "invalid_token");
    assert_same(&before, &associations(&items(&e).await), "after confirms with other tokens");
    assert_eq!(apps(&me(&e, tok(&alice)).await), sorted(&[PLATFORM_MP]));
    assert_eq!(apps(&me(&e, tok(&merchant)).await), sorted(&[MERCHANT1_MP]));
    assert_eq!(held(&e, MERCHANT1_MP, oid(&merchant)).await, sorted(&[MERCHANT1_MP]));

    // The refusals did not spend the code: its owner confirms.
    let done = confirm(&e, &code, tok(&mallory)).await;
    assert_eq!(done.expect_ok()["pivot_linked"], true);
    assert_eq!(apps(&me(&e, tok(&mallory2)).await), sorted(&[PLATFORM_MP, PLATFORM_MP2, PIVOT_OA]));
    // And then it is spent, for everyone.
    confirm(&e, &code, tok(&alice)).await.expect_problem(400, "confirm_invalid");
});

// ---- 4. reused, expired, forged and malformed confirm codes -------------------------------

both_stores!(reused_expired_forged_and_malformed_confirm_codes_are_refused, |kind| async move {
    let e = env(kind).await;
    let p = login(&e, "paula", PLATFORM_MP).await;
    // Reused: once linked, the code is spent.
    let walk = e.link_via_webview("paula", tok(&p), json!({})).await;
    walk.confirmed.as_ref().unwrap().expect_ok();
    let used = walk.confirm_code().unwrap();
    let before = associations(&items(&e).await);
    confirm(&e, &used, tok(&p)).await.expect_problem(400, "confirm_invalid");

    // Expired: a pass left unconfirmed for more than 5 minutes.
    let m = login(&e, "paula", MERCHANT1_MP).await;
    let url = ticket(&e, tok(&m), json!({})).await;
    let ticket_id = url.split("ticket=").nth(1).unwrap().to_owned();
    let (_, loc, _) = e.browse("paula", &url).await;
    let state = loc.unwrap().split("state=").nth(1).unwrap().split(['&', '#']).next().unwrap().to_owned();
    let walk = e.pass_via_webview("paula", tok(&m), json!({})).await;
    let late = walk.confirm_code().unwrap();
    let before_m = associations(&items(&e).await);
    e.advance_clock(301).await;
    confirm(&e, &late, tok(&m)).await.expect_problem(400, "confirm_invalid");

    // Forged: random codes, other tokens of ours that are not confirm codes, malformed strings.
    let mut forged = vec![random_hex(), random_hex().to_uppercase(), ticket_id, state, late.to_uppercase()];
    for bad in [
        "",
        "x",
        "../../T#0",
        "CF#0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "g123456789abcdef0123456789abcdef",
        " 0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef\u{0}",
        "０１２３４５６７８９ａｂｃｄｅｆ",
        "' OR '1'='1",
    ] {
        forged.push(bad.to_owned());
    }
    forged.push("a".repeat(300));
    for code in &forged {
        let a = confirm(&e, code, tok(&m)).await;
        assert_eq!((a.status, a.code()), (400, "confirm_invalid"), "{code:?}: {}", a.text);
    }
    // Not a string at all, or no code: a malformed request.
    for body in [json!({"code": 12345}), json!({"code": null}), json!({}), json!({"code": ["x"]})] {
        let a = e.post("/v1/auth/confirm", &body, Some(tok(&m))).await;
        a.expect_problem(400, "invalid_request");
    }
    let after = associations(&items(&e).await);
    assert_same(&before_m, &after, "after refused confirm codes");
    assert!(before.keys().all(|k| after.contains_key(k)));
    assert_eq!(apps(&me(&e, tok(&m)).await), sorted(&[MERCHANT1_MP]));
    assert_eq!(held(&e, MERCHANT1_MP, oid(&m)).await, sorted(&[MERCHANT1_MP]), "nothing linked");
    assert_eq!(apps(&me(&e, tok(&p)).await), sorted(&[PLATFORM_MP, PIVOT_OA]));

    // The honest path: a fresh pass, confirmed in time — and a code raced by its owner is spent once.
    let walk = e.pass_via_webview("paula", tok(&m), json!({})).await;
    let code = walk.confirm_code().unwrap();
    let e = Arc::new(e);
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let (e, code, token) = (e.clone(), code.clone(), tok(&m).to_owned());
            tokio::spawn(async move { confirm(&e, &code, &token).await })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        let a = r.await.unwrap();
        match a.status {
            200 => won += 1,
            _ => a.expect_problem(400, "confirm_invalid"),
        }
    }
    assert_eq!(won, 1, "one confirm of a code links");
    // Met at the pivot: one person for operators; each app is shown its owner's id of it.
    let person = e.person_of(PLATFORM_MP, oid(&p)).await;
    assert_eq!(e.person_of(MERCHANT1_MP, oid(&m)).await, person, "met at the pivot");
    assert_eq!(pid(&me(&e, tok(&p)).await), person);
    assert_eq!(pid(&me(&e, tok(&m)).await), e.shown_to_owner(MERCHANT1_MP, oid(&m)).await);
});

// ---- 5. userinfo evidence whose unionid belongs to another person -------------------------

both_stores!(userinfo_evidence_with_another_persons_unionid_links_nothing, |kind| async move {
    let e = env(kind).await;
    // Alice holds her platform unionid (getUserInfo in the platform mini program).
    let alice = login(&e, "alice", PLATFORM_MP).await;
    let data = e.wx_userinfo("alice", PLATFORM_MP).await;
    let u = e
        .post("/v1/mp/userinfo", &json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}), Some(tok(&alice)))
        .await;
    let (_, alice_union) = e.truth("alice", PLATFORM_MP).await;
    let alice_union = alice_union.unwrap();
    assert_eq!(u.expect_ok()["unionid"], alice_union.as_str());
    let mallory = login(&e, "mallory", PLATFORM_MP).await;
    let before = items(&e).await;

    // Mallory's snsapi_userinfo ticket, run in Alice's browser; Mallory gets hold of the code.
    let url = ticket(&e, tok(&mallory), json!({"scope": "snsapi_userinfo"})).await;
    let walk = e.webview("alice", &url).await;
    assert!(walk.hops.iter().any(|h| h.contains("scope=snsapi_userinfo")), "{:?}", walk.hops);
    assert_eq!(walk.result().as_deref(), Some("pending"), "{}", walk.last.text);
    let code = walk.confirm_code().unwrap();
    confirm(&e, &code, tok(&mallory)).await.expect_problem(409, "identity_conflict");
    let after = items(&e).await;

    // All or nothing: no identity, membership or unionid of the pass on either person.
    assert_same(&associations(&before), &associations(&after), "after a refused userinfo pass");
    let (alice_pivot, _) = e.truth("alice", PIVOT_OA).await;
    lookup(&e, PIVOT_OA, &alice_pivot).await.expect_problem(404, "not_found");
    let traces = mentions(&after, &alice_pivot);
    assert!(traces.is_empty(), "the pass's openid left a trace: {traces:?}");
    assert_eq!(apps(&me(&e, tok(&alice)).await), sorted(&[PLATFORM_MP]));
    assert_eq!(apps(&me(&e, tok(&mallory)).await), sorted(&[PLATFORM_MP]));
    // The refusal is recorded for operators, under both persons.
    let conflicts = family(&after, "CONFLICT#");
    for p in [pid(&mallory), pid(&alice)] {
        assert!(conflicts.iter().any(|(pk, _)| pk == &format!("CONFLICT#{p}")), "no conflict under {p}: {conflicts:?}");
    }
    confirm(&e, &code, tok(&mallory)).await.expect_problem(400, "confirm_invalid");

    // The honest path: Alice's own userinfo pass joins her pivot openid to her.
    let walk = e.link_via_webview("alice", tok(&alice), json!({"scope": "snsapi_userinfo"})).await;
    assert_eq!(walk.confirmed.unwrap().expect_ok()["person_id"], pid(&alice).as_str());
    assert_eq!(lookup(&e, PIVOT_OA, &alice_pivot).await.expect_ok()["person_id"], pid(&alice).as_str());
    assert_eq!(apps(&me(&e, tok(&mallory)).await), sorted(&[PLATFORM_MP]));
});

// ---- 6. concurrent merges and links of one app --------------------------------------------

enum Job {
    /// `appid`: the app of Dora's that made the ticket, and her openid there.
    Confirm {
        code: String,
        token: String,
        dora: bool,
        own: bool,
        appid: Option<(&'static str, String)>,
    },
    Login {
        appid: &'static str,
        code: String,
    },
}

/// Every identity resolves to a person that lists it, and no person holds two openids of an app.
async fn assert_consistent(e: &Env) {
    let all = items(e).await;
    let mut checked = 0;
    for ((pk, sk), it) in &all {
        if sk != "ID" || !pk.starts_with("ID#") || pk.starts_with("ID#site:") || !it.contains_key("person") {
            continue;
        }
        let mut parts = pk.splitn(3, '#').skip(1);
        let (appid, openid) = (parts.next().unwrap(), parts.next().unwrap());
        let a = lookup(e, appid, openid).await;
        let view = a.expect_ok();
        let ids = view["identities"].as_array().unwrap();
        assert!(
            ids.iter().any(|i| i["appid"] == appid && i["openid"] == openid),
            "{appid}/{openid} resolves to {} which does not list it: {view}",
            view["person_id"]
        );
        let mut seen = BTreeSet::new();
        for i in ids {
            assert!(seen.insert(i["appid"].as_str().unwrap().to_owned()), "two openids of one app: {view}");
        }
        checked += 1;
    }
    assert!(checked > 0);
}

async fn crossfire(kind: StoreKind) {
    let e = Arc::new(env(kind).await);
    const APPS: [&str; 4] = [PLATFORM_MP, PLATFORM_MP2, MERCHANT1_MP, MERCHANT2_MP];
    for round in 0..3 {
        let (dora, eve) = (format!("dora{round}"), format!("eve{round}"));
        // Dora is four persons (her apps have not met); then she shares her platform unionid.
        let mut toks = Vec::new();
        for a in APPS {
            toks.push(login(&e, &dora, a).await);
        }
        let data = e.wx_userinfo(&dora, PLATFORM_MP).await;
        let body = json!({"encryptedData": data["encryptedData"], "iv": data["iv"]});
        e.post("/v1/mp/userinfo", &body, Some(tok(&toks[0]))).await.expect_ok();
        let eve_t = login(&e, &eve, PLATFORM_MP).await;
        let mut jobs = Vec::new();
        // Each of Dora's mini programs runs a pass in her browser (merchant 1's also through its OA).
        for (t, a) in toks.iter().zip(APPS) {
            let body = if a == MERCHANT1_MP { json!({"targets": [MERCHANT1_OA]}) } else { json!({}) };
            let w = e.pass_via_webview(&dora, tok(t), body).await;
            let (token, appid) = (tok(t).into(), Some((a, oid(t).to_owned())));
            jobs.push(Job::Confirm { code: w.confirm_code().unwrap(), token, dora: true, own: true, appid });
        }
        // Eve's pass run in Dora's browser (its code leaked to Eve), and Eve's own pass.
        let w = e.pass_via_webview(&dora, tok(&eve_t), json!({})).await;
        let token = tok(&eve_t).to_owned();
        jobs.push(Job::Confirm {
            code: w.confirm_code().unwrap(),
            token: token.clone(),
            dora: false,
            own: false,
            appid: None,
        });
        let w = e.pass_via_webview(&eve, tok(&eve_t), json!({})).await;
        jobs.push(Job::Confirm { code: w.confirm_code().unwrap(), token, dora: false, own: true, appid: None });
        // Dora's apps log in again meanwhile (the second platform app now learns the unionid).
        for a in APPS {
            for _ in 0..2 {
                jobs.push(Job::Login { appid: a, code: e.wx_login(&dora, a).await });
            }
        }
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let e = e.clone();
                tokio::spawn(async move {
                    match job {
                        Job::Confirm { code, token, dora, own, appid } => {
                            let a = confirm(&e, &code, &token).await;
                            (Some((dora, own, (token, appid))), a)
                        }
                        Job::Login { appid, code } => {
                            (None, e.post("/v1/mp/login", &json!({"appid": appid, "code": code}), None).await)
                        }
                    }
                })
            })
            .collect();
        // Every answer is a link or a refusal; Eve's person ends with one pivot openid.
        let (mut eve_own, mut eve_leaked, mut dora_won, mut refused) = (0, 0, Vec::new(), Vec::new());
        for t in tasks {
            let (job, a) = t.await.unwrap();
            let what = match &job {
                Some((true, _, _)) => "dora's confirm",
                Some((false, true, _)) => "eve's own confirm",
                Some((false, false, _)) => "eve's leaked confirm",
                None => "dora's login",
            };
            assert!(a.status == 200 || (a.status, a.code()) == (409, "identity_conflict"), "{what}: {}", a.text);
            if a.status != 200 {
                refused.push(what);
                continue;
            }
            match job {
                Some((true, _, token)) => dora_won.push(token),
                Some((false, true, _)) => eve_own += 1,
                Some((false, false, _)) => eve_leaked += 1,
                None => {}
            }
        }
        assert_eq!(eve_own + eve_leaked, 1, "Eve's person holds one pivot openid, whichever pass won");
        if eve_own == 1 {
            // Eve's leaked code came too late: Dora, honest, never meets a refusal.
            assert_eq!(refused, ["eve's leaked confirm"], "round {round}");
        }
        // Dora's confirmed apps are one person: the one her pivot openid names.
        let (dora_pivot, _) = e.truth(&dora, PIVOT_OA).await;
        let holder = pid(lookup(&e, PIVOT_OA, &dora_pivot).await.expect_ok());
        for (t, app) in &dora_won {
            let (appid, openid) = app.as_ref().unwrap();
            assert_eq!(e.person_of(appid, openid).await, holder, "a confirmed pass of Dora's is on her pivot's person");
            // Its app is shown its owner's id of that person (a merchant's: what its key translates to).
            let shown = if e.owner_of(appid) == "platform" {
                holder.clone()
            } else {
                let key = e.merchant_key(&e.owner_of(appid));
                pid(e.translate(&key, PIVOT_OA, &dora_pivot, appid).await.expect_ok())
            };
            assert_eq!(pid(&me(&e, t).await), shown, "{appid}");
        }
        assert_consistent(&e).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_merges_and_links_never_give_a_person_two_openids_of_one_app_memory() {
    crossfire(StoreKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_merges_and_links_never_give_a_person_two_openids_of_one_app_dynamodb() {
    crossfire(StoreKind::Dynamo).await;
}

// ---- 7. scene QR codes scanned, and confirm links opened, by someone else -----------------

both_stores!(a_scene_confirm_link_binds_only_for_its_own_scanner, |kind| async move {
    let e = env(kind).await;
    let key = e.site_key();
    let sc = new_scene(&e, &key, json!({"site_user_id": "alice-acct", "label": "a***@example.com"})).await;
    // Mallory scans the QR code on Alice's screen, and forwards the confirm link to Alice.
    let r = e.scan("mallory", sc["ticket"].as_str().unwrap()).await;
    let text = reply(&r);
    assert!(text.contains("a***@example.com"), "{r}");
    let link = link_in(&text).unwrap_or_else(|| panic!("no confirm link: {r}"));
    assert!(link.starts_with(&format!("{}/v1/qr/confirm?", e.base)), "{link}");
    assert_eq!(status_of(&e, &key, &sc).await, "awaiting_confirmation");
    let before = items(&e).await;
    let scene_key = (format!("SCENE#{}", sc["scene"].as_str().unwrap()), "S".to_owned());
    for opener in ["alice", "trent"] {
        let walk = e.webview(opener, &link).await;
        assert_eq!(walk.result().as_deref(), Some("not_yours"), "{opener}: {:?} {}", walk.hops, walk.last.text);
        let st = poll(&e, &key, &sc).await;
        assert_eq!(st.expect_ok()["status"], "awaiting_confirmation");
        assert!(st.body.get("openid").is_none() && st.body.get("person_id").is_none(), "{}", st.text);
    }
    // A confirm link with a code of one's own making leads nowhere.
    let forged = format!("{}/v1/qr/confirm?scene={}&code={}", e.base, sc["scene"].as_str().unwrap(), random_hex());
    e.webview("alice", &forged).await.last.expect_problem(404, "not_found");
    // A second scanner of the awaiting scene gets no confirm link.
    let r2 = e.scan("trent", sc["ticket"].as_str().unwrap()).await;
    assert!(link_in(&reply(&r2)).is_none(), "a second scanner got a link: {r2}");
    assert_eq!(status_of(&e, &key, &sc).await, "awaiting_confirmation");
    let after = items(&e).await;
    assert_same(&associations(&before), &associations(&after), "after others opened the link");
    assert_eq!(before.get(&scene_key), after.get(&scene_key), "the scene is unchanged");
    assert!(family(&after, "ID#site:").is_empty(), "no site user bound: {:?}", family(&after, "ID#site:"));
    for u in ["alice", "trent"] {
        let (o, _) = e.truth(u, PIVOT_OA).await;
        lookup(&e, PIVOT_OA, &o).await.expect_problem(404, "not_found");
    }

    // The honest path: a new QR code, scanned and confirmed by Alice herself.
    let sc2 = new_scene(&e, &key, json!({"site_user_id": "alice-acct"})).await;
    let (_, walk) = e.scan_and_confirm("alice", sc2["ticket"].as_str().unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("bound"), "{}", walk.last.text);
    let st = poll(&e, &key, &sc2).await;
    let (alice_pivot, _) = e.truth("alice", PIVOT_OA).await;
    assert_eq!((st.body["status"].as_str(), st.body["openid"].as_str()), (Some("bound"), Some(alice_pivot.as_str())));
    // The real scanner's link, forwarded, still binds nothing for the others.
    assert_eq!(e.webview("trent", &link).await.result().as_deref(), Some("not_yours"));
});

both_stores!(a_wechat_already_bound_to_another_account_of_the_site_is_told_so_and_refused, |kind| async move {
    let e = env(kind).await;
    let key = e.site_key();
    let first = new_scene(&e, &key, json!({"site_user_id": "bob-1"})).await;
    let (_, walk) = e.scan_and_confirm("bob", first["ticket"].as_str().unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("bound"));
    let before = associations(&items(&e).await);

    // Bob's WeChat scans a scene of another account of the same site.
    let second = new_scene(&e, &key, json!({"site_user_id": "bob-2"})).await;
    let r = e.scan("bob", second["ticket"].as_str().unwrap()).await;
    let text = reply(&r);
    assert!(text.contains("your WeChat is already bound to another account"), "{r}");
    assert!(link_in(&text).is_none(), "no confirm link when it cannot bind: {r}");
    assert_eq!(status_of(&e, &key, &second).await, "refused");
    // Scanning again changes nothing.
    let again = e.scan("bob", second["ticket"].as_str().unwrap()).await;
    assert!(link_in(&reply(&again)).is_none(), "{again}");
    assert_eq!(status_of(&e, &key, &second).await, "refused");

    // Someone else's WeChat scans a scene of Bob's bound account: also told, also refused.
    let third = new_scene(&e, &key, json!({"site_user_id": "bob-1"})).await;
    let r = e.scan("carol", third["ticket"].as_str().unwrap()).await;
    assert!(reply(&r).contains("linked to another WeChat") && link_in(&reply(&r)).is_none(), "{r}");
    assert_eq!(status_of(&e, &key, &third).await, "refused");
    assert_same(&before, &associations(&items(&e).await), "after refused scans");
    // The site is shown its own id of the person: operators find it by Bob's openid.
    let st = poll(&e, &key, &first).await;
    let (bob, _) = e.truth("bob", PIVOT_OA).await;
    assert_eq!(st.expect_ok()["openid"], bob.as_str());
    let p = lookup(&e, PIVOT_OA, &bob).await;
    let sites: Vec<&str> = p.expect_ok()["identities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "site")
        .map(|i| i["openid"].as_str().unwrap())
        .collect();
    assert_eq!(sites, ["bob-1"], "{}", p.text);
});

// ---- 8. site keys outside their own official accounts and codes ---------------------------

both_stores!(a_site_key_reaches_only_its_own_official_accounts_and_login_codes, |kind| async move {
    let e = env(kind).await;
    let (demo, m1) = (e.site_key(), e.m1_site_key());
    let qr_before = e.calls("/cgi-bin/qrcode/create").await;
    for (key, appid) in [(&m1, PIVOT_OA), (&demo, MERCHANT2_OA), (&demo, MERCHANT1_OA), (&m1, MERCHANT2_OA)] {
        let a = e.post("/v1/qr/scenes", &json!({"site_user_id": "u1", "appid": appid}), Some(key)).await;
        a.expect_problem(403, "forbidden");
    }
    assert_eq!(e.calls("/cgi-bin/qrcode/create").await, qr_before, "no QR code asked of WeChat");
    assert!(family(&items(&e).await, "SCENE#").is_empty(), "no scene made");
    // Each on its own account.
    new_scene(&e, &m1, json!({"site_user_id": "u1", "appid": MERCHANT1_OA})).await;
    new_scene(&e, &demo, json!({"site_user_id": "u1", "appid": PIVOT_OA})).await;

    // A login code of the demo site, redeemed with merchant 1's site key.
    e.post("/sim/users/xena/follow", &json!({"appid": PIVOT_OA}), None).await;
    let link = e.login_link("xena", PIVOT_OA).await;
    let (_, code) = e.open_login_link("xena", &link).await;
    let code = code.expect("the follower's browser gets the site a code");
    let before = associations(&items(&e).await);
    let body = json!({"code": code, "site_user_id": "m1-user-9"});
    e.post("/v1/site/bind", &body, Some(&m1)).await.expect_problem(403, "forbidden");
    assert_same(&before, &associations(&items(&e).await), "after another site's key");
    assert!(family(&items(&e).await, "ID#site:").is_empty());
    // Still the demo site's to redeem.
    let ok = e.post("/v1/site/bind", &json!({"code": code, "site_user_id": "demo-user-9"}), Some(&demo)).await;
    assert_eq!(apps(ok.expect_ok()), sorted(&["site:demo-site", PIVOT_OA]), "{}", ok.text);
    e.post("/v1/site/bind", &body, Some(&m1)).await.expect_problem(400, "link_used");

    // The other way round: merchant 1's login code, tried with the demo site's key.
    e.post("/sim/users/yuri/follow", &json!({"appid": MERCHANT1_OA}), None).await;
    let link = e.login_link("yuri", MERCHANT1_OA).await;
    let (walk, code) = e.open_login_link("yuri", &link).await;
    assert!(walk.left_to.as_deref().unwrap_or("").starts_with("https://m1.example.com/login?"), "{:?}", walk.hops);
    let body = json!({"code": code.unwrap(), "site_user_id": "m1-user-10"});
    e.post("/v1/site/bind", &body, Some(&demo)).await.expect_problem(403, "forbidden");
    e.post("/v1/site/bind", &body, Some(&m1)).await.expect_ok();
    // An account of no site offers no login link.
    let key = e.registry()["menu_login_key"].as_str().unwrap().to_owned();
    let c = e.post("/sim/users/yuri/click", &json!({"appid": MERCHANT2_OA, "key": key}), None).await;
    assert!(link_in(c.body["reply"].as_str().unwrap_or("")).is_none(), "{}", c.text);
});

// ---- 9. a follower's login link opened by another WeChat user -----------------------------

both_stores!(a_login_link_opened_by_another_wechat_user_binds_nothing, |kind| async move {
    let e = env(kind).await;
    e.post("/sim/users/xena/follow", &json!({"appid": PIVOT_OA}), None).await;
    let link = e.login_link("xena", PIVOT_OA).await;
    // The link names the demo site; made out for merchant 1's site instead, its signature fails.
    let tampered = link.replace("site=demo-site", "site=m1-shop");
    assert_ne!(tampered, link);
    e.browse("xena", &tampered).await.2.expect_problem(403, "signature_invalid");
    let before = items(&e).await;
    for opener in ["mallory", "trent"] {
        let (walk, code) = e.open_login_link(opener, &link).await;
        assert_eq!(code, None, "{opener} got a site code: {:?}", walk.hops);
        assert_eq!(walk.left_to, None, "{:?}", walk.hops);
        assert_eq!(walk.result().as_deref(), Some("not_yours"), "{}", walk.last.text);
    }
    let after = items(&e).await;
    assert_same(&associations(&before), &associations(&after), "after others opened the link");
    assert!(family(&after, "SC#").is_empty() && family(&after, "LINK#").is_empty(), "{}", diff(&before, &after));

    // The follower can still use it.
    let (walk, code) = e.open_login_link("xena", &link).await;
    assert!(walk.hops.last().unwrap().starts_with(&format!("{}/site/login?", e.base)), "{:?}", walk.hops);
    let ok =
        e.post("/v1/site/bind", &json!({"code": code.unwrap(), "site_user_id": "xena-1"}), Some(&e.site_key())).await;
    assert_eq!(apps(ok.expect_ok()), sorted(&["site:demo-site", PIVOT_OA]));
    // Bound to the follower: her person holds the site user (the site is shown its own id).
    let (xena, _) = e.truth("xena", PIVOT_OA).await;
    let holder = lookup(&e, PIVOT_OA, &xena).await;
    assert_ne!(holder.expect_ok()["person_id"], ok.body["person_id"], "a site is shown a pairwise id");
    let ids = holder.body["identities"].as_array().unwrap();
    assert!(ids.iter().any(|i| i["appid"] == "site:demo-site" && i["openid"] == "xena-1"), "{}", holder.text);
    // Spent now, whoever opens it.
    assert_eq!(e.open_login_link("mallory", &link).await.0.last.code(), "link_used");
});

// ---- 10. a plain-mode push replayed with another body -------------------------------------

fn event_xml(from: &str, at: i64, event: &str, key: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_m1]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName>\
         <CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>\
         <EventKey><![CDATA[{key}]]></EventKey></xml>"
    )
}

fn content(xml: &str) -> Option<String> {
    let at = xml.find("<Content><![CDATA[")? + "<Content><![CDATA[".len();
    Some(xml[at..].split("]]>").next()?.to_owned())
}

async fn push(e: &Env, query: &str, body: String) -> Answer {
    let url = e.url(&format!("/v1/wechat/push/{MERCHANT1_OA}?{query}"));
    Env::answer(e.http.post(url).header("content-type", "text/xml").body(body).send().await.unwrap()).await
}

both_stores!(a_plain_push_replayed_with_another_body_is_refused, |kind| async move {
    let e = env(kind).await;
    let m1 = e.m1_site_key();
    let token = e.registry()["apps"].as_array().unwrap().iter().find(|a| a["appid"] == MERCHANT1_OA).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let s1 = new_scene(&e, &m1, json!({"site_user_id": "m1-user-1", "appid": MERCHANT1_OA})).await;
    let s2 = new_scene(&e, &m1, json!({"site_user_id": "m1-user-2", "appid": MERCHANT1_OA})).await;
    let (uma, _) = e.truth("uma", MERCHANT1_OA).await;
    let (mallory, _) = e.truth("mallory", MERCHANT1_OA).await;
    let now = e.get("/sim/clock", None).await.body["now_millis"].as_i64().unwrap() / 1000;
    let (ts, nonce) = (now.to_string(), "738291045");
    let query = format!("signature={}&timestamp={ts}&nonce={nonce}", push_signature(&token, &ts, nonce));

    // Uma's scan, as WeChat pushed it (plain mode: the signature covers the query only).
    let real = event_xml(&uma, now, "SCAN", s1["scene"].as_str().unwrap());
    let first = push(&e, &query, real.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first_text = content(&first.text).unwrap_or_else(|| panic!("a reply: {}", first.text));
    let link = link_in(&first_text).unwrap_or_else(|| panic!("a confirm link: {first_text}"));
    assert_eq!(status_of(&e, &m1, &s1).await, "awaiting_confirmation");
    let before = items(&e).await;

    // Captured, and played again with other bodies: another scanner, another scene, a login link.
    let key = e.registry()["menu_login_key"].as_str().unwrap().to_owned();
    for forged in [
        event_xml(&mallory, now, "SCAN", s1["scene"].as_str().unwrap()),
        event_xml(&mallory, now, "SCAN", s2["scene"].as_str().unwrap()),
        event_xml(&mallory, now, "CLICK", &key),
        format!("{real} "),
    ] {
        push(&e, &query, forged).await.expect_problem(403, "signature_invalid");
    }
    let after = items(&e).await;
    assert!(before == after, "a refused push changed the store:\n{}", diff(&before, &after));
    assert_eq!(status_of(&e, &m1, &s2).await, "pending");

    // WeChat's retry of the real push (same query, same body): the same reply, nothing new.
    let retry = push(&e, &query, real).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(content(&retry.text).as_deref(), Some(first_text.as_str()));
    assert_eq!(associations(&before), associations(&items(&e).await));
    // The honest path: Uma confirms her scan.
    let walk = e.webview("uma", &link).await;
    assert_eq!(walk.result().as_deref(), Some("bound"), "{:?} {}", walk.hops, walk.last.text);
    let st = poll(&e, &m1, &s1).await;
    assert_eq!((st.body["status"].as_str(), st.body["openid"].as_str()), (Some("bound"), Some(uma.as_str())));
    lookup(&e, MERCHANT1_OA, &mallory).await.expect_problem(404, "not_found");
});

// ---- 11. an operator's unlink, then a login --------------------------------------------------

both_stores!(an_unlinked_identity_logs_in_as_a_new_person_for_good, |kind| async move {
    let e = env_with(kind, UnionIdMode::Always).await;
    let a = login(&e, "ulla", PLATFORM_MP).await;
    let b = login(&e, "ulla", PLATFORM_MP2).await;
    let person = pid(&a);
    assert_eq!(pid(&b), person, "the two platform apps meet at the unionid");
    assert!(a["unionid"].is_string() && a["unionid"] == b["unionid"], "{a} {b}");
    let (openid2, _) = e.truth("ulla", PLATFORM_MP2).await;
    assert_eq!(admin_delete(&e, &format!("/v1/persons/{person}/identities/{PLATFORM_MP2}/{openid2}")).await, 204);
    e.get("/v1/me", Some(tok(&b))).await.expect_problem(401, "invalid_token");

    // Logging in again: a new person, not put back on the old one by the shared unionid.
    let c = login(&e, "ulla", PLATFORM_MP2).await;
    let fresh = pid(&c);
    assert_ne!(fresh, person);
    assert_eq!(c["new_person"], true);
    assert_eq!(apps(&c), sorted(&[PLATFORM_MP2]));
    let old = e.get(&format!("/v1/persons/{person}"), Some(&e.admin_key())).await;
    assert_eq!(apps(old.expect_ok()), sorted(&[PLATFORM_MP]), "the old person lacks it");
    assert_eq!(apps(&me(&e, tok(&a)).await), sorted(&[PLATFORM_MP]));
    // Repeated logins of either app stay where they are.
    for _ in 0..3 {
        let again = login(&e, "ulla", PLATFORM_MP2).await;
        assert_eq!(
            (pid(&again), again["new_person"].clone(), apps(&again)),
            (fresh.clone(), json!(false), sorted(&[PLATFORM_MP2]))
        );
        let first = login(&e, "ulla", PLATFORM_MP).await;
        assert_eq!((pid(&first), apps(&first)), (person.clone(), sorted(&[PLATFORM_MP])));
    }
    // Nor does the unionid in getUserInfo data bring it back.
    let last = login(&e, "ulla", PLATFORM_MP2).await;
    let data = e.wx_userinfo("ulla", PLATFORM_MP2).await;
    let u = e
        .post("/v1/mp/userinfo", &json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}), Some(tok(&last)))
        .await;
    if u.status == 200 {
        assert_eq!(pid(&u.body), fresh, "{}", u.text);
    } else {
        assert_eq!(u.status, 400, "{}", u.text);
    }
    let now = lookup(&e, PLATFORM_MP2, &openid2).await;
    assert_eq!((pid(now.expect_ok()), apps(&now.body)), (fresh.clone(), sorted(&[PLATFORM_MP2])));
    let (openid1, _) = e.truth("ulla", PLATFORM_MP).await;
    let then = lookup(&e, PLATFORM_MP, &openid1).await;
    assert_eq!((pid(then.expect_ok()), apps(&then.body)), (person, sorted(&[PLATFORM_MP])));
});

both_stores!(
    an_unlinked_identity_is_not_joined_back_by_a_unionid_in_a_later_pass,
    an_unlinked_identity_is_not_joined_back_by_a_unionid_in_a_later_pass_case
);

async fn an_unlinked_identity_is_not_joined_back_by_a_unionid_in_a_later_pass_case(kind: StoreKind) {
    let e = env_with(kind, UnionIdMode::Always).await;
    let a = login(&e, "ulla", PLATFORM_MP).await;
    let person = pid(&a);
    assert_eq!(pid(&login(&e, "ulla", PLATFORM_MP2).await), person);
    let (openid2, _) = e.truth("ulla", PLATFORM_MP2).await;
    assert_eq!(admin_delete(&e, &format!("/v1/persons/{person}/identities/{PLATFORM_MP2}/{openid2}")).await, 204);
    let c = login(&e, "ulla", PLATFORM_MP2).await;
    assert_ne!(pid(&c), person);
    // The unlinked app's mini program runs a snsapi_userinfo pass: the pivot's evidence carries
    // the platform unionid, which names the person the app was unlinked from.
    let walk = e.link_via_webview("ulla", tok(&c), json!({"scope": "snsapi_userinfo"})).await;
    let done = walk.confirmed.expect("a confirm code");
    assert!(done.status == 200 || done.status == 409, "{}", done.text);
    let now = lookup(&e, PLATFORM_MP2, &openid2).await;
    assert_ne!(pid(now.expect_ok()), person, "the unionid put the unlinked app back on its old person: {}", now.text);
    let old = e.get(&format!("/v1/persons/{person}"), Some(&e.admin_key())).await;
    assert!(!apps(old.expect_ok()).contains(&PLATFORM_MP2.to_owned()), "{}", old.text);
}

// ---- 12. erase --------------------------------------------------------------------------------

both_stores!(an_erased_persons_scenes_poll_not_found, |kind| async move {
    let e = env(kind).await;
    let key = e.site_key();
    let bound = new_scene(&e, &key, json!({"site_user_id": "pia-acct"})).await;
    let (_, walk) = e.scan_and_confirm("pia", bound["ticket"].as_str().unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("bound"));
    // The site's id of the person is no operator's id: operators erase by the platform-wide one.
    let st = poll(&e, &key, &bound).await;
    let shown = st.expect_ok()["person_id"].as_str().unwrap().to_owned();
    let person = e.person_of(PIVOT_OA, st.body["openid"].as_str().unwrap()).await;
    assert_ne!(shown, person);
    assert_eq!(admin_delete(&e, &format!("/v1/persons/{shown}")).await, 404);
    let waiting = new_scene(&e, &key, json!({"site_user_id": "pia-acct"})).await;
    let r = e.scan("pia", waiting["ticket"].as_str().unwrap()).await;
    let link = link_in(&reply(&r)).unwrap_or_else(|| panic!("{r}"));
    assert_eq!(status_of(&e, &key, &waiting).await, "awaiting_confirmation");

    assert_eq!(admin_delete(&e, &format!("/v1/persons/{person}")).await, 204);
    poll(&e, &key, &bound).await.expect_problem(404, "not_found");
    poll(&e, &key, &waiting).await.expect_problem(404, "not_found");
    // The confirm link of the erased scene binds nothing back.
    let walk = e.webview("pia", &link).await;
    walk.last.expect_problem(404, "not_found");
    let (pia, _) = e.truth("pia", PIVOT_OA).await;
    lookup(&e, PIVOT_OA, &pia).await.expect_problem(404, "not_found");
    let left = mentions(&items(&e).await, "pia-acct").into_iter().cloned().collect::<Vec<_>>();
    assert!(left.is_empty(), "{left:?}");
});

both_stores!(erasing_a_person_leaves_no_item_that_mentions_it, |kind| async move {
    let e = env(kind).await;
    let admin = e.admin_key();
    let mut persons = BTreeSet::new();
    // Login and getUserInfo.
    let z = login(&e, "zed", PLATFORM_MP).await;
    let zt = tok(&z).to_owned();
    persons.insert(pid(&z));
    let data = e.wx_userinfo("zed", PLATFORM_MP).await;
    e.post("/v1/mp/userinfo", &json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}), Some(&zt))
        .await
        .expect_ok();
    // A confirmed pass through merchant 1's OA and the pivot.
    let w = e.link_via_webview("zed", &zt, json!({"targets": [MERCHANT1_OA]})).await;
    w.confirmed.unwrap().expect_ok();
    // Merchant 1's mini program: another person until its pass meets the pivot, then merged.
    let m = login(&e, "zed", MERCHANT1_MP).await;
    persons.insert(e.person_of(MERCHANT1_MP, oid(&m)).await);
    e.link_via_webview("zed", tok(&m), json!({})).await.confirmed.unwrap().expect_ok();
    // A confirmed scene, and another scanned but left awaiting confirmation.
    let (key, m1) = (e.site_key(), e.m1_site_key());
    let site_user = "zedsite-5d1e";
    let bound = new_scene(&e, &key, json!({"site_user_id": site_user, "label": "z***"})).await;
    let (_, walk) = e.scan_and_confirm("zed", bound["ticket"].as_str().unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("bound"));
    let waiting = new_scene(&e, &key, json!({"site_user_id": site_user})).await;
    let r = e.scan("zed", waiting["ticket"].as_str().unwrap()).await;
    assert!(link_in(&reply(&r)).is_some(), "{r}");
    // A pass never confirmed.
    let w = e.pass_via_webview("zed", &zt, json!({})).await;
    assert_eq!(w.result().as_deref(), Some("pending"));
    // A redeemed login link on merchant 1's OA, for merchant 1's site.
    e.post("/sim/users/zed/follow", &json!({"appid": MERCHANT1_OA}), None).await;
    let link = e.login_link("zed", MERCHANT1_OA).await;
    let (_, code) = e.open_login_link("zed", &link).await;
    let m1_user = "zedm1-5d1e";
    e.post("/v1/site/bind", &json!({"code": code.unwrap(), "site_user_id": m1_user}), Some(&m1)).await.expect_ok();
    // An unlink; the unlinked app logs in again as a new person (who remembers whom it left).
    let root = pid(&me(&e, &zt).await);
    persons.insert(root.clone());
    let (m_openid, _) = e.truth("zed", MERCHANT1_MP).await;
    assert_eq!(admin_delete(&e, &format!("/v1/persons/{root}/identities/{MERCHANT1_MP}/{m_openid}")).await, 204);
    let q = login(&e, "zed", MERCHANT1_MP).await;
    let q_person = e.person_of(MERCHANT1_MP, oid(&q)).await;
    assert_ne!(q_person, root);
    // A refused merge: Yan's pass run in Zed's browser, confirmed by Yan.
    let y = login(&e, "yan", PLATFORM_MP).await;
    let w = e.pass_via_webview("zed", tok(&y), json!({})).await;
    confirm(&e, &w.confirm_code().unwrap(), tok(&y)).await.expect_problem(409, "identity_conflict");

    // What names Zed: person ids, every openid and site user id, the unionid.
    let view = e.get(&format!("/v1/persons/{root}"), Some(&admin)).await.expect_ok().clone();
    assert_eq!(apps(&view), sorted(&[PLATFORM_MP, PIVOT_OA, MERCHANT1_OA, "site:demo-site", "site:m1-shop"]), "{view}");
    let mut words: Vec<String> = persons.iter().cloned().collect();
    for i in view["identities"].as_array().unwrap() {
        words.push(i["openid"].as_str().unwrap().to_owned());
    }
    words.push(e.truth("zed", PLATFORM_MP).await.1.unwrap());
    assert!(words.contains(&site_user.to_owned()) && words.contains(&m1_user.to_owned()), "{words:?}");
    let before = items(&e).await;
    for w in &words {
        assert!(!mentions(&before, w).is_empty(), "{w} is not in the store before the erase: the check would be idle");
    }
    assert!(family(&before, "CONFLICT#").len() >= 2, "the refused merge is recorded");

    assert_eq!(admin_delete(&e, &format!("/v1/persons/{root}")).await, 204);
    let after = items(&e).await;
    let left: Vec<String> = words
        .iter()
        .flat_map(|w| {
            let after = &after;
            mentions(after, w).into_iter().map(move |k| format!("{w} in {k:?}: {:?}", after[k]))
        })
        .collect();
    assert!(left.is_empty(), "items still mention the erased person:\n{}", left.join("\n"));
    poll(&e, &key, &bound).await.expect_problem(404, "not_found");
    poll(&e, &key, &waiting).await.expect_problem(404, "not_found");
    e.get(&format!("/v1/persons/{root}"), Some(&admin)).await.expect_problem(404, "not_found");
    // Others are untouched: the new person of the unlinked app, and Yan.
    assert_eq!(pid(lookup(&e, MERCHANT1_MP, &m_openid).await.expect_ok()), q_person);
    assert_eq!(e.shown_to_owner(MERCHANT1_MP, &m_openid).await, pid(&q));
    assert_eq!(apps(&me(&e, tok(&y)).await), sorted(&[PLATFORM_MP]));
    assert_eq!(login(&e, "zed", PLATFORM_MP).await["new_person"], true, "the erased apps log in as strangers");
});

/// A person bound to `site_user` through a scene, who is then erased: its platform-wide id.
async fn bound_then_erase_target(e: &Env, user: &str, site_user: &str) -> String {
    let key = e.site_key();
    let sc = new_scene(e, &key, json!({"site_user_id": site_user})).await;
    let (_, walk) = e.scan_and_confirm(user, sc["ticket"].as_str().unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("bound"), "{}", walk.last.text);
    // Operators know the person by the scanner's openid (the site is shown its own id).
    let st = poll(e, &key, &sc).await;
    e.person_of(PIVOT_OA, st.expect_ok()["openid"].as_str().unwrap()).await
}

#[track_caller]
fn nothing_mentions(all: &Items, words: &[&str]) {
    let left: Vec<String> = words
        .iter()
        .flat_map(|w| mentions(all, w).into_iter().map(move |k| format!("{w} in {k:?}: {:?}", all[k])))
        .collect();
    assert!(left.is_empty(), "items still mention the erased person:\n{}", left.join("\n"));
}

both_stores!(
    erase_removes_a_scene_made_for_its_site_user_before_the_binding,
    erase_removes_a_scene_made_for_its_site_user_before_the_binding_case
);

async fn erase_removes_a_scene_made_for_its_site_user_before_the_binding_case(kind: StoreKind) {
    let e = env(kind).await;
    let key = e.site_key();
    // The site made a QR code that was never scanned (the page was reloaded), then another.
    let stale = new_scene(&e, &key, json!({"site_user_id": "pia-acct-2"})).await;
    let person = bound_then_erase_target(&e, "pia", "pia-acct-2").await;
    assert_eq!(admin_delete(&e, &format!("/v1/persons/{person}")).await, 204);
    poll(&e, &key, &stale).await.expect_problem(404, "not_found");
    nothing_mentions(&items(&e).await, &["pia-acct-2", &person]);
}

both_stores!(
    erase_removes_a_scene_its_wechat_scanned_before_it_was_a_person,
    erase_removes_a_scene_its_wechat_scanned_before_it_was_a_person_case
);

async fn erase_removes_a_scene_its_wechat_scanned_before_it_was_a_person_case(kind: StoreKind) {
    let e = env(kind).await;
    let key = e.site_key();
    // Pia's WeChat scans a QR code before the bridge knows her, and never confirms.
    let early = new_scene(&e, &key, json!({"site_user_id": "someone-else"})).await;
    let r = e.scan("pia", early["ticket"].as_str().unwrap()).await;
    assert!(link_in(&reply(&r)).is_some(), "{r}");
    let person = bound_then_erase_target(&e, "pia", "pia-acct-3").await;
    let (pia, _) = e.truth("pia", PIVOT_OA).await;
    assert_eq!(admin_delete(&e, &format!("/v1/persons/{person}")).await, 204);
    nothing_mentions(&items(&e).await, &[&pia, &person]);
}

both_stores!(
    erase_removes_a_login_code_issued_before_it_was_a_person,
    erase_removes_a_login_code_issued_before_it_was_a_person_case
);

async fn erase_removes_a_login_code_issued_before_it_was_a_person_case(kind: StoreKind) {
    let e = env(kind).await;
    // A follower unknown to the bridge opens a login link; the site never redeems the code.
    e.post("/sim/users/pia/follow", &json!({"appid": PIVOT_OA}), None).await;
    let link = e.login_link("pia", PIVOT_OA).await;
    let (_, code) = e.open_login_link("pia", &link).await;
    let code = code.expect("a site code");
    let person = bound_then_erase_target(&e, "pia", "pia-acct-4").await;
    let (pia, _) = e.truth("pia", PIVOT_OA).await;
    assert_eq!(admin_delete(&e, &format!("/v1/persons/{person}")).await, 204);
    // A code issued before the erase does not bind the erased follower again.
    let late = e.post("/v1/site/bind", &json!({"code": code, "site_user_id": "pia-acct-4"}), Some(&e.site_key())).await;
    assert_ne!(late.status, 200, "the erased follower is bound again: {}", late.text);
    nothing_mentions(&items(&e).await, &[&pia, &person]);
}

both_stores!(
    erase_removes_another_persons_pending_pass_that_saw_its_openid,
    erase_removes_another_persons_pending_pass_that_saw_its_openid_case
);

async fn erase_removes_another_persons_pending_pass_that_saw_its_openid_case(kind: StoreKind) {
    let e = env(kind).await;
    let person = bound_then_erase_target(&e, "pia", "pia-acct-5").await;
    // Yan's pass ran in Pia's browser and was never confirmed.
    let y = login(&e, "yan", PLATFORM_MP).await;
    let walk = e.pass_via_webview("pia", tok(&y), json!({})).await;
    assert_eq!(walk.result().as_deref(), Some("pending"));
    let (pia, _) = e.truth("pia", PIVOT_OA).await;
    assert_eq!(admin_delete(&e, &format!("/v1/persons/{person}")).await, 204);
    nothing_mentions(&items(&e).await, &[&pia, &person]);
}

// ---- 13. lookalike return URLs --------------------------------------------------------------

#[track_caller]
fn lookalike_refused(a: &Answer, url: &str) {
    assert_eq!((a.status, a.code()), (400, "return_url_not_allowed"), "{url:?}: {}", a.text);
}

/// A devstack whose allow-list is `allow` (the test registry otherwise), with its own store.
async fn stack_allowing(kind: StoreKind, allow: &[&str]) -> Devstack {
    let mut reg: Value = serde_json::from_str(&test_registry()).unwrap();
    reg["return_url_allow"] = json!(allow);
    devstack::start(devstack::Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        registry_json: Some(reg.to_string()),
        dynamodb: match kind {
            StoreKind::Memory => None,
            StoreKind::Dynamo => Some((dynamodb_endpoint(), unique("wxb-e2e"))),
        },
        link_key: Some(LINK_KEY.into()),
        ..Default::default()
    })
    .await
    .expect("devstack starts")
}

both_stores!(lookalike_return_urls_are_refused_and_make_no_ticket, |kind| async move {
    // The test registry allows "https://demo.example.com/": other schemes, ports, hosts and
    // credentials are refused.
    let e = env(kind).await;
    let p = login(&e, "rhea", PLATFORM_MP).await;
    let long = format!("https://demo.example.com/{}", "a".repeat(2100));
    for url in [
        "http://demo.example.com/linked",
        "https://demo.example.com:8443/linked",
        "https://demo.example.com.evil.example/linked",
        "https://xdemo.example.com/linked",
        "https://demo.example.co/linked",
        "https://demo.example.com./linked",
        "https://dem\u{043e}.example.com/linked",
        "https://evil.example/https://demo.example.com/",
        "https://evil.example/?next=https://demo.example.com/",
        "https://evil.example#@demo.example.com/",
        "https://demo.example.com@evil.example/linked",
        "https://demo.example.com:443@evil.example/linked",
        "https://user:pw@demo.example.com/linked",
        "https://user@demo.example.com/linked",
        "//demo.example.com/linked",
        "/linked",
        "javascript://demo.example.com/%0Aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "wss://demo.example.com/linked",
        "",
        long.as_str(),
    ] {
        lookalike_refused(&e.post("/v1/auth/tickets", &json!({"return_url": url}), Some(tok(&p))).await, url);
    }
    assert!(family(&items(&e).await, "T#").is_empty(), "no ticket made");
    // The honest return URL.
    let walk = e.link_via_webview("rhea", tok(&p), json!({"return_url": RETURN_URL})).await;
    assert!(walk.left_to.as_deref().unwrap_or("").starts_with(&format!("{RETURN_URL}?result=pending&confirm=")));
    walk.confirmed.unwrap().expect_ok();

    // An allow-list entry with a path: matched on whole segments only.
    let stack = stack_allowing(kind, &["https://demo.example.com/linked"]).await;
    let http = reqwest::Client::new();
    let base = stack.base.clone();
    let post = |path: &str, body: Value, token: Option<String>| {
        let mut r = http.post(format!("{base}{path}")).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { Env::answer(r.send().await.unwrap()).await }
    };
    let code = post("/sim/users/rhea/login", json!({"appid": PLATFORM_MP}), None).await.body["code"].clone();
    let login = post("/v1/mp/login", json!({"appid": PLATFORM_MP, "code": code}), None).await;
    let token = login.expect_ok()["token"].as_str().unwrap().to_owned();
    for url in [
        "https://demo.example.com/linked-evil",
        "https://demo.example.com/linkedx",
        "https://demo.example.com/linked.evil",
        "https://demo.example.com/linked;evil",
        "https://demo.example.com/linked%2F..%2Fadmin",
        "https://demo.example.com/linked/../admin",
        "https://demo.example.com/link",
        "https://demo.example.com/",
        "https://demo.example.com/other/linked",
        "https://demo.example.com.evil.example/linked",
        "https://user@demo.example.com/linked",
    ] {
        lookalike_refused(&post("/v1/auth/tickets", json!({"return_url": url}), Some(token.clone())).await, url);
    }
    assert!(family(&items_of(stack.bridge.store().as_ref()).await, "T#").is_empty(), "no ticket made");
    for url in ["https://demo.example.com/linked", "https://demo.example.com/linked/done?x=1"] {
        let a = post("/v1/auth/tickets", json!({"return_url": url}), Some(token.clone())).await;
        assert_eq!(a.status, 201, "{url}: {}", a.text);
    }
    assert_eq!(family(&items_of(stack.bridge.store().as_ref()).await, "T#").len(), 2);
    stack.server.abort();
});
