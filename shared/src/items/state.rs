//! `N#<state>` / `N`: an OAuth `state` the bridge issued for one web authorization: a hop of a
//! web-view pass, the confirmation of a scene scan, or the check of a login link. Bound to the
//! browser that started it (a cookie's digest), single use (`used` is claimed once, by the code
//! it came back with), short life; the outcome is kept so WeChat's second delivery of the same
//! redirect gets the same answer. It names no person and no openid.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{AppId, SiteId};
use crate::items::{live, required};
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "N";
pub const PURPOSE: &str = "for";
pub const BINDING: &str = "binding";
pub const TTL: &str = "ttl";
pub const USED: &str = "used";
pub const OUTCOME: &str = "outcome";

pub fn key(state: &str) -> Key {
    Key::new(format!("N#{state}"), SK)
}

/// What the authorization is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// Hop `index` of the web-view pass `ticket`.
    Hop { ticket: String, index: usize },
    /// The scanner of `scene` confirming it in their own browser.
    Scene { scene: String },
    /// A login link of `site`, for the follower whose openid digest (in `appid`) is given.
    Link { site: SiteId, appid: AppId, openid_digest: String, nonce: String, timestamp: i64 },
}

/// A page the bridge shows at the end of an authorization (no return URL to go to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "page", rename_all = "snake_case")]
pub enum Page {
    /// The pass is over: the mini program that asked confirms with this code.
    Pending { confirm: String },
    /// The user refused, or the browser is nobody's (a snapshot page): nothing linked.
    Denied,
    /// The scene is bound to the scanner.
    SceneBound,
    /// The scene could not be bound (one of the two is bound to another already).
    SceneRefused,
    /// The link was opened by another WeChat user than the one it was for: nothing bound.
    NotYours,
    /// The link was used already.
    Used,
}

/// How an authorization ended, kept on its state for WeChat's second delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Sent on: to the next account's authorize page, the return URL or the site.
    Redirect {
        to: String,
    },
    Page {
        page: Page,
    },
    /// Refused with this error code.
    Refused {
        code: String,
    },
}

/// A state as read: what it is for, the browser it is bound to, and how far its use got.
#[derive(Debug)]
pub struct State {
    pub purpose: Purpose,
    pub binding: String,
    pub used: Option<String>,
    pub outcome: Option<Outcome>,
}

impl State {
    /// The state, if it exists and has not expired.
    pub fn from_live(it: Option<Item>, now_secs: i64) -> Result<Option<State>, Error> {
        let Some(it) = live(it, TTL, now_secs) else { return Ok(None) };
        Ok(Some(State {
            purpose: required(&it, PURPOSE, |p| {
                serde_json::from_str(p).map_err(|_| Error::Internal("state purpose".into()))
            })?,
            binding: required(&it, BINDING, |b| Ok(b.to_owned()))?,
            used: it.s(USED).map(str::to_owned),
            outcome: it.s(OUTCOME).and_then(|o| serde_json::from_str(o).ok()),
        }))
    }
}

/// Issues a state for `purpose` in the browser whose cookie digest is `binding`.
pub fn issue(state: &str, purpose: &Purpose, binding: &str, ttl_secs: i64) -> Write {
    let purpose = serde_json::to_string(purpose).unwrap_or_default();
    let attrs = [(PURPOSE, s(purpose)), (BINDING, s(binding)), (TTL, Attr::N(ttl_secs))];
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

/// Gives the use back (WeChat refused the code or something was down: nothing happened).
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
