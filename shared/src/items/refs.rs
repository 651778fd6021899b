//! `P#<person>` / `R#<pk>|<sk>`: a short-lived item elsewhere that names the person (a ticket,
//! a scene, a site code). Written with that item, living as long, so erasing the person finds
//! and deletes it without scanning the table.

use crate::ids::PersonId;
use crate::items::person;
use crate::store::{item, Attr, Key, Write};

pub const PREFIX: &str = "R#";
pub const TTL: &str = "ttl";

pub fn key(person: &PersonId, target: &Key) -> Key {
    Key::new(person::pk(person), format!("{PREFIX}{}|{}", target.pk, target.sk))
}

pub fn put(person: &PersonId, target: &Key, ttl_secs: i64) -> Write {
    Write::Put { item: item(&key(person, target), [(TTL, Attr::N(ttl_secs))]), cond: vec![] }
}

/// The item a ref (an SK of a person's partition) points at.
pub fn target(sk: &str) -> Option<Key> {
    let (pk, sk) = sk.strip_prefix(PREFIX)?.split_once('|')?;
    Some(Key::new(pk, sk))
}
