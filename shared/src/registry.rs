//! The app registry: every WeChat app the bridge serves, who owns it, and its secrets.
//! Loaded once per cold start; the same JSON shape as the simulator's `/sim/apps`.

use serde::Deserialize;
use std::collections::HashMap;

use crate::error::Error;
use crate::ids::{AppId, OpenPlatformId, Secret, SiteId};

pub use crate::model::{AppKind, Owner, Role};

#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawApp")]
pub struct App {
    pub appid: AppId,
    pub name: String,
    pub kind: AppKind,
    pub role: Role,
    pub owner: Owner,
    pub open_platform: Option<OpenPlatformId>,
    pub secret: Secret,
    pub token: Option<Secret>,
    pub encoding_aes_key: Option<Secret>,
    pub safe_mode: bool,
}

/// An app as the registry file spells it: the role may be left out.
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
    secret: Secret,
    #[serde(default)]
    token: Option<Secret>,
    #[serde(default)]
    encoding_aes_key: Option<Secret>,
    #[serde(default)]
    safe_mode: bool,
}

impl TryFrom<RawApp> for App {
    type Error = String;
    fn try_from(r: RawApp) -> Result<Self, String> {
        Ok(App {
            role: r.role.unwrap_or_else(|| Role::default_for(r.kind, &r.owner)),
            appid: r.appid,
            name: r.name,
            kind: r.kind,
            owner: r.owner,
            open_platform: r.open_platform,
            secret: r.secret,
            token: r.token,
            encoding_aes_key: r.encoding_aes_key,
            safe_mode: r.safe_mode,
        })
    }
}

impl App {
    pub fn is_pivot(&self) -> bool {
        self.role == Role::PivotOa
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Site {
    pub site_id: SiteId,
    pub api_key: Secret,
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
            secret: Secret::new(""),
            token: None,
            encoding_aes_key: None,
            safe_mode: false,
        })
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Credentials {
    pub service: Option<Secret>,
    pub admin: Option<Secret>,
}

#[derive(Debug, Deserialize)]
struct RegistryFile {
    apps: Vec<App>,
    #[serde(default)]
    site: Option<Site>,
    #[serde(default)]
    sites: Vec<Site>,
    #[serde(default)]
    menu_login_key: Option<String>,
    #[serde(default)]
    credentials: Credentials,
    #[serde(default)]
    return_url_allow: Vec<String>,
}

#[derive(Debug)]
pub struct Registry {
    apps: HashMap<AppId, App>,
    pivot: Option<AppId>,
    pub sites: Vec<Site>,
    pub menu_login_key: Option<String>,
    pub credentials: Credentials,
    pub return_url_allow: Vec<String>,
}

impl Registry {
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let f: RegistryFile =
            serde_json::from_str(text).map_err(|e| Error::Internal(format!("registry does not parse: {e}")))?;
        let pivots: Vec<&App> = f.apps.iter().filter(|a| a.is_pivot()).collect();
        if pivots.len() > 1 {
            return Err(Error::Internal("registry names more than one pivot_oa".into()));
        }
        if let Some(p) = pivots.first() {
            if p.kind != AppKind::OfficialAccount {
                return Err(Error::Internal("the pivot must be an official account".into()));
            }
        }
        let pivot = pivots.first().map(|a| a.appid.clone());
        let mut apps = HashMap::new();
        for a in f.apps {
            if apps.insert(a.appid.clone(), a).is_some() {
                return Err(Error::Internal("registry lists an appid twice".into()));
            }
        }
        let mut sites = f.site.into_iter().collect::<Vec<_>>();
        sites.extend(f.sites);
        Ok(Registry {
            apps,
            pivot,
            sites,
            menu_login_key: f.menu_login_key,
            credentials: f.credentials,
            return_url_allow: f.return_url_allow,
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
        self.apps.get(appid)
    }

    /// The app, if registered and of the kind the route serves; else `unknown_app`.
    pub fn app_of_kind(&self, appid: &AppId, kind: AppKind) -> Result<&App, Error> {
        self.apps.get(appid).filter(|a| a.kind == kind).ok_or(Error::UnknownApp)
    }

    pub fn pivot(&self) -> Option<&App> {
        self.pivot.as_ref().and_then(|p| self.apps.get(p))
    }

    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    /// The site whose API key the request carries.
    pub fn site(&self, site: &SiteId) -> Option<&Site> {
        self.sites.iter().find(|s| &s.site_id == site)
    }

    /// The official accounts `site` may bind through, first the default.
    pub fn site_accounts(&self, site: &Site) -> Vec<&App> {
        let listed: Vec<&App> = site
            .official_accounts
            .iter()
            .filter_map(|a| self.app(a))
            .filter(|a| a.kind == AppKind::OfficialAccount)
            .collect();
        if site.official_accounts.is_empty() {
            self.pivot().into_iter().collect()
        } else {
            listed
        }
    }

    /// The site an official account's login links are for: the first that binds through it.
    pub fn site_of_account(&self, oa: &AppId) -> Option<&Site> {
        self.sites.iter().find(|s| self.site_accounts(s).iter().any(|a| &a.appid == oa))
    }

    pub fn site_by_key(&self, key: &str) -> Option<&Site> {
        self.sites.iter().find(|s| crate::crypto::same_secret(key.as_bytes(), s.api_key.expose().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../config/demo-apps.json");

    #[test]
    fn demo_registry_loads_with_one_pivot() {
        let r = Registry::from_json(DEMO).unwrap();
        let p = r.pivot().unwrap();
        assert_eq!(p.kind, AppKind::OfficialAccount);
        assert!(r.apps().any(|a| a.role == Role::MerchantMp));
        assert_eq!(r.sites.len(), 2);
    }

    #[test]
    fn app_of_kind_refuses_the_wrong_kind() {
        let r = Registry::from_json(DEMO).unwrap();
        let oa = r.pivot().unwrap().appid.clone();
        assert!(matches!(r.app_of_kind(&oa, AppKind::MiniProgram), Err(Error::UnknownApp)));
        assert!(r.app_of_kind(&oa, AppKind::OfficialAccount).is_ok());
    }
}
