//! The registry as the bridge reads it: one app, site or credential at a time, when a request
//! names it. The store is the registry ([`StoreDirectory`]); a Lambda container keeps what it
//! read for at most a minute ([`Cached`]); the seed document answers the same questions in
//! unit tests.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::Error;
use crate::ids::{AppId, MerchantId, SiteId};
use crate::items::registry as reg;
use crate::items::registry::AppSecrets;
use crate::model::AppKind;
use crate::registry::{key_hash, App, Holder, Merchant, Platform, Registry, Site};
use crate::store::{ItemExt, Store};
use crate::vault::Vault;

#[async_trait]
pub trait Directory: Send + Sync {
    async fn app(&self, appid: &AppId) -> Result<Option<Arc<App>>, Error>;
    async fn platform(&self) -> Result<Arc<Platform>, Error>;
    /// Every site (a platform has a few; they are one partition).
    async fn sites(&self) -> Result<Arc<Vec<Site>>, Error>;
    async fn merchant(&self, m: &MerchantId) -> Result<Option<Arc<Merchant>>, Error>;
    /// Who holds this bearer key, if anyone.
    async fn holder(&self, key: &str) -> Result<Option<Holder>, Error>;
    /// Drops what this instance remembers: the registry was just changed through it.
    fn forget(&self) {}
}

/// The questions the use cases ask, in terms of the five above.
#[async_trait]
pub trait DirectoryExt {
    /// The app, if registered and of the kind the route serves; else `unknown_app`.
    async fn app_of_kind(&self, appid: &AppId, kind: AppKind) -> Result<Arc<App>, Error>;
    async fn pivot(&self) -> Result<Option<Arc<App>>, Error>;
    async fn site(&self, site: &SiteId) -> Result<Option<Site>, Error>;
    /// The official accounts `site` may bind through, first the default.
    async fn site_accounts(&self, site: &Site) -> Result<Vec<Arc<App>>, Error>;
    /// The site an official account's login links are for: the first that binds through it.
    async fn site_of_account(&self, oa: &AppId) -> Result<Option<Site>, Error>;
}

#[async_trait]
impl<D: Directory + ?Sized> DirectoryExt for D {
    async fn app_of_kind(&self, appid: &AppId, kind: AppKind) -> Result<Arc<App>, Error> {
        self.app(appid).await?.filter(|a| a.kind == kind).ok_or(Error::UnknownApp)
    }

    async fn pivot(&self) -> Result<Option<Arc<App>>, Error> {
        match &self.platform().await?.pivot {
            Some(p) => Ok(self.app(p).await?.filter(|a| a.is_pivot())),
            None => Ok(None),
        }
    }

    async fn site(&self, site: &SiteId) -> Result<Option<Site>, Error> {
        Ok(self.sites().await?.iter().find(|s| &s.site_id == site).cloned())
    }

    async fn site_accounts(&self, site: &Site) -> Result<Vec<Arc<App>>, Error> {
        if site.official_accounts.is_empty() {
            return Ok(self.pivot().await?.into_iter().collect());
        }
        let mut out = Vec::new();
        for a in &site.official_accounts {
            if let Some(app) = self.app(a).await?.filter(|a| a.kind == AppKind::OfficialAccount) {
                out.push(app);
            }
        }
        Ok(out)
    }

    async fn site_of_account(&self, oa: &AppId) -> Result<Option<Site>, Error> {
        let pivot = self.platform().await?.pivot.clone();
        let sites = self.sites().await?;
        Ok(sites
            .iter()
            .find(|s| {
                s.official_accounts.contains(oa) || (s.official_accounts.is_empty() && pivot.as_ref() == Some(oa))
            })
            .cloned())
    }
}

/// The seed document answers as the store would after an import (unit tests, the CLI).
#[async_trait]
impl Directory for Registry {
    async fn app(&self, appid: &AppId) -> Result<Option<Arc<App>>, Error> {
        Ok(Registry::app(self, appid).cloned().map(Arc::new))
    }
    async fn platform(&self) -> Result<Arc<Platform>, Error> {
        Ok(Arc::new(self.platform.clone()))
    }
    async fn sites(&self) -> Result<Arc<Vec<Site>>, Error> {
        Ok(Arc::new(self.sites.clone()))
    }
    async fn merchant(&self, m: &MerchantId) -> Result<Option<Arc<Merchant>>, Error> {
        Ok(self.merchants().into_iter().find(|x| &x.id == m).map(Arc::new))
    }
    async fn holder(&self, key: &str) -> Result<Option<Holder>, Error> {
        Ok(self.holder_of(key).cloned())
    }
}

/// The registry in the store. Without a vault it never opens secrets: functions that do not
/// call WeChat get apps with empty secrets and need no KMS permission.
pub struct StoreDirectory {
    pub store: Arc<dyn Store>,
    pub vault: Option<Vault>,
}

#[async_trait]
impl Directory for StoreDirectory {
    async fn app(&self, appid: &AppId) -> Result<Option<Arc<App>>, Error> {
        let Some(it) = self.store.get(&reg::app_key(appid)).await? else { return Ok(None) };
        if it.contains_key(reg::STOPPED_AT) {
            return Ok(None);
        }
        let (app, sealed) = reg::app_from_item(appid, &it)?;
        let app = match (&self.vault, sealed) {
            (Some(v), Some(sealed)) => {
                reg::with_secrets(app, AppSecrets::from_json(&v.open(&sealed, &reg::sealed_aad(appid)).await?)?)
            }
            _ => app,
        };
        Ok(Some(Arc::new(app)))
    }

    async fn platform(&self) -> Result<Arc<Platform>, Error> {
        Ok(Arc::new(reg::platform_from_item(self.store.get(&reg::platform_key()).await?.as_ref())?))
    }

    async fn sites(&self) -> Result<Arc<Vec<Site>>, Error> {
        let items = self.store.query(reg::SITES_PK, "").await?;
        Ok(Arc::new(items.iter().map(reg::site_from_item).collect::<Result<_, _>>()?))
    }

    async fn merchant(&self, m: &MerchantId) -> Result<Option<Arc<Merchant>>, Error> {
        match self.store.get(&reg::merchant_key(m)).await? {
            Some(it) => Ok(Some(Arc::new(reg::merchant_from_item(m, &it)?))),
            None => Ok(None),
        }
    }

    async fn holder(&self, key: &str) -> Result<Option<Holder>, Error> {
        // Bearer values of any length arrive here; only plausible keys cost a read.
        if key.len() < 16 || key.len() > 256 {
            return Ok(None);
        }
        match self.store.get(&reg::credential_key(&key_hash(key))).await? {
            Some(it) if it.s(reg::HOLDER).is_some() => Ok(Some(reg::holder_from_item(&it)?)),
            _ => Ok(None),
        }
    }
}

/// How long a container keeps what it read: an answer, and (shorter) a "no such thing", so a
/// newly registered app or key works within seconds and a removed one stops within a minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLife {
    pub found: Duration,
    pub missing: Duration,
}

impl CacheLife {
    /// Lambda containers.
    pub const LAMBDA: CacheLife = CacheLife { found: Duration::from_secs(60), missing: Duration::from_secs(5) };
    /// No cache: every lookup is a read.
    pub const NONE: CacheLife = CacheLife { found: Duration::ZERO, missing: Duration::ZERO };
}

const CACHE_MAX: usize = 20_000;

struct Shelf<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Shelf<K, V> {
    fn new() -> Self {
        Shelf { map: Mutex::new(HashMap::new()) }
    }

    fn get(&self, k: &K) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(k).filter(|(_, until)| Instant::now() < *until).map(|(v, _)| v.clone())
    }

    fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn put(&self, k: K, v: V, life: Duration) {
        if life.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(k, (v, Instant::now() + life));
    }
}

/// A per-container cache in front of another directory.
pub struct Cached<D> {
    inner: D,
    life: CacheLife,
    apps: Shelf<AppId, Option<Arc<App>>>,
    platform: Shelf<(), Arc<Platform>>,
    sites: Shelf<(), Arc<Vec<Site>>>,
    merchants: Shelf<MerchantId, Option<Arc<Merchant>>>,
    holders: Shelf<String, Option<Holder>>,
}

impl<D: Directory> Cached<D> {
    pub fn new(inner: D, life: CacheLife) -> Self {
        Cached {
            inner,
            life,
            apps: Shelf::new(),
            platform: Shelf::new(),
            sites: Shelf::new(),
            merchants: Shelf::new(),
            holders: Shelf::new(),
        }
    }

    fn life_of<T>(&self, v: &Option<T>) -> Duration {
        if v.is_some() {
            self.life.found
        } else {
            self.life.missing
        }
    }
}

#[async_trait]
impl<D: Directory> Directory for Cached<D> {
    async fn app(&self, appid: &AppId) -> Result<Option<Arc<App>>, Error> {
        if let Some(v) = self.apps.get(appid) {
            return Ok(v);
        }
        let v = self.inner.app(appid).await?;
        self.apps.put(appid.clone(), v.clone(), self.life_of(&v));
        Ok(v)
    }

    async fn platform(&self) -> Result<Arc<Platform>, Error> {
        if let Some(v) = self.platform.get(&()) {
            return Ok(v);
        }
        let v = self.inner.platform().await?;
        self.platform.put((), v.clone(), self.life.found);
        Ok(v)
    }

    async fn sites(&self) -> Result<Arc<Vec<Site>>, Error> {
        if let Some(v) = self.sites.get(&()) {
            return Ok(v);
        }
        let v = self.inner.sites().await?;
        self.sites.put((), v.clone(), self.life.found);
        Ok(v)
    }

    async fn merchant(&self, m: &MerchantId) -> Result<Option<Arc<Merchant>>, Error> {
        if let Some(v) = self.merchants.get(m) {
            return Ok(v);
        }
        let v = self.inner.merchant(m).await?;
        self.merchants.put(m.clone(), v.clone(), self.life_of(&v));
        Ok(v)
    }

    async fn holder(&self, key: &str) -> Result<Option<Holder>, Error> {
        // Filed by hash, so the cache holds no key either.
        let h = key_hash(key);
        if let Some(v) = self.holders.get(&h) {
            return Ok(v);
        }
        let v = self.inner.holder(key).await?;
        self.holders.put(h, v.clone(), self.life_of(&v));
        Ok(v)
    }

    fn forget(&self) {
        self.apps.clear();
        self.platform.clear();
        self.sites.clear();
        self.merchants.clear();
        self.holders.clear();
        self.inner.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::counting::CountingStore;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_cached_directory_reads_each_app_once_and_forgets_a_miss_sooner() {
        let counting = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
        let life = CacheLife { found: Duration::from_secs(60), missing: Duration::from_millis(50) };
        let d = Cached::new(StoreDirectory { store: counting.clone(), vault: None }, life);
        let id = AppId::parse("wxnothere").unwrap();
        assert!(d.app(&id).await.unwrap().is_none());
        assert!(d.app(&id).await.unwrap().is_none());
        assert_eq!(counting.take().gets, 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(d.app(&id).await.unwrap().is_none());
        assert_eq!(counting.take().gets, 1);
        assert!(d.holder("short").await.unwrap().is_none());
        assert_eq!(counting.take().gets, 0, "implausible keys cost no read");
    }
}
