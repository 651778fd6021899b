//! Login links (ARCHITECTURE.md §1): a follower who is not yet a website user asks the
//! official account's menu for a link; the bridge signs (site, appid, openid, timestamp,
//! nonce) into a link on `PUBLIC_BASE`. A link can be forwarded, so opening it binds nothing:
//! the bridge first learns the browser's openid through the official account's silent
//! authorization, and only when it is the follower's does it hand the site a one-time code
//! (`?wxbridge_code=`), which only that site's key redeems with the user it logged in
//! (`POST /v1/site/bind`). The openid is trusted only because WeChat showed it to the bridge —
//! never because a client sent it.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::directory::{Directory, DirectoryExt};
use crate::domain::access_token::Broker;
use crate::domain::assoc::Assoc;
use crate::domain::scene::bind_site_user;
use crate::domain::views::Public;
use crate::domain::webauth::{begin, digest, same_user, token_ok, Finish, Started};
use crate::domain::Urls;
use crate::error::Error;
use crate::ids::{AppId, Code, OpenId, Secret, SiteId, SiteUserId};
use crate::items::site_code::{self, SiteCode};
use crate::items::state::{Page, Purpose};
use crate::items::{link_nonce, refs, Tx, TxError};
use crate::model::{AppKind, Scope, Via};
use crate::registry::{App, Site};
use crate::store::StoreError;

/// A login link is good this long after it was signed.
pub const LINK_TTL_SECS: i64 = 600;
/// The site's code, once the follower's browser was checked, is good this long.
pub const CODE_TTL_SECS: i64 = 300;

fn mac(key: &Secret, parts: [&str; 5]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes keys of any length");
    for part in parts {
        m.update(part.as_bytes());
        m.update(b"\n");
    }
    m
}

/// The link's signature over (site, appid, openid, timestamp, nonce).
pub fn sign(key: &Secret, site: &str, appid: &str, openid: &str, timestamp: &str, nonce: &str) -> String {
    hex::encode(mac(key, [site, appid, openid, timestamp, nonce]).finalize().into_bytes())
}

/// What a login link carries (`GET /v1/site/link?…`).
#[derive(Debug, Deserialize)]
pub struct LinkParams {
    pub site: SiteId,
    pub appid: AppId,
    pub openid: OpenId,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

#[derive(Debug, Deserialize)]
pub struct BindRequest {
    /// The `wxbridge_code` the bridge sent the site's login page.
    pub code: String,
    pub site_user_id: SiteUserId,
}

#[derive(Debug, Serialize)]
pub struct BindAnswer {
    pub person_id: String,
    pub linked: Public,
}

/// What login links need: the association rules, the registry, the link key and the URLs.
pub struct SiteLinks<'a> {
    pub assoc: Assoc<'a>,
    pub apps: &'a dyn Directory,
    /// Only the functions that sign or check links have it.
    pub link_key: Option<&'a Secret>,
    pub urls: &'a Urls,
    pub pairwise: &'a crate::pairwise::Pairwise,
}

impl SiteLinks<'_> {
    fn key(&self) -> Result<&Secret, Error> {
        self.link_key.ok_or_else(|| Error::Internal("this function has no link key (WXBRIDGE_LINK_KEY)".into()))
    }

    /// The link a follower gets from the menu: on the bridge, for `site`.
    pub fn make_link(&self, site: &Site, oa: &App, openid: &OpenId) -> Result<String, Error> {
        let ts = self.assoc.clock.now_secs().to_string();
        let nonce = self.assoc.ids.token();
        self.link(site, oa, openid, &ts, &nonce)
    }

    /// The same link again (a retried push is answered with the link it first got).
    pub fn link(&self, site: &Site, oa: &App, openid: &OpenId, ts: &str, nonce: &str) -> Result<String, Error> {
        let sig = sign(self.key()?, site.site_id.as_str(), oa.appid.as_str(), openid.as_str(), ts, nonce);
        let mut u = url::Url::parse(&format!("{}/v1/site/link", self.urls.public_base))
            .map_err(|_| Error::Internal("PUBLIC_BASE is not a URL".into()))?;
        u.query_pairs_mut()
            .append_pair("site", site.site_id.as_str())
            .append_pair("appid", oa.appid.as_str())
            .append_pair("openid", openid.as_str())
            .append_pair("timestamp", ts)
            .append_pair("nonce", nonce)
            .append_pair("signature", &sig);
        Ok(u.to_string())
    }

    /// `GET /v1/site/link?…`: a login link opened in some WeChat browser. Checked (signature,
    /// age, not spent), then the official account's silent authorization says whose browser.
    pub async fn open(&self, p: &LinkParams) -> Result<Started, Error> {
        let sig = hex::decode(&p.signature).map_err(|_| Error::SignatureInvalid)?;
        mac(self.key()?, [p.site.as_str(), p.appid.as_str(), p.openid.as_str(), &p.timestamp, &p.nonce])
            .verify_slice(&sig)
            .map_err(|_| Error::SignatureInvalid)?;
        let ts: i64 = p.timestamp.parse().map_err(|_| Error::SignatureInvalid)?;
        let now = self.assoc.clock.now_secs();
        if ts > now + 60 {
            return Err(Error::SignatureInvalid);
        }
        if now - ts > LINK_TTL_SECS {
            return Err(Error::LinkExpired);
        }
        if self.assoc.store.get(&link_nonce::key(&p.nonce)).await?.is_some() {
            return Err(Error::LinkUsed);
        }
        let oa = self.apps.app_of_kind(&p.appid, AppKind::OfficialAccount).await?;
        self.apps.site(&p.site).await?.ok_or(Error::UnknownApp)?;
        let purpose = Purpose::Link {
            site: p.site.clone(),
            appid: oa.appid.clone(),
            openid_digest: digest(p.openid.as_str()),
            nonce: p.nonce.clone(),
            timestamp: ts,
        };
        begin(self.assoc, self.urls, &purpose, &oa, Scope::Base).await
    }

    /// `POST /v1/site/bind`: the site redeems its code with the user it logged in.
    pub async fn bind(&self, site: &Site, req: BindRequest) -> Result<BindAnswer, Error> {
        if !token_ok(&req.code) {
            return Err(Error::LinkUsed);
        }
        let now = self.assoc.clock.now_secs();
        let found = self.assoc.store.get(&site_code::key(&req.code)).await?;
        let (code, alive) = SiteCode::from_item(&req.code, found, now)?.ok_or(Error::LinkUsed)?;
        if code.site != site.site_id {
            tracing::warn!("a site key tried to redeem another site's login code");
            return Err(Error::Forbidden);
        }
        if !alive {
            return Err(Error::LinkExpired);
        }
        let oa = self.apps.app_of_kind(&code.appid, AppKind::OfficialAccount).await?;
        // Spend the code first: two redemptions racing, one wins.
        match self.assoc.store.write(site_code::spend(&req.code)).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => return Err(Error::LinkUsed),
            Err(e) => return Err(e.into()),
        }
        match bind_site_user(self.assoc, site, &req.site_user_id, &oa, &code.openid, Via::LoginLink).await {
            Ok(view) => {
                // The site sees its own accounts and the official account it binds through.
                let owner = crate::model::Owner::Site(site.site_id.clone());
                let linked = Public::only(&view, |l| l.owner == owner || l.appid == oa.appid);
                Ok(BindAnswer { person_id: self.pairwise.id(&view.person, &owner)?, linked })
            }
            Err(e) => {
                // Nothing was bound: the code may be used again (e.g. with the right account).
                let _ = self.assoc.store.write(code.create()).await;
                Err(e)
            }
        }
    }
}

/// A login link's check came back from WeChat: the site gets a code when the browser is the
/// follower's.
pub(crate) async fn checked(
    assoc: Assoc<'_>,
    broker: Broker<'_>,
    apps: &dyn Directory,
    urls: &Urls,
    purpose: &Purpose,
    code: &Code,
) -> Result<Finish, Error> {
    let Purpose::Link { site, appid, openid_digest, nonce, timestamp } = purpose else {
        return Err(Error::StateInvalid);
    };
    let oa = apps.app_of_kind(appid, AppKind::OfficialAccount).await?;
    let site = apps.site(site).await?.ok_or(Error::UnknownApp)?;
    let grant = broker.web_grant(&oa, code).await?;
    if grant.snapshot_user || !same_user(&grant.openid, openid_digest) {
        tracing::warn!("a login link opened by another WeChat user than its follower: nothing bound");
        return Ok(Finish::Page(Page::NotYours));
    }
    let now = assoc.clock.now_secs();
    // The link may have been opened just in time; it is not good past its life by much.
    if now - timestamp > LINK_TTL_SECS + 60 {
        return Ok(Finish::Page(Page::Used));
    }
    let sc = SiteCode {
        code: assoc.ids.token(),
        site: site.site_id.clone(),
        appid: oa.appid.clone(),
        openid: grant.openid.clone(),
        nonce: nonce.clone(),
        ttl_secs: now + CODE_TTL_SECS,
    };
    let mut tx = Tx::new();
    let spend = tx.add(link_nonce::spend(nonce, timestamp + LINK_TTL_SECS + 60));
    tx.add(sc.create());
    tx.add(refs::put(&oa.appid, &grant.openid, &site_code::key(&sc.code), sc.ttl_secs));
    match tx.commit(assoc.store).await {
        Ok(()) => {}
        Err(TxError::Refused(op)) if op == spend => return Ok(Finish::Page(Page::Used)),
        Err(e) => return Err(e.into()),
    }
    let base = site.login_url.clone().unwrap_or_else(|| format!("{}/site/login", urls.public_base));
    let mut to = url::Url::parse(&base).map_err(|_| Error::Internal("the site's login_url is not a URL".into()))?;
    to.query_pairs_mut().append_pair("wxbridge_code", &sc.code);
    Ok(Finish::Redirect(to.to_string()))
}
