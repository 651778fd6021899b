//! `SC#<code>` / `SC`: a login link checked in its follower's own browser: the one-time code
//! the site redeems (`POST /v1/site/bind`) to bind that follower to its user. Only the site it
//! was issued for may redeem it.

use crate::error::Error;
use crate::ids::{AppId, OpenId, SiteId};
use crate::items::{live, required};
use crate::store::{item, s, Attr, Check, Item, Key, Write};

pub const SK: &str = "SC";
pub const SITE: &str = "site";
pub const APPID: &str = "appid";
pub const OPENID: &str = "openid";
pub const NONCE: &str = "nonce";
pub const TTL: &str = "ttl";

pub fn key(code: &str) -> Key {
    Key::new(format!("SC#{code}"), SK)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteCode {
    pub code: String,
    pub site: SiteId,
    pub appid: AppId,
    pub openid: OpenId,
    /// The login link's nonce (spent with the code).
    pub nonce: String,
    pub ttl_secs: i64,
}

impl SiteCode {
    pub fn to_item(&self) -> Item {
        item(
            &key(&self.code),
            [
                (SITE, s(self.site.as_str())),
                (APPID, s(self.appid.as_str())),
                (OPENID, s(self.openid.as_str())),
                (NONCE, s(self.nonce.as_str())),
                (TTL, Attr::N(self.ttl_secs)),
            ],
        )
    }

    /// The code, and whether it is still alive (`None`: no such code).
    pub fn from_item(code: &str, it: Option<Item>, now_secs: i64) -> Result<Option<(SiteCode, bool)>, Error> {
        let Some(it) = it else { return Ok(None) };
        let alive = live(Some(it.clone()), TTL, now_secs).is_some();
        Ok(Some((
            SiteCode {
                code: code.to_owned(),
                site: required(&it, SITE, SiteId::parse)?,
                appid: required(&it, APPID, AppId::parse)?,
                openid: required(&it, OPENID, OpenId::parse)?,
                nonce: required(&it, NONCE, |n| Ok(n.to_owned()))?,
                ttl_secs: crate::store::ItemExt::n(&it, TTL).unwrap_or_default(),
            },
            alive,
        )))
    }

    pub fn create(&self) -> Write {
        Write::Put { item: self.to_item(), cond: vec![Check::NotExists] }
    }
}

/// Spends the code; refused when it was spent already.
pub fn spend(code: &str) -> Write {
    Write::Delete { key: key(code), cond: vec![Check::Exists] }
}
