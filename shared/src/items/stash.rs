//! `STASH#<appid>#<openid>` / `T`: where a mini-program session_key was kept between login and
//! the userinfo call before it rode sealed in the bearer token (crate::session_seal). Nothing
//! writes it now; unlink and erase still remove one an earlier version left.

use crate::ids::{AppId, OpenId};
use crate::store::{Key, Write};

pub const SK: &str = "T";

pub fn key(appid: &AppId, openid: &OpenId) -> Key {
    Key::new(format!("STASH#{appid}#{openid}"), SK)
}

pub fn delete(appid: &AppId, openid: &OpenId) -> Write {
    Write::Delete { key: key(appid, openid), cond: vec![] }
}
