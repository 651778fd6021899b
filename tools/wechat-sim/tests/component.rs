//! The third-party platform (contract §11) end to end: tickets and authorization events pushed
//! to a real HTTP receiver on 127.0.0.1:0 that plays the bridge's events and message URLs
//! (verifies both signatures and decrypts with the platform's key), the component token and its
//! errors, pre-auth codes and the authorization pages, merchants authorizing and unauthorizing,
//! authorizer tokens with rotating refresh tokens, and the logins and calls made for authorized
//! apps.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use support::*;
use wechat_sim::crypto::{msg_signature, push_signature, MsgCrypt};
use wechat_sim::sim::xml_fields;
use wechat_sim::{Registry, Sim, SimConfig};

const COMPONENT: &str = "wx0c0a0b0c0d0e0f01";
const COMPONENT_SECRET: &str = "c0a1b2c3d4e5f60718293a4b5c6d7e8f";
const COMPONENT_TOKEN: &str = "componentTokenA1b2C3";
const COMPONENT_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// Merchant 9's component apps: an OA and a mini program (no secret, token or key).
const M9_OA: &str = "wx9e9e9e9e9e9e9e02";
const M9_MP: &str = "wx9e9e9e9e9e9e9e01";
const EVENTS_PATH: &str = "/v1/component/events";

/// The demo registry plus a component section and merchant 9's component apps.
fn registry() -> Registry {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo-apps.json");
    let mut raw: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("demo registry")).expect("json");
    raw["component"] = json!({
        "component_appid": COMPONENT, "secret": COMPONENT_SECRET, "token": COMPONENT_TOKEN,
        "encoding_aes_key": COMPONENT_KEY, "domains": ["127.0.0.1", "id.example.com"],
    });
    let apps = raw["apps"].as_array_mut().expect("apps");
    apps.push(json!({"appid": M9_MP, "name": "M9 mini program", "kind": "mini_program", "role": "merchant_mp",
        "owner": "m9", "open_platform": "op_m9", "auth": "component"}));
    apps.push(json!({"appid": M9_OA, "name": "M9 official account", "kind": "official_account",
        "role": "merchant_oa", "owner": "m9", "open_platform": "op_m9", "auth": "component"}));
    Registry::from_json_str(&raw.to_string()).expect("registry")
}

fn component_sim(push_base: &str) -> Arc<Sim> {
    let mut config = SimConfig::new(registry());
    config.push_base = Some(push_base.to_owned());
    Sim::new(config)
}

// ---- the bridge's side -----------------------------------------------------------------------

/// One request to the events or message URL, checked with the platform's token and key.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    params: HashMap<String, String>,
    envelope: HashMap<String, String>,
    signature_ok: bool,
    msg_signature_ok: bool,
    /// Decrypted with receive id = the component appid.
    plain: Option<HashMap<String, String>>,
}

#[derive(Clone, Default)]
struct Log {
    got: Arc<Mutex<Vec<Got>>>,
    /// Statuses to answer next (then `success`).
    script: Arc<Mutex<Vec<u16>>>,
}

struct Bridge {
    base: String,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Bridge {
    async fn start() -> Bridge {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let log = Log::default();
        let router = Router::new().fallback(receive).with_state(log.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Bridge { base: format!("http://{addr}"), log, task }
    }

    fn got(&self) -> Vec<Got> {
        self.log.got.lock().expect("lock").clone()
    }

    fn events(&self) -> Vec<Got> {
        self.got().into_iter().filter(|g| g.path == EVENTS_PATH).collect()
    }

    /// Waits up to `secs` seconds for at least `n` events.
    async fn wait_events(&self, n: usize, secs: u64) -> Vec<Got> {
        for _ in 0..secs * 20 {
            if self.events().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.events()
    }
}

async fn receive(State(log): State<Log>, uri: Uri, body: String) -> Response {
    let params: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let p = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let envelope = xml_fields(&body).unwrap_or_default();
    let encrypt = envelope.get("Encrypt").cloned().unwrap_or_default();
    let crypt = MsgCrypt::new(COMPONENT_KEY, COMPONENT).expect("crypt");
    let got = Got {
        path: uri.path().to_owned(),
        signature_ok: push_signature(COMPONENT_TOKEN, p("timestamp"), p("nonce")) == p("signature"),
        msg_signature_ok: p("encrypt_type") == "aes"
            && msg_signature(COMPONENT_TOKEN, p("timestamp"), p("nonce"), &encrypt) == p("msg_signature"),
        plain: crypt.decrypt(&encrypt).ok().and_then(|x| xml_fields(&x).ok()),
        params: params.clone(),
        envelope,
    };
    log.got.lock().expect("lock").push(got);
    let next = {
        let mut script = log.script.lock().expect("lock");
        (!script.is_empty()).then(|| script.remove(0))
    };
    match next {
        Some(status) => StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY).into_response(),
        None => "success".into_response(),
    }
}

// ---- WeChat calls the bridge makes -----------------------------------------------------------

async fn push_ticket(app: &Router) -> String {
    let r = post(app, "/sim/component/ticket", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["ticket"].as_str().expect("ticket").to_owned()
}

async fn component_token_with(app: &Router, ticket: &str) -> Reply {
    let body = json!({"component_appid": COMPONENT, "component_appsecret": COMPONENT_SECRET,
        "component_verify_ticket": ticket});
    post(app, "/cgi-bin/component/api_component_token", body).await
}

async fn component_token(app: &Router) -> String {
    let ticket = push_ticket(app).await;
    let r = component_token_with(app, &ticket).await;
    r.json()["component_access_token"].as_str().unwrap_or_else(|| panic!("{}", r.text)).to_owned()
}

/// A component call: `POST {path}?component_access_token={token}` with `component_appid` added.
async fn call(app: &Router, path: &str, token: &str, mut body: Value) -> Reply {
    body["component_appid"] = json!(COMPONENT);
    post(app, &format!("/cgi-bin/component/{path}?component_access_token={token}"), body).await
}

async fn pre_auth_code(app: &Router, token: &str) -> String {
    let r = call(app, "api_create_preauthcode", token, json!({})).await;
    assert_eq!(r.json()["expires_in"], 1800, "{}", r.text);
    r.json()["pre_auth_code"].as_str().expect("pre_auth_code").to_owned()
}

/// The merchant opens the PC authorization page and approves `appids`; the answer.
async fn authorize(app: &Router, token: &str, appids: &[&str]) -> Value {
    let code = pre_auth_code(app, token).await;
    let page = format!(
        "/cgi-bin/componentloginpage?component_appid={COMPONENT}&pre_auth_code={}&redirect_uri={}&auth_type=3",
        urlencode(&code),
        urlencode("http://127.0.0.1:8080/v1/component/authorized?merchant=m9")
    );
    let r = get(app, &page).await;
    assert!(!r.text.contains("data-error"), "{}", r.text);
    let r = post(app, "/sim/merchants/m9/authorize", json!({ "appids": appids })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

/// The `auth_code` of a redirect back to the platform.
fn auth_code(location: &str) -> String {
    let url = url::Url::parse(location).expect("location");
    let code = url.query_pairs().find(|(k, _)| k == "auth_code").map(|(_, v)| v.into_owned());
    code.expect("auth_code")
}

/// The authorization_info of an authorization code.
async fn query_auth(app: &Router, token: &str, code: &str) -> Value {
    let r = call(app, "api_query_auth", token, json!({ "authorization_code": code })).await;
    let info = r.json()["authorization_info"].clone();
    assert!(info.is_object(), "{}", r.text);
    info
}

/// Authorizes `appid` for merchant 9; (component token, authorization_info).
async fn authorized(app: &Router, appid: &str) -> (String, Value) {
    let token = component_token(app).await;
    let a = authorize(app, &token, &[appid]).await;
    let info = query_auth(app, &token, &auth_code(a["location"].as_str().expect("location"))).await;
    (token, info)
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

// ---- tests ------------------------------------------------------------------------------------

#[tokio::test]
async fn ticket_push_is_signed_and_sealed_with_the_component_key() {
    let bridge = Bridge::start().await;
    let sim = component_sim(&bridge.base);
    let app = sim.router();
    let r = post(&app, "/sim/component/ticket", json!({})).await.json();
    let ticket = s(&r["ticket"]);
    assert!(ticket.starts_with("ticket@@@") && ticket.len() == "ticket@@@".len() + 43, "{ticket}");
    assert_eq!((r["status"].clone(), r["body"].clone()), (json!(200), json!("success")));

    let got = bridge.events();
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert!(e.signature_ok && e.msg_signature_ok, "{e:?}");
    assert_eq!(e.params["encrypt_type"], "aes");
    assert_eq!(e.envelope.keys().count(), 2, "AppId and Encrypt only: {e:?}");
    assert_eq!(e.envelope["AppId"], COMPONENT);
    let plain = e.plain.as_ref().expect("decrypts with the component key and receive id");
    assert_eq!(plain["AppId"], COMPONENT);
    assert_eq!(plain["InfoType"], "component_verify_ticket");
    assert_eq!(plain["ComponentVerifyTicket"], ticket);
    assert!(plain["CreateTime"].parse::<i64>().is_ok_and(|t| (t - sim.now_seconds()).abs() <= 5));
    // The receive id at the end of the plaintext is the component appid, nothing else.
    let other = MsgCrypt::new(COMPONENT_KEY, M9_OA).expect("crypt");
    assert!(other.decrypt(&e.envelope["Encrypt"]).is_err());

    // Each push differs; the truth and the push log show them.
    let second = push_ticket(&app).await;
    assert_ne!(second, ticket);
    let truth = get(&app, "/sim/component").await.json();
    assert_eq!(truth["ticket"], second.as_str());
    assert_eq!(truth["events_url"], format!("{}{EVENTS_PATH}", bridge.base));
    assert_eq!(truth["message_url"], format!("{}/v1/wechat/push/$APPID$", bridge.base));
    let pushes = get(&app, "/sim/pushes").await.json();
    assert_eq!(pushes["pushes"][0]["event"], "component_verify_ticket");
    assert_eq!(pushes["pushes"][0]["component_appid"], COMPONENT);
    assert_eq!(pushes["pushes"][0]["status"], "pushed");
    // A bridge that does not answer success: the status and text come back, retried as §5.
    *bridge.log.script.lock().expect("lock") = vec![500, 500, 500, 500];
    let r = post(&app, "/sim/component/ticket", json!({})).await.json();
    assert_eq!(r["status"], 500, "{r}");
    assert_eq!(bridge.events().len(), 2 + 4);
    let replay = post(&app, "/sim/pushes/replay", json!({})).await.json();
    assert_eq!(replay["results"][0]["status"], "pushed", "{replay}");
}

#[tokio::test]
async fn component_token_and_its_errors() {
    let bridge = Bridge::start().await;
    let sim = component_sim(&bridge.base);
    let app = sim.router();
    assert_wx_error(&component_token_with(&app, "ticket@@@never").await, 61006, "component ticket is invalid");
    let ticket = push_ticket(&app).await;
    let bad = |patch: Value| {
        let mut body = json!({"component_appid": COMPONENT, "component_appsecret": COMPONENT_SECRET,
            "component_verify_ticket": ticket});
        if let (Some(b), Some(p)) = (body.as_object_mut(), patch.as_object()) {
            b.extend(p.clone());
        }
        body
    };
    let path = "/cgi-bin/component/api_component_token";
    assert_wx_error(&post(&app, path, bad(json!({"component_appid": "wxnope"}))).await, 40013, "invalid appid");
    assert_wx_error(&post(&app, path, bad(json!({"component_appsecret": "x"}))).await, 40125, "invalid appsecret");
    let r = component_token_with(&app, &ticket).await;
    assert_eq!(r.json()["expires_in"], 7200, "{}", r.text);
    assert_eq!(r.json()["component_access_token"].as_str().map(str::len), Some(136));
    // A ticket is valid 12 hours from its push; an older one stays valid until its own end.
    post(&app, "/sim/clock", json!({ "advance_seconds": 6 * 3600 })).await;
    let newer = push_ticket(&app).await;
    post(&app, "/sim/clock", json!({ "advance_seconds": 6 * 3600 - 1 })).await;
    assert!(component_token_with(&app, &ticket).await.json()["component_access_token"].is_string());
    post(&app, "/sim/clock", json!({ "advance_seconds": 1 })).await;
    assert_wx_error(&component_token_with(&app, &ticket).await, 61005, "component ticket is expired");
    assert!(component_token_with(&app, &newer).await.json()["component_access_token"].is_string());
    // A component app has no secret: its own token paths answer 40125.
    for uri in [
        format!("/cgi-bin/token?grant_type=client_credential&appid={M9_OA}&secret="),
        format!("/sns/jscode2session?appid={M9_MP}&secret=&js_code=x&grant_type=authorization_code"),
    ] {
        assert_wx_error(&get(&app, &uri).await, 40125, "invalid appsecret");
    }
    let stable = json!({"grant_type": "client_credential", "appid": M9_MP, "secret": ""});
    assert_wx_error(&post(&app, "/cgi-bin/stable_token", stable).await, 40125, "invalid appsecret");
    let calls = get(&app, "/sim/calls").await.json();
    assert_eq!(calls[path], 7, "{calls}");
}

#[tokio::test]
async fn an_old_component_token_lives_five_minutes_after_a_new_one() {
    let bridge = Bridge::start().await;
    let app = component_sim(&bridge.base).router();
    let t1 = component_token(&app).await;
    let t2 = component_token(&app).await;
    assert_ne!(t1, t2);
    post(&app, "/sim/clock", json!({ "advance_seconds": 299 })).await;
    assert!(call(&app, "api_create_preauthcode", &t1, json!({})).await.json()["pre_auth_code"].is_string());
    post(&app, "/sim/clock", json!({ "advance_seconds": 1 })).await;
    let stale = call(&app, "api_create_preauthcode", &t1, json!({})).await;
    assert_wx_error(&stale, 40001, "invalid credential, access_token is invalid or not latest");
    assert!(call(&app, "api_create_preauthcode", &t2, json!({})).await.json()["pre_auth_code"].is_string());
    post(&app, "/sim/clock", json!({ "advance_seconds": 7200 })).await;
    assert_wx_error(&call(&app, "api_create_preauthcode", &t2, json!({})).await, 42001, "access_token expired");
    let missing = post(&app, "/cgi-bin/component/api_create_preauthcode", json!({"component_appid": COMPONENT})).await;
    assert_wx_error(&missing, 41001, "access_token missing");
    // A fault applies to component paths like any other.
    let fault = json!({"path": "/cgi-bin/component/api_component_token", "errcode": -1, "times": 1});
    post(&app, "/sim/faults", fault).await;
    let ticket = push_ticket(&app).await;
    assert_wx_error(&component_token_with(&app, &ticket).await, -1, "system error");
}

#[tokio::test]
async fn pre_auth_code_and_the_authorization_pages() {
    let bridge = Bridge::start().await;
    let app = component_sim(&bridge.base).router();
    let token = component_token(&app).await;
    let code = pre_auth_code(&app, &token).await;
    assert!(code.starts_with("preauthcode@@@"), "{code}");
    let page = |path: &str, extra: &str| {
        format!(
            "{path}?component_appid={COMPONENT}&pre_auth_code={}&redirect_uri={}{extra}",
            urlencode(&code),
            urlencode("http://127.0.0.1:8080/back")
        )
    };
    let r = get(&app, &page("/cgi-bin/componentloginpage", "&auth_type=1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("text/html"), "{}", r.content_type);
    assert!(r.text.contains(&format!("data-authorize=\"{M9_OA}\"")), "{}", r.text);
    assert!(!r.text.contains(&format!("data-authorize=\"{M9_MP}\"")), "auth_type 1 lists OAs only");
    assert!(!r.text.contains("data-authorize=\"wx1a2b3c4d5e6f7002\""), "secret apps are not listed");
    assert!(r.text.contains("/sim/merchants/") && r.text.contains("location.href"), "{}", r.text);
    let r = get(
        &app,
        &page("/wxaopen/safe/bindcomponent", &format!("&action=bindcomponent&no_scan=1&auth_type=3&biz_appid={M9_MP}")),
    )
    .await;
    assert!(r.text.contains(&format!("data-authorize=\"{M9_MP}\"")), "{}", r.text);
    assert!(!r.text.contains(&format!("data-authorize=\"{M9_OA}\"")), "biz_appid restricts the list");
    // The page was for the MP only: the OA cannot be authorized from it.
    let r = post(&app, "/sim/merchants/m9/authorize", json!({ "appids": [M9_OA] })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // Another merchant's or a secret app: refused, nothing authorized.
    for (merchant, appid) in [("m1", M9_OA), ("m1", M1_OA)] {
        let r = post(&app, &format!("/sim/merchants/{merchant}/authorize"), json!({ "appids": [appid] })).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    let r = get(&app, &page("/cgi-bin/componentloginpage", "").replace(&urlencode(&code), "preauthcode%40%40%40nope"))
        .await;
    assert!(r.text.contains("data-error=\"61009\""), "{}", r.text);
    let r = get(&app, &page("/cgi-bin/componentloginpage", "").replace(COMPONENT, "wxother")).await;
    assert!(r.text.contains("data-error=\"40013\""), "{}", r.text);
    // After 1800 s the page refuses the code, and so does the merchant's approval.
    post(&app, "/sim/clock", json!({ "advance_seconds": 1800 })).await;
    let r = get(&app, &page("/cgi-bin/componentloginpage", "")).await;
    assert!(r.text.contains("data-error=\"61010\"") && !r.text.contains("data-authorize"), "{}", r.text);
    let r = post(&app, "/sim/merchants/m9/authorize", json!({ "appids": [M9_OA], "pre_auth_code": code })).await;
    assert_eq!((r.status, r.json()["errcode"].clone()), (StatusCode::BAD_REQUEST, json!(61010)), "{}", r.text);
    assert!(bridge
        .events()
        .iter()
        .all(|e| e.plain.as_ref().is_some_and(|p| p["InfoType"] == "component_verify_ticket")));
    let truth = get(&app, "/sim/component").await.json();
    assert_eq!(truth["authorizations"], json!({}));
}

#[tokio::test]
async fn authorizing_pushes_the_event_and_the_code_is_one_time() {
    let bridge = Bridge::start().await;
    let app = component_sim(&bridge.base).router();
    let token = component_token(&app).await;
    let a = authorize(&app, &token, &[M9_OA, M9_MP]).await;
    let location = s(&a["location"]);
    assert!(location.starts_with("http://127.0.0.1:8080/v1/component/authorized?merchant=m9&auth_code="), "{location}");
    assert!(location.ends_with("&expires_in=600"), "{location}");
    assert_eq!(a["locations"].as_array().map(Vec::len), Some(2));
    let code = auth_code(&location);
    assert!(code.starts_with("queryauthcode@@@"), "{code}");
    assert_eq!(a["events"][0], json!({"appid": M9_OA, "info_type": "authorized", "status": 200, "body": "success"}));

    let events = bridge.events();
    let e = events.iter().rev().find(|e| e.plain.as_ref().is_some_and(|p| p["AuthorizerAppid"] == M9_OA));
    let e = e.expect("authorized event");
    assert!(e.signature_ok && e.msg_signature_ok);
    let p = e.plain.as_ref().expect("plain");
    assert_eq!(p["InfoType"], "authorized");
    assert_eq!(p["AppId"], COMPONENT);
    assert_eq!(p["AuthorizationCode"], code);
    assert!(p["PreAuthCode"].starts_with("preauthcode@@@"));
    let expires: i64 = p["AuthorizationCodeExpiredTime"].parse().expect("unix seconds");
    assert_eq!(expires - p["CreateTime"].parse::<i64>().expect("CreateTime"), 600);

    let info = query_auth(&app, &token, &code).await;
    assert_eq!(info["authorizer_appid"], M9_OA);
    assert_eq!(info["expires_in"], 7200);
    assert!(s(&info["authorizer_refresh_token"]).starts_with("refreshtoken@@@"));
    assert!(info["func_info"][0]["funcscope_category"]["id"].is_number());
    let again = call(&app, "api_query_auth", &token, json!({ "authorization_code": code })).await;
    assert_wx_error(&again, 61009, "code is invalid");
    let unknown = call(&app, "api_query_auth", &token, json!({ "authorization_code": "queryauthcode@@@x" })).await;
    assert_wx_error(&unknown, 61009, "code is invalid");

    // Authorizing again: updateauthorized, a new refresh token; closing the page (redirect:
    // false) only pushes the event. Its code expires after 600 s.
    let pre = pre_auth_code(&app, &token).await;
    let b = json!({ "appids": [M9_OA], "pre_auth_code": pre, "redirect": false });
    let r = post(&app, "/sim/merchants/m9/authorize", b).await.json();
    assert_eq!((r["location"].clone(), r["locations"].clone()), (Value::Null, json!([])), "{r}");
    assert_eq!(r["events"][0]["info_type"], "updateauthorized");
    let last = bridge.events().last().cloned().expect("event");
    let p = last.plain.expect("plain");
    assert_eq!(p["InfoType"], "updateauthorized");
    post(&app, "/sim/clock", json!({ "advance_seconds": 600 })).await;
    let token = component_token(&app).await;
    let expired = call(&app, "api_query_auth", &token, json!({ "authorization_code": p["AuthorizationCode"] })).await;
    assert_wx_error(&expired, 61010, "code is expired");
    let truth = get(&app, "/sim/component").await.json();
    assert_eq!(truth["authorizations"][M9_OA]["merchant"], "m9");
    assert_eq!(truth["authorizations"][M9_OA]["authorized"], true);
}

#[tokio::test]
async fn authorizer_refresh_tokens_rotate() {
    let bridge = Bridge::start().await;
    let app = component_sim(&bridge.base).router();
    let (token, info) = authorized(&app, M9_OA).await;
    let r0 = s(&info["authorizer_refresh_token"]);
    let refresh = |r: &str| json!({ "authorizer_appid": M9_OA, "authorizer_refresh_token": r });
    let a = call(&app, "api_authorizer_token", &token, refresh(&r0)).await.json();
    let r1 = s(&a["authorizer_refresh_token"]);
    assert_ne!(r1, r0);
    assert_eq!(a["expires_in"], 7200);
    assert_ne!(a["authorizer_access_token"], info["authorizer_access_token"]);
    assert_wx_error(&call(&app, "api_authorizer_token", &token, refresh(&r0)).await, 61023, "refresh_token is invalid");
    let got = call(&app, "api_get_authorizer_info", &token, json!({ "authorizer_appid": M9_OA })).await.json();
    assert_eq!(got["authorization_info"]["authorizer_refresh_token"], r1.as_str(), "{got}");
    assert_eq!(got["authorizer_info"]["nick_name"], "M9 official account");
    assert!(s(&got["authorizer_info"]["user_name"]).starts_with("gh_"));
    assert!(got["authorizer_info"].get("MiniProgramInfo").is_none());
    let b = call(&app, "api_authorizer_token", &token, refresh(&r1)).await.json();
    assert!(b["authorizer_access_token"].is_string(), "{b}");
    // The mini program was never authorized.
    let mp = json!({ "authorizer_appid": M9_MP, "authorizer_refresh_token": r0 });
    let not = "component is not authorized by this account";
    assert_wx_error(&call(&app, "api_authorizer_token", &token, mp).await, 61003, not);
    let info = call(&app, "api_get_authorizer_info", &token, json!({ "authorizer_appid": M9_MP })).await;
    assert_wx_error(&info, 61003, not);
}

#[tokio::test]
async fn component_jscode2session_for_an_authorized_mini_program() {
    let bridge = Bridge::start().await;
    let sim = component_sim(&bridge.base);
    let app = sim.router();
    let token = component_token(&app).await;
    let uri = |code: &str, t: &str| {
        format!(
            "/sns/component/jscode2session?appid={M9_MP}&js_code={code}&grant_type=authorization_code\
             &component_appid={COMPONENT}&component_access_token={t}"
        )
    };
    let login = || async { s(&post(&app, "/sim/users/alice/login", json!({ "appid": M9_MP })).await.json()["code"]) };
    let not = "component is not authorized by this account";
    assert_wx_error(&get(&app, &uri(&login().await, &token)).await, 61003, not);

    let a = authorize(&app, &token, &[M9_MP]).await;
    let info = query_auth(&app, &token, &auth_code(&s(&a["location"]))).await;
    let code = login().await;
    let r = get(&app, &uri(&code, &token)).await.json();
    assert_eq!(r["openid"], identity(&app, "alice", M9_MP).await["openid"], "{r}");
    assert!(r["session_key"].is_string());
    assert_wx_error(&get(&app, &uri(&code, &token)).await, 40163, "code been used");
    // An authorizer's or an app's access token is not a component token.
    let authorizer = s(&info["authorizer_access_token"]);
    assert_wx_error(&get(&app, &uri(&login().await, &authorizer)).await, 48001, "api unauthorized");
    let own = access_token(&app, &sim, MP).await;
    assert_wx_error(&get(&app, &uri(&login().await, &own)).await, 48001, "api unauthorized");
    let got = call(&app, "api_get_authorizer_info", &token, json!({ "authorizer_appid": M9_MP })).await.json();
    assert_eq!(got["authorizer_info"]["MiniProgramInfo"], json!({}));
    // A newer component token makes this one stale after 5 minutes.
    let newer = component_token(&app).await;
    post(&app, "/sim/clock", json!({ "advance_seconds": 300 })).await;
    let stale = get(&app, &uri(&login().await, &token)).await;
    assert_wx_error(&stale, 40001, "invalid credential, access_token is invalid or not latest");
    assert!(get(&app, &uri(&login().await, &newer)).await.json()["openid"].is_string());

    // Unauthorized: 61003 again, and the event is pushed.
    let r = post(&app, "/sim/merchants/m9/unauthorize", json!({ "appid": M9_MP })).await;
    assert_eq!(r.json(), json!({"status": 200, "body": "success"}), "{}", r.text);
    assert_wx_error(&get(&app, &uri(&login().await, &newer)).await, 61003, not);
    let last = bridge.events().last().cloned().expect("event");
    let p = last.plain.expect("plain");
    assert_eq!((p["InfoType"].as_str(), p["AuthorizerAppid"].as_str()), ("unauthorized", M9_MP));
    assert_eq!(p.len(), 4, "AppId, CreateTime, InfoType, AuthorizerAppid: {p:?}");
    assert!(last.msg_signature_ok);
    let r = post(&app, "/sim/merchants/m9/unauthorize", json!({ "appid": M9_MP })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "not authorized any more");
}

#[tokio::test]
async fn oa_web_authorization_through_the_platform() {
    let bridge = Bridge::start().await;
    let app = component_sim(&bridge.base).router();
    let token = component_token(&app).await;
    let authorize_uri = |redirect: &str| {
        format!(
            "/connect/oauth2/authorize?appid={M9_OA}&redirect_uri={}&response_type=code&scope=snsapi_userinfo\
             &state=s1&component_appid={COMPONENT}#wechat_redirect",
            urlencode(redirect)
        )
    };
    let r = get_as(&app, "carol", &authorize_uri("https://id.example.com/cb")).await;
    assert!(r.text.contains("data-error=\"61003\""), "not authorized yet: {}", r.text);
    authorize(&app, &token, &[M9_OA]).await;
    let r = get_as(&app, "carol", &authorize_uri("https://elsewhere.example.com/cb")).await;
    assert!(r.text.contains("data-errcode=\"10003\""), "the platform's domains decide: {}", r.text);
    let r = get_as(&app, "carol", &authorize_uri("https://id.example.com/cb?x=1")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let location = r.location.expect("location");
    let url = url::Url::parse(&location).expect("url");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!((q["x"].as_str(), q["state"].as_str(), q["appid"].as_str()), ("1", "s1", M9_OA), "{location}");
    let code = &q["code"];
    // Only the platform can exchange the code.
    let own = format!("/sns/oauth2/access_token?appid={M9_OA}&secret=&code={code}&grant_type=authorization_code");
    assert_wx_error(&get(&app, &own).await, 40125, "invalid appsecret");
    let exchange = |t: &str| {
        format!(
            "/sns/oauth2/component/access_token?appid={M9_OA}&code={code}&grant_type=authorization_code\
             &component_appid={COMPONENT}&component_access_token={t}"
        )
    };
    let r = get(&app, &exchange(&token)).await.json();
    let truth = identity(&app, "carol", M9_OA).await;
    assert_eq!(r["openid"], truth["openid"], "{r}");
    assert_eq!(r["unionid"], truth["unionid"]);
    assert_eq!(r["scope"], "snsapi_userinfo");
    assert_wx_error(&get(&app, &exchange(&token)).await, 40163, "code been used");
    let userinfo =
        format!("/sns/userinfo?access_token={}&openid={}&lang=zh_CN", s(&r["access_token"]), s(&r["openid"]));
    assert_eq!(get(&app, &userinfo).await.json()["nickname"], "carol");
    assert_wx_error(
        &get(&app, &exchange("bogus")).await,
        40001,
        "invalid credential, access_token is invalid or not latest",
    );
}

#[tokio::test]
async fn authorizer_tokens_work_for_qr_codes_and_pushes_go_to_the_message_url() {
    let bridge = Bridge::start().await;
    let sim = component_sim(&bridge.base);
    let app = sim.router();
    let (token, info) = authorized(&app, M9_OA).await;
    let access = s(&info["authorizer_access_token"]);
    let ticket = qr_ticket(&app, &access, "login-7", 600).await;
    let r = post(&app, "/sim/users/dave/scan", json!({ "ticket": ticket })).await.json();
    assert_eq!((r["status"].as_str(), r["event"].as_str()), (Some("pushed"), Some("subscribe")), "{r}");

    let push = bridge.got().into_iter().find(|g| g.path != EVENTS_PATH).expect("a push to the message URL");
    assert_eq!(push.path, format!("/v1/wechat/push/{M9_OA}"), "$APPID$ is filled in");
    assert!(push.signature_ok && push.msg_signature_ok, "{push:?}");
    let oa = sim.registry().app(M9_OA).expect("oa").clone();
    assert_eq!(push.envelope["ToUserName"], oa.original_id());
    let p = push.plain.as_ref().expect("decrypts with the component key and receive id");
    assert_eq!(p["ToUserName"], oa.original_id());
    assert_eq!(p["EventKey"], "qrscene_login-7");
    assert_eq!(push.params["openid"], identity(&app, "dave", M9_OA).await["openid"].as_str().unwrap_or(""));
    let log = get(&app, "/sim/pushes").await.json();
    let last = log["pushes"].as_array().and_then(|p| p.last()).cloned().expect("logged");
    assert_eq!((last["appid"].as_str(), last["component_appid"].as_str()), (Some(M9_OA), Some(COMPONENT)));

    // The customer-service window the scan opened takes the authorizer token too.
    let msg = json!({"touser": p["FromUserName"], "msgtype": "text", "text": {"content": "hi"}});
    let r = post(&app, &format!("/cgi-bin/message/custom/send?access_token={access}"), msg).await;
    assert_eq!(r.json()["errcode"], 0, "{}", r.text);
    // A component token is no access token.
    let body = json!({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 1}}});
    let r = post(&app, &format!("/cgi-bin/qrcode/create?access_token={token}"), body.clone()).await;
    assert_wx_error(&r, 40001, "invalid credential, access_token is invalid or not latest");

    // Unauthorized: the authorizer token dies, pushes stop, the info answers 61003.
    let r = post(&app, "/sim/merchants/m9/unauthorize", json!({ "appid": M9_OA })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = post(&app, &format!("/cgi-bin/qrcode/create?access_token={access}"), body).await;
    assert_wx_error(&r, 40001, "invalid credential, access_token is invalid or not latest");
    let r = post(&app, "/sim/users/dave/click", json!({ "appid": M9_OA, "key": "k" })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let info = call(&app, "api_get_authorizer_info", &token, json!({ "authorizer_appid": M9_OA })).await;
    assert_wx_error(&info, 61003, "component is not authorized by this account");
    let truth = get(&app, "/sim/component").await.json();
    assert_eq!(truth["authorizations"][M9_OA]["authorized"], false);
}

#[tokio::test]
async fn put_component_start_push_ticket_and_apps_listing() {
    let bridge = Bridge::start().await;
    // The demo registry's own section serves until one is configured at run time.
    let sim = demo_sim(Some(bridge.base.clone()));
    let app = sim.router();
    assert_eq!(get(&app, "/sim/component").await.status, StatusCode::OK);
    let config = json!({"component_appid": COMPONENT, "secret": COMPONENT_SECRET, "token": COMPONENT_TOKEN,
        "encoding_aes_key": COMPONENT_KEY, "events_url": EVENTS_PATH});
    let r = put(&app, "/sim/component", config.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["events_url"], format!("{}{EVENTS_PATH}", bridge.base));
    // Domains not given: the registry section's.
    assert_eq!(r.json()["domains"], json!(["127.0.0.1", "localhost", "id.example.com"]));
    let mut bad = config.clone();
    bad["encoding_aes_key"] = json!("short");
    assert_eq!(put(&app, "/sim/component", bad).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(sim.component().map(|c| c.component_appid).as_deref(), Some(COMPONENT));

    let listing = get(&app, "/sim/apps").await.json();
    assert_eq!(listing["component"]["secret"], COMPONENT_SECRET);
    let auth = |a: &Value| a["auth"] == "secret" || (a["auth"] == "component" && a.get("secret").is_none());
    assert!(listing["apps"].as_array().expect("apps").iter().all(auth));
    let created = json!({"kind": "official_account", "owner": "m9", "auth": "component"});
    assert_eq!(put(&app, &format!("/sim/apps/{M9_OA}"), created).await.status, StatusCode::CREATED);
    let listing = get(&app, "/sim/apps").await.json();
    let listed = listing["apps"].as_array().and_then(|a| a.iter().find(|x| x["appid"] == M9_OA)).cloned();
    let listed = listed.expect("listed");
    assert_eq!(listed["auth"], "component");
    assert!(listed.get("secret").is_none(), "{listed}");

    // The bridge asks WeChat to push again: an answer at once, a ticket shortly after.
    let start = json!({"component_appid": COMPONENT, "component_secret": "wrong"});
    assert_wx_error(&post(&app, "/cgi-bin/component/api_start_push_ticket", start).await, 40125, "invalid appsecret");
    let start = json!({"component_appid": COMPONENT, "component_secret": COMPONENT_SECRET});
    let r = post(&app, "/cgi-bin/component/api_start_push_ticket", start).await;
    assert_eq!(r.json(), json!({"errcode": 0, "errmsg": "ok"}));
    let events = bridge.wait_events(1, 5).await;
    let ticket = events[0].plain.as_ref().map(|p| p["ComponentVerifyTicket"].clone()).expect("ticket");
    assert!(component_token_with(&app, &ticket).await.json()["component_access_token"].is_string());
    // Reset forgets the tickets, not the configuration.
    post(&app, "/sim/reset", json!({})).await;
    assert_wx_error(&component_token_with(&app, &ticket).await, 61006, "component ticket is invalid");
    assert_eq!(get(&app, "/sim/component").await.json()["ticket"], Value::Null);
}

#[tokio::test]
async fn the_ticket_timer_pushes_every_ten_simulated_minutes() {
    let bridge = Bridge::start().await;
    let sim = component_sim(&bridge.base);
    let app = sim.router();
    let timer = sim.spawn_ticket_timer();
    assert_eq!(bridge.wait_events(1, 5).await.len(), 1, "a first ticket at once");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(bridge.events().len(), 1, "not again before 10 minutes");
    post(&app, "/sim/clock", json!({ "advance_seconds": 10 * 60 })).await;
    assert_eq!(bridge.wait_events(2, 5).await.len(), 2, "one more after the clock moved 10 minutes");
    post(&app, "/sim/clock", json!({ "advance_seconds": 24 * 3600 })).await;
    assert_eq!(bridge.wait_events(3, 5).await.len(), 3);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(bridge.events().len(), 3, "one push however far the clock jumped");
    let truth = get(&app, "/sim/component").await.json();
    let last = bridge.events().last().and_then(|e| e.plain.clone()).expect("plain");
    assert_eq!(truth["ticket"], last["ComponentVerifyTicket"].as_str());
    timer.abort();
}
