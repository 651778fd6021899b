//! Changing the registry while the bridge runs: apps, sites and credentials (the admin API,
//! the CLI, devstack's seeding). Each change is checked against what is stored and written in
//! one transaction, so two operators cannot make two pivots or give an app two owners.

use crate::directory::Directory;
use crate::error::Error;
use crate::ids::{AppId, MerchantId};
use crate::items::registry as reg;
use crate::items::registry::AppSecrets;
use crate::items::{Tx, TxError};
use crate::model::{AppKind, Auth, Owner};
use crate::ports::Clock;
use crate::registry::{key_hash, key_id, App, AppInfo, Holder, Merchant, Registry, Site};
use crate::store::{Check, ItemExt, Store, Write};
use crate::vault::Vault;

pub struct Registrar<'a> {
    pub store: &'a dyn Store,
    /// Only where apps with secrets are registered (component apps have none to seal).
    pub vault: Option<&'a Vault>,
    /// Told to forget what it cached after each change (devstack sees changes at once).
    pub directory: &'a dyn Directory,
    pub clock: &'a dyn Clock,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    Created,
    Replaced,
}

/// A credential as it is shown: once, when it is made.
#[derive(Debug, serde::Serialize)]
pub struct IssuedKey {
    pub key: String,
    pub key_id: String,
    pub holder: String,
}

/// What a registry import wrote.
#[derive(Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct Imported {
    pub apps: usize,
    pub sites: usize,
    pub keys: usize,
}

fn conflict(e: TxError, what: String) -> Error {
    match e {
        TxError::Refused(_) | TxError::Conflict => Error::RegistryConflict(what),
        TxError::Store(e) => e.into(),
    }
}

impl Registrar<'_> {
    fn vault(&self) -> Result<&Vault, Error> {
        self.vault.ok_or_else(|| Error::Internal("this function cannot seal app secrets (no KMS key)".into()))
    }

    async fn stored_app(&self, appid: &AppId) -> Result<Option<App>, Error> {
        match self.store.get(&reg::app_key(appid)).await? {
            Some(it) => Ok(Some(reg::app_from_item(appid, &it)?.0)),
            None => Ok(None),
        }
    }

    async fn stored_merchant(&self, m: &MerchantId) -> Result<Option<Merchant>, Error> {
        match self.store.get(&reg::merchant_key(m)).await? {
            Some(it) => Ok(Some(reg::merchant_from_item(m, &it)?)),
            None => Ok(None),
        }
    }

    /// What storing `app` would change, refused when it cannot work with what is stored.
    async fn plan(&self, app: &App, authorized_at: Option<i64>) -> Result<(Tx, Put), Error> {
        app.check().map_err(Error::InvalidRequest)?;
        let existing = self.stored_app(&app.appid).await?;
        if let Some(old) = &existing {
            if old.owner != app.owner {
                return Err(Error::RegistryConflict(format!(
                    "app {} is registered to {}, not {}",
                    app.appid, old.owner, app.owner
                )));
            }
            // Its identities were filed under that kind (a WeChat app never changes kind).
            if old.kind != app.kind {
                return Err(Error::RegistryConflict(format!(
                    "app {} is a {}, not a {}",
                    app.appid, old.kind, app.kind
                )));
            }
        }
        let platform = reg::platform_from_item(self.store.get(&reg::platform_key()).await?.as_ref())?;
        let mut tx = Tx::new();
        match (&platform.pivot, app.is_pivot()) {
            (Some(p), true) if p != &app.appid => {
                // A pivot whose app is gone no longer counts.
                if self.stored_app(p).await?.is_some_and(|a| a.is_pivot()) {
                    return Err(Error::RegistryConflict(format!(
                        "{p} is already the pivot; {} cannot be a second",
                        app.appid
                    )));
                }
                tx.add(reg::claim_pivot(&app.appid, Some(p)));
            }
            (None, true) => {
                tx.add(reg::claim_pivot(&app.appid, None));
            }
            (Some(p), false) if p == &app.appid => {
                tx.add(reg::release_pivot(&app.appid));
            }
            _ => {}
        }
        if let Owner::Merchant(m) = &app.owner {
            let record = self.stored_merchant(m).await?;
            if record.is_none() && !matches!(app.kind, AppKind::MiniProgram | AppKind::OfficialAccount) {
                return Err(Error::InvalidRequest(format!(
                    "app {}: merchant {m} is unknown; register its mini program or official account first",
                    app.appid
                )));
            }
            let mp = record.as_ref().and_then(|r| r.mini_program.clone());
            let becomes_primary =
                app.kind == AppKind::MiniProgram && (app.primary || mp.is_none() || mp.as_ref() == Some(&app.appid));
            let mini_program = if becomes_primary { Some(app.appid.clone()) } else { mp };
            let next = Merchant { id: m.clone(), mini_program };
            if record.as_ref() != Some(&next) {
                tx.add(Write::Put { item: reg::merchant_item(&next), cond: vec![] });
            }
        }
        let sealed = match app.auth {
            Auth::Secret => {
                Some(self.vault()?.seal(AppSecrets::of(app).to_json().as_bytes(), &reg::sealed_aad(&app.appid)).await?)
            }
            Auth::Component => None,
        };
        let cond = match &existing {
            Some(old) => vec![Check::Eq(reg::OWNER.into(), crate::store::s(old.owner.to_string()))],
            None => vec![Check::NotExists],
        };
        tx.add(Write::Put { item: reg::app_item(app, sealed.as_deref(), authorized_at), cond });
        tx.add(Write::Put { item: reg::index_item(app), cond: vec![] });
        Ok((tx, if existing.is_some() { Put::Replaced } else { Put::Created }))
    }

    /// `PUT /v1/admin/apps/{appid}`.
    pub async fn put_app(&self, app: &App) -> Result<Put, Error> {
        let (tx, put) = self.plan(app, None).await?;
        tx.commit(self.store)
            .await
            .map_err(|e| conflict(e, format!("app {} was changed at the same time; retry", app.appid)))?;
        self.directory.forget();
        Ok(put)
    }

    /// A component app its merchant authorized (WeChat's CreateTime `at_secs`), with the
    /// tokens the authorization gave, in one transaction: the app never serves without its
    /// refresh token.
    pub async fn authorize(&self, app: &App, at_secs: i64, tokens: Write) -> Result<Put, Error> {
        let (mut tx, put) = self.plan(app, Some(at_secs)).await?;
        tx.add(tokens);
        tx.commit(self.store)
            .await
            .map_err(|e| conflict(e, format!("app {} was changed at the same time; retry", app.appid)))?;
        self.directory.forget();
        Ok(put)
    }

    /// Stops a component app its merchant no longer authorizes (the item stays, owner and all).
    pub async fn stop(&self, appid: &AppId, authorized_at: Option<i64>, at: i64) -> Result<(), Error> {
        self.store.write(reg::stop_app(appid, authorized_at, at)).await?;
        self.directory.forget();
        Ok(())
    }

    /// The app without its secrets (opened only to say which it has).
    pub async fn app_info(&self, appid: &AppId) -> Result<AppInfo, Error> {
        let it = self.store.get(&reg::app_key(appid)).await?.ok_or(Error::UnknownApp)?;
        let (app, sealed) = reg::app_from_item(appid, &it)?;
        let Some(sealed) = sealed else { return Ok(AppInfo { stopped_at: it.n(reg::STOPPED_AT), ..app.public() }) };
        let secrets = AppSecrets::from_json(&self.vault()?.open(&sealed, &reg::sealed_aad(appid)).await?)?;
        Ok(reg::with_secrets(app, secrets).public())
    }

    /// Every registered app's id, owner and kind (operators' listings; a Query of one
    /// partition, never on a request path).
    pub async fn list(&self) -> Result<Vec<(AppId, Owner, AppKind)>, Error> {
        self.store.query(reg::INDEX_PK, "APP#").await?.iter().map(reg::index_from_item).collect()
    }

    /// `DELETE /v1/admin/apps/{appid}`: its logins stop; its links stay.
    pub async fn delete_app(&self, appid: &AppId) -> Result<(), Error> {
        let app = self.stored_app(appid).await?.ok_or(Error::UnknownApp)?;
        let mut tx = Tx::new();
        tx.add(Write::Delete { key: reg::app_key(appid), cond: vec![Check::Exists] });
        tx.add(Write::Delete { key: reg::index_key(appid), cond: vec![] });
        let platform = reg::platform_from_item(self.store.get(&reg::platform_key()).await?.as_ref())?;
        if platform.pivot.as_ref() == Some(appid) {
            tx.add(reg::release_pivot(appid));
        }
        if let Owner::Merchant(m) = &app.owner {
            if let Some(r) = self.stored_merchant(m).await?.filter(|r| r.mini_program.as_ref() == Some(appid)) {
                tx.add(Write::Put { item: reg::merchant_item(&Merchant { mini_program: None, ..r }), cond: vec![] });
            }
        }
        tx.commit(self.store)
            .await
            .map_err(|e| conflict(e, format!("app {appid} was changed at the same time; retry")))?;
        self.directory.forget();
        Ok(())
    }

    /// A site and the official accounts it binds through (each must be registered).
    pub async fn put_site(&self, site: &Site) -> Result<Put, Error> {
        for oa in &site.official_accounts {
            if self.stored_app(oa).await?.is_none_or(|a| a.kind != AppKind::OfficialAccount) {
                return Err(Error::InvalidRequest(format!(
                    "site {}: {oa} is not a registered official account",
                    site.site_id
                )));
            }
        }
        let existed = self.store.get(&reg::site_key(&site.site_id)).await?.is_some();
        self.store.write(Write::Put { item: reg::site_item(site), cond: vec![] }).await?;
        self.directory.forget();
        Ok(if existed { Put::Replaced } else { Put::Created })
    }

    /// Files `key` for `holder`. Filing the same key for the same holder again changes nothing.
    async fn file_key(&self, key: &str, holder: &Holder) -> Result<String, Error> {
        let hash = key_hash(key);
        let now = self.clock.now_secs();
        let mut tx = Tx::new();
        tx.add(Write::Put { item: reg::credential_item(&hash, holder, now), cond: vec![Check::NotExists] });
        if let Some(pk) = reg::keys_pk(holder) {
            tx.add(Write::Put { item: reg::key_entry_item(&pk, &hash, now), cond: vec![] });
        }
        match tx.commit(self.store).await {
            Ok(()) => {}
            Err(TxError::Refused(_)) => {
                let it = self.store.get(&reg::credential_key(&hash)).await?;
                if it.as_ref().and_then(|i| i.s(reg::HOLDER)) != Some(holder.to_string().as_str()) {
                    return Err(Error::RegistryConflict("this key is already filed for another holder".into()));
                }
            }
            Err(e) => return Err(conflict(e, "a key was filed at the same time; retry".into())),
        }
        self.directory.forget();
        Ok(key_id(&hash).to_owned())
    }

    /// A fresh key for a merchant or site, shown once; only its hash is kept.
    pub async fn issue_key(&self, holder: Holder) -> Result<IssuedKey, Error> {
        let prefix = match &holder {
            Holder::Merchant(m) => {
                self.stored_merchant(m).await?.ok_or(Error::NotFound)?;
                "wxbm"
            }
            Holder::Site(s) => {
                self.store.get(&reg::site_key(s)).await?.ok_or(Error::NotFound)?;
                "wxbs"
            }
            Holder::Service | Holder::Admin => "wxbk",
        };
        let key = format!("{prefix}_{}", hex::encode(rand::random::<[u8; 24]>()));
        let key_id = self.file_key(&key, &holder).await?;
        Ok(IssuedKey { key, key_id, holder: holder.to_string() })
    }

    /// Revokes one of a merchant's or site's keys: it stops within the cache life (60 s), here
    /// at once.
    pub async fn revoke_key(&self, holder: &Holder, id: &str) -> Result<(), Error> {
        let pk = reg::keys_pk(holder).ok_or(Error::NotFound)?;
        let entry = self.store.get(&reg::key_entry(&pk, id)).await?.ok_or(Error::NotFound)?;
        let hash = entry.s(reg::HASH).ok_or_else(|| Error::Internal("key entry without hash".into()))?.to_owned();
        let mut tx = Tx::new();
        tx.add(Write::Delete { key: reg::key_entry(&pk, id), cond: vec![Check::Exists] });
        tx.add(Write::Delete { key: reg::credential_key(&hash), cond: vec![] });
        tx.commit(self.store).await.map_err(|e| conflict(e, "the key was revoked at the same time".into()))?;
        self.directory.forget();
        Ok(())
    }

    /// The ids of a merchant's or site's live keys.
    pub async fn keys_of(&self, holder: &Holder) -> Result<Vec<String>, Error> {
        let pk = reg::keys_pk(holder).ok_or(Error::NotFound)?;
        Ok(self
            .store
            .query(&pk, "KEY#")
            .await?
            .iter()
            .filter_map(|i| i.s("SK").and_then(|sk| sk.strip_prefix("KEY#")).map(str::to_owned))
            .collect())
    }

    /// Writes a seed document into the store. Every entry is checked against what is stored
    /// first: one bad entry and nothing is written, and the error names it. Importing the same
    /// document twice changes nothing the second time.
    pub async fn import(&self, seed: &Registry) -> Result<Imported, Error> {
        let stored_pivot = reg::platform_from_item(self.store.get(&reg::platform_key()).await?.as_ref())?.pivot;
        let seed_pivot = seed.platform.pivot.as_ref();
        if let (Some(s), Some(p)) = (seed_pivot, &stored_pivot) {
            if s != p && self.stored_app(p).await?.is_some_and(|a| a.is_pivot()) {
                return Err(Error::RegistryConflict(format!(
                    "app {s}: {p} is already the pivot; {s} cannot be a second"
                )));
            }
        }
        for app in seed.apps() {
            if let Some(old) = self.stored_app(&app.appid).await? {
                if old.owner != app.owner {
                    return Err(Error::RegistryConflict(format!(
                        "app {} is registered to {}, not {}",
                        app.appid, old.owner, app.owner
                    )));
                }
            }
        }
        for (holder, key) in &seed.keys {
            if let Some(it) = self.store.get(&reg::credential_key(&key_hash(key.expose()))).await? {
                if it.s(reg::HOLDER) != Some(holder.to_string().as_str()) {
                    return Err(Error::RegistryConflict(format!(
                        "the key for {holder} is already filed for another holder"
                    )));
                }
            }
        }
        // The pivot first, so the apps after it see it; merchants' mini programs before their
        // other apps.
        let mut apps: Vec<&App> = seed.apps().collect();
        apps.sort_by_key(|a| (!a.is_pivot(), !matches!(a.kind, AppKind::MiniProgram | AppKind::OfficialAccount)));
        for app in &apps {
            self.put_app(app).await?;
        }
        self.store.write(reg::set_platform_settings(&seed.platform)).await?;
        for site in &seed.sites {
            self.put_site(site).await?;
        }
        for (holder, key) in &seed.keys {
            self.file_key(key.expose(), holder).await?;
        }
        self.directory.forget();
        Ok(Imported { apps: apps.len(), sites: seed.sites.len(), keys: seed.keys.len() })
    }
}
