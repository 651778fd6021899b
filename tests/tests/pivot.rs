//! Pivot linking end to end: mini program → ticket → web-view through WeChat's authorize
//! page (the simulator) → callback → store, then translation and look-up.

use serde_json::{json, Value};
use wxbridge_e2e::*;

async fn token_of(e: &Env, user: &str, app: &str) -> Value {
    e.login(user, app).await.expect_ok().clone()
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn linked_apps(v: &Value) -> Vec<String> {
    let mut a: Vec<String> =
        v["linked"].as_array().unwrap().iter().map(|l| l["appid"].as_str().unwrap().to_owned()).collect();
    a.sort();
    a
}

both_stores!(merchant_and_platform_meet_at_the_pivot, |kind| async move {
    let e = env(kind).await;
    // A merchant's mini program: not yet linked, so the mini program opens the web-view.
    let m = token_of(&e, "mia", MERCHANT1_MP).await;
    assert_eq!(m["pivot_linked"], false);
    let walk = e.link_via_webview("mia", m["token"].as_str().unwrap(), json!({})).await;
    assert!(walk.hops.iter().any(|h| h.contains("/connect/oauth2/authorize")), "{:?}", walk.hops);
    assert!(walk.hops.iter().any(|h| h.contains("/v1/auth/callback")), "{:?}", walk.hops);
    assert_eq!(walk.last.status, 200, "{}", walk.last.text);
    // The pass links nothing by itself: the page hands the mini program a confirm code.
    assert_eq!(walk.result().as_deref(), Some("pending"), "{}", walk.last.text);
    let confirmed = walk.confirmed.as_ref().expect("the owner confirmed");
    assert_eq!(confirmed.expect_ok()["pivot_linked"], true);

    // Returning: no web-view needed.
    let again = token_of(&e, "mia", MERCHANT1_MP).await;
    assert_eq!(again["pivot_linked"], true);
    assert_eq!(again["person_id"], m["person_id"]);

    // The platform's mini program: another person until its web-view meets the same pivot openid.
    let p = token_of(&e, "mia", PLATFORM_MP).await;
    let (platform_openid, _) = e.truth("mia", PLATFORM_MP).await;
    let (merchant_openid, _) = e.truth("mia", MERCHANT1_MP).await;
    assert_ne!(e.person_of(PLATFORM_MP, &platform_openid).await, e.person_of(MERCHANT1_MP, &merchant_openid).await);
    let walk = e.link_via_webview("mia", p["token"].as_str().unwrap(), json!({"return_url": RETURN_URL})).await;
    let to = walk.left_to.as_deref().unwrap_or_default();
    assert!(to.starts_with(&format!("{RETURN_URL}?result=pending&confirm=")), "{:?}", walk.hops);
    assert_eq!(walk.confirmed.as_ref().unwrap().expect_ok()["pivot_linked"], true);

    let p2 = token_of(&e, "mia", PLATFORM_MP).await;
    let m2 = token_of(&e, "mia", MERCHANT1_MP).await;
    // One person across platform and merchant, as operators see it; the platform's app is shown
    // the platform-wide id, the merchant's app the merchant's pairwise id of the same person.
    let person = e.person_of(PLATFORM_MP, &platform_openid).await;
    assert_eq!(e.person_of(MERCHANT1_MP, &merchant_openid).await, person, "one person across platform and merchant");
    assert_eq!(p2["person_id"], person.as_str());
    assert_ne!(m2["person_id"], person.as_str(), "a merchant's app is not shown the platform-wide id");
    assert_eq!(m2["person_id"], e.shown_to_owner(MERCHANT1_MP, &merchant_openid).await.as_str());
    // Each login lists its owner's apps only; the platform's /v1/me lists them all.
    assert_eq!(linked_apps(&p2), sorted(&[PLATFORM_MP, PIVOT_OA]));
    assert_eq!(linked_apps(&m2), [MERCHANT1_MP]);
    assert_eq!((&p2["pivot_linked"], &m2["pivot_linked"]), (&json!(true), &json!(true)));
    let all = e.get("/v1/me", p2["token"].as_str()).await;
    assert_eq!(linked_apps(all.expect_ok()), sorted(&[PLATFORM_MP, PIVOT_OA, MERCHANT1_MP]));
    // Old tokens of the merged-away person still resolve, each to what its owner is shown.
    for (t, shown) in [(&m["token"], &m2["person_id"]), (&p["token"], &p2["person_id"])] {
        assert_eq!(&e.get("/v1/me", t.as_str()).await.expect_ok()["person_id"], shown);
    }

    // Translation: the platform's openid → the merchant mini program's openid (the truth).
    let key = e.service_key();
    let path = format!("/v1/translate?from_appid={PLATFORM_MP}&openid={platform_openid}&to_appid={MERCHANT1_MP}");
    let tr = e.get(&path, Some(&key)).await;
    assert_eq!(tr.expect_ok()["openid"], merchant_openid.as_str());
    assert_eq!(tr.body["person_id"], p2["person_id"]);
    // Warm (cached) and reverse.
    assert_eq!(e.get(&path, Some(&key)).await.expect_ok()["openid"], merchant_openid.as_str());
    let back = format!("/v1/translate?from_appid={MERCHANT1_MP}&openid={merchant_openid}&to_appid={PLATFORM_MP}");
    assert_eq!(e.get(&back, Some(&key)).await.expect_ok()["openid"], platform_openid.as_str());
    // Merchant 1's own key: into its own app, with its pairwise id; not into the platform's.
    let m1 = e.translate(&e.merchant_key("m1"), PLATFORM_MP, &platform_openid, MERCHANT1_MP).await;
    assert_eq!((&m1.expect_ok()["openid"], &m1.body["person_id"]), (&json!(merchant_openid), &m2["person_id"]));
    e.translate(&e.merchant_key("m1"), MERCHANT1_MP, &merchant_openid, PLATFORM_MP)
        .await
        .expect_problem(403, "forbidden");

    // The authorizer in front of a merchant route: the merchant sees its own openid.
    let who = e.get("/merchant-api/m1/whoami", p2["token"].as_str()).await;
    assert_eq!(who.expect_ok()["authorizer"]["openid"], merchant_openid.as_str());
    assert_eq!(who.body["authorizer"]["person_id"], m2["person_id"], "the merchant's pairwise id");
    // Not linked to merchant 2: denied, and a denial is not cached.
    assert_eq!(e.get("/merchant-api/m2/whoami", p2["token"].as_str()).await.status, 403);
    let m2t = token_of(&e, "mia", MERCHANT2_MP).await;
    e.link_via_webview("mia", m2t["token"].as_str().unwrap(), json!({})).await;
    assert_eq!(e.get("/merchant-api/m2/whoami", p2["token"].as_str()).await.status, 200);
});

both_stores!(merchant_oa_then_pivot_in_one_pass, |kind| async move {
    let e = env(kind).await;
    let p = token_of(&e, "nora", PLATFORM_MP).await;
    let walk =
        e.link_via_webview("nora", p["token"].as_str().unwrap(), json!({"targets": [MERCHANT1_OA, PIVOT_OA]})).await;
    let authorizes: Vec<&String> = walk.hops.iter().filter(|h| h.contains("/connect/oauth2/authorize")).collect();
    assert_eq!(authorizes.len(), 2, "{:?}", walk.hops);
    assert!(authorizes[0].contains(MERCHANT1_OA) && authorizes[1].contains(PIVOT_OA), "merchant first, pivot last");
    let me = e.get("/v1/me", p["token"].as_str()).await;
    let apps = linked_apps(me.expect_ok());
    assert!(apps.contains(&MERCHANT1_OA.to_owned()) && apps.contains(&PIVOT_OA.to_owned()), "{apps:?}");
    let (oa_openid, _) = e.truth("nora", MERCHANT1_OA).await;
    let (platform_openid, _) = e.truth("nora", PLATFORM_MP).await;
    let tr = e
        .get(
            &format!("/v1/translate?from_appid={PLATFORM_MP}&openid={platform_openid}&to_appid={MERCHANT1_OA}"),
            Some(&e.service_key()),
        )
        .await;
    assert_eq!(tr.expect_ok()["openid"], oa_openid.as_str());
});

both_stores!(userinfo_scope_brings_the_unionid_and_refusal_links_nothing, |kind| async move {
    let e = env(kind).await;
    let p = token_of(&e, "olive", PLATFORM_MP).await;
    let body = json!({"scope": "snsapi_userinfo", "return_url": RETURN_URL});
    // The user refuses the consent page: denied, nothing linked.
    let sw = e.post("/sim/users/olive/switches", &json!({"refuse_userinfo": true}), None).await;
    assert_eq!(sw.status, 200, "{}", sw.text);
    let walk = e.link_via_webview("olive", p["token"].as_str().unwrap(), body.clone()).await;
    assert_eq!(walk.left_to.as_deref(), Some(format!("{RETURN_URL}?result=denied").as_str()));
    assert_eq!(linked_apps(e.get("/v1/me", p["token"].as_str()).await.expect_ok()), [PLATFORM_MP]);
    // Consent: the pivot's unionid is learnt; the platform's other apps now join by unionid.
    e.post("/sim/users/olive/switches", &json!({"refuse_userinfo": false}), None).await;
    let walk = e.link_via_webview("olive", p["token"].as_str().unwrap(), body).await;
    assert_eq!(walk.result().as_deref(), Some("pending"));
    walk.confirmed.as_ref().unwrap().expect_ok();
    let second = e.login("olive", PLATFORM_MP2).await;
    assert_eq!(second.expect_ok()["person_id"], p["person_id"], "joined through the pivot's unionid");
});

both_stores!(linking_csrf_never_joins_two_people, |kind| async move {
    let e = env(kind).await;
    // The victim is linked already.
    let v = token_of(&e, "victim", PLATFORM_MP).await;
    e.link_via_webview("victim", v["token"].as_str().unwrap(), json!({})).await.confirmed.unwrap().expect_ok();
    // The attacker makes a ticket for their own person and gets the victim to open it.
    let a = token_of(&e, "attacker", PLATFORM_MP).await;
    let t = e.post("/v1/auth/tickets", &json!({}), a["token"].as_str()).await;
    let walk = e.webview("victim", t.body["url"].as_str().unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("pending"), "the pass itself links nothing: {}", walk.last.text);
    let code = walk.confirm_code().unwrap();
    // WeChat's second delivery of that redirect gets the same answer, at once.
    let callback = walk.hops.last().unwrap().clone();
    let started = std::time::Instant::now();
    assert_eq!(e.webview("victim", &callback).await.confirm_code(), Some(code.clone()));
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    // The victim's mini program cannot confirm the attacker's pass...
    e.post("/v1/auth/confirm", &json!({"code": code}), v["token"].as_str())
        .await
        .expect_problem(403, "confirm_mismatch");
    // ...and the attacker, had they the code, would join two people: refused, nothing left.
    e.post("/v1/auth/confirm", &json!({"code": code}), a["token"].as_str())
        .await
        .expect_problem(409, "identity_conflict");
    e.post("/v1/auth/confirm", &json!({"code": code}), a["token"].as_str())
        .await
        .expect_problem(400, "confirm_invalid");
    let va = e.get("/v1/me", v["token"].as_str()).await.expect_ok().clone();
    let aa = e.get("/v1/me", a["token"].as_str()).await.expect_ok().clone();
    assert_ne!(va["person_id"], aa["person_id"]);
    assert_eq!(linked_apps(&aa), [PLATFORM_MP], "the attacker gained nothing");
    assert_eq!(linked_apps(&va).len(), 2, "the victim lost nothing");
});

both_stores!(tickets_and_states_are_single_use_and_checked, |kind| async move {
    let e = env(kind).await;
    let p = token_of(&e, "paul", PLATFORM_MP).await;
    let token = p["token"].as_str();
    // Tickets need a token; targets must be official accounts; return URLs must be allowed.
    e.post("/v1/auth/tickets", &json!({}), None).await.expect_problem(401, "invalid_token");
    e.post("/v1/auth/tickets", &json!({"targets": [MERCHANT1_MP]}), token).await.expect_problem(404, "unknown_app");
    e.post("/v1/auth/tickets", &json!({"scope": "snsapi_login"}), token).await.expect_problem(400, "invalid_request");
    e.post("/v1/auth/tickets", &json!({"return_url": "https://evil.example.com/x"}), token)
        .await
        .expect_problem(400, "return_url_not_allowed");

    // Unknown, reused and expired tickets.
    e.get("/v1/auth/start?ticket=0123456789abcdef0123456789abcdef", None).await.expect_problem(400, "ticket_invalid");
    e.get("/v1/auth/start?ticket=../../x", None).await.expect_problem(400, "ticket_invalid");
    e.get("/v1/auth/start", None).await.expect_problem(400, "invalid_request");
    let t = e.post("/v1/auth/tickets", &json!({}), token).await;
    let url = t.body["url"].as_str().unwrap().to_owned();
    let (status, location, _) = e.browse("paul", &url).await;
    assert_eq!(status, 302);
    let authorize = location.unwrap();
    assert!(authorize.ends_with("#wechat_redirect") && authorize.contains("scope=snsapi_base"), "{authorize}");
    let state = authorize.split("state=").nth(1).unwrap().split('#').next().unwrap().to_owned();
    assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()));
    e.get(&url.replace(&e.base, ""), None).await.expect_problem(400, "ticket_invalid");
    let t2 = e.post("/v1/auth/tickets", &json!({}), token).await;
    e.advance_clock(301).await;
    e.webview("paul", t2.body["url"].as_str().unwrap()).await.last.expect_problem(400, "ticket_invalid");

    // Tampered and unknown states.
    e.get("/v1/auth/callback?code=x&state=ffffffffffffffffffffffffffffffff", None)
        .await
        .expect_problem(400, "state_invalid");
    e.get("/v1/auth/callback?code=x&state=not-a-state", None).await.expect_problem(400, "state_invalid");

    // WeChat's double redirect: the same code and state twice → the first outcome, one exchange.
    let (_, loc, _) = e.browse("paul", authorize.split('#').next().unwrap()).await;
    let callback = loc.unwrap();
    let first = e.browse("paul", &callback).await;
    let before = e.calls("/sns/oauth2/access_token").await;
    let second = e.browse("paul", &callback).await;
    assert_eq!((first.0, first.2.text.clone()), (second.0, second.2.text.clone()));
    assert_eq!(e.calls("/sns/oauth2/access_token").await, before, "no second exchange");
    // The used state with another code.
    let other = callback.replace("code=", "code=zz");
    e.get(&other.replace(&e.base, ""), None).await.expect_problem(400, "state_invalid");
    // An expired state.
    let t3 = e.post("/v1/auth/tickets", &json!({}), token).await;
    let (_, loc, _) = e.browse("paul", t3.body["url"].as_str().unwrap()).await;
    let (_, loc, _) = e.browse("paul", loc.unwrap().split('#').next().unwrap()).await;
    e.advance_clock(601).await;
    e.get(&loc.unwrap().replace(&e.base, ""), None).await.expect_problem(400, "state_invalid");
});

both_stores!(wechat_errors_on_the_exchange_link_nothing, |kind| async move {
    let e = env(kind).await;
    let p = token_of(&e, "quinn", PLATFORM_MP).await;
    let t = e.post("/v1/auth/tickets", &json!({}), p["token"].as_str()).await;
    let (_, loc, _) = e.browse("quinn", t.body["url"].as_str().unwrap()).await;
    let authorize = loc.unwrap().split('#').next().unwrap().to_owned();
    let (_, loc, _) = e.browse("quinn", &authorize).await;
    let callback = loc.unwrap();
    let state = callback.split("state=").nth(1).unwrap().to_owned();

    // A code of another official account (merchant 2's) with our state: WeChat says invalid.
    let foreign = authorize.replace(PIVOT_OA, MERCHANT2_OA);
    let (_, loc, _) = e.browse("quinn", &foreign).await;
    let foreign_code = loc.unwrap().split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let (_, _, a) = e.browse("quinn", &e.url(&format!("/v1/auth/callback?code={foreign_code}&state={state}"))).await;
    a.expect_problem(400, "wechat_code_invalid");
    // WeChat down: 503, and the state survives for a retry.
    e.fault("/sns/oauth2/access_token", json!({"errcode": -1, "times": 3})).await;
    e.browse("quinn", &callback).await.2.expect_problem(503, "wechat_unavailable");
    assert_eq!(linked_apps(e.get("/v1/me", p["token"].as_str()).await.expect_ok()), [PLATFORM_MP], "nothing linked");
    // Once WeChat answers, the same callback ends the pass, and its owner links.
    let done = e.browse("quinn", &callback).await;
    assert_eq!(done.0, 200, "{}", done.2.text);
    let code = Walk { hops: vec![], last: done.2, left_to: None, confirmed: None }.confirm_code().unwrap();
    e.post("/v1/auth/confirm", &json!({"code": code}), p["token"].as_str()).await.expect_ok();
    assert_eq!(linked_apps(e.get("/v1/me", p["token"].as_str()).await.expect_ok()).len(), 2);
});

both_stores!(translation_and_authorizer_refuse_what_they_should, |kind| async move {
    let e = env(kind).await;
    let p = token_of(&e, "rita", PLATFORM_MP).await;
    let (openid, _) = e.truth("rita", PLATFORM_MP).await;
    let path = format!("/v1/translate?from_appid={PLATFORM_MP}&openid={openid}&to_appid={MERCHANT1_MP}");
    e.get(&path, None).await.expect_problem(401, "invalid_token");
    e.get(&path, Some("wrong-key")).await.expect_problem(401, "invalid_token");
    // The admin and site keys are no translation credentials; a merchant key reaches only its
    // merchant's apps.
    e.get(&path, Some(&e.admin_key())).await.expect_problem(403, "forbidden");
    e.get(&path, Some(&e.site_key())).await.expect_problem(403, "forbidden");
    e.get(&path, Some(&e.m1_site_key())).await.expect_problem(403, "forbidden");
    e.get(&path, Some(&e.merchant_key("m2"))).await.expect_problem(403, "forbidden");
    let to_platform = format!("/v1/translate?from_appid={MERCHANT1_MP}&openid={openid}&to_appid={PLATFORM_MP2}");
    e.get(&to_platform, Some(&e.merchant_key("m1"))).await.expect_problem(403, "forbidden");
    e.get(&path, Some(&e.merchant_key("m1"))).await.expect_problem(404, "not_linked");
    let key = e.service_key();
    e.get(&path, Some(&key)).await.expect_problem(404, "not_linked");
    let unknown = format!("/v1/translate?from_appid={PLATFORM_MP}&openid=oNobody&to_appid={MERCHANT1_MP}");
    e.get(&unknown, Some(&key)).await.expect_problem(404, "not_found");
    let bad_app = format!("/v1/translate?from_appid={PLATFORM_MP}&openid={openid}&to_appid=wx0000000000000000");
    e.get(&bad_app, Some(&key)).await.expect_problem(404, "unknown_app");
    e.get(&format!("/v1/translate?from_appid={PLATFORM_MP}"), Some(&key)).await.expect_problem(400, "invalid_request");

    // The authorizer: no token, forged, expired, and a merchant token instead of the platform's.
    assert_eq!(e.get("/merchant-api/m1/whoami", None).await.status, 403);
    let forged = format!("{}x", p["token"].as_str().unwrap());
    assert_eq!(e.get("/merchant-api/m1/whoami", Some(&forged)).await.status, 403);
    let m = token_of(&e, "rita", MERCHANT1_MP).await;
    e.link_via_webview("rita", m["token"].as_str().unwrap(), json!({})).await;
    e.link_via_webview("rita", p["token"].as_str().unwrap(), json!({})).await;
    assert_eq!(e.get("/merchant-api/m1/whoami", p["token"].as_str()).await.status, 200);
    assert_eq!(e.get("/merchant-api/m1/whoami", m["token"].as_str()).await.status, 403, "only the platform's token");
    assert_eq!(e.get("/merchant-api/nobody/whoami", p["token"].as_str()).await.status, 403);
    e.advance_clock(p["expires_in"].as_i64().unwrap() + 1).await;
    assert_eq!(e.get("/merchant-api/m1/whoami", p["token"].as_str()).await.status, 403);
});

both_stores!(operators_look_up_unlink_and_erase, |kind| async move {
    let e = env(kind).await;
    let p = token_of(&e, "sam", PLATFORM_MP).await;
    e.link_via_webview("sam", p["token"].as_str().unwrap(), json!({})).await;
    let m = token_of(&e, "sam", MERCHANT1_MP).await;
    let (m_openid, _) = e.truth("sam", MERCHANT1_MP).await;
    // The merchant app's person before its pass meets the pivot (operators know it by this id).
    let old = e.person_of(MERCHANT1_MP, &m_openid).await;
    e.link_via_webview("sam", m["token"].as_str().unwrap(), json!({})).await;
    let person = e.get("/v1/me", p["token"].as_str()).await.expect_ok()["person_id"].as_str().unwrap().to_owned();
    let admin = e.admin_key();
    let (openid, _) = e.truth("sam", PLATFORM_MP).await;

    // Only the admin key: none is 401, any other key 403.
    e.get(&format!("/v1/persons/{person}"), None).await.expect_problem(401, "invalid_token");
    for other in [e.service_key(), e.site_key(), e.merchant_key("m1")] {
        e.get(&format!("/v1/persons/{person}"), Some(&other)).await.expect_problem(403, "forbidden");
    }
    let byp = e.get(&format!("/v1/persons/{person}"), Some(&admin)).await;
    let ids = byp.expect_ok()["identities"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| i["linked_at"].as_str().unwrap().ends_with('Z') && i["via"].is_string()));
    let byi = e.get(&format!("/v1/identities/{PLATFORM_MP}/{openid}"), Some(&admin)).await;
    assert_eq!(byi.expect_ok()["person_id"], person.as_str());
    // An old person id (merged away) still resolves.
    assert_ne!(old, person);
    assert_eq!(e.get(&format!("/v1/persons/{old}"), Some(&admin)).await.expect_ok()["person_id"], person.as_str());
    // A merchant's pairwise id is no operator's id.
    let pairwise = m["person_id"].as_str().unwrap();
    assert_ne!(pairwise, old);
    e.get(&format!("/v1/persons/{pairwise}"), Some(&admin)).await.expect_problem(404, "not_found");
    e.get("/v1/persons/not-a-person", Some(&admin)).await.expect_problem(400, "invalid_request");
    e.get("/v1/persons/01890a5d-ac96-774b-bcce-b302099a8057", Some(&admin)).await.expect_problem(404, "not_found");

    // Unlink the merchant's mini program: translation stops at once.
    let tr = format!("/v1/translate?from_appid={PLATFORM_MP}&openid={openid}&to_appid={MERCHANT1_MP}");
    assert_eq!(e.get(&tr, Some(&e.service_key())).await.expect_ok()["openid"], m_openid.as_str());
    let del = e
        .http
        .delete(e.url(&format!("/v1/persons/{person}/identities/{MERCHANT1_MP}/{m_openid}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    e.get(&tr, Some(&e.service_key())).await.expect_problem(404, "not_linked");
    let again = e
        .http
        .delete(e.url(&format!("/v1/persons/{person}/identities/{MERCHANT1_MP}/{m_openid}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    // The unlinked app logs in as a new person.
    let fresh = token_of(&e, "sam", MERCHANT1_MP).await;
    assert_eq!(fresh["new_person"], true);
    assert_ne!(e.person_of(MERCHANT1_MP, &m_openid).await, person);

    // Erase: every item of the person goes; the apps log in as strangers.
    let del = e.http.delete(e.url(&format!("/v1/persons/{person}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(del.status(), 204);
    e.get(&format!("/v1/persons/{person}"), Some(&admin)).await.expect_problem(404, "not_found");
    e.get(&format!("/v1/identities/{PLATFORM_MP}/{openid}"), Some(&admin)).await.expect_problem(404, "not_found");
    e.get(&tr, Some(&e.service_key())).await.expect_problem(404, "not_found");
    e.get("/v1/me", p["token"].as_str()).await.expect_problem(401, "invalid_token");
    let back = token_of(&e, "sam", PLATFORM_MP).await;
    assert_eq!(back["new_person"], true);
    let items = e.store().query(&format!("P#{person}"), "").await.unwrap();
    assert!(items.is_empty(), "{items:?}");
    assert!(e.store().query(&format!("P#{old}"), "").await.unwrap().is_empty(), "the merged-away person too");
});

both_stores!(one_person_completing_two_web_views_at_once, |kind| async move {
    let e = std::sync::Arc::new(env(kind).await);
    for round in 0..4 {
        let user = format!("twin{round}");
        let p = token_of(&e, &user, PLATFORM_MP).await;
        let m = token_of(&e, &user, MERCHANT1_MP).await;
        let (e1, e2, u1, u2) = (e.clone(), e.clone(), user.clone(), user.clone());
        let (pt, mt) = (p["token"].as_str().unwrap().to_owned(), m["token"].as_str().unwrap().to_owned());
        let a = tokio::spawn(async move { e1.link_via_webview(&u1, &pt, json!({})).await });
        let b = tokio::spawn(async move { e2.link_via_webview(&u2, &mt, json!({})).await });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert_eq!(a.last.status, 200, "{}", a.last.text);
        assert_eq!(b.last.status, 200, "{}", b.last.text);
        a.confirmed.unwrap().expect_ok();
        b.confirmed.unwrap().expect_ok();
        let pa = e.get("/v1/me", p["token"].as_str()).await.expect_ok().clone();
        let ma = e.get("/v1/me", m["token"].as_str()).await.expect_ok().clone();
        let (po, mo) = (p["openid"].as_str().unwrap(), m["openid"].as_str().unwrap());
        let person = e.person_of(PLATFORM_MP, po).await;
        assert_eq!(e.person_of(MERCHANT1_MP, mo).await, person, "one person");
        assert_eq!(pa["person_id"], person.as_str());
        assert_eq!(ma["person_id"], e.shown_to_owner(MERCHANT1_MP, mo).await.as_str());
        assert_eq!(linked_apps(&pa).len(), 3, "{pa}");
        assert_eq!(linked_apps(&ma), [MERCHANT1_MP], "a merchant's app is shown its own apps only: {ma}");
    }
});

both_stores!(erase_removes_unionids_even_after_an_unlink, |kind| async move {
    let e = env_with(kind, UnionIdMode::Always).await;
    let p = token_of(&e, "ula", PLATFORM_MP).await;
    assert!(p["unionid"].is_string());
    e.link_via_webview("ula", p["token"].as_str().unwrap(), json!({})).await;
    let person = p["person_id"].as_str().unwrap().to_owned();
    let admin = e.admin_key();
    let (openid, unionid) = e.truth("ula", PLATFORM_MP).await;
    // Unlink the identity that brought the unionid, then erase the person.
    let del = e
        .http
        .delete(e.url(&format!("/v1/persons/{person}/identities/{PLATFORM_MP}/{openid}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let del = e.http.delete(e.url(&format!("/v1/persons/{person}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(del.status(), 204);
    let union =
        e.store().get(&shared::store::Key::new(format!("U#op_platform#{}", unionid.unwrap()), "U")).await.unwrap();
    assert!(union.is_none(), "the unionid is erased with the person: {union:?}");
    let back = token_of(&e, "ula", PLATFORM_MP).await;
    assert_eq!(back["new_person"], true);
});

both_stores!(a_unionid_left_pointing_at_a_missing_person_is_taken_over, |kind| async move {
    let e = env_with(kind, UnionIdMode::Always).await;
    let (_, unionid) = e.truth("vera", PLATFORM_MP).await;
    // As an erase that stopped half-way would leave it.
    let gone = "01890a5d-ac96-774b-bcce-b302099a8057";
    let key = shared::store::Key::new(format!("U#op_platform#{}", unionid.unwrap()), "U");
    let item = shared::store::item(&key, [("person", shared::store::Attr::S(gone.into()))]);
    e.store().write(shared::store::Write::Put { item, cond: vec![] }).await.unwrap();
    let a = token_of(&e, "vera", PLATFORM_MP).await;
    assert_eq!(a["new_person"], true);
    let owner = e.store().get(&key).await.unwrap().unwrap();
    assert_eq!(shared::store::ItemExt::s(&owner, "person"), a["person_id"].as_str());
    // And the second app joins through it.
    assert_eq!(token_of(&e, "vera", PLATFORM_MP2).await["person_id"], a["person_id"]);
});

/// A returning login answers from the login view kept on its identity; which app is the pivot
/// is part of what that view depends on.
async fn a_replaced_pivot_is_not_hidden_by_kept_login_views(kind: StoreKind) {
    const NEW_PIVOT: &str = "wx1a2b3c4d5e6f7999";
    let e = env(kind).await;
    let m = token_of(&e, "bea", MERCHANT1_MP).await;
    e.link_via_webview("bea", m["token"].as_str().unwrap(), json!({})).await.confirmed.unwrap().expect_ok();
    for _ in 0..2 {
        assert_eq!(token_of(&e, "bea", MERCHANT1_MP).await["pivot_linked"], true);
    }
    // Operators replace the pivot by an account Bea has never met.
    let admin = e.admin_key();
    let del = e.http.delete(e.url(&format!("/v1/admin/apps/{PIVOT_OA}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(del.status(), 204);
    let new_pivot = json!({"kind": "official_account", "role": "pivot_oa", "owner": "platform",
        "open_platform": "op_platform", "secret": "0123456789abcdef0123456789abcdef", "token": "newPivotToken0001",
        "encoding_aes_key": "VupIg870JYouMoGL3Ku2Hw2K6Y3iMrJ3HnusX28cLKg", "safe_mode": false});
    let put = e.http.put(e.url(&format!("/v1/admin/apps/{NEW_PIVOT}"))).bearer_auth(&admin).json(&new_pivot);
    assert_eq!(put.send().await.unwrap().status(), 201);
    // Computed afresh (userinfo), the same identity is not linked to the pivot...
    let again = token_of(&e, "bea", MERCHANT1_MP).await;
    let data = e.wx_userinfo("bea", MERCHANT1_MP).await;
    let body = json!({"encryptedData": data["encryptedData"], "iv": data["iv"]});
    let fresh = e.post("/v1/mp/userinfo", &body, again["token"].as_str()).await;
    assert_eq!(fresh.expect_ok()["pivot_linked"], false, "{}", fresh.text);
    // ...and a returning login must say so, or the mini program never opens the web-view.
    assert_eq!(
        token_of(&e, "bea", MERCHANT1_MP).await["pivot_linked"],
        false,
        "a returning login after the pivot changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_pivot_is_not_hidden_by_kept_login_views_memory() {
    a_replaced_pivot_is_not_hidden_by_kept_login_views(StoreKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_pivot_is_not_hidden_by_kept_login_views_dynamodb() {
    a_replaced_pivot_is_not_hidden_by_kept_login_views(StoreKind::Dynamo).await;
}
