//! Official-account web authorization in the WeChat browser (contract §2.1, §2.2, §2.4):
//! the authorize redirect, the code exchange at `/sns/oauth2/access_token`, `/sns/userinfo`,
//! and the per-user switches that make the user's WeChat client refuse consent or browse in
//! snapshot-page mode. Also the Open Platform logins that end at the same code exchange:
//! mobile-app login (the WeChat SDK hands the app a code) and website QR login
//! (`/connect/qrconnect`, contract §2.6).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{avatar_url, errcode, lock, param, validate_user, Sim, SimError, WxError, CODE_RETENTION_MILLIS};
use crate::ids;
use crate::registry::App;

/// An authorization code lives 5 minutes (by the sim clock).
pub const WEB_CODE_TTL_MILLIS: i64 = 5 * 60 * 1000;
/// A mobile-app login code lives 10 minutes.
pub const APP_CODE_TTL_MILLIS: i64 = 10 * 60 * 1000;
/// A website QR-login code lives 10 minutes (contract §2.6).
pub const QRCONNECT_CODE_TTL_MILLIS: i64 = 10 * 60 * 1000;
/// A web access token lives 7200 seconds (by the sim clock).
pub const WEB_TOKEN_TTL_SECONDS: i64 = 7200;
/// The longest `state` WeChat carries through the redirect.
pub const MAX_STATE_LEN: usize = 128;
/// What WeChat shows as the nickname of a snapshot-page virtual account.
const SNAPSHOT_NICKNAME: &str = "微信用户";
/// The grey default avatar WeChat shows for a snapshot-page virtual account.
const SNAPSHOT_AVATAR: &str = "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132";

/// The scope of a web authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebScope {
    /// `snsapi_base`: silent, openid only.
    Base,
    /// `snsapi_userinfo`: consent page; nickname and avatar, unionid. Also mobile-app login.
    UserInfo,
    /// `snsapi_login`: website QR login.
    Login,
}

impl WebScope {
    pub fn as_str(self) -> &'static str {
        match self {
            WebScope::Base => "snsapi_base",
            WebScope::UserInfo => "snsapi_userinfo",
            WebScope::Login => "snsapi_login",
        }
    }

    /// The scope named exactly so (WeChat is case-sensitive here).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "snsapi_base" => Some(WebScope::Base),
            "snsapi_userinfo" => Some(WebScope::UserInfo),
            "snsapi_login" => Some(WebScope::Login),
            _ => None,
        }
    }
}

/// How a user's WeChat client behaves on web authorization (control surface).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Switches {
    /// The user taps "refuse" on the snsapi_userinfo consent page: WeChat redirects with
    /// `state` only, no code.
    pub refuse_userinfo: bool,
    /// The user browses in snapshot-page mode: a snsapi_userinfo authorization yields a
    /// virtual account (virtual openid and unionid, `is_snapshotuser: 1`) without consent.
    pub snapshot: bool,
}

/// A partial update of [`Switches`]; absent fields keep their value.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchesUpdate {
    #[serde(default)]
    pub refuse_userinfo: Option<bool>,
    #[serde(default)]
    pub snapshot: Option<bool>,
}

/// Why `/connect/oauth2/authorize` shows an error page instead of redirecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeError {
    /// WeChat's own error page with this errcode (see `errcode::AUTH_*`).
    Page(i64),
    /// No (valid) WeChat user in this browser: neither `X-WxSim-User` nor `wxsim_user` names one.
    UnknownUser,
    /// The user refused on the phone (website QR login with the `refuse_userinfo` switch on):
    /// no redirect.
    Refused,
}

/// The message WeChat's authorization error page shows for an errcode.
pub fn authorize_errmsg(code: i64) -> &'static str {
    match code {
        errcode::AUTH_BAD_RESPONSE_TYPE => "response_type参数错误",
        errcode::AUTH_BAD_STATE => "state参数错误（最多128字节，仅限a-zA-Z0-9）",
        errcode::AUTH_REDIRECT_DOMAIN => "redirect_uri域名与后台配置不一致",
        10004 => "此公众号被封禁",
        errcode::AUTH_SCOPE_UNAUTHORIZED => "此公众号并没有这些scope的权限",
        10006 => "必须关注此测试号",
        10009 => "操作太频繁了，请稍后重试",
        errcode::AUTH_SCOPE_EMPTY => "scope不能为空",
        errcode::AUTH_REDIRECT_URI_EMPTY => "redirect_uri不能为空",
        errcode::AUTH_APPID_EMPTY => "appid不能为空",
        10013 => "state不能为空",
        10015 => "公众号未授权第三方平台，请检查授权状态",
        errcode::AUTH_NOT_OA_APPID => "不支持微信开放平台的Appid，请使用公众号Appid",
        other => super::errmsg_for(other),
    }
}

/// The message WeChat's website QR-login page shows for an errcode.
pub fn qrconnect_errmsg(code: i64) -> &'static str {
    match code {
        errcode::AUTH_APPID_EMPTY | errcode::AUTH_NOT_OA_APPID => "AppID参数错误",
        errcode::AUTH_REDIRECT_URI_EMPTY | errcode::AUTH_REDIRECT_DOMAIN => "redirect_uri参数错误",
        errcode::AUTH_SCOPE_EMPTY | errcode::AUTH_SCOPE_UNAUTHORIZED => "Scope参数错误或没有Scope权限",
        errcode::AUTH_BAD_RESPONSE_TYPE => "response_type参数错误",
        errcode::AUTH_BAD_STATE => "state参数错误（最多128字节）",
        other => authorize_errmsg(other),
    }
}

/// What `/sns/oauth2/access_token` answers on success, in WeChat's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebAccessToken {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub openid: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_snapshotuser: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
}

/// What `/sns/userinfo` answers on success, in WeChat's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnsUserInfo {
    pub openid: String,
    pub nickname: String,
    pub sex: u8,
    pub province: String,
    pub city: String,
    pub country: String,
    pub headimgurl: String,
    pub privilege: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
}

/// An issued authorization code.
#[derive(Debug)]
pub(super) struct WebCode {
    appid: String,
    user: String,
    scope: WebScope,
    snapshot: bool,
    issued_at: i64,
    ttl_millis: i64,
    used: bool,
    /// The third-party platform that asked (`component_appid`): such a code is exchanged only
    /// at `/sns/oauth2/component/access_token` by that platform.
    component: Option<String>,
}

/// An issued web access token.
#[derive(Debug)]
pub(super) struct WebToken {
    appid: String,
    user: String,
    scope: WebScope,
    snapshot: bool,
    expires_at: i64,
}

/// Where WeChat sends the browser: `redirect_uri` with `code` (if any) and `state` (if not
/// empty) appended to its query, before any `#fragment`, joined with `?` or `&` as needed.
/// Bytes outside visible ASCII are percent-encoded so the result is a valid `Location`.
pub fn redirect_location(redirect_uri: &str, code: Option<&str>, state: &str) -> String {
    let mut params = Vec::with_capacity(2);
    if let Some(code) = code {
        params.push(("code", code));
    }
    if !state.is_empty() {
        params.push(("state", state));
    }
    append_query(redirect_uri, &params)
}

/// `uri` with `params` appended to its query, before any `#fragment`, joined with `?` or `&` as
/// needed; bytes outside visible ASCII percent-encoded (a valid `Location`).
pub(crate) fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let (base, fragment) = match uri.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (uri, None),
    };
    let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode_query_value(v))).collect();
    let mut out = String::with_capacity(uri.len() + 64);
    out.push_str(base);
    if !params.is_empty() {
        if !base.contains('?') {
            out.push('?');
        } else if !(base.ends_with('?') || base.ends_with('&')) {
            out.push('&');
        }
        out.push_str(&params.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    encode_non_visible_ascii(&out)
}

fn encode_query_value(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn encode_non_visible_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x21..=0x7e).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Sim {
    // ---- switches --------------------------------------------------------------------------

    /// The user's switches (all off for a user never seen).
    pub fn switches(&self, user: &str) -> Result<Switches, SimError> {
        validate_user(user)?;
        Ok(lock(&self.state).users.get(user).map(|u| u.switches).unwrap_or_default())
    }

    /// Applies a partial update to the user's switches; returns them as they are now.
    pub fn update_switches(&self, user: &str, update: SwitchesUpdate) -> Result<Switches, SimError> {
        validate_user(user)?;
        let mut st = lock(&self.state);
        let switches = &mut st.users.entry(user.to_owned()).or_default().switches;
        if let Some(v) = update.refuse_userinfo {
            switches.refuse_userinfo = v;
        }
        if let Some(v) = update.snapshot {
            switches.snapshot = v;
        }
        Ok(*switches)
    }

    // ---- WeChat: /connect/oauth2/authorize -------------------------------------------------

    /// What the user's WeChat browser does with an authorize URL (query parameters `q`), for the
    /// acting `user` if any: the `Location` to redirect to, or the error page to show.
    ///
    /// Parameters are checked first (in the order of contract §2.1: appid, redirect_uri, scope,
    /// response_type, state), then the user. snsapi_base is silent. snsapi_userinfo consents
    /// (and marks the OA's Open Platform account as authorized by the user) unless the user's
    /// `refuse_userinfo` switch is on (redirect without code); with the `snapshot` switch on it
    /// issues a snapshot-page code silently instead.
    ///
    /// With `component_appid` (a third-party platform acting for the OA) the OA must be
    /// authorized to that platform (else the page shows 61003) and the redirect_uri host must be
    /// one of the platform's `domains` instead of the OA's; the redirect carries `appid` too.
    pub fn authorize(&self, user: Option<&str>, q: &HashMap<String, String>) -> Result<String, AuthorizeError> {
        use AuthorizeError::Page;
        let appid = param(q, "appid").ok_or(Page(errcode::AUTH_APPID_EMPTY))?;
        let app = self.registry.app(appid).ok_or(Page(errcode::AUTH_NOT_OA_APPID))?;
        if app.is_mini_program() {
            return Err(Page(errcode::AUTH_SCOPE_UNAUTHORIZED));
        }
        if !app.is_official_account() {
            return Err(Page(errcode::AUTH_NOT_OA_APPID));
        }
        let redirect_uri = param(q, "redirect_uri").ok_or(Page(errcode::AUTH_REDIRECT_URI_EMPTY))?;
        let component = match param(q, "component_appid") {
            Some(asked) => {
                let c = self
                    .authorized_component(appid)
                    .filter(|c| c.component_appid == asked)
                    .ok_or(Page(errcode::COMPONENT_UNAUTHORIZED))?;
                if !c.allows_web_auth_redirect(redirect_uri) {
                    return Err(Page(errcode::AUTH_REDIRECT_DOMAIN));
                }
                Some(c.component_appid)
            }
            None if !app.allows_web_auth_redirect(redirect_uri) => return Err(Page(errcode::AUTH_REDIRECT_DOMAIN)),
            None => None,
        };
        let scope = param(q, "scope").ok_or(Page(errcode::AUTH_SCOPE_EMPTY))?;
        let scope =
            WebScope::parse(scope).filter(|s| *s != WebScope::Login).ok_or(Page(errcode::AUTH_SCOPE_UNAUTHORIZED))?;
        if param(q, "response_type") != Some("code") {
            return Err(Page(errcode::AUTH_BAD_RESPONSE_TYPE));
        }
        let state = q.get("state").map(String::as_str).unwrap_or("");
        if state.len() > MAX_STATE_LEN || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Page(errcode::AUTH_BAD_STATE));
        }
        let user = user.filter(|u| validate_user(u).is_ok()).ok_or(AuthorizeError::UnknownUser)?;

        let now = self.now_millis();
        let code = ids::random_alphanumeric(32);
        {
            let mut st = lock(&self.state);
            let switches = st.users.get(user).map(|u| u.switches).unwrap_or_default();
            let snapshot = scope == WebScope::UserInfo && switches.snapshot;
            if scope == WebScope::UserInfo && !snapshot && switches.refuse_userinfo {
                return Ok(redirect_location(redirect_uri, None, state));
            }
            st.web_codes.retain(|_, c| now.saturating_sub(c.issued_at) < CODE_RETENTION_MILLIS);
            st.web_codes.insert(
                code.clone(),
                WebCode {
                    appid: appid.to_owned(),
                    user: user.to_owned(),
                    scope,
                    snapshot,
                    issued_at: now,
                    ttl_millis: WEB_CODE_TTL_MILLIS,
                    used: false,
                    component: component.clone(),
                },
            );
            let user_state = st.users.entry(user.to_owned()).or_default();
            if scope == WebScope::UserInfo && !snapshot {
                if let Some(op) = &app.open_platform {
                    user_state.authorized.insert(op.clone());
                }
            }
        }
        let mut params = vec![("code", code.as_str())];
        if !state.is_empty() {
            params.push(("state", state));
        }
        if component.is_some() {
            params.push(("appid", appid));
        }
        Ok(append_query(redirect_uri, &params))
    }

    // ---- WeChat: /sns/oauth2/access_token --------------------------------------------------

    /// `GET /sns/oauth2/access_token` with its query parameters: the code of an official account
    /// (web authorization), a mobile app (SDK login) or a website (QR login).
    pub fn oauth2_access_token(&self, q: &HashMap<String, String>) -> Result<WebAccessToken, WxError> {
        let appid = param(q, "appid").ok_or(WxError(errcode::INVALID_APPID))?;
        let app = self
            .registry
            .app(appid)
            .filter(|a| a.is_official_account() || a.is_mobile_app() || a.is_website())
            .ok_or(WxError(errcode::INVALID_APPID))?;
        if !app.secret_matches(param(q, "secret")) {
            return Err(WxError(errcode::INVALID_APPSECRET));
        }
        self.exchange_web_code(app, q, None)
    }

    /// The part of the code exchange after the caller's credentials: `grant_type`, then `code`
    /// (missing 41008, unknown or another caller's 40029, used 40163, expired 42003). A code
    /// from a third-party platform's authorization goes only to that `component`.
    pub(super) fn exchange_web_code(
        &self,
        app: &App,
        q: &HashMap<String, String>,
        component: Option<&str>,
    ) -> Result<WebAccessToken, WxError> {
        let appid = app.appid.as_str();
        if param(q, "grant_type") != Some("authorization_code") {
            return Err(WxError(errcode::INVALID_GRANT_TYPE));
        }
        let code = param(q, "code").ok_or(WxError(errcode::MISSING_CODE))?;
        let now = self.now_millis();
        let access_token = ids::random_alphanumeric(86);
        let mut st = lock(&self.state);
        let issued = st
            .web_codes
            .get_mut(code)
            .filter(|c| c.appid == appid && c.component.as_deref() == component)
            .ok_or(WxError(errcode::INVALID_CODE))?;
        if issued.used {
            return Err(WxError(errcode::CODE_BEEN_USED));
        }
        if now.saturating_sub(issued.issued_at) > issued.ttl_millis {
            return Err(WxError(errcode::CODE_EXPIRED));
        }
        issued.used = true;
        let (user, scope, snapshot) = (issued.user.clone(), issued.scope, issued.snapshot);
        st.web_tokens.retain(|_, t| t.expires_at > now);
        st.web_tokens.insert(
            access_token.clone(),
            WebToken {
                appid: appid.to_owned(),
                user: user.clone(),
                scope,
                snapshot,
                expires_at: now.saturating_add(WEB_TOKEN_TTL_SECONDS * 1000),
            },
        );
        drop(st);
        let (openid, unionid) = web_ids(app.open_platform.as_deref(), appid, &user, snapshot);
        Ok(WebAccessToken {
            access_token,
            expires_in: WEB_TOKEN_TTL_SECONDS,
            refresh_token: ids::random_alphanumeric(86),
            openid,
            scope: scope.as_str().to_owned(),
            is_snapshotuser: snapshot.then_some(1),
            unionid: if scope == WebScope::Base { None } else { unionid },
        })
    }

    // ---- WeChat: /sns/userinfo -------------------------------------------------------------

    /// `GET /sns/userinfo` with its query parameters.
    pub fn sns_userinfo(&self, q: &HashMap<String, String>) -> Result<SnsUserInfo, WxError> {
        let token = param(q, "access_token").ok_or(WxError(errcode::MISSING_ACCESS_TOKEN))?;
        let now = self.now_millis();
        let (appid, user, scope, snapshot) = {
            let st = lock(&self.state);
            let t =
                st.web_tokens.get(token).filter(|t| t.expires_at > now).ok_or(WxError(errcode::INVALID_CREDENTIAL))?;
            (t.appid.clone(), t.user.clone(), t.scope, t.snapshot)
        };
        if scope == WebScope::Base {
            return Err(WxError(errcode::API_UNAUTHORIZED));
        }
        let open_platform = self.registry.app(&appid).and_then(|a| a.open_platform.as_deref());
        let (openid, unionid) = web_ids(open_platform, &appid, &user, snapshot);
        let asked = param(q, "openid").ok_or(WxError(errcode::MISSING_OPENID))?;
        if asked != openid {
            return Err(WxError(errcode::INVALID_OPENID));
        }
        let (nickname, headimgurl) = if snapshot {
            (SNAPSHOT_NICKNAME.to_owned(), SNAPSHOT_AVATAR.to_owned())
        } else {
            (user.clone(), avatar_url(&user))
        };
        Ok(SnsUserInfo {
            openid,
            nickname,
            sex: 0,
            province: String::new(),
            city: String::new(),
            country: String::new(),
            headimgurl,
            privilege: Vec::new(),
            unionid,
        })
    }

    // ---- Open Platform: mobile-app and website login ---------------------------------------

    fn issue_web_code(&self, appid: &str, user: &str, scope: WebScope, ttl_millis: i64) -> String {
        let now = self.now_millis();
        let code = ids::random_alphanumeric(32);
        let mut st = lock(&self.state);
        st.web_codes.retain(|_, c| now.saturating_sub(c.issued_at) < CODE_RETENTION_MILLIS);
        st.web_codes.insert(
            code.clone(),
            WebCode {
                appid: appid.to_owned(),
                user: user.to_owned(),
                scope,
                snapshot: false,
                issued_at: now,
                ttl_millis,
                used: false,
                component: None,
            },
        );
        st.users.entry(user.to_owned()).or_default();
        code
    }

    /// What the WeChat SDK hands a mobile app when the user approves "login with WeChat": a
    /// single-use code (10 minutes, scope `snsapi_userinfo`) for `/sns/oauth2/access_token`.
    /// The user's consent authorizes the app's Open Platform account.
    pub fn app_login(&self, user: &str, appid: &str) -> Result<String, SimError> {
        validate_user(user)?;
        let app = self.app(appid)?;
        if !app.is_mobile_app() {
            return Err(SimError::Invalid(format!("appid {appid} is not a mobile app")));
        }
        let code = self.issue_web_code(appid, user, WebScope::UserInfo, APP_CODE_TTL_MILLIS);
        self.authorize_app(user, appid)?;
        Ok(code)
    }

    /// What the user's PC browser gets from the website QR-login page after the user (the acting
    /// user) scans and confirms on the phone: the `Location` to redirect to, or the error page.
    ///
    /// Checked in order: appid (a website app), redirect_uri (host in the app's
    /// `web_auth_domains`), scope (`snsapi_login`), response_type (`code`), state (at most 128
    /// bytes), then the user. With the user's `refuse_userinfo` switch on, the user refuses on the
    /// phone and the page does not redirect.
    pub fn qrconnect(&self, user: Option<&str>, q: &HashMap<String, String>) -> Result<String, AuthorizeError> {
        use AuthorizeError::Page;
        let appid = param(q, "appid").ok_or(Page(errcode::AUTH_APPID_EMPTY))?;
        let app = self.registry.app(appid).filter(|a| a.is_website()).ok_or(Page(errcode::AUTH_NOT_OA_APPID))?;
        let redirect_uri = param(q, "redirect_uri").ok_or(Page(errcode::AUTH_REDIRECT_URI_EMPTY))?;
        if !app.allows_web_auth_redirect(redirect_uri) {
            return Err(Page(errcode::AUTH_REDIRECT_DOMAIN));
        }
        let scope = param(q, "scope").ok_or(Page(errcode::AUTH_SCOPE_EMPTY))?;
        if WebScope::parse(scope) != Some(WebScope::Login) {
            return Err(Page(errcode::AUTH_SCOPE_UNAUTHORIZED));
        }
        if param(q, "response_type") != Some("code") {
            return Err(Page(errcode::AUTH_BAD_RESPONSE_TYPE));
        }
        let state = q.get("state").map(String::as_str).unwrap_or("");
        if state.len() > MAX_STATE_LEN {
            return Err(Page(errcode::AUTH_BAD_STATE));
        }
        let user = user.filter(|u| validate_user(u).is_ok()).ok_or(AuthorizeError::UnknownUser)?;
        let refuses = lock(&self.state).users.get(user).is_some_and(|u| u.switches.refuse_userinfo);
        if refuses {
            return Err(AuthorizeError::Refused);
        }
        let code = self.issue_web_code(appid, user, WebScope::Login, QRCONNECT_CODE_TTL_MILLIS);
        if let Some(op) = &app.open_platform {
            self.authorize_open_platform(user, op);
        }
        Ok(redirect_location(redirect_uri, Some(&code), state))
    }
}

/// The (openid, unionid) WeChat gives the app for the user: real ones, or virtual ones for a
/// snapshot-page account. The unionid exists only if the app has an Open Platform account.
fn web_ids(open_platform: Option<&str>, appid: &str, user: &str, snapshot: bool) -> (String, Option<String>) {
    if snapshot {
        (ids::snapshot_openid(appid, user), open_platform.map(|op| ids::snapshot_unionid(op, user)))
    } else {
        (ids::openid(appid, user), open_platform.map(|op| ids::unionid(op, user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use crate::sim::SimConfig;
    use std::sync::Arc;

    const REGISTRY: &str = r#"{"apps":[
        {"appid":"wxmp","kind":"mini_program","secret":"s1","open_platform":"op"},
        {"appid":"wxoa","kind":"official_account","secret":"s3","open_platform":"op",
         "web_auth_domains":["id.example.com"]},
        {"appid":"wxweb","kind":"website","secret":"s4","open_platform":"op"}]}"#;

    fn sim() -> Arc<Sim> {
        Sim::new(SimConfig::new(Registry::from_json_str(REGISTRY).expect("registry")))
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn auth_q(appid: &str, redirect: &str, scope: &str, state: &str) -> HashMap<String, String> {
        q(&[
            ("appid", appid),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state),
        ])
    }

    #[test]
    fn redirect_location_appends_before_the_fragment() {
        assert_eq!(redirect_location("https://a.b/cb", Some("C"), "S"), "https://a.b/cb?code=C&state=S");
        assert_eq!(redirect_location("https://a.b/cb?x=1", Some("C"), "S"), "https://a.b/cb?x=1&code=C&state=S");
        assert_eq!(redirect_location("https://a.b/cb?", Some("C"), ""), "https://a.b/cb?code=C");
        assert_eq!(redirect_location("https://a.b/#/p?q", Some("C"), "S"), "https://a.b/?code=C&state=S#/p?q");
        assert_eq!(redirect_location("https://a.b/cb", None, "S"), "https://a.b/cb?state=S");
        assert_eq!(redirect_location("https://a.b/cb", None, ""), "https://a.b/cb");
        assert_eq!(redirect_location("https://a.b/x y/é", Some("C"), ""), "https://a.b/x%20y/%C3%A9?code=C");
    }

    #[test]
    fn authorize_checks_parameters_in_order() {
        let s = sim();
        let err = |q: &HashMap<String, String>| s.authorize(Some("alice"), q).err();
        let page = |c| Some(AuthorizeError::Page(c));
        let ok = "https://id.example.com/cb";
        assert_eq!(err(&q(&[])), page(10012));
        assert_eq!(err(&auth_q("wxnope", ok, "snsapi_base", "")), page(10016));
        assert_eq!(err(&auth_q("wxweb", ok, "snsapi_base", "")), page(10016));
        assert_eq!(err(&auth_q("wxmp", ok, "snsapi_base", "")), page(10005));
        assert_eq!(err(&auth_q("wxoa", "", "snsapi_base", "")), page(10011));
        assert_eq!(err(&auth_q("wxoa", "https://x.example.com/", "", "")), page(10003));
        assert_eq!(err(&auth_q("wxoa", ok, "", "")), page(10010));
        assert_eq!(err(&auth_q("wxoa", ok, "snsapi_login", "")), page(10005));
        let mut bad_rt = auth_q("wxoa", ok, "snsapi_base", "");
        bad_rt.insert("response_type".into(), "token".into());
        assert_eq!(err(&bad_rt), page(errcode::AUTH_BAD_RESPONSE_TYPE));
        assert_eq!(err(&auth_q("wxoa", ok, "snsapi_base", "a-b")), page(errcode::AUTH_BAD_STATE));
        assert_eq!(err(&auth_q("wxoa", ok, "snsapi_base", &"a".repeat(129))), page(errcode::AUTH_BAD_STATE));
        assert!(s.authorize(Some("alice"), &auth_q("wxoa", ok, "snsapi_base", &"a".repeat(128))).is_ok());
        assert_eq!(s.authorize(None, &auth_q("wxoa", ok, "snsapi_base", "")), Err(AuthorizeError::UnknownUser));
        assert_eq!(s.authorize(Some(""), &auth_q("wxoa", ok, "snsapi_base", "")), Err(AuthorizeError::UnknownUser));
    }

    #[test]
    fn userinfo_consent_authorizes_the_open_platform_but_base_does_not() {
        let s = sim();
        let ok = "https://id.example.com/cb";
        s.authorize(Some("bob"), &auth_q("wxoa", ok, "snsapi_base", "")).expect("redirect");
        assert!(!s.has_authorized("bob", "op"));
        s.update_switches("bob", SwitchesUpdate { snapshot: Some(true), ..Default::default() }).expect("switch");
        s.authorize(Some("bob"), &auth_q("wxoa", ok, "snsapi_userinfo", "")).expect("redirect");
        assert!(!s.has_authorized("bob", "op"), "a snapshot account consents to nothing");
        s.update_switches("bob", SwitchesUpdate { snapshot: Some(false), refuse_userinfo: Some(true) }).expect("ok");
        let loc = s.authorize(Some("bob"), &auth_q("wxoa", ok, "snsapi_userinfo", "s1")).expect("redirect");
        assert_eq!(loc, "https://id.example.com/cb?state=s1");
        assert!(!s.has_authorized("bob", "op"));
        s.update_switches("bob", SwitchesUpdate { refuse_userinfo: Some(false), ..Default::default() }).expect("ok");
        s.authorize(Some("bob"), &auth_q("wxoa", ok, "snsapi_userinfo", "")).expect("redirect");
        assert!(s.has_authorized("bob", "op"));
        assert_eq!(s.switches("bob"), Ok(Switches::default()));
        s.update_switches("bob", SwitchesUpdate { snapshot: Some(true), ..Default::default() }).expect("ok");
        s.reset();
        assert_eq!(s.switches("bob"), Ok(Switches::default()));
    }
}
