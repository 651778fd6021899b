//! Openid translation (ARCHITECTURE.md §1 step 6): the same person's openid in another app.
//!
//! Warm path: one read. An openid's person is cached (it only ever changes by a merge, and a
//! merged person keeps `merged_into`, so a cached id still leads to the right person); the
//! answer itself is read fresh each time, so an unlink takes effect at once, and a denial is
//! never cached.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::assoc::Assoc;
use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId};
use crate::items::membership::{self, Membership};
use crate::model::{AppKind, Owner};
use crate::registry::{App, Registry};
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

/// What translation needs: the association rules, the registry and this instance's cache.
pub struct Translator<'a> {
    pub assoc: Assoc<'a>,
    pub apps: &'a Registry,
    pub cache: &'a PersonCache,
}

impl Translator<'_> {
    pub async fn translate(&self, from: &AppId, openid: &OpenId, to: &AppId) -> Result<Translation, Error> {
        if self.apps.app(from).is_none() || self.apps.app(to).is_none() {
            return Err(Error::UnknownApp);
        }
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
            return Ok(Translation { openid: m.linked.openid.to_string(), person_id: person.to_string() });
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
            .map(|l| Translation { openid: l.openid.to_string(), person_id: view.person.to_string() })
            .ok_or(Error::NotLinked)
    }

    /// The merchant's mini program for a merchant named in a route (its owner id, or the appid).
    pub fn merchant_mini_program(&self, merchant: &str) -> Result<&App, Error> {
        self.apps
            .apps()
            .filter(|a| a.kind == AppKind::MiniProgram && !a.owner.is_platform())
            .find(|a| matches!(&a.owner, Owner::Merchant(m) if m.as_str() == merchant) || a.appid.as_str() == merchant)
            .ok_or(Error::UnknownApp)
    }

    /// The API Gateway authorizer's decision: a platform mini-program user, as the merchant's
    /// mini program knows them.
    pub async fn for_merchant(&self, who: &Verified, merchant: &str) -> Result<(Translation, AppId), Error> {
        let caller = self.apps.app(&who.appid).ok_or(Error::InvalidToken)?;
        if caller.kind != AppKind::MiniProgram || !caller.owner.is_platform() {
            return Err(Error::InvalidToken);
        }
        let target = self.merchant_mini_program(merchant)?.appid.clone();
        Ok((self.translate(&who.appid, &who.openid, &target).await?, target))
    }
}
