//! `MSG#<appid>#<key>` / `MSG`: pushes already handled, so WeChat's retries are answered the
//! same and change nothing twice, and a replay changes nothing at all. Two kinds of key:
//! - `e<digest>`: the message (MsgId) or event (sender, time, event, key), with the reply it
//!   got — a reply that names nobody: a login link is kept as its timestamp and nonce and
//!   signed again for the retry's own sender;
//! - `MSG#signed#<signature>`: a signature WeChat made (over token, timestamp and nonce), with
//!   the digest of the first body it came with — in plain mode the signature covers no body,
//!   so it is good for that body only. Keyed by the signature itself, for every account: the
//!   same signature under a re-split timestamp and nonce, or another account's URL, is the
//!   same signature.

use serde::{Deserialize, Serialize};

use crate::ids::AppId;
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "MSG";
pub const REPLY: &str = "reply";
pub const BODY: &str = "body";
pub const TTL: &str = "ttl";

pub fn event_key(appid: &AppId, digest: &str) -> Key {
    Key::new(format!("MSG#{appid}#e{digest}"), SK)
}

pub fn signed_key(signature: &str) -> Key {
    Key::new(format!("MSG#signed#{}", signature.to_ascii_lowercase()), SK)
}

/// The reply a handled push got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    Text {
        text: String,
    },
    /// A login link for the sender, signed at `timestamp` with `nonce`.
    LoginLink {
        timestamp: String,
        nonce: String,
    },
}

/// Claims the event; refused when it was handled (or is being handled) already.
pub fn claim_event(key: &Key, ttl_secs: i64) -> Write {
    Write::Put { item: item(key, [(TTL, Attr::N(ttl_secs))]), cond: vec![Check::NotExists] }
}

/// Claims the signed pair for this body; refused when the pair came before.
pub fn claim_pair(key: &Key, body_digest: &str, ttl_secs: i64) -> Write {
    Write::Put { item: item(key, [(BODY, s(body_digest)), (TTL, Attr::N(ttl_secs))]), cond: vec![Check::NotExists] }
}

pub fn record_reply(key: &Key, reply: &Reply) -> Write {
    let json = serde_json::to_string(reply).unwrap_or_default();
    Write::Update { key: key.clone(), set: vec![(REPLY.into(), s(json))], remove: vec![], cond: vec![Check::Exists] }
}

/// Forgets a claim, so WeChat's retry is handled afresh.
pub fn release(key: &Key) -> Write {
    Write::Delete { key: key.clone(), cond: vec![] }
}

pub fn reply(it: &Item) -> Option<Reply> {
    it.s(REPLY).and_then(|r| serde_json::from_str(r).ok())
}

pub fn body(it: &Item) -> Option<&str> {
    it.s(BODY)
}
