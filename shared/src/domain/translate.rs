//! Openid translation (ARCHITECTURE.md §1 step 6): the same person's openid in another app.
//!
//! Warm path: one read. An openid's person is cached (it only ever changes by a merge, and a
//! merged person keeps `merged_into`, so a cached id still leads to the right person); the
//! answer itself is read fresh each time, so an unlink takes effect at once, and a denial is
//! never cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::directory::{Directory, DirectoryExt};
use crate::domain::assoc::Assoc;
use crate::error::Error;
use crate::ids::{AppId, MerchantId, OpenId, PersonId};
use crate::items::membership::{self, Membership};
use crate::model::{AppKind, Owner};
use crate::pairwise::Pairwise;
use crate::registry::{App, Holder};
use crate::tokens::Verified;

/// Entries older than this are looked up again. An unlink or erase clears this instance's
/// entry at once; other warm instances may answer from the old person for up to this long.
const CACHE_MILLIS: i64 = 60 * 1000;
const CACHE_MAX: usize = 50_000;

#[derive(Default)]
pub struct PersonCache {
    map: Mutex<HashMap<(AppId, OpenId), (PersonId, i64)>>,
}

impl PersonCache {
    fn get(&self, appid: &AppId, openid: &OpenId, now: i64) -> Option<PersonId> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(appid.clone(), openid.clone())).filter(|(_, at)| now - at < CACHE_MILLIS).map(|(p, _)| p.clone())
    }

    fn put(&self, appid: &AppId, openid: &OpenId, person: PersonId, now: i64) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert((appid.clone(), openid.clone()), (person, now));
    }

    pub fn forget(&self, appid: &AppId, openid: &OpenId) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&(appid.clone(), openid.clone()));
    }
}

#[derive(Debug, serde::Serialize, PartialEq, Eq)]
pub struct Translation {
    pub openid: String,
    pub person_id: String,
}

/// What translation needs: the association rules, the registry, this instance's cache and
/// the pairwise ids.
pub struct Translator<'a> {
    pub assoc: Assoc<'a>,
    pub apps: &'a dyn Directory,
    pub cache: &'a PersonCache,
    pub pairwise: &'a Pairwise,
}

impl Translator<'_> {
    /// `GET /v1/translate` with a credential: the service key reaches every app and sees the
    /// platform-wide id; a merchant key reaches only its merchant's apps and sees the
    /// merchant's pairwise id.
    pub async fn translate_for(
        &self,
        caller: &Holder,
        from: &AppId,
        openid: &OpenId,
        to: &AppId,
    ) -> Result<Translation, Error> {
        let seen_by = match caller {
            Holder::Service => Owner::Platform,
            Holder::Merchant(m) => Owner::Merchant(m.clone()),
            Holder::Admin | Holder::Site(_) => return Err(Error::Forbidden),
        };
        let (target, source) = (self.apps.app(to).await?, self.apps.app(from).await?);
        if let Owner::Merchant(_) = &seen_by {
            // Into its own apps only, from its own or the platform's: never another tenant's
            // openids (two merchants would join their customers on them), and no telling
            // which foreign appids are registered.
            let into_own = target.as_ref().is_some_and(|t| t.owner == seen_by);
            let from_reach = source.as_ref().is_some_and(|s| s.owner == seen_by || s.owner.is_platform());
            if !into_own || !from_reach {
                tracing::warn!(to = %to, from = %from, "a merchant key asked outside its tenant");
                return Err(Error::Forbidden);
            }
        }
        if target.is_none() || source.is_none() {
            return Err(Error::UnknownApp);
        }
        let (openid, person) = self.translate(from, openid, to).await?;
        Ok(Translation { openid, person_id: self.pairwise.id(&person, &seen_by)? })
    }

    /// The openid in `to` of the person behind (`from`, `openid`), and that person.
    async fn translate(&self, from: &AppId, openid: &OpenId, to: &AppId) -> Result<(String, PersonId), Error> {
        let now = self.assoc.clock.now_millis();
        let cached = self.cache.get(from, openid, now);
        let person = match &cached {
            Some(p) => p.clone(),
            None => self.assoc.identity(from, openid).await?.ok_or(Error::NotFound)?.person,
        };
        if let Some(m) = self.assoc.store.get(&membership::key(&person, to)).await? {
            let m = Membership::from_item(&person, &m)?;
            if cached.is_none() {
                self.cache.put(from, openid, person.clone(), now);
            }
            return Ok((m.linked.openid.to_string(), person));
        }
        // Not under this id: the person may have been merged (or be mid-merge), or the identity
        // unlinked since it was cached. Resolve properly.
        let ident = match self.assoc.identity(from, openid).await? {
            Some(i) => i,
            None => {
                self.cache.forget(from, openid);
                return Err(Error::NotFound);
            }
        };
        let view = self.assoc.view(&ident.person).await?;
        self.cache.put(from, openid, view.person.clone(), now);
        view.linked
            .iter()
            .find(|l| &l.appid == to)
            .map(|l| (l.openid.to_string(), view.person.clone()))
            .ok_or(Error::NotLinked)
    }

    /// The mini program a merchant's backend knows (the merchant's primary, named in the
    /// registry), for a merchant named in a route.
    pub async fn merchant_mini_program(&self, merchant: &str) -> Result<Arc<App>, Error> {
        let m = MerchantId::parse(merchant).map_err(|_| Error::UnknownApp)?;
        let record = self.apps.merchant(&m).await?.ok_or(Error::UnknownApp)?;
        let mp = record.mini_program.as_ref().ok_or(Error::UnknownApp)?;
        self.apps.app_of_kind(mp, AppKind::MiniProgram).await
    }

    /// The API Gateway authorizer's decision: a platform mini-program user, as the merchant's
    /// mini program knows them (its openid, the merchant's pairwise id).
    pub async fn for_merchant(&self, who: &Verified, merchant: &str) -> Result<(Translation, AppId), Error> {
        let caller = self.apps.app(&who.appid).await?.ok_or(Error::InvalidToken)?;
        if caller.kind != AppKind::MiniProgram || !caller.owner.is_platform() {
            return Err(Error::InvalidToken);
        }
        let target = self.merchant_mini_program(merchant).await?;
        let (openid, person) = self.translate(&who.appid, &who.openid, &target.appid).await?;
        let t = Translation { openid, person_id: self.pairwise.id(&person, &target.owner)? };
        Ok((t, target.appid.clone()))
    }
}
