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
    pub fn record(&self, nonce: &str) -> Write {
        let mut attrs = vec![(APPID, s(self.appid.as_str())), (DURING, s(self.during)), (AT, Attr::N(self.at_millis))];
        if let Some(o) = self.other {
            attrs.push((OTHER, s(o.as_str())));
        }
        Write::Put { item: item(&key(self.person, self.at_millis, nonce), attrs), cond: vec![] }
    }
}
