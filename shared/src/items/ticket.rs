//! `T#<ticket>` / `T`: a web-view pass. Made for a mini-program identity (its owner); started
//! once by `auth/start`, which binds it to the browser (a cookie's digest); each hop records
//! the official-account identity the browser has (`ev<hop>`); only the owner's confirm links
//! them. A ref on the owner's person lets an erase find it.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId, UnionId};
use crate::items::{live, optional, required};
use crate::model::Scope;
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "T";
pub const PERSON: &str = "person";
pub const OWNER_APPID: &str = "appid";
pub const OWNER_OPENID: &str = "openid";
pub const TARGETS: &str = "targets";
pub const SCOPE: &str = "scope";
pub const RETURN_URL: &str = "return_url";
/// Unstarted after this (seconds), the ticket cannot start.
pub const START_BY: &str = "start_by";
/// The digest of the browser's pass cookie, set by the start.
pub const BINDING: &str = "binding";
pub const EVIDENCE_PREFIX: &str = "ev";
pub const TTL: &str = "ttl";

pub fn key(ticket: &str) -> Key {
    Key::new(format!("T#{ticket}"), SK)
}

/// What a hop of the pass saw: the browser's identity in that official account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub appid: AppId,
    pub openid: OpenId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<UnionId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: String,
    /// The person the owner was when it asked (resolve again before linking).
    pub person: PersonId,
    pub owner_appid: AppId,
    pub owner_openid: OpenId,
    /// Merchant accounts first, the pivot last.
    pub targets: Vec<AppId>,
    pub scope: Scope,
    pub return_url: Option<String>,
    pub start_by_secs: i64,
    pub ttl_secs: i64,
    pub binding: Option<String>,
    /// One per hop passed, in order.
    pub seen: Vec<Option<Seen>>,
}

impl Ticket {
    pub fn key(&self) -> Key {
        key(&self.id)
    }

    pub fn to_item(&self) -> Item {
        let targets = self.targets.iter().map(AppId::as_str).collect::<Vec<_>>().join(",");
        let mut it = item(
            &self.key(),
            [
                (PERSON, s(self.person.as_str())),
                (OWNER_APPID, s(self.owner_appid.as_str())),
                (OWNER_OPENID, s(self.owner_openid.as_str())),
                (TARGETS, s(targets)),
                (SCOPE, s(self.scope.as_str())),
                (START_BY, Attr::N(self.start_by_secs)),
                (TTL, Attr::N(self.ttl_secs)),
            ],
        );
        if let Some(r) = &self.return_url {
            it.insert(RETURN_URL.into(), s(r.as_str()));
        }
        it
    }

    /// The ticket, if it exists and has not expired.
    pub fn from_live(id: &str, it: Option<Item>, now_secs: i64) -> Result<Option<Ticket>, Error> {
        let Some(it) = live(it, TTL, now_secs) else { return Ok(None) };
        let targets: Vec<AppId> = required(&it, TARGETS, |t| t.split(',').map(AppId::parse).collect())?;
        let seen = (0..targets.len())
            .map(|i| it.s(&format!("{EVIDENCE_PREFIX}{i}")).and_then(|j| serde_json::from_str(j).ok()))
            .collect();
        Ok(Some(Ticket {
            id: id.to_owned(),
            person: required(&it, PERSON, PersonId::parse)?,
            owner_appid: required(&it, OWNER_APPID, AppId::parse)?,
            owner_openid: required(&it, OWNER_OPENID, OpenId::parse)?,
            targets,
            scope: required(&it, SCOPE, Scope::parse)?,
            return_url: optional(&it, RETURN_URL, |r| Ok(r.to_owned()))?,
            start_by_secs: it.n(START_BY).unwrap_or_default(),
            ttl_secs: it.n(TTL).unwrap_or_default(),
            binding: it.s(BINDING).map(str::to_owned),
            seen,
        }))
    }

    pub fn create(&self) -> Write {
        Write::Put { item: self.to_item(), cond: vec![Check::NotExists] }
    }

    /// Every hop saw an identity: the pass may be confirmed.
    pub fn complete(&self) -> Option<Vec<Seen>> {
        self.seen.iter().cloned().collect()
    }
}

/// Starts the pass in one browser; refused if it was started already.
pub fn start(ticket: &str, binding: &str) -> Write {
    Write::Update {
        key: key(ticket),
        set: vec![(BINDING.into(), s(binding))],
        remove: vec![],
        cond: vec![Check::Exists, Check::Absent(BINDING.into())],
    }
}

/// Records what hop `index` saw, in the browser the pass was started in.
pub fn saw(ticket: &str, binding: &str, index: usize, seen: &Seen) -> Write {
    Write::Update {
        key: key(ticket),
        set: vec![(format!("{EVIDENCE_PREFIX}{index}"), s(serde_json::to_string(seen).unwrap_or_default()))],
        remove: vec![],
        cond: vec![Check::Eq(BINDING.into(), s(binding))],
    }
}

pub fn delete(ticket: &str) -> Write {
    Write::Delete { key: key(ticket), cond: vec![] }
}
