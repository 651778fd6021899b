//! `N#<state>` / `N`: an OAuth `state` the bridge issued for one hop of a web-view chain.
//! Single use (`used` is claimed once, by the code it came back with), short life; the
//! outcome is kept so WeChat's second delivery of the same redirect gets the same answer.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{AppId, PersonId};
use crate::items::{live, required};
use crate::model::Scope;
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "N";
pub const PERSON: &str = "person";
pub const TARGETS: &str = "targets";
pub const INDEX: &str = "index";
pub const SCOPE: &str = "scope";
pub const RETURN_URL: &str = "return_url";
pub const TTL: &str = "ttl";
pub const USED: &str = "used";
pub const OUTCOME: &str = "outcome";

pub fn key(state: &str) -> Key {
    Key::new(format!("N#{state}"), SK)
}

/// A web-view chain: whose it is, the official accounts to pass (merchants first, the pivot
/// last), where it stands and where it returns. Tickets and states both carry one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub person: PersonId,
    pub targets: Vec<AppId>,
    pub index: usize,
    pub scope: Scope,
    pub return_url: Option<String>,
}

impl Chain {
    pub(crate) fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let targets = self.targets.iter().map(AppId::as_str).collect::<Vec<_>>().join(",");
        let mut attrs = vec![
            (PERSON, s(self.person.as_str())),
            (TARGETS, s(targets)),
            (INDEX, Attr::N(self.index as i64)),
            (SCOPE, s(self.scope.as_str())),
        ];
        if let Some(r) = &self.return_url {
            attrs.push((RETURN_URL, s(r.as_str())));
        }
        attrs
    }

    pub(crate) fn from_item(it: &Item) -> Result<Self, Error> {
        Ok(Chain {
            person: required(it, PERSON, PersonId::parse)?,
            targets: required(it, TARGETS, |t| t.split(',').map(AppId::parse).collect())?,
            index: it.n(INDEX).unwrap_or(0).max(0) as usize,
            scope: match it.s(SCOPE) {
                Some(sc) => {
                    Scope::parse(sc).map_err(|_| Error::Internal("stored item with a malformed scope".into()))?
                }
                None => Scope::Base,
            },
            return_url: it.s(RETURN_URL).map(str::to_owned),
        })
    }

    /// The chain at hop `index`.
    pub fn at(&self, index: usize) -> Chain {
        Chain { index, ..self.clone() }
    }
}

/// How a hop ended, kept on its state for WeChat's second delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Sent on: to the next account's authorize page, or to the return URL.
    Redirect { to: String },
    /// The end of the chain without a return URL: a page that says how it went.
    Page { linked: bool },
    /// Refused with this error code.
    Refused { code: String },
}

/// A state as read: its chain, and how far its one use got.
#[derive(Debug)]
pub struct State {
    pub chain: Chain,
    pub used: Option<String>,
    pub outcome: Option<Outcome>,
}

impl State {
    /// The state, if it exists and has not expired.
    pub fn from_live(it: Option<Item>, now_secs: i64) -> Result<Option<State>, Error> {
        let Some(it) = live(it, TTL, now_secs) else { return Ok(None) };
        Ok(Some(State {
            chain: Chain::from_item(&it)?,
            used: it.s(USED).map(str::to_owned),
            outcome: it.s(OUTCOME).and_then(|o| serde_json::from_str(o).ok()),
        }))
    }
}

/// Issues a state for `chain`'s current hop, alive until `ttl_secs`.
pub fn issue(state: &str, chain: &Chain, ttl_secs: i64) -> Write {
    let mut attrs = chain.attrs();
    attrs.push((TTL, Attr::N(ttl_secs)));
    Write::Put { item: item(&key(state), attrs), cond: vec![Check::NotExists] }
}

/// Claims the state's one use for `used_as` (the code it came back with).
pub fn claim(state: &str, used_as: &str) -> Write {
    Write::Update {
        key: key(state),
        set: vec![(USED.into(), s(used_as))],
        remove: vec![],
        cond: vec![Check::Exists, Check::Absent(USED.into())],
    }
}

/// Gives the use back (WeChat refused the code or was down: nothing happened).
pub fn release(state: &str, used_as: &str) -> Write {
    Write::Update {
        key: key(state),
        set: vec![],
        remove: vec![USED.into()],
        cond: vec![Check::Eq(USED.into(), s(used_as))],
    }
}

pub fn record(state: &str, outcome: &Outcome) -> Write {
    let json = serde_json::to_string(outcome).unwrap_or_default();
    Write::Update { key: key(state), set: vec![(OUTCOME.into(), s(json))], remove: vec![], cond: vec![Check::Exists] }
}
