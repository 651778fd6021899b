//! Router-level tests of official-account web authorization (contract §2.1, §2.2, §2.4):
//! `/connect/oauth2/authorize`, `/sns/oauth2/access_token`, `/sns/userinfo` and the per-user
//! switches, driven with `tower::ServiceExt::oneshot`.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use wechat_sim::{Registry, Sim, SimConfig};

const MP: &str = "wx1a2b3c4d5e6f7001";
const MP_SECRET: &str = "a382c32af48e4cf5ee604205b5c29595";
const OA: &str = "wx1a2b3c4d5e6f7002";
const OA_SECRET: &str = "6ba26f8597e4a57eb7cd435ad0172175";
const M1_OA: &str = "wx2b3c4d5e6f708102";
const M1_OA_SECRET: &str = "608e7995dd8e6985582fe1b4844da144";
const CALLBACK: &str = "http://127.0.0.1:8080/wx/callback";

struct Reply {
    status: StatusCode,
    content_type: String,
    location: Option<String>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The `code` and `state` query parameters of the redirect target.
    fn redirect_params(&self) -> (Option<String>, Option<String>) {
        let location = self.location.as_deref().unwrap_or_else(|| panic!("no Location: {}", self.text));
        let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
        let query = query.split_once('#').map(|(q, _)| q).unwrap_or(query);
        let mut code = None;
        let mut state = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "code" => code = Some(v.into_owned()),
                "state" => state = Some(v.into_owned()),
                _ => {}
            }
        }
        (code, state)
    }
}

fn demo_sim() -> Arc<Sim> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo-apps.json");
    Sim::new(SimConfig::new(Registry::from_file(path).expect("demo registry")))
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let header_str = |name| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header_str(header::CONTENT_TYPE).unwrap_or_default();
    let location = header_str(header::LOCATION);
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    Reply { status, content_type, location, text: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).expect("request")).await
}

async fn post(app: &Router, uri: &str, body: Value) -> Reply {
    let req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    send(app, req).await
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn authorize_uri(appid: &str, redirect_uri: &str, scope: &str, state: &str) -> String {
    format!(
        "/connect/oauth2/authorize?appid={appid}&redirect_uri={}&response_type=code&scope={scope}&state={}",
        enc(redirect_uri),
        enc(state)
    )
}

/// The user's WeChat browser opens an authorize URL (the user named by `X-WxSim-User`).
async fn browse(app: &Router, user: &str, uri: &str) -> Reply {
    let req = Request::get(uri).header("X-WxSim-User", user).body(Body::empty()).expect("request");
    send(app, req).await
}

/// Authorizes and returns the code from the 302.
async fn code_for(app: &Router, user: &str, appid: &str, scope: &str) -> String {
    let r = browse(app, user, &authorize_uri(appid, CALLBACK, scope, "st4te")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let (code, state) = r.redirect_params();
    assert_eq!(state.as_deref(), Some("st4te"));
    let code = code.expect("code");
    assert_eq!(code.len(), 32);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
    code
}

fn token_uri(appid: &str, secret: &str, code: &str) -> String {
    format!("/sns/oauth2/access_token?appid={appid}&secret={secret}&code={code}&grant_type=authorization_code")
}

async fn exchange(app: &Router, code: &str) -> Reply {
    get(app, &token_uri(OA, OA_SECRET, code)).await
}

async fn userinfo(app: &Router, token: &str, openid: &str) -> Reply {
    get(app, &format!("/sns/userinfo?access_token={token}&openid={}&lang=zh_CN", enc(openid))).await
}

async fn identity(app: &Router, user: &str, appid: &str) -> Value {
    let r = get(app, &format!("/sim/users/{user}/identity?appid={appid}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

/// Asserts a WeChat error answer: HTTP 200, WeChat's content type, errcode and `errmsg, rid: …`.
fn assert_wx_error(r: &Reply, errcode: i64, errmsg: &str) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.content_type, "application/json; encoding=utf-8");
    let v = r.json();
    assert_eq!(v["errcode"], errcode, "{}", r.text);
    let msg = v["errmsg"].as_str().expect("errmsg");
    assert!(msg.starts_with(&format!("{errmsg}, rid: ")), "errmsg {msg:?} does not start with {errmsg:?}");
}

/// Asserts WeChat's authorization error page: HTTP 200, HTML, the errcode, no redirect.
fn assert_error_page(r: &Reply, errcode: i64) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.content_type, "text/html; charset=utf-8");
    assert!(r.location.is_none(), "{:?}", r.location);
    assert!(r.text.contains(&format!("data-errcode=\"{errcode}\"")), "{}", r.text);
    assert!(r.text.contains(&format!(">{errcode}<")), "{}", r.text);
}

#[tokio::test]
async fn silent_base_authorization_yields_the_true_openid() {
    let app = demo_sim().router();
    let redirect = "http://127.0.0.1:8080/wx/callback?next=%2Fhome#/spa";
    let r = browse(&app, "alice", &authorize_uri(OA, redirect, "snsapi_base", "abc123")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let location = r.location.clone().expect("Location");
    // Appended to the existing query, before the fragment.
    assert!(location.starts_with("http://127.0.0.1:8080/wx/callback?next=%2Fhome&code="), "{location}");
    assert!(location.ends_with("&state=abc123#/spa"), "{location}");
    let (code, state) = r.redirect_params();
    assert_eq!(state.as_deref(), Some("abc123"));
    let code = code.expect("code");

    let r = exchange(&app, &code).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/json; encoding=utf-8");
    let v = r.json();
    assert!(v.get("errcode").is_none(), "{}", r.text);
    let truth = identity(&app, "alice", OA).await;
    assert_eq!(v["openid"], truth["openid"]);
    assert!(truth["unionid"].is_string());
    assert_eq!(v["expires_in"], 7200);
    assert_eq!(v["scope"], "snsapi_base");
    assert!(v["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(v["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(v.get("unionid").is_none(), "snsapi_base never returns a unionid: {}", r.text);
    assert!(v.get("is_snapshotuser").is_none(), "{}", r.text);
    // The OA openid is neither the mini program's nor another user's.
    assert_ne!(truth["openid"], identity(&app, "alice", MP).await["openid"]);
    assert_ne!(truth["openid"], identity(&app, "bob", OA).await["openid"]);
    assert_eq!(truth["unionid"], identity(&app, "alice", MP).await["unionid"]);

    // A snsapi_base token cannot read the profile.
    let token = v["access_token"].as_str().expect("token");
    let openid = v["openid"].as_str().expect("openid");
    assert_wx_error(&userinfo(&app, token, openid).await, 48001, "api unauthorized");
}

#[tokio::test]
async fn code_errors_reuse_other_app_and_parameters() {
    let app = demo_sim().router();
    let code = code_for(&app, "alice", OA, "snsapi_base").await;
    // A code of one OA is unknown to another OA.
    assert_wx_error(&get(&app, &token_uri(M1_OA, M1_OA_SECRET, &code)).await, 40029, "invalid code");
    assert_wx_error(&get(&app, &token_uri(MP, MP_SECRET, &code)).await, 40013, "invalid appid");
    assert_wx_error(&get(&app, &token_uri("wxnope", OA_SECRET, &code)).await, 40013, "invalid appid");
    assert_wx_error(&get(&app, &token_uri(OA, "wrong", &code)).await, 40125, "invalid appsecret");
    let bad_grant = format!("/sns/oauth2/access_token?appid={OA}&secret={OA_SECRET}&code={code}&grant_type=x");
    assert_wx_error(&get(&app, &bad_grant).await, 40002, "invalid grant_type");
    let no_code = format!("/sns/oauth2/access_token?appid={OA}&secret={OA_SECRET}&grant_type=authorization_code");
    assert_wx_error(&get(&app, &no_code).await, 41008, "missing code");
    assert_wx_error(&exchange(&app, "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d").await, 40029, "invalid code");
    // None of the failures consumed the code; the first exchange does.
    assert!(exchange(&app, &code).await.json()["openid"].is_string());
    assert_wx_error(&exchange(&app, &code).await, 40163, "code been used");
    // A wx.login code is not a web-authorization code.
    let r = post(&app, "/sim/users/alice/login", json!({ "appid": MP })).await;
    let login_code = r.json()["code"].as_str().expect("code").to_owned();
    assert_wx_error(&exchange(&app, &login_code).await, 40029, "invalid code");
}

#[tokio::test]
async fn code_expires_after_five_minutes_by_the_sim_clock() {
    let app = demo_sim().router();
    let fresh = code_for(&app, "alice", OA, "snsapi_base").await;
    let old = code_for(&app, "alice", OA, "snsapi_base").await;
    post(&app, "/sim/clock", json!({ "advance_seconds": 299 })).await;
    assert!(exchange(&app, &fresh).await.json()["openid"].is_string());
    post(&app, "/sim/clock", json!({ "advance_seconds": 2 })).await;
    assert_wx_error(&exchange(&app, &old).await, 42003, "code expired");
}

#[tokio::test]
async fn userinfo_scope_gives_unionid_and_profile() {
    let app = demo_sim().router();
    // The acting user may also come from the wxsim_user cookie.
    let req = Request::get(authorize_uri(OA, "https://id.example.com/cb", "snsapi_userinfo", ""))
        .header(header::COOKIE, "theme=dark; wxsim_user=carol")
        .body(Body::empty())
        .expect("request");
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let location = r.location.clone().expect("Location");
    assert!(!location.contains("state="), "empty state is left out: {location}");
    let (code, _) = r.redirect_params();
    let v = exchange(&app, &code.expect("code")).await.json();
    let truth = identity(&app, "carol", OA).await;
    assert_eq!(v["openid"], truth["openid"]);
    assert_eq!(v["unionid"], truth["unionid"]);
    assert_eq!(v["scope"], "snsapi_userinfo");
    let token = v["access_token"].as_str().expect("token").to_owned();
    let openid = v["openid"].as_str().expect("openid").to_owned();

    let r = userinfo(&app, &token, &openid).await;
    assert_eq!(r.content_type, "application/json; encoding=utf-8");
    let u = r.json();
    assert!(u.get("errcode").is_none(), "{}", r.text);
    assert_eq!(u["openid"], truth["openid"]);
    assert_eq!(u["unionid"], truth["unionid"]);
    assert_eq!(u["nickname"], "carol");
    assert_eq!(u["sex"], 0);
    assert_eq!((u["province"].as_str(), u["city"].as_str(), u["country"].as_str()), (Some(""), Some(""), Some("")));
    assert_eq!(u["privilege"], json!([]));
    let avatar = u["headimgurl"].as_str().expect("headimgurl");
    assert!(avatar.starts_with("https://thirdwx.qlogo.cn/mmopen/vi_32/") && avatar.ends_with("/132"), "{avatar}");

    let dave = identity(&app, "dave", OA).await["openid"].as_str().expect("openid").to_owned();
    assert_wx_error(&userinfo(&app, &token, &dave).await, 40003, "invalid openid");
    assert_wx_error(&get(&app, &format!("/sns/userinfo?access_token={token}")).await, 41009, "missing openid");
    assert_wx_error(
        &userinfo(&app, "bogus", &openid).await,
        40001,
        "invalid credential, access_token is invalid or not latest",
    );
    assert_wx_error(&get(&app, "/sns/userinfo?openid=x").await, 41001, "access_token missing");

    // Consenting to snsapi_userinfo authorized the Open Platform account: the mini program of
    // the same Open Platform now gets the unionid from jscode2session (conditional mode).
    let r = post(&app, "/sim/users/carol/login", json!({ "appid": MP })).await;
    let login_code = r.json()["code"].as_str().expect("code").to_owned();
    let uri =
        format!("/sns/jscode2session?appid={MP}&secret={MP_SECRET}&js_code={login_code}&grant_type=authorization_code");
    assert_eq!(get(&app, &uri).await.json()["unionid"], truth["unionid"]);

    // The web access token lives 7200 s by the sim clock.
    post(&app, "/sim/clock", json!({ "advance_seconds": 7199 })).await;
    assert!(userinfo(&app, &token, &openid).await.json()["openid"].is_string());
    post(&app, "/sim/clock", json!({ "advance_seconds": 1 })).await;
    assert_wx_error(
        &userinfo(&app, &token, &openid).await,
        40001,
        "invalid credential, access_token is invalid or not latest",
    );
}

#[tokio::test]
async fn refuse_switch_redirects_without_code() {
    let app = demo_sim().router();
    let r = get(&app, "/sim/users/erin/switches").await;
    assert_eq!(r.json(), json!({ "refuse_userinfo": false, "snapshot": false }));
    let r = post(&app, "/sim/users/erin/switches", json!({ "refuse_userinfo": true })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), json!({ "refuse_userinfo": true, "snapshot": false }));
    assert_eq!(get(&app, "/sim/users/erin/switches").await.json()["refuse_userinfo"], true);

    let r = browse(&app, "erin", &authorize_uri(OA, CALLBACK, "snsapi_userinfo", "S1")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    assert_eq!(r.location.as_deref(), Some("http://127.0.0.1:8080/wx/callback?state=S1"));
    // Silent authorization is not affected by the refusal.
    code_for(&app, "erin", OA, "snsapi_base").await;
    // Refusing authorized nothing: the mini program of the same Open Platform gets no unionid.
    let r = post(&app, "/sim/users/erin/login", json!({ "appid": MP })).await;
    let login_code = r.json()["code"].as_str().expect("code").to_owned();
    let uri =
        format!("/sns/jscode2session?appid={MP}&secret={MP_SECRET}&js_code={login_code}&grant_type=authorization_code");
    let r = get(&app, &uri).await;
    assert!(r.json()["openid"].is_string() && r.json().get("unionid").is_none(), "{}", r.text);

    // Partial updates keep the other switch; the header names the user as well.
    let req = Request::post("/sim/switches")
        .header("X-WxSim-User", "erin")
        .body(Body::from(json!({ "refuse_userinfo": false }).to_string()))
        .expect("request");
    assert_eq!(send(&app, req).await.json(), json!({ "refuse_userinfo": false, "snapshot": false }));
    code_for(&app, "erin", OA, "snsapi_userinfo").await;

    for bad in [json!({ "refuse": true }), json!({ "snapshot": "yes" }), json!([1])] {
        let r = post(&app, "/sim/users/erin/switches", bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.json()["error"].is_string());
    }
    let r = get(&app, "/sim/switches").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no acting user");
}

#[tokio::test]
async fn snapshot_switch_yields_a_virtual_account() {
    let app = demo_sim().router();
    post(&app, "/sim/users/frank/switches", json!({ "snapshot": true, "refuse_userinfo": true })).await;
    let code = code_for(&app, "frank", OA, "snsapi_userinfo").await;
    let v = exchange(&app, &code).await.json();
    let truth = identity(&app, "frank", OA).await;
    assert_eq!(v["is_snapshotuser"], 1);
    let openid = v["openid"].as_str().expect("openid").to_owned();
    assert_eq!(openid.len(), 28);
    assert_ne!(v["openid"], truth["openid"]);
    assert!(v["unionid"].is_string());
    assert_ne!(v["unionid"], truth["unionid"]);
    let u = userinfo(&app, v["access_token"].as_str().expect("token"), &openid).await.json();
    assert_eq!(u["openid"], v["openid"]);
    assert_eq!(u["nickname"], "微信用户");
    assert_eq!(u["unionid"], v["unionid"]);
    // snsapi_base is silent and has no snapshot mode: the real openid.
    let code = code_for(&app, "frank", OA, "snsapi_base").await;
    let v = exchange(&app, &code).await.json();
    assert_eq!(v["openid"], truth["openid"]);
    assert!(v.get("is_snapshotuser").is_none());
}

#[tokio::test]
async fn authorize_error_pages() {
    let app = demo_sim().router();
    let page = |uri: String| {
        let app = app.clone();
        async move { browse(&app, "alice", &uri).await }
    };
    // redirect_uri host not among the OA's web-authorization domains (exact match only).
    let r = page(authorize_uri(OA, "https://evil.example.com/cb", "snsapi_base", "s")).await;
    assert_error_page(&r, 10003);
    assert!(r.text.contains("redirect_uri域名与后台配置不一致"), "{}", r.text);
    assert_error_page(&page(authorize_uri(OA, "https://sub.id.example.com/cb", "snsapi_base", "s")).await, 10003);
    assert_error_page(&page(authorize_uri(OA, "https://example.com/cb", "snsapi_base", "s")).await, 10003);
    // A mini-program appid: 10005; unknown or Open Platform appids: 10016.
    assert_error_page(&page(authorize_uri(MP, CALLBACK, "snsapi_base", "s")).await, 10005);
    assert_error_page(&page(authorize_uri("wxnope", CALLBACK, "snsapi_base", "s")).await, 10016);
    assert_error_page(&page(authorize_uri("wx1a2b3c4d5e6f7004", CALLBACK, "snsapi_base", "s")).await, 10016);
    assert_error_page(&page(authorize_uri("", CALLBACK, "snsapi_base", "s")).await, 10012);
    assert_error_page(&page(authorize_uri(OA, "", "snsapi_base", "s")).await, 10011);
    assert_error_page(&page(authorize_uri(OA, CALLBACK, "", "s")).await, 10010);
    assert_error_page(&page(authorize_uri(OA, CALLBACK, "snsapi_login", "s")).await, 10005);
    let no_rt = format!("/connect/oauth2/authorize?appid={OA}&redirect_uri={}&scope=snsapi_base", enc(CALLBACK));
    assert_error_page(&page(no_rt).await, 10001);
    let token_rt = authorize_uri(OA, CALLBACK, "snsapi_base", "s").replace("response_type=code", "response_type=token");
    assert_error_page(&page(token_rt).await, 10001);
    // state: at most 128 bytes of [a-zA-Z0-9].
    assert_error_page(&page(authorize_uri(OA, CALLBACK, "snsapi_base", &"a".repeat(129))).await, 10002);
    assert_error_page(&page(authorize_uri(OA, CALLBACK, "snsapi_base", "a-b")).await, 10002);
    assert_error_page(&page(authorize_uri(OA, CALLBACK, "snsapi_base", "a b")).await, 10002);
    let r = page(authorize_uri(OA, CALLBACK, "snsapi_base", &"a".repeat(128))).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.redirect_params().1, Some("a".repeat(128)));
    // Ports do not matter, host case does not matter.
    let r = page(authorize_uri(OA, "HTTP://LocalHost:3000/cb", "snsapi_base", "")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);

    // No WeChat user in the browser: an error page, no redirect.
    let r = get(&app, &authorize_uri(OA, CALLBACK, "snsapi_base", "s")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "text/html; charset=utf-8");
    assert!(r.location.is_none());
    assert!(r.text.contains("unknown WeChat user"), "{}", r.text);
}

#[tokio::test]
async fn faults_and_call_counts() {
    let app = demo_sim().router();
    let r = post(&app, "/sim/faults", json!({ "path": "/sns/oauth2/access_token", "errcode": -1, "times": 2 })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = code_for(&app, "gina", OA, "snsapi_userinfo").await;
    assert_wx_error(&exchange(&app, &code).await, -1, "system error");
    assert_wx_error(&exchange(&app, &code).await, -1, "system error");
    // Faulted calls did not consume the code.
    let v = exchange(&app, &code).await.json();
    assert!(v["access_token"].is_string(), "{v}");
    let token = v["access_token"].as_str().expect("token").to_owned();
    let openid = v["openid"].as_str().expect("openid").to_owned();

    post(&app, "/sim/faults", json!({ "path": "/sns/userinfo", "http_status": 502 })).await;
    assert_eq!(userinfo(&app, &token, &openid).await.status, StatusCode::BAD_GATEWAY);
    assert!(userinfo(&app, &token, &openid).await.json()["nickname"].is_string());

    // A fault of the authorize path renders WeChat's error page.
    post(&app, "/sim/faults", json!({ "path": "/connect/oauth2/authorize", "errcode": 10009 })).await;
    let r = browse(&app, "gina", &authorize_uri(OA, CALLBACK, "snsapi_base", "s")).await;
    assert_error_page(&r, 10009);
    post(&app, "/sim/faults", json!({ "path": "/connect/oauth2/authorize", "http_status": 503 })).await;
    assert_eq!(
        browse(&app, "gina", &authorize_uri(OA, CALLBACK, "snsapi_base", "s")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let calls = get(&app, "/sim/calls").await.json();
    assert_eq!(calls["/connect/oauth2/authorize"], 3);
    assert_eq!(calls["/sns/oauth2/access_token"], 3);
    assert_eq!(calls["/sns/userinfo"], 2);
}
