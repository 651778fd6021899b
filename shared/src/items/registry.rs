//! The registry's items. Each app is its own partition, so a function reads only the apps a
//! request names; the rest are small:
//!
//! | PK                    | SK          | what                                              |
//! |-----------------------|-------------|---------------------------------------------------|
//! | `REG#app#<appid>`     | `APP`       | one app; its secrets sealed (crate::vault)        |
//! | `REG#index`           | `APP#<id>`  | the app's owner and kind, for operators' listings |
//! | `REG#platform`        | `REG`       | the pivot (at most one: a conditional write), the menu key, the return-URL allow-list |
//! | `REG#sites`           | `<site_id>` | a site and the official accounts it binds through |
//! | `REG#merchant#<m>`    | `M`         | a merchant and the mini program its backend knows |
//! | `REG#merchant#<m>`    | `KEY#<id>`  | one of its keys (to list and revoke)              |
//! | `KEY#<sha256>`        | `KEY`       | who holds a credential                            |

use crate::error::Error;
use crate::ids::{AppId, MerchantId, OpenPlatformId, Secret, SiteId};
use crate::items::{optional, required};
use crate::model::{AppKind, Auth, Owner, Role};
use crate::registry::{App, Holder, Merchant, Platform, Site};
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const APP_SK: &str = "APP";
pub const NAME: &str = "name";
pub const KIND: &str = "kind";
pub const ROLE: &str = "role";
pub const OWNER: &str = "owner";
pub const OPEN_PLATFORM: &str = "open_platform";
pub const SAFE_MODE: &str = "safe_mode";
pub const PRIMARY: &str = "primary";
pub const AUTH: &str = "auth";
/// A component app: when (WeChat's CreateTime, seconds) its merchant last authorized it, so an
/// older `unauthorized` event replayed later cannot stop it.
pub const AUTHORIZED_AT: &str = "authorized_at";
/// A component app whose merchant withdrew its authorization (WeChat's CreateTime): it serves
/// nothing, and it stays its owner's — no other tenant can authorize it in — until an operator
/// deletes it or the owner authorizes again.
pub const STOPPED_AT: &str = "stopped_at";
/// The app's secret, push token and EncodingAESKey, sealed together as one JSON object.
pub const SEALED: &str = "sealed";

pub const INDEX_PK: &str = "REG#index";
pub const PLATFORM_PK: &str = "REG#platform";
pub const PLATFORM_SK: &str = "REG";
pub const PIVOT: &str = "pivot";
pub const MENU_LOGIN_KEY: &str = "menu_login_key";
pub const RETURN_URL_ALLOW: &str = "return_url_allow";
pub const SITES_PK: &str = "REG#sites";
pub const LOGIN_URL: &str = "login_url";
pub const OFFICIAL_ACCOUNTS: &str = "official_accounts";
pub const MERCHANT_SK: &str = "M";
pub const MINI_PROGRAM: &str = "mini_program";
pub const KEY_SK: &str = "KEY";
pub const HOLDER: &str = "holder";
pub const KEY_ID: &str = "key_id";
pub const HASH: &str = "hash";
pub const CREATED: &str = "created";

pub fn app_key(appid: &AppId) -> Key {
    Key::new(format!("REG#app#{appid}"), APP_SK)
}

pub fn index_key(appid: &AppId) -> Key {
    Key::new(INDEX_PK, format!("APP#{appid}"))
}

pub fn platform_key() -> Key {
    Key::new(PLATFORM_PK, PLATFORM_SK)
}

pub fn site_key(site: &SiteId) -> Key {
    Key::new(SITES_PK, site.as_str())
}

pub fn merchant_key(m: &MerchantId) -> Key {
    Key::new(format!("REG#merchant#{m}"), MERCHANT_SK)
}

/// Where a holder's keys are listed (to revoke them); the service and admin keys of the seed
/// are not listed.
pub fn keys_pk(holder: &Holder) -> Option<String> {
    match holder {
        Holder::Merchant(m) => Some(format!("REG#merchant#{m}")),
        Holder::Site(s) => Some(format!("REG#site#{s}")),
        Holder::Service | Holder::Admin => None,
    }
}

pub fn credential_key(hash: &str) -> Key {
    Key::new(format!("KEY#{hash}"), KEY_SK)
}

/// The AAD an app's sealed secrets are bound to.
pub fn sealed_aad(appid: &AppId) -> String {
    format!("app/{appid}")
}

/// What is sealed: the secrets only this app's calls to WeChat need. `Secret` has no
/// `Serialize` on purpose, so the one place that writes them out is [`AppSecrets::to_json`].
#[derive(serde::Deserialize)]
pub struct AppSecrets {
    pub secret: Secret,
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub encoding_aes_key: Option<Secret>,
}

impl AppSecrets {
    pub fn of(app: &App) -> Self {
        AppSecrets {
            secret: app.secret.clone(),
            token: app.token.clone(),
            encoding_aes_key: app.encoding_aes_key.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::json!({
            "secret": self.secret.expose(),
            "token": self.token.as_ref().map(Secret::expose),
            "encoding_aes_key": self.encoding_aes_key.as_ref().map(Secret::expose),
        })
        .to_string()
    }

    pub fn from_json(plain: &Secret) -> Result<Self, Error> {
        serde_json::from_str(plain.expose()).map_err(|_| Error::Internal("sealed app secrets do not parse".into()))
    }
}

/// The app item; `sealed` is [`AppSecrets`] as sealed by the vault (none for a component app,
/// which has no secrets).
pub fn app_item(app: &App, sealed: Option<&str>, authorized_at: Option<i64>) -> Item {
    let mut it = item(
        &app_key(&app.appid),
        [
            (NAME, s(app.name.as_str())),
            (KIND, s(app.kind.as_str())),
            (ROLE, s(app.role.as_str())),
            (OWNER, s(app.owner.to_string())),
            (SAFE_MODE, Attr::N(app.safe_mode as i64)),
            (PRIMARY, Attr::N(app.primary as i64)),
            (AUTH, s(app.auth.as_str())),
        ],
    );
    if let Some(sealed) = sealed {
        it.insert(SEALED.into(), s(sealed));
    }
    if let Some(at) = authorized_at {
        it.insert(AUTHORIZED_AT.into(), Attr::N(at));
    }
    if let Some(op) = &app.open_platform {
        it.insert(OPEN_PLATFORM.into(), s(op.as_str()));
    }
    it
}

pub fn index_item(app: &App) -> Item {
    item(&index_key(&app.appid), [(OWNER, s(app.owner.to_string())), (KIND, s(app.kind.as_str()))])
}

/// An app from its item, secrets still sealed (a component app has none).
pub fn app_from_item(appid: &AppId, it: &Item) -> Result<(App, Option<String>), Error> {
    // Apps stored before component mode have no `auth`: they hold secrets.
    let auth = optional(it, AUTH, Auth::parse)?.unwrap_or(Auth::Secret);
    let app = App {
        appid: appid.clone(),
        name: it.s(NAME).unwrap_or_default().to_owned(),
        kind: required(it, KIND, AppKind::parse)?,
        role: required(it, ROLE, Role::parse)?,
        owner: required(it, OWNER, Owner::parse)?,
        open_platform: optional(it, OPEN_PLATFORM, OpenPlatformId::parse)?,
        auth,
        secret: Secret::new(""),
        token: None,
        encoding_aes_key: None,
        safe_mode: it.n(SAFE_MODE) == Some(1),
        primary: it.n(PRIMARY) == Some(1),
    };
    let sealed = match auth {
        Auth::Secret => Some(required(it, SEALED, |v| Ok(v.to_owned()))?),
        Auth::Component => None,
    };
    Ok((app, sealed))
}

pub fn with_secrets(app: App, secrets: AppSecrets) -> App {
    App { secret: secrets.secret, token: secrets.token, encoding_aes_key: secrets.encoding_aes_key, ..app }
}

/// The index entry's appid and owner.
pub fn index_from_item(it: &Item) -> Result<(AppId, Owner, AppKind), Error> {
    let sk = it.s("SK").unwrap_or_default();
    let appid = AppId::parse(sk.strip_prefix("APP#").unwrap_or_default())
        .map_err(|_| Error::Internal("stored index entry with a malformed appid".into()))?;
    Ok((appid, required(it, OWNER, Owner::parse)?, required(it, KIND, AppKind::parse)?))
}

pub fn platform_from_item(it: Option<&Item>) -> Result<Platform, Error> {
    let Some(it) = it else { return Ok(Platform::default()) };
    Ok(Platform {
        pivot: optional(it, PIVOT, AppId::parse)?,
        menu_login_key: it.s(MENU_LOGIN_KEY).map(str::to_owned),
        return_url_allow: optional(it, RETURN_URL_ALLOW, |v| {
            serde_json::from_str(v).map_err(|_| Error::Internal("allow-list".into()))
        })?
        .unwrap_or_default(),
    })
}

/// Sets the menu key and the allow-list (the pivot has writes of its own).
pub fn set_platform_settings(p: &Platform) -> Write {
    let mut set = vec![(
        RETURN_URL_ALLOW.to_owned(),
        s(serde_json::to_string(&p.return_url_allow).unwrap_or_else(|_| "[]".into())),
    )];
    let mut remove = Vec::new();
    match &p.menu_login_key {
        Some(k) => set.push((MENU_LOGIN_KEY.to_owned(), s(k.as_str()))),
        None => remove.push(MENU_LOGIN_KEY.to_owned()),
    }
    Write::Update { key: platform_key(), set, remove, cond: vec![] }
}

/// Stops a component app, unless it was authorized again since `authorized_at` was read.
pub fn stop_app(appid: &AppId, authorized_at: Option<i64>, at: i64) -> Write {
    let cond = match authorized_at {
        Some(a) => vec![Check::Eq(AUTHORIZED_AT.into(), Attr::N(a))],
        None => vec![Check::Exists, Check::Absent(AUTHORIZED_AT.into())],
    };
    Write::Update { key: app_key(appid), set: vec![(STOPPED_AT.into(), Attr::N(at))], remove: vec![], cond }
}

/// Makes `appid` the pivot; refused when another app already is.
pub fn claim_pivot(appid: &AppId, current: Option<&AppId>) -> Write {
    let cond = match current {
        Some(c) => vec![Check::Eq(PIVOT.into(), s(c.as_str()))],
        None => vec![Check::Absent(PIVOT.into())],
    };
    Write::Update { key: platform_key(), set: vec![(PIVOT.into(), s(appid.as_str()))], remove: vec![], cond }
}

/// Stops `appid` being the pivot (only if it still is).
pub fn release_pivot(appid: &AppId) -> Write {
    Write::Update {
        key: platform_key(),
        set: vec![],
        remove: vec![PIVOT.into()],
        cond: vec![Check::Eq(PIVOT.into(), s(appid.as_str()))],
    }
}

pub fn site_item(site: &Site) -> Item {
    let mut it = item(
        &site_key(&site.site_id),
        [(OFFICIAL_ACCOUNTS, s(serde_json::to_string(&site.official_accounts).unwrap_or_else(|_| "[]".into())))],
    );
    if let Some(u) = &site.login_url {
        it.insert(LOGIN_URL.into(), s(u.as_str()));
    }
    it
}

pub fn site_from_item(it: &Item) -> Result<Site, Error> {
    Ok(Site {
        site_id: required(it, "SK", SiteId::parse)?,
        login_url: it.s(LOGIN_URL).map(str::to_owned),
        official_accounts: required(it, OFFICIAL_ACCOUNTS, |v| {
            serde_json::from_str(v).map_err(|_| Error::Internal("official_accounts".into()))
        })?,
    })
}

pub fn merchant_item(m: &Merchant) -> Item {
    let mut it = item(&merchant_key(&m.id), []);
    if let Some(mp) = &m.mini_program {
        it.insert(MINI_PROGRAM.into(), s(mp.as_str()));
    }
    it
}

pub fn merchant_from_item(id: &MerchantId, it: &Item) -> Result<Merchant, Error> {
    Ok(Merchant { id: id.clone(), mini_program: optional(it, MINI_PROGRAM, AppId::parse)? })
}

/// A credential, filed by the hash of its key; a hash is never filed twice.
pub fn credential_item(hash: &str, holder: &Holder, created_secs: i64) -> Item {
    item(
        &credential_key(hash),
        [(HOLDER, s(holder.to_string())), (KEY_ID, s(crate::registry::key_id(hash))), (CREATED, Attr::N(created_secs))],
    )
}

pub fn holder_from_item(it: &Item) -> Result<Holder, Error> {
    required(it, HOLDER, Holder::parse)
}

/// A holder's record of one of its keys: enough to revoke it, never the key.
pub fn key_entry(pk: &str, key_id: &str) -> Key {
    Key::new(pk, format!("KEY#{key_id}"))
}

pub fn key_entry_item(pk: &str, hash: &str, created_secs: i64) -> Item {
    item(&key_entry(pk, crate::registry::key_id(hash)), [(HASH, s(hash)), (CREATED, Attr::N(created_secs))])
}
