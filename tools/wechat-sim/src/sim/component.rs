//! The third-party platform (第三方平台, "component", contract §11): WeChat acting towards the
//! platform that merchants authorize instead of handing over their AppSecrets.
//!
//! * Every ticket push (`component_verify_ticket`) carries a fresh `ticket@@@…`, valid 12 hours
//!   (sim clock) from its push; older tickets stay valid until their own end.
//! * `api_component_token` needs a ticket that was pushed (61006 otherwise) and is not older than
//!   12 h (61005); each call issues a new token and the previous one lives 5 more minutes, as
//!   `/cgi-bin/token` (then 40001; past its 7200 s, 42001).
//! * A `pre_auth_code` lives 1800 s; the merchant approves on the authorization page; each app
//!   then gets a new `authorizer_refresh_token` and a one-time authorization code (600 s), and
//!   the `authorized` (or `updateauthorized`) event goes to the events URL before the answer.
//! * `api_authorizer_token` rotates the refresh token: the one passed in dies at once (61023 on
//!   reuse); authorizer access tokens overlap 5 minutes and die when the app is unauthorized.
//! * A token that is not a live component token answers 40001 (42001 expired); an app's or
//!   authorizer's access token passed as `component_access_token` answers 48001.
//!
//! Where the contract is silent: an unknown `component_appid` (or none configured) is 40013, a
//! missing authorization code 61009, a missing `auth_type` on the authorization page means both
//! kinds (3). Tickets are remembered for 7 days (an older one answers 61006, not 61005). The
//! page's `redirect_uri` is not checked against a 授权发起页域名 (the registry has none), but a
//! merchant approving with a redirect needs one. `func_info` is a fixed set per kind (OA: 1, 2,
//! 3, 4, 6, 7, 11; mini program: 17, 18, 19, 25, 30, 31, 36, 37, 40).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::oauth::append_query;
use super::push::cdata;
use super::tokens::{prune, revoke, rotate, TokenKind, ACCESS_TOKEN_TTL_SECONDS};
use super::{errcode, lock, param, Code2Session, Sim, SimError, State, WebAccessToken, WxError};
use crate::ids;
use crate::registry::{App, ComponentConfig};

/// A component_verify_ticket is valid 12 hours from its push.
pub const TICKET_TTL_MILLIS: i64 = 12 * 60 * 60 * 1000;
/// WeChat pushes a ticket every 10 minutes.
pub const TICKET_INTERVAL_MILLIS: i64 = 10 * 60 * 1000;
/// A component_access_token lives as long as an access token.
pub const COMPONENT_TOKEN_TTL_SECONDS: i64 = ACCESS_TOKEN_TTL_SECONDS;
/// A pre_auth_code lives 1800 s (the documented value; trust `expires_in`).
pub const PRE_AUTH_CODE_TTL_SECONDS: i64 = 1800;
/// An authorization code (`auth_code`, `AuthorizationCode`) lives 600 s.
pub const AUTHORIZATION_CODE_TTL_SECONDS: i64 = 600;
const TICKET_RETENTION_MILLIS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Codes are forgotten a day after they expired (then they answer 61009 anyway).
const CODE_RETENTION_MILLIS: i64 = 24 * 60 * 60 * 1000;
const RANDOM_LEN: usize = 43;
/// How often the ticket timer looks at the sim clock.
const TIMER_PERIOD: Duration = Duration::from_secs(1);

/// What `POST /sim/component/ticket` and [`Sim::push_ticket`] answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketPush {
    pub ticket: String,
    /// The HTTP status of the events URL's last answer (`None`: no answer at all).
    pub status: Option<u16>,
    /// The text it answered (`success` from a healthy bridge).
    pub body: String,
}

/// One authorization event pushed to the events URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventPush {
    pub appid: String,
    pub info_type: String,
    pub status: Option<u16>,
    pub body: String,
}

/// What `api_component_token` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentToken {
    pub component_access_token: String,
    pub expires_in: i64,
}

/// What `api_create_preauthcode` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreAuthCode {
    pub pre_auth_code: String,
    pub expires_in: i64,
}

/// What `api_authorizer_token` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizerToken {
    pub authorizer_access_token: String,
    pub expires_in: i64,
    pub authorizer_refresh_token: String,
}

/// `POST /sim/merchants/{merchant}/authorize`: the merchant approves on the authorization page.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    #[serde(default)]
    pub appids: Vec<String>,
    /// Default: the last authorization page's.
    #[serde(default)]
    pub pre_auth_code: Option<String>,
    /// Default: the last authorization page's.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// `false`: the merchant closed the page; only the events happen. Default `true`.
    #[serde(default)]
    pub redirect: Option<bool>,
}

/// The answer of an authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authorized {
    /// `redirect_uri?auth_code=<first app's code>&expires_in=600`; `None` without redirect.
    pub location: Option<String>,
    pub locations: Vec<String>,
    pub events: Vec<EventPush>,
}

/// The authorization page as WeChat renders it (the HTML is `wechat`'s).
#[derive(Debug, Clone)]
pub struct AuthorizationPage {
    pub component_appid: String,
    pub pre_auth_code: String,
    pub redirect_uri: Option<String>,
    /// The component apps the merchant may pick (auth_type and biz_appid applied).
    pub apps: Vec<App>,
}

#[derive(Debug)]
struct Ticket {
    component_appid: String,
    value: String,
    pushed_at: i64,
}

#[derive(Debug, Clone)]
struct LastPage {
    pre_auth_code: String,
    redirect_uri: Option<String>,
    biz_appid: Option<String>,
}

#[derive(Debug)]
struct AuthCode {
    appid: String,
    issued_at: i64,
    used: bool,
}

#[derive(Debug)]
struct Authorization {
    merchant: String,
    authorized: bool,
    refresh_token: Option<String>,
    token: Option<String>,
    prev_token: Option<String>,
}

/// The platform's state (everything `reset` forgets; the configuration is kept apart).
#[derive(Debug, Default)]
pub(super) struct ComponentState {
    /// Pushed tickets, oldest first.
    tickets: Vec<Ticket>,
    token: Option<String>,
    prev_token: Option<String>,
    /// pre_auth_code → when it was issued.
    pre_auth_codes: HashMap<String, i64>,
    last_page: Option<LastPage>,
    auth_codes: HashMap<String, AuthCode>,
    authorizations: BTreeMap<String, Authorization>,
}

impl ComponentState {
    fn authorized(&self, appid: &str) -> Option<&Authorization> {
        self.authorizations.get(appid).filter(|a| a.authorized)
    }
}

#[derive(Deserialize)]
struct ComponentTokenBody {
    component_appid: Option<String>,
    component_appsecret: Option<String>,
    component_verify_ticket: Option<String>,
}

#[derive(Deserialize)]
struct StartPushBody {
    component_appid: Option<String>,
    component_secret: Option<String>,
}

/// The body of the calls made with a component_access_token.
#[derive(Deserialize)]
struct ComponentCallBody {
    component_appid: Option<String>,
    authorization_code: Option<String>,
    authorizer_appid: Option<String>,
    authorizer_refresh_token: Option<String>,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, WxError> {
    serde_json::from_slice(body).map_err(|_| WxError(errcode::DATA_FORMAT_ERROR))
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn no_component() -> SimError {
    SimError::Invalid("no third-party platform is configured (PUT /sim/component)".into())
}

fn random_code(prefix: &str) -> String {
    format!("{prefix}@@@{}", ids::random_alphanumeric(RANDOM_LEN))
}

/// A decrypted event: `<xml><AppId/><CreateTime/><InfoType/>{extra}</xml>`.
fn info_xml(component_appid: &str, create_time: i64, info_type: &str, extra: &str) -> String {
    format!(
        "<xml><AppId>{}</AppId><CreateTime>{create_time}</CreateTime><InfoType>{}</InfoType>{extra}</xml>",
        cdata(component_appid),
        cdata(info_type)
    )
}

fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", cdata(value))
}

/// The permission sets (权限集) the simulator grants on authorization.
fn func_info(app: &App) -> Value {
    let ids: &[u32] =
        if app.is_mini_program() { &[17, 18, 19, 25, 30, 31, 36, 37, 40] } else { &[1, 2, 3, 4, 6, 7, 11] };
    ids.iter().map(|id| json!({ "funcscope_category": { "id": id } })).collect()
}

fn event_push(appid: &str, info_type: &str, (out, answer): (super::PushOutcome, Option<String>)) -> EventPush {
    EventPush {
        appid: appid.to_owned(),
        info_type: info_type.to_owned(),
        status: out.http_status,
        body: answer.unwrap_or_default(),
    }
}

impl Sim {
    // ---- configuration ---------------------------------------------------------------------

    /// Configures (or replaces) the third-party platform. Tickets, tokens and authorizations
    /// stay; those of another component_appid no longer count. Check it first with
    /// [`ComponentConfig::validate`]: an invalid key or URL only shows when something is pushed.
    pub fn set_component(&self, config: ComponentConfig) {
        *lock(&self.component) = Some(config);
    }

    /// The third-party platform as configured (URLs as given; `None` means the default).
    pub fn component(&self) -> Option<ComponentConfig> {
        lock(&self.component).clone()
    }

    /// The platform's configuration with its effective URLs, as `/sim/component` shows it.
    pub fn component_json(&self) -> Option<Value> {
        let c = self.component()?;
        let (ticket, pushed_at, authorizations) = {
            let st = lock(&self.state);
            let cs = &st.component;
            let last = cs.tickets.iter().rev().find(|t| t.component_appid == c.component_appid);
            let auths: serde_json::Map<String, Value> = cs
                .authorizations
                .iter()
                .map(|(appid, a)| {
                    let v = json!({
                        "merchant": a.merchant,
                        "authorized": a.authorized,
                        "authorizer_refresh_token": a.refresh_token,
                    });
                    (appid.clone(), v)
                })
                .collect();
            (last.map(|t| t.value.clone()), last.map(|t| t.pushed_at), auths)
        };
        Some(json!({
            "component_appid": c.component_appid,
            "secret": c.secret,
            "token": c.token,
            "encoding_aes_key": c.encoding_aes_key,
            "events_url": c.events_url(self.push_base()),
            "message_url": c.message_url_pattern(self.push_base()),
            "domains": c.domains,
            "ticket": ticket,
            "ticket_pushed_at_ms": pushed_at,
            "authorizations": authorizations,
        }))
    }

    /// The platform if the app is authorized to it now.
    pub(super) fn authorized_component(&self, appid: &str) -> Option<ComponentConfig> {
        let c = self.component()?;
        lock(&self.state).component.authorized(appid).is_some().then_some(c)
    }

    /// The platform named by a request: 40013 when none is configured or the appid differs.
    fn component_named(&self, asked: Option<&str>) -> Result<ComponentConfig, WxError> {
        self.component().filter(|c| Some(c.component_appid.as_str()) == asked).ok_or(WxError(errcode::INVALID_APPID))
    }

    /// Checks `component_access_token` (missing 41001; unknown, superseded or another
    /// platform's 40001; expired 42001; an app's or authorizer's access token 48001), then the
    /// request's component_appid (40013).
    fn check_component(&self, q: &HashMap<String, String>, asked: Option<&str>) -> Result<ComponentConfig, WxError> {
        let token = param(q, "component_access_token").ok_or(WxError(errcode::MISSING_ACCESS_TOKEN))?;
        let (appid, kind) = self.live_token(token)?;
        if kind != TokenKind::Component {
            return Err(WxError(errcode::API_UNAUTHORIZED));
        }
        let c = self.component().filter(|c| c.component_appid == appid).ok_or(WxError(errcode::INVALID_CREDENTIAL))?;
        if asked != Some(c.component_appid.as_str()) {
            return Err(WxError(errcode::INVALID_APPID));
        }
        Ok(c)
    }

    /// The app a component call names (40013 if unknown), authorized to the platform (61003).
    fn authorizer_app(&self, appid: Option<&str>) -> Result<&App, WxError> {
        let app = appid.and_then(|a| self.registry.app(a)).ok_or(WxError(errcode::INVALID_APPID))?;
        if lock(&self.state).component.authorized(&app.appid).is_none() {
            return Err(WxError(errcode::COMPONENT_UNAUTHORIZED));
        }
        Ok(app)
    }

    // ---- tickets ---------------------------------------------------------------------------

    /// Pushes a fresh component_verify_ticket to the events URL now (valid from this moment,
    /// whatever the bridge answers).
    pub async fn push_ticket(&self) -> Result<TicketPush, SimError> {
        let c = self.component().ok_or_else(no_component)?;
        let ticket = random_code("ticket");
        let now = self.now_millis();
        let extra = element("ComponentVerifyTicket", &ticket);
        let xml = info_xml(&c.component_appid, now.div_euclid(1000), "component_verify_ticket", &extra);
        let d = self.component_delivery(&c, "component_verify_ticket", &c.component_appid, xml)?;
        {
            let mut st = lock(&self.state);
            let tickets = &mut st.component.tickets;
            tickets.retain(|t| now.saturating_sub(t.pushed_at) < TICKET_RETENTION_MILLIS);
            tickets.push(Ticket { component_appid: c.component_appid.clone(), value: ticket.clone(), pushed_at: now });
        }
        let (out, answer) = self.deliver_with_retries(d).await;
        Ok(TicketPush { ticket, status: out.http_status, body: answer.unwrap_or_default() })
    }

    /// Whether the timer should push: a platform is configured and none of its tickets was
    /// pushed in the last 10 simulated minutes.
    fn ticket_due(&self) -> bool {
        let Some(c) = self.component() else {
            return false;
        };
        let now = self.now_millis();
        let st = lock(&self.state);
        let last = st.component.tickets.iter().rev().find(|t| t.component_appid == c.component_appid);
        last.is_none_or(|t| now.saturating_sub(t.pushed_at) >= TICKET_INTERVAL_MILLIS)
    }

    /// Starts WeChat's ticket timer: about every second of real time it pushes a ticket if a
    /// platform is configured and none was pushed for 10 simulated minutes (at once when none
    /// was pushed yet). At most one push per check, however far the clock jumped. The task ends
    /// when the simulator is dropped (it holds only a weak reference between checks).
    pub fn spawn_ticket_timer(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sim = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TIMER_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                let Some(sim) = sim.upgrade() else {
                    break;
                };
                if !sim.ticket_due() {
                    continue;
                }
                match sim.push_ticket().await {
                    Ok(_) => failing = false,
                    // Warn once per run of failures, not every second.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "cannot push a component_verify_ticket");
                    }
                    Err(_) => {}
                }
            }
        })
    }

    // ---- WeChat: component token -----------------------------------------------------------

    /// `POST /cgi-bin/component/api_component_token`.
    pub fn component_token(&self, body: &[u8]) -> Result<ComponentToken, WxError> {
        let body: ComponentTokenBody = json_body(body)?;
        let c = self.component_named(nonempty(&body.component_appid))?;
        if nonempty(&body.component_appsecret) != Some(c.secret.as_str()) {
            return Err(WxError(errcode::INVALID_APPSECRET));
        }
        let ticket = nonempty(&body.component_verify_ticket).ok_or(WxError(errcode::TICKET_INVALID))?;
        let now = self.now_millis();
        let mut st = lock(&self.state);
        let pushed_at = st
            .component
            .tickets
            .iter()
            .find(|t| t.component_appid == c.component_appid && t.value == ticket)
            .map(|t| t.pushed_at)
            .ok_or(WxError(errcode::TICKET_INVALID))?;
        if now.saturating_sub(pushed_at) >= TICKET_TTL_MILLIS {
            return Err(WxError(errcode::TICKET_EXPIRED));
        }
        prune(&mut st, now);
        let State { access_tokens, component, .. } = &mut *st;
        let slot = (&mut component.token, &mut component.prev_token);
        let token = rotate(access_tokens, slot, &c.component_appid, TokenKind::Component, now);
        Ok(ComponentToken { component_access_token: token, expires_in: COMPONENT_TOKEN_TTL_SECONDS })
    }

    /// `POST /cgi-bin/component/api_start_push_ticket`: checks the platform's credentials; the
    /// caller then pushes a ticket ([`Sim::push_ticket`]), as WeChat does shortly after.
    pub fn start_push_ticket(&self, body: &[u8]) -> Result<(), WxError> {
        let body: StartPushBody = json_body(body)?;
        let c = self.component_named(nonempty(&body.component_appid))?;
        if nonempty(&body.component_secret) != Some(c.secret.as_str()) {
            return Err(WxError(errcode::INVALID_APPSECRET));
        }
        Ok(())
    }

    // ---- WeChat: authorization -------------------------------------------------------------

    /// `POST /cgi-bin/component/api_create_preauthcode?component_access_token=`.
    pub fn create_preauthcode(&self, q: &HashMap<String, String>, body: &[u8]) -> Result<PreAuthCode, WxError> {
        let body: ComponentCallBody = json_body(body)?;
        self.check_component(q, nonempty(&body.component_appid))?;
        let code = random_code("preauthcode");
        let now = self.now_millis();
        let mut st = lock(&self.state);
        let codes = &mut st.component.pre_auth_codes;
        let retention = PRE_AUTH_CODE_TTL_SECONDS * 1000 + CODE_RETENTION_MILLIS;
        codes.retain(|_, issued| now.saturating_sub(*issued) < retention);
        codes.insert(code.clone(), now);
        Ok(PreAuthCode { pre_auth_code: code, expires_in: PRE_AUTH_CODE_TTL_SECONDS })
    }

    /// Whether a pre_auth_code can be used now: unknown 61009, expired 61010.
    fn check_pre_auth_code(&self, cs: &ComponentState, code: &str) -> Result<(), i64> {
        let issued = *cs.pre_auth_codes.get(code).ok_or(errcode::AUTH_CODE_INVALID)?;
        if self.now_millis().saturating_sub(issued) >= PRE_AUTH_CODE_TTL_SECONDS * 1000 {
            return Err(errcode::AUTH_CODE_EXPIRED);
        }
        Ok(())
    }

    /// The authorization page (`/cgi-bin/componentloginpage`, `/wxaopen/safe/bindcomponent`) for
    /// its query: wrong component_appid 40013, unknown pre_auth_code 61009, expired 61010, an
    /// `auth_type` other than 1, 2 or 3 40097. Remembered as "the last page" when it renders.
    pub fn authorization_page(&self, q: &HashMap<String, String>) -> Result<AuthorizationPage, WxError> {
        let c = self.component_named(param(q, "component_appid"))?;
        let pre_auth_code = param(q, "pre_auth_code").ok_or(WxError(errcode::AUTH_CODE_INVALID))?;
        let (oa, mp) = match param(q, "auth_type").unwrap_or("3") {
            "1" => (true, false),
            "2" => (false, true),
            "3" => (true, true),
            _ => return Err(WxError(errcode::INVALID_ARGS)),
        };
        let biz_appid = param(q, "biz_appid").map(str::to_owned);
        let redirect_uri = param(q, "redirect_uri").map(str::to_owned);
        let apps = self
            .registry
            .all_apps()
            .into_iter()
            .filter(|a| a.is_component() && ((oa && a.is_official_account()) || (mp && a.is_mini_program())))
            .filter(|a| biz_appid.as_ref().is_none_or(|b| *b == a.appid))
            .collect();
        let mut st = lock(&self.state);
        self.check_pre_auth_code(&st.component, pre_auth_code).map_err(WxError)?;
        st.component.last_page =
            Some(LastPage { pre_auth_code: pre_auth_code.to_owned(), redirect_uri: redirect_uri.clone(), biz_appid });
        Ok(AuthorizationPage {
            component_appid: c.component_appid,
            pre_auth_code: pre_auth_code.to_owned(),
            redirect_uri,
            apps,
        })
    }

    /// The merchant approves on the authorization page: every app is checked (a component app
    /// of this merchant, allowed by the page's biz_appid) and the pre_auth_code too before
    /// anything changes; then each app in order gets a new refresh token and a one-time
    /// authorization code, and its `authorized` / `updateauthorized` event is pushed.
    pub async fn authorize_component(&self, merchant: &str, req: AuthorizeRequest) -> Result<Authorized, SimError> {
        let c = self.component().ok_or_else(no_component)?;
        if req.appids.is_empty() {
            return Err(SimError::Invalid("appids must name at least one app".into()));
        }
        for (i, appid) in req.appids.iter().enumerate() {
            let app = self.app(appid)?;
            if !app.is_component() {
                return Err(SimError::Invalid(format!("{appid} is not a component app (\"auth\": \"component\")")));
            }
            if app.owner != merchant {
                return Err(SimError::Invalid(format!("{appid} belongs to {:?}, not to {merchant:?}", app.owner)));
            }
            if req.appids[..i].contains(appid) {
                return Err(SimError::Invalid(format!("{appid} is listed twice")));
            }
        }
        let redirect = req.redirect.unwrap_or(true);
        let now = self.now_millis();
        let expires_at = now.div_euclid(1000) + AUTHORIZATION_CODE_TTL_SECONDS;
        let (pending, locations) = {
            let mut st = lock(&self.state);
            let cs = &mut st.component;
            let last = cs.last_page.clone();
            let pre_auth_code =
                req.pre_auth_code.or_else(|| last.as_ref().map(|p| p.pre_auth_code.clone())).ok_or_else(|| {
                    SimError::Invalid("no pre_auth_code: pass one or render an authorization page".into())
                })?;
            self.check_pre_auth_code(cs, &pre_auth_code).map_err(|errcode| SimError::Refused {
                errcode,
                message: format!("pre_auth_code {pre_auth_code} is {}", super::errmsg_for(errcode)),
            })?;
            let page = last.filter(|p| p.pre_auth_code == pre_auth_code);
            if let Some(biz) = page.as_ref().and_then(|p| p.biz_appid.as_deref()) {
                if req.appids.iter().any(|a| a != biz) {
                    return Err(SimError::Invalid(format!("the authorization page is for {biz} only")));
                }
            }
            let redirect_uri = req.redirect_uri.or_else(|| page.and_then(|p| p.redirect_uri));
            let redirect_uri = match redirect_uri {
                Some(uri) => Some(uri),
                None if redirect => {
                    return Err(SimError::Invalid("no redirect_uri: pass one or redirect: false".into()))
                }
                None => None,
            };
            // Seal every event before changing anything, so a bad events URL changes nothing.
            let mut pending = Vec::with_capacity(req.appids.len());
            for appid in &req.appids {
                let info_type = if cs.authorized(appid).is_some() { "updateauthorized" } else { "authorized" };
                let code = random_code("queryauthcode");
                let extra = [
                    element("AuthorizerAppid", appid),
                    element("AuthorizationCode", &code),
                    format!("<AuthorizationCodeExpiredTime>{expires_at}</AuthorizationCodeExpiredTime>"),
                    element("PreAuthCode", &pre_auth_code),
                ]
                .concat();
                let xml = info_xml(&c.component_appid, now.div_euclid(1000), info_type, &extra);
                pending.push((appid.clone(), code, info_type, self.component_delivery(&c, info_type, appid, xml)?));
            }
            let mut locations = Vec::new();
            for (appid, code, _, _) in &pending {
                let auth = cs.authorizations.entry(appid.clone()).or_insert_with(|| Authorization {
                    merchant: merchant.to_owned(),
                    authorized: false,
                    refresh_token: None,
                    token: None,
                    prev_token: None,
                });
                auth.merchant = merchant.to_owned();
                auth.authorized = true;
                auth.refresh_token = Some(random_code("refreshtoken"));
                let retention = AUTHORIZATION_CODE_TTL_SECONDS * 1000 + CODE_RETENTION_MILLIS;
                cs.auth_codes.retain(|_, c| now.saturating_sub(c.issued_at) < retention);
                cs.auth_codes.insert(code.clone(), AuthCode { appid: appid.clone(), issued_at: now, used: false });
                if let Some(uri) = redirect_uri.as_deref().filter(|_| redirect) {
                    let ttl = AUTHORIZATION_CODE_TTL_SECONDS.to_string();
                    locations.push(append_query(uri, &[("auth_code", code), ("expires_in", &ttl)]));
                }
            }
            (pending, locations)
        };
        let mut events = Vec::with_capacity(pending.len());
        for (appid, _, info_type, d) in pending {
            events.push(event_push(&appid, info_type, self.deliver_with_retries(d).await));
        }
        Ok(Authorized { location: locations.first().cloned(), locations, events })
    }

    /// The merchant cancels the authorization in WeChat: the app's refresh token and authorizer
    /// access tokens die at once, and `unauthorized` is pushed.
    pub async fn unauthorize_component(&self, merchant: &str, appid: &str) -> Result<EventPush, SimError> {
        let c = self.component().ok_or_else(no_component)?;
        if self.app(appid)?.owner != merchant {
            return Err(SimError::Invalid(format!("{appid} does not belong to {merchant:?}")));
        }
        let now = self.now_millis();
        let extra = element("AuthorizerAppid", appid);
        let xml = info_xml(&c.component_appid, now.div_euclid(1000), "unauthorized", &extra);
        let d = self.component_delivery(&c, "unauthorized", appid, xml)?;
        {
            let mut st = lock(&self.state);
            let State { access_tokens, component, .. } = &mut *st;
            let auth = component
                .authorizations
                .get_mut(appid)
                .filter(|a| a.authorized)
                .ok_or_else(|| SimError::Invalid(format!("{appid} is not authorized to the platform")))?;
            auth.authorized = false;
            auth.refresh_token = None;
            for token in [auth.token.take(), auth.prev_token.take()].into_iter().flatten() {
                revoke(access_tokens, &token, now);
            }
        }
        Ok(event_push(appid, "unauthorized", self.deliver_with_retries(d).await))
    }

    // ---- WeChat: authorizer tokens ---------------------------------------------------------

    /// A new authorizer access token for an authorized app (the previous one lives 5 more
    /// minutes); its current refresh token.
    fn issue_authorizer_token(&self, st: &mut State, appid: &str) -> Result<(String, String), WxError> {
        let now = self.now_millis();
        prune(st, now);
        let State { access_tokens, component, .. } = st;
        let auth = component
            .authorizations
            .get_mut(appid)
            .filter(|a| a.authorized)
            .ok_or(WxError(errcode::COMPONENT_UNAUTHORIZED))?;
        let refresh = auth.refresh_token.clone().ok_or(WxError(errcode::REFRESH_TOKEN_INVALID))?;
        let token = rotate(access_tokens, (&mut auth.token, &mut auth.prev_token), appid, TokenKind::Authorizer, now);
        Ok((token, refresh))
    }

    /// `POST /cgi-bin/component/api_query_auth?component_access_token=`: the one-time
    /// authorization code (used or unknown 61009, expired 61010) → the authorization.
    pub fn query_auth(&self, q: &HashMap<String, String>, body: &[u8]) -> Result<Value, WxError> {
        let body: ComponentCallBody = json_body(body)?;
        self.check_component(q, nonempty(&body.component_appid))?;
        let code = nonempty(&body.authorization_code).ok_or(WxError(errcode::AUTH_CODE_INVALID))?;
        let now = self.now_millis();
        let mut st = lock(&self.state);
        let issued = st.component.auth_codes.get_mut(code).ok_or(WxError(errcode::AUTH_CODE_INVALID))?;
        if issued.used {
            return Err(WxError(errcode::AUTH_CODE_INVALID));
        }
        if now.saturating_sub(issued.issued_at) >= AUTHORIZATION_CODE_TTL_SECONDS * 1000 {
            return Err(WxError(errcode::AUTH_CODE_EXPIRED));
        }
        issued.used = true;
        let appid = issued.appid.clone();
        let app = self.registry.app(&appid).ok_or(WxError(errcode::INVALID_APPID))?;
        let (token, refresh) = self.issue_authorizer_token(&mut st, &appid)?;
        Ok(json!({
            "authorization_info": {
                "authorizer_appid": appid,
                "authorizer_access_token": token,
                "expires_in": ACCESS_TOKEN_TTL_SECONDS,
                "authorizer_refresh_token": refresh,
                "func_info": func_info(app),
            }
        }))
    }

    /// `POST /cgi-bin/component/api_authorizer_token?component_access_token=`: rotates the
    /// refresh token (61023 for any but the app's current one; 61003 for an app not authorized).
    pub fn authorizer_token(&self, q: &HashMap<String, String>, body: &[u8]) -> Result<AuthorizerToken, WxError> {
        let body: ComponentCallBody = json_body(body)?;
        self.check_component(q, nonempty(&body.component_appid))?;
        let app = self.authorizer_app(nonempty(&body.authorizer_appid))?;
        let given = nonempty(&body.authorizer_refresh_token);
        let mut st = lock(&self.state);
        let auth = st
            .component
            .authorizations
            .get_mut(&app.appid)
            .filter(|a| a.authorized)
            .ok_or(WxError(errcode::COMPONENT_UNAUTHORIZED))?;
        if given.is_none() || auth.refresh_token.as_deref() != given {
            return Err(WxError(errcode::REFRESH_TOKEN_INVALID));
        }
        auth.refresh_token = Some(random_code("refreshtoken"));
        let (token, refresh) = self.issue_authorizer_token(&mut st, &app.appid)?;
        Ok(AuthorizerToken {
            authorizer_access_token: token,
            expires_in: ACCESS_TOKEN_TTL_SECONDS,
            authorizer_refresh_token: refresh,
        })
    }

    /// `POST /cgi-bin/component/api_get_authorizer_info?component_access_token=`: the app and
    /// its current refresh token (not rotated).
    pub fn get_authorizer_info(&self, q: &HashMap<String, String>, body: &[u8]) -> Result<Value, WxError> {
        let body: ComponentCallBody = json_body(body)?;
        self.check_component(q, nonempty(&body.component_appid))?;
        let app = self.authorizer_app(nonempty(&body.authorizer_appid))?;
        let refresh = lock(&self.state).component.authorized(&app.appid).and_then(|a| a.refresh_token.clone());
        let mut info = json!({
            "nick_name": app.name,
            "user_name": app.original_id(),
            "service_type_info": { "id": 2 },
            "verify_type_info": { "id": 0 },
        });
        if app.is_mini_program() {
            info["MiniProgramInfo"] = json!({});
        }
        Ok(json!({
            "authorizer_info": info,
            "authorization_info": {
                "authorizer_appid": app.appid,
                "authorizer_refresh_token": refresh,
                "func_info": func_info(app),
            }
        }))
    }

    // ---- WeChat: logins for authorized apps ------------------------------------------------

    /// `GET /sns/component/jscode2session`: as `/sns/jscode2session`, with the platform's token
    /// instead of the app's secret (the app must be a mini program authorized to it: 61003).
    pub fn component_jscode2session(&self, q: &HashMap<String, String>) -> Result<Code2Session, WxError> {
        let app = self.component_caller(q, |a| a.is_mini_program())?.0;
        self.exchange_login_code(app, q)
    }

    /// `GET /sns/oauth2/component/access_token`: the code of a web authorization done with
    /// `component_appid`, exchanged by that platform.
    pub fn component_oauth2_access_token(&self, q: &HashMap<String, String>) -> Result<WebAccessToken, WxError> {
        let (app, c) = self.component_caller(q, |a| a.is_official_account())?;
        self.exchange_web_code(app, q, Some(&c.component_appid))
    }

    /// The app (of the right kind: 40013 otherwise) and platform of a login call, after the
    /// token checks and the authorization (61003).
    fn component_caller(
        &self,
        q: &HashMap<String, String>,
        kind: impl Fn(&App) -> bool,
    ) -> Result<(&App, ComponentConfig), WxError> {
        let appid = param(q, "appid");
        appid.and_then(|a| self.registry.app(a)).filter(|a| kind(a)).ok_or(WxError(errcode::INVALID_APPID))?;
        let c = self.check_component(q, param(q, "component_appid"))?;
        Ok((self.authorizer_app(appid)?, c))
    }
}
