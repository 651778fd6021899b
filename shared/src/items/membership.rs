//! `P#<person>` / `A#<appid>`: one per app a person holds, with that app's openid. The key
//! itself refuses a second openid of one app, and a person's identities are one query away.

use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId};
use crate::items::{person, required};
use crate::model::{AppKind, Owner, Via};
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const PREFIX: &str = "A#";
pub const OPENID: &str = "openid";
pub const KIND: &str = "kind";
pub const OWNER: &str = "owner";
pub const VIA: &str = "via";
pub const AT: &str = "at";

pub fn key(person: &PersonId, appid: &AppId) -> Key {
    Key::new(person::pk(person), format!("{PREFIX}{appid}"))
}

/// One identity of a person, as every audience is shown it (each sees its own fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linked {
    pub appid: AppId,
    pub openid: OpenId,
    pub kind: AppKind,
    pub owner: Owner,
    pub via: Via,
    pub at_millis: i64,
}

/// A membership: the identity `linked`, held by `person`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub person: PersonId,
    pub linked: Linked,
}

impl Membership {
    pub fn key(&self) -> Key {
        key(&self.person, &self.linked.appid)
    }

    pub fn to_item(&self) -> Item {
        let l = &self.linked;
        item(
            &self.key(),
            [
                (OPENID, s(l.openid.as_str())),
                (KIND, s(l.kind.as_str())),
                (OWNER, s(l.owner.to_string())),
                (VIA, s(l.via.as_str())),
                (AT, Attr::N(l.at_millis)),
            ],
        )
    }

    /// A membership item of `person`'s partition (its SK names the app).
    pub fn from_item(person: &PersonId, it: &Item) -> Result<Self, Error> {
        let appid = required(it, "SK", |sk| {
            sk.strip_prefix(PREFIX).ok_or_else(|| Error::Internal("not a membership".into())).and_then(AppId::parse)
        })?;
        Ok(Membership {
            person: person.clone(),
            linked: Linked {
                appid,
                openid: required(it, OPENID, OpenId::parse)?,
                kind: required(it, KIND, AppKind::parse)?,
                owner: required(it, OWNER, Owner::parse)?,
                via: required(it, VIA, Via::parse)?,
                at_millis: it.n(AT).unwrap_or_default(),
            },
        })
    }

    pub fn is_membership(it: &Item) -> bool {
        it.s("SK").is_some_and(|sk| sk.starts_with(PREFIX))
    }

    /// Creates the membership; refused if the person holds this app already.
    pub fn create(&self) -> Write {
        Write::Put { item: self.to_item(), cond: vec![Check::NotExists] }
    }

    /// Deletes it, only while it still holds this openid (a mover that lost the race moves nothing).
    pub fn delete(&self) -> Write {
        delete(&self.person, &self.linked.appid, &self.linked.openid)
    }
}

pub fn delete(person: &PersonId, appid: &AppId, openid: &OpenId) -> Write {
    Write::Delete { key: key(person, appid), cond: vec![Check::Eq(OPENID.into(), s(openid.as_str()))] }
}
