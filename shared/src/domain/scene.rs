//! Scene-QR binding (ARCHITECTURE.md §1): a logged-in website user asks to bind; the bridge
//! makes a temporary QR code whose random scene maps to that user (in the store, with a TTL —
//! never in a session or process memory); WeChat pushes the scan; the bridge binds the site
//! user to the scanner's openid and the page sees it by polling.

use serde::{Deserialize, Serialize};

use crate::bridge::Bridge;
use crate::domain::access_token::with_token;
use crate::domain::assoc::{PersonView, Via};
use crate::domain::keys;
use crate::error::Error;
use crate::ids::{AppId, OpenId};
use crate::registry::{App, AppKind, Site};
use crate::store::{item, s, Attr, Check, Item, ItemExt, StoreError, Write};

pub const DEFAULT_EXPIRE_SECS: i64 = 600;
/// WeChat's ceiling for temporary QR codes is 30 days; a binding QR needs far less.
pub const MAX_EXPIRE_SECS: i64 = 86_400;

#[derive(Debug, Deserialize)]
pub struct SceneRequest {
    pub site_user_id: OpenId,
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
pub struct SceneStatus {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
}

pub fn rfc3339_secs(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn scene_ok(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `POST /v1/qr/scenes`.
pub async fn create(b: &Bridge, site: &Site, req: SceneRequest) -> Result<SceneAnswer, Error> {
    let app = match &req.appid {
        Some(a) => b.registry.app_of_kind(a, AppKind::OfficialAccount)?,
        None => b.registry.pivot().ok_or(Error::UnknownApp)?,
    };
    let expire = req.expire_seconds.unwrap_or(DEFAULT_EXPIRE_SECS);
    if !(30..=MAX_EXPIRE_SECS).contains(&expire) {
        return Err(Error::InvalidRequest(format!("expire_seconds must be 30 to {MAX_EXPIRE_SECS}")));
    }
    let scene = b.ids.token();
    let qr = with_token(b, app, |token| {
        let scene = scene.clone();
        async move { b.wechat.qrcode_create(&token, &scene, expire).await }
    })
    .await?;
    // WeChat may shorten the life; trust its answer when it gives one.
    let life = if qr.expire_seconds > 0 { qr.expire_seconds.min(expire) } else { expire };
    let expires_at = b.clock.now_secs() + life;
    let it = item(
        &keys::scene(&scene),
        [
            ("site", s(site.site_id.as_str())),
            ("user", s(req.site_user_id.as_str())),
            ("appid", s(app.appid.as_str())),
            ("status", s("pending")),
            ("expires_at", Attr::N(expires_at)),
            // Kept a day past expiry so a late poll still reads "expired", not "not found".
            ("ttl", Attr::N(expires_at + 86_400)),
        ],
    );
    b.store.write(Write::Put { item: it, cond: vec![Check::NotExists] }).await?;
    let ticket_q: String = form_urlencoded::byte_serialize(qr.ticket.as_bytes()).collect();
    Ok(SceneAnswer {
        scene,
        qr_url: format!("{}/cgi-bin/showqrcode?ticket={ticket_q}", b.settings.mp_base),
        ticket: qr.ticket,
        expires_at: rfc3339_secs(expires_at),
    })
}

/// `GET /v1/qr/scenes/{scene}`: another site's scene is "not found", like a missing one.
pub async fn status(b: &Bridge, site: &Site, scene: &str) -> Result<SceneStatus, Error> {
    if !scene_ok(scene) {
        return Err(Error::NotFound);
    }
    let it = b.store.get(&keys::scene(scene)).await?.ok_or(Error::NotFound)?;
    if it.s("site") != Some(site.site_id.as_str()) {
        return Err(Error::NotFound);
    }
    Ok(match it.s("status") {
        Some("bound") => SceneStatus {
            status: "bound",
            openid: it.s("openid").map(str::to_owned),
            person_id: it.s("person").map(str::to_owned),
        },
        _ if expired(&it, b.clock.now_secs()) => SceneStatus { status: "expired", openid: None, person_id: None },
        _ => SceneStatus { status: "pending", openid: None, person_id: None },
    })
}

fn expired(it: &Item, now: i64) -> bool {
    it.n("expires_at").is_none_or(|e| e <= now)
}

/// What a scan did, for the reply to the user.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanOutcome {
    Bound,
    Expired,
    Unknown,
    Conflict,
}

/// A scan WeChat pushed (signature already checked): binds the scene's site user to the
/// scanner's openid. Idempotent: the same scan again changes nothing.
pub async fn scanned(b: &Bridge, oa: &App, scene: &str, openid: &OpenId) -> Result<ScanOutcome, Error> {
    if !scene_ok(scene) {
        return Ok(ScanOutcome::Unknown);
    }
    let key = keys::scene(scene);
    let Some(it) = b.store.get(&key).await? else { return Ok(ScanOutcome::Unknown) };
    if it.s("appid") != Some(oa.appid.as_str()) {
        return Ok(ScanOutcome::Unknown);
    }
    if it.s("status") == Some("bound") {
        return Ok(if it.s("openid") == Some(openid.as_str()) { ScanOutcome::Bound } else { ScanOutcome::Expired });
    }
    if expired(&it, b.clock.now_secs()) {
        return Ok(ScanOutcome::Expired);
    }
    let (Some(site_id), Some(user)) = (it.s("site"), it.s("user").and_then(|u| OpenId::parse(u).ok())) else {
        return Err(Error::Internal("malformed scene item".into()));
    };
    let site = b.registry.sites.iter().find(|s| s.site_id == site_id).ok_or(Error::UnknownApp)?;
    let view = match bind_site_user(b, site, &user, oa, openid, Via::Scene).await {
        Ok(v) => v,
        Err(Error::IdentityConflict) => return Ok(ScanOutcome::Conflict),
        Err(e) => return Err(e),
    };
    let done = Write::Update {
        key,
        set: vec![
            ("status".into(), s("bound")),
            ("openid".into(), s(openid.as_str())),
            ("person".into(), s(view.person.as_str())),
        ],
        remove: vec![],
        cond: vec![Check::Eq("status".into(), s("pending"))],
    };
    match b.store.write(done).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(ScanOutcome::Bound),
        Err(e) => Err(e.into()),
    }
}

/// The follower's OA identity (a person is made for a new one), then the site user linked to
/// that person — merged with the person the site user already is, unless that would give one
/// person two openids of one app.
pub async fn bind_site_user(
    b: &Bridge,
    site: &Site,
    user: &OpenId,
    oa: &App,
    openid: &OpenId,
    via: Via,
) -> Result<PersonView, Error> {
    let follower = b.assoc().login(oa, openid, None, via).await?;
    b.assoc().link(&site.as_app()?, user, None, &follower.view.person, via).await
}
