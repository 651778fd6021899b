//! `U#<open_platform>#<unionid>` / `U`: the one person a unionid names; and on that person,
//! `P#<person>` / `U#<open_platform>#<unionid>`, a mark so erasing the person finds it.

use crate::error::Error;
use crate::ids::{OpenPlatformId, PersonId, UnionId};
use crate::items::{optional, person};
use crate::store::{item, s, Check, Item, Key, Write};

pub const SK: &str = "U";
pub const PERSON: &str = "person";
pub const MARK_PREFIX: &str = "U#";

pub fn key(op: &OpenPlatformId, unionid: &UnionId) -> Key {
    Key::new(format!("U#{op}#{unionid}"), SK)
}

pub fn mark_key(person: &PersonId, op: &OpenPlatformId, unionid: &UnionId) -> Key {
    Key::new(person::pk(person), format!("{MARK_PREFIX}{op}#{unionid}"))
}

/// The union item a mark (an SK of a person's partition) names.
pub fn of_mark(sk: &str) -> Option<Key> {
    let rest = sk.strip_prefix(MARK_PREFIX)?;
    let (op, uid) = rest.split_once('#')?;
    Some(Key::new(format!("U#{op}#{uid}"), SK))
}

/// Who the union item names (None: a malformed or foreign item).
pub fn owner(it: &Item) -> Result<Option<PersonId>, Error> {
    optional(it, PERSON, PersonId::parse)
}

/// Makes `person` the owner of a unionid — taking it over from `prior` (an erased person) when
/// given, else only if nobody holds it — and marks it on the person. The first write is the
/// claim itself.
pub fn claim(op: &OpenPlatformId, unionid: &UnionId, person: &PersonId, prior: Option<&PersonId>) -> [Write; 2] {
    let cond = match prior {
        Some(p) => vec![Check::Eq(PERSON.into(), s(p.as_str()))],
        None => vec![Check::NotExists],
    };
    [
        Write::Put { item: item(&key(op, unionid), [(PERSON, s(person.as_str()))]), cond },
        Write::Put { item: item(&mark_key(person, op, unionid), []), cond: vec![] },
    ]
}

/// Retires a unionid that names `person` (no identity of theirs carries it any more).
pub fn retire(op: &OpenPlatformId, unionid: &UnionId, person: &PersonId) -> [Write; 2] {
    [
        Write::Delete { key: key(op, unionid), cond: vec![Check::Eq(PERSON.into(), s(person.as_str()))] },
        Write::Delete { key: mark_key(person, op, unionid), cond: vec![] },
    ]
}
