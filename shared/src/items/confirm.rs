//! `CF#<code>` / `CF`: the one-time code that ends a web-view pass; the ticket's owner spends
//! it to link what the pass saw. It names only the ticket.

use crate::items::live;
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "CF";
pub const TICKET: &str = "ticket";
pub const TTL: &str = "ttl";

pub fn key(code: &str) -> Key {
    Key::new(format!("CF#{code}"), SK)
}

pub fn issue(code: &str, ticket: &str, ttl_secs: i64) -> Write {
    Write::Put { item: item(&key(code), [(TICKET, s(ticket)), (TTL, Attr::N(ttl_secs))]), cond: vec![Check::NotExists] }
}

/// The ticket a live code ends.
pub fn ticket(it: Option<Item>, now_secs: i64) -> Option<String> {
    live(it, TTL, now_secs).and_then(|it| it.s(TICKET).map(str::to_owned))
}

/// Spends the code; refused when someone spent it first.
pub fn spend(code: &str) -> Write {
    Write::Delete { key: key(code), cond: vec![Check::Exists] }
}
