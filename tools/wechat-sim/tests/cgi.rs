//! Router-level tests of base access tokens (contract §3) and parametric QR codes (§4):
//! `/cgi-bin/token`, `/cgi-bin/stable_token`, `/cgi-bin/qrcode/create`, `/cgi-bin/showqrcode`.

mod support;

use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use support::*;

async fn qr_create(app: &Router, token: &str, body: Value) -> Reply {
    post(app, &format!("/cgi-bin/qrcode/create?access_token={token}"), body).await
}

fn str_scene(scene: &str) -> Value {
    json!({"expire_seconds": 600, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}})
}

async fn stable(app: &Router, body: Value) -> Reply {
    post(app, "/cgi-bin/stable_token", body).await
}

#[tokio::test]
async fn token_answers_like_wechat_and_keeps_the_previous_token_five_minutes() {
    let sim = demo_sim(None);
    let app = sim.router();
    let secret = secret(&sim, PIVOT);
    let uri = format!("/cgi-bin/token?grant_type=client_credential&appid={PIVOT}&secret={secret}");
    let r = get(&app, &uri).await;
    assert_eq!(r.content_type, "application/json; encoding=utf-8");
    let v = r.json();
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "only access_token and expires_in: {v}");
    assert_eq!(v["expires_in"], 7200);
    let first = v["access_token"].as_str().expect("token").to_owned();
    assert!(first.len() >= 100 && first.bytes().all(|b| b.is_ascii_alphanumeric()));
    let second = access_token(&app, &sim, PIVOT).await;
    assert_ne!(first, second);

    // Both work for 5 minutes, then only the newest.
    assert!(qr_create(&app, &first, str_scene("a")).await.json()["ticket"].is_string());
    post(&app, "/sim/clock", json!({ "advance_seconds": 300 })).await;
    assert_wx_error(
        &qr_create(&app, &first, str_scene("a")).await,
        40001,
        "invalid credential, access_token is invalid or not latest",
    );
    assert!(qr_create(&app, &second, str_scene("a")).await.json()["ticket"].is_string());
    post(&app, "/sim/clock", json!({ "advance_seconds": 7200 })).await;
    assert_wx_error(&qr_create(&app, &second, str_scene("a")).await, 42001, "access_token expired");
    assert_wx_error(&post(&app, "/cgi-bin/qrcode/create", str_scene("a")).await, 41001, "access_token missing");

    // Errors.
    let bad = |q: String| {
        let app = app.clone();
        async move { get(&app, &format!("/cgi-bin/token?{q}")).await }
    };
    assert_wx_error(
        &bad(format!("grant_type=client_credential&appid=wxnope&secret={secret}")).await,
        40013,
        "invalid appid",
    );
    assert_wx_error(&bad(format!("grant_type=client_credential&appid={WEB}&secret=x")).await, 40013, "invalid appid");
    assert_wx_error(
        &bad(format!("grant_type=client_credential&appid={PIVOT}&secret=bad")).await,
        40125,
        "invalid appsecret",
    );
    assert_wx_error(
        &bad(format!("grant_type=authorization_code&appid={PIVOT}&secret={secret}")).await,
        40002,
        "invalid grant_type",
    );
    assert_eq!(get(&app, "/sim/calls").await.json()["/cgi-bin/token"], 6);
}

#[tokio::test]
async fn stable_token_is_shared_until_renewed_or_forced() {
    let sim = demo_sim(None);
    let app = sim.router();
    let body = |force: bool| json!({"grant_type": "client_credential", "appid": MP, "secret": secret(&sim, MP), "force_refresh": force});
    let a = stable(&app, body(false)).await.json();
    assert_eq!(a["expires_in"], 7200, "{a}");
    let token_a = a["access_token"].as_str().expect("token").to_owned();
    // /cgi-bin/token does not touch it.
    access_token(&app, &sim, MP).await;
    post(&app, "/sim/clock", json!({ "advance_seconds": 1000 })).await;
    let b = stable(&app, body(false)).await.json();
    assert_eq!(b["access_token"], token_a.as_str());
    let left = b["expires_in"].as_i64().expect("expires_in");
    assert!((6199..=6200).contains(&left), "{left}");
    // force_refresh: a new one, the old one dead at once.
    let c = stable(&app, body(true)).await.json();
    let token_c = c["access_token"].as_str().expect("token").to_owned();
    assert_ne!(token_c, token_a);
    assert_eq!(c["expires_in"], 7200);
    // A mini program's token is not an official account's: qrcode/create answers 48001 for a
    // valid token and 40001 for the dead one.
    assert_wx_error(
        &qr_create(&app, &token_a, str_scene("x")).await,
        40001,
        "invalid credential, access_token is invalid or not latest",
    );
    assert_wx_error(&qr_create(&app, &token_c, str_scene("x")).await, 48001, "api unauthorized");
    // Errors.
    let secret = secret(&sim, MP);
    assert_wx_error(
        &stable(&app, json!({"grant_type": "client_credential", "appid": "wxnope", "secret": secret})).await,
        40013,
        "invalid appid",
    );
    assert_wx_error(
        &stable(&app, json!({"grant_type": "client_credential", "appid": MP, "secret": "bad"})).await,
        40125,
        "invalid appsecret",
    );
    assert_wx_error(
        &stable(&app, json!({"grant_type": "x", "appid": MP, "secret": secret})).await,
        40002,
        "invalid grant_type",
    );
    let req = axum::http::Request::post("/cgi-bin/stable_token").body(axum::body::Body::from("{")).expect("request");
    assert_wx_error(&send(&app, req).await, 47001, "data format error");
    // Faults apply to it like to every WeChat path.
    post(&app, "/sim/faults", json!({ "path": "/cgi-bin/stable_token", "errcode": 45009 })).await;
    assert_wx_error(&stable(&app, body(false)).await, 45009, "reach max api daily quota limit");
    assert_eq!(stable(&app, body(false)).await.json()["access_token"], token_c.as_str());
    assert_eq!(get(&app, "/sim/calls").await.json()["/cgi-bin/stable_token"], 9);
}

#[tokio::test]
async fn qr_codes_are_created_shown_and_checked() {
    let sim = demo_sim(None);
    let app = sim.router();
    let token = access_token(&app, &sim, PIVOT).await;
    let r = qr_create(&app, &token, str_scene("scene-1")).await;
    assert_eq!(r.content_type, "application/json; encoding=utf-8");
    let v = r.json();
    assert_eq!(v["expire_seconds"], 600, "{v}");
    let url = v["url"].as_str().expect("url");
    assert!(url.starts_with("http://weixin.qq.com/q/"), "{url}");
    let ticket = v["ticket"].as_str().expect("ticket").to_owned();
    // The image: the ticket must be URL-encoded (it is base64 with + / =).
    let img = get(&app, &format!("/cgi-bin/showqrcode?ticket={}", urlencode(&ticket))).await;
    assert_eq!(img.status, StatusCode::OK);
    assert_eq!(img.content_type, "image/png");
    assert!(img.bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(get(&app, "/cgi-bin/showqrcode?ticket=nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/cgi-bin/showqrcode").await.status, StatusCode::NOT_FOUND);

    // Permanent codes have no expire_seconds; a missing one defaults to 60 s.
    let p = qr_create(
        &app,
        &token,
        json!({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "p"}}}),
    )
    .await;
    assert!(p.json().get("expire_seconds").is_none(), "{}", p.text);
    let d =
        qr_create(&app, &token, json!({"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 5}}})).await;
    assert_eq!(d.json()["expire_seconds"], 60);

    for bad in [
        json!({"expire_seconds": 2_592_001, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "x"}}}),
        json!({"expire_seconds": 60, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "x".repeat(65)}}}),
        json!({"expire_seconds": 60, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": ""}}}),
        json!({"expire_seconds": 60, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_id": 1}}}),
        json!({"expire_seconds": 60, "action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 0}}}),
        json!({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100_001}}}),
        json!({"expire_seconds": 60, "action_name": "BOGUS", "action_info": {"scene": {"scene_str": "x"}}}),
    ] {
        assert_wx_error(&qr_create(&app, &token, bad).await, 40097, "invalid args");
    }
    assert_eq!(qr_create(&app, &token, str_scene(&"é".repeat(64))).await.json()["errcode"], Value::Null);
    let m1 = access_token(&app, &sim, MP).await;
    assert_wx_error(&qr_create(&app, &m1, str_scene("x")).await, 48001, "api unauthorized");
    let calls = get(&app, "/sim/calls").await.json();
    assert_eq!(calls["/cgi-bin/showqrcode"], 3);
    assert_eq!(calls["/cgi-bin/qrcode/create"], 12);
}
