//! `P#<person>` / `P`: a person (created, merged_into?, merging?), and in the same partition
//! `M#<loser>` for every person merged into it (so erasing the survivor finds them).

use crate::error::Error;
use crate::ids::PersonId;
use crate::items::optional;
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "P";
pub const CREATED: &str = "created";
/// On a person merged away: the survivor. Old ids keep resolving through it.
pub const MERGED_INTO: &str = "merged_into";
/// On a survivor while the loser's memberships move to it; any reader finishes the move.
pub const MERGING: &str = "merging";
/// A fresh random tag written by every write that adds or removes a membership, so a merge
/// that read the memberships starts only if nothing changed since. A tag, not a counter:
/// attaches never contend with one another, only with a merge.
pub const VERSION: &str = "version";
pub const ABSORBED_PREFIX: &str = "M#";
/// `N#<other>`: this person holds an identity an operator unlinked from `other`; the two are
/// never joined again by a unionid or a merge.
pub const NEVER_PREFIX: &str = "N#";
pub const ABSORBED_AT: &str = "at";

pub fn pk(person: &PersonId) -> String {
    format!("P#{person}")
}

pub fn key(person: &PersonId) -> Key {
    Key::new(pk(person), SK)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub person: PersonId,
    pub created_millis: i64,
    pub merged_into: Option<PersonId>,
    pub merging: Option<PersonId>,
    pub version: Option<String>,
}

impl Person {
    pub fn new(person: PersonId, created_millis: i64) -> Self {
        Person { person, created_millis, merged_into: None, merging: None, version: None }
    }

    pub fn to_item(&self) -> Item {
        let mut it = item(&key(&self.person), [(CREATED, Attr::N(self.created_millis))]);
        if let Some(w) = &self.merged_into {
            it.insert(MERGED_INTO.into(), s(w.as_str()));
        }
        if let Some(l) = &self.merging {
            it.insert(MERGING.into(), s(l.as_str()));
        }
        if let Some(v) = &self.version {
            it.insert(VERSION.into(), s(v.as_str()));
        }
        it
    }

    pub fn from_item(person: &PersonId, it: &Item) -> Result<Self, Error> {
        Ok(Person {
            person: person.clone(),
            created_millis: it.n(CREATED).unwrap_or_default(),
            merged_into: optional(it, MERGED_INTO, PersonId::parse)?,
            merging: optional(it, MERGING, PersonId::parse)?,
            version: it.s(VERSION).map(str::to_owned),
        })
    }

    pub fn is_head(it: &Item) -> bool {
        it.s("SK") == Some(SK)
    }

    pub fn create(&self) -> Write {
        Write::Put { item: self.to_item(), cond: vec![Check::NotExists] }
    }
}

/// The person exists and is neither merged away nor absorbing another person.
fn unmerged() -> Vec<Check> {
    vec![Check::Exists, Check::Absent(MERGED_INTO.into()), Check::Absent(MERGING.into())]
}

/// A transaction's check that the person is unmerged and still at the version it was read with.
pub fn still_at(person: &PersonId, version: Option<&str>) -> Write {
    Write::Check { key: key(person), cond: unmerged_at(version) }
}

/// ... and still carries the version tag it was read with.
fn unmerged_at(version: Option<&str>) -> Vec<Check> {
    let mut cond = unmerged();
    cond.push(match version {
        Some(v) => Check::Eq(VERSION.into(), s(v)),
        None => Check::Absent(VERSION.into()),
    });
    cond
}

/// Holds only while the person can take a new identity, and tags it anew (its memberships
/// change).
pub fn bump(person: &PersonId, tag: &str) -> Write {
    Write::Update { key: key(person), set: vec![(VERSION.into(), s(tag))], remove: vec![], cond: unmerged() }
}

/// As [`bump`], and only from the version the change was planned on: a change that raced
/// another plans again (so the login views it drops are those of the person as it is).
pub fn bump_from(person: &PersonId, version: Option<&str>, tag: &str) -> Write {
    Write::Update { key: key(person), set: vec![(VERSION.into(), s(tag))], remove: vec![], cond: unmerged_at(version) }
}

/// The first step of a merge, on the loser as read (`version`): from now on it resolves to
/// the winner.
pub fn start_losing(loser: &PersonId, version: Option<&str>, winner: &PersonId, tag: &str) -> Write {
    Write::Update {
        key: key(loser),
        set: vec![(MERGED_INTO.into(), s(winner.as_str())), (VERSION.into(), s(tag))],
        remove: vec![],
        cond: unmerged_at(version),
    }
}

/// The first step of a merge, on the winner as read (`version`): the move of `loser`'s
/// memberships is under way.
pub fn start_absorbing(winner: &PersonId, version: Option<&str>, loser: &PersonId, tag: &str) -> Write {
    Write::Update {
        key: key(winner),
        set: vec![(MERGING.into(), s(loser.as_str())), (VERSION.into(), s(tag))],
        remove: vec![],
        cond: unmerged_at(version),
    }
}

/// The last step of a merge: every membership moved.
pub fn done_absorbing(winner: &PersonId, loser: &PersonId) -> Write {
    Write::Update {
        key: key(winner),
        set: vec![],
        remove: vec![MERGING.into()],
        cond: vec![Check::Eq(MERGING.into(), s(loser.as_str()))],
    }
}

/// Shortens a `merged_into` chain: `person` now points straight at `root`, if it still
/// points where it did.
pub fn compress(person: &PersonId, was: &PersonId, root: &PersonId) -> Write {
    Write::Update {
        key: key(person),
        set: vec![(MERGED_INTO.into(), s(root.as_str()))],
        remove: vec![],
        cond: vec![Check::Eq(MERGED_INTO.into(), s(was.as_str()))],
    }
}

pub fn absorbed(winner: &PersonId, loser: &PersonId, at_millis: i64) -> Write {
    Write::Put {
        item: item(&Key::new(pk(winner), format!("{ABSORBED_PREFIX}{loser}")), [(ABSORBED_AT, Attr::N(at_millis))]),
        cond: vec![],
    }
}

/// The person an `M#` item of a partition names.
pub fn absorbed_of(sk: &str) -> Option<PersonId> {
    sk.strip_prefix(ABSORBED_PREFIX).and_then(|l| PersonId::parse(l).ok())
}

/// Keeps `person` and `other` apart for good.
pub fn never(person: &PersonId, other: &PersonId) -> Write {
    Write::Put { item: item(&Key::new(pk(person), format!("{NEVER_PREFIX}{other}")), []), cond: vec![] }
}

/// The person an `N#` item of a partition names.
pub fn never_of(sk: &str) -> Option<PersonId> {
    sk.strip_prefix(NEVER_PREFIX).and_then(|l| PersonId::parse(l).ok())
}
