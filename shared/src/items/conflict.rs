//! `CONFLICT#<person>` / `C#<millis>#<nonce>`: a refused link, kept for operators.

use crate::ids::{AppId, PersonId};
use crate::store::{item, s, Attr, Key, Write};

pub const APPID: &str = "appid";
pub const DURING: &str = "during";
pub const AT: &str = "at";
pub const OTHER: &str = "other";

pub fn pk(person: &PersonId) -> String {
    format!("CONFLICT#{person}")
}

pub fn key(person: &PersonId, at_millis: i64, nonce: &str) -> Key {
    Key::new(pk(person), format!("C#{at_millis:013}#{nonce}"))
}

/// What was refused: on `person`, another openid of `appid` (from `other`, in a merge).
pub struct Conflict<'a> {
    pub person: &'a PersonId,
    pub other: Option<&'a PersonId>,
    pub appid: &'a AppId,
    pub during: &'a str,
    pub at_millis: i64,
}

impl Conflict<'_> {
    /// The record, under the person and (a twin with the same SK) under the other one, so
    /// erasing either finds every record that names it.
    pub fn record(&self, nonce: &str) -> Vec<Write> {
        let one = |on: &PersonId, other: Option<&PersonId>| {
            let mut attrs =
                vec![(APPID, s(self.appid.as_str())), (DURING, s(self.during)), (AT, Attr::N(self.at_millis))];
            if let Some(o) = other {
                attrs.push((OTHER, s(o.as_str())));
            }
            Write::Put { item: item(&key(on, self.at_millis, nonce), attrs), cond: vec![] }
        };
        let mut out = vec![one(self.person, self.other)];
        if let Some(o) = self.other {
            out.push(one(o, Some(self.person)));
        }
        out
    }
}

/// The twin of a record of `person`'s (same SK, under `other`).
pub fn twin(other: &PersonId, sk: &str) -> Key {
    Key::new(pk(other), sk)
}
