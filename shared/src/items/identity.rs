//! `ID#<appid>#<openid>` / `ID`: who an (app, openid) is. Created only if absent, so an
//! identity belongs to exactly one person.

use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId, UnionId};
use crate::items::{optional, required};
use crate::model::{AppKind, Owner, Via};
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "ID";
pub const PERSON: &str = "person";
pub const UNIONID: &str = "unionid";
pub const KIND: &str = "kind";
pub const OWNER: &str = "owner";
pub const VIA: &str = "via";
pub const AT: &str = "at";
pub const UNSUBSCRIBED_AT: &str = "unsubscribed_at";

pub fn key(appid: &AppId, openid: &OpenId) -> Key {
    Key::new(format!("ID#{appid}#{openid}"), SK)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub appid: AppId,
    pub openid: OpenId,
    /// As stored; may name a person merged since — resolve with `Assoc::view`.
    pub person: PersonId,
    pub unionid: Option<UnionId>,
    pub kind: AppKind,
    pub owner: Owner,
    pub via: Via,
    pub at_millis: i64,
}

impl Identity {
    pub fn key(&self) -> Key {
        key(&self.appid, &self.openid)
    }

    pub fn to_item(&self) -> Item {
        let mut it = item(
            &self.key(),
            [
                (PERSON, s(self.person.as_str())),
                (KIND, s(self.kind.as_str())),
                (OWNER, s(self.owner.to_string())),
                (VIA, s(self.via.as_str())),
                (AT, Attr::N(self.at_millis)),
            ],
        );
        if let Some(u) = &self.unionid {
            it.insert(UNIONID.into(), s(u.as_str()));
        }
        it
    }

    pub fn from_item(appid: &AppId, openid: &OpenId, it: &Item) -> Result<Self, Error> {
        Ok(Identity {
            appid: appid.clone(),
            openid: openid.clone(),
            person: required(it, PERSON, PersonId::parse)?,
            unionid: optional(it, UNIONID, UnionId::parse)?,
            kind: required(it, KIND, AppKind::parse)?,
            owner: required(it, OWNER, Owner::parse)?,
            via: required(it, VIA, Via::parse)?,
            at_millis: it.n(AT).unwrap_or_default(),
        })
    }

    /// Creates the identity; refused if the (app, openid) is anyone's already.
    pub fn create(&self) -> Write {
        Write::Put { item: self.to_item(), cond: vec![Check::NotExists] }
    }
}

/// Points the identity at another person (a merge moved it).
pub fn repoint(appid: &AppId, openid: &OpenId, person: &PersonId) -> Write {
    Write::Update {
        key: key(appid, openid),
        set: vec![(PERSON.into(), s(person.as_str()))],
        remove: vec![],
        cond: vec![Check::Exists],
    }
}

/// Records the unionid WeChat named for an identity that had none.
pub fn set_unionid(appid: &AppId, openid: &OpenId, unionid: &UnionId) -> Write {
    Write::Update {
        key: key(appid, openid),
        set: vec![(UNIONID.into(), s(unionid.as_str()))],
        remove: vec![],
        cond: vec![Check::Exists, Check::Absent(UNIONID.into())],
    }
}

pub fn mark_unsubscribed(appid: &AppId, openid: &OpenId, at_millis: i64) -> Write {
    Write::Update {
        key: key(appid, openid),
        set: vec![(UNSUBSCRIBED_AT.into(), Attr::N(at_millis))],
        remove: vec![],
        cond: vec![Check::Exists],
    }
}

pub fn delete(appid: &AppId, openid: &OpenId) -> Write {
    Write::Delete { key: key(appid, openid), cond: vec![Check::Exists] }
}
