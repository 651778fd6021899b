//! `REF#<appid>#<openid>` / `<pk>|<sk>`: a short-lived item that names an identity (a ticket, a
//! pass's evidence, a scene, a site code). Written with that item, living as long, keyed by the
//! identity — not its person, who may not exist yet — so erasing a person finds every item that
//! names any of its identities without scanning the table.

use crate::ids::{AppId, OpenId};
use crate::store::{item, Attr, Key, Write};

pub const TTL: &str = "ttl";

pub fn pk(appid: &AppId, openid: &OpenId) -> String {
    format!("REF#{appid}#{openid}")
}

pub fn key(appid: &AppId, openid: &OpenId, target: &Key) -> Key {
    Key::new(pk(appid, openid), format!("{}|{}", target.pk, target.sk))
}

pub fn put(appid: &AppId, openid: &OpenId, target: &Key, ttl_secs: i64) -> Write {
    Write::Put { item: item(&key(appid, openid, target), [(TTL, Attr::N(ttl_secs))]), cond: vec![] }
}

pub fn delete(appid: &AppId, openid: &OpenId, target: &Key) -> Write {
    Write::Delete { key: key(appid, openid, target), cond: vec![] }
}

/// The item a ref (an SK of an identity's ref partition) points at.
pub fn target(sk: &str) -> Option<Key> {
    let (pk, sk) = sk.split_once('|')?;
    Some(Key::new(pk, sk))
}
