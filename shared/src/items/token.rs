//! `TOK#<appid>` / `TOK`: the app's WeChat access token, shared by every instance, refreshed by
//! one writer at a time under a lease, with a version so a stale reader never refreshes twice.
//! The same item, keyed by the component appid, holds the third-party platform's
//! component_access_token. A component app's item also holds its authorizer refresh token,
//! written in the same conditional write as the access token it came with, and a mark when the
//! authorization is gone for good.

use crate::ids::{AppId, Secret};
use crate::store::{s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "TOK";
pub const TOKEN: &str = "token";
pub const EXPIRES: &str = "expires";
pub const VERSION: &str = "version";
pub const LEASE: &str = "lease";
pub const LEASE_UNTIL: &str = "lease_until";
pub const REFRESH: &str = "refresh";
/// Set when WeChat refused the app's authorization beyond recovery (61003, or 61023 that
/// `api_get_authorizer_info` could not mend): calls fail at once until the merchant
/// authorizes the platform again.
pub const REAUTH: &str = "reauth";

pub fn key(appid: &AppId) -> Key {
    Key::new(format!("TOK#{appid}"), SK)
}

/// The cache item as read.
#[derive(Debug, Default)]
pub struct Cached {
    pub token: Option<Secret>,
    pub expires_millis: Option<i64>,
    pub version: Option<i64>,
    pub lease: Option<String>,
    pub lease_until_millis: Option<i64>,
    pub refresh: Option<Secret>,
    pub reauth: bool,
}

impl Cached {
    pub fn from_item(it: Option<&Item>) -> Self {
        let Some(it) = it else { return Cached::default() };
        Cached {
            token: it.s(TOKEN).map(Secret::new),
            expires_millis: it.n(EXPIRES),
            version: it.n(VERSION),
            lease: it.s(LEASE).map(str::to_owned),
            lease_until_millis: it.n(LEASE_UNTIL),
            refresh: it.s(REFRESH).map(Secret::new),
            reauth: it.n(REAUTH) == Some(1),
        }
    }

    /// Takes the lease: when free and nobody refreshed since this read, or when its holder
    /// abandoned it (`abandoned`).
    pub fn take_lease(&self, key: &Key, me: &str, until_millis: i64, abandoned: bool) -> Write {
        let cond = match (&self.lease, abandoned) {
            (Some(l), true) => vec![Check::Eq(LEASE.into(), s(l.as_str()))],
            _ => vec![
                Check::Absent(LEASE.into()),
                match self.version {
                    Some(v) => Check::Eq(VERSION.into(), Attr::N(v)),
                    None => Check::Absent(VERSION.into()),
                },
            ],
        };
        Write::Update {
            key: key.clone(),
            set: vec![(LEASE.into(), s(me)), (LEASE_UNTIL.into(), Attr::N(until_millis))],
            remove: vec![],
            cond,
        }
    }
}

/// Gives the lease back without a new token.
pub fn release_lease(key: &Key, me: &str) -> Write {
    Write::Update {
        key: key.clone(),
        set: vec![],
        remove: vec![LEASE.into(), LEASE_UNTIL.into()],
        cond: vec![Check::Eq(LEASE.into(), s(me))],
    }
}

/// Stores the fresh token (and the refresh token that came with it) and gives the lease back,
/// while the lease is still `me`'s.
pub fn store(
    key: &Key,
    me: &str,
    token: &Secret,
    expires_millis: i64,
    version: i64,
    refresh: Option<&Secret>,
) -> Write {
    let mut set = vec![
        (TOKEN.into(), s(token.expose())),
        (EXPIRES.into(), Attr::N(expires_millis)),
        (VERSION.into(), Attr::N(version)),
    ];
    set.extend(refresh.map(|r| (REFRESH.to_owned(), s(r.expose()))));
    Write::Update {
        key: key.clone(),
        set,
        remove: vec![LEASE.into(), LEASE_UNTIL.into()],
        cond: vec![Check::Eq(LEASE.into(), s(me))],
    }
}

/// Marks the authorization gone and gives the lease back.
pub fn mark_reauth(key: &Key, me: &str) -> Write {
    Write::Update {
        key: key.clone(),
        set: vec![(REAUTH.into(), Attr::N(1))],
        remove: vec![LEASE.into(), LEASE_UNTIL.into(), TOKEN.into(), REFRESH.into()],
        cond: vec![Check::Eq(LEASE.into(), s(me))],
    }
}

/// A merchant's (new) authorization: the access and refresh tokens `api_query_auth` gave,
/// replacing whatever was cached (a lease included: its holder's refresh token is now dead),
/// with a new version so no stale reader refreshes over it.
pub fn authorized(key: &Key, token: &Secret, expires_millis: i64, refresh: &Secret, version: i64) -> Write {
    Write::Put {
        item: crate::store::item(
            key,
            [
                (TOKEN, s(token.expose())),
                (EXPIRES, Attr::N(expires_millis)),
                (VERSION, Attr::N(version)),
                (REFRESH, s(refresh.expose())),
            ],
        ),
        cond: vec![],
    }
}
