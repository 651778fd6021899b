//! Helpers shared by the official-account and Open Platform tests: the simulator as a router
//! (driven with `oneshot`), and a tiny HTTP receiver on 127.0.0.1:0 that plays the bridge's push
//! endpoint (verifies signatures, decrypts, answers a passive reply) unless told otherwise.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use wechat_sim::crypto::{msg_signature, push_signature, MsgCrypt};
use wechat_sim::sim::xml_fields;
use wechat_sim::{Registry, Sim, SimConfig};

pub const MP: &str = "wx1a2b3c4d5e6f7001";
/// The pivot OA: safe mode.
pub const PIVOT: &str = "wx1a2b3c4d5e6f7002";
pub const APP: &str = "wx1a2b3c4d5e6f7003";
pub const WEB: &str = "wx1a2b3c4d5e6f7004";
/// Merchant 1's OA: plain mode.
pub const M1_OA: &str = "wx2b3c4d5e6f708102";

pub fn demo_registry() -> Registry {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo-apps.json");
    Registry::from_file(path).expect("demo registry")
}

pub fn demo_sim(push_base: Option<String>) -> Arc<Sim> {
    let mut config = SimConfig::new(demo_registry());
    config.push_base = push_base;
    Sim::new(config)
}

pub fn secret(sim: &Sim, appid: &str) -> String {
    sim.registry().app(appid).expect("app").secret.clone()
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub location: Option<String>,
    pub bytes: Vec<u8>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let header_str = |name| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header_str(header::CONTENT_TYPE).unwrap_or_default();
    let location = header_str(header::LOCATION);
    let bytes = res.into_body().collect().await.expect("body").to_bytes().to_vec();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Reply { status, content_type, location, bytes, text }
}

pub async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).expect("request")).await
}

pub async fn get_as(app: &Router, user: &str, uri: &str) -> Reply {
    send(app, Request::get(uri).header("X-WxSim-User", user).body(Body::empty()).expect("request")).await
}

pub async fn post(app: &Router, uri: &str, body: Value) -> Reply {
    send_json(app, Method::POST, uri, body).await
}

pub async fn put(app: &Router, uri: &str, body: Value) -> Reply {
    send_json(app, Method::PUT, uri, body).await
}

async fn send_json(app: &Router, method: Method, uri: &str, body: Value) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    send(app, req).await
}

/// Asserts a WeChat error answer: HTTP 200, WeChat's content type, errcode and `errmsg, rid: …`.
pub fn assert_wx_error(r: &Reply, errcode: i64, errmsg: &str) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.content_type, "application/json; encoding=utf-8");
    let v = r.json();
    assert_eq!(v["errcode"], errcode, "{}", r.text);
    let msg = v["errmsg"].as_str().expect("errmsg");
    assert!(msg.starts_with(&format!("{errmsg}, rid: ")), "errmsg {msg:?} does not start with {errmsg:?}");
}

pub async fn identity(app: &Router, user: &str, appid: &str) -> Value {
    let r = get(app, &format!("/sim/users/{user}/identity?appid={appid}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

/// A base access token from `/cgi-bin/token`.
pub async fn access_token(app: &Router, sim: &Sim, appid: &str) -> String {
    let uri = format!("/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={}", secret(sim, appid));
    let r = get(app, &uri).await;
    r.json()["access_token"].as_str().unwrap_or_else(|| panic!("{}", r.text)).to_owned()
}

/// A temporary string-scene QR code of the OA; its ticket.
pub async fn qr_ticket(app: &Router, token: &str, scene: &str, expire_seconds: i64) -> String {
    let body = serde_json::json!({
        "expire_seconds": expire_seconds,
        "action_name": "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": scene}},
    });
    let r = post(app, &format!("/cgi-bin/qrcode/create?access_token={token}"), body).await;
    r.json()["ticket"].as_str().unwrap_or_else(|| panic!("{}", r.text)).to_owned()
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---- the receiver ----------------------------------------------------------------------------

/// How the receiver answers the next request (then it goes back to [`Answer::Auto`]).
#[derive(Debug, Clone)]
pub enum Answer {
    /// Verify, decrypt, and answer a text reply `"<Event>:<EventKey>"` (encrypted in safe mode).
    Auto,
    /// This status with an empty body.
    Status(u16),
    /// Sleep this long, then answer `success`.
    Sleep(u64),
    /// 200 with this body as is.
    Raw(String),
}

/// One request the receiver got, and what it made of it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub query: String,
    pub params: HashMap<String, String>,
    pub content_type: String,
    pub body: String,
    /// The plain signature held.
    pub signature_ok: bool,
    /// Safe mode: msg_signature held and the body decrypted (for this appid).
    pub msg_signature_ok: bool,
    /// The event XML (decrypted in safe mode).
    pub plain: Option<String>,
}

#[derive(Clone)]
struct RecvState {
    registry: Arc<Registry>,
    log: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

pub struct Receiver {
    pub base: String,
    log: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let state = RecvState { registry: Arc::new(demo_registry()), log: Arc::default(), script: Arc::default() };
        let (log, script) = (state.log.clone(), state.script.clone());
        let router = Router::new().fallback(receive).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { base: format!("http://{addr}"), log, script, task }
    }

    /// Queues answers for the next requests.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().expect("lock").extend(answers);
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().expect("lock").clone()
    }
}

fn cdata(s: &str) -> String {
    format!("<![CDATA[{s}]]>")
}

async fn receive(State(st): State<RecvState>, uri: Uri, headers: HeaderMap, body: String) -> Response {
    let query = uri.query().unwrap_or("").to_owned();
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let appid = uri.path().rsplit('/').next().unwrap_or("").to_owned();
    let app = st.registry.app(&appid).cloned();
    let token = app.as_ref().and_then(|a| a.token.clone()).unwrap_or_default();
    let p = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let signature_ok = push_signature(&token, p("timestamp"), p("nonce")) == p("signature");
    let crypt = app
        .as_ref()
        .filter(|a| a.safe_mode)
        .and_then(|a| a.encoding_aes_key.as_deref())
        .and_then(|k| MsgCrypt::new(k, &appid).ok());
    let (msg_signature_ok, plain) = match &crypt {
        Some(crypt) => {
            let encrypt = xml_fields(&body).ok().and_then(|f| f.get("Encrypt").cloned()).unwrap_or_default();
            let sig_ok = p("encrypt_type") == "aes"
                && msg_signature(&token, p("timestamp"), p("nonce"), &encrypt) == p("msg_signature");
            let plain = crypt.decrypt(&encrypt).ok();
            (sig_ok && plain.is_some(), plain)
        }
        None => (false, Some(body.clone())),
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    st.log.lock().expect("lock").push(Received {
        path: uri.path().to_owned(),
        query,
        params: params.clone(),
        content_type,
        body: body.clone(),
        signature_ok,
        msg_signature_ok,
        plain: plain.clone(),
    });
    let answer = st.script.lock().expect("lock").pop_front().unwrap_or(Answer::Auto);
    match answer {
        Answer::Status(s) => StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY).into_response(),
        Answer::Sleep(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            "success".into_response()
        }
        Answer::Raw(b) => b.into_response(),
        Answer::Auto => {
            let ok = signature_ok && (crypt.is_none() || msg_signature_ok);
            let Some(f) = plain.as_deref().and_then(|x| xml_fields(x).ok()).filter(|_| ok) else {
                return StatusCode::FORBIDDEN.into_response();
            };
            let field = |k: &str| f.get(k).cloned().unwrap_or_default();
            let content = format!("{}:{}", field("Event"), field("EventKey"));
            let reply = format!(
                "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>1700000000</CreateTime>\
                 <MsgType><![CDATA[text]]></MsgType><Content>{}</Content></xml>",
                cdata(&field("FromUserName")),
                cdata(&field("ToUserName")),
                cdata(&content)
            );
            match &crypt {
                Some(crypt) => sealed(crypt, &token, &reply).into_response(),
                None => reply.into_response(),
            }
        }
    }
}

/// The encrypted reply envelope of contract §5.5.
pub fn sealed(crypt: &MsgCrypt, token: &str, reply: &str) -> String {
    let encrypt = crypt.encrypt(reply);
    let (ts, nonce) = ("1411525903", "461056294");
    let sig = msg_signature(token, ts, nonce, &encrypt);
    format!(
        "<xml>\n<Encrypt>{}</Encrypt>\n<MsgSignature>{}</MsgSignature>\n<TimeStamp>{ts}</TimeStamp>\n<Nonce>{}</Nonce>\n</xml>",
        cdata(&encrypt),
        cdata(&sig),
        cdata(nonce)
    )
}
