//! Mini-program login end to end: simulated user → mp-login → store → simulator.

use serde_json::json;
use shared::ids::{AppId, OpenId};
use shared::items::{identity, stash};
use shared::store::ItemExt;
use std::time::Instant;
use wxbridge_e2e::*;

async fn identity_exists(e: &Env, appid: &str, openid: &str) -> bool {
    let key = identity::key(&AppId::parse(appid).unwrap(), &OpenId::parse(openid).unwrap());
    e.store().get(&key).await.unwrap().is_some()
}

both_stores!(first_then_returning_login, |kind| async move {
    let e = env(kind).await;
    let first = e.login("alice", PLATFORM_MP).await;
    let a = first.expect_ok();
    for field in
        ["token", "token_type", "expires_in", "person_id", "openid", "unionid", "new_person", "pivot_linked", "linked"]
    {
        assert!(a.get(field).is_some(), "missing {field}: {}", first.text);
    }
    let (openid, _) = e.truth("alice", PLATFORM_MP).await;
    assert_eq!(a["openid"], openid.as_str());
    assert_eq!(a["new_person"], true);
    assert_eq!(a["pivot_linked"], false);
    assert_eq!(a["unionid"], serde_json::Value::Null, "conditional mode: no unionid before consent");
    assert_eq!(a["linked"], json!([{"appid": PLATFORM_MP, "kind": "mini_program", "owner": "platform"}]));
    assert!(!first.text.contains("session_key"));

    let again = e.login("alice", PLATFORM_MP).await;
    let b = again.expect_ok();
    assert_eq!(b["person_id"], a["person_id"]);
    assert_eq!(b["new_person"], false);

    let me = e.get("/v1/me", b["token"].as_str()).await;
    assert_eq!(me.expect_ok()["person_id"], a["person_id"]);

    let bob = e.login("bob", PLATFORM_MP).await;
    assert_ne!(bob.expect_ok()["person_id"], a["person_id"], "two users are two persons");
});

both_stores!(two_step_userinfo_binds_the_unionid_and_merges, |kind| async move {
    let e = env(kind).await;
    let one = e.login("carol", PLATFORM_MP).await.expect_ok().clone();
    let two = e.login("carol", PLATFORM_MP2).await.expect_ok().clone();
    assert_ne!(one["person_id"], two["person_id"], "no evidence yet that they are one person");

    // Userinfo in the first app names the unionid.
    let data = e.wx_userinfo("carol", PLATFORM_MP).await;
    let u1 = e
        .post(
            "/v1/mp/userinfo",
            &json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}),
            one["token"].as_str(),
        )
        .await;
    let (_, truth_union) = e.truth("carol", PLATFORM_MP).await;
    assert_eq!(u1.expect_ok()["unionid"], truth_union.clone().unwrap().as_str());
    assert_eq!(u1.body["person_id"], one["person_id"]);

    // The same unionid from the second app: the two persons become one.
    let data2 = e.wx_userinfo("carol", PLATFORM_MP2).await;
    let u2 = e
        .post(
            "/v1/mp/userinfo",
            &json!({"encryptedData": data2["encryptedData"], "iv": data2["iv"]}),
            two["token"].as_str(),
        )
        .await;
    let merged = u2.expect_ok();
    assert_eq!(merged["unionid"], truth_union.unwrap().as_str());
    let linked = merged["linked"].as_array().unwrap();
    assert_eq!(linked.len(), 2, "{}", u2.text);
    let survivor = merged["person_id"].clone();
    assert!(survivor == one["person_id"] || survivor == two["person_id"]);

    // Old tokens of either person resolve to the survivor; logins land on it.
    for t in [&one["token"], &two["token"]] {
        assert_eq!(e.get("/v1/me", t.as_str()).await.expect_ok()["person_id"], survivor);
    }
    for app in [PLATFORM_MP, PLATFORM_MP2] {
        let l = e.login("carol", app).await;
        assert_eq!(l.expect_ok()["person_id"], survivor);
        assert!(l.body["unionid"].is_string(), "consent given: jscode2session now returns the unionid");
    }
});

both_stores!(unionid_first_joins_a_new_app_to_the_known_person, |kind| async move {
    let e = env_with(kind, UnionIdMode::Always).await;
    let a = e.login("dave", PLATFORM_MP).await.expect_ok().clone();
    assert!(a["unionid"].is_string());
    let b = e.login("dave", PLATFORM_MP2).await;
    let b = b.expect_ok();
    assert_eq!(b["person_id"], a["person_id"]);
    assert_eq!(b["new_person"], false);
    assert_eq!(b["linked"].as_array().unwrap().len(), 2);
    // A merchant's app is another open platform: no unionid in common, another person (as
    // operators see it: the merchant's app is shown a pairwise id anyway).
    let m = e.login("dave", MERCHANT1_MP).await;
    let m_openid = m.expect_ok()["openid"].as_str().unwrap();
    assert_ne!(e.person_of(MERCHANT1_MP, m_openid).await, a["person_id"].as_str().unwrap());
    assert_eq!(e.person_of(PLATFORM_MP2, b["openid"].as_str().unwrap()).await, a["person_id"].as_str().unwrap());
});

both_stores!(malformed_requests_change_nothing, |kind| async move {
    let e = env(kind).await;
    e.post_raw("/v1/mp/login", b"{\"appid\":".to_vec(), None).await.expect_problem(400, "invalid_request");
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP}), None).await.expect_problem(400, "invalid_request");
    e.post("/v1/mp/login", &json!({"code": "x"}), None).await.expect_problem(400, "invalid_request");
    e.post("/v1/mp/login", &json!({"appid": "wx/../../etc", "code": "x"}), None)
        .await
        .expect_problem(400, "invalid_request");
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": 42}), None)
        .await
        .expect_problem(400, "invalid_request");
    e.post_raw("/v1/mp/login", vec![b' '; 70 * 1024], None).await.expect_problem(413, "payload_too_large");
    e.post_raw("/v1/mp/login", vec![b' '; 2 * 1024 * 1024], None).await.expect_problem(413, "payload_too_large");
    e.post("/v1/mp/login", &json!({"appid": "wx0000000000000000", "code": "x"}), None)
        .await
        .expect_problem(404, "unknown_app");
    let code = e.wx_login("erin", PLATFORM_MP).await;
    e.post("/v1/mp/login", &json!({"appid": PIVOT_OA, "code": code}), None).await.expect_problem(404, "unknown_app");
    assert_eq!(e.calls("/sns/jscode2session").await, 0, "nothing reached WeChat");
    e.get("/v1/mp/login", None).await.expect_problem(405, "method_not_allowed");
    let put = e.http.put(e.url("/v1/me")).send().await.unwrap();
    assert_eq!((put.status().as_u16(), put.headers()["allow"].to_str().unwrap()), (405, "GET,HEAD"));
    // An array in place of the object is not read by position.
    let code = e.wx_login("erin", PLATFORM_MP).await;
    e.post("/v1/mp/login", &json!([PLATFORM_MP, code]), None).await.expect_problem(400, "invalid_request");
    e.get("/v1/nothing", None).await.expect_problem(404, "not_found");
    // The code was never spent: it still logs in.
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None).await.expect_ok();
});

both_stores!(wechat_code_errors_map_to_the_contract, |kind| async move {
    let e = env(kind).await;
    let (openid, _) = e.truth("frank", PLATFORM_MP).await;
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": "bogus"}), None)
        .await
        .expect_problem(400, "wechat_code_invalid");
    // A code of another app is invalid here.
    let other = e.wx_login("frank", PLATFORM_MP2).await;
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": other}), None)
        .await
        .expect_problem(400, "wechat_code_invalid");
    // An expired code (older than 5 minutes).
    let old = e.wx_login("frank", PLATFORM_MP).await;
    e.advance_clock(301).await;
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": old}), None)
        .await
        .expect_problem(400, "wechat_code_invalid");
    assert!(!identity_exists(&e, PLATFORM_MP, &openid).await, "refused logins create nothing");
    // Rate limit.
    let code = e.wx_login("frank", PLATFORM_MP).await;
    e.fault("/sns/jscode2session", json!({"errcode": 45011, "times": 1})).await;
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None)
        .await
        .expect_problem(429, "wechat_rate_limited");
    // A blocked user.
    e.fault("/sns/jscode2session", json!({"errcode": 40226, "times": 1})).await;
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None)
        .await
        .expect_problem(403, "wechat_user_blocked");
    assert!(!identity_exists(&e, PLATFORM_MP, &openid).await);
    // The code survived the faults; used once it is spent.
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None).await.expect_ok();
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None)
        .await
        .expect_problem(400, "wechat_code_used");
});

both_stores!(wechat_busy_is_retried_then_reported_in_bounded_time, |kind| async move {
    let e = env(kind).await;
    // -1 once: retried away.
    let code = e.wx_login("gina", PLATFORM_MP).await;
    e.fault("/sns/jscode2session", json!({"errcode": -1, "times": 1})).await;
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None).await.expect_ok();
    assert_eq!(e.calls("/sns/jscode2session").await, 2);

    // -1 persistently: 503, quickly, after a bounded number of attempts.
    let code = e.wx_login("hank", PLATFORM_MP).await;
    e.fault("/sns/jscode2session", json!({"errcode": -1, "times": 100})).await;
    let started = Instant::now();
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None)
        .await
        .expect_problem(503, "wechat_unavailable");
    assert!(started.elapsed().as_secs() < 10);
    assert_eq!(e.calls("/sns/jscode2session").await, 2 + 3);
    let cleared = e.http.delete(e.url("/sim/faults")).send().await.unwrap();
    assert!(cleared.status().is_success());

    // Timeouts and 5xx: retried, then 503.
    e.fault("/sns/jscode2session", json!({"delay_ms": 1500, "times": 3})).await;
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None)
        .await
        .expect_problem(503, "wechat_unavailable");
    e.fault("/sns/jscode2session", json!({"http_status": 502, "times": 3})).await;
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None)
        .await
        .expect_problem(503, "wechat_unavailable");
    let (openid, _) = e.truth("hank", PLATFORM_MP).await;
    assert!(!identity_exists(&e, PLATFORM_MP, &openid).await);
    // And the code still works once WeChat recovers.
    e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None).await.expect_ok();
});

both_stores!(bad_tokens_are_refused, |kind| async move {
    let e = env(kind).await;
    let a = e.login("ivy", PLATFORM_MP).await.expect_ok().clone();
    let token = a["token"].as_str().unwrap();
    e.get("/v1/me", None).await.expect_problem(401, "invalid_token");
    e.get("/v1/me", Some("not.a.jwt")).await.expect_problem(401, "invalid_token");
    // Forged: same claims, another key.
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[2] = "c2lnbmF0dXJlLW9mLWFub3RoZXIta2V5";
    e.get("/v1/me", Some(&parts.join("."))).await.expect_problem(401, "invalid_token");
    // alg=none.
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", token.split('.').nth(1).unwrap());
    e.get("/v1/me", Some(&none)).await.expect_problem(401, "invalid_token");
    let data = e.wx_userinfo("ivy", PLATFORM_MP).await;
    e.post("/v1/mp/userinfo", &json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}), Some("x"))
        .await
        .expect_problem(401, "invalid_token");
    e.get("/v1/me", Some(token)).await.expect_ok();
    // Expired.
    e.advance_clock(a["expires_in"].as_i64().unwrap() + 1).await;
    e.get("/v1/me", Some(token)).await.expect_problem(401, "invalid_token");
});

both_stores!(hostile_encrypted_data_is_refused_and_changes_nothing, |kind| async move {
    let e = env(kind).await;
    let a = e.login("jack", PLATFORM_MP).await.expect_ok().clone();
    let token = a["token"].as_str();
    let (openid, _) = e.truth("jack", PLATFORM_MP).await;
    let data = e.wx_userinfo("jack", PLATFORM_MP).await;
    let unchanged = |e: &Env| {
        let key = identity::key(&AppId::parse(PLATFORM_MP).unwrap(), &OpenId::parse(&openid).unwrap());
        let store = e.store().clone();
        async move { store.get(&key).await.unwrap().unwrap().s("unionid").is_none() }
    };

    // Tampered ciphertext.
    let mut enc = data["encryptedData"].as_str().unwrap().to_owned();
    let flip = if enc.starts_with('A') { "B" } else { "A" };
    enc.replace_range(0..1, flip);
    e.post("/v1/mp/userinfo", &json!({"encryptedData": enc, "iv": data["iv"]}), token)
        .await
        .expect_problem(400, "decrypt_failed");
    e.post("/v1/mp/userinfo", &json!({"encryptedData": "%%%", "iv": data["iv"]}), token)
        .await
        .expect_problem(400, "decrypt_failed");
    e.post("/v1/mp/userinfo", &json!({"encryptedData": data["encryptedData"], "iv": "AAAA"}), token)
        .await
        .expect_problem(400, "decrypt_failed");
    e.post("/v1/mp/userinfo", &json!({"iv": data["iv"]}), token).await.expect_problem(400, "invalid_request");

    // Data sealed with this session but made for another app (watermark) or another user. The
    // session_key is the simulator's (what jscode2session gave the bridge): the bridge keeps it
    // sealed in the bearer token, and writes no stash item for it.
    let session_key = e.stack.sim.session_key("jack", PLATFORM_MP).expect("a session key");
    let stash = e
        .store()
        .get(&stash::key(&AppId::parse(PLATFORM_MP).unwrap(), &OpenId::parse(&openid).unwrap()))
        .await
        .unwrap();
    assert!(stash.is_none(), "no stash item: {stash:?}");
    assert!(!a.to_string().contains(&session_key), "session_key never reaches a response");
    let foreign = json!({"openId": openid, "unionId": "oForeignUnion0000000000000000", "watermark": {"appid": PLATFORM_MP2, "timestamp": 1}});
    let (enc, iv) = wxa_encrypt(&session_key, foreign.to_string().as_bytes(), [7u8; 16]);
    e.post("/v1/mp/userinfo", &json!({"encryptedData": enc, "iv": iv}), token)
        .await
        .expect_problem(400, "watermark_mismatch");
    let other_user = json!({"openId": "oSomeoneElse", "unionId": "oForeignUnion0000000000000000", "watermark": {"appid": PLATFORM_MP, "timestamp": 1}});
    let (enc, iv) = wxa_encrypt(&session_key, other_user.to_string().as_bytes(), [7u8; 16]);
    e.post("/v1/mp/userinfo", &json!({"encryptedData": enc, "iv": iv}), token)
        .await
        .expect_problem(400, "watermark_mismatch");
    assert!(unchanged(&e).await, "no unionid was attached");

    // Data from another app's session does not open with this one.
    e.login("jack", PLATFORM_MP2).await.expect_ok();
    let other_app = e.wx_userinfo("jack", PLATFORM_MP2).await;
    e.post("/v1/mp/userinfo", &json!({"encryptedData": other_app["encryptedData"], "iv": other_app["iv"]}), token)
        .await
        .expect_problem(400, "decrypt_failed");
    assert!(unchanged(&e).await);
});

both_stores!(stale_and_expired_sessions_are_refused, |kind| async move {
    // WeChat never discloses the unionid at login here, so every login stashes its session.
    let e = env_with(kind, UnionIdMode::Never).await;
    let a = e.login("kate", PLATFORM_MP).await.expect_ok().clone();
    let old = e.wx_userinfo("kate", PLATFORM_MP).await;
    // A new wx.login replaces the session key: data sealed with the old one is stale.
    let b = e.login("kate", PLATFORM_MP).await.expect_ok().clone();
    e.post("/v1/mp/userinfo", &json!({"encryptedData": old["encryptedData"], "iv": old["iv"]}), b["token"].as_str())
        .await
        .expect_problem(400, "decrypt_failed");
    // The sealed session_key outlives neither its TTL…
    let fresh = e.wx_userinfo("kate", PLATFORM_MP).await;
    e.advance_clock(601).await;
    e.post(
        "/v1/mp/userinfo",
        &json!({"encryptedData": fresh["encryptedData"], "iv": fresh["iv"]}),
        b["token"].as_str(),
    )
    .await
    .expect_problem(400, "ticket_invalid");
    let _ = a;
});

both_stores!(secrets_never_reach_a_response, |kind| async move {
    let e = env(kind).await;
    let reg: serde_json::Value = serde_json::from_str(&test_registry()).unwrap();
    let secret = reg["apps"][0]["secret"].as_str().unwrap().to_owned();
    let mut seen = String::new();
    let a = e.login("liam", PLATFORM_MP).await;
    seen += &a.text;
    let data = e.wx_userinfo("liam", PLATFORM_MP).await;
    let token = a.body["token"].as_str();
    seen += &e
        .post("/v1/mp/userinfo", &json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}), token)
        .await
        .text;
    seen += &e.get("/v1/me", token).await.text;
    e.fault("/sns/jscode2session", json!({"errcode": 40125, "times": 1})).await;
    let failed = e.login("liam", PLATFORM_MP).await;
    failed.expect_problem(502, "wechat_error");
    seen += &failed.text;
    assert!(!seen.contains(&secret));
    assert!(!seen.contains("session_key"));
    // The JWT payload carries ids only.
    let payload = token.unwrap().split('.').nth(1).unwrap();
    let claims =
        String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap())
            .unwrap();
    assert!(!claims.contains("session") && !claims.contains(&secret), "{claims}");
});

both_stores!(tokens_verify_against_the_published_jwks, |kind| async move {
    let e = env(kind).await;
    let a = e.login("zed", PLATFORM_MP).await.expect_ok().clone();
    let token = a["token"].as_str().unwrap();
    let conf = e.get("/.well-known/openid-configuration", None).await.expect_ok().clone();
    assert_eq!(conf["issuer"], e.base.as_str());
    let jwks_path = conf["jwks_uri"].as_str().unwrap().replace(&e.base, "");
    let jwks = e.get(&jwks_path, None).await.expect_ok().clone();
    // What API Gateway's JWT authorizer does: find the key by kid, check RS256, iss, aud, exp.
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"].as_str() == header.kid.as_deref()).unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[e.base.as_str()]);
    v.set_audience(&["wxbridge"]);
    let claims =
        jsonwebtoken::decode::<serde_json::Value>(token, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &v)
            .unwrap()
            .claims;
    assert_eq!(claims["sub"], a["person_id"]);
    assert_eq!(claims["appid"], PLATFORM_MP);
    assert!(jwks.to_string().find("\"d\"").is_none(), "no private key material");
});
