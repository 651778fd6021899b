//! Server pushes (contract §5): what WeChat's servers send to an official account's URL when a
//! user follows, scans a parametric QR code, clicks a menu item or unfollows, and how they read
//! the passive reply.
//!
//! * Body: the event XML of §5.3 (`ToUserName` = the OA's original id, `FromUserName` = the
//!   user's openid in the OA); in safe mode `<xml><ToUserName/><Encrypt/></xml>` (§5.5).
//! * Query: `signature, timestamp, nonce, openid`, and in safe mode `encrypt_type=aes` and
//!   `msg_signature` as well (the plain signature is still sent, §5.2).
//! * POST, `Content-Type: text/xml`. An attempt that is not answered 200 within the push timeout
//!   (5 s) is sent again, unchanged, up to `push_retries` times (3); no pause in between.
//! * A 200 answer of `success` or nothing means "no reply". Anything else must be a passive reply
//!   (in safe mode an encrypted envelope whose MsgSignature holds) addressed back to the user;
//!   otherwise the push ends as `bad_reply` (WeChat shows the user "该公众号暂时无法提供服务").

use std::collections::HashMap;

use serde::Serialize;

use super::{lock, validate_user, Sim, SimError};
use crate::crypto::{msg_signature, push_signature, MsgCrypt};
use crate::ids;
use crate::registry::{App, ComponentConfig};

/// Retries after the first attempt, by default (WeChat "retries three times in total").
pub const DEFAULT_PUSH_RETRIES: u32 = 3;
pub const MAX_PUSH_RETRIES: u32 = 10;
/// WeChat waits 5 s for an answer.
pub const DEFAULT_PUSH_TIMEOUT_MS: u64 = 5000;
pub const MAX_PUSH_TIMEOUT_MS: u64 = 60_000;
/// `/sim/pushes/replay` sends the last push at most this many times per call.
pub const MAX_REPLAY_TIMES: u32 = 20;
/// How many pushes `/sim/pushes` remembers.
const PUSH_LOG_LEN: usize = 100;

/// How a push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// Answered 200 with no reply or a valid passive reply.
    Pushed,
    /// Answered 200 with something WeChat cannot use as a reply.
    BadReply,
    /// Never answered 200 in time, retries included.
    Failed,
}

/// One HTTP attempt of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushAttempt {
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a push came to (the answer of `/sim/users/{user}/scan`, `/click`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushOutcome {
    pub status: PushStatus,
    pub event: String,
    pub appid: String,
    pub openid: String,
    /// The HTTP status of the last attempt (`None` if it got no answer at all).
    pub http_status: Option<u16>,
    /// How many times the push was sent.
    pub attempts: u32,
    /// The `Content` of a text reply (decrypted in safe mode).
    pub reply: Option<String>,
    /// The `MsgType` of the reply, if any.
    pub reply_type: Option<String>,
    /// The reply XML (decrypted in safe mode), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_xml: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer of `/sim/users/{user}/scan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanResult {
    /// The ticket is unknown or expired: WeChat shows "二维码已过期" and pushes nothing.
    Expired,
    Pushed(PushOutcome),
}

/// A push as sent on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct PushDelivery {
    pub appid: String,
    pub user: String,
    pub openid: String,
    pub original_id: String,
    pub event: String,
    /// The push URL with its query string.
    pub url: String,
    pub body: String,
    pub safe_mode: bool,
    /// The third-party platform that sealed it: its own events, or an authorized app's push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_appid: Option<String>,
    /// The platform's authorization-event URL wants exactly `success`, no passive reply.
    #[serde(skip)]
    expect_success: bool,
    #[serde(skip)]
    token: String,
    #[serde(skip)]
    crypt: Option<MsgCrypt>,
}

/// A push in the log of `/sim/pushes`.
#[derive(Debug, Clone, Serialize)]
pub struct PushRecord {
    #[serde(flatten)]
    pub delivery: PushDelivery,
    pub status: PushStatus,
    pub attempts: Vec<PushAttempt>,
    /// Sent by `/sim/pushes/replay`.
    pub replay: bool,
}

/// Where and how an OA's pushes go, checked before anything changes.
struct Target {
    appid: String,
    openid: String,
    original_id: String,
    url: String,
    token: String,
    crypt: Option<MsgCrypt>,
    component_appid: Option<String>,
}

/// Where and with which keys an OA's pushes go.
struct Channel {
    url: String,
    token: String,
    crypt: Option<MsgCrypt>,
    component_appid: Option<String>,
}

/// The platform's cipher: its key, receive id = component_appid.
fn component_crypt(c: &ComponentConfig) -> Result<MsgCrypt, SimError> {
    MsgCrypt::new(&c.encoding_aes_key, &c.component_appid)
        .map_err(|e| SimError::Invalid(format!("encoding_aes_key of the component: {e}")))
}

/// `<![CDATA[…]]>`, splitting any `]]>` inside the value.
pub(super) fn cdata(v: &str) -> String {
    format!("<![CDATA[{}]]>", v.replace("]]>", "]]]]><![CDATA[>"))
}

/// An event push body exactly as WeChat writes it (contract §5.3), `Ticket` only for QR scans.
pub fn event_xml(
    to_user: &str,
    from_user: &str,
    create_time: i64,
    event: &str,
    event_key: &str,
    ticket: Option<&str>,
) -> String {
    let ticket = ticket.map(|t| format!("<Ticket>{}</Ticket>", cdata(t))).unwrap_or_default();
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event>{}</Event><EventKey>{}</EventKey>{ticket}</xml>",
        cdata(to_user),
        cdata(from_user),
        cdata(event),
        cdata(event_key),
    )
}

/// The child elements of the `<xml>` root and their text (CDATA or escaped text), as WeChat
/// reads a flat message. Nested elements (e.g. `<Image><MediaId>`) give their own text only.
pub fn xml_fields(xml: &str) -> Result<HashMap<String, String>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = HashMap::new();
    let mut depth = 0usize;
    let mut current: Option<String> = None;
    let mut root = false;
    loop {
        let event = reader.read_event().map_err(|e| format!("{e} at byte {}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => {
                depth += 1;
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if depth == 1 {
                    if root || name != "xml" {
                        return Err(format!("the root element must be <xml>, not <{name}>"));
                    }
                    root = true;
                } else if depth == 2 {
                    out.entry(name.clone()).or_insert_with(String::new);
                    current = Some(name);
                }
            }
            Event::Empty(e) => {
                if depth == 1 {
                    out.entry(String::from_utf8_lossy(e.name().as_ref()).into_owned()).or_insert_with(String::new);
                } else if depth == 0 {
                    return Err("the root element must be <xml>".into());
                }
            }
            Event::End(_) => {
                if depth == 2 {
                    current = None;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) if depth == 2 => {
                let text = t.unescape().map_err(|e| e.to_string())?;
                if let Some(v) = current.as_ref().and_then(|k| out.get_mut(k)) {
                    v.push_str(&text);
                }
            }
            Event::CData(c) if depth == 2 => {
                let text = c.decode().map_err(|e| e.to_string())?;
                if let Some(v) = current.as_ref().and_then(|k| out.get_mut(k)) {
                    v.push_str(&text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root {
        return Err("no <xml> root element".into());
    }
    Ok(out)
}

fn field<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    f.get(name).map(|v| v.trim()).ok_or_else(|| format!("the reply has no <{name}>"))
}

/// The plaintext passive reply: the body itself, or in safe mode the decrypted `Encrypt` after
/// checking `MsgSignature = sha1(sort(token, TimeStamp, Nonce, Encrypt))`.
fn open_reply(d: &PushDelivery, body: &str) -> Result<String, String> {
    let Some(crypt) = &d.crypt else {
        return Ok(body.to_owned());
    };
    let f = xml_fields(body).map_err(|e| format!("the reply is not XML: {e}"))?;
    if !f.contains_key("Encrypt") {
        return Err("safe mode: the reply is not an encrypted envelope (no <Encrypt>)".into());
    }
    let encrypt = field(&f, "Encrypt")?;
    let timestamp = field(&f, "TimeStamp")?;
    let nonce = field(&f, "Nonce")?;
    let signature = field(&f, "MsgSignature")?;
    if msg_signature(&d.token, timestamp, nonce, encrypt) != signature {
        return Err("safe mode: MsgSignature is not sha1(sort(token, TimeStamp, Nonce, Encrypt))".into());
    }
    crypt.decrypt(encrypt).map_err(|e| format!("safe mode: Encrypt does not decrypt: {e}"))
}

impl PushOutcome {
    fn new(d: &PushDelivery, status: PushStatus, http_status: Option<u16>, attempts: usize) -> Self {
        PushOutcome {
            status,
            event: d.event.clone(),
            appid: d.appid.clone(),
            openid: d.openid.clone(),
            http_status,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            reply: None,
            reply_type: None,
            reply_xml: None,
            error: None,
        }
    }

    fn bad(mut self, error: impl Into<String>) -> Self {
        self.status = PushStatus::BadReply;
        self.reply = None;
        self.reply_type = None;
        self.error = Some(error.into());
        self
    }
}

/// Reads a 200 answer the way WeChat does.
fn judge_reply(d: &PushDelivery, body: &[u8], attempts: usize) -> PushOutcome {
    let out = PushOutcome::new(d, PushStatus::Pushed, Some(200), attempts);
    let Ok(text) = std::str::from_utf8(body) else {
        return out.bad("the reply is not UTF-8");
    };
    let text = text.trim();
    if d.expect_success {
        return if text == "success" { out } else { out.bad(format!("the answer must be success, not {text:?}")) };
    }
    if text.is_empty() || text == "success" {
        return out;
    }
    let plain = match open_reply(d, text) {
        Ok(p) => p,
        Err(e) => return out.bad(e),
    };
    let mut out = out;
    out.reply_xml = Some(plain.clone());
    let f = match xml_fields(&plain) {
        Ok(f) => f,
        Err(e) => return out.bad(format!("the reply is not XML: {e}")),
    };
    let check = || -> Result<(String, Option<String>), String> {
        let to = field(&f, "ToUserName")?;
        if to != d.openid {
            return Err(format!("the reply's ToUserName is {to:?}, not the user's openid {:?}", d.openid));
        }
        let from = field(&f, "FromUserName")?;
        if from != d.original_id {
            return Err(format!("the reply's FromUserName is {from:?}, not the account's id {:?}", d.original_id));
        }
        let created = field(&f, "CreateTime")?;
        if created.parse::<i64>().is_err() {
            return Err(format!("the reply's CreateTime {created:?} is not an integer"));
        }
        let msg_type = field(&f, "MsgType")?.to_owned();
        let content = if msg_type == "text" {
            Some(field(&f, "Content")?.to_owned()).filter(|c| !c.is_empty()).ok_or("a text reply needs a Content")?
        } else {
            return Ok((msg_type, None));
        };
        Ok((msg_type, Some(content)))
    };
    match check() {
        Ok((msg_type, content)) => {
            out.reply_type = Some(msg_type);
            out.reply = content;
            out
        }
        Err(e) => out.bad(e),
    }
}

/// One HTTP attempt: the status and body of the answer, or why there was none.
async fn send_once(
    client: &reqwest::Client,
    d: &PushDelivery,
    timeout: std::time::Duration,
) -> Result<(u16, Vec<u8>), PushAttempt> {
    let describe = |e: reqwest::Error| {
        if e.is_timeout() {
            format!("no answer within {} ms", timeout.as_millis())
        } else {
            format!("{e}")
        }
    };
    let res = client
        .post(&d.url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "text/xml")
        .header(reqwest::header::USER_AGENT, "Mozilla/4.0")
        .body(d.body.clone())
        .send()
        .await;
    let resp = res.map_err(|e| PushAttempt { http_status: None, error: Some(describe(e)) })?;
    let status = resp.status().as_u16();
    match resp.bytes().await {
        Ok(body) => Ok((status, body.to_vec())),
        Err(e) => Err(PushAttempt { http_status: Some(status), error: Some(describe(e)) }),
    }
}

/// Signs (and with `crypt` seals) a push for the wire: the query string (`signature`,
/// `timestamp`, `nonce`, then `extra`, then in safe mode `encrypt_type` and `msg_signature`) and
/// the body (in safe mode `<xml><{tag}>{value}</{tag}><Encrypt/></xml>`).
fn seal(
    token: &str,
    crypt: Option<&MsgCrypt>,
    timestamp: &str,
    extra: &[(&str, &str)],
    (tag, value): (&str, &str),
    xml: String,
) -> (String, String) {
    let nonce = rand::random::<u32>().to_string();
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("signature", &push_signature(token, timestamp, &nonce))
        .append_pair("timestamp", timestamp)
        .append_pair("nonce", &nonce);
    for (k, v) in extra {
        query.append_pair(k, v);
    }
    let body = match crypt {
        Some(crypt) => {
            let encrypt = crypt.encrypt(&xml);
            query
                .append_pair("encrypt_type", "aes")
                .append_pair("msg_signature", &msg_signature(token, timestamp, &nonce, &encrypt));
            format!("<xml><{tag}>{}</{tag}><Encrypt>{}</Encrypt></xml>", cdata(value), cdata(&encrypt))
        }
        None => xml,
    };
    (query.finish(), body)
}

/// `url` with `query` appended (`?` or `&`).
fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

impl Sim {
    fn http_client(&self) -> Result<reqwest::Client, String> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))
            })
            .clone()
    }

    /// The official account, checked for everything a push needs: a token, a key in safe mode
    /// and a push URL. A component app is pushed to only while authorized, through the
    /// platform's message URL, in safe mode with the platform's token and key.
    fn push_target(&self, user: &str, appid: &str) -> Result<Target, SimError> {
        validate_user(user)?;
        let app = self.official_account(appid)?;
        let channel = if app.is_component() { self.component_channel(app)? } else { self.own_channel(app)? };
        Ok(Target {
            appid: appid.to_owned(),
            openid: ids::openid(appid, user),
            original_id: app.original_id(),
            url: channel.url,
            token: channel.token,
            crypt: channel.crypt,
            component_appid: channel.component_appid,
        })
    }

    /// The OA's own push URL, token and (in safe mode) key.
    fn own_channel(&self, app: &App) -> Result<Channel, SimError> {
        let appid = app.appid.as_str();
        let token = app
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SimError::Invalid(format!("official account {appid} has no token in the registry")))?;
        let crypt = if app.safe_mode {
            let key = app.encoding_aes_key.as_deref().ok_or_else(|| {
                SimError::Invalid(format!("official account {appid} is in safe mode without an encoding_aes_key"))
            })?;
            Some(
                MsgCrypt::new(key, appid)
                    .map_err(|e| SimError::Invalid(format!("encoding_aes_key of {appid}: {e}")))?,
            )
        } else {
            None
        };
        let url = app.push_url(self.push_base()).ok_or_else(|| {
            SimError::Invalid(format!(
                "no push URL for {appid}: start the simulator with a push base (--push-base) or give the app a push_url"
            ))
        })?;
        Ok(Channel { url, token, crypt, component_appid: None })
    }

    /// An authorized component app's pushes: the platform's message URL, token and key.
    fn component_channel(&self, app: &App) -> Result<Channel, SimError> {
        let appid = app.appid.as_str();
        let c = self.authorized_component(appid).ok_or_else(|| {
            SimError::Invalid(format!("{appid} is a component app not authorized to the third-party platform"))
        })?;
        let url = c.message_url(self.push_base(), appid).ok_or_else(|| {
            SimError::Invalid("no message URL: start the simulator with a push base or give the component one".into())
        })?;
        Ok(Channel { url, crypt: Some(component_crypt(&c)?), token: c.token, component_appid: Some(c.component_appid) })
    }

    /// Seals one of the platform's own events (`InfoType` in `xml`) for its events URL: always
    /// safe mode with the platform's token and key, receive id and envelope `AppId` = its appid.
    pub(super) fn component_delivery(
        &self,
        c: &ComponentConfig,
        info_type: &str,
        appid: &str,
        xml: String,
    ) -> Result<PushDelivery, SimError> {
        let crypt = component_crypt(c)?;
        let url = c.events_url(self.push_base()).ok_or_else(|| {
            SimError::Invalid("no events URL: start the simulator with a push base or give the component one".into())
        })?;
        let timestamp = self.now_seconds().to_string();
        let (query, body) = seal(&c.token, Some(&crypt), &timestamp, &[], ("AppId", &c.component_appid), xml);
        Ok(PushDelivery {
            appid: appid.to_owned(),
            user: String::new(),
            openid: String::new(),
            original_id: String::new(),
            event: info_type.to_owned(),
            url: with_query(&url, &query),
            body,
            safe_mode: true,
            component_appid: Some(c.component_appid.clone()),
            expect_success: true,
            token: c.token.clone(),
            crypt: Some(crypt),
        })
    }

    /// Delivers a push with the configured retries; the outcome and the last answer's text.
    pub(super) async fn deliver_with_retries(&self, d: PushDelivery) -> (PushOutcome, Option<String>) {
        self.deliver_answered(d, self.push_retries().saturating_add(1), false).await
    }

    pub(super) fn official_account(&self, appid: &str) -> Result<&App, SimError> {
        let app = self.app(appid)?;
        if !app.is_official_account() {
            return Err(SimError::Invalid(format!("appid {appid} is not an official account")));
        }
        Ok(app)
    }

    /// Signs (and in safe mode encrypts) an event for the wire.
    fn delivery(&self, user: &str, t: Target, event: &str, event_key: &str, ticket: Option<&str>) -> PushDelivery {
        let now = self.now_seconds();
        let xml = event_xml(&t.original_id, &t.openid, now, event, event_key, ticket);
        let timestamp = now.to_string();
        let (query, body) =
            seal(&t.token, t.crypt.as_ref(), &timestamp, &[("openid", &t.openid)], ("ToUserName", &t.original_id), xml);
        PushDelivery {
            appid: t.appid,
            user: user.to_owned(),
            openid: t.openid,
            original_id: t.original_id,
            event: event.to_owned(),
            url: with_query(&t.url, &query),
            body,
            safe_mode: t.crypt.is_some(),
            component_appid: t.component_appid,
            expect_success: false,
            token: t.token,
            crypt: t.crypt,
        }
    }

    /// Sends a push up to `attempts` times until it is answered 200; records it in the log.
    async fn deliver(&self, d: PushDelivery, attempts: u32, replay: bool) -> PushOutcome {
        self.deliver_answered(d, attempts, replay).await.0
    }

    /// [`Sim::deliver`], and the text of the last HTTP answer (what the platform's events report).
    async fn deliver_answered(&self, d: PushDelivery, attempts: u32, replay: bool) -> (PushOutcome, Option<String>) {
        let mut answer = None;
        let mut tries: Vec<PushAttempt> = Vec::new();
        let outcome = match self.http_client() {
            Err(e) => {
                tries.push(PushAttempt { http_status: None, error: Some(e.clone()) });
                let mut out = PushOutcome::new(&d, PushStatus::Failed, None, 0);
                out.error = Some(e);
                out
            }
            Ok(client) => {
                let timeout = self.push_timeout();
                let mut answered = None;
                for _ in 0..attempts.max(1) {
                    match send_once(&client, &d, timeout).await {
                        Ok((200, body)) => {
                            tries.push(PushAttempt { http_status: Some(200), error: None });
                            answer = Some(String::from_utf8_lossy(&body).into_owned());
                            answered = Some(judge_reply(&d, &body, tries.len()));
                            break;
                        }
                        Ok((status, body)) => {
                            answer = Some(String::from_utf8_lossy(&body).into_owned());
                            let error = Some(format!("HTTP {status}"));
                            tracing::debug!(url = %d.url, status, "push attempt failed");
                            tries.push(PushAttempt { http_status: Some(status), error });
                        }
                        Err(attempt) => {
                            answer = None;
                            tracing::debug!(url = %d.url, ?attempt, "push attempt failed");
                            tries.push(attempt);
                        }
                    }
                }
                answered.unwrap_or_else(|| {
                    let last = tries.last().cloned();
                    let mut out = PushOutcome::new(
                        &d,
                        PushStatus::Failed,
                        last.as_ref().and_then(|a| a.http_status),
                        tries.len(),
                    );
                    out.error = last.and_then(|a| a.error);
                    out
                })
            }
        };
        let mut st = lock(&self.state);
        if st.pushes.len() >= PUSH_LOG_LEN {
            st.pushes.pop_front();
        }
        st.pushes.push_back(PushRecord { delivery: d, status: outcome.status, attempts: tries, replay });
        (outcome, answer)
    }

    async fn push(&self, user: &str, t: Target, event: &str, event_key: &str, ticket: Option<&str>) -> PushOutcome {
        let d = self.delivery(user, t, event, event_key, ticket);
        self.deliver_with_retries(d).await.0
    }

    /// Marks the user as following the OA (or not); whether that changed anything.
    fn set_following(&self, user: &str, appid: &str, on: bool) -> bool {
        let mut st = lock(&self.state);
        let state = st.users.entry(user.to_owned()).or_default();
        if on {
            state.following.insert(appid.to_owned())
        } else {
            state.cs_windows.remove(appid);
            state.following.remove(appid)
        }
    }

    pub fn is_following(&self, user: &str, appid: &str) -> bool {
        lock(&self.state).users.get(user).is_some_and(|u| u.following.contains(appid))
    }

    /// The user follows the OA without any push (a setup helper); whether they did not before.
    /// Following authorizes the OA's Open Platform account (unionids flow there).
    pub fn follow(&self, user: &str, appid: &str) -> Result<bool, SimError> {
        validate_user(user)?;
        self.official_account(appid)?;
        let newly = self.set_following(user, appid, true);
        self.authorize_app(user, appid)?;
        Ok(newly)
    }

    /// The user scans a parametric QR code: nothing happens for an unknown or expired ticket;
    /// otherwise a non-follower follows (`subscribe`, EventKey `qrscene_<scene>`) and a follower
    /// gets `SCAN` (EventKey `<scene>`), both with the Ticket.
    pub async fn scan(&self, user: &str, ticket: &str) -> Result<ScanResult, SimError> {
        validate_user(user)?;
        let Some((appid, scene)) = self.live_qr(ticket) else {
            return Ok(ScanResult::Expired);
        };
        let target = self.push_target(user, &appid)?;
        let newly = self.set_following(user, &appid, true);
        if newly {
            self.authorize_app(user, &appid)?;
        }
        self.open_cs_window(user, &appid);
        let outcome = if newly {
            self.push(user, target, "subscribe", &format!("qrscene_{scene}"), Some(ticket)).await
        } else {
            self.push(user, target, "SCAN", &scene, Some(ticket)).await
        };
        Ok(ScanResult::Pushed(outcome))
    }

    /// The user follows the OA by other means than a QR code (search, profile): `subscribe`
    /// with an empty EventKey. An error if the user already follows.
    pub async fn subscribe(&self, user: &str, appid: &str) -> Result<PushOutcome, SimError> {
        let target = self.push_target(user, appid)?;
        if !self.set_following(user, appid, true) {
            return Err(SimError::Invalid(format!("user {user} already follows {appid}")));
        }
        self.authorize_app(user, appid)?;
        self.open_cs_window(user, appid);
        Ok(self.push(user, target, "subscribe", "", None).await)
    }

    /// The user clicks a `click` menu item: `CLICK` with EventKey = the item's key.
    pub async fn click(&self, user: &str, appid: &str, key: &str) -> Result<PushOutcome, SimError> {
        if key.is_empty() || key.len() > 128 {
            return Err(SimError::Invalid("key must be 1 to 128 bytes".into()));
        }
        let target = self.push_target(user, appid)?;
        self.open_cs_window(user, appid);
        Ok(self.push(user, target, "CLICK", key, None).await)
    }

    /// The user unfollows the OA: `unsubscribe`. An error if the user does not follow.
    pub async fn unsubscribe(&self, user: &str, appid: &str) -> Result<PushOutcome, SimError> {
        let target = self.push_target(user, appid)?;
        if !self.set_following(user, appid, false) {
            return Err(SimError::Invalid(format!("user {user} does not follow {appid}")));
        }
        Ok(self.push(user, target, "unsubscribe", "", None).await)
    }

    /// Sends the last push again, byte for byte (same query, same body), `times` times, one
    /// attempt each (as WeChat's retries look to the receiver).
    pub async fn replay_last_push(&self, times: u32) -> Result<Vec<PushOutcome>, SimError> {
        if !(1..=MAX_REPLAY_TIMES).contains(&times) {
            return Err(SimError::Invalid(format!("times must be 1 to {MAX_REPLAY_TIMES}")));
        }
        let last = lock(&self.state).pushes.back().map(|p| p.delivery.clone());
        let last = last.ok_or_else(|| SimError::Invalid("nothing has been pushed yet".into()))?;
        let mut outcomes = Vec::with_capacity(times as usize);
        for _ in 0..times {
            outcomes.push(self.deliver(last.clone(), 1, true).await);
        }
        Ok(outcomes)
    }

    /// The latest pushes, oldest first.
    pub fn pushes(&self) -> Vec<PushRecord> {
        lock(&self.state).pushes.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_xml_matches_the_contract_shape() {
        let xml = event_xml("gh_1", "o1", 123, "subscribe", "qrscene_a]]>b", Some("T"));
        assert_eq!(
            xml,
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
             <CreateTime>123</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>\
             <EventKey><![CDATA[qrscene_a]]]]><![CDATA[>b]]></EventKey><Ticket><![CDATA[T]]></Ticket></xml>"
        );
        let f = xml_fields(&xml).expect("parses");
        assert_eq!(f["EventKey"], "qrscene_a]]>b");
        assert_eq!(f["CreateTime"], "123");
        let unsub = event_xml("gh_1", "o1", 1, "unsubscribe", "", None);
        assert!(!unsub.contains("Ticket"));
        assert_eq!(xml_fields(&unsub).expect("parses")["EventKey"], "");
    }

    #[test]
    fn xml_fields_reads_cdata_text_and_entities() {
        let f = xml_fields(
            "<?xml version=\"1.0\"?>\n<xml>\n <A><![CDATA[x<y]]></A>\n <B>1 &amp; 2</B><C/><D><E>in</E></D></xml>",
        )
        .expect("parses");
        assert_eq!(f["A"], "x<y");
        assert_eq!(f["B"], "1 & 2");
        assert_eq!(f["C"], "");
        assert!(f.contains_key("D"));
        assert!(xml_fields("<root><A>1</A></root>").is_err());
        assert!(xml_fields("success").is_err());
        assert!(xml_fields("<xml><A>1</B></xml>").is_err());
        assert!(xml_fields("{\"json\":1}").is_err());
    }
}
