//! Official accounts, apps and websites end to end: scene-QR binding, the push endpoint (plain
//! and safe mode), signed login links, app and website login, the access-token broker.

use serde_json::{json, Value};
use wechat_sim::crypto::{msg_signature, push_signature, MsgCrypt};
use wxbridge_e2e::*;

const MERCHANT1_OA_TOKEN_FIELD: &str = "token";
const PLATFORM_APP: &str = "wx1a2b3c4d5e6f7003";
const PLATFORM_WEB: &str = "wx1a2b3c4d5e6f7004";

fn app(e: &Env, appid: &str) -> Value {
    e.registry()["apps"].as_array().unwrap().iter().find(|a| a["appid"] == appid).unwrap().clone()
}

fn site_key(e: &Env) -> String {
    e.registry()["site"]["api_key"].as_str().unwrap().to_owned()
}

async fn new_scene(e: &Env, user: &str, body: Value) -> Value {
    let mut b = body;
    b["site_user_id"] = json!(user);
    let a = e.post("/v1/qr/scenes", &b, Some(&site_key(e))).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body
}

async fn scene_status(e: &Env, scene: &str) -> Value {
    e.get(&format!("/v1/qr/scenes/{scene}"), Some(&site_key(e))).await.expect_ok().clone()
}

async fn scan(e: &Env, user: &str, ticket: &str) -> Value {
    let a = e.post(&format!("/sim/users/{user}/scan"), &json!({"ticket": ticket}), None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

both_stores!(new_and_returning_followers_bind_by_scanning, |kind| async move {
    let e = env(kind).await;
    // The pivot runs in safe mode: the scan is pushed encrypted and the reply comes back sealed.
    let sc = new_scene(&e, "site-user-1", json!({"label": "t***@example.com"})).await;
    for f in ["scene", "ticket", "qr_url", "expires_at"] {
        assert!(sc.get(f).is_some(), "{sc}");
    }
    let id = sc["scene"].as_str().unwrap();
    assert_eq!(scene_status(&e, id).await["status"], "pending");
    // A scan binds nothing yet: the reply names the label and carries a confirm link.
    let r = scan(&e, "tom", sc["ticket"].as_str().unwrap()).await;
    assert_eq!(r["event"], "subscribe", "{r}");
    let reply = r["reply"].as_str().unwrap_or("").to_owned();
    assert!(reply.contains("t***@example.com") && reply.contains(&format!("{}/v1/qr/confirm?", e.base)), "{r}");
    let st = scene_status(&e, id).await;
    assert_eq!(st["status"], "awaiting_confirmation");
    assert!(st.get("openid").is_none() && st.get("person_id").is_none(), "{st}");
    // The scanner opens it in their own WeChat: bound.
    let walk = e.webview("tom", &link_in(&reply).unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("bound"), "{}", walk.last.text);
    let st = scene_status(&e, id).await;
    let (openid, _) = e.truth("tom", PIVOT_OA).await;
    assert_eq!((st["status"].as_str(), st["openid"].as_str()), (Some("bound"), Some(openid.as_str())));
    let person = st["person_id"].as_str().unwrap().to_owned();

    // A follower scans another scene: SCAN, and the same person once confirmed.
    let sc2 = new_scene(&e, "site-user-1", json!({})).await;
    let (r2, walk) = e.scan_and_confirm("tom", sc2["ticket"].as_str().unwrap()).await;
    assert_eq!(r2["event"], "SCAN", "{r2}");
    assert_eq!(walk.result().as_deref(), Some("bound"));
    assert_eq!(scene_status(&e, sc2["scene"].as_str().unwrap()).await["person_id"], person.as_str());
    // The site is shown its own pairwise id; operators find the person by the scanner's openid.
    let admin = e.admin_key();
    let p = e.get(&format!("/v1/identities/{PIVOT_OA}/{openid}"), Some(&admin)).await;
    assert_ne!(p.expect_ok()["person_id"], person.as_str(), "a site is not shown the platform-wide id");
    e.get(&format!("/v1/persons/{person}"), Some(&admin)).await.expect_problem(404, "not_found");
    let kinds: Vec<&str> =
        p.body["identities"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"site") && kinds.contains(&"official_account"), "{}", p.text);

    // A plain-mode merchant account works the same way, for the merchant's own site.
    let b = json!({"site_user_id": "site-user-2", "appid": MERCHANT1_OA});
    let sc3 = e.post("/v1/qr/scenes", &b, Some(&e.m1_site_key())).await.body;
    let (_, walk) = e.scan_and_confirm("uma", sc3["ticket"].as_str().unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("bound"));
    let st = e.get(&format!("/v1/qr/scenes/{}", sc3["scene"].as_str().unwrap()), Some(&e.m1_site_key())).await;
    assert_eq!(st.expect_ok()["status"], "bound");
});

both_stores!(expired_scenes_bind_nothing_and_retries_bind_once, |kind| async move {
    let e = env(kind).await;
    let sc = new_scene(&e, "site-user-3", json!({"expire_seconds": 60})).await;
    e.advance_clock(61).await;
    let r = scan(&e, "vic", sc["ticket"].as_str().unwrap()).await;
    assert_eq!(r["status"], "expired", "WeChat pushes nothing for an expired QR code: {r}");
    assert_eq!(scene_status(&e, sc["scene"].as_str().unwrap()).await["status"], "expired");

    // The same push three times (WeChat's retries): one confirm link, the same reply each time.
    let sc = new_scene(&e, "site-user-4", json!({})).await;
    let first = scan(&e, "wes", sc["ticket"].as_str().unwrap()).await;
    let replay = e.post("/sim/pushes/replay", &json!({"times": 2}), None).await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    let again = replay.body["results"].as_array().unwrap();
    assert_eq!(again.len(), 2, "{}", replay.text);
    for r in again {
        assert_eq!(r["reply"].as_str(), first["reply"].as_str(), "{}", replay.text);
    }
    assert_eq!(scene_status(&e, sc["scene"].as_str().unwrap()).await["status"], "awaiting_confirmation");
    let walk = e.webview("wes", &link_in(first["reply"].as_str().unwrap()).unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("bound"));
    let st = scene_status(&e, sc["scene"].as_str().unwrap()).await;
    assert_eq!(st["status"], "bound");
    let admin = e.admin_key();
    let (wes, _) = e.truth("wes", PIVOT_OA).await;
    assert_eq!(st["openid"], wes.as_str());
    let p = e.get(&format!("/v1/identities/{PIVOT_OA}/{wes}"), Some(&admin)).await;
    assert_eq!(p.expect_ok()["identities"].as_array().unwrap().len(), 2, "{}", p.text);
    // Unsubscribing is recorded on the identity, and links nothing.
    let u = e.post("/sim/users/wes/unsubscribe", &json!({"appid": PIVOT_OA}), None).await;
    assert_eq!(u.status, 200, "{}", u.text);
    let ident = e
        .store()
        .get(&shared::items::identity::key(
            &shared::ids::AppId::parse(PIVOT_OA).unwrap(),
            &shared::ids::OpenId::parse(&wes).unwrap(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(ident.contains_key("unsubscribed_at"), "{ident:?}");

    // Unknown and foreign scenes.
    e.get("/v1/qr/scenes/0123456789abcdef0123456789abcdef", Some(&site_key(&e))).await.expect_problem(404, "not_found");
    e.get("/v1/qr/scenes/x", Some(&site_key(&e))).await.expect_problem(404, "not_found");
    e.get(&format!("/v1/qr/scenes/{}", sc["scene"].as_str().unwrap()), Some(&e.m1_site_key()))
        .await
        .expect_problem(404, "not_found");
    e.get(&format!("/v1/qr/scenes/{}", sc["scene"].as_str().unwrap()), None).await.expect_problem(401, "invalid_token");
    e.post("/v1/qr/scenes", &json!({"site_user_id": "x"}), Some("not-a-key"))
        .await
        .expect_problem(401, "invalid_token");
    e.post("/v1/qr/scenes", &json!({"site_user_id": "a b"}), Some(&site_key(&e)))
        .await
        .expect_problem(400, "invalid_request");
    e.post("/v1/qr/scenes", &json!({"site_user_id": "x", "label": "a\u{7}b"}), Some(&site_key(&e)))
        .await
        .expect_problem(400, "invalid_request");
    e.post("/v1/qr/scenes", &json!({"site_user_id": "x", "label": "x".repeat(65)}), Some(&site_key(&e)))
        .await
        .expect_problem(400, "invalid_request");
    // A label is plain text in the official account's reply: no link, no bidi tricks, no brackets.
    for label in ["see https://evil.example", "www.evil.example", "a\u{202E}moc.live", "」 click here", "a\u{200B}b"] {
        e.post("/v1/qr/scenes", &json!({"site_user_id": "x", "label": label}), Some(&site_key(&e)))
            .await
            .expect_problem(400, "invalid_request");
    }
    e.post("/v1/qr/scenes", &json!({"site_user_id": "x", "appid": PLATFORM_MP}), Some(&site_key(&e)))
        .await
        .expect_problem(404, "unknown_app");
    e.post("/v1/qr/scenes", &json!({"site_user_id": "x", "expire_seconds": 999999999}), Some(&site_key(&e)))
        .await
        .expect_problem(400, "invalid_request");
});

both_stores!(menu_login_links_bind_once, |kind| async move {
    let e = env(kind).await;
    let a = e.post("/sim/users/xena/follow", &json!({"appid": PIVOT_OA}), None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let link = e.login_link("xena", PIVOT_OA).await;
    assert!(link.starts_with(&format!("{}/v1/site/link?", e.base)), "the link opens on the bridge: {link}");
    let q: std::collections::HashMap<String, String> =
        reqwest::Url::parse(&link).unwrap().query_pairs().into_owned().collect();
    let (openid, _) = e.truth("xena", PIVOT_OA).await;
    assert_eq!((q["openid"].as_str(), q["site"].as_str()), (openid.as_str(), "demo-site"));
    // A forged openid (someone else's) or signature: refused before WeChat is asked.
    let forged = link.replace(&openid, "oSomeoneElse000000000000000");
    e.browse("xena", &forged).await.2.expect_problem(403, "signature_invalid");
    let bad = link.replace(&format!("signature={}", q["signature"]), "signature=00");
    e.browse("xena", &bad).await.2.expect_problem(403, "signature_invalid");
    // Opened by the follower: the site gets a one-time code on its login page.
    let (walk, code) = e.open_login_link("xena", &link).await;
    let landed = walk.hops.last().unwrap();
    assert!(
        landed.starts_with(&format!("{}/site/login?wxbridge_code=", e.base)),
        "the site's login page: {:?}",
        walk.hops
    );
    let code = code.unwrap();
    let body = json!({"code": code, "site_user_id": "site-user-5"});
    let sk = site_key(&e);
    e.post("/v1/site/bind", &body, None).await.expect_problem(401, "invalid_token");
    let ok = e.post("/v1/site/bind", &body, Some(&sk)).await;
    assert_eq!(ok.expect_ok()["linked"].as_array().unwrap().len(), 2, "{}", ok.text);
    e.post("/v1/site/bind", &body, Some(&sk)).await.expect_problem(400, "link_used");
    // The link itself is spent too.
    assert_eq!(e.open_login_link("xena", &link).await.0.last.code(), "link_used");
    // An old link.
    let link = e.login_link("xena", PIVOT_OA).await;
    e.advance_clock(601).await;
    e.browse("xena", &link).await.2.expect_problem(400, "link_expired");
});

both_stores!(app_and_website_logins_join_the_mini_program_person, |kind| async move {
    let e = env(kind).await;
    // The person is known to the platform mini program with its unionid.
    let mp = e.login("yara", PLATFORM_MP).await.expect_ok().clone();
    let data = e.wx_userinfo("yara", PLATFORM_MP).await;
    let u = e
        .post(
            "/v1/mp/userinfo",
            &json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}),
            mp["token"].as_str(),
        )
        .await;
    u.expect_ok();
    // The mobile app.
    let code = e.post("/sim/users/yara/app-login", &json!({"appid": PLATFORM_APP}), None).await;
    let code = code.body["code"].as_str().unwrap_or_else(|| panic!("{}", code.text)).to_owned();
    let a = e.post("/v1/open/login", &json!({"appid": PLATFORM_APP, "code": code}), None).await;
    assert_eq!(a.expect_ok()["person_id"], mp["person_id"]);
    e.post("/v1/open/login", &json!({"appid": PLATFORM_APP, "code": code}), None)
        .await
        .expect_problem(400, "wechat_code_used");
    // The website's QR login (the user scans the open platform's QR page).
    let redirect = "http://127.0.0.1/web/callback";
    let url = format!(
        "{}/connect/qrconnect?appid={PLATFORM_WEB}&redirect_uri={}&response_type=code&scope=snsapi_login&state=s1",
        e.base,
        urlencode(redirect)
    );
    let (status, loc, page) = e.browse("yara", &url).await;
    assert_eq!(status, 302, "{}", page.text);
    let code = loc.unwrap().split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let w = e.post("/v1/open/login", &json!({"appid": PLATFORM_WEB, "code": code}), None).await;
    assert_eq!(w.expect_ok()["person_id"], mp["person_id"]);
    assert_eq!(w.body["linked"].as_array().unwrap().len(), 3, "{}", w.text);
    // The pivot's H5 login outside mini programs (snsapi_userinfo): same person, via the unionid.
    let redirect = "http://127.0.0.1/h5/callback";
    let url = format!("{}/connect/oauth2/authorize?appid={PIVOT_OA}&redirect_uri={}&response_type=code&scope=snsapi_userinfo&state=h5", e.base, urlencode(redirect));
    let (status, loc, page) = e.browse("yara", &url).await;
    assert_eq!(status, 302, "{}", page.text);
    let code = loc.unwrap().split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let h5 = e.post("/v1/open/login", &json!({"appid": PIVOT_OA, "code": code}), None).await;
    assert_eq!(h5.expect_ok()["person_id"], mp["person_id"]);
    assert_eq!(h5.body["pivot_linked"], true);
    // A mini program is not an open-login app.
    e.post("/v1/open/login", &json!({"appid": PLATFORM_MP, "code": "x"}), None)
        .await
        .expect_problem(404, "unknown_app");
});

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

both_stores!(one_token_fetch_for_many_qr_codes, |kind| async move {
    let e = std::sync::Arc::new(env(kind).await);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let e = e.clone();
            tokio::spawn(async move { new_scene(&e, &format!("site-user-c{i}"), json!({})).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(e.calls("/cgi-bin/stable_token").await, 1, "one token fetch for every QR code");
    assert_eq!(e.calls("/cgi-bin/token").await, 0);
    assert_eq!(e.calls("/cgi-bin/qrcode/create").await, 20);
    // WeChat errors on qrcode/create and on the token endpoint.
    e.fault("/cgi-bin/qrcode/create", json!({"errcode": 45009, "times": 1})).await;
    e.post("/v1/qr/scenes", &json!({"site_user_id": "x"}), Some(&site_key(&e)))
        .await
        .expect_problem(429, "wechat_rate_limited");
    // A token WeChat no longer accepts: refreshed once, then it works.
    e.fault("/cgi-bin/qrcode/create", json!({"errcode": 40001, "times": 1})).await;
    let a = e.post("/v1/qr/scenes", &json!({"site_user_id": "x"}), Some(&site_key(&e))).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(e.calls("/cgi-bin/stable_token").await, 2);
    // The token endpoint down: 503, nothing stored.
    e.advance_clock(7200).await;
    e.fault("/cgi-bin/stable_token", json!({"errcode": -1, "times": 3})).await;
    e.post("/v1/qr/scenes", &json!({"site_user_id": "x"}), Some(&site_key(&e)))
        .await
        .expect_problem(503, "wechat_unavailable");
});

// Pushes crafted by hand: what an attacker (or a broken proxy) could send.
both_stores!(hostile_pushes_are_refused, |kind| async move {
    let e = env(kind).await;
    let m1 = app(&e, MERCHANT1_OA);
    let token = m1[MERCHANT1_OA_TOKEN_FIELD].as_str().unwrap().to_owned();
    let now = e.get("/sim/clock", None).await.body["now_millis"].as_i64().unwrap() / 1000;
    let ts_owned = now.to_string();
    let ts = ts_owned.as_str();
    let nonce = "12345";
    let sig = push_signature(&token, ts, nonce);
    let plain_url = |sig: &str| format!("/v1/wechat/push/{MERCHANT1_OA}?signature={sig}&timestamp={ts}&nonce={nonce}");
    let event = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oAttacker0000000000000000000]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[0123456789abcdef0123456789abcdef]]></EventKey></xml>";
    let post = |path: String, body: String| {
        let e = &e;
        async move {
            let r = e.http.post(e.url(&path)).header("content-type", "text/xml").body(body).send().await.unwrap();
            Env::answer(r).await
        }
    };
    // A correctly signed push from long ago: a replay, refused.
    let old = push_signature(&token, "1700000000", nonce);
    post(format!("/v1/wechat/push/{MERCHANT1_OA}?signature={old}&timestamp=1700000000&nonce={nonce}"), event.into())
        .await
        .expect_problem(403, "signature_invalid");
    // URL verification.
    let v = e.get(&format!("{}&echostr=hello", plain_url(&sig)), None).await;
    assert_eq!((v.status, v.text.as_str()), (200, "hello"));
    e.get(&format!("{}&echostr=hello", plain_url("bad")), None).await.expect_problem(403, "signature_invalid");
    // Wrong or missing signatures.
    post(plain_url("0000"), event.into()).await.expect_problem(403, "signature_invalid");
    post(format!("/v1/wechat/push/{MERCHANT1_OA}"), event.into()).await.expect_problem(403, "signature_invalid");
    // A well-signed event for an unknown scene: success-or-reply, nothing bound.
    let ok = post(plain_url(&sig), event.into()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // Hostile XML.
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><ToUserName>&x;</ToUserName></xml>";
    post(plain_url(&sig), xxe.into()).await.expect_problem(400, "invalid_request");
    post(plain_url(&sig), "<xml><ToUserName>".into()).await.expect_problem(400, "invalid_request");
    post(plain_url(&sig), "not xml at all".into()).await.expect_problem(400, "invalid_request");
    post(plain_url(&sig), format!("<xml><Content>{}</Content></xml>", "a".repeat(70 * 1024)))
        .await
        .expect_problem(413, "payload_too_large");
    // Unknown account, and a mini program's appid.
    post(format!("/v1/wechat/push/wx0000000000000000?signature={sig}&timestamp={ts}&nonce={nonce}"), event.into())
        .await
        .expect_problem(404, "unknown_app");
    post(format!("/v1/wechat/push/{PLATFORM_MP}?signature={sig}&timestamp={ts}&nonce={nonce}"), event.into())
        .await
        .expect_problem(404, "unknown_app");

    // Safe mode (the pivot): a plaintext push is refused even when its plain signature holds.
    let pivot = app(&e, PIVOT_OA);
    let ptoken = pivot["token"].as_str().unwrap().to_owned();
    let psig = push_signature(&ptoken, ts, nonce);
    post(format!("/v1/wechat/push/{PIVOT_OA}?signature={psig}&timestamp={ts}&nonce={nonce}"), event.into())
        .await
        .expect_problem(403, "signature_invalid");
    let crypt = MsgCrypt::new(pivot["encoding_aes_key"].as_str().unwrap(), PIVOT_OA).unwrap();
    let enc = crypt.encrypt(event);
    let body = format!("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>");
    let msig = msg_signature(&ptoken, ts, nonce, &enc);
    let safe = |m: &str| {
        format!("/v1/wechat/push/{PIVOT_OA}?signature={psig}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={m}")
    };
    post(safe("0000"), body.clone()).await.expect_problem(403, "signature_invalid");
    post(
        format!("/v1/wechat/push/{PIVOT_OA}?signature={psig}&timestamp={ts}&nonce={nonce}&encrypt_type=aes"),
        body.clone(),
    )
    .await
    .expect_problem(403, "signature_invalid");
    // Encrypted for another account (wrong appid inside): refused.
    let other = MsgCrypt::new(pivot["encoding_aes_key"].as_str().unwrap(), MERCHANT1_OA).unwrap().encrypt(event);
    let obody = format!("<xml><Encrypt><![CDATA[{other}]]></Encrypt></xml>");
    post(safe(&msg_signature(&ptoken, ts, nonce, &other)), obody).await.expect_problem(400, "invalid_request");
    let good = post(safe(&msig), body).await;
    assert_eq!(good.status, 200, "{}", good.text);
});
