//! `MSG#<appid>#<digest>` / `MSG`: a push already handled, with the reply it got, so
//! WeChat's retries are answered the same and change nothing twice.

use crate::ids::AppId;
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "MSG";
pub const REPLY: &str = "reply";
pub const TTL: &str = "ttl";

pub fn key(appid: &AppId, digest: &str) -> Key {
    Key::new(format!("MSG#{appid}#{digest}"), SK)
}

/// Claims the push; refused when it was handled (or is being handled) already.
pub fn claim(key: &Key, ttl_secs: i64) -> Write {
    Write::Put { item: item(key, [(TTL, Attr::N(ttl_secs))]), cond: vec![Check::NotExists] }
}

pub fn record_reply(key: &Key, reply: &str) -> Write {
    Write::Update { key: key.clone(), set: vec![(REPLY.into(), s(reply))], remove: vec![], cond: vec![Check::Exists] }
}

/// Forgets the claim, so WeChat's retry is handled afresh.
pub fn release(key: &Key) -> Write {
    Write::Delete { key: key.clone(), cond: vec![] }
}

pub fn reply(it: &Item) -> Option<String> {
    it.s(REPLY).map(str::to_owned)
}
