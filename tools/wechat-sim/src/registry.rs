//! The demo registry (`config/demo-apps.json`): which apps exist, their secrets and keys.
//!
//! Unknown fields are ignored so the file can grow without breaking the simulator; the parsed
//! JSON value is kept as well so `GET /sim/apps` can hand the whole file back to outside tools.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of a WeChat app, as written in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    MiniProgram,
    OfficialAccount,
    MobileApp,
    Website,
    /// A kind this simulator does not know; such an app exists but no API accepts it.
    #[serde(other)]
    Other,
}

/// How the bridge gets an app's tokens, as written in the registry (`"auth"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// The app's own AppSecret (`/cgi-bin/token`, `secret=` on code exchanges).
    #[default]
    Secret,
    /// The merchant authorizes the third-party platform; the app has no secret, token or key
    /// of its own here (any given are ignored: its pushes use the platform's token and key).
    Component,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Secret => "secret",
            AuthMode::Component => "component",
        }
    }
}

/// The platform's WeChat third-party platform (第三方平台), the registry's `component` section
/// or `PUT /sim/component`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentConfig {
    pub component_appid: String,
    pub secret: String,
    /// The 消息校验Token of every push to the platform (events and authorized apps' messages).
    pub token: String,
    /// The 43-character 消息加解密Key; pushes are always in safe mode.
    pub encoding_aes_key: String,
    /// The authorization-event URL: absolute, or a path joined to the push base. Default
    /// `{push_base}/v1/component/events` (see [`ComponentConfig::events_url()`]).
    #[serde(default)]
    pub events_url: Option<String>,
    /// The message URL of authorized apps, `$APPID$` standing for the app. Default
    /// `{push_base}/v1/wechat/push/$APPID$` (see [`ComponentConfig::message_url()`]).
    #[serde(default)]
    pub message_url: Option<String>,
    /// The 公众号开发域名: hosts without port that OA web authorization with
    /// `component_appid` may redirect to.
    #[serde(default)]
    pub domains: Vec<String>,
}

/// `url` if absolute, else `push_base` + `url`; `None` for a path without a push base.
fn join_push_base(url: &str, push_base: Option<&str>) -> Option<String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Some(url.to_owned());
    }
    push_base.map(|base| format!("{}/{}", base.trim_end_matches('/'), url.trim_start_matches('/')))
}

impl ComponentConfig {
    /// Where authorization events and tickets go (`None` without a URL or a push base).
    pub fn events_url(&self, push_base: Option<&str>) -> Option<String> {
        join_push_base(self.events_url.as_deref().unwrap_or("/v1/component/events"), push_base)
    }

    /// The message URL as configured, `$APPID$` left in (`None` without a URL or a push base).
    pub fn message_url_pattern(&self, push_base: Option<&str>) -> Option<String> {
        join_push_base(self.message_url.as_deref().unwrap_or("/v1/wechat/push/$APPID$"), push_base)
    }

    /// Where pushes for the authorized app `appid` go: the message URL with `$APPID$` filled in.
    pub fn message_url(&self, push_base: Option<&str>, appid: &str) -> Option<String> {
        self.message_url_pattern(push_base).map(|u| u.replace("$APPID$", appid))
    }

    /// Whether OA web authorization with this platform may redirect to `redirect_uri` (the
    /// same exact-host rule as an OA's own domains, against `domains`).
    pub fn allows_web_auth_redirect(&self, redirect_uri: &str) -> bool {
        host_allowed(&self.domains, redirect_uri)
    }

    /// What WeChat's console would refuse of a third-party platform.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let invalid = |m: String| Err(RegistryError::Invalid(format!("component: {m}")));
        if self.component_appid.is_empty() || self.secret.is_empty() || self.token.is_empty() {
            return invalid("component_appid, secret and token must not be empty".into());
        }
        if let Err(e) = crate::crypto::MsgCrypt::new(&self.encoding_aes_key, &self.component_appid) {
            return invalid(format!("encoding_aes_key: {e}"));
        }
        for url in [&self.events_url, &self.message_url].into_iter().flatten() {
            let absolute = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !absolute && !url.starts_with('/') {
                return invalid(format!("{url:?} must be an absolute http(s) URL or a path"));
            }
        }
        if let Some(bad) = self.domains.iter().find(|d| !valid_web_auth_domain(d)) {
            return invalid(format!("domains must be bare hosts without scheme, port or path, not {bad:?}"));
        }
        Ok(())
    }
}

/// One app of the registry.
#[derive(Debug, Clone, Deserialize)]
pub struct App {
    pub appid: String,
    #[serde(default)]
    pub name: String,
    pub kind: AppKind,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub owner: String,
    /// The Open Platform account the app is bound to; without one the app has no unionid.
    #[serde(default)]
    pub open_platform: Option<String>,
    /// Empty for a component app.
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub auth: AuthMode,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    #[serde(default)]
    pub safe_mode: bool,
    /// Official accounts: the 网页授权域名 (web-authorization domains); website apps: the
    /// 授权回调域 (authorization callback domains). Exact hosts without port.
    #[serde(default)]
    pub web_auth_domains: Vec<String>,
    /// Official accounts: where WeChat pushes messages and events. Default
    /// `{push_base}/v1/wechat/push/{appid}` (see [`App::push_url()`]).
    #[serde(default)]
    pub push_url: Option<String>,
    /// Official accounts: the original id (`gh_…`), the `ToUserName` of pushes. Default
    /// `"gh_"` + the first 12 hex digits of `sha1(appid)` (see [`App::original_id()`]).
    #[serde(default)]
    pub original_id: Option<String>,
}

impl App {
    pub fn is_mini_program(&self) -> bool {
        self.kind == AppKind::MiniProgram
    }

    pub fn is_official_account(&self) -> bool {
        self.kind == AppKind::OfficialAccount
    }

    pub fn is_mobile_app(&self) -> bool {
        self.kind == AppKind::MobileApp
    }

    pub fn is_website(&self) -> bool {
        self.kind == AppKind::Website
    }

    pub fn is_component(&self) -> bool {
        self.auth == AuthMode::Component
    }

    /// Whether `given` is this app's AppSecret; never for a component app, which has none.
    pub fn secret_matches(&self, given: Option<&str>) -> bool {
        !self.is_component() && given == Some(self.secret.as_str())
    }

    /// The original id (`gh_…`): the registry's `original_id`, else `"gh_"` + the first 12 hex
    /// digits of `sha1(appid)`.
    pub fn original_id(&self) -> String {
        match &self.original_id {
            Some(id) => id.clone(),
            None => format!("gh_{}", &crate::crypto::sha1_hex(self.appid.as_bytes())[..12]),
        }
    }

    /// Where WeChat pushes this app's messages and events: the registry's `push_url`, else
    /// `{push_base}/v1/wechat/push/{appid}`; `None` without either.
    pub fn push_url(&self, push_base: Option<&str>) -> Option<String> {
        if let Some(url) = &self.push_url {
            return Some(url.clone());
        }
        push_base.map(|base| format!("{}/v1/wechat/push/{}", base.trim_end_matches('/'), self.appid))
    }

    /// Whether WeChat would redirect to `redirect_uri` after web authorization for this app:
    /// an absolute http(s) URL whose host exactly equals one of `web_auth_domains`
    /// (ASCII case-insensitive; the port, path, query and fragment do not matter). Subdomains
    /// and parent domains do not match (contract §7).
    pub fn allows_web_auth_redirect(&self, redirect_uri: &str) -> bool {
        host_allowed(&self.web_auth_domains, redirect_uri)
    }
}

/// Whether `redirect_uri` is an absolute http(s) URL whose host is exactly one of `domains`.
fn host_allowed(domains: &[String], redirect_uri: &str) -> bool {
    let Ok(url) = url::Url::parse(redirect_uri) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    domains.iter().any(|d| d.eq_ignore_ascii_case(host))
}

/// A web-authorization domain must be a bare host: no scheme, port, path or whitespace
/// (an IPv6 literal is written in brackets, as in a URL).
fn valid_web_auth_domain(d: &str) -> bool {
    let ipv6 = d.len() > 2 && d.starts_with('[') && d.ends_with(']');
    !d.is_empty()
        && !d.chars().any(|c| c.is_whitespace() || c.is_control() || "/?#@\\".contains(c))
        && (ipv6 || !d.contains(':'))
}

/// The demo site that may ask for QR scenes.
#[derive(Debug, Clone, Deserialize)]
pub struct Site {
    pub site_id: String,
    pub api_key: String,
}

/// The service and admin credentials devstack accepts.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub admin: Option<String>,
}

#[derive(Deserialize)]
struct RegistryFile {
    apps: Vec<App>,
    #[serde(default)]
    site: Option<Site>,
    #[serde(default)]
    menu_login_key: Option<String>,
    #[serde(default)]
    credentials: Option<Credentials>,
    #[serde(default)]
    return_url_allow: Vec<String>,
    #[serde(default)]
    component: Option<ComponentConfig>,
}

/// Why a registry could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read registry {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("registry is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid registry: {0}")]
    Invalid(String),
}

/// The parsed registry, and the apps merchants created since (`PUT /sim/apps/{appid}`).
#[derive(Debug)]
pub struct Registry {
    pub apps: Vec<App>,
    /// Apps created while the simulator runs; they live as long as the process (a test
    /// double's registry, so they are leaked to hand out plain references).
    created: std::sync::RwLock<Vec<&'static App>>,
    pub site: Option<Site>,
    pub menu_login_key: Option<String>,
    pub credentials: Option<Credentials>,
    pub return_url_allow: Vec<String>,
    /// The third-party platform of the `component` section, if any.
    pub component: Option<ComponentConfig>,
    raw: Value,
}

impl Clone for Registry {
    fn clone(&self) -> Self {
        let created = self.created.read().unwrap_or_else(|p| p.into_inner()).clone();
        Registry {
            apps: self.apps.clone(),
            created: std::sync::RwLock::new(created),
            site: self.site.clone(),
            menu_login_key: self.menu_login_key.clone(),
            credentials: self.credentials.clone(),
            return_url_allow: self.return_url_allow.clone(),
            component: self.component.clone(),
            raw: self.raw.clone(),
        }
    }
}

impl Registry {
    pub fn from_json_str(s: &str) -> Result<Self, RegistryError> {
        let mut raw: Value = serde_json::from_str(s)?;
        let file: RegistryFile = serde_json::from_value(raw.clone())?;
        if let Value::Object(map) = &mut raw {
            map.remove("_comment");
        }
        let mut seen = HashSet::new();
        for app in &file.apps {
            if !seen.insert(app.appid.as_str()) {
                return Err(RegistryError::Invalid(format!("appid {} is listed twice", app.appid)));
            }
            check_app(app)?;
        }
        if let Some(c) = &file.component {
            c.validate()?;
        }
        if let Some(Value::Array(apps)) = raw.get_mut("apps") {
            for app in apps.iter_mut() {
                listed_app(app);
            }
        }
        Ok(Registry {
            created: Default::default(),
            apps: file.apps,
            site: file.site,
            menu_login_key: file.menu_login_key,
            credentials: file.credentials,
            return_url_allow: file.return_url_allow,
            component: file.component,
            raw,
        })
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, RegistryError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| RegistryError::Io { path: path.to_path_buf(), source })?;
        Self::from_json_str(&text)
    }

    /// The app with this appid, if any (the latest created wins over the file's).
    pub fn app(&self, appid: &str) -> Option<&App> {
        let created = self.created.read().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = created.iter().rev().find(|a| a.appid == appid) {
            return Some(*a);
        }
        drop(created);
        self.apps.iter().find(|a| a.appid == appid)
    }

    /// A merchant created (or changed) an app in WeChat's console. `true`: it is new.
    pub fn create(&self, app: App) -> Result<bool, RegistryError> {
        check_app(&app)?;
        let new = self.app(&app.appid).is_none();
        let leaked: &'static App = Box::leak(Box::new(app));
        self.created.write().unwrap_or_else(|p| p.into_inner()).push(leaked);
        Ok(new)
    }

    /// Every app as `GET /sim/apps` lists it: the file's, then those created since.
    pub fn listing(&self) -> Value {
        let mut raw = self.raw.clone();
        let created = self.created.read().unwrap_or_else(|p| p.into_inner());
        if let Some(Value::Array(apps)) = raw.get_mut("apps") {
            for a in created.iter() {
                apps.retain(|x| x.get("appid").and_then(Value::as_str) != Some(a.appid.as_str()));
                apps.push(app_json(a));
            }
        }
        raw
    }

    /// Every app: the file's, then those created since (the latest version of each).
    pub fn all_apps(&self) -> Vec<App> {
        let created = self.created.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<App> = Vec::with_capacity(self.apps.len() + created.len());
        for a in self.apps.iter().chain(created.iter().copied()) {
            out.retain(|x| x.appid != a.appid);
            out.push(a.clone());
        }
        out
    }

    /// The apps that have this role (e.g. `pivot_oa`).
    pub fn apps_with_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a App> + 'a {
        self.apps.iter().filter(move |a| a.role == role)
    }

    /// The registry file as parsed, without its `_comment`.
    pub fn raw_json(&self) -> &Value {
        &self.raw
    }
}

/// What WeChat's console would refuse of an app.
fn check_app(app: &App) -> Result<(), RegistryError> {
    if app.appid.is_empty() {
        return Err(RegistryError::Invalid("an app has an empty appid".into()));
    }
    if !app.is_component() && app.secret.is_empty() {
        return Err(RegistryError::Invalid(format!("app {} needs a secret (or \"auth\": \"component\")", app.appid)));
    }

    if let Some(bad) = app.web_auth_domains.iter().find(|d| !valid_web_auth_domain(d)) {
        return Err(RegistryError::Invalid(format!(
            "web_auth_domains of {} must be bare hosts without scheme, port or path, not {bad:?}",
            app.appid
        )));
    }
    if let Some(url) = &app.push_url {
        let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(RegistryError::Invalid(format!(
                "push_url of {} must be an absolute http(s) URL, not {url:?}",
                app.appid
            )));
        }
    }
    if app.original_id.as_deref().is_some_and(|id| id.is_empty() || id.chars().any(char::is_control)) {
        return Err(RegistryError::Invalid(format!("original_id of {} must not be empty", app.appid)));
    }
    if let Some(key) = &app.encoding_aes_key {
        if key.len() != 43 {
            return Err(RegistryError::Invalid(format!("encoding_aes_key of {} must have 43 characters", app.appid)));
        }
    }
    Ok(())
}

/// An app of the file as `GET /sim/apps` shows it: with its `auth`, and for a component app
/// without the secret, token and key it does not have.
fn listed_app(app: &mut Value) {
    let Some(obj) = app.as_object_mut() else {
        return;
    };
    let auth = obj.get("auth").and_then(Value::as_str).unwrap_or("secret").to_owned();
    if auth == AuthMode::Component.as_str() {
        for k in ["secret", "token", "encoding_aes_key"] {
            obj.remove(k);
        }
    }
    obj.insert("auth".into(), Value::String(auth));
}

fn app_json(a: &App) -> Value {
    let kind = match a.kind {
        AppKind::MiniProgram => "mini_program",
        AppKind::OfficialAccount => "official_account",
        AppKind::MobileApp => "mobile_app",
        AppKind::Website => "website",
        AppKind::Other => "other",
    };
    let mut v = serde_json::json!({
        "appid": a.appid, "name": a.name, "kind": kind, "role": a.role, "owner": a.owner,
        "open_platform": a.open_platform, "secret": a.secret, "token": a.token,
        "encoding_aes_key": a.encoding_aes_key, "safe_mode": a.safe_mode,
        "web_auth_domains": a.web_auth_domains, "auth": a.auth.as_str(),
    });
    listed_app(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_demo_file_and_ignores_unknown_fields() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo-apps.json");
        let reg = Registry::from_file(&path).expect("demo registry parses");
        assert!(reg.apps.len() >= 4);
        assert!(reg.raw_json().get("_comment").is_none());
        let mp = reg.apps_with_role("platform_mp").next().expect("platform mp");
        assert_eq!(mp.kind, AppKind::MiniProgram);
        assert!(mp.open_platform.is_some());
        assert!(reg.apps_with_role("pivot_oa").all(|a| a.safe_mode));
        // A component app's web authorization returns to the platform's domains instead.
        for app in reg.apps.iter().filter(|a| (a.is_official_account() || a.is_website()) && !a.is_component()) {
            assert!(app.allows_web_auth_redirect("http://127.0.0.1:8080/cb"), "{}", app.appid);
        }
        let platform = reg.component.as_ref().expect("the demo third-party platform");
        assert!(platform.allows_web_auth_redirect("http://127.0.0.1:8080/cb"));
    }

    #[test]
    fn original_id_and_push_url_defaults() {
        let reg = Registry::from_json_str(
            r#"{"apps":[{"appid":"wxoa","kind":"official_account","secret":"s"},
                {"appid":"wxoa2","kind":"official_account","secret":"s","original_id":"gh_custom",
                 "push_url":"http://127.0.0.1:1/hook?x=1"}]}"#,
        )
        .expect("parses");
        let oa = reg.app("wxoa").expect("oa");
        let digest = crate::crypto::sha1_hex(b"wxoa");
        assert_eq!(oa.original_id(), format!("gh_{}", &digest[..12]));
        assert_eq!(oa.original_id().len(), 15);
        assert_eq!(oa.push_url(None), None);
        assert_eq!(oa.push_url(Some("http://h:8/")).as_deref(), Some("http://h:8/v1/wechat/push/wxoa"));
        let oa2 = reg.app("wxoa2").expect("oa2");
        assert_eq!(oa2.original_id(), "gh_custom");
        assert_eq!(oa2.push_url(Some("http://h:8")).as_deref(), Some("http://127.0.0.1:1/hook?x=1"));
        for bad in [r#""push_url":"ftp://x/""#, r#""push_url":"/relative""#, r#""original_id":"""#] {
            let json = format!(r#"{{"apps":[{{"appid":"wx1","kind":"official_account","secret":"s",{bad}}}]}}"#);
            assert!(matches!(Registry::from_json_str(&json), Err(RegistryError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn web_auth_redirect_host_matches_exactly() {
        let reg = Registry::from_json_str(
            r#"{"apps":[{"appid":"wxoa","kind":"official_account","secret":"s",
                "web_auth_domains":["id.example.com","LOCALHOST","[::1]"]}]}"#,
        )
        .expect("parses");
        let oa = reg.app("wxoa").expect("oa");
        for ok in [
            "https://id.example.com/cb?x=1#/page",
            "http://ID.Example.COM:8443/",
            "https://id.example.com",
            "http://localhost:9/x",
            "http://[::1]:8080/cb",
        ] {
            assert!(oa.allows_web_auth_redirect(ok), "{ok}");
        }
        for bad in [
            "https://pay.id.example.com/cb",
            "https://example.com/cb",
            "https://id.example.com.evil.test/cb",
            "https://evil.test/?r=https://id.example.com/",
            "https://id.example.com@evil.test/",
            "ftp://id.example.com/",
            "/relative/cb",
            "id.example.com/cb",
            "not a url",
        ] {
            assert!(!oa.allows_web_auth_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn web_auth_domains_must_be_bare_hosts() {
        for bad in ["https://id.example.com", "id.example.com:443", "id.example.com/", "", "a b"] {
            let json = format!(
                r#"{{"apps":[{{"appid":"wx1","kind":"official_account","secret":"s","web_auth_domains":[{}]}}]}}"#,
                serde_json::Value::from(bad)
            );
            let err = Registry::from_json_str(&json);
            assert!(matches!(err, Err(RegistryError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn unknown_fields_and_kinds_are_tolerated() {
        let reg = Registry::from_json_str(
            r#"{"_comment":"x","future":1,"apps":[{"appid":"wx1","kind":"mini_game","secret":"s","extra":true}]}"#,
        )
        .expect("parses");
        assert_eq!(reg.app("wx1").map(|a| a.kind), Some(AppKind::Other));
        assert_eq!(reg.raw_json()["future"], 1);
        assert!(reg.raw_json().get("_comment").is_none());
    }

    #[test]
    fn component_section_and_component_apps() {
        let reg = Registry::from_json_str(
            r#"{"component":{"component_appid":"wxc0ffee0000000001","secret":"s","token":"t",
                "encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","domains":["id.example.com"]},
                "apps":[{"appid":"wxoa","kind":"official_account","auth":"component","owner":"m1"},
                        {"appid":"wxmp","kind":"mini_program","secret":"s1"}]}"#,
        )
        .expect("parses");
        let c = reg.component.as_ref().expect("component");
        assert_eq!(c.events_url(Some("http://h:1/")).as_deref(), Some("http://h:1/v1/component/events"));
        assert_eq!(c.message_url(Some("http://h:1"), "wxoa").as_deref(), Some("http://h:1/v1/wechat/push/wxoa"));
        assert_eq!(c.events_url(None), None);
        assert!(c.allows_web_auth_redirect("https://id.example.com/cb"));
        let oa = reg.app("wxoa").expect("oa");
        assert!(oa.is_component() && !oa.secret_matches(Some("")) && !oa.secret_matches(None));
        let listing = reg.listing();
        assert_eq!(listing["apps"][0]["auth"], "component");
        assert!(listing["apps"][0].get("secret").is_none());
        assert_eq!(listing["apps"][1]["auth"], "secret");
        assert_eq!(listing["component"]["component_appid"], "wxc0ffee0000000001");
        // A secret app still needs its secret; a bad component section is refused.
        for bad in [
            r#"{"apps":[{"appid":"wx1","kind":"mini_program"}]}"#,
            r#"{"apps":[{"appid":"wx1","kind":"mini_program","secret":""}]}"#,
            r#"{"apps":[],"component":{"component_appid":"wxc","secret":"s","token":"t","encoding_aes_key":"short"}}"#,
            r#"{"apps":[],"component":{"component_appid":"wxc","secret":"s","token":"t",
                "encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","events_url":"ftp://x"}}"#,
        ] {
            assert!(Registry::from_json_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_appids_are_rejected() {
        let err = Registry::from_json_str(
            r#"{"apps":[{"appid":"wx1","kind":"website","secret":"s"},{"appid":"wx1","kind":"website","secret":"t"}]}"#,
        );
        assert!(matches!(err, Err(RegistryError::Invalid(_))));
    }
}
