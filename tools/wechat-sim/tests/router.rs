//! Router-level tests: the simulator as an HTTP service, driven with `tower::ServiceExt::oneshot`.

use std::path::Path;
use std::sync::Arc;

use aes::Aes128;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use tower::ServiceExt;
use wechat_sim::{Registry, Sim, SimConfig};

const MP: &str = "wx1a2b3c4d5e6f7001";
const MP_SECRET: &str = "a382c32af48e4cf5ee604205b5c29595";
const OA: &str = "wx1a2b3c4d5e6f7002";

struct Reply {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

fn demo_sim() -> Arc<Sim> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo-apps.json");
    Sim::new(SimConfig::new(Registry::from_file(path).expect("demo registry")))
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let content_type = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    Reply { status, content_type, text: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn get(app: &Router, uri: &str) -> Reply {
    let req = Request::get(uri).body(Body::empty()).expect("request");
    send(app, req).await
}

async fn call(app: &Router, method: Method, uri: &str, body: Value) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    send(app, req).await
}

async fn post(app: &Router, uri: &str, body: Value) -> Reply {
    call(app, Method::POST, uri, body).await
}

async fn login(app: &Router, user: &str, appid: &str) -> String {
    let r = post(app, &format!("/sim/users/{user}/login"), json!({ "appid": appid })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = r.json()["code"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 32);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
    code
}

fn c2s_uri(appid: &str, secret: &str, code: &str) -> String {
    format!("/sns/jscode2session?appid={appid}&secret={secret}&js_code={code}&grant_type=authorization_code")
}

async fn exchange(app: &Router, code: &str) -> Reply {
    get(app, &c2s_uri(MP, MP_SECRET, code)).await
}

/// Asserts a WeChat error answer: HTTP 200, WeChat's content type, errcode and `errmsg, rid: …`.
fn assert_wx_error(r: &Reply, errcode: i64, errmsg: &str) {
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/json; encoding=utf-8");
    let v = r.json();
    assert_eq!(v["errcode"], errcode, "{}", r.text);
    let msg = v["errmsg"].as_str().expect("errmsg");
    let rid = msg
        .strip_prefix(&format!("{errmsg}, rid: "))
        .unwrap_or_else(|| panic!("errmsg {msg:?} does not start with {errmsg:?}"));
    let parts: Vec<&str> = rid.split('-').collect();
    assert_eq!(parts.len(), 3, "{rid}");
    assert!(parts.iter().all(|p| p.len() == 8 && p.bytes().all(|b| b.is_ascii_hexdigit())));
}

async fn identity(app: &Router, user: &str, appid: &str) -> Value {
    let r = get(app, &format!("/sim/users/{user}/identity?appid={appid}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

#[tokio::test]
async fn login_then_jscode2session_succeeds() {
    let app = demo_sim().router();
    let code = login(&app, "alice", MP).await;
    let r = exchange(&app, &code).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/json; encoding=utf-8");
    let v = r.json();
    assert!(v.get("errcode").is_none(), "{}", r.text);
    let truth = identity(&app, "alice", MP).await;
    assert_eq!(v["openid"], truth["openid"]);
    let openid = v["openid"].as_str().expect("openid");
    assert_eq!(openid.len(), 28);
    assert!(openid.starts_with('o'));
    let key = STANDARD.decode(v["session_key"].as_str().expect("session_key")).expect("base64");
    assert_eq!(key.len(), 16);
    // Conditional mode, nothing authorized yet: no unionid.
    assert!(v.get("unionid").is_none(), "{}", r.text);
    // Another user, another openid; the same user in another app, another openid.
    assert_ne!(identity(&app, "bob", MP).await["openid"], truth["openid"]);
    assert_ne!(identity(&app, "alice", OA).await["openid"], truth["openid"]);
    assert_eq!(identity(&app, "alice", OA).await["unionid"], truth["unionid"]);
}

#[tokio::test]
async fn reused_code_is_40163_and_bogus_code_40029() {
    let app = demo_sim().router();
    let code = login(&app, "alice", MP).await;
    assert_eq!(exchange(&app, &code).await.status, StatusCode::OK);
    assert_wx_error(&exchange(&app, &code).await, 40163, "code been used");
    assert_wx_error(&exchange(&app, "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d").await, 40029, "invalid code");
}

#[tokio::test]
async fn parameter_errors() {
    let app = demo_sim().router();
    let code = login(&app, "alice", MP).await;
    assert_wx_error(&get(&app, &c2s_uri(OA, "x", &code)).await, 40013, "invalid appid");
    assert_wx_error(&get(&app, &c2s_uri("wxnope", MP_SECRET, &code)).await, 40013, "invalid appid");
    assert_wx_error(&get(&app, &c2s_uri(MP, "wrong", &code)).await, 40125, "invalid appsecret");
    let bad_grant =
        format!("/sns/jscode2session?appid={MP}&secret={MP_SECRET}&js_code={code}&grant_type=client_credential");
    assert_wx_error(&get(&app, &bad_grant).await, 40002, "invalid grant_type");
    let no_code = format!("/sns/jscode2session?appid={MP}&secret={MP_SECRET}&grant_type=authorization_code");
    assert_wx_error(&get(&app, &no_code).await, 41008, "missing code");
    // A code issued for one mini program is invalid in another.
    let m1 = "wx2b3c4d5e6f708101";
    assert_wx_error(&get(&app, &c2s_uri(m1, "0529e29cd679af0aeae66c49784879bf", &code)).await, 40029, "invalid code");
    // None of the failures consumed the code.
    assert!(exchange(&app, &code).await.json()["openid"].is_string());
}

#[tokio::test]
async fn expired_code_is_40029() {
    let app = demo_sim().router();
    let fresh = login(&app, "alice", MP).await;
    let old = login(&app, "alice", MP).await;
    let before = get(&app, "/sim/clock").await.json()["now_millis"].as_i64().expect("now");
    let r = post(&app, "/sim/clock", json!({ "advance_seconds": 240 })).await;
    let after = r.json()["now_millis"].as_i64().expect("now");
    assert!(after - before >= 240_000);
    // Four minutes later the code still works.
    assert_eq!(exchange(&app, &fresh).await.status, StatusCode::OK);
    assert!(exchange(&app, &fresh).await.json()["errcode"] == 40163);
    post(&app, "/sim/clock", json!({ "advance_seconds": 61 })).await;
    assert_wx_error(&exchange(&app, &old).await, 40029, "invalid code");
}

#[tokio::test]
async fn faults_apply_twice_then_success() {
    let sim = demo_sim();
    let app = sim.router();
    let r = post(&app, "/sim/faults", json!({ "path": "/sns/jscode2session", "errcode": -1, "times": 2 })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = login(&app, "alice", MP).await;
    assert_wx_error(&exchange(&app, &code).await, -1, "system error");
    assert_wx_error(&exchange(&app, &code).await, -1, "system error");
    // Faulted calls did not consume the code.
    let ok = exchange(&app, &code).await;
    assert!(ok.json()["session_key"].is_string(), "{}", ok.text);
    let calls = get(&app, "/sim/calls").await.json();
    assert_eq!(calls["/sns/jscode2session"], 3);
    assert_eq!(call(&app, Method::DELETE, "/sim/calls", Value::Null).await.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&app, "/sim/calls").await.json(), json!({}));
}

#[tokio::test]
async fn fault_kinds_http_status_delay_and_clear() {
    let app = demo_sim().router();
    let code = login(&app, "alice", MP).await;
    post(&app, "/sim/faults", json!({ "path": "/sns/jscode2session", "http_status": 502 })).await;
    let r = exchange(&app, &code).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.content_type.starts_with("text/plain"));
    assert!(r.json().is_null());

    post(&app, "/sim/faults", json!({ "path": "/sns/jscode2session", "errcode": 45011, "delay_ms": 30 })).await;
    let start = std::time::Instant::now();
    let r = exchange(&app, &code).await;
    assert!(start.elapsed() >= std::time::Duration::from_millis(30));
    assert_wx_error(&r, 45011, "api minute-quota reach limit mustslower retry next minute");

    // A delay alone answers normally, late.
    post(&app, "/sim/faults", json!({ "path": "/sns/jscode2session", "delay_ms": 20 })).await;
    let start = std::time::Instant::now();
    let r = exchange(&app, &code).await;
    assert!(start.elapsed() >= std::time::Duration::from_millis(20));
    assert!(r.json()["openid"].is_string(), "{}", r.text);

    post(&app, "/sim/faults", json!({ "path": "/sns/jscode2session", "errcode": 40226, "times": 5 })).await;
    assert_eq!(get(&app, "/sim/faults").await.json()["faults"][0]["times"], 5);
    assert_eq!(call(&app, Method::DELETE, "/sim/faults", Value::Null).await.status, StatusCode::NO_CONTENT);
    assert_wx_error(&exchange(&app, &code).await, 40163, "code been used");

    for bad in [
        json!({ "path": "/sns/jscode2session" }),
        json!({ "path": "/sns/jscode2session", "errcode": -1, "times": 0 }),
        json!({ "path": "sns", "errcode": -1 }),
        json!({ "path": "/sns/jscode2session", "http_status": 42 }),
        json!({ "errcode": -1 }),
    ] {
        let r = post(&app, "/sim/faults", bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.json()["error"].is_string());
    }
}

#[tokio::test]
async fn conditional_unionid_appears_only_after_userinfo() {
    let app = demo_sim().router();
    let code = login(&app, "carol", MP).await;
    assert!(exchange(&app, &code).await.json().get("unionid").is_none());
    let r = post(&app, "/sim/users/carol/userinfo", json!({ "appid": MP })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = login(&app, "carol", MP).await;
    let v = exchange(&app, &code).await.json();
    let truth = identity(&app, "carol", MP).await;
    assert_eq!(v["unionid"], truth["unionid"]);
    assert!(truth["unionid"].is_string());
    // Another Open Platform account has not been authorized by carol.
    let m1 = "wx2b3c4d5e6f708101";
    let code = login(&app, "carol", m1).await;
    let r = get(&app, &c2s_uri(m1, "0529e29cd679af0aeae66c49784879bf", &code)).await;
    assert!(r.json().get("unionid").is_none(), "{}", r.text);
}

#[tokio::test]
async fn unionid_mode_knob() {
    let app = demo_sim().router();
    let r = post(&app, "/sim/config", json!({ "unionid_mode": "always" })).await;
    assert_eq!(r.json()["unionid_mode"], "always");
    let code = login(&app, "dave", MP).await;
    assert_eq!(exchange(&app, &code).await.json()["unionid"], identity(&app, "dave", MP).await["unionid"]);
    post(&app, "/sim/config", json!({ "unionid_mode": "never" })).await;
    post(&app, "/sim/users/dave/userinfo", json!({ "appid": MP })).await;
    let code = login(&app, "dave", MP).await;
    assert!(exchange(&app, &code).await.json().get("unionid").is_none());
    let r = post(&app, "/sim/config", json!({ "unionid_mode": "sometimes" })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

fn decrypt(session_key: &str, iv: &str, data: &str) -> Vec<u8> {
    let key = STANDARD.decode(session_key).expect("key");
    let iv = STANDARD.decode(iv).expect("iv");
    let ct = STANDARD.decode(data).expect("data");
    cbc::Decryptor::<Aes128>::new_from_slices(&key, &iv)
        .expect("16-byte key and iv")
        .decrypt_padded_vec_mut::<Pkcs7>(&ct)
        .expect("decrypts with the session_key")
}

#[tokio::test]
async fn userinfo_decrypts_with_the_session_key() {
    let sim = demo_sim();
    let app = sim.router();
    let r = post(&app, "/sim/users/erin/userinfo", json!({ "appid": MP })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "never logged in");
    assert!(r.json()["error"].is_string());

    let code = login(&app, "erin", MP).await;
    let session_key = exchange(&app, &code).await.json()["session_key"].as_str().expect("session_key").to_owned();
    let r = post(&app, "/sim/users/erin/userinfo", json!({ "appid": MP })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    let iv = v["iv"].as_str().expect("iv");
    assert_eq!(STANDARD.decode(iv).expect("iv").len(), 16);
    let plain = decrypt(&session_key, iv, v["encryptedData"].as_str().expect("encryptedData"));
    let text = String::from_utf8(plain).expect("utf8");
    assert!(text.starts_with(r#"{"openId":""#), "{text}");
    let data: Value = serde_json::from_str(&text).expect("json");
    let truth = identity(&app, "erin", MP).await;
    assert_eq!(data["openId"], truth["openid"]);
    assert_eq!(data["unionId"], truth["unionid"]);
    assert_eq!(data["nickName"], "erin");
    assert_eq!(data["gender"], 0);
    assert_eq!(data["language"], "zh_CN");
    assert_eq!(data["watermark"]["appid"], MP);
    let ts = data["watermark"]["timestamp"].as_i64().expect("timestamp");
    assert!((ts - sim.now_millis() / 1000).abs() <= 5);

    // rawData is the plaintext without openId, unionId and watermark; signature = sha1(raw + key).
    let raw = v["rawData"].as_str().expect("rawData");
    let mut expected = data.clone();
    if let Some(map) = expected.as_object_mut() {
        map.remove("openId");
        map.remove("unionId");
        map.remove("watermark");
    }
    assert_eq!(serde_json::from_str::<Value>(raw).expect("raw json"), expected);
    assert!(raw.starts_with(r#"{"nickName":"erin","gender":0,"#), "{raw}");
    let sig = hex::encode(Sha1::digest(format!("{raw}{session_key}").as_bytes()));
    assert_eq!(v["signature"], sig);

    // A new login rotates the session_key: old encryptedData no longer opens with the new key.
    let code = login(&app, "erin", MP).await;
    let new_key = exchange(&app, &code).await.json()["session_key"].as_str().expect("session_key").to_owned();
    assert_ne!(new_key, session_key);
    let r = post(&app, "/sim/users/erin/userinfo", json!({ "appid": MP })).await;
    let v = r.json();
    decrypt(&new_key, v["iv"].as_str().expect("iv"), v["encryptedData"].as_str().expect("data"));
}

#[tokio::test]
async fn app_without_open_platform_has_no_unionid() {
    let registry = Registry::from_json_str(r#"{"apps":[{"appid":"wxlone","kind":"mini_program","secret":"s"}]}"#)
        .expect("registry");
    let app = Sim::new(SimConfig::new(registry)).router();
    post(&app, "/sim/config", json!({ "unionid_mode": "always" })).await;
    let v = identity(&app, "frank", "wxlone").await;
    assert!(v["unionid"].is_null());
    let code = login(&app, "frank", "wxlone").await;
    let r = get(&app, &c2s_uri("wxlone", "s", &code)).await;
    assert!(r.json()["openid"].is_string());
    assert!(r.json().get("unionid").is_none());
    let r = post(&app, "/sim/users/frank/userinfo", json!({ "appid": "wxlone" })).await;
    let v = r.json();
    assert!(v["rawData"].is_string());
}

#[tokio::test]
async fn control_errors_are_400_json() {
    let app = demo_sim().router();
    for (uri, body) in [
        ("/sim/users/alice/login", json!({ "appid": OA })),
        ("/sim/users/alice/login", json!({ "appid": "wxnope" })),
        ("/sim/users/alice/login", json!({})),
        ("/sim/clock", json!({})),
    ] {
        let r = post(&app, uri, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text);
        assert!(r.json()["error"].is_string(), "{}", r.text);
    }
    let req = Request::post("/sim/users/alice/login").body(Body::from("{not json")).expect("request");
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].is_string());
    let r = get(&app, "/sim/users/alice/identity").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // No acting user anywhere.
    let r = get(&app, "/sim/whoami").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn acting_user_from_header_or_cookie() {
    let app = demo_sim().router();
    let req = Request::post("/sim/login")
        .header("X-WxSim-User", "grace")
        .body(Body::from(json!({ "appid": MP }).to_string()))
        .expect("request");
    let code = send(&app, req).await.json()["code"].as_str().expect("code").to_owned();
    let v = exchange(&app, &code).await.json();
    assert_eq!(v["openid"], identity(&app, "grace", MP).await["openid"]);
    let req = Request::get("/sim/whoami")
        .header(header::COOKIE, "theme=dark; wxsim_user=heidi")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app, req).await.json()["user"], "heidi");
}

#[tokio::test]
async fn apps_returns_the_registry_without_comment() {
    let app = demo_sim().router();
    let v = get(&app, "/sim/apps").await.json();
    assert!(v.get("_comment").is_none());
    let apps = v["apps"].as_array().expect("apps");
    assert!(apps.iter().any(|a| a["appid"] == MP && a["secret"] == MP_SECRET));
    assert!(v["site"]["api_key"].is_string());
    assert!(v["credentials"]["admin"].is_string());
    assert!(v["menu_login_key"].is_string());
}

#[tokio::test]
async fn reset_forgets_everything() {
    let sim = demo_sim();
    let app = sim.router();
    let code = login(&app, "ivan", MP).await;
    post(&app, "/sim/clock", json!({ "advance_seconds": 10 })).await;
    post(&app, "/sim/faults", json!({ "path": "/sns/jscode2session", "errcode": -1 })).await;
    let r = post(&app, "/sim/reset", Value::Null).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(sim.clock_offset_millis(), 0);
    assert_wx_error(&exchange(&app, &code).await, 40029, "invalid code");
    assert_eq!(get(&app, "/sim/calls").await.json()["/sns/jscode2session"], 1);
    assert!(sim.session_key("ivan", MP).is_none());
}
