//! The `/sim/*` control surface: acting users, logins, userinfo, per-user switches, the truth,
//! QR scans, menu clicks and follows (which push to the OA), customer-service messages received,
//! mobile-app login codes, the push log and replay, clock, faults, call counts and test knobs;
//! the third-party platform (configuration, ticket pushes, merchants authorizing apps).
//! Errors are 400 `{"error": "…"}` (with WeChat's `"errcode"` where WeChat would refuse so).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::registry::ComponentConfig;
use crate::sim::{validate_user, AuthorizeRequest, Fault, ScanResult, Sim, SimError, SwitchesUpdate, UnionIdMode};
use crate::wechat::query_map;

/// The header that names the acting user where the path does not.
pub const USER_HEADER: &str = "x-wxsim-user";
/// The cookie that names the acting user where neither the path nor the header does.
pub const USER_COOKIE: &str = "wxsim_user";

pub(crate) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/apps", get(apps))
        .route("/sim/apps/{appid}", put(create_app))
        .route("/sim/whoami", get(whoami))
        .route("/sim/users/{user}/login", post(login))
        .route("/sim/users/{user}/userinfo", post(userinfo))
        .route("/sim/users/{user}/identity", get(identity))
        .route("/sim/users/{user}/switches", get(switches).post(set_switches))
        .route("/sim/users/{user}/scan", post(scan))
        .route("/sim/users/{user}/click", post(click))
        .route("/sim/users/{user}/subscribe", post(subscribe))
        .route("/sim/users/{user}/unsubscribe", post(unsubscribe))
        .route("/sim/users/{user}/follow", get(following).post(follow))
        .route("/sim/users/{user}/messages", get(messages))
        .route("/sim/users/{user}/app-login", post(app_login))
        .route("/sim/login", post(login))
        .route("/sim/userinfo", post(userinfo))
        .route("/sim/identity", get(identity))
        .route("/sim/switches", get(switches).post(set_switches))
        .route("/sim/scan", post(scan))
        .route("/sim/click", post(click))
        .route("/sim/subscribe", post(subscribe))
        .route("/sim/unsubscribe", post(unsubscribe))
        .route("/sim/follow", get(following).post(follow))
        .route("/sim/messages", get(messages))
        .route("/sim/app-login", post(app_login))
        .route("/sim/pushes", get(pushes))
        .route("/sim/pushes/replay", post(replay))
        .route("/sim/clock", get(clock).post(advance_clock).delete(reset_clock))
        .route("/sim/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/sim/calls", get(calls).delete(reset_calls))
        .route("/sim/config", get(config).post(set_config))
        .route("/sim/reset", post(reset))
        .route("/sim/component", get(component).put(set_component))
        .route("/sim/component/ticket", post(push_ticket))
        .route("/sim/merchants/{merchant}/authorize", post(merchant_authorize))
        .route("/sim/merchants/{merchant}/unauthorize", post(merchant_unauthorize))
}

// ---- errors and extractors -----------------------------------------------------------------

/// A control-surface error: a status and `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<SimError> for ApiError {
    fn from(e: SimError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// A control-surface error that may carry WeChat's errcode (`SimError::Refused`).
fn sim_error_response(e: SimError) -> Response {
    match e {
        SimError::Refused { errcode, message } => {
            (StatusCode::BAD_REQUEST, Json(json!({ "error": message, "errcode": errcode }))).into_response()
        }
        other => ApiError::from(other).into_response(),
    }
}

/// A JSON body parsed whatever its Content-Type; any failure is a 400 JSON error.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| ApiError(e.status(), e.body_text()))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// The acting user: the `{user}` path parameter, else the `X-WxSim-User` header, else the
/// `wxsim_user` cookie.
pub fn acting_user(path_user: Option<&str>, headers: &HeaderMap) -> Result<String, ApiError> {
    let user = path_user
        .map(str::to_owned)
        .or_else(|| headers.get(USER_HEADER).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned()))
        .or_else(|| cookie(headers, USER_COOKIE))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "no acting user: name one in the path, the {USER_HEADER} header or the {USER_COOKIE} cookie"
            ))
        })?;
    validate_user(&user)?;
    Ok(user)
}

/// The value of a cookie (percent-decoded), if present.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| {
            // Percent-decode only: a literal '+' in a cookie is a plus, not a space.
            let v = v.trim().trim_matches('"').replace('+', "%2B");
            form_urlencoded::parse(format!("v={v}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
        })
}

/// Extractor for [`acting_user`].
pub struct ActingUser(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ActingUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let path_user = match Path::<HashMap<String, String>>::from_request_parts(parts, state).await {
            Ok(Path(params)) => params.get("user").cloned(),
            Err(PathRejection::MissingPathParams(_)) => None,
            Err(e) => return Err(ApiError::bad_request(e.body_text())),
        };
        acting_user(path_user.as_deref(), &parts.headers).map(ActingUser)
    }
}

// ---- handlers ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct AppidBody {
    appid: Option<String>,
}

impl AppidBody {
    fn appid(self) -> Result<String, ApiError> {
        self.appid.filter(|a| !a.is_empty()).ok_or_else(|| ApiError::bad_request("appid is required"))
    }
}

type ApiResult = Result<Response, ApiError>;

/// The registry, with the third-party platform as configured now (it may have been changed
/// since the file was read).
async fn apps(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let mut listing = sim.registry().listing();
    if let (Value::Object(map), Some(c)) = (&mut listing, sim.component()) {
        map.insert("component".into(), json!(c));
    }
    Json(listing)
}

/// A merchant creates an app in WeChat's console: WeChat knows it from now on (the bridge
/// learns of it only through its own admin API).
async fn create_app(
    State(sim): State<Arc<Sim>>,
    Path(appid): Path<String>,
    JsonBody(mut body): JsonBody<Value>,
) -> ApiResult {
    let obj = body.as_object_mut().ok_or_else(|| ApiError::bad_request("the body must be an app object"))?;
    match obj.get("appid").and_then(Value::as_str) {
        Some(a) if a != appid => return Err(ApiError::bad_request("the body's appid is not the path's")),
        _ => {
            obj.insert("appid".into(), Value::String(appid.clone()));
        }
    }
    let app: crate::registry::App =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("not an app: {e}")))?;
    let created = sim.registry().create(app).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({ "appid": appid, "created": created }))).into_response())
}

async fn whoami(ActingUser(user): ActingUser) -> Json<Value> {
    Json(json!({ "user": user }))
}

async fn login(
    State(sim): State<Arc<Sim>>,
    ActingUser(user): ActingUser,
    JsonBody(body): JsonBody<AppidBody>,
) -> ApiResult {
    let code = sim.login(&user, &body.appid()?)?;
    Ok(Json(json!({ "code": code })).into_response())
}

async fn userinfo(
    State(sim): State<Arc<Sim>>,
    ActingUser(user): ActingUser,
    JsonBody(body): JsonBody<AppidBody>,
) -> ApiResult {
    Ok(Json(sim.userinfo(&user, &body.appid()?)?).into_response())
}

async fn identity(State(sim): State<Arc<Sim>>, ActingUser(user): ActingUser, RawQuery(q): RawQuery) -> ApiResult {
    let appid = query_map(q.as_deref()).remove("appid");
    let appid = AppidBody { appid }.appid()?;
    Ok(Json(sim.identity(&user, &appid)?).into_response())
}

async fn switches(State(sim): State<Arc<Sim>>, ActingUser(user): ActingUser) -> ApiResult {
    Ok(Json(sim.switches(&user)?).into_response())
}

/// Partial update: `{"refuse_userinfo": bool, "snapshot": bool}`, either may be left out;
/// unknown fields are rejected so a typo cannot silently do nothing.
async fn set_switches(
    State(sim): State<Arc<Sim>>,
    ActingUser(user): ActingUser,
    JsonBody(update): JsonBody<SwitchesUpdate>,
) -> ApiResult {
    Ok(Json(sim.update_switches(&user, update)?).into_response())
}

fn clock_body(sim: &Sim) -> Json<Value> {
    Json(json!({
        "now_millis": sim.now_millis(),
        "offset_millis": sim.clock_offset_millis(),
    }))
}

async fn clock(State(sim): State<Arc<Sim>>) -> Json<Value> {
    clock_body(&sim)
}

#[derive(Deserialize)]
struct AdvanceBody {
    advance_seconds: Option<i64>,
    advance_millis: Option<i64>,
}

async fn advance_clock(State(sim): State<Arc<Sim>>, JsonBody(body): JsonBody<AdvanceBody>) -> ApiResult {
    let millis = match (body.advance_seconds, body.advance_millis) {
        (None, None) => return Err(ApiError::bad_request("advance_seconds is required")),
        (s, m) => s
            .unwrap_or(0)
            .checked_mul(1000)
            .and_then(|s| s.checked_add(m.unwrap_or(0)))
            .ok_or_else(|| ApiError::bad_request("advance is out of range"))?,
    };
    sim.advance_clock_millis(millis);
    Ok(clock_body(&sim).into_response())
}

async fn reset_clock(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.reset_clock();
    clock_body(&sim)
}

async fn faults(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({ "faults": sim.faults() }))
}

async fn add_fault(State(sim): State<Arc<Sim>>, JsonBody(fault): JsonBody<Fault>) -> ApiResult {
    sim.add_fault(fault)?;
    Ok(Json(json!({ "faults": sim.faults() })).into_response())
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

async fn calls(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!(sim.calls()))
}

async fn reset_calls(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.reset_calls();
    StatusCode::NO_CONTENT
}

fn config_body(sim: &Sim) -> Json<Value> {
    Json(json!({
        "unionid_mode": sim.unionid_mode(),
        "push_base": sim.push_base(),
        "push_retries": sim.push_retries(),
        "push_timeout_ms": u64::try_from(sim.push_timeout().as_millis()).unwrap_or(u64::MAX),
        "cs_window": sim.cs_window(),
    }))
}

async fn config(State(sim): State<Arc<Sim>>) -> Json<Value> {
    config_body(&sim)
}

/// Partial update; unknown fields are rejected so a typo cannot silently do nothing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    unionid_mode: Option<String>,
    push_retries: Option<u32>,
    push_timeout_ms: Option<u64>,
    cs_window: Option<bool>,
}

async fn set_config(State(sim): State<Arc<Sim>>, JsonBody(body): JsonBody<ConfigBody>) -> ApiResult {
    // Validate everything before changing anything.
    let mode: Option<UnionIdMode> = body.unionid_mode.map(|m| m.parse()).transpose().map_err(ApiError::bad_request)?;
    if body.push_retries.is_some_and(|r| r > crate::sim::MAX_PUSH_RETRIES) {
        return Err(ApiError::bad_request(format!("push_retries is at most {}", crate::sim::MAX_PUSH_RETRIES)));
    }
    if body.push_timeout_ms.is_some_and(|t| !(1..=crate::sim::MAX_PUSH_TIMEOUT_MS).contains(&t)) {
        return Err(ApiError::bad_request(format!("push_timeout_ms must be 1 to {}", crate::sim::MAX_PUSH_TIMEOUT_MS)));
    }
    if let Some(mode) = mode {
        sim.set_unionid_mode(mode);
    }
    if let Some(retries) = body.push_retries {
        sim.set_push_retries(retries)?;
    }
    if let Some(ms) = body.push_timeout_ms {
        sim.set_push_timeout_ms(ms)?;
    }
    if let Some(on) = body.cs_window {
        sim.set_cs_window(on);
    }
    Ok(config_body(&sim).into_response())
}

// ---- official accounts: scans, clicks, follows, messages; pushes ---------------------------

#[derive(Deserialize)]
struct TicketBody {
    ticket: Option<String>,
}

/// `{"ticket"}` → `{"status":"expired"}` (unknown or expired ticket: nothing pushed) or the push
/// outcome `{"status":"pushed"|"bad_reply"|"failed","event":"subscribe"|"SCAN","appid","openid",
/// "http_status","attempts","reply","reply_type","reply_xml"?,"error"?}`.
async fn scan(
    State(sim): State<Arc<Sim>>,
    ActingUser(user): ActingUser,
    JsonBody(body): JsonBody<TicketBody>,
) -> ApiResult {
    let ticket = body.ticket.filter(|t| !t.is_empty()).ok_or_else(|| ApiError::bad_request("ticket is required"))?;
    match sim.scan(&user, &ticket).await? {
        ScanResult::Expired => Ok(Json(json!({ "status": "expired" })).into_response()),
        ScanResult::Pushed(outcome) => Ok(Json(outcome).into_response()),
    }
}

#[derive(Deserialize)]
struct ClickBody {
    appid: Option<String>,
    key: Option<String>,
}

async fn click(
    State(sim): State<Arc<Sim>>,
    ActingUser(user): ActingUser,
    JsonBody(body): JsonBody<ClickBody>,
) -> ApiResult {
    let appid = AppidBody { appid: body.appid }.appid()?;
    let key = body.key.filter(|k| !k.is_empty()).ok_or_else(|| ApiError::bad_request("key is required"))?;
    Ok(Json(sim.click(&user, &appid, &key).await?).into_response())
}

async fn subscribe(
    State(sim): State<Arc<Sim>>,
    ActingUser(user): ActingUser,
    JsonBody(body): JsonBody<AppidBody>,
) -> ApiResult {
    Ok(Json(sim.subscribe(&user, &body.appid()?).await?).into_response())
}

async fn unsubscribe(
    State(sim): State<Arc<Sim>>,
    ActingUser(user): ActingUser,
    JsonBody(body): JsonBody<AppidBody>,
) -> ApiResult {
    Ok(Json(sim.unsubscribe(&user, &body.appid()?).await?).into_response())
}

async fn follow(
    State(sim): State<Arc<Sim>>,
    ActingUser(user): ActingUser,
    JsonBody(body): JsonBody<AppidBody>,
) -> ApiResult {
    let appid = body.appid()?;
    let changed = sim.follow(&user, &appid)?;
    Ok(Json(json!({ "appid": appid, "following": true, "changed": changed })).into_response())
}

async fn following(State(sim): State<Arc<Sim>>, ActingUser(user): ActingUser, RawQuery(q): RawQuery) -> ApiResult {
    let appid = AppidBody { appid: query_map(q.as_deref()).remove("appid") }.appid()?;
    sim.registry().app(&appid).ok_or_else(|| SimError::UnknownApp(appid.clone()))?;
    Ok(Json(json!({ "appid": appid, "following": sim.is_following(&user, &appid) })).into_response())
}

async fn messages(State(sim): State<Arc<Sim>>, ActingUser(user): ActingUser, RawQuery(q): RawQuery) -> ApiResult {
    let appid = AppidBody { appid: query_map(q.as_deref()).remove("appid") }.appid()?;
    Ok(Json(json!({ "messages": sim.messages(&user, &appid)? })).into_response())
}

async fn app_login(
    State(sim): State<Arc<Sim>>,
    ActingUser(user): ActingUser,
    JsonBody(body): JsonBody<AppidBody>,
) -> ApiResult {
    let code = sim.app_login(&user, &body.appid()?)?;
    Ok(Json(json!({ "code": code })).into_response())
}

async fn pushes(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({ "pushes": sim.pushes() }))
}

#[derive(Deserialize)]
struct ReplayBody {
    times: Option<u32>,
}

/// `{"times": N}` (default 1) → `{"results": [push outcome, …]}`.
async fn replay(State(sim): State<Arc<Sim>>, JsonBody(body): JsonBody<ReplayBody>) -> ApiResult {
    let results = sim.replay_last_push(body.times.unwrap_or(1)).await?;
    Ok(Json(json!({ "results": results })).into_response())
}

// ---- the third-party platform ----------------------------------------------------------------

async fn component(State(sim): State<Arc<Sim>>) -> ApiResult {
    let c = sim.component_json().ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no component configured".into()))?;
    Ok(Json(c).into_response())
}

/// `PUT /sim/component`: `domains` defaults to the registry section's; unknown fields are
/// rejected so a typo cannot silently do nothing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentBody {
    component_appid: String,
    secret: String,
    token: String,
    encoding_aes_key: String,
    events_url: Option<String>,
    message_url: Option<String>,
    domains: Option<Vec<String>>,
}

async fn set_component(State(sim): State<Arc<Sim>>, JsonBody(body): JsonBody<ComponentBody>) -> ApiResult {
    let section_domains = sim.registry().component.as_ref().map(|c| c.domains.clone());
    let config = ComponentConfig {
        component_appid: body.component_appid,
        secret: body.secret,
        token: body.token,
        encoding_aes_key: body.encoding_aes_key,
        events_url: body.events_url,
        message_url: body.message_url,
        domains: body.domains.or(section_domains).unwrap_or_default(),
    };
    config.validate().map_err(|e| ApiError::bad_request(e.to_string()))?;
    sim.set_component(config);
    component(State(sim)).await
}

async fn push_ticket(State(sim): State<Arc<Sim>>) -> ApiResult {
    Ok(Json(sim.push_ticket().await?).into_response())
}

async fn merchant_authorize(
    State(sim): State<Arc<Sim>>,
    Path(merchant): Path<String>,
    JsonBody(body): JsonBody<AuthorizeRequest>,
) -> Response {
    match sim.authorize_component(&merchant, body).await {
        Ok(authorized) => Json(authorized).into_response(),
        Err(e) => sim_error_response(e),
    }
}

async fn merchant_unauthorize(
    State(sim): State<Arc<Sim>>,
    Path(merchant): Path<String>,
    JsonBody(body): JsonBody<AppidBody>,
) -> ApiResult {
    let event = sim.unauthorize_component(&merchant, &body.appid()?).await?;
    Ok(Json(json!({ "status": event.status, "body": event.body })).into_response())
}

async fn reset(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.reset();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn acting_user_prefers_path_then_header_then_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; wxsim_user=carol%20c+d; b=2"));
        assert_eq!(acting_user(None, &h).map_err(|e| e.1).as_deref(), Ok("carol c+d"));
        h.insert(USER_HEADER, HeaderValue::from_static("bob"));
        assert_eq!(acting_user(None, &h).map_err(|e| e.1).as_deref(), Ok("bob"));
        assert_eq!(acting_user(Some("alice"), &h).map_err(|e| e.1).as_deref(), Ok("alice"));
        assert!(acting_user(None, &HeaderMap::new()).is_err());
    }
}
