//! Scene-QR binding (ARCHITECTURE.md §1): a logged-in website user asks to bind; the bridge
//! makes a temporary QR code whose random scene maps to that user (in the store, with a TTL —
//! never in a session or process memory); WeChat pushes the scan. A QR code can be scanned by
//! anyone, so a scan binds nothing yet: the scanner is sent a confirm link, and the scene binds
//! only when the same WeChat user opens it (the bridge learns their openid again through the
//! official account's silent authorization). The site's page sees the outcome by polling.

use serde::{Deserialize, Serialize};

use crate::directory::{Directory, DirectoryExt};
use crate::domain::access_token::Broker;
use crate::domain::assoc::{Assoc, PersonView};
use crate::domain::views::rfc3339_secs;
use crate::domain::webauth::{begin, token_ok, Finish, Started};
use crate::domain::Urls;
use crate::error::Error;
use crate::ids::{AppId, Code, OpenId, SiteUserId};
use crate::items::scene::{self, Scene};
use crate::items::state::{Page, Purpose};
use crate::items::{refs, Tx};
use crate::model::{AppKind, SceneStatus, Scope, Via};
use crate::registry::{App, Site};
use crate::store::StoreError;

pub const DEFAULT_EXPIRE_SECS: i64 = 600;
/// WeChat's ceiling for temporary QR codes is 30 days; a binding QR needs far less.
pub const MAX_EXPIRE_SECS: i64 = 86_400;
pub const MAX_LABEL_CHARS: usize = 64;

#[derive(Debug, Deserialize)]
pub struct SceneRequest {
    pub site_user_id: SiteUserId,
    #[serde(default)]
    pub appid: Option<AppId>,
    #[serde(default)]
    pub expire_seconds: Option<i64>,
    /// What the scanner is shown (e.g. a masked account name).
    #[serde(default)]
    pub label: Option<String>,
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
    token_ok(s)
}

/// What a scan did, for the reply to the scanner.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanOutcome {
    /// The scanner is asked to confirm, with this label and link.
    Confirm {
        label: Option<String>,
        link: String,
    },
    /// Bound already (a scan of a bound code by its own scanner).
    Bound,
    Expired,
    Unknown,
    /// The scanner's WeChat is bound to another account of this site.
    WeChatTaken,
    /// The site user is bound to another WeChat.
    SiteUserTaken,
}

/// What scene binding needs: the association rules, WeChat (QR codes, through the shared
/// access token), the registry and the URLs.
pub struct Scenes<'a> {
    pub assoc: Assoc<'a>,
    pub broker: Broker<'a>,
    pub apps: &'a dyn Directory,
    pub urls: &'a Urls,
    /// The site is shown its pairwise id of the person.
    pub pairwise: &'a crate::pairwise::Pairwise,
}

/// A label is shown in the official account's reply: plain text only — no control, format
/// (bidi, zero-width) or bracket characters that could dress it up, and nothing like a link.
fn label_ok(l: &str) -> bool {
    let n = l.chars().count();
    let odd = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
            || "<>「」『』【】[]()".contains(c)
    };
    let lower = l.to_ascii_lowercase();
    (1..=MAX_LABEL_CHARS).contains(&n) && !l.chars().any(odd) && !lower.contains("://") && !lower.contains("www.")
}

impl Scenes<'_> {
    /// `POST /v1/qr/scenes`: only on the official accounts registered for the site.
    pub async fn create(&self, site: &Site, req: SceneRequest) -> Result<SceneAnswer, Error> {
        let allowed = self.apps.site_accounts(site).await?;
        let app = match &req.appid {
            Some(a) => {
                let app = self.apps.app_of_kind(a, AppKind::OfficialAccount).await?;
                if !allowed.iter().any(|x| x.appid == app.appid) {
                    tracing::warn!(appid = %app.appid, "a site key asked for a scene on another site's account");
                    return Err(Error::Forbidden);
                }
                app
            }
            None => allowed.first().cloned().ok_or(Error::UnknownApp)?,
        };
        let expire = req.expire_seconds.unwrap_or(DEFAULT_EXPIRE_SECS);
        if !(30..=MAX_EXPIRE_SECS).contains(&expire) {
            return Err(Error::InvalidRequest(format!("expire_seconds must be 30 to {MAX_EXPIRE_SECS}")));
        }
        if req.label.as_deref().is_some_and(|l| !label_ok(l)) {
            return Err(Error::InvalidRequest(format!("label must be 1 to {MAX_LABEL_CHARS} printable characters")));
        }
        let id = self.assoc.ids.token();
        let qr = self
            .broker
            .with_token(&app, |token| {
                let id = id.clone();
                async move { self.broker.wechat.qrcode_create(&token, &id, expire).await }
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
            label: req.label,
            openid: None,
            confirm: None,
            person: None,
        };
        let site_app = site.as_app()?;
        let mut tx = Tx::new();
        tx.add(item.create());
        tx.add(refs::put(&site_app.appid, &item.user.as_openid(), &scene::key(&id), expires_at + scene::KEPT_SECS));
        tx.commit(self.assoc.store).await?;
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
        let view = |status| SceneView { status, openid: None, person_id: None };
        Ok(match sc.status {
            SceneStatus::Bound => SceneView {
                status: SceneStatus::Bound,
                openid: sc.openid.map(|o| o.to_string()),
                person_id: sc
                    .person
                    .map(|p| self.pairwise.id(&p, &crate::model::Owner::Site(site.site_id.clone())))
                    .transpose()?,
            },
            SceneStatus::Refused => view(SceneStatus::Refused),
            _ if sc.expired(self.assoc.clock.now_secs()) => view(SceneStatus::Expired),
            status => view(status),
        })
    }

    /// A scan WeChat pushed (signature already checked). Binds nothing: the scanner is asked
    /// to confirm. Idempotent: the same scan again answers the same.
    pub async fn scanned(&self, oa: &App, id: &str, openid: &OpenId) -> Result<ScanOutcome, Error> {
        if !scene_ok(id) {
            return Ok(ScanOutcome::Unknown);
        }
        let Some(it) = self.assoc.store.get(&scene::key(id)).await? else { return Ok(ScanOutcome::Unknown) };
        let sc = Scene::from_item(id, &it)?;
        if sc.appid != oa.appid {
            return Ok(ScanOutcome::Unknown);
        }
        let by_this_scanner = sc.openid.as_ref() == Some(openid);
        match sc.status {
            SceneStatus::Bound if by_this_scanner => return Ok(ScanOutcome::Bound),
            SceneStatus::AwaitingConfirmation if by_this_scanner => {
                let code = sc.confirm.clone().unwrap_or_default();
                return Ok(ScanOutcome::Confirm { label: sc.label.clone(), link: self.confirm_link(id, &code) });
            }
            SceneStatus::Pending => {}
            _ => return Ok(ScanOutcome::Expired),
        }
        if sc.expired(self.assoc.clock.now_secs()) {
            return Ok(ScanOutcome::Expired);
        }
        let site = self.apps.site(&sc.site).await?.ok_or(Error::UnknownApp)?;
        let site_app = site.as_app()?;
        let user = sc.user.as_openid();
        // Say now what would refuse the binding, in the words that fit.
        if let Some(taken) = self.taken(&site_app, &user, oa, openid).await? {
            match self.assoc.store.write(scene::refuse(id, SceneStatus::Pending)).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => return Ok(taken),
                Err(e) => return Err(e.into()),
            }
        }
        let code = self.assoc.ids.token();
        let mut tx = Tx::new();
        tx.add(scene::scanned(id, openid, &code));
        tx.add(refs::put(&oa.appid, openid, &scene::key(id), sc.expires_at_secs + scene::KEPT_SECS));
        match tx.commit(self.assoc.store).await {
            Ok(()) => Ok(ScanOutcome::Confirm { label: sc.label, link: self.confirm_link(id, &code) }),
            // Another scan got there first.
            Err(crate::items::TxError::Refused(_)) => Ok(ScanOutcome::Expired),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the scanner's WeChat or the site user is bound to another already.
    async fn taken(
        &self,
        site_app: &App,
        user: &OpenId,
        oa: &App,
        openid: &OpenId,
    ) -> Result<Option<ScanOutcome>, Error> {
        if let Some(scanner) = self.assoc.identity(&oa.appid, openid).await? {
            let other = self.assoc.openid_in(&scanner.person, &site_app.appid).await?;
            if other.is_some_and(|o| &o != user) {
                return Ok(Some(ScanOutcome::WeChatTaken));
            }
        }
        if let Some(site_user) = self.assoc.identity(&site_app.appid, user).await? {
            let other = self.assoc.openid_in(&site_user.person, &oa.appid).await?;
            if other.is_some_and(|o| &o != openid) {
                return Ok(Some(ScanOutcome::SiteUserTaken));
            }
        }
        Ok(None)
    }

    fn confirm_link(&self, scene: &str, code: &str) -> String {
        format!("{}/v1/qr/confirm?scene={scene}&code={code}", self.urls.public_base)
    }

    /// `GET /v1/qr/confirm?scene&code`: the confirm link, opened in some WeChat browser; the
    /// official account's silent authorization says whose.
    pub async fn open_confirm(&self, id: &str, code: &str) -> Result<Started, Error> {
        if !scene_ok(id) || !token_ok(code) {
            return Err(Error::NotFound);
        }
        let it = self.assoc.store.get(&scene::key(id)).await?.ok_or(Error::NotFound)?;
        let sc = Scene::from_item(id, &it)?;
        let code_holds =
            sc.confirm.as_deref().is_some_and(|c| crate::crypto::same_secret(c.as_bytes(), code.as_bytes()));
        if sc.status != SceneStatus::AwaitingConfirmation || !code_holds {
            return Err(Error::NotFound);
        }
        if sc.expired(self.assoc.clock.now_secs()) {
            return Err(Error::LinkExpired);
        }
        let oa = self.apps.app_of_kind(&sc.appid, AppKind::OfficialAccount).await?;
        begin(self.assoc, self.urls, &Purpose::Scene { scene: id.to_owned() }, &oa, Scope::Base).await
    }
}

/// The confirm link came back from WeChat: the scene binds if the browser is its scanner's.
pub(crate) async fn confirmed(
    assoc: Assoc<'_>,
    broker: Broker<'_>,
    apps: &dyn Directory,
    id: &str,
    code: &Code,
) -> Result<Finish, Error> {
    let it = assoc.store.get(&scene::key(id)).await?.ok_or(Error::StateInvalid)?;
    let sc = Scene::from_item(id, &it)?;
    let oa = apps.app_of_kind(&sc.appid, AppKind::OfficialAccount).await?;
    let grant = broker.web_grant(&oa, code).await?;
    if grant.snapshot_user || sc.openid.as_ref() != Some(&grant.openid) {
        tracing::warn!("a scene's confirm link opened by another WeChat user: nothing bound");
        return Ok(Finish::Page(Page::NotYours));
    }
    match sc.status {
        SceneStatus::Bound => return Ok(Finish::Page(Page::SceneBound)),
        SceneStatus::AwaitingConfirmation if !sc.expired(assoc.clock.now_secs()) => {}
        _ => return Ok(Finish::Page(Page::Used)),
    }
    let site = apps.site(&sc.site).await?.ok_or(Error::UnknownApp)?;
    let view = match bind_site_user(assoc, &site, &sc.user, &oa, &grant.openid, Via::Scene).await {
        Ok(v) => v,
        Err(Error::IdentityConflict) => {
            match assoc.store.write(scene::refuse(id, SceneStatus::AwaitingConfirmation)).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => return Ok(Finish::Page(Page::SceneRefused)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e),
    };
    // The scene's refs (its site user's, its scanner's) were written with it.
    match assoc.store.write(scene::bind(id, &grant.openid, &view.person)).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(Finish::Page(Page::SceneBound)),
        Err(e) => Err(e.into()),
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
