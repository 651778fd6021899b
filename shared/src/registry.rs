//! The registry's shapes: apps, sites, the platform's settings, and who holds a credential;
//! and the seed document (`config/demo-apps.json`, a file or an SSM document) that
//! `wxbridge registry import` and devstack write into the store. The bridge itself reads the
//! registry through [`crate::directory::Directory`], one app at a time.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::error::Error;
use crate::ids::{AppId, MerchantId, OpenPlatformId, Secret, SiteId};

pub use crate::model::{AppKind, Auth, Owner, Role};

#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawApp")]
pub struct App {
    pub appid: AppId,
    pub name: String,
    pub kind: AppKind,
    pub role: Role,
    pub owner: Owner,
    pub open_platform: Option<OpenPlatformId>,
    pub auth: Auth,
    /// Empty for a component app.
    pub secret: Secret,
    pub token: Option<Secret>,
    pub encoding_aes_key: Option<Secret>,
    pub safe_mode: bool,
    /// The mini program a merchant's backend knows, when the merchant has several.
    pub primary: bool,
}

/// An app as the registry document (and `PUT /v1/admin/apps/{appid}`) spells it: the role
/// may be left out, and fields only the simulator reads are ignored.
#[derive(Deserialize)]
struct RawApp {
    appid: AppId,
    #[serde(default)]
    name: String,
    kind: AppKind,
    #[serde(default)]
    role: Option<Role>,
    owner: Owner,
    #[serde(default)]
    open_platform: Option<OpenPlatformId>,
    #[serde(default)]
    auth: Option<Auth>,
    #[serde(default)]
    secret: Option<Secret>,
    #[serde(default)]
    token: Option<Secret>,
    #[serde(default)]
    encoding_aes_key: Option<Secret>,
    #[serde(default)]
    safe_mode: bool,
    #[serde(default)]
    primary: bool,
}

impl TryFrom<RawApp> for App {
    type Error = String;
    fn try_from(r: RawApp) -> Result<Self, String> {
        let app = App {
            role: r.role.unwrap_or_else(|| Role::default_for(r.kind, &r.owner)),
            appid: r.appid,
            name: r.name,
            kind: r.kind,
            owner: r.owner,
            open_platform: r.open_platform,
            auth: r.auth.unwrap_or(Auth::Secret),
            secret: r.secret.unwrap_or_else(|| Secret::new("")),
            token: r.token,
            encoding_aes_key: r.encoding_aes_key,
            safe_mode: r.safe_mode,
            primary: r.primary,
        };
        app.check()?;
        Ok(app)
    }
}

impl App {
    pub fn is_pivot(&self) -> bool {
        self.role == Role::PivotOa
    }

    /// What cannot work, refused before it is stored.
    pub fn check(&self) -> Result<(), String> {
        let id = &self.appid;
        let fits = match self.role {
            Role::PlatformMp | Role::MerchantMp => self.kind == AppKind::MiniProgram,
            Role::PlatformOa | Role::PivotOa | Role::MerchantOa => self.kind == AppKind::OfficialAccount,
            Role::App => self.kind == AppKind::MobileApp,
            Role::Website => self.kind == AppKind::Website,
            Role::Site => false,
        };
        if !fits {
            return Err(format!("app {id}: role {} does not fit kind {}", self.role, self.kind));
        }
        let platform_role = matches!(self.role, Role::PlatformMp | Role::PlatformOa | Role::PivotOa);
        let merchant_role = matches!(self.role, Role::MerchantMp | Role::MerchantOa);
        match &self.owner {
            Owner::Platform if merchant_role => return Err(format!("app {id}: a {} belongs to a merchant", self.role)),
            Owner::Merchant(_) if platform_role => {
                return Err(format!("app {id}: a {} belongs to the platform", self.role))
            }
            Owner::Site(_) => return Err(format!("app {id}: a site's accounts are registered as a site, not an app")),
            _ => {}
        }
        if self.auth == Auth::Component {
            if !matches!(self.kind, AppKind::MiniProgram | AppKind::OfficialAccount) {
                return Err(format!(
                    "app {id}: only mini programs and official accounts authorize a third-party platform"
                ));
            }
            // Holding a secret for an app that authorized the platform would defeat the point.
            if !self.secret.expose().is_empty() || self.token.is_some() || self.encoding_aes_key.is_some() {
                return Err(format!("app {id}: a component app has no secret, token or EncodingAESKey"));
            }
        } else if self.secret.expose().is_empty() {
            return Err(format!("app {id}: secret is empty"));
        }
        if self.kind == AppKind::OfficialAccount && self.auth == Auth::Secret {
            if self.token.as_ref().is_none_or(|t| t.expose().is_empty()) {
                return Err(format!("app {id}: an official account needs its push token"));
            }
            match &self.encoding_aes_key {
                Some(k) if crate::wechat::push::PushCrypto::new(k, id.as_str()).is_ok() => {}
                _ => return Err(format!("app {id}: an official account needs its EncodingAESKey (43 characters)")),
            }
        }
        if self.primary && self.kind != AppKind::MiniProgram {
            return Err(format!("app {id}: only a mini program can be a merchant's primary"));
        }
        Ok(())
    }

    /// The app as an operator may see it: everything but the secrets.
    pub fn public(&self) -> AppInfo {
        AppInfo {
            appid: self.appid.clone(),
            name: self.name.clone(),
            kind: self.kind,
            role: self.role,
            owner: self.owner.clone(),
            open_platform: self.open_platform.clone(),
            auth: self.auth,
            safe_mode: self.safe_mode,
            primary: self.primary,
            has_token: self.token.is_some(),
            has_encoding_aes_key: self.encoding_aes_key.is_some(),
            stopped_at: None,
        }
    }
}

/// An app without its secrets (`GET /v1/admin/apps/{appid}`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AppInfo {
    pub appid: AppId,
    pub name: String,
    pub kind: AppKind,
    pub role: Role,
    pub owner: Owner,
    pub open_platform: Option<OpenPlatformId>,
    pub auth: Auth,
    pub safe_mode: bool,
    pub primary: bool,
    pub has_token: bool,
    pub has_encoding_aes_key: bool,
    /// A component app its merchant stopped authorizing (WeChat's time, seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Site {
    pub site_id: SiteId,
    /// Where a follower's login link ends, once the bridge has checked the follower's browser
    /// (the site's page that logs them in and calls `POST /v1/site/bind` with the code).
    #[serde(default)]
    pub login_url: Option<String>,
    /// The official accounts this site binds through (scenes, login links); its key reaches
    /// no other. Empty: the pivot only.
    #[serde(default)]
    pub official_accounts: Vec<AppId>,
}

impl Site {
    /// The site's accounts as an app, so a site user is an identity like any other.
    pub fn as_app(&self) -> Result<App, Error> {
        Ok(App {
            appid: AppId::parse(&format!("site:{}", self.site_id))?,
            name: self.site_id.to_string(),
            kind: AppKind::Site,
            role: Role::Site,
            owner: Owner::Site(self.site_id.clone()),
            open_platform: None,
            auth: Auth::Secret,
            secret: Secret::new(""),
            token: None,
            encoding_aes_key: None,
            safe_mode: false,
            primary: false,
        })
    }
}

/// The platform's own settings: one pivot, the menu key that asks for a login link, and where
/// a web-view pass may return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Platform {
    pub pivot: Option<AppId>,
    pub menu_login_key: Option<String>,
    pub return_url_allow: Vec<String>,
}

/// A merchant: a tenant, the owner of its apps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merchant {
    pub id: MerchantId,
    /// The mini program its backend knows (its primary, else its first).
    pub mini_program: Option<AppId>,
}

/// Whom a bearer credential belongs to. Keys are stored only as their SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    /// The platform's own backends: translation into any app.
    Service,
    /// Operators (devstack and local runs; IAM in AWS).
    Admin,
    Site(SiteId),
    Merchant(MerchantId),
}

impl Holder {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "service" => Ok(Holder::Service),
            "admin" => Ok(Holder::Admin),
            _ => match s.split_once(':') {
                Some(("site", id)) => Ok(Holder::Site(SiteId::parse(id)?)),
                Some(("merchant", id)) => Ok(Holder::Merchant(MerchantId::parse(id)?)),
                _ => Err(Error::InvalidRequest("unknown credential holder".into())),
            },
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Service => f.write_str("service"),
            Holder::Admin => f.write_str("admin"),
            Holder::Site(s) => write!(f, "site:{s}"),
            Holder::Merchant(m) => write!(f, "merchant:{m}"),
        }
    }
}

/// How a credential is filed: the hex SHA-256 of the key (keys are random and long, so a fast
/// hash is enough), and a short id to name it by.
pub fn key_hash(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

pub fn key_id(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Credentials {
    service: Option<Secret>,
    admin: Option<Secret>,
}

#[derive(Deserialize)]
struct SeedSite {
    #[serde(flatten)]
    site: Site,
    api_key: Secret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default, rename = "_comment")]
    _comment: Option<String>,
    apps: Vec<serde_json::Value>,
    #[serde(default)]
    site: Option<serde_json::Value>,
    #[serde(default)]
    sites: Vec<serde_json::Value>,
    #[serde(default)]
    menu_login_key: Option<String>,
    #[serde(default)]
    credentials: Credentials,
    #[serde(default)]
    return_url_allow: Vec<String>,
    /// Demo merchant keys (devstack): a real deployment issues them with the admin API.
    #[serde(default)]
    merchant_keys: BTreeMap<MerchantId, Secret>,
    /// The platform's third-party platform (devstack; in AWS its values live in SSM).
    #[serde(default)]
    component: Option<crate::component::ComponentSeed>,
}

/// The seed document, checked whole: every entry must be valid before any is written.
#[derive(Debug)]
pub struct Registry {
    apps: Vec<App>,
    index: HashMap<AppId, usize>,
    pub sites: Vec<Site>,
    pub platform: Platform,
    /// Every credential the seed names, as (holder, key).
    pub keys: Vec<(Holder, Secret)>,
    pub component: Option<crate::component::Component>,
}

impl Registry {
    /// Parses and checks the document. An error names the entry at fault.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let bad = |e: String| Error::InvalidRequest(format!("registry: {e}"));
        let f: RegistryFile = serde_json::from_str(text).map_err(|e| bad(format!("does not parse: {e}")))?;
        let mut apps = Vec::with_capacity(f.apps.len());
        let mut index = HashMap::new();
        for (i, raw) in f.apps.into_iter().enumerate() {
            let name = raw.get("appid").and_then(|v| v.as_str()).map(str::to_owned).unwrap_or_else(|| format!("#{i}"));
            let app: App = serde_json::from_value(raw).map_err(|e| {
                let e = e.to_string();
                bad(if e.starts_with("app ") { e } else { format!("app {name}: {e}") })
            })?;
            // A component app exists at WeChat (the simulator reads it); the bridge registers it
            // only when its merchant authorizes the platform.
            if app.auth == Auth::Component {
                continue;
            }
            if index.insert(app.appid.clone(), apps.len()).is_some() {
                return Err(bad(format!("app {name} is listed twice")));
            }
            apps.push(app);
        }
        let pivots: Vec<&App> = apps.iter().filter(|a| a.is_pivot()).collect();
        if pivots.len() > 1 {
            return Err(bad(format!("app {} is a second pivot_oa", pivots[1].appid)));
        }
        let pivot = pivots.first().map(|a| a.appid.clone());
        let mut sites = Vec::new();
        let mut keys = Vec::new();
        for raw in f.site.into_iter().chain(f.sites) {
            let name = raw.get("site_id").and_then(|v| v.as_str()).unwrap_or("?").to_owned();
            let s: SeedSite = serde_json::from_value(raw).map_err(|e| bad(format!("site {name}: {e}")))?;
            for oa in &s.site.official_accounts {
                if !apps.iter().any(|a| &a.appid == oa && a.kind == AppKind::OfficialAccount) {
                    return Err(bad(format!("site {name}: {oa} is not a registered official account")));
                }
            }
            if sites.iter().any(|x: &Site| x.site_id == s.site.site_id) {
                return Err(bad(format!("site {name} is listed twice")));
            }
            keys.push((Holder::Site(s.site.site_id.clone()), s.api_key));
            sites.push(s.site);
        }
        for (m, key) in f.merchant_keys {
            if !apps.iter().any(|a| a.owner == Owner::Merchant(m.clone())) {
                return Err(bad(format!("merchant {m} has a key but no app")));
            }
            keys.push((Holder::Merchant(m), key));
        }
        keys.extend(f.credentials.service.map(|k| (Holder::Service, k)));
        keys.extend(f.credentials.admin.map(|k| (Holder::Admin, k)));
        Ok(Registry {
            apps,
            index,
            sites,
            platform: Platform { pivot, menu_login_key: f.menu_login_key, return_url_allow: f.return_url_allow },
            keys,
            component: f.component.map(|c| c.component()).transpose().map_err(|e| bad(e.detail()))?,
        })
    }

    /// `WXBRIDGE_REGISTRY_JSON` (the document itself) or `WXBRIDGE_REGISTRY` (a file path).
    pub fn from_env() -> Result<Self, Error> {
        if let Ok(text) = std::env::var("WXBRIDGE_REGISTRY_JSON") {
            return Self::from_json(&text);
        }
        let path = std::env::var("WXBRIDGE_REGISTRY")
            .map_err(|_| Error::Internal("set WXBRIDGE_REGISTRY or WXBRIDGE_REGISTRY_JSON".into()))?;
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::Internal(format!("cannot read registry {path}: {e}")))?;
        Self::from_json(&text)
    }

    pub fn app(&self, appid: &AppId) -> Option<&App> {
        self.index.get(appid).map(|&i| &self.apps[i])
    }

    pub fn pivot(&self) -> Option<&App> {
        self.platform.pivot.as_ref().and_then(|p| self.app(p))
    }

    /// The apps in the document's order.
    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.iter()
    }

    pub fn holder_of(&self, key: &str) -> Option<&Holder> {
        self.keys
            .iter()
            .find(|(_, k)| crate::crypto::same_secret(key.as_bytes(), k.expose().as_bytes()))
            .map(|(h, _)| h)
    }

    /// The merchants, each with the mini program its backend knows.
    pub fn merchants(&self) -> Vec<Merchant> {
        let mut out: BTreeMap<MerchantId, Option<AppId>> = BTreeMap::new();
        for a in &self.apps {
            if let Owner::Merchant(m) = &a.owner {
                let mp = out.entry(m.clone()).or_default();
                if a.kind == AppKind::MiniProgram && (mp.is_none() || a.primary) {
                    *mp = Some(a.appid.clone());
                }
            }
        }
        out.into_iter().map(|(id, mini_program)| Merchant { id, mini_program }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../config/demo-apps.json");

    #[test]
    fn demo_registry_loads_with_one_pivot() {
        let r = Registry::from_json(DEMO).unwrap();
        let p = r.app(r.platform.pivot.as_ref().unwrap()).unwrap();
        assert_eq!(p.kind, AppKind::OfficialAccount);
        assert!(r.apps().any(|a| a.role == Role::MerchantMp));
        assert_eq!(r.sites.len(), 2);
        assert!(r.keys.iter().any(|(h, _)| matches!(h, Holder::Merchant(_))));
    }

    fn with_app(change: impl FnOnce(&mut serde_json::Value)) -> Result<Registry, Error> {
        let mut doc: serde_json::Value = serde_json::from_str(DEMO).unwrap();
        change(&mut doc);
        Registry::from_json(&doc.to_string())
    }

    fn refused(change: impl FnOnce(&mut serde_json::Value), naming: &str) {
        match with_app(change) {
            Err(Error::InvalidRequest(m)) => assert!(m.contains(naming), "{m} should name {naming}"),
            other => panic!("expected a refusal naming {naming}, got {other:?}"),
        }
    }

    #[test]
    fn what_cannot_work_is_refused_and_the_entry_named() {
        refused(|d| d["apps"][5].as_object_mut().unwrap().remove("token").map(drop).unwrap(), "wx2b3c4d5e6f708102");
        refused(|d| d["apps"][5]["encoding_aes_key"] = "short".into(), "wx2b3c4d5e6f708102");
        refused(|d| d["apps"][5]["role"] = "pivot_oa".into(), "wx2b3c4d5e6f708102");
        refused(|d| d["apps"][7]["owner"] = "platform".into(), "wx3c4d5e6f7a809202");
        refused(|d| d["apps"][4]["role"] = "merchant_oa".into(), "wx2b3c4d5e6f708101");
        refused(|d| d["apps"][4]["secret"] = "".into(), "wx2b3c4d5e6f708101");
        refused(
            |d| {
                let again = d["apps"][4].clone();
                d["apps"].as_array_mut().unwrap().push(again)
            },
            "listed twice",
        );
        refused(|d| d["sites"][0]["official_accounts"][0] = "wx2b3c4d5e6f708101".into(), "m1-shop");
        refused(|d| d["merchant_keys"]["m9"] = "mk_x".into(), "m9");
        refused(|d| d["surprise"] = true.into(), "surprise");
    }
}
