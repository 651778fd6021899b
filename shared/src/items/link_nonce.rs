//! `LINK#<nonce>` / `L`: a spent login link, kept until the link could no longer be valid.

use crate::store::{item, Attr, Check, Key, Write};

pub const SK: &str = "L";
pub const TTL: &str = "ttl";

pub fn key(nonce: &str) -> Key {
    Key::new(format!("LINK#{nonce}"), SK)
}

/// Spends the nonce; refused when it was spent already.
pub fn spend(nonce: &str, ttl_secs: i64) -> Write {
    Write::Put { item: item(&key(nonce), [(TTL, Attr::N(ttl_secs))]), cond: vec![Check::NotExists] }
}

/// Gives the nonce back (nothing was bound with it).
pub fn release(nonce: &str) -> Write {
    Write::Delete { key: key(nonce), cond: vec![] }
}
