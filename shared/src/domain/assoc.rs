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

use crate::domain::keys;
use crate::error::Error;
use crate::ids::{AppId, OpenId, OpenPlatformId, PersonId, UnionId};
use crate::metrics::{self, Counter};
use crate::ports::{Clock, Ids};
use crate::registry::App;
use crate::store::{item, s, Attr, Check, Item, ItemExt, Store, StoreError, Write};

/// How many times a flow re-reads and retries after losing a race.
const ATTEMPTS: u32 = 8;
/// Memberships moved per transaction (3 writes each, within DynamoDB's 100).
const MOVE_CHUNK: usize = 30;
/// Longest `merged_into` chain followed before giving up (chains are short: each merge
/// redirects to a root).
const MAX_HOPS: usize = 32;

/// The evidence a link rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `jscode2session` answered this openid for a wx.login code.
    Jscode2session,
    /// WeChat-encrypted userinfo named the unionid.
    Userinfo,
    /// An official account's web authorization, in a web-view pass the bridge started.
    WebAuth,
    /// A scan of a scene QR code the bridge made, pushed by WeChat.
    Scene,
    /// A login link the bridge signed, redeemed by the site.
    LoginLink,
    /// A mobile app's, website's or official account's OAuth code, exchanged by the bridge.
    OpenLogin,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Jscode2session => "jscode2session",
            Via::Userinfo => "userinfo",
            Via::WebAuth => "web_auth",
            Via::Scene => "scene",
            Via::LoginLink => "login_link",
            Via::OpenLogin => "open_login",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub appid: AppId,
    pub openid: OpenId,
    /// As stored; may name a person merged since — resolve with [`Assoc::view`].
    pub person: PersonId,
    pub unionid: Option<UnionId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linked {
    pub appid: AppId,
    pub openid: OpenId,
    pub kind: String,
    pub owner: String,
    pub via: String,
    pub at_millis: i64,
}

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

pub struct Assoc<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn Ids,
}

fn parse_identity(it: &Item, appid: &AppId, openid: &OpenId) -> Result<Identity, Error> {
    let person = it
        .s("person")
        .and_then(|p| PersonId::parse(p).ok())
        .ok_or_else(|| Error::Internal("identity item without a person".into()))?;
    Ok(Identity {
        appid: appid.clone(),
        openid: openid.clone(),
        person,
        unionid: it.s("unionid").and_then(|u| UnionId::parse(u).ok()),
    })
}

fn parse_linked(it: &Item) -> Option<Linked> {
    let appid = AppId::parse(it.s("SK")?.strip_prefix(keys::MEMBERSHIP_PREFIX)?).ok()?;
    Some(Linked {
        appid,
        openid: OpenId::parse(it.s("openid")?).ok()?,
        kind: it.s("kind").unwrap_or_default().to_owned(),
        owner: it.s("owner").unwrap_or_default().to_owned(),
        via: it.s("via").unwrap_or_default().to_owned(),
        at_millis: it.n("at").unwrap_or_default(),
    })
}

fn person_ref(it: &Item, attr: &str) -> Option<PersonId> {
    it.s(attr).and_then(|p| PersonId::parse(p).ok())
}

/// Makes `person` the owner of a unionid (taking it over from an erased person if `prior`),
/// and marks it on the person so erasing the person finds it.
fn claim_union(op: &OpenPlatformId, unionid: &UnionId, person: &PersonId, prior: Option<&PersonId>) -> Vec<Write> {
    let cond = match prior {
        Some(p) => vec![Check::Eq("person".into(), s(p.as_str()))],
        None => vec![Check::NotExists],
    };
    vec![
        Write::Put { item: item(&keys::union(op, unionid), [("person", s(person.as_str()))]), cond },
        Write::Put { item: item(&keys::union_mark(person, op, unionid), []), cond: vec![] },
    ]
}

/// The person item exists and is neither merged away nor absorbing another person.
fn unmerged() -> Vec<Check> {
    vec![Check::Exists, Check::Absent("merged_into".into()), Check::Absent("merging".into())]
}

/// Contention is settled by retrying after a short, growing, jittered pause.
async fn pause(attempt: u32) {
    let jitter = rand::random::<u64>() % 10;
    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter)).await;
}

impl<'a> Assoc<'a> {
    async fn union_owner(&self, key: &crate::store::Key) -> Result<UnionOwner, Error> {
        let Some(p) = self.store.get(key).await?.and_then(|it| person_ref(&it, "person")) else {
            return Ok(UnionOwner::Free);
        };
        match self.view(&p).await {
            Ok(v) => Ok(UnionOwner::Person(v)),
            Err(Error::NotFound) => Ok(UnionOwner::Dangling(p)),
            Err(e) => Err(e),
        }
    }

    pub async fn identity(&self, appid: &AppId, openid: &OpenId) -> Result<Option<Identity>, Error> {
        match self.store.get(&keys::identity(appid, openid)).await? {
            Some(it) => Ok(Some(parse_identity(&it, appid, openid)?)),
            None => Ok(None),
        }
    }

    /// The person as it is now: follows `merged_into`, finishes any merge it meets. One
    /// query for a person that was never merged.
    pub async fn view(&self, person: &PersonId) -> Result<PersonView, Error> {
        let mut current = person.clone();
        for _ in 0..MAX_HOPS {
            let items = self.store.query(&keys::person_pk(&current), "").await?;
            let head = items.iter().find(|i| i.s("SK") == Some("P")).ok_or(Error::NotFound)?;
            if let Some(next) = person_ref(head, "merged_into") {
                current = next;
                continue;
            }
            if let Some(loser) = person_ref(head, "merging") {
                self.complete_merge(&current, &loser).await?;
                continue;
            }
            let linked = items
                .iter()
                .filter(|i| i.s("SK").is_some_and(|s| s.starts_with(keys::MEMBERSHIP_PREFIX)))
                .filter_map(parse_linked)
                .collect();
            return Ok(PersonView { person: current, created_millis: head.n("created").unwrap_or_default(), linked });
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
                (Some(u), Some(op)) => match self.union_owner(&keys::union(op, u)).await? {
                    UnionOwner::Person(v) => (Some(v), None),
                    UnionOwner::Dangling(p) => (None, Some(p)),
                    UnionOwner::Free => (None, None),
                },
                _ => (None, None),
            };
            let now = self.clock.now_millis();
            let (ops, view, new_person) = match by_union {
                Some(mut view) => {
                    let ops = self.attach_ops(app, openid, &view.person, unionid, via, now);
                    view.linked.push(self.linked(app, openid, via, now));
                    (ops, view, false)
                }
                None => {
                    let person = self.ids.person();
                    let mut ops = vec![
                        Write::Put {
                            item: item(&keys::person(&person), [("created", Attr::N(now))]),
                            cond: vec![Check::NotExists],
                        },
                        self.put_identity(app, openid, &person, unionid, via, now),
                        self.put_membership(app, openid, &person, via, now),
                    ];
                    if let (Some(u), Some(op)) = (unionid, &app.open_platform) {
                        ops.extend(claim_union(op, u, &person, dangling.as_ref()));
                    }
                    let view =
                        PersonView { person, created_millis: now, linked: vec![self.linked(app, openid, via, now)] };
                    (ops, view, true)
                }
            };
            match self.store.transact(ops).await {
                Ok(()) => {
                    let identity = Identity {
                        appid: app.appid.clone(),
                        openid: openid.clone(),
                        person: view.person.clone(),
                        unionid: unionid.filter(|_| app.open_platform.is_some()).cloned(),
                    };
                    tracing::info!(new_person, appid = %app.appid, via = via.as_str(), "identity linked");
                    metrics::count(if new_person { Counter::NewPerson } else { Counter::Link });
                    return Ok(Resolved { identity, view, new_person });
                }
                // The person already holds another openid of this app: refuse, never overwrite.
                Err(StoreError::ConditionFailed { index: 2 }) if !new_person => {
                    self.record_conflict(&view.person, None, &app.appid, "login").await;
                    return Err(Error::IdentityConflict);
                }
                // Someone else created the identity, person or union first: read again.
                Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => continue,
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
                    let now = self.clock.now_millis();
                    match self.store.transact(self.attach_ops(app, openid, &mine.person, None, via, now)).await {
                        Ok(()) => {
                            tracing::info!(appid = %app.appid, via = via.as_str(), "identity linked");
                            metrics::count(Counter::Link);
                            mine.linked.push(self.linked(app, openid, via, now));
                        }
                        Err(StoreError::ConditionFailed { index: 2 }) => {
                            self.record_conflict(&mine.person, None, &app.appid, "link").await;
                            return Err(Error::IdentityConflict);
                        }
                        Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => continue,
                        Err(e) => return Err(e.into()),
                    }
                    let ident = Identity {
                        appid: app.appid.clone(),
                        openid: openid.clone(),
                        person: mine.person.clone(),
                        unionid: None,
                    };
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
        let ukey = keys::union(op, unionid);
        let ikey = keys::identity(&ident.appid, &ident.openid);
        let set_unionid = Write::Update {
            key: ikey.clone(),
            set: vec![("unionid".into(), s(unionid.as_str()))],
            remove: vec![],
            cond: vec![Check::Exists, Check::Absent("unionid".into())],
        };
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
                    let mut ops = claim_union(op, unionid, &mine.person, prior.as_ref());
                    ops.push(set_unionid.clone());
                    match self.store.transact(ops).await {
                        Ok(()) => return Ok(mine),
                        Err(StoreError::ConditionFailed { index: 2 }) => return self.view(&ident.person).await,
                        Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => continue,
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
        let start = vec![
            Write::Update {
                key: keys::person(&loser.person),
                set: vec![("merged_into".into(), s(winner.person.as_str()))],
                remove: vec![],
                cond: unmerged(),
            },
            Write::Update {
                key: keys::person(&winner.person),
                set: vec![("merging".into(), s(loser.person.as_str()))],
                remove: vec![],
                cond: unmerged(),
            },
            Write::Put {
                item: item(&keys::absorbed(&winner.person, &loser.person), [("at", Attr::N(self.clock.now_millis()))]),
                cond: vec![],
            },
        ];
        match self.store.transact(start).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => return Ok(None),
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
        let rest = self.store.query(&keys::person_pk(loser), keys::MEMBERSHIP_PREFIX).await?;
        for chunk in rest.chunks(MOVE_CHUNK) {
            let ops: Vec<Write> = chunk.iter().flat_map(|m| self.move_ops(winner, loser, m)).collect();
            match self.store.transact(ops).await {
                Ok(()) => {}
                Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => {
                    for m in chunk {
                        self.move_one(winner, loser, m).await?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        let done = Write::Update {
            key: keys::person(winner),
            set: vec![],
            remove: vec!["merging".into()],
            cond: vec![Check::Eq("merging".into(), s(loser.as_str()))],
        };
        match self.store.write(done).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn move_ops(&self, winner: &PersonId, loser: &PersonId, m: &Item) -> Vec<Write> {
        let (Some(linked), Some(sk)) = (parse_linked(m), m.s("SK")) else {
            return vec![];
        };
        let mut moved = m.clone();
        moved.insert("PK".into(), s(keys::person_pk(winner)));
        vec![
            Write::Delete {
                key: crate::store::Key::new(keys::person_pk(loser), sk),
                cond: vec![Check::Eq("openid".into(), s(linked.openid.as_str()))],
            },
            Write::Put { item: moved, cond: vec![Check::NotExists] },
            Write::Update {
                key: keys::identity(&linked.appid, &linked.openid),
                set: vec![("person".into(), s(winner.as_str()))],
                remove: vec![],
                cond: vec![Check::Exists],
            },
        ]
    }

    async fn move_one(&self, winner: &PersonId, loser: &PersonId, m: &Item) -> Result<(), Error> {
        let Some(linked) = parse_linked(m) else {
            return Ok(());
        };
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                pause(attempt).await;
            }
            let mut ops = self.move_ops(winner, loser, m);
            match self.store.transact(ops.clone()).await {
                Ok(()) => return Ok(()),
                // Already moved by someone else.
                Err(StoreError::ConditionFailed { index: 0 }) => return Ok(()),
                Err(StoreError::ConditionFailed { index: 1 }) => {
                    // The winner gained another openid of this app since the merge began:
                    // keep both as they are, and say so.
                    self.record_conflict(winner, Some(loser), &linked.appid, "merge_move").await;
                    return Ok(());
                }
                // The identity was erased meanwhile: drop the stale membership only.
                Err(StoreError::ConditionFailed { .. }) => {
                    ops.truncate(1);
                    self.store.transact(ops).await.or_else(|e| match e {
                        StoreError::ConditionFailed { .. } => Ok(()),
                        e => Err(e),
                    })?;
                    return Ok(());
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Adds a new identity to an existing, unmerged person. Fails at index 2 when the person
    /// already holds another openid of this app.
    fn attach_ops(
        &self,
        app: &App,
        openid: &OpenId,
        person: &PersonId,
        unionid: Option<&UnionId>,
        via: Via,
        now: i64,
    ) -> Vec<Write> {
        vec![
            Write::Check { key: keys::person(person), cond: unmerged() },
            self.put_identity(app, openid, person, unionid, via, now),
            self.put_membership(app, openid, person, via, now),
        ]
    }

    fn put_identity(
        &self,
        app: &App,
        openid: &OpenId,
        person: &PersonId,
        unionid: Option<&UnionId>,
        via: Via,
        now: i64,
    ) -> Write {
        let mut it = item(
            &keys::identity(&app.appid, openid),
            [
                ("person", s(person.as_str())),
                ("kind", s(app.kind.as_str())),
                ("owner", s(app.owner.as_str())),
                ("via", s(via.as_str())),
                ("at", Attr::N(now)),
            ],
        );
        if let (Some(u), Some(_)) = (unionid, &app.open_platform) {
            it.insert("unionid".into(), s(u.as_str()));
        }
        Write::Put { item: it, cond: vec![Check::NotExists] }
    }

    fn put_membership(&self, app: &App, openid: &OpenId, person: &PersonId, via: Via, now: i64) -> Write {
        Write::Put {
            item: item(
                &keys::membership(person, &app.appid),
                [
                    ("openid", s(openid.as_str())),
                    ("kind", s(app.kind.as_str())),
                    ("owner", s(app.owner.as_str())),
                    ("via", s(via.as_str())),
                    ("at", Attr::N(now)),
                ],
            ),
            cond: vec![Check::NotExists],
        }
    }

    fn linked(&self, app: &App, openid: &OpenId, via: Via, now: i64) -> Linked {
        Linked {
            appid: app.appid.clone(),
            openid: openid.clone(),
            kind: app.kind.as_str().into(),
            owner: app.owner.clone(),
            via: via.as_str().into(),
            at_millis: now,
        }
    }

    /// A refused link is kept for operators (and logged without ids of the people involved
    /// beyond the app).
    async fn record_conflict(&self, person: &PersonId, other: Option<&PersonId>, appid: &AppId, during: &str) {
        let now = self.clock.now_millis();
        let mut attrs = vec![("appid", s(appid.as_str())), ("during", s(during)), ("at", Attr::N(now))];
        if let Some(o) = other {
            attrs.push(("other", s(o.as_str())));
        }
        let w = Write::Put { item: item(&keys::conflict(person, now, &self.ids.token()), attrs), cond: vec![] };
        if let Err(e) = self.store.write(w).await {
            tracing::error!(error = %e, "could not record an identity conflict");
        }
        tracing::warn!(appid = %appid, during, "identity conflict refused");
        metrics::count(Counter::Conflict);
    }
}
