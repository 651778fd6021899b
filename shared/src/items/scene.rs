//! `SCENE#<scene>` / `S`: a scene-QR binding request: which site user asked, on which official
//! account, with what label; once scanned, the scanner's openid and the code of the confirm
//! link sent to them; once confirmed, the person. Kept a day past its expiry so a late poll
//! still reads "expired", not "not found".

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
pub const LABEL: &str = "label";
pub const CONFIRM: &str = "confirm";
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
    /// What the scanner is shown (e.g. a masked account name).
    pub label: Option<String>,
    /// The scanner (awaiting confirmation), then the bound openid.
    pub openid: Option<OpenId>,
    /// The code of the confirm link the scanner was sent.
    pub confirm: Option<String>,
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
        if let Some(l) = &self.label {
            it.insert(LABEL.into(), s(l.as_str()));
        }
        if let Some(c) = &self.confirm {
            it.insert(CONFIRM.into(), s(c.as_str()));
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
            label: it.s(LABEL).map(str::to_owned),
            openid: optional(it, OPENID, OpenId::parse)?,
            confirm: it.s(CONFIRM).map(str::to_owned),
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

fn status_is(status: SceneStatus) -> Check {
    Check::Eq(STATUS.into(), s(status.as_str()))
}

/// A pending scene was scanned by `openid`: it waits for that scanner to confirm with `code`.
pub fn scanned(scene: &str, openid: &OpenId, code: &str) -> Write {
    Write::Update {
        key: key(scene),
        set: vec![
            (STATUS.into(), s(SceneStatus::AwaitingConfirmation.as_str())),
            (OPENID.into(), s(openid.as_str())),
            (CONFIRM.into(), s(code)),
        ],
        remove: vec![],
        cond: vec![status_is(SceneStatus::Pending)],
    }
}

/// The scanner confirmed: bound to `person`. Refused unless it was awaiting that scanner.
pub fn bind(scene: &str, openid: &OpenId, person: &PersonId) -> Write {
    Write::Update {
        key: key(scene),
        set: vec![(STATUS.into(), s(SceneStatus::Bound.as_str())), (PERSON.into(), s(person.as_str()))],
        remove: vec![CONFIRM.into()],
        cond: vec![status_is(SceneStatus::AwaitingConfirmation), Check::Eq(OPENID.into(), s(openid.as_str()))],
    }
}

/// Final: the binding cannot be made.
pub fn refuse(scene: &str, from: SceneStatus) -> Write {
    Write::Update {
        key: key(scene),
        set: vec![(STATUS.into(), s(SceneStatus::Refused.as_str()))],
        remove: vec![CONFIRM.into()],
        cond: vec![status_is(from)],
    }
}
