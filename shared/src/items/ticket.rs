//! `T#<ticket>` / `T`: a web-view ticket: the chain a mini-program user asked for, spent by
//! the first `auth/start`. Single use, short life.

use crate::error::Error;
use crate::ids::AppId;
use crate::items::live;
use crate::items::state::Chain;
use crate::store::{item, s, Attr, Check, Item, Key, Write};

pub const SK: &str = "T";
/// The app of the identity that asked (the chain's person is the person it was then).
pub const APPID: &str = "appid";
pub const TTL: &str = "ttl";

pub fn key(ticket: &str) -> Key {
    Key::new(format!("T#{ticket}"), SK)
}

pub fn issue(ticket: &str, chain: &Chain, asked_by: &AppId, ttl_secs: i64) -> Write {
    let mut attrs = chain.attrs();
    attrs.push((APPID, s(asked_by.as_str())));
    attrs.push((TTL, Attr::N(ttl_secs)));
    Write::Put { item: item(&key(ticket), attrs), cond: vec![Check::NotExists] }
}

/// The ticket's chain, if it exists and has not expired.
pub fn chain(it: Option<Item>, now_secs: i64) -> Result<Option<Chain>, Error> {
    live(it, TTL, now_secs).map(|it| Chain::from_item(&it)).transpose()
}

/// Spends the ticket; refused when someone spent it first.
pub fn spend(ticket: &str) -> Write {
    Write::Delete { key: key(ticket), cond: vec![Check::Exists] }
}
