//! `STASH#<appid>#<openid>` / `T`: a mini-program session_key, kept only while the unionid is
//! unknown, for the two-step userinfo call. Never returned, never logged.

use crate::ids::{AppId, OpenId, PersonId, Secret};
use crate::items::live;
use crate::store::{item, s, Attr, Item, ItemExt, Key, Write};

pub const SK: &str = "T";
pub const SESSION_KEY: &str = "session_key";
pub const PERSON: &str = "person";
pub const TTL: &str = "ttl";

pub fn key(appid: &AppId, openid: &OpenId) -> Key {
    Key::new(format!("STASH#{appid}#{openid}"), SK)
}

/// Keeps (or replaces) the session_key until `expires_secs`.
pub fn put(appid: &AppId, openid: &OpenId, person: &PersonId, session_key: &Secret, expires_secs: i64) -> Write {
    let it = item(
        &key(appid, openid),
        [(SESSION_KEY, s(session_key.expose())), (PERSON, s(person.as_str())), (TTL, Attr::N(expires_secs))],
    );
    Write::Put { item: it, cond: vec![] }
}

/// The session_key of a stash item that has not expired.
pub fn session_key(it: Option<Item>, now_secs: i64) -> Option<Secret> {
    live(it, TTL, now_secs).and_then(|it| it.s(SESSION_KEY).map(Secret::new))
}

pub fn delete(appid: &AppId, openid: &OpenId) -> Write {
    Write::Delete { key: key(appid, openid), cond: vec![] }
}
