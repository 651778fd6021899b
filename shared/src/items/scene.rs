//! `SCENE#<scene>` / `S`: a scene-QR binding request: which site user asked, on which official
//! account, and once a scan bound it, the openid and person. Kept a day past its expiry so a
//! late poll still reads "expired", not "not found".

use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId, SiteId, SiteUserId};
use crate::items::{optional, required};
use crate::model::SceneStatus;
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const SK: &str = "S";
pub const SITE: &str = "site";
pub const USER: &str = "user";
pub const APPID: &str = "appid";
pub const STATUS: &str = "status";
pub const EXPIRES_AT: &str = "expires_at";
pub const OPENID: &str = "openid";
pub const PERSON: &str = "person";
pub const TTL: &str = "ttl";
/// How long past its expiry a scene is kept.
pub const KEPT_SECS: i64 = 86_400;

pub fn key(scene: &str) -> Key {
    Key::new(format!("SCENE#{scene}"), SK)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scene {
    pub scene: String,
    pub site: SiteId,
    pub user: SiteUserId,
    pub appid: AppId,
    pub status: SceneStatus,
    pub expires_at_secs: i64,
    pub openid: Option<OpenId>,
    pub person: Option<PersonId>,
}

impl Scene {
    pub fn to_item(&self) -> Item {
        let mut it = item(
            &key(&self.scene),
            [
                (SITE, s(self.site.as_str())),
                (USER, s(self.user.as_str())),
                (APPID, s(self.appid.as_str())),
                (STATUS, s(self.status.as_str())),
                (EXPIRES_AT, Attr::N(self.expires_at_secs)),
                (TTL, Attr::N(self.expires_at_secs + KEPT_SECS)),
            ],
        );
        if let Some(o) = &self.openid {
            it.insert(OPENID.into(), s(o.as_str()));
        }
        if let Some(p) = &self.person {
            it.insert(PERSON.into(), s(p.as_str()));
        }
        it
    }

    pub fn from_item(scene: &str, it: &Item) -> Result<Self, Error> {
        Ok(Scene {
            scene: scene.to_owned(),
            site: required(it, SITE, SiteId::parse)?,
            user: required(it, USER, SiteUserId::parse)?,
            appid: required(it, APPID, AppId::parse)?,
            status: required(it, STATUS, SceneStatus::parse)?,
            expires_at_secs: it.n(EXPIRES_AT).unwrap_or_default(),
            openid: optional(it, OPENID, OpenId::parse)?,
            person: optional(it, PERSON, PersonId::parse)?,
        })
    }

    pub fn expired(&self, now_secs: i64) -> bool {
        self.expires_at_secs <= now_secs
    }

    pub fn create(&self) -> Write {
        Write::Put { item: self.to_item(), cond: vec![Check::NotExists] }
    }
}

/// Marks a pending scene bound to the scanner; refused if it is no longer pending.
pub fn bind(scene: &str, openid: &OpenId, person: &PersonId) -> Write {
    Write::Update {
        key: key(scene),
        set: vec![
            (STATUS.into(), s(SceneStatus::Bound.as_str())),
            (OPENID.into(), s(openid.as_str())),
            (PERSON.into(), s(person.as_str())),
        ],
        remove: vec![],
        cond: vec![Check::Eq(STATUS.into(), s(SceneStatus::Pending.as_str()))],
    }
}
