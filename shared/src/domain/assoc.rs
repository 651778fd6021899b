//! Who is who: resolving an app identity to a person, linking, attaching unionids, merging.
//!
//! Invariants, held by conditional writes rather than by locks:
//! - an (app, openid) belongs to exactly one person (`ID#` item, created only if absent);
//! - a person has at most one openid per app (membership key `P#person / A#appid`);
//! - a unionid names at most one person (`U#` item, created only if absent);
//! - a merged person keeps `merged_into`, so every old pointer still resolves; a merge in
//!   progress is marked on the survivor (`merging`) and any reader finishes it, so a merge
//!   that stops half-way stays correct and is never bounded by the transaction size.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId, UnionId};
use crate::items::identity::{self, Identity};
use crate::items::membership::{Linked, Membership};
use crate::items::person::{self, Person};
use crate::items::{conflict, union, Tx, TxError};
use crate::metrics::{self, Counter};
use crate::model::Via;
use crate::ports::{Clock, Ids};
use crate::registry::App;
use crate::store::{Item, ItemExt, Key, Store, StoreError};
use crate::tokens::Verified;

/// How many times a flow re-reads and retries after losing a race.
const ATTEMPTS: u32 = 8;
/// Memberships moved per transaction (3 writes each, within DynamoDB's 100).
const MOVE_CHUNK: usize = 30;
/// Longest `merged_into` chain followed before giving up (chains are short: each merge
/// redirects to a root).
const MAX_HOPS: usize = 32;

/// A person as it is now (always a root: never merged into another).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonView {
    pub person: PersonId,
    pub created_millis: i64,
    pub linked: Vec<Linked>,
}

impl PersonView {
    pub fn has_app(&self, appid: &AppId) -> bool {
        self.linked.iter().any(|l| &l.appid == appid)
    }
}

#[derive(Debug)]
pub struct Resolved {
    pub identity: Identity,
    pub view: PersonView,
    pub new_person: bool,
}

/// Who a unionid names.
enum UnionOwner {
    Free,
    Person(PersonView),
    /// The item names a person that no longer exists (erased): it may be taken over.
    Dangling(PersonId),
}

/// The association rules over the store: everything that links, merges or resolves.
#[derive(Clone, Copy)]
pub struct Assoc<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn Ids,
}

/// Contention is settled by retrying after a short, growing, jittered pause.
async fn pause(attempt: u32) {
    let jitter = rand::random::<u64>() % 10;
    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter)).await;
}

fn linked_of(app: &App, openid: &OpenId, via: Via, now: i64) -> Linked {
    Linked {
        appid: app.appid.clone(),
        openid: openid.clone(),
        kind: app.kind,
        owner: app.owner.clone(),
        via,
        at_millis: now,
    }
}

impl<'a> Assoc<'a> {
    async fn union_owner(&self, key: &Key) -> Result<UnionOwner, Error> {
        let Some(p) = self.store.get(key).await?.map(|it| union::owner(&it)).transpose()?.flatten() else {
            return Ok(UnionOwner::Free);
        };
        match self.view(&p).await {
            Ok(v) => Ok(UnionOwner::Person(v)),
            Err(Error::NotFound) => Ok(UnionOwner::Dangling(p)),
            Err(e) => Err(e),
        }
    }

    pub async fn identity(&self, appid: &AppId, openid: &OpenId) -> Result<Option<Identity>, Error> {
        match self.store.get(&identity::key(appid, openid)).await? {
            Some(it) => Ok(Some(Identity::from_item(appid, openid, &it)?)),
            None => Ok(None),
        }
    }

    /// The identity behind a verified bridge token, as it is now. A token outlives nothing it
    /// names: an unlinked or erased identity ends it.
    pub async fn current(&self, who: &Verified) -> Result<(Identity, PersonView), Error> {
        let ident = self.identity(&who.appid, &who.openid).await?.ok_or(Error::InvalidToken)?;
        let view = self.view(&ident.person).await.map_err(|e| match e {
            Error::NotFound => Error::InvalidToken,
            e => e,
        })?;
        Ok((Identity { person: view.person.clone(), ..ident }, view))
    }

    /// The person as it is now: follows `merged_into`, finishes any merge it meets. One
    /// query for a person that was never merged.
    pub async fn view(&self, person: &PersonId) -> Result<PersonView, Error> {
        let mut current = person.clone();
        for _ in 0..MAX_HOPS {
            let items = self.store.query(&person::pk(&current), "").await?;
            let head = items.iter().find(|i| Person::is_head(i)).ok_or(Error::NotFound)?;
            let head = Person::from_item(&current, head)?;
            if let Some(next) = head.merged_into {
                current = next;
                continue;
            }
            if let Some(loser) = head.merging {
                self.complete_merge(&current, &loser).await?;
                continue;
            }
            let linked = items
                .iter()
                .filter(|i| Membership::is_membership(i))
                .map(|i| Membership::from_item(&current, i).map(|m| m.linked))
                .collect::<Result<_, _>>()?;
            return Ok(PersonView { person: current, created_millis: head.created_millis, linked });
        }
        Err(Error::Internal("merge chain too long".into()))
    }

    /// Unionid first, then openid, else a new person (ARCHITECTURE.md §1, "unionid first").
    /// Concurrent first logins of one person all end on the same person.
    pub async fn login(
        &self,
        app: &App,
        openid: &OpenId,
        unionid: Option<&UnionId>,
        via: Via,
    ) -> Result<Resolved, Error> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                pause(attempt).await;
            }
            if let Some(ident) = self.identity(&app.appid, openid).await? {
                let (identity, view) = match (unionid, &ident.unionid) {
                    (Some(u), None) if app.open_platform.is_some() => {
                        let view = self.attach_unionid(app, &ident, u).await?;
                        (Identity { unionid: Some(u.clone()), ..ident }, view)
                    }
                    _ => {
                        let view = self.view(&ident.person).await?;
                        (ident, view)
                    }
                };
                return Ok(Resolved {
                    identity: Identity { person: view.person.clone(), ..identity },
                    view,
                    new_person: false,
                });
            }
            let (by_union, dangling) = match (unionid, &app.open_platform) {
                (Some(u), Some(op)) => match self.union_owner(&union::key(op, u)).await? {
                    UnionOwner::Person(v) => (Some(v), None),
                    UnionOwner::Dangling(p) => (None, Some(p)),
                    UnionOwner::Free => (None, None),
                },
                _ => (None, None),
            };
            let now = self.clock.now_millis();
            let unionid = unionid.filter(|_| app.open_platform.is_some());
            let linked = linked_of(app, openid, via, now);
            let mut tx = Tx::new();
            let (membership, view, new_person) = match by_union {
                Some(mut view) => {
                    let membership = self.attach(&mut tx, &view.person, &linked, unionid);
                    view.linked.push(linked);
                    (membership, view, false)
                }
                None => {
                    let person = self.ids.person();
                    tx.add(Person::new(person.clone(), now).create());
                    tx.add(self.identity_of(&linked, &person, unionid).create());
                    let membership = tx.add(Membership { person: person.clone(), linked: linked.clone() }.create());
                    if let (Some(u), Some(op)) = (unionid, &app.open_platform) {
                        tx.extend(union::claim(op, u, &person, dangling.as_ref()));
                    }
                    (membership, PersonView { person, created_millis: now, linked: vec![linked] }, true)
                }
            };
            match tx.commit(self.store).await {
                Ok(()) => {
                    tracing::info!(new_person, appid = %app.appid, via = via.as_str(), "identity linked");
                    metrics::count(if new_person { Counter::NewPerson } else { Counter::Link });
                    let identity = self.identity_of(&view.linked[view.linked.len() - 1], &view.person, unionid);
                    return Ok(Resolved { identity, view, new_person });
                }
                // The person already holds another openid of this app: refuse, never overwrite.
                Err(TxError::Refused(op)) if op == membership && !new_person => {
                    self.record_conflict(&view.person, None, &app.appid, "login").await;
                    return Err(Error::IdentityConflict);
                }
                // Someone else created the identity, person or union first: read again.
                Err(e) if e.is_race() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Links an identity seen in a web-view pass the bridge started to the ticket's person:
    /// attaches it when new, merges when it already names another person — refusing, and
    /// linking nothing, when that would give one person two openids of one app.
    pub async fn link(
        &self,
        app: &App,
        openid: &OpenId,
        unionid: Option<&UnionId>,
        person: &PersonId,
        via: Via,
    ) -> Result<PersonView, Error> {
        let unionid = unionid.filter(|_| app.open_platform.is_some());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                pause(attempt).await;
            }
            let mut mine = self.view(person).await?;
            let (ident, view) = match self.identity(&app.appid, openid).await? {
                Some(ident) => {
                    let theirs = self.view(&ident.person).await?;
                    if theirs.person == mine.person {
                        (ident, mine)
                    } else {
                        match self.merge(mine, theirs).await? {
                            Some(merged) => (ident, merged),
                            None => continue,
                        }
                    }
                }
                None => {
                    let linked = linked_of(app, openid, via, self.clock.now_millis());
                    let mut tx = Tx::new();
                    let membership = self.attach(&mut tx, &mine.person, &linked, None);
                    match tx.commit(self.store).await {
                        Ok(()) => {
                            tracing::info!(appid = %app.appid, via = via.as_str(), "identity linked");
                            metrics::count(Counter::Link);
                        }
                        Err(TxError::Refused(op)) if op == membership => {
                            self.record_conflict(&mine.person, None, &app.appid, "link").await;
                            return Err(Error::IdentityConflict);
                        }
                        Err(e) if e.is_race() => continue,
                        Err(e) => return Err(e.into()),
                    }
                    let ident = self.identity_of(&linked, &mine.person, None);
                    mine.linked.push(linked);
                    (ident, mine)
                }
            };
            return match (unionid, &ident.unionid) {
                (Some(u), None) => self.attach_unionid(app, &ident, u).await,
                _ => Ok(view),
            };
        }
        Err(Error::Busy)
    }

    /// Binds a unionid learnt later (e.g. from encrypted userinfo) to an identity, merging
    /// with the person that unionid already names.
    pub async fn attach_unionid(&self, app: &App, ident: &Identity, unionid: &UnionId) -> Result<PersonView, Error> {
        let Some(op) = &app.open_platform else {
            return self.view(&ident.person).await;
        };
        let ukey = union::key(op, unionid);
        let set_unionid = identity::set_unionid(&ident.appid, &ident.openid, unionid);
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                pause(attempt).await;
            }
            let mine = self.view(&ident.person).await?;
            let prior = match self.union_owner(&ukey).await? {
                UnionOwner::Person(v) => Err(v),
                UnionOwner::Dangling(p) => Ok(Some(p)),
                UnionOwner::Free => Ok(None),
            };
            let theirs = match prior {
                Err(v) => v,
                Ok(prior) => {
                    let mut tx = Tx::new();
                    tx.extend(union::claim(op, unionid, &mine.person, prior.as_ref()));
                    let set = tx.add(set_unionid.clone());
                    match tx.commit(self.store).await {
                        Ok(()) => return Ok(mine),
                        // Another request recorded a unionid on this identity first.
                        Err(TxError::Refused(o)) if o == set => return self.view(&ident.person).await,
                        Err(e) if e.is_race() => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            let merged = if theirs.person == mine.person {
                mine
            } else {
                match self.merge(mine, theirs).await? {
                    Some(v) => v,
                    None => continue,
                }
            };
            match self.store.write(set_unionid.clone()).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => return Ok(merged),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Makes one person of two. `Ok(None)`: another merge got there first; re-read and retry.
    pub async fn merge(&self, a: PersonView, b: PersonView) -> Result<Option<PersonView>, Error> {
        if a.person == b.person {
            return Ok(Some(a));
        }
        let theirs: HashMap<&AppId, &OpenId> = b.linked.iter().map(|l| (&l.appid, &l.openid)).collect();
        if let Some(clash) = a.linked.iter().find(|l| theirs.get(&l.appid).is_some_and(|o| *o != &l.openid)) {
            self.record_conflict(&a.person, Some(&b.person), &clash.appid, "merge").await;
            return Err(Error::IdentityConflict);
        }
        // The smaller person moves; on a tie the younger one (UUIDv7 order).
        let (winner, loser) = if (a.linked.len(), &b.person) > (b.linked.len(), &a.person) { (a, b) } else { (b, a) };
        let mut start = Tx::new();
        start.add(person::start_losing(&loser.person, &winner.person));
        start.add(person::start_absorbing(&winner.person, &loser.person));
        start.add(person::absorbed(&winner.person, &loser.person, self.clock.now_millis()));
        match start.commit(self.store).await {
            Ok(()) => {}
            Err(e) if e.is_race() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(moved = loser.linked.len(), "persons merged");
        metrics::count(Counter::Merge);
        self.complete_merge(&winner.person, &loser.person).await?;
        self.view(&winner.person).await.map(Some)
    }

    /// Moves the loser's memberships to the winner in chunks, then clears the mark. Safe to
    /// run again, and by many readers at once: every step is conditional and idempotent.
    async fn complete_merge(&self, winner: &PersonId, loser: &PersonId) -> Result<(), Error> {
        let rest = self.store.query(&person::pk(loser), crate::items::membership::PREFIX).await?;
        let rest: Vec<Membership> = rest.iter().map(|m| Membership::from_item(loser, m)).collect::<Result<_, _>>()?;
        for chunk in rest.chunks(MOVE_CHUNK) {
            let mut tx = Tx::new();
            for m in chunk {
                self.move_ops(&mut tx, winner, m);
            }
            match tx.commit(self.store).await {
                Ok(()) => {}
                Err(e) if e.is_race() => {
                    for m in chunk {
                        self.move_one(winner, loser, m).await?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        match self.store.write(person::done_absorbing(winner, loser)).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// One membership's move: off the loser, onto the winner, and its identity repointed.
    fn move_ops(&self, tx: &mut Tx, winner: &PersonId, m: &Membership) -> Moves {
        let l = &m.linked;
        Moves {
            off: tx.add(m.delete()),
            on: tx.add(Membership { person: winner.clone(), linked: l.clone() }.create()),
            repoint: tx.add(identity::repoint(&l.appid, &l.openid, winner)),
        }
    }

    async fn move_one(&self, winner: &PersonId, loser: &PersonId, m: &Membership) -> Result<(), Error> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                pause(attempt).await;
            }
            let mut tx = Tx::new();
            let moves = self.move_ops(&mut tx, winner, m);
            match tx.commit(self.store).await {
                Ok(()) => return Ok(()),
                // Already moved by someone else.
                Err(TxError::Refused(op)) if op == moves.off => return Ok(()),
                Err(TxError::Refused(op)) if op == moves.on => {
                    // The winner gained another openid of this app since the merge began:
                    // keep both as they are, and say so.
                    self.record_conflict(winner, Some(loser), &m.linked.appid, "merge_move").await;
                    return Ok(());
                }
                // The identity was erased meanwhile: drop the stale membership only.
                Err(TxError::Refused(op)) if op == moves.repoint => match self.store.write(m.delete()).await {
                    Ok(()) | Err(StoreError::ConditionFailed { .. }) => return Ok(()),
                    Err(e) => return Err(e.into()),
                },
                Err(TxError::Refused(_)) | Err(TxError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Adds a new identity to an existing, unmerged person; the handle is the membership,
    /// refused when the person already holds another openid of this app.
    fn attach(&self, tx: &mut Tx, person: &PersonId, linked: &Linked, unionid: Option<&UnionId>) -> crate::items::Op {
        tx.add(person::check_unmerged(person));
        tx.add(self.identity_of(linked, person, unionid).create());
        tx.add(Membership { person: person.clone(), linked: linked.clone() }.create())
    }

    fn identity_of(&self, l: &Linked, person: &PersonId, unionid: Option<&UnionId>) -> Identity {
        Identity {
            appid: l.appid.clone(),
            openid: l.openid.clone(),
            person: person.clone(),
            unionid: unionid.cloned(),
            kind: l.kind,
            owner: l.owner.clone(),
            via: l.via,
            at_millis: l.at_millis,
        }
    }

    /// A refused link is kept for operators (and logged without ids of the people involved
    /// beyond the app).
    pub(crate) async fn record_conflict(
        &self,
        person: &PersonId,
        other: Option<&PersonId>,
        appid: &AppId,
        during: &str,
    ) {
        let at_millis = self.clock.now_millis();
        let w = conflict::Conflict { person, other, appid, during, at_millis }.record(&self.ids.token());
        if let Err(e) = self.store.write(w).await {
            tracing::error!(error = %e, "could not record an identity conflict");
        }
        tracing::warn!(appid = %appid, during, "identity conflict refused");
        metrics::count(Counter::Conflict);
    }

    /// Every item of a person's partition (memberships, marks, the person item).
    pub(crate) async fn partition(&self, person: &PersonId) -> Result<Vec<Item>, Error> {
        Ok(self.store.query(&person::pk(person), "").await?)
    }
}

/// The handles of one membership's move.
struct Moves {
    off: crate::items::Op,
    on: crate::items::Op,
    repoint: crate::items::Op,
}

/// The SK of a partition item (every item has one).
pub(crate) fn sk(it: &Item) -> Option<&str> {
    it.s("SK")
}

#[cfg(test)]
mod tests;
