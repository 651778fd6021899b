//! `TOK#<appid>` / `TOK`: the app's WeChat access token, shared by every instance, refreshed by
//! one writer at a time under a lease, with a version so a stale reader never refreshes twice.

use crate::ids::{AppId, Secret};
use crate::store::{s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "TOK";
pub const TOKEN: &str = "token";
pub const EXPIRES: &str = "expires";
pub const VERSION: &str = "version";
pub const LEASE: &str = "lease";
pub const LEASE_UNTIL: &str = "lease_until";

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

/// Stores the fresh token and gives the lease back, while the lease is still `me`'s.
pub fn store(key: &Key, me: &str, token: &Secret, expires_millis: i64, version: i64) -> Write {
    Write::Update {
        key: key.clone(),
        set: vec![
            (TOKEN.into(), s(token.expose())),
            (EXPIRES.into(), Attr::N(expires_millis)),
            (VERSION.into(), Attr::N(version)),
        ],
        remove: vec![LEASE.into(), LEASE_UNTIL.into()],
        cond: vec![Check::Eq(LEASE.into(), s(me))],
    }
}
