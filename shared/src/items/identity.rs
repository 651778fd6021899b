//! `ID#<appid>#<openid>` / `ID`: who an (app, openid) is. Created only if no one holds it, so
//! an identity belongs to exactly one person. An operator's unlink leaves a tombstone in its
//! place (no `person`, `unlinked_from`), so the next login does not silently put it back; the
//! identity made later keeps `unlinked_from`, and no unionid joins it to that person again.

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
pub const UNLINKED_FROM: &str = "unlinked_from";
/// What a returning login answers (crate::domain::login::LoginView, as JSON), kept on the
/// identity so that login reads one item whatever the person's size. Written only against
/// the person's version it was computed from; removed by every change it depends on.
pub const LOGIN_VIEW: &str = "lv";
/// On the person an identity was unlinked from: `X#<appid>#<openid>`, so erasing the person
/// finds the tombstone.
pub const UNLINKED_PREFIX: &str = "X#";

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
    /// The person an operator unlinked this (app, openid) from; never joined to it by unionid.
    pub unlinked_from: Option<PersonId>,
}

/// What the identity item says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Live(Identity),
    /// A tombstone: unlinked from this person by an operator.
    Unlinked(PersonId),
    Missing,
}

impl Found {
    pub fn live(self) -> Option<Identity> {
        match self {
            Found::Live(i) => Some(i),
            _ => None,
        }
    }

    /// The person this (app, openid) must not be joined to again, if any.
    pub fn unlinked_from(&self) -> Option<&PersonId> {
        match self {
            Found::Live(i) => i.unlinked_from.as_ref(),
            Found::Unlinked(p) => Some(p),
            Found::Missing => None,
        }
    }
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
        if let Some(p) = &self.unlinked_from {
            it.insert(UNLINKED_FROM.into(), s(p.as_str()));
        }
        it
    }

    /// The identity item, a tombstone, or nothing.
    pub fn found(appid: &AppId, openid: &OpenId, it: Option<&Item>) -> Result<Found, Error> {
        let Some(it) = it else { return Ok(Found::Missing) };
        if it.s(PERSON).is_none() {
            return Ok(match optional(it, UNLINKED_FROM, PersonId::parse)? {
                Some(p) => Found::Unlinked(p),
                None => Found::Missing,
            });
        }
        Identity::from_item(appid, openid, it).map(Found::Live)
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
            unlinked_from: optional(it, UNLINKED_FROM, PersonId::parse)?,
        })
    }

    /// Creates the identity (over a tombstone, too); refused if the (app, openid) is anyone's.
    pub fn create(&self) -> Write {
        Write::Put { item: self.to_item(), cond: vec![Check::Absent(PERSON.into())] }
    }
}

/// An operator's unlink: the identity becomes a tombstone naming the person it left.
pub fn unlink(appid: &AppId, openid: &OpenId, from: &PersonId, at_millis: i64) -> Write {
    Write::Put {
        item: item(&key(appid, openid), [(UNLINKED_FROM, s(from.as_str())), (AT, Attr::N(at_millis))]),
        cond: vec![Check::Exists],
    }
}

pub fn unlinked_mark(person: &PersonId, appid: &AppId, openid: &OpenId) -> Write {
    Write::Put {
        item: item(&Key::new(crate::items::person::pk(person), format!("{UNLINKED_PREFIX}{appid}#{openid}")), []),
        cond: vec![],
    }
}

/// The (app, openid) an `X#` mark of a partition names.
pub fn of_unlinked_mark(sk: &str) -> Option<(AppId, OpenId)> {
    let (a, o) = sk.strip_prefix(UNLINKED_PREFIX)?.split_once('#')?;
    Some((AppId::parse(a).ok()?, OpenId::parse(o).ok()?))
}

/// Forgets the person an identity was once unlinked from (that person is being erased).
pub fn forget_unlinked_from(appid: &AppId, openid: &OpenId) -> Write {
    Write::Update {
        key: key(appid, openid),
        set: vec![],
        remove: vec![UNLINKED_FROM.into()],
        cond: vec![Check::Exists],
    }
}

/// Points the identity at another person (a merge moved it).
pub fn repoint(appid: &AppId, openid: &OpenId, person: &PersonId) -> Write {
    Write::Update {
        key: key(appid, openid),
        set: vec![(PERSON.into(), s(person.as_str()))],
        remove: vec![LOGIN_VIEW.into()],
        cond: vec![Check::Exists],
    }
}

/// The login view, as stored (JSON), if any.
pub fn login_view(it: &Item) -> Option<&str> {
    it.s(LOGIN_VIEW)
}

/// Keeps what a login answered, if the identity still belongs to `person`.
pub fn keep_login_view(appid: &AppId, openid: &OpenId, person: &PersonId, view_json: &str) -> Write {
    Write::Update {
        key: key(appid, openid),
        set: vec![(LOGIN_VIEW.into(), s(view_json))],
        remove: vec![],
        cond: vec![Check::Eq(PERSON.into(), s(person.as_str()))],
    }
}

/// Drops the login view: something it depends on changed.
pub fn forget_login_view(appid: &AppId, openid: &OpenId) -> Write {
    Write::Update { key: key(appid, openid), set: vec![], remove: vec![LOGIN_VIEW.into()], cond: vec![Check::Exists] }
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
    Write::Delete { key: key(appid, openid), cond: vec![] }
}
