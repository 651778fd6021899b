//! Scene-QR binding (ARCHITECTURE.md §1): a logged-in website user asks to bind; the bridge
//! makes a temporary QR code whose random scene maps to that user (in the store, with a TTL —
//! never in a session or process memory); WeChat pushes the scan; the bridge binds the site
//! user to the scanner's openid and the page sees it by polling.

use serde::{Deserialize, Serialize};

use crate::domain::access_token::Broker;
use crate::domain::assoc::{Assoc, PersonView};
use crate::domain::views::rfc3339_secs;
use crate::domain::Urls;
use crate::error::Error;
use crate::ids::{AppId, OpenId, SiteUserId};
use crate::items::scene::{self, Scene};
use crate::model::{AppKind, SceneStatus, Via};
use crate::registry::{App, Registry, Site};
use crate::store::StoreError;
use crate::wechat::WeChat;

pub const DEFAULT_EXPIRE_SECS: i64 = 600;
/// WeChat's ceiling for temporary QR codes is 30 days; a binding QR needs far less.
pub const MAX_EXPIRE_SECS: i64 = 86_400;

#[derive(Debug, Deserialize)]
pub struct SceneRequest {
    pub site_user_id: SiteUserId,
    #[serde(default)]
    pub appid: Option<AppId>,
    #[serde(default)]
    pub expire_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct SceneAnswer {
    pub scene: String,
    pub ticket: String,
    pub qr_url: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SceneView {
    pub status: SceneStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
}

pub fn scene_ok(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a scan did, for the reply to the user.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanOutcome {
    Bound,
    Expired,
    Unknown,
    Conflict,
}

/// What scene binding needs: the association rules, WeChat (QR codes, through the shared
/// access token), the registry and the URLs.
pub struct Scenes<'a> {
    pub assoc: Assoc<'a>,
    pub wechat: &'a dyn WeChat,
    pub broker: Broker<'a>,
    pub apps: &'a Registry,
    pub urls: &'a Urls,
}

impl Scenes<'_> {
    /// `POST /v1/qr/scenes`.
    pub async fn create(&self, site: &Site, req: SceneRequest) -> Result<SceneAnswer, Error> {
        let app = match &req.appid {
            Some(a) => self.apps.app_of_kind(a, AppKind::OfficialAccount)?,
            None => self.apps.pivot().ok_or(Error::UnknownApp)?,
        };
        let expire = req.expire_seconds.unwrap_or(DEFAULT_EXPIRE_SECS);
        if !(30..=MAX_EXPIRE_SECS).contains(&expire) {
            return Err(Error::InvalidRequest(format!("expire_seconds must be 30 to {MAX_EXPIRE_SECS}")));
        }
        let id = self.assoc.ids.token();
        let qr = self
            .broker
            .with_token(app, |token| {
                let id = id.clone();
                async move { self.wechat.qrcode_create(&token, &id, expire).await }
            })
            .await?;
        // WeChat may shorten the life; trust its answer when it gives one.
        let life = if qr.expire_seconds > 0 { qr.expire_seconds.min(expire) } else { expire };
        let expires_at = self.assoc.clock.now_secs() + life;
        let item = Scene {
            scene: id.clone(),
            site: site.site_id.clone(),
            user: req.site_user_id,
            appid: app.appid.clone(),
            status: SceneStatus::Pending,
            expires_at_secs: expires_at,
            openid: None,
            person: None,
        };
        self.assoc.store.write(item.create()).await?;
        let ticket_q: String = form_urlencoded::byte_serialize(qr.ticket.as_bytes()).collect();
        Ok(SceneAnswer {
            scene: id,
            qr_url: format!("{}/cgi-bin/showqrcode?ticket={ticket_q}", self.urls.mp_base),
            ticket: qr.ticket,
            expires_at: rfc3339_secs(expires_at),
        })
    }

    /// `GET /v1/qr/scenes/{scene}`: another site's scene is "not found", like a missing one.
    pub async fn status(&self, site: &Site, id: &str) -> Result<SceneView, Error> {
        if !scene_ok(id) {
            return Err(Error::NotFound);
        }
        let it = self.assoc.store.get(&scene::key(id)).await?.ok_or(Error::NotFound)?;
        let sc = Scene::from_item(id, &it)?;
        if sc.site != site.site_id {
            return Err(Error::NotFound);
        }
        Ok(match sc.status {
            SceneStatus::Bound => SceneView {
                status: SceneStatus::Bound,
                openid: sc.openid.map(|o| o.to_string()),
                person_id: sc.person.map(|p| p.to_string()),
            },
            _ if sc.expired(self.assoc.clock.now_secs()) => {
                SceneView { status: SceneStatus::Expired, openid: None, person_id: None }
            }
            _ => SceneView { status: SceneStatus::Pending, openid: None, person_id: None },
        })
    }

    /// A scan WeChat pushed (signature already checked): binds the scene's site user to the
    /// scanner's openid. Idempotent: the same scan again changes nothing.
    pub async fn scanned(&self, oa: &App, id: &str, openid: &OpenId) -> Result<ScanOutcome, Error> {
        if !scene_ok(id) {
            return Ok(ScanOutcome::Unknown);
        }
        let Some(it) = self.assoc.store.get(&scene::key(id)).await? else { return Ok(ScanOutcome::Unknown) };
        let sc = Scene::from_item(id, &it)?;
        if sc.appid != oa.appid {
            return Ok(ScanOutcome::Unknown);
        }
        if sc.status == SceneStatus::Bound {
            return Ok(if sc.openid.as_ref() == Some(openid) { ScanOutcome::Bound } else { ScanOutcome::Expired });
        }
        if sc.expired(self.assoc.clock.now_secs()) {
            return Ok(ScanOutcome::Expired);
        }
        let site = self.apps.site(&sc.site).ok_or(Error::UnknownApp)?;
        let view = match bind_site_user(self.assoc, site, &sc.user, oa, openid, Via::Scene).await {
            Ok(v) => v,
            Err(Error::IdentityConflict) => return Ok(ScanOutcome::Conflict),
            Err(e) => return Err(e),
        };
        match self.assoc.store.write(scene::bind(id, openid, &view.person)).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(ScanOutcome::Bound),
            Err(e) => Err(e.into()),
        }
    }
}

/// The follower's OA identity (a person is made for a new one), then the site user linked to
/// that person — merged with the person the site user already is, unless that would give one
/// person two openids of one app.
pub async fn bind_site_user(
    assoc: Assoc<'_>,
    site: &Site,
    user: &SiteUserId,
    oa: &App,
    openid: &OpenId,
    via: Via,
) -> Result<PersonView, Error> {
    let follower = assoc.login(oa, openid, None, via).await?;
    assoc.link(&site.as_app()?, &user.as_openid(), None, &follower.view.person, via).await
}
