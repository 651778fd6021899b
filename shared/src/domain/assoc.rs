//! Who is who: resolving an app identity to a person, linking, attaching unionids, merging.
//!
//! Invariants, held by conditional writes rather than by locks:
//! - an (app, openid) belongs to exactly one person (`ID#` item, created only if no one holds it);
//! - a person has at most one openid per app (membership key `P#person / A#appid`);
//! - a unionid names at most one person (`U#` item, created only if absent);
//! - a merged person keeps `merged_into`, so every old pointer still resolves; a merge in
//!   progress is marked on the survivor (`merging`) and any reader finishes it, so a merge
//!   that stops half-way stays correct and is never bounded by the transaction size;
//! - a merge starts only if neither person's memberships changed since they were read (a
//!   version on the person item, bumped by every attach, merge and unlink);
//! - a link is all or nothing: identities seen together, and their unionids, are checked
//!   together and attached in one transaction, so a refused link leaves no trace.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId, UnionId};
use crate::items::identity::{self, Found, Identity};
use crate::items::membership::{self, Linked, Membership};
use crate::items::person::{self, Person};
use crate::items::{conflict, union, Op, Tx, TxError};
use crate::metrics::{self, Counter};
use crate::model::{Owner, Via};
use crate::ports::{Clock, Ids};
use crate::registry::App;
use crate::store::{Item, ItemExt, Key, Store, StoreError, Write};
use crate::tokens::Verified;

/// How many times a flow re-reads and retries after losing a race.
const ATTEMPTS: u32 = 8;
/// Memberships moved per transaction (3 writes each, within DynamoDB's 100).
const MOVE_CHUNK: usize = 30;
/// A `merged_into` chain is followed this far at most; chains are compressed as they are read,
/// so only a cycle (which no write makes) could reach it.
const MAX_HOPS: usize = 10_000;

/// A person as it is now (always a root: never merged into another).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonView {
    pub person: PersonId,
    pub created_millis: i64,
    /// The person item's version tag, as read with these memberships.
    pub version: Option<String>,
    pub linked: Vec<Linked>,
    /// Persons this one is never joined to (an operator unlinked an identity it now holds).
    pub never: Vec<PersonId>,
}

impl PersonView {
    pub fn has_app(&self, appid: &AppId) -> bool {
        self.linked.iter().any(|l| &l.appid == appid)
    }

    fn openid_of(&self, appid: &AppId) -> Option<&OpenId> {
        self.linked.iter().find(|l| &l.appid == appid).map(|l| &l.openid)
    }
}

#[derive(Debug)]
pub struct Resolved {
    pub identity: Identity,
    pub view: PersonView,
    pub new_person: bool,
}

/// The login views a change of `owners`' links makes stale: the identities of those owners,
/// and every identity when the platform's change (the pivot is the platform's). A person has
/// a few apps of an owner; the platform's links change once or twice in a person's life. The
/// first [`STALE_VIEWS_IN_TX`] go in the change's own transaction, the rest right after it
/// ([`Assoc::forget_rest`]); a view missed by a crash in between expires within a day.
/// The apps being added are left out: the same transaction writes their identities.
pub(crate) fn stale_views(view: &PersonView, owners: &[&Owner], adding: &[&AppId]) -> Vec<Write> {
    let all = owners.iter().any(|o| o.is_platform());
    view.linked
        .iter()
        .filter(|l| (all || owners.contains(&&l.owner)) && !adding.contains(&&l.appid))
        .take(STALE_VIEWS_IN_TX)
        .map(|l| identity::forget_login_view(&l.appid, &l.openid))
        .collect()
}

const STALE_VIEWS_IN_TX: usize = 60;

impl Assoc<'_> {
    /// The stale views [`stale_views`] left out of the transaction.
    pub(crate) async fn forget_rest(&self, view: &PersonView, owners: &[&Owner]) {
        let all = owners.iter().any(|o| o.is_platform());
        for l in view.linked.iter().filter(|l| all || owners.contains(&&l.owner)).skip(STALE_VIEWS_IN_TX) {
            if let Err(e) = self.store.write(identity::forget_login_view(&l.appid, &l.openid)).await {
                if !matches!(e, StoreError::ConditionFailed { .. }) {
                    tracing::warn!(error = %e, "could not drop a stale login view");
                }
            }
        }
    }
}

/// An identity WeChat showed, to be linked to a person.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    pub app: &'a App,
    pub openid: &'a OpenId,
    pub unionid: Option<&'a UnionId>,
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

fn identity_of(l: &Linked, person: &PersonId, unionid: Option<&UnionId>, unlinked_from: Option<&PersonId>) -> Identity {
    Identity {
        appid: l.appid.clone(),
        openid: l.openid.clone(),
        person: person.clone(),
        unionid: unionid.cloned(),
        kind: l.kind,
        owner: l.owner.clone(),
        via: l.via,
        at_millis: l.at_millis,
        unlinked_from: unlinked_from.cloned(),
    }
}

/// The first app that would hold two openids if these identities were one person.
fn clash<'x>(sets: impl IntoIterator<Item = (&'x AppId, &'x OpenId)>) -> Option<AppId> {
    let mut seen: HashMap<&AppId, &OpenId> = HashMap::new();
    for (appid, openid) in sets {
        if let Some(o) = seen.insert(appid, openid) {
            if o != openid {
                return Some(appid.clone());
            }
        }
    }
    None
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

    /// The root a person id leads to now, or None when it leads nowhere (erased).
    async fn root_of(&self, person: &PersonId) -> Result<Option<PersonId>, Error> {
        match self.view(person).await {
            Ok(v) => Ok(Some(v.person)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `owner` (a root) is the person `ident` was unlinked from: an operator's unlink
    /// is not undone by a unionid.
    async fn refused_by_unlink(&self, unlinked_from: Option<&PersonId>, owner: &PersonId) -> Result<bool, Error> {
        match unlinked_from {
            Some(from) => Ok(self.root_of(from).await?.as_ref() == Some(owner)),
            None => Ok(false),
        }
    }

    pub async fn lookup(&self, appid: &AppId, openid: &OpenId) -> Result<Found, Error> {
        Identity::found(appid, openid, self.store.get(&identity::key(appid, openid)).await?.as_ref())
    }

    pub async fn identity(&self, appid: &AppId, openid: &OpenId) -> Result<Option<Identity>, Error> {
        Ok(self.lookup(appid, openid).await?.live())
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

    /// The person as it is now: follows `merged_into` (and points every person passed straight
    /// at the root), finishes any merge it meets. One query for a person never merged.
    pub async fn view(&self, person: &PersonId) -> Result<PersonView, Error> {
        self.resolve(person, false).await
    }

    /// As [`Assoc::view`], but reads the person item before its memberships, so the version
    /// is never newer than the memberships read with it: what a merge decision needs.
    pub(crate) async fn settled(&self, person: &PersonId) -> Result<PersonView, Error> {
        self.resolve(person, true).await
    }

    async fn resolve(&self, person: &PersonId, settled: bool) -> Result<PersonView, Error> {
        let mut current = person.clone();
        let mut passed: Vec<(PersonId, PersonId)> = Vec::new();
        for _ in 0..MAX_HOPS {
            let (head, items) = if settled {
                let head = self.store.get(&person::key(&current)).await?.ok_or(Error::NotFound)?;
                let head = Person::from_item(&current, &head)?;
                let items = match head.merged_into.is_some() || head.merging.is_some() {
                    true => Vec::new(),
                    false => self.store.query(&person::pk(&current), "").await?,
                };
                (head, items)
            } else {
                let items = self.store.query(&person::pk(&current), "").await?;
                let head = items.iter().find(|i| Person::is_head(i)).ok_or(Error::NotFound)?;
                (Person::from_item(&current, head)?, items)
            };
            if let Some(next) = head.merged_into {
                passed.push((current, next.clone()));
                current = next;
                continue;
            }
            if let Some(loser) = head.merging {
                self.complete_merge(&current, &loser).await?;
                continue;
            }
            self.compress(&passed, &current).await;
            let linked = items
                .iter()
                .filter(|i| Membership::is_membership(i))
                .map(|i| Membership::from_item(&current, i).map(|m| m.linked))
                .collect::<Result<_, _>>()?;
            let never = items.iter().filter_map(|i| sk(i).and_then(person::never_of)).collect();
            return Ok(PersonView {
                person: current,
                created_millis: head.created_millis,
                version: head.version,
                linked,
                never,
            });
        }
        Err(Error::Internal("merge chain too long".into()))
    }

    /// Points every person of a followed chain (but the last hop's) straight at the root.
    async fn compress(&self, passed: &[(PersonId, PersonId)], root: &PersonId) {
        for (p, next) in passed.iter().filter(|(_, next)| next != root) {
            if let Err(e) = self.store.write(person::compress(p, next, root)).await {
                if !matches!(e, StoreError::ConditionFailed { .. }) {
                    tracing::warn!(error = %e, "could not shorten a merge chain");
                }
            }
        }
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
        self.login_from(app, openid, unionid, via, None).await
    }

    /// As [`Assoc::login`], starting from the identity item as the caller just read it (a
    /// retry reads it again).
    pub async fn login_from(
        &self,
        app: &App,
        openid: &OpenId,
        unionid: Option<&UnionId>,
        via: Via,
        mut read: Option<Found>,
    ) -> Result<Resolved, Error> {
        let unionid = unionid.filter(|_| app.open_platform.is_some());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                pause(attempt).await;
            }
            let found = match read.take() {
                Some(f) => f,
                None => self.lookup(&app.appid, openid).await?,
            };
            let unlinked_from = found.unlinked_from().cloned();
            if let Found::Live(ident) = found {
                let (identity, view) = match (unionid, &ident.unionid) {
                    (Some(u), None) => {
                        let (view, attached) = self.attach_unionid(app, &ident, u).await?;
                        (Identity { unionid: attached.then(|| u.clone()), ..ident }, view)
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
            // Unionid first — unless it names the person an operator unlinked this from.
            let (mut by_union, mut dangling, mut claim) = (None, None, unionid);
            if let (Some(u), Some(op)) = (unionid, &app.open_platform) {
                match self.union_owner(&union::key(op, u)).await? {
                    UnionOwner::Person(v) if self.refused_by_unlink(unlinked_from.as_ref(), &v.person).await? => {
                        claim = None;
                    }
                    UnionOwner::Person(v) => by_union = Some(v),
                    UnionOwner::Dangling(p) => dangling = Some(p),
                    UnionOwner::Free => {}
                }
            }
            let now = self.clock.now_millis();
            let linked = linked_of(app, openid, via, now);
            let mut tx = Tx::new();
            let (membership, view, new_person) = match by_union {
                Some(mut view) => {
                    let m = self.attach(&mut tx, &view, &linked, unionid, unlinked_from.as_ref());
                    view.linked.push(linked);
                    (m, view, false)
                }
                None => {
                    let person = self.ids.person();
                    tx.add(Person::new(person.clone(), now).create());
                    tx.add(identity_of(&linked, &person, claim, unlinked_from.as_ref()).create());
                    let m = tx.add(Membership { person: person.clone(), linked: linked.clone() }.create());
                    if let Some(f) = &unlinked_from {
                        tx.add(person::never(&person, f));
                    }
                    if let (Some(u), Some(op)) = (claim, &app.open_platform) {
                        tx.extend(union::claim(op, u, &person, dangling.as_ref()));
                    }
                    let never = unlinked_from.iter().cloned().collect();
                    let view = PersonView { person, created_millis: now, version: None, linked: vec![linked], never };
                    (m, view, true)
                }
            };
            match tx.commit(self.store).await {
                Ok(()) => {
                    if !new_person {
                        self.forget_rest(&view, &[&app.owner]).await;
                    }
                    tracing::info!(new_person, appid = %app.appid, via = via.as_str(), "identity linked");
                    metrics::count(if new_person { Counter::NewPerson } else { Counter::Link });
                    let claimed = if new_person { claim } else { unionid };
                    let last = &view.linked[view.linked.len() - 1];
                    let identity = identity_of(last, &view.person, claimed, unlinked_from.as_ref());
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

    /// Links identities WeChat showed together (a confirmed web-view pass, a confirmed scan) to
    /// `person`, as one unit: new ones are attached with their unionids in one transaction,
    /// ones that already name another person (by openid or unionid) are merged in. If any app
    /// would end with two openids, it is refused before anything is written.
    pub async fn link_all(&self, person: &PersonId, seen: &[Seen<'_>], via: Via) -> Result<PersonView, Error> {
        'attempt: for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                pause(attempt).await;
            }
            let mine = self.settled(person).await?;
            let mut others: Vec<PersonView> = Vec::new();
            let mut fresh: Vec<Fresh<'_>> = Vec::new();
            let mut learnt: Vec<(Identity, &UnionId, &App)> = Vec::new();
            for s in seen {
                let unionid = s.unionid.filter(|_| s.app.open_platform.is_some());
                let found = self.lookup(&s.app.appid, s.openid).await?;
                let unlinked_from = found.unlinked_from().cloned();
                // Who the unionid names, when it is not `mine` and may join: merged in too.
                let mut owner = None;
                let mut prior = None;
                let mut apart = false;
                if let (Some(u), Some(op)) = (unionid, &s.app.open_platform) {
                    match self.union_owner(&union::key(op, u)).await? {
                        UnionOwner::Person(v) if v.person == mine.person => owner = Some(v.person),
                        UnionOwner::Person(v)
                            if self.refused_by_unlink(unlinked_from.as_ref(), &v.person).await?
                                || self.kept_apart(&mine, &v).await? =>
                        {
                            apart = true;
                        }
                        UnionOwner::Person(v) => owner = Some(v.person),
                        UnionOwner::Dangling(p) => prior = Some(p),
                        UnionOwner::Free => {}
                    }
                }
                let mut join = |v: PersonView| {
                    if v.person != mine.person && !others.iter().any(|o| o.person == v.person) {
                        others.push(v);
                    }
                };
                if let Some(o) = &owner {
                    join(self.settled(o).await?);
                }
                match found {
                    Found::Live(ident) => {
                        let theirs = self.settled(&ident.person).await?;
                        if theirs.person != mine.person && self.kept_apart(&mine, &theirs).await? {
                            // The identity is another person's whom an operator kept apart: refused.
                            self.record_conflict(&mine.person, Some(&theirs.person), &s.app.appid, "unlinked").await;
                            return Err(Error::IdentityConflict);
                        }
                        join(theirs);
                        if let (Some(u), None) = (unionid, &ident.unionid) {
                            learnt.push((ident, u, s.app));
                        }
                    }
                    Found::Unlinked(_) | Found::Missing
                        if self.refused_by_unlink(unlinked_from.as_ref(), &mine.person).await? =>
                    {
                        // An operator unlinked this identity from this very person.
                        self.record_conflict(&mine.person, None, &s.app.appid, "unlinked").await;
                        return Err(Error::IdentityConflict);
                    }
                    Found::Unlinked(_) | Found::Missing => fresh.push(Fresh {
                        seen: *s,
                        // Recorded on the identity when the person will own it; claimed when free.
                        unionid: unionid.filter(|_| !apart && (owner.is_some() || claimable(&owner, &prior, unionid))),
                        claim: unionid.filter(|_| !apart && owner.is_none() && claimable(&owner, &prior, unionid)),
                        prior,
                        unlinked_from,
                    }),
                }
            }
            let all = mine
                .linked
                .iter()
                .chain(others.iter().flat_map(|o| o.linked.iter()))
                .map(|l| (&l.appid, &l.openid))
                .chain(fresh.iter().map(|f| (&f.seen.app.appid, f.seen.openid)));
            if let Some(appid) = clash(all) {
                let other = others.iter().find(|o| o.has_app(&appid)).map(|o| &o.person);
                self.record_conflict(&mine.person, other, &appid, "link").await;
                return Err(Error::IdentityConflict);
            }
            // Every pair of the persons to be one, before any merge is written.
            for (i, a) in others.iter().enumerate() {
                for b in &others[i + 1..] {
                    if self.kept_apart(a, b).await? {
                        if let Some(s) = seen.first() {
                            self.record_conflict(&a.person, Some(&b.person), &s.app.appid, "unlinked").await;
                        }
                        return Err(Error::IdentityConflict);
                    }
                }
            }
            // One claim per unionid (two accounts of one open platform may show the same one).
            let mut claimed: Vec<(&crate::ids::OpenPlatformId, &UnionId)> = Vec::new();
            for f in fresh.iter_mut() {
                if let (Some(u), Some(op)) = (f.claim, &f.seen.app.open_platform) {
                    if claimed.contains(&(op, u)) {
                        f.claim = None;
                    } else {
                        claimed.push((op, u));
                    }
                }
            }
            let mut merged = mine;
            for o in others {
                match self.merge(merged.clone(), o).await? {
                    Some(v) => merged = v,
                    None => continue 'attempt,
                }
            }
            if !fresh.is_empty() {
                let now = self.clock.now_millis();
                let mut tx = Tx::new();
                tx.add(person::bump_from(&merged.person, merged.version.as_deref(), &self.ids.token()));
                let owners: Vec<&Owner> = fresh.iter().map(|f| &f.seen.app.owner).collect();
                let adding: Vec<&AppId> = fresh.iter().map(|f| &f.seen.app.appid).collect();
                tx.extend(stale_views(&merged, &owners, &adding));
                let mut added = Vec::new();
                let mut nevers: Vec<PersonId> = Vec::new();
                for f in &fresh {
                    let l = linked_of(f.seen.app, f.seen.openid, via, now);
                    tx.add(identity_of(&l, &merged.person, f.unionid, f.unlinked_from.as_ref()).create());
                    tx.add(Membership { person: merged.person.clone(), linked: l.clone() }.create());
                    if let Some(from) = f.unlinked_from.as_ref().filter(|from| !nevers.contains(from)) {
                        tx.add(person::never(&merged.person, from));
                        nevers.push(from.clone());
                    }
                    if let (Some(u), Some(op)) = (f.claim, &f.seen.app.open_platform) {
                        tx.extend(union::claim(op, u, &merged.person, f.prior.as_ref()));
                    }
                    added.push(l);
                }
                match tx.commit(self.store).await {
                    Ok(()) => {
                        self.forget_rest(&merged, &owners).await;
                        for l in &added {
                            tracing::info!(appid = %l.appid, via = via.as_str(), "identity linked");
                            metrics::count(Counter::Link);
                        }
                        merged.linked.extend(added);
                    }
                    // Someone attached, created or claimed meanwhile: plan again from fresh reads.
                    Err(e) if e.is_race() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            for (ident, u, app) in learnt {
                let ident = Identity { person: merged.person.clone(), ..ident };
                merged = self.attach_unionid(app, &ident, u).await?.0;
            }
            return Ok(merged);
        }
        Err(Error::Busy)
    }

    /// Links one identity to `person` (see [`Assoc::link_all`]).
    pub async fn link(
        &self,
        app: &App,
        openid: &OpenId,
        unionid: Option<&UnionId>,
        person: &PersonId,
        via: Via,
    ) -> Result<PersonView, Error> {
        self.link_all(person, &[Seen { app, openid, unionid }], via).await
    }

    /// Binds a unionid learnt later (e.g. from encrypted userinfo) to an identity, merging
    /// with the person that unionid already names — unless an operator unlinked this identity
    /// from that person. Also answers whether the identity now carries the unionid.
    pub async fn attach_unionid(
        &self,
        app: &App,
        ident: &Identity,
        unionid: &UnionId,
    ) -> Result<(PersonView, bool), Error> {
        let Some(op) = &app.open_platform else {
            return Ok((self.view(&ident.person).await?, false));
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
                Err(v)
                    if v.person != mine.person
                        && (self.refused_by_unlink(ident.unlinked_from.as_ref(), &v.person).await?
                            || self.kept_apart(&mine, &v).await?) =>
                {
                    return Ok((mine, false));
                }
                Err(v) => v,
                Ok(prior) => {
                    let mut tx = Tx::new();
                    tx.extend(union::claim(op, unionid, &mine.person, prior.as_ref()));
                    let set = tx.add(set_unionid.clone());
                    match tx.commit(self.store).await {
                        Ok(()) => return Ok((mine, true)),
                        // Another request recorded a unionid on this identity first.
                        Err(TxError::Refused(o)) if o == set => return Ok((self.view(&ident.person).await?, false)),
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
                Ok(()) => return Ok((merged, true)),
                Err(StoreError::ConditionFailed { .. }) => return Ok((merged, false)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Makes one person of two. `Ok(None)`: either changed since it was read (another merge,
    /// an attach): re-read and retry.
    pub async fn merge(&self, a: PersonView, b: PersonView) -> Result<Option<PersonView>, Error> {
        if a.person == b.person {
            return Ok(Some(a));
        }
        // Decide on reads whose versions are no newer than their memberships.
        let (a, b) = (self.settled(&a.person).await?, self.settled(&b.person).await?);
        if a.person == b.person {
            return Ok(Some(a));
        }
        if let Some(appid) = clash(a.linked.iter().chain(&b.linked).map(|l| (&l.appid, &l.openid))) {
            self.record_conflict(&a.person, Some(&b.person), &appid, "merge").await;
            return Err(Error::IdentityConflict);
        }
        if self.kept_apart(&a, &b).await? {
            if let Some(l) = b.linked.first() {
                self.record_conflict(&a.person, Some(&b.person), &l.appid, "unlinked").await;
            }
            return Err(Error::IdentityConflict);
        }
        // The smaller person moves; on a tie the younger one (UUIDv7 order).
        let (winner, loser) = if (a.linked.len(), &b.person) > (b.linked.len(), &a.person) { (a, b) } else { (b, a) };
        let mut start = Tx::new();
        let tag = self.ids.token();
        start.add(person::start_losing(&loser.person, loser.version.as_deref(), &winner.person, &tag));
        start.add(person::start_absorbing(&winner.person, winner.version.as_deref(), &loser.person, &tag));
        start.add(person::absorbed(&winner.person, &loser.person, self.clock.now_millis()));
        // The loser's identities answer logins from views of a person that is going away: they
        // go now (those past a transaction's worth as they are moved).
        start.extend(stale_views(&loser, &[&Owner::Platform], &[]));
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
        let rest = self.store.query(&person::pk(loser), membership::PREFIX).await?;
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
        // The survivor's logins answer from views the move made stale (its identities and the
        // moved ones alike); before the merge is marked done, so a retry does this again.
        for it in self.store.query(&person::pk(winner), membership::PREFIX).await? {
            let m = Membership::from_item(winner, &it)?;
            match self.store.write(identity::forget_login_view(&m.linked.appid, &m.linked.openid)).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // What keeps the loser apart from others keeps the survivor apart from them too.
        for it in self.store.query(&person::pk(loser), person::NEVER_PREFIX).await? {
            if let Some(other) = sk(&it).and_then(person::never_of) {
                self.store.write(person::never(winner, &other)).await?;
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
                    // The winner holds another openid of this app (the versions should have
                    // made this impossible): this identity must not resolve to the winner
                    // through the loser, so it is dropped, and the refusal recorded.
                    self.record_conflict(winner, Some(loser), &m.linked.appid, "merge_move").await;
                    let mut drop = Tx::new();
                    drop.add(m.delete());
                    drop.add(identity::delete(&m.linked.appid, &m.linked.openid));
                    return match drop.commit(self.store).await {
                        Ok(()) | Err(TxError::Refused(_)) => Ok(()),
                        Err(e) => Err(e.into()),
                    };
                }
                // The identity was erased meanwhile: drop the stale membership only.
                Err(TxError::Refused(op)) if op == moves.repoint => {
                    return match self.store.write(m.delete()).await {
                        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
                        Err(e) => Err(e.into()),
                    };
                }
                Err(TxError::Refused(_)) | Err(TxError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Adds a new identity to an existing, unmerged person, as read; the handle is the
    /// membership, refused when the person already holds another openid of this app.
    fn attach(
        &self,
        tx: &mut Tx,
        view: &PersonView,
        linked: &Linked,
        unionid: Option<&UnionId>,
        unlinked_from: Option<&PersonId>,
    ) -> Op {
        tx.add(person::bump_from(&view.person, view.version.as_deref(), &self.ids.token()));
        tx.extend(stale_views(view, &[&linked.owner], &[&linked.appid]));
        tx.add(identity_of(linked, &view.person, unionid, unlinked_from).create());
        if let Some(f) = unlinked_from {
            tx.add(person::never(&view.person, f));
        }
        tx.add(Membership { person: view.person.clone(), linked: linked.clone() }.create())
    }

    /// Whether an operator's unlink keeps `a` and `b` apart (either names the other as a
    /// person it is never joined to, as that person is now).
    async fn kept_apart(&self, a: &PersonView, b: &PersonView) -> Result<bool, Error> {
        for (x, y) in [(a, b), (b, a)] {
            for n in &x.never {
                if self.root_of(n).await?.as_ref() == Some(&y.person) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// A refused link is kept for operators, under both persons (and logged without ids of
    /// the people involved beyond the app).
    pub(crate) async fn record_conflict(
        &self,
        person: &PersonId,
        other: Option<&PersonId>,
        appid: &AppId,
        during: &str,
    ) {
        let at_millis = self.clock.now_millis();
        let writes = conflict::Conflict { person, other, appid, during, at_millis }.record(&self.ids.token());
        for w in writes {
            if let Err(e) = self.store.write(w).await {
                tracing::error!(error = %e, "could not record an identity conflict");
            }
        }
        tracing::warn!(appid = %appid, during, "identity conflict refused");
        metrics::count(Counter::Conflict);
    }

    /// Every item of a person's partition (memberships, marks, the person item).
    pub(crate) async fn partition(&self, person: &PersonId) -> Result<Vec<Item>, Error> {
        Ok(self.store.query(&person::pk(person), "").await?)
    }

    /// The openid `person` (a root) holds for `appid`, if any.
    pub async fn openid_in(&self, person: &PersonId, appid: &AppId) -> Result<Option<OpenId>, Error> {
        Ok(self.view(person).await?.openid_of(appid).cloned())
    }
}

/// An identity of a link that no one holds yet.
struct Fresh<'s> {
    seen: Seen<'s>,
    /// Recorded on the identity.
    unionid: Option<&'s UnionId>,
    /// Claimed for the person (free, or left by an erased person).
    claim: Option<&'s UnionId>,
    prior: Option<PersonId>,
    unlinked_from: Option<PersonId>,
}

/// A unionid nobody holds (or an erased person held) may be claimed; one refused by an
/// unlink is neither claimed nor recorded.
fn claimable(owner: &Option<PersonId>, prior: &Option<PersonId>, unionid: Option<&UnionId>) -> bool {
    unionid.is_some() && (owner.is_none() || prior.is_some())
}

/// The handles of one membership's move.
struct Moves {
    off: Op,
    on: Op,
    repoint: Op,
}

/// The SK of a partition item (every item has one).
pub(crate) fn sk(it: &Item) -> Option<&str> {
    it.s("SK")
}

#[cfg(test)]
mod tests;
