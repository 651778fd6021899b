//! Openid translation (ARCHITECTURE.md §1 step 6): the same person's openid in another app.
//!
//! Warm path: one read. An openid's person is cached (it only ever changes by a merge, and a
//! merged person keeps `merged_into`, so a cached id still leads to the right person); the
//! answer itself is read fresh each time, so an unlink takes effect at once, and a denial is
//! never cached.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::bridge::Bridge;
use crate::domain::keys;
use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId};
use crate::store::ItemExt;

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

pub async fn translate(b: &Bridge, from: &AppId, openid: &OpenId, to: &AppId) -> Result<Translation, Error> {
    if b.registry.app(from).is_none() || b.registry.app(to).is_none() {
        return Err(Error::UnknownApp);
    }
    let now = b.clock.now_millis();
    let cached = b.translations.get(from, openid, now);
    let person = match &cached {
        Some(p) => p.clone(),
        None => {
            let ident = b.assoc().identity(from, openid).await?.ok_or(Error::NotFound)?;
            ident.person
        }
    };
    if let Some(m) = b.store.get(&keys::membership(&person, to)).await? {
        if let Some(o) = m.s("openid") {
            if cached.is_none() {
                b.translations.put(from, openid, person.clone(), now);
            }
            return Ok(Translation { openid: o.to_owned(), person_id: person.to_string() });
        }
    }
    // Not under this id: the person may have been merged (or be mid-merge), or the identity
    // unlinked since it was cached. Resolve properly.
    let ident = match b.assoc().identity(from, openid).await? {
        Some(i) => i,
        None => {
            b.translations.forget(from, openid);
            return Err(Error::NotFound);
        }
    };
    let view = b.assoc().view(&ident.person).await?;
    b.translations.put(from, openid, view.person.clone(), now);
    view.linked
        .iter()
        .find(|l| &l.appid == to)
        .map(|l| Translation { openid: l.openid.to_string(), person_id: view.person.to_string() })
        .ok_or(Error::NotLinked)
}

/// The merchant's mini program for a merchant named in a route (its owner id, or the appid).
pub fn merchant_mini_program<'a>(b: &'a Bridge, merchant: &str) -> Result<&'a crate::registry::App, Error> {
    b.registry
        .apps()
        .filter(|a| a.kind == crate::registry::AppKind::MiniProgram && a.owner != "platform")
        .find(|a| a.owner == merchant || a.appid.as_str() == merchant)
        .ok_or(Error::UnknownApp)
}

/// The API Gateway authorizer's decision: a platform mini-program user, as the merchant's
/// mini program knows them.
pub async fn for_merchant(
    b: &Bridge,
    who: &crate::tokens::Verified,
    merchant: &str,
) -> Result<(Translation, AppId), Error> {
    let caller = b.registry.app(&who.appid).ok_or(Error::InvalidToken)?;
    if caller.kind != crate::registry::AppKind::MiniProgram || caller.owner != "platform" {
        return Err(Error::InvalidToken);
    }
    let target = merchant_mini_program(b, merchant)?.appid.clone();
    Ok((translate(b, &who.appid, &who.openid, &target).await?, target))
}
