//! Router-level tests of Open Platform logins: the mobile-app SDK code (`/sim/users/{user}/app-login`)
//! and website QR login (`/connect/qrconnect`), both exchanged at `/sns/oauth2/access_token`.

mod support;

use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use support::*;

async fn exchange(app: &Router, appid: &str, secret: &str, code: &str) -> Reply {
    get(
        app,
        &format!("/sns/oauth2/access_token?appid={appid}&secret={secret}&code={code}&grant_type=authorization_code"),
    )
    .await
}

fn code_of(location: &str) -> String {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"))
}

fn qrconnect_uri(appid: &str, redirect: &str, scope: &str, state: &str) -> String {
    format!(
        "/connect/qrconnect?appid={appid}&redirect_uri={}&response_type=code&scope={scope}&state={state}",
        urlencode(redirect)
    )
}

#[tokio::test]
async fn app_login_code_exchanges_with_unionid() {
    let sim = demo_sim(None);
    let app = sim.router();
    let r = post(&app, "/sim/users/kim/app-login", json!({ "appid": APP })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = r.json()["code"].as_str().expect("code").to_owned();
    let secret = secret(&sim, APP);
    let v = exchange(&app, APP, &secret, &code).await.json();
    let truth = identity(&app, "kim", APP).await;
    assert_eq!(v["openid"], truth["openid"], "{v}");
    assert_eq!(v["unionid"], truth["unionid"]);
    assert!(truth["unionid"].is_string());
    assert_eq!(v["scope"], "snsapi_userinfo");
    assert_eq!(v["expires_in"], 7200);
    assert!(v["refresh_token"].is_string());
    // The app's openid is its own; the unionid is the Open Platform's.
    assert_ne!(v["openid"], identity(&app, "kim", MP).await["openid"]);
    assert_eq!(v["unionid"], identity(&app, "kim", MP).await["unionid"]);
    // The token reads the profile.
    let info = get(
        &app,
        &format!(
            "/sns/userinfo?access_token={}&openid={}",
            v["access_token"].as_str().unwrap_or(""),
            v["openid"].as_str().unwrap_or("")
        ),
    )
    .await;
    assert_eq!(info.json()["nickname"], "kim", "{}", info.text);
    // Single use; another app's secret or appid does not fit.
    assert_wx_error(&exchange(&app, APP, &secret, &code).await, 40163, "code been used");
    let code = post(&app, "/sim/users/kim/app-login", json!({ "appid": APP })).await.json()["code"].clone();
    let code = code.as_str().expect("code");
    assert_wx_error(&exchange(&app, APP, "wrong", code).await, 40125, "invalid appsecret");
    assert_wx_error(&exchange(&app, WEB, &support::secret(&sim, WEB), code).await, 40029, "invalid code");
    assert_wx_error(&exchange(&app, MP, &support::secret(&sim, MP), code).await, 40013, "invalid appid");
    // Ten minutes later the code is expired.
    post(&app, "/sim/clock", json!({ "advance_seconds": 601 })).await;
    assert_wx_error(&exchange(&app, APP, &secret, code).await, 42003, "code expired");
    // Only mobile apps.
    for appid in [MP, PIVOT, WEB, "wxnope"] {
        let r = post(&app, "/sim/users/kim/app-login", json!({ "appid": appid })).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{appid}: {}", r.text);
        assert!(r.json()["error"].is_string());
    }
    // Acting user from the header works too.
    let req = axum::http::Request::post("/sim/app-login")
        .header("X-WxSim-User", "lee")
        .body(axum::body::Body::from(json!({ "appid": APP }).to_string()))
        .expect("request");
    let code = send(&app, req).await.json()["code"].as_str().expect("code").to_owned();
    let v = exchange(&app, APP, &secret, &code).await.json();
    assert_eq!(v["openid"], identity(&app, "lee", APP).await["openid"]);
}

#[tokio::test]
async fn website_qr_login_redirects_with_a_code() {
    let sim = demo_sim(None);
    let app = sim.router();
    let redirect = "http://127.0.0.1:8080/web/callback?next=%2Fhome";
    let r = get_as(&app, "mia", &qrconnect_uri(WEB, redirect, "snsapi_login", "s1")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let location = r.location.expect("Location");
    assert!(location.starts_with("http://127.0.0.1:8080/web/callback?next=%2Fhome&code="), "{location}");
    assert!(location.ends_with("&state=s1"), "{location}");
    let code = code_of(&location);
    let secret = secret(&sim, WEB);
    let v = exchange(&app, WEB, &secret, &code).await.json();
    let truth = identity(&app, "mia", WEB).await;
    assert_eq!((&v["openid"], &v["unionid"]), (&truth["openid"], &truth["unionid"]), "{v}");
    assert_eq!(v["scope"], "snsapi_login");
    assert!(v.get("is_snapshotuser").is_none());
    let info = get(
        &app,
        &format!(
            "/sns/userinfo?access_token={}&openid={}",
            v["access_token"].as_str().unwrap_or(""),
            v["openid"].as_str().unwrap_or("")
        ),
    )
    .await;
    assert_eq!(info.json()["unionid"], truth["unionid"], "{}", info.text);
    // Not an OA's code: the OA's appid cannot exchange it; the website code cannot be reused.
    assert_wx_error(&exchange(&app, WEB, &secret, &code).await, 40163, "code been used");
    let code =
        code_of(&get_as(&app, "mia", &qrconnect_uri(WEB, redirect, "snsapi_login", "")).await.location.expect("302"));
    assert_wx_error(&exchange(&app, PIVOT, &support::secret(&sim, PIVOT), &code).await, 40029, "invalid code");
    // The cookie names the user as well.
    let req = axum::http::Request::get(qrconnect_uri(WEB, redirect, "snsapi_login", "s2"))
        .header("cookie", "wxsim_user=ned")
        .body(axum::body::Body::empty())
        .expect("request");
    let r = send(&app, req).await;
    let v = exchange(&app, WEB, &secret, &code_of(&r.location.expect("302"))).await.json();
    assert_eq!(v["openid"], identity(&app, "ned", WEB).await["openid"]);
}

#[tokio::test]
async fn website_qr_login_error_pages() {
    let sim = demo_sim(None);
    let app = sim.router();
    let ok = "http://127.0.0.1/cb";
    let page = |r: &Reply, errcode: Option<i64>| {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.content_type.starts_with("text/html"), "{}", r.content_type);
        assert!(r.location.is_none(), "no redirect: {:?}", r.location);
        if let Some(code) = errcode {
            assert!(r.text.contains(&format!("data-errcode=\"{code}\"")), "{code}: {}", r.text);
        }
    };
    page(&get_as(&app, "oli", "/connect/qrconnect").await, Some(10012));
    page(&get_as(&app, "oli", &qrconnect_uri(PIVOT, ok, "snsapi_login", "")).await, Some(10016));
    page(&get_as(&app, "oli", &qrconnect_uri("wxnope", ok, "snsapi_login", "")).await, Some(10016));
    page(&get_as(&app, "oli", &qrconnect_uri(WEB, "https://evil.example/cb", "snsapi_login", "")).await, Some(10003));
    page(
        &get_as(&app, "oli", &qrconnect_uri(WEB, "https://sub.id.example.com/cb", "snsapi_login", "")).await,
        Some(10003),
    );
    page(&get_as(&app, "oli", &qrconnect_uri(WEB, ok, "snsapi_userinfo", "")).await, Some(10005));
    page(&get_as(&app, "oli", &qrconnect_uri(WEB, ok, "snsapi_login", &"a".repeat(129))).await, Some(10002));
    let no_rt = format!("/connect/qrconnect?appid={WEB}&redirect_uri={}&scope=snsapi_login", urlencode(ok));
    page(&get_as(&app, "oli", &no_rt).await, Some(10001));
    // No WeChat user in this browser.
    page(&get(&app, &qrconnect_uri(WEB, ok, "snsapi_login", "")).await, None);
    // The user refuses on the phone: no redirect.
    post(&app, "/sim/users/oli/switches", json!({ "refuse_userinfo": true })).await;
    page(&get_as(&app, "oli", &qrconnect_uri(WEB, ok, "snsapi_login", "")).await, None);
    // The OA authorize page still refuses snsapi_login, and the website appid.
    let oa = format!(
        "/connect/oauth2/authorize?appid={PIVOT}&redirect_uri={}&response_type=code&scope=snsapi_login",
        urlencode(ok)
    );
    page(&get_as(&app, "pam", &oa).await, Some(10005));
    // Faults on the page answer the error page.
    post(&app, "/sim/faults", json!({ "path": "/connect/qrconnect", "errcode": 10009 })).await;
    page(&get_as(&app, "pam", &qrconnect_uri(WEB, ok, "snsapi_login", "")).await, Some(10009));
    let calls: Value = get(&app, "/sim/calls").await.json();
    assert_eq!(calls["/connect/qrconnect"], 11);
}
