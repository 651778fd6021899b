//! The simulator's state and WeChat's server-side rules, independent of HTTP.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::ids;
use crate::registry::{App, ComponentConfig, Registry};

mod component;
mod cs;
mod oauth;
mod open;
mod push;
mod qr;
mod tokens;

pub use component::{
    AuthorizationPage, AuthorizeRequest, Authorized, AuthorizerToken, ComponentToken, EventPush, PreAuthCode,
    TicketPush, AUTHORIZATION_CODE_TTL_SECONDS, COMPONENT_TOKEN_TTL_SECONDS, PRE_AUTH_CODE_TTL_SECONDS,
    TICKET_INTERVAL_MILLIS, TICKET_TTL_MILLIS,
};
pub use cs::{CsMessage, CS_MAX_TEXT_BYTES, CS_WINDOW_MESSAGES, CS_WINDOW_MILLIS};
pub use oauth::{
    authorize_errmsg, qrconnect_errmsg, redirect_location, AuthorizeError, SnsUserInfo, Switches, SwitchesUpdate,
    WebAccessToken, WebScope, APP_CODE_TTL_MILLIS, MAX_STATE_LEN, QRCONNECT_CODE_TTL_MILLIS, WEB_CODE_TTL_MILLIS,
    WEB_TOKEN_TTL_SECONDS,
};
pub use push::{
    event_xml, xml_fields, PushAttempt, PushOutcome, PushRecord, PushStatus, ScanResult, DEFAULT_PUSH_RETRIES,
    DEFAULT_PUSH_TIMEOUT_MS, MAX_PUSH_RETRIES, MAX_PUSH_TIMEOUT_MS, MAX_REPLAY_TIMES,
};
pub use qr::{
    QrTicket, QR_DEFAULT_EXPIRE_SECONDS, QR_MAX_EXPIRE_SECONDS, QR_MAX_LIMIT_SCENE_ID, QR_MAX_SCENE_STR_CHARS, QR_PNG,
};
pub use tokens::{
    AccessToken, ACCESS_TOKEN_TTL_SECONDS, STABLE_FORCE_REFRESH_DAILY_QUOTA, TOKEN_DAILY_QUOTA, TOKEN_OVERLAP_MILLIS,
};

/// A wx.login code lives 5 minutes.
pub const CODE_TTL_MILLIS: i64 = 5 * 60 * 1000;
/// Issued codes are forgotten an hour after issue (by then they can only answer 40029 anyway).
const CODE_RETENTION_MILLIS: i64 = 60 * 60 * 1000;
/// The longest fault delay accepted, so a typo cannot hang a test run.
pub const MAX_FAULT_DELAY_MS: u64 = 120_000;
const MAX_USER_LEN: usize = 128;

/// When jscode2session returns a unionid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnionIdMode {
    /// Only when the app has an Open Platform account and the user already authorized there.
    #[default]
    Conditional,
    /// Whenever the app has an Open Platform account.
    Always,
    /// Never.
    Never,
}

impl UnionIdMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UnionIdMode::Conditional => "conditional",
            UnionIdMode::Always => "always",
            UnionIdMode::Never => "never",
        }
    }
}

impl std::fmt::Display for UnionIdMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UnionIdMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "conditional" => Ok(UnionIdMode::Conditional),
            "always" => Ok(UnionIdMode::Always),
            "never" => Ok(UnionIdMode::Never),
            other => Err(format!("unionid mode must be conditional, always or never, not {other:?}")),
        }
    }
}

/// How the simulator is set up. The third-party platform comes from the registry's `component`
/// section (`registry.component`; `Sim::set_component` changes it later), so this struct keeps
/// its shape for the callers that build it field by field.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub registry: Registry,
    pub unionid_mode: UnionIdMode,
    /// The bridge's origin, where pushes go (used by the push features).
    pub push_base: Option<String>,
}

impl SimConfig {
    pub fn new(registry: Registry) -> Self {
        SimConfig { registry, unionid_mode: UnionIdMode::default(), push_base: None }
    }
}

/// A control-surface error (answered as 400 `{"error": …}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("unknown appid {0}")]
    UnknownApp(String),
    #[error("appid {0} is not a mini program")]
    NotMiniProgram(String),
    #[error("user {user} has not logged in to {appid}")]
    NoSession { user: String, appid: String },
    #[error("{0}")]
    Invalid(String),
    /// Refused the way WeChat would refuse it, with WeChat's errcode (e.g. an expired
    /// pre_auth_code on the authorization page: 61010).
    #[error("{message}")]
    Refused { errcode: i64, message: String },
}

/// A WeChat API failure: the errcode to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WxError(pub i64);

pub mod errcode {
    pub const SYSTEM_ERROR: i64 = -1;
    pub const INVALID_CREDENTIAL: i64 = 40001;
    pub const INVALID_GRANT_TYPE: i64 = 40002;
    pub const INVALID_OPENID: i64 = 40003;
    pub const INVALID_MESSAGE_TYPE: i64 = 40008;
    pub const INVALID_APPID: i64 = 40013;
    pub const INVALID_ACCESS_TOKEN: i64 = 40014;
    pub const INVALID_CODE: i64 = 40029;
    pub const INVALID_ARGS: i64 = 40097;
    pub const INVALID_APPSECRET: i64 = 40125;
    pub const CODE_BEEN_USED: i64 = 40163;
    pub const CODE_BLOCKED: i64 = 40226;
    pub const MISSING_ACCESS_TOKEN: i64 = 41001;
    pub const MISSING_CODE: i64 = 41008;
    pub const MISSING_OPENID: i64 = 41009;
    pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
    pub const CODE_EXPIRED: i64 = 42003;
    pub const EMPTY_CONTENT: i64 = 44004;
    pub const CONTENT_TOO_LONG: i64 = 45002;
    pub const DAILY_QUOTA: i64 = 45009;
    pub const MINUTE_QUOTA: i64 = 45011;
    /// Customer-service message outside the window, or to a user who does not follow.
    pub const RESPONSE_OUT_OF_TIME: i64 = 45015;
    /// Customer-service message over the count allowed in the window.
    pub const RESPONSE_COUNT_LIMIT: i64 = 45047;
    pub const DATA_FORMAT_ERROR: i64 = 47001;
    pub const API_UNAUTHORIZED: i64 = 48001;

    // Third-party platform (component) codes (contract §11).
    /// The app is not authorized to the third-party platform.
    pub const COMPONENT_UNAUTHORIZED: i64 = 61003;
    /// The component_verify_ticket is older than 12 hours.
    pub const TICKET_EXPIRED: i64 = 61005;
    /// The component_verify_ticket was never issued.
    pub const TICKET_INVALID: i64 = 61006;
    /// An authorization code (or pre_auth_code) unknown or already used.
    pub const AUTH_CODE_INVALID: i64 = 61009;
    /// An authorization code (or pre_auth_code) past its lifetime.
    pub const AUTH_CODE_EXPIRED: i64 = 61010;
    /// An authorizer_refresh_token that is not the app's current one.
    pub const REFRESH_TOKEN_INVALID: i64 = 61023;
    /// `/cgi-bin/open/get`: the app is bound to no open-platform account.
    pub const OPEN_NOT_EXISTS: i64 = 89002;

    // Codes of WeChat's web-authorization error page (`/connect/oauth2/authorize`, contract §2.1).
    /// `redirect_uri` host is not one of the OA's web-authorization domains.
    pub const AUTH_REDIRECT_DOMAIN: i64 = 10003;
    /// The account has no permission for this scope (also: a mini-program appid, an unknown scope).
    pub const AUTH_SCOPE_UNAUTHORIZED: i64 = 10005;
    pub const AUTH_SCOPE_EMPTY: i64 = 10010;
    pub const AUTH_REDIRECT_URI_EMPTY: i64 = 10011;
    pub const AUTH_APPID_EMPTY: i64 = 10012;
    /// Not an official-account appid (Open Platform apps; the simulator also uses it for an unknown appid).
    pub const AUTH_NOT_OA_APPID: i64 = 10016;
    /// `response_type` is not `code`. WeChat documents no code for this; the simulator's own.
    pub const AUTH_BAD_RESPONSE_TYPE: i64 = 10001;
    /// `state` is over 128 bytes or not `[a-zA-Z0-9]`. WeChat documents no code for this; the simulator's own.
    pub const AUTH_BAD_STATE: i64 = 10002;
}

/// The errmsg WeChat uses for an errcode (before the `, rid: …` suffix).
pub fn errmsg_for(code: i64) -> &'static str {
    match code {
        errcode::SYSTEM_ERROR => "system error",
        errcode::INVALID_CREDENTIAL => "invalid credential, access_token is invalid or not latest",
        errcode::INVALID_GRANT_TYPE => "invalid grant_type",
        errcode::INVALID_OPENID => "invalid openid",
        errcode::INVALID_MESSAGE_TYPE => "invalid message type",
        errcode::INVALID_ACCESS_TOKEN => "invalid access_token",
        errcode::INVALID_ARGS => "invalid args",
        errcode::INVALID_APPID => "invalid appid",
        errcode::INVALID_CODE => "invalid code",
        errcode::INVALID_APPSECRET => "invalid appsecret",
        errcode::CODE_BEEN_USED => "code been used",
        errcode::CODE_BLOCKED => "code blocked",
        errcode::MISSING_ACCESS_TOKEN => "access_token missing",
        errcode::MISSING_CODE => "missing code",
        errcode::MISSING_OPENID => "missing openid",
        errcode::ACCESS_TOKEN_EXPIRED => "access_token expired",
        errcode::CODE_EXPIRED => "code expired",
        errcode::EMPTY_CONTENT => "empty content",
        errcode::CONTENT_TOO_LONG => "content size out of limit",
        errcode::DAILY_QUOTA => "reach max api daily quota limit",
        errcode::MINUTE_QUOTA => "api minute-quota reach limit mustslower retry next minute",
        errcode::RESPONSE_OUT_OF_TIME => "response out of time limit or subscription is canceled",
        errcode::RESPONSE_COUNT_LIMIT => "out of response count limit",
        errcode::DATA_FORMAT_ERROR => "data format error",
        errcode::API_UNAUTHORIZED => "api unauthorized",
        errcode::OPEN_NOT_EXISTS => "open not exists",
        errcode::COMPONENT_UNAUTHORIZED => "component is not authorized by this account",
        errcode::TICKET_EXPIRED => "component ticket is expired",
        errcode::TICKET_INVALID => "component ticket is invalid",
        errcode::AUTH_CODE_INVALID => "code is invalid",
        errcode::AUTH_CODE_EXPIRED => "code is expired",
        errcode::REFRESH_TOKEN_INVALID => "refresh_token is invalid",
        _ => "error",
    }
}

/// A programmed failure of one WeChat path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The WeChat path, e.g. `/sns/jscode2session`.
    pub path: String,
    /// Answer this errcode (HTTP 200, WeChat's JSON error body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errcode: Option<i64>,
    /// How many calls this fault applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// Sleep this long before answering (simulates a slow or timing-out WeChat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Answer this HTTP status: with a plain-text body, or with the errcode body when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

fn one() -> u32 {
    1
}

impl Fault {
    fn validate(&self) -> Result<(), SimError> {
        if !self.path.starts_with('/') {
            return Err(SimError::Invalid("fault path must start with /".into()));
        }
        if self.times == 0 {
            return Err(SimError::Invalid("fault times must be at least 1".into()));
        }
        if self.errcode.is_none() && self.delay_ms.is_none() && self.http_status.is_none() {
            return Err(SimError::Invalid("a fault needs errcode, delay_ms or http_status".into()));
        }
        if self.delay_ms.is_some_and(|d| d > MAX_FAULT_DELAY_MS) {
            return Err(SimError::Invalid(format!("delay_ms is at most {MAX_FAULT_DELAY_MS}")));
        }
        if self.http_status.is_some_and(|s| !(100..=599).contains(&s) || s == 200) {
            return Err(SimError::Invalid("http_status must be a non-200 status between 100 and 599".into()));
        }
        Ok(())
    }
}

/// What jscode2session answers on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Code2Session {
    pub session_key: String,
    pub openid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
}

/// The true ids of a user in an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub openid: String,
    pub unionid: Option<String>,
}

/// What `wx.getUserInfo` hands the mini program.
#[derive(Debug, Clone, Serialize)]
pub struct UserInfoBundle {
    #[serde(rename = "encryptedData")]
    pub encrypted_data: String,
    pub iv: String,
    #[serde(rename = "rawData")]
    pub raw_data: String,
    pub signature: String,
    #[serde(rename = "userInfo")]
    pub user_info: Profile,
}

/// The public profile fields, in WeChat's order (serialized, this is exactly rawData).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    #[serde(rename = "nickName")]
    pub nick_name: String,
    pub gender: u8,
    pub language: String,
    pub city: String,
    pub province: String,
    pub country: String,
    #[serde(rename = "avatarUrl")]
    pub avatar_url: String,
}

#[derive(Serialize)]
struct Watermark<'a> {
    timestamp: i64,
    appid: &'a str,
}

/// The encryptedData plaintext, in WeChat's field order.
#[derive(Serialize)]
struct OpenData<'a> {
    #[serde(rename = "openId")]
    open_id: &'a str,
    #[serde(rename = "nickName")]
    nick_name: &'a str,
    gender: u8,
    language: &'a str,
    city: &'a str,
    province: &'a str,
    country: &'a str,
    #[serde(rename = "avatarUrl")]
    avatar_url: &'a str,
    #[serde(rename = "unionId", skip_serializing_if = "Option::is_none")]
    union_id: Option<&'a str>,
    watermark: Watermark<'a>,
}

#[derive(Debug, Default)]
struct UserState {
    /// appid → the current session_key (base64).
    session_keys: HashMap<String, String>,
    /// Open Platform accounts in which the user has authorized (so unionid flows).
    authorized: HashSet<String>,
    /// How the user's WeChat client behaves on web authorization.
    switches: Switches,
    /// Official accounts (appids) the user follows.
    following: HashSet<String>,
    /// appid → the customer-service window the user's last event opened there.
    cs_windows: HashMap<String, cs::CsWindow>,
}

#[derive(Debug)]
struct IssuedCode {
    appid: String,
    user: String,
    session_key: String,
    issued_at: i64,
    used: bool,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, UserState>,
    codes: HashMap<String, IssuedCode>,
    /// OA web-authorization codes (`/connect/oauth2/authorize`).
    web_codes: HashMap<String, oauth::WebCode>,
    /// OA web-authorization access tokens (`/sns/oauth2/access_token`).
    web_tokens: HashMap<String, oauth::WebToken>,
    /// Base access tokens (`/cgi-bin/token`, `/cgi-bin/stable_token`) by token.
    access_tokens: HashMap<String, tokens::IssuedToken>,
    /// Per appid: the current tokens and the daily quotas.
    app_tokens: HashMap<String, tokens::AppTokens>,
    /// Parametric QR codes by ticket.
    qr_codes: HashMap<String, qr::QrCode>,
    /// (appid, user) → customer-service messages sent to the user, oldest first.
    messages: HashMap<(String, String), Vec<CsMessage>>,
    /// The latest pushes, oldest first (the last one is what `/sim/pushes/replay` sends again).
    pushes: VecDeque<PushRecord>,
    /// The third-party platform's tickets, tokens, codes and authorizations.
    component: component::ComponentState,
}

/// A non-empty query parameter.
fn param<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn system_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// The user's avatar URL (stable per user; the last path segment is the size, 132).
pub fn avatar_url(user: &str) -> String {
    format!("https://thirdwx.qlogo.cn/mmopen/vi_32/{}/132", &ids::unionid("wxsim-avatar", user)[1..])
}

/// Checks a simulated user name: 1..=128 bytes, no control characters.
pub fn validate_user(user: &str) -> Result<(), SimError> {
    if user.is_empty() || user.len() > MAX_USER_LEN || user.chars().any(char::is_control) {
        return Err(SimError::Invalid(format!("user must be 1 to {MAX_USER_LEN} bytes without control characters")));
    }
    Ok(())
}

/// The simulator. All state sits behind mutexes and atomics; share it as `Arc<Sim>`.
#[derive(Debug)]
pub struct Sim {
    registry: Registry,
    push_base: Option<String>,
    initial_mode: UnionIdMode,
    unionid_mode: Mutex<UnionIdMode>,
    clock_offset_ms: AtomicI64,
    state: Mutex<State>,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    calls: Mutex<BTreeMap<String, u64>>,
    /// Retries after the first push attempt (`/sim/config` `push_retries`).
    push_retries: AtomicU32,
    /// How long one push attempt may take (`/sim/config` `push_timeout_ms`).
    push_timeout_ms: AtomicU64,
    /// Whether customer-service messages are held to WeChat's windows (`/sim/config` `cs_window`).
    cs_window: AtomicBool,
    /// The HTTP client for pushes, built on first use.
    http: OnceLock<Result<reqwest::Client, String>>,
    /// The third-party platform, if any (kept by `reset`).
    component: Mutex<Option<ComponentConfig>>,
}

impl Sim {
    pub fn new(config: SimConfig) -> Arc<Sim> {
        let component = config.registry.component.clone();
        Arc::new(Sim {
            registry: config.registry,
            push_base: config.push_base,
            initial_mode: config.unionid_mode,
            unionid_mode: Mutex::new(config.unionid_mode),
            clock_offset_ms: AtomicI64::new(0),
            state: Mutex::default(),
            faults: Mutex::default(),
            calls: Mutex::default(),
            push_retries: AtomicU32::new(DEFAULT_PUSH_RETRIES),
            push_timeout_ms: AtomicU64::new(DEFAULT_PUSH_TIMEOUT_MS),
            cs_window: AtomicBool::new(true),
            http: OnceLock::new(),
            component: Mutex::new(component),
        })
    }

    // ---- configuration ---------------------------------------------------------------------

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn push_base(&self) -> Option<&str> {
        self.push_base.as_deref()
    }

    pub fn unionid_mode(&self) -> UnionIdMode {
        *lock(&self.unionid_mode)
    }

    pub fn set_unionid_mode(&self, mode: UnionIdMode) {
        *lock(&self.unionid_mode) = mode;
    }

    /// How many times a push is sent again when it is not answered 200 in time (after the
    /// first attempt). Default 3: WeChat "retries three times in total" (contract §5.4, §10).
    pub fn push_retries(&self) -> u32 {
        self.push_retries.load(Ordering::Relaxed)
    }

    pub fn set_push_retries(&self, retries: u32) -> Result<(), SimError> {
        if retries > MAX_PUSH_RETRIES {
            return Err(SimError::Invalid(format!("push_retries is at most {MAX_PUSH_RETRIES}")));
        }
        self.push_retries.store(retries, Ordering::Relaxed);
        Ok(())
    }

    /// How long one push attempt may take before WeChat gives up on it. Default 5 s.
    pub fn push_timeout(&self) -> Duration {
        Duration::from_millis(self.push_timeout_ms.load(Ordering::Relaxed))
    }

    pub fn set_push_timeout_ms(&self, ms: u64) -> Result<(), SimError> {
        if !(1..=MAX_PUSH_TIMEOUT_MS).contains(&ms) {
            return Err(SimError::Invalid(format!("push_timeout_ms must be 1 to {MAX_PUSH_TIMEOUT_MS}")));
        }
        self.push_timeout_ms.store(ms, Ordering::Relaxed);
        Ok(())
    }

    /// Whether customer-service messages are held to WeChat's windows (default on).
    pub fn cs_window(&self) -> bool {
        self.cs_window.load(Ordering::Relaxed)
    }

    pub fn set_cs_window(&self, on: bool) {
        self.cs_window.store(on, Ordering::Relaxed);
    }

    fn app(&self, appid: &str) -> Result<&App, SimError> {
        self.registry.app(appid).ok_or_else(|| SimError::UnknownApp(appid.to_owned()))
    }

    fn mini_program(&self, appid: &str) -> Result<&App, SimError> {
        let app = self.app(appid)?;
        if !app.is_mini_program() {
            return Err(SimError::NotMiniProgram(appid.to_owned()));
        }
        Ok(app)
    }

    // ---- clock -----------------------------------------------------------------------------

    /// System time plus the control offset, in Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        system_millis().saturating_add(self.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// Unix seconds by the sim clock.
    pub fn now_seconds(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Moves the sim clock by `millis` (may be negative); returns the new now.
    pub fn advance_clock_millis(&self, millis: i64) -> i64 {
        self.clock_offset_ms.fetch_add(millis, Ordering::Relaxed);
        self.now_millis()
    }

    pub fn clock_offset_millis(&self) -> i64 {
        self.clock_offset_ms.load(Ordering::Relaxed)
    }

    pub fn reset_clock(&self) {
        self.clock_offset_ms.store(0, Ordering::Relaxed);
    }

    // ---- users -----------------------------------------------------------------------------

    /// What `wx.login` does: mints a fresh session_key (the user's current one for the app)
    /// and returns a single-use code for it.
    pub fn login(&self, user: &str, appid: &str) -> Result<String, SimError> {
        validate_user(user)?;
        self.mini_program(appid)?;
        let now = self.now_millis();
        let code = ids::login_code();
        let session_key = ids::session_key();
        let mut st = lock(&self.state);
        st.codes.retain(|_, c| now.saturating_sub(c.issued_at) < CODE_RETENTION_MILLIS);
        st.users.entry(user.to_owned()).or_default().session_keys.insert(appid.to_owned(), session_key.clone());
        st.codes.insert(
            code.clone(),
            IssuedCode { appid: appid.to_owned(), user: user.to_owned(), session_key, issued_at: now, used: false },
        );
        Ok(code)
    }

    /// The user's current session_key in the app, if they ever logged in there.
    pub fn session_key(&self, user: &str, appid: &str) -> Option<String> {
        lock(&self.state).users.get(user).and_then(|u| u.session_keys.get(appid).cloned())
    }

    /// Records that the user authorized in this Open Platform account (getUserInfo, OAuth
    /// userinfo consent, following an OA…): from now on conditional unionids flow there.
    pub fn authorize_open_platform(&self, user: &str, open_platform: &str) {
        lock(&self.state).users.entry(user.to_owned()).or_default().authorized.insert(open_platform.to_owned());
    }

    /// Like [`Sim::authorize_open_platform`] for the app's Open Platform account, if it has one.
    pub fn authorize_app(&self, user: &str, appid: &str) -> Result<(), SimError> {
        if let Some(op) = &self.app(appid)?.open_platform {
            self.authorize_open_platform(user, op);
        }
        Ok(())
    }

    pub fn has_authorized(&self, user: &str, open_platform: &str) -> bool {
        lock(&self.state).users.get(user).is_some_and(|u| u.authorized.contains(open_platform))
    }

    /// The truth: the user's openid in the app and unionid in its Open Platform account.
    pub fn identity(&self, user: &str, appid: &str) -> Result<Identity, SimError> {
        validate_user(user)?;
        let app = self.app(appid)?;
        Ok(Identity {
            openid: ids::openid(appid, user),
            unionid: app.open_platform.as_deref().map(|op| ids::unionid(op, user)),
        })
    }

    /// The unionid WeChat would disclose to this app now, following the unionid mode.
    pub fn disclosed_unionid(&self, user: &str, app: &App) -> Option<String> {
        let op = app.open_platform.as_deref()?;
        let disclose = match self.unionid_mode() {
            UnionIdMode::Always => true,
            UnionIdMode::Never => false,
            UnionIdMode::Conditional => self.has_authorized(user, op),
        };
        disclose.then(|| ids::unionid(op, user))
    }

    /// What `wx.getUserInfo` returns after the user's last login in the app; marks the app's
    /// Open Platform account as authorized for the user.
    pub fn userinfo(&self, user: &str, appid: &str) -> Result<UserInfoBundle, SimError> {
        validate_user(user)?;
        let app = self.mini_program(appid)?;
        let session_key = self
            .session_key(user, appid)
            .ok_or_else(|| SimError::NoSession { user: user.to_owned(), appid: appid.to_owned() })?;
        let openid = ids::openid(appid, user);
        let unionid = app.open_platform.as_deref().map(|op| ids::unionid(op, user));
        let profile = Profile {
            nick_name: user.to_owned(),
            gender: 0,
            language: "zh_CN".into(),
            city: String::new(),
            province: String::new(),
            country: String::new(),
            avatar_url: avatar_url(user),
        };
        let open_data = OpenData {
            open_id: &openid,
            nick_name: &profile.nick_name,
            gender: profile.gender,
            language: &profile.language,
            city: &profile.city,
            province: &profile.province,
            country: &profile.country,
            avatar_url: &profile.avatar_url,
            union_id: unionid.as_deref(),
            watermark: Watermark { timestamp: self.now_seconds(), appid },
        };
        let to_json = |e: serde_json::Error| SimError::Invalid(format!("cannot encode: {e}"));
        let raw_data = serde_json::to_string(&profile).map_err(to_json)?;
        let plaintext = serde_json::to_vec(&open_data).map_err(to_json)?;
        let iv = ids::random_iv();
        let encrypted_data = crypto::wxa_encrypt(&session_key, &iv, &plaintext)
            .map_err(|e| SimError::Invalid(format!("cannot encrypt: {e}")))?;
        if let Some(op) = &app.open_platform {
            self.authorize_open_platform(user, op);
        }
        Ok(UserInfoBundle {
            encrypted_data,
            iv: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, iv),
            signature: crypto::rawdata_signature(&raw_data, &session_key),
            raw_data,
            user_info: profile,
        })
    }

    // ---- WeChat: jscode2session ------------------------------------------------------------

    /// `GET /sns/jscode2session` with its query parameters.
    pub fn jscode2session(&self, q: &HashMap<String, String>) -> Result<Code2Session, WxError> {
        let param = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let appid = param("appid").ok_or(WxError(errcode::INVALID_APPID))?;
        let app = self.registry.app(appid).filter(|a| a.is_mini_program()).ok_or(WxError(errcode::INVALID_APPID))?;
        if !app.secret_matches(param("secret")) {
            return Err(WxError(errcode::INVALID_APPSECRET));
        }
        self.exchange_login_code(app, q)
    }

    /// The part of code2Session after the caller's credentials: `grant_type`, then `js_code`
    /// (missing 41008, unknown or expired 40029, used 40163), shared with the platform's variant.
    fn exchange_login_code(&self, app: &App, q: &HashMap<String, String>) -> Result<Code2Session, WxError> {
        if param(q, "grant_type") != Some("authorization_code") {
            return Err(WxError(errcode::INVALID_GRANT_TYPE));
        }
        let code = param(q, "js_code").ok_or(WxError(errcode::MISSING_CODE))?;
        let now = self.now_millis();
        let appid = app.appid.as_str();
        let (user, session_key) = {
            let mut st = lock(&self.state);
            let issued = st.codes.get_mut(code).filter(|c| c.appid == appid).ok_or(WxError(errcode::INVALID_CODE))?;
            if issued.used {
                return Err(WxError(errcode::CODE_BEEN_USED));
            }
            if now.saturating_sub(issued.issued_at) > CODE_TTL_MILLIS {
                return Err(WxError(errcode::INVALID_CODE));
            }
            issued.used = true;
            (issued.user.clone(), issued.session_key.clone())
        };
        Ok(Code2Session { session_key, openid: ids::openid(appid, &user), unionid: self.disclosed_unionid(&user, app) })
    }

    // ---- faults and call counts ------------------------------------------------------------

    /// Queues a fault for a WeChat path (faults of one path apply one after the other).
    pub fn add_fault(&self, fault: Fault) -> Result<(), SimError> {
        fault.validate()?;
        lock(&self.faults).entry(fault.path.clone()).or_default().push_back(fault);
        Ok(())
    }

    /// The pending faults, per path in the order they will apply.
    pub fn faults(&self) -> Vec<Fault> {
        let faults = lock(&self.faults);
        let mut out: Vec<Fault> = faults.values().flatten().cloned().collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Takes one use of the next fault for `path`, if any.
    pub fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let queue = faults.get_mut(path)?;
        let front = queue.front_mut()?;
        front.times = front.times.saturating_sub(1);
        let taken = front.clone();
        if front.times == 0 {
            queue.pop_front();
        }
        if queue.is_empty() {
            faults.remove(path);
        }
        Some(taken)
    }

    pub fn record_call(&self, path: &str) {
        *lock(&self.calls).entry(path.to_owned()).or_insert(0) += 1;
    }

    /// How many times each WeChat path was called (faulted or not).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.calls).clone()
    }

    pub fn reset_calls(&self) {
        lock(&self.calls).clear();
    }

    /// Forgets every user (and their switches, follows and messages), code, token, QR code,
    /// push, fault and call count, and the platform's tickets, codes and authorizations (not
    /// its configuration); resets the clock, the unionid mode and the push and customer-service
    /// knobs.
    pub fn reset(&self) {
        *lock(&self.state) = State::default();
        self.clear_faults();
        self.reset_calls();
        self.reset_clock();
        self.set_unionid_mode(self.initial_mode);
        self.push_retries.store(DEFAULT_PUSH_RETRIES, Ordering::Relaxed);
        self.push_timeout_ms.store(DEFAULT_PUSH_TIMEOUT_MS, Ordering::Relaxed);
        self.set_cs_window(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRY: &str = r#"{"apps":[
        {"appid":"wxmp","kind":"mini_program","secret":"s1","open_platform":"op"},
        {"appid":"wxlone","kind":"mini_program","secret":"s2"},
        {"appid":"wxoa","kind":"official_account","secret":"s3","open_platform":"op"}]}"#;

    fn sim() -> Arc<Sim> {
        let registry = Registry::from_json_str(REGISTRY).expect("registry");
        Sim::new(SimConfig::new(registry))
    }

    fn q(appid: &str, secret: &str, code: &str) -> HashMap<String, String> {
        [("appid", appid), ("secret", secret), ("js_code", code), ("grant_type", "authorization_code")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn parameter_errors_in_order() {
        let s = sim();
        let code = s.login("alice", "wxmp").expect("login");
        let err = |q: &HashMap<String, String>| s.jscode2session(q).err().map(|e| e.0);
        assert_eq!(err(&q("wxoa", "s3", &code)), Some(40013));
        assert_eq!(err(&q("nope", "s1", &code)), Some(40013));
        assert_eq!(err(&q("wxmp", "bad", &code)), Some(40125));
        let mut g = q("wxmp", "s1", &code);
        g.insert("grant_type".into(), "client_credential".into());
        assert_eq!(err(&g), Some(40002));
        let mut m = q("wxmp", "s1", &code);
        m.remove("js_code");
        assert_eq!(err(&m), Some(41008));
        assert_eq!(err(&q("wxlone", "s2", &code)), Some(40029));
        // None of the above consumed the code.
        assert!(s.jscode2session(&q("wxmp", "s1", &code)).is_ok());
    }

    #[test]
    fn login_rejects_non_mini_programs_and_bad_users() {
        let s = sim();
        assert_eq!(s.login("alice", "wxoa"), Err(SimError::NotMiniProgram("wxoa".into())));
        assert_eq!(s.login("alice", "nope"), Err(SimError::UnknownApp("nope".into())));
        assert!(s.login("", "wxmp").is_err());
        assert!(s.login("a\nb", "wxmp").is_err());
    }

    #[test]
    fn unionid_modes() {
        let s = sim();
        let exchange = |appid: &str, secret: &str| {
            let code = s.login("bob", appid).expect("login");
            s.jscode2session(&q(appid, secret, &code)).expect("ok")
        };
        assert_eq!(exchange("wxmp", "s1").unionid, None);
        s.set_unionid_mode(UnionIdMode::Always);
        let always = exchange("wxmp", "s1").unionid;
        assert_eq!(always, Some(ids::unionid("op", "bob")));
        assert_eq!(exchange("wxlone", "s2").unionid, None);
        s.set_unionid_mode(UnionIdMode::Conditional);
        s.authorize_app("bob", "wxoa").expect("known app");
        assert_eq!(exchange("wxmp", "s1").unionid, always);
        s.set_unionid_mode(UnionIdMode::Never);
        assert_eq!(exchange("wxmp", "s1").unionid, None);
        s.reset();
        assert_eq!(s.unionid_mode(), UnionIdMode::Conditional);
        assert!(!s.has_authorized("bob", "op"));
    }

    #[test]
    fn mode_parses() {
        assert_eq!("Always".parse(), Ok(UnionIdMode::Always));
        assert_eq!(" never ".parse(), Ok(UnionIdMode::Never));
        assert_eq!("conditional".parse(), Ok(UnionIdMode::Conditional));
        assert!("sometimes".parse::<UnionIdMode>().is_err());
    }

    #[test]
    fn faults_queue_and_validate() {
        let s = sim();
        let f = |errcode, times| Fault {
            path: "/p".into(),
            errcode: Some(errcode),
            times,
            delay_ms: None,
            http_status: None,
        };
        assert!(s.add_fault(f(-1, 0)).is_err());
        assert!(s.add_fault(Fault { errcode: None, ..f(-1, 1) }).is_err());
        s.add_fault(f(-1, 2)).expect("valid");
        s.add_fault(f(45011, 1)).expect("valid");
        let codes: Vec<Option<i64>> = (0..4).map(|_| s.take_fault("/p").and_then(|f| f.errcode)).collect();
        assert_eq!(codes, vec![Some(-1), Some(-1), Some(45011), None]);
        assert!(s.faults().is_empty());
    }

    #[test]
    fn clock_moves() {
        let s = sim();
        let before = s.now_millis();
        let after = s.advance_clock_millis(600_000);
        assert!(after - before >= 600_000);
        assert_eq!(s.clock_offset_millis(), 600_000);
        s.reset_clock();
        assert_eq!(s.clock_offset_millis(), 0);
    }
}
