//! Third-party platform (component) mode end to end, on both stores (API.md v1.2,
//! WECHAT_CONTRACT.md §11): a merchant onboarded through WeChat's authorization page, its users
//! logging into its mini program and linking through its official account and the pivot with no
//! secret of the merchant anywhere; and each fault the issue names, as a test that shows it
//! registers or links nothing and loses nothing.

use serde_json::{json, Value};
use shared::ids::Secret;
use shared::items::token;
use shared::store::{Attr, Key, Write};
use shared::wechat::push::{sha1_sorted, PushCrypto};
use wxbridge_e2e::*;

const M4_MP: &str = "wx5e6f7a8b9c0d4101";
const M4_OA: &str = "wx5e6f7a8b9c0d4102";

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

fn component(e: &Env) -> Value {
    e.registry()["component"].clone()
}

/// A new verify ticket, pushed by the simulator as WeChat does every 10 minutes.
async fn push_ticket(e: &Env) -> Value {
    let a = e.post("/sim/component/ticket", &json!({}), None).await;
    let v = a.expect_ok().clone();
    assert_eq!(v["body"], "success", "{v}");
    v
}

/// The onboarding link an operator opens for `merchant`: WeChat's authorization page.
async fn onboard(e: &Env, merchant: &str) -> String {
    let (status, location, a) =
        e.browse_with(merchant, &format!("/v1/component/onboard?merchant={merchant}"), Some(&e.admin_key())).await;
    assert_eq!(status, 302, "{}", a.text);
    let location = location.expect("a redirect to WeChat's page");
    assert!(location.contains("/cgi-bin/componentloginpage?component_appid="), "{location}");
    location
}

/// The merchant opens WeChat's page, approves `appids`, and comes back to the bridge.
async fn approve(e: &Env, merchant: &str, page: &str, appids: &[&str]) -> Vec<Answer> {
    let (status, _, shown) = e.browse(merchant, page).await;
    assert_eq!(status, 200, "{}", shown.text);
    let a = e.post(&format!("/sim/merchants/{merchant}/authorize"), &json!({"appids": appids}), None).await;
    let v = a.expect_ok().clone();
    let mut back = Vec::new();
    for l in v["locations"].as_array().unwrap() {
        let (_, _, answer) = e.browse(merchant, &s(l)).await;
        back.push(answer);
    }
    back
}

async fn onboarded(e: &Env) {
    push_ticket(e).await;
    let page = onboard(e, "m4").await;
    for a in approve(e, "m4", &page, &[M4_MP, M4_OA]).await {
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(a.text.contains("data-result=\"authorized\""), "{}", a.text);
    }
}

async fn app_info(e: &Env, appid: &str) -> Answer {
    e.get(&format!("/v1/admin/apps/{appid}"), Some(&e.admin_key())).await
}

/// An authorization event as WeChat's servers send it: `inner` encrypted with the platform's
/// key and signed with its token at `timestamp`.
fn event(e: &Env, inner: &str, timestamp: i64) -> (String, Vec<u8>) {
    let c = component(e);
    let crypto = PushCrypto::new(&Secret::new(s(&c["encoding_aes_key"])), &s(&c["component_appid"])).unwrap();
    let enc = crypto.encrypt(inner);
    let (ts, nonce) = (timestamp.to_string(), "n0nce42".to_owned());
    let token = s(&c["token"]);
    let sig = sha1_sorted(&[&token, &ts, &nonce]);
    let msg_sig = sha1_sorted(&[&token, &ts, &nonce, &enc]);
    let body = format!(
        "<xml><AppId><![CDATA[{}]]></AppId><Encrypt><![CDATA[{enc}]]></Encrypt></xml>",
        s(&c["component_appid"])
    );
    (
        format!("/v1/component/events?signature={sig}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_sig}"),
        body.into_bytes(),
    )
}

fn inner(e: &Env, info_type: &str, created: i64, extra: &str) -> String {
    format!(
        "<xml><AppId><![CDATA[{}]]></AppId><CreateTime>{created}</CreateTime><InfoType><![CDATA[{info_type}]]></InfoType>{extra}</xml>",
        s(&component(e)["component_appid"])
    )
}

/// The cached token's life is over: the next use refreshes it.
async fn expire(e: &Env, key: &Key) {
    let w = Write::Update { key: key.clone(), set: vec![("expires".into(), Attr::N(0))], remove: vec![], cond: vec![] };
    e.store().write(w).await.unwrap();
}

async fn now_secs(e: &Env) -> i64 {
    e.stack.sim.now_millis() / 1000
}

async fn stored_ticket(e: &Env) -> Option<String> {
    let appid = s(&component(e)["component_appid"]);
    let it = e.store().get(&Key::new(format!("CMP#{appid}"), "TICKET")).await.unwrap()?;
    match it.get("ticket") {
        Some(Attr::S(t)) => Some(t.clone()),
        _ => None,
    }
}

// ---- the capability ------------------------------------------------------------------------

both_stores!(a_merchant_onboarded_through_the_authorization_page_logs_users_in_and_links_them, |kind| async move {
    let e = env(kind).await;
    // Before the merchant authorizes the platform, its apps are unknown to the bridge.
    e.login("ann", M4_MP).await.expect_problem(404, "unknown_app");
    onboarded(&e).await;

    for (appid, kind) in [(M4_MP, "mini_program"), (M4_OA, "official_account")] {
        let info = app_info(&e, appid).await;
        let v = info.expect_ok();
        assert_eq!(
            (v["auth"].as_str(), v["owner"].as_str(), v["kind"].as_str()),
            (Some("component"), Some("m4"), Some(kind))
        );
        assert_eq!((v["has_token"].as_bool(), v["open_platform"].as_str()), (Some(false), Some("op_m4")), "{v}");
        // No secret of the merchant is held: the app item has nothing sealed.
        let it = e
            .store()
            .get(&shared::items::registry::app_key(&shared::ids::AppId::parse(appid).unwrap()))
            .await
            .unwrap()
            .unwrap();
        assert!(!it.contains_key("sealed"), "{it:?}");
    }

    // Its users log into its mini program through the platform…
    let login = e.login("ann", M4_MP).await;
    let v = login.expect_ok().clone();
    let (openid, _) = e.truth("ann", M4_MP).await;
    assert_eq!(v["openid"], openid, "{v}");
    assert!(e.calls("/sns/component/jscode2session").await >= 1);
    assert_eq!(e.calls("/sns/jscode2session").await, 0, "no secret login was tried");

    // …and link through the merchant's official account (web authorization through the
    // platform) and the pivot.
    let walk = e.link_via_webview("ann", v["token"].as_str().unwrap(), json!({"targets": [M4_OA]})).await;
    assert!(walk.hops.iter().any(|h| h.contains("component_appid=")), "{:?}", walk.hops);
    let linked = walk.confirmed.unwrap_or_else(|| panic!("{:?} {}", walk.hops, walk.last.text)).expect_ok().clone();
    assert_eq!(linked["pivot_linked"], true, "{linked}");
    assert!(e.calls("/sns/oauth2/component/access_token").await >= 1);
    assert!(linked["linked"].as_array().unwrap().iter().any(|l| l["appid"] == M4_OA), "{linked}");
    let (oa_openid, _) = e.truth("ann", M4_OA).await;
    let by_oa = e.get(&format!("/v1/identities/{M4_OA}/{oa_openid}"), Some(&e.admin_key())).await.expect_ok().clone();

    // The same person logs into the platform's mini program: one person, joined by the pivot.
    let plat = e.login("ann", PLATFORM_MP).await.expect_ok().clone();
    let walk = e.link_via_webview("ann", plat["token"].as_str().unwrap(), json!({})).await;
    walk.confirmed.expect("confirmed").expect_ok();
    let id = e.get(&format!("/v1/identities/{M4_MP}/{openid}"), Some(&e.admin_key())).await.expect_ok().clone();
    let (plat_openid, _) = e.truth("ann", PLATFORM_MP).await;
    let id2 =
        e.get(&format!("/v1/identities/{PLATFORM_MP}/{plat_openid}"), Some(&e.admin_key())).await.expect_ok().clone();
    assert_eq!(id["person_id"], id2["person_id"], "{id} {id2}");
    assert_eq!(id["person_id"], by_oa["person_id"], "{id} {by_oa}");
});

both_stores!(a_cold_start_uses_the_stored_ticket_and_two_instances_fetch_one_token, |kind| async move {
    let e = env(kind).await;
    push_ticket(&e).await;
    let ticket = stored_ticket(&e).await.expect("the ticket is stored");
    // Two fresh instances (cold starts) over the same table, asking at once: the stored
    // ticket serves, and WeChat is asked for one component token.
    let (a, b) = (e.fresh_bridge(), e.fresh_bridge());
    let (ba, bb) = (a.broker(), b.broker());
    let (ta, tb) = tokio::join!(ba.component_token(), bb.component_token());
    assert_eq!(ta.unwrap().expose(), tb.unwrap().expose());
    assert_eq!(e.calls("/cgi-bin/component/api_component_token").await, 1);
    assert_eq!(stored_ticket(&e).await.as_deref(), Some(ticket.as_str()));
    // A newer ticket replaces it; an older one, replayed, does not.
    let now = now_secs(&e).await;
    let extra = "<ComponentVerifyTicket><![CDATA[ticket@@@older]]></ComponentVerifyTicket>";
    let (path, body) = event(&e, &inner(&e, "component_verify_ticket", now - 3600, extra), now);
    let a = e.post_raw(&path, body, None).await;
    assert_eq!((a.status, a.text.as_str()), (200, "success"));
    assert_eq!(stored_ticket(&e).await.as_deref(), Some(ticket.as_str()), "an older ticket changes nothing");
});

both_stores!(bad_and_replayed_events_change_nothing, |kind| async move {
    let e = env(kind).await;
    push_ticket(&e).await;
    let ticket = stored_ticket(&e).await.unwrap();
    let now = now_secs(&e).await;
    let extra = "<ComponentVerifyTicket><![CDATA[ticket@@@forged]]></ComponentVerifyTicket>";
    let (path, body) = event(&e, &inner(&e, "component_verify_ticket", now + 1, extra), now);
    // A bad signature.
    let forged = path.replace("msg_signature=", "msg_signature=0");
    e.post_raw(&forged, body.clone(), None).await.expect_problem(403, "signature_invalid");
    // Signed long ago: a captured event played back.
    let (old_path, old_body) = event(&e, &inner(&e, "component_verify_ticket", now + 1, extra), now - 3600);
    e.post_raw(&old_path, old_body, None).await.expect_problem(403, "signature_invalid");
    // Not XML; oversized.
    let (p2, _) = event(&e, "x", now);
    assert_eq!(e.post_raw(&p2, b"<xml><AppId>".to_vec(), None).await.status, 400);
    e.post_raw(&path, vec![b' '; 70 * 1024], None).await.expect_problem(413, "payload_too_large");
    assert_eq!(stored_ticket(&e).await.as_deref(), Some(ticket.as_str()));

    // `authorized` for no onboarding of this bridge (a pre_auth_code the bridge never made):
    // WeChat is answered, nothing is registered.
    let sim = e.get("/sim/component", None).await.expect_ok().clone();
    let c = component(&e);
    let tok = e
        .post(
            "/cgi-bin/component/api_component_token",
            &json!({"component_appid": c["component_appid"], "component_appsecret": c["secret"], "component_verify_ticket": sim["ticket"]}),
            None,
        )
        .await
        .expect_ok()["component_access_token"]
        .clone();
    let pac = e
        .post(
            &format!("/cgi-bin/component/api_create_preauthcode?component_access_token={}", s(&tok)),
            &json!({"component_appid": c["component_appid"]}),
            None,
        )
        .await
        .expect_ok()["pre_auth_code"]
        .clone();
    let a = e
        .post(
            "/sim/merchants/m4/authorize",
            &json!({"appids": [M4_MP], "pre_auth_code": pac, "redirect_uri": e.url("/v1/component/authorized?merchant=m4&onboarding=none")}),
            None,
        )
        .await
        .expect_ok()
        .clone();
    assert_eq!(a["events"][0]["body"], "success", "{a}");
    app_info(&e, M4_MP).await.expect_problem(404, "unknown_app");
    // Its redirect names an onboarding the bridge never made.
    let (_, _, back) = e.browse("m4", &s(&a["locations"][0])).await;
    back.expect_problem(400, "onboarding_invalid");
    app_info(&e, M4_MP).await.expect_problem(404, "unknown_app");
});

both_stores!(an_auth_code_registers_once_for_the_merchant_it_was_made_for, |kind| async move {
    let e = env(kind).await;
    push_ticket(&e).await;
    let page = onboard(&e, "m4").await;
    let (status, _, _) = e.browse("m4", &page).await;
    assert_eq!(status, 200);
    let v = e.post("/sim/merchants/m4/authorize", &json!({"appids": [M4_MP]}), None).await.expect_ok().clone();
    let location = s(&v["location"]);
    let (_, _, first) = e.browse("m4", &location).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let queries = e.calls("/cgi-bin/component/api_query_auth").await;
    // The redirect replayed: the same answer, nothing asked of WeChat again.
    let (_, _, again) = e.browse("m4", &location).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(e.calls("/cgi-bin/component/api_query_auth").await, queries);
    // The code replayed under another merchant's onboarding: refused, the app stays m4's.
    let m1_page = onboard(&e, "m1").await;
    let m1_onboarding = url_param(&url_param(&m1_page, "redirect_uri").unwrap(), "onboarding").unwrap();
    let code = url_param(&location, "auth_code").unwrap();
    let forged = format!("/v1/component/authorized?merchant=m1&onboarding={m1_onboarding}&auth_code={code}");
    let (_, _, a) = e.browse("m1", &forged).await;
    a.expect_problem(400, "auth_code_invalid");
    // The way back opened in another browser than the one that started the onboarding.
    e.get(&location.replace(&e.base, ""), None).await.expect_problem(400, "onboarding_invalid");
    assert_eq!(app_info(&e, M4_MP).await.expect_ok()["owner"], "m4");
    // The authorization event replayed by WeChat: answered, changes nothing.
    let replay = e.post("/sim/pushes/replay", &json!({"times": 1}), None).await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(e.calls("/cgi-bin/component/api_query_auth").await, queries);
});

both_stores!(an_expired_pre_auth_code_registers_nothing_and_a_fresh_onboarding_works, |kind| async move {
    let e = env(kind).await;
    push_ticket(&e).await;
    let page = onboard(&e, "m4").await;
    e.browse("m4", &page).await;
    e.advance_clock(1801).await;
    let a = e.post("/sim/merchants/m4/authorize", &json!({"appids": [M4_MP]}), None).await;
    assert_eq!(a.status, 400, "{}", a.text);
    app_info(&e, M4_MP).await.expect_problem(404, "unknown_app");
    push_ticket(&e).await;
    let page = onboard(&e, "m4").await;
    for a in approve(&e, "m4", &page, &[M4_MP]).await {
        assert_eq!(a.status, 200, "{}", a.text);
    }
    e.login("bo", M4_MP).await.expect_ok();
});

both_stores!(unauthorized_stops_the_app_keeps_its_links_and_an_old_one_replayed_changes_nothing, |kind| async move {
    let e = env(kind).await;
    onboarded(&e).await;
    e.login("cy", M4_MP).await.expect_ok();
    let (openid, _) = e.truth("cy", M4_MP).await;
    let before = now_secs(&e).await;
    let a = e.post("/sim/merchants/m4/unauthorize", &json!({"appid": M4_MP}), None).await.expect_ok().clone();
    assert_eq!(a["body"], "success", "{a}");
    e.login("cy", M4_MP).await.expect_problem(404, "unknown_app");
    let id = e.get(&format!("/v1/identities/{M4_MP}/{openid}"), Some(&e.admin_key())).await;
    assert!(id.expect_ok()["person_id"].is_string(), "its links stay");

    // The merchant authorizes again; an `unauthorized` older than that, replayed, changes nothing.
    e.advance_clock(5).await;
    let page = onboard(&e, "m4").await;
    approve(&e, "m4", &page, &[M4_MP]).await;
    e.login("cy", M4_MP).await.expect_ok();
    let now = now_secs(&e).await;
    let extra = format!("<AuthorizerAppid><![CDATA[{M4_MP}]]></AuthorizerAppid>");
    let (path, body) = event(&e, &inner(&e, "unauthorized", before, &extra), now);
    let a = e.post_raw(&path, body, None).await;
    assert_eq!((a.status, a.text.as_str()), (200, "success"));
    e.login("cy", M4_MP).await.expect_ok();
});

both_stores!(refused_tokens_are_refreshed_once_and_lost_refresh_tokens_recovered, |kind| async move {
    let e = env(kind).await;
    onboarded(&e).await;
    // The component token refused (40001): refreshed once, the login retried once.
    let fetched = e.calls("/cgi-bin/component/api_component_token").await;
    e.fault("/sns/component/jscode2session", json!({"errcode": 40001, "times": 1})).await;
    e.login("di", M4_MP).await.expect_ok();
    assert_eq!(e.calls("/cgi-bin/component/api_component_token").await, fetched + 1);

    // The authorizer refresh token lost (61023): recovered through api_get_authorizer_info,
    // and the new one kept.
    let oa = e.stack.bridge.directory().app(&shared::ids::AppId::parse(M4_OA).unwrap()).await.unwrap().unwrap();
    let key = token::key(&oa.appid);
    e.store()
        .write(Write::Update {
            key: key.clone(),
            set: vec![("refresh".into(), Attr::S("refreshtoken@@@lost".into())), ("expires".into(), Attr::N(0))],
            remove: vec![],
            cond: vec![],
        })
        .await
        .unwrap();
    let infos = e.calls("/cgi-bin/component/api_get_authorizer_info").await;
    let t = e.stack.bridge.broker().access_token(&oa).await.expect("recovered");
    assert!(!t.expose().is_empty());
    assert_eq!(e.calls("/cgi-bin/component/api_get_authorizer_info").await, infos + 1);
    let it = e.store().get(&key).await.unwrap().unwrap();
    assert!(
        !matches!(it.get("refresh"), Some(Attr::S(r)) if r == "refreshtoken@@@lost"),
        "the new refresh token is kept"
    );

    // Two instances refreshing the authorizer token at once: one fetch, one rotation kept.
    expire(&e, &key).await;
    let fetched = e.calls("/cgi-bin/component/api_authorizer_token").await;
    let (a, b) = (e.fresh_bridge(), e.fresh_bridge());
    let (ba, bb) = (a.broker(), b.broker());
    let (ta, tb) = tokio::join!(ba.access_token(&oa), bb.access_token(&oa));
    assert_eq!(ta.unwrap().expose(), tb.unwrap().expose());
    assert_eq!(e.calls("/cgi-bin/component/api_authorizer_token").await, fetched + 1);

    // Refused beyond recovery: the app is marked, a clear error, and WeChat is not asked again.
    expire(&e, &key).await;
    e.fault("/cgi-bin/component/api_authorizer_token", json!({"errcode": 61023, "times": 2})).await;
    let err = e.stack.bridge.broker().access_token(&oa).await.unwrap_err();
    assert_eq!(err.code(), "reauthorization_required");
    let asked = e.calls("/cgi-bin/component/api_authorizer_token").await;
    let err = e.stack.bridge.broker().access_token(&oa).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("reauthorization_required", 503));
    assert_eq!(e.calls("/cgi-bin/component/api_authorizer_token").await, asked);
    // The merchant authorizes again: the mark is gone.
    let page = onboard(&e, "m4").await;
    approve(&e, "m4", &page, &[M4_OA]).await;
    e.stack.bridge.broker().access_token(&oa).await.expect("authorized again");
});

both_stores!(a_onetime_onboarding_link_opens_once_for_its_merchant, |kind| async move {
    let e = env(kind).await;
    push_ticket(&e).await;
    let made = e.post("/v1/admin/merchants/m4/onboarding", &json!({}), Some(&e.admin_key())).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let path = s(&made.body["link"]).strip_prefix(&e.base).unwrap().to_owned();
    // Another merchant's link; opening it (a link preview does) spends nothing.
    let (status, _, _) = e.browse("m4", &path.replace("merchant=m4", "merchant=m1")).await;
    assert_eq!(status, 400, "another merchant's link");
    for _ in 0..2 {
        let (status, _, page) = e.browse("m4", &path).await;
        assert_eq!(status, 200, "{}", page.text);
        assert!(page.text.contains("data-onboard"), "{}", page.text);
    }
    // Its button spends it, once.
    let r = e.browser("m4").post(e.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let page = s(&json!(r.headers()["location"].to_str().unwrap()));
    assert!(page.contains("componentloginpage"), "{page}");
    let again = Env::answer(e.browser("m4").post(e.url(&path)).send().await.unwrap()).await;
    again.expect_problem(400, "onboarding_invalid");
    // The merchant approves on WeChat's page and comes back in the same browser.
    for a in approve(&e, "m4", &page, &[M4_MP]).await {
        assert_eq!(a.status, 200, "{}", a.text);
    }
    // Without a link, only an operator may start an onboarding.
    let (status, _, a) = e.browse("m9", "/v1/component/onboard?merchant=m4").await;
    assert_eq!(status, 401, "{}", a.text);
});

both_stores!(a_stopped_app_stays_its_owners_until_an_operator_releases_it, |kind| async move {
    let e = env(kind).await;
    onboarded(&e).await;
    e.post("/sim/merchants/m4/unauthorize", &json!({"appid": M4_MP}), None).await.expect_ok();
    let info = app_info(&e, M4_MP).await.expect_ok().clone();
    assert!(info["stopped_at"].is_i64(), "{info}");
    // Another tenant's onboarding cannot take the app over (WeChat would let its admin
    // approve it there): refused, without naming the tenant that holds it.
    let sim_app =
        json!({"name": "m4 mp", "kind": "mini_program", "owner": "m6", "open_platform": "op_m4", "auth": "component"});
    assert!(e.put(&format!("/sim/apps/{M4_MP}"), &sim_app, None).await.status < 500);
    let page = onboard(&e, "m6").await;
    let (_, _, shown) = e.browse("m6", &page).await;
    assert_eq!(shown.status, 200);
    let v = e.post("/sim/merchants/m6/authorize", &json!({"appids": [M4_MP]}), None).await;
    if v.status == 200 {
        for l in v.body["locations"].as_array().unwrap() {
            let (_, _, back) = e.browse("m6", &s(l)).await;
            assert_eq!(back.status, 409, "{}", back.text);
            assert!(!back.text.contains("m4"), "{}", back.text);
        }
    }
    assert_eq!(app_info(&e, M4_MP).await.expect_ok()["owner"], "m4");
    e.login("gus", M4_MP).await.expect_problem(404, "unknown_app");
});

fn url_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1.split('#').next()?;
    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

both_stores!(a_site_binds_through_an_authorized_official_account_qr_push_and_confirm, |kind| async move {
    // QR codes made with the authorizer token, the scan pushed to the platform's one message
    // URL in safe mode with the platform's key, the confirm through the platform's web
    // authorization: the official account's owner never gave the bridge a secret.
    let e = env(kind).await;
    onboarded(&e).await;
    let admin = e.admin_key();
    let site = json!({"login_url": "https://m4.example.com/login", "official_accounts": [M4_OA]});
    assert_eq!(e.put("/v1/admin/sites/m4-shop", &site, Some(&admin)).await.status, 201);
    let key = s(&e.post("/v1/admin/sites/m4-shop/keys", &json!({}), Some(&admin)).await.body["key"]);
    let sc = e.post("/v1/qr/scenes", &json!({"site_user_id": "shopper-4", "appid": M4_OA}), Some(&key)).await;
    assert_eq!(sc.status, 201, "{}", sc.text);
    assert_eq!(e.calls("/cgi-bin/stable_token").await, 0, "no secret token was asked for");
    let (r, walk) = e.scan_and_confirm("flo", sc.body["ticket"].as_str().unwrap()).await;
    assert_eq!(r["event"], "subscribe", "{r}");
    assert_eq!(walk.result().as_deref(), Some("bound"), "{:?} {}", walk.hops, walk.last.text);
    let pushed = e.get("/sim/pushes", None).await.expect_ok().clone();
    let to_oa =
        pushed["pushes"].as_array().unwrap().iter().rev().find(|p| p["appid"] == M4_OA).cloned().unwrap_or_default();
    assert!(to_oa.to_string().contains(&format!("/v1/wechat/push/{M4_OA}")), "{to_oa}");
    let st = e.get(&format!("/v1/qr/scenes/{}", s(&sc.body["scene"])), Some(&key)).await.expect_ok().clone();
    let (openid, _) = e.truth("flo", M4_OA).await;
    assert_eq!((s(&st["status"]), s(&st["openid"])), ("bound".to_owned(), openid));
});

/// The figures for the closing note: WeChat token calls for 1 000 logins across 50 component
/// apps, and a component login's latency beside a secret login's (devstack in process).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn figures_token_calls_per_1000_logins_across_50_apps() {
    let e = env(StoreKind::Dynamo).await;
    push_ticket(&e).await;
    let apps: Vec<String> = (0..50).map(|i| format!("wx6f7a8b9c0d1e{i:04}")).collect();
    for a in &apps {
        let app = json!({"name": a, "kind": "mini_program", "role": "merchant_mp", "owner": "m5",
            "open_platform": "op_m5", "auth": "component"});
        let put = e.put(&format!("/sim/apps/{a}"), &app, None).await;
        assert!(put.status < 300, "{}", put.text);
    }
    let page = onboard(&e, "m5").await;
    let refs: Vec<&str> = apps.iter().map(String::as_str).collect();
    for a in approve(&e, "m5", &page, &refs).await {
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let before = (
        e.calls("/cgi-bin/component/api_component_token").await,
        e.calls("/cgi-bin/component/api_authorizer_token").await,
    );
    let started = std::time::Instant::now();
    for round in 0..20 {
        let mut tasks = Vec::new();
        for (i, a) in apps.iter().enumerate() {
            let (e, a) = (&e, a.clone());
            tasks.push(async move { e.login(&format!("u{round}-{i}"), &a).await.status });
        }
        for status in futures::future::join_all(tasks).await {
            assert_eq!(status, 200);
        }
    }
    let elapsed = started.elapsed();
    let after = (
        e.calls("/cgi-bin/component/api_component_token").await,
        e.calls("/cgi-bin/component/api_authorizer_token").await,
    );
    // Every app's authorizer token, used once its first life is over: one refresh each.
    e.advance_clock(7200).await;
    for a in &apps {
        let app = e.stack.bridge.directory().app(&shared::ids::AppId::parse(a).unwrap()).await.unwrap().unwrap();
        for _ in 0..3 {
            e.stack.bridge.broker().access_token(&app).await.unwrap();
        }
    }
    let refreshed = e.calls("/cgi-bin/component/api_authorizer_token").await - after.1;
    println!(
        "figures: 1000 logins across 50 component apps in {elapsed:?}: {} component-token fetches, {} authorizer-token fetches; \
         after one token life, 150 authorizer-token uses: {refreshed} fetches (50 apps)",
        after.0 - before.0,
        after.1 - before.1
    );
    assert!(after.0 - before.0 <= 1, "at most one component-token fetch per token life");
    assert_eq!(after.1 - before.1, 0, "logins need no authorizer token");
    assert_eq!(refreshed, 50, "one authorizer-token fetch per app per token life");

    // Latency: sequential logins, secret (merchant 1) against component (one of m5's).
    let mut secret = Vec::new();
    let mut component = Vec::new();
    for i in 0..100 {
        let t = std::time::Instant::now();
        assert_eq!(e.login(&format!("lat-{i}"), MERCHANT1_MP).await.status, 200);
        secret.push(t.elapsed());
        let t = std::time::Instant::now();
        assert_eq!(e.login(&format!("lat-{i}"), &apps[i % 50]).await.status, 200);
        component.push(t.elapsed());
    }
    secret.sort();
    component.sort();
    println!(
        "figures: first login p50 secret {:?} / component {:?}; p90 {:?} / {:?} (devstack in process, DynamoDB Local)",
        secret[50], component[50], secret[90], component[90]
    );
}
