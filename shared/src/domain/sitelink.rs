//! Signed login links (ARCHITECTURE.md §1): a follower who is not yet a website user asks the
//! official account's menu for a link; the bridge signs (appid, openid, timestamp, nonce); the
//! site logs the person in and hands the link back with its user id; the bridge checks
//! signature, age and single use, then binds. The openid is trusted only because the bridge
//! signed it — never because a client sent it.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::assoc::Assoc;
use crate::domain::scene::bind_site_user;
use crate::domain::views::Public;
use crate::domain::Urls;
use crate::error::Error;
use crate::ids::{AppId, OpenId, Secret, SiteUserId};
use crate::items::link_nonce;
use crate::model::{AppKind, Via};
use crate::registry::{App, Registry, Site};
use crate::store::StoreError;

pub const LINK_TTL_SECS: i64 = 600;

fn mac(key: &Secret, appid: &str, openid: &str, timestamp: &str, nonce: &str) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes keys of any length");
    for part in [appid, openid, timestamp, nonce] {
        m.update(part.as_bytes());
        m.update(b"\n");
    }
    m
}

pub fn sign(key: &Secret, appid: &str, openid: &str, timestamp: &str, nonce: &str) -> String {
    hex::encode(mac(key, appid, openid, timestamp, nonce).finalize().into_bytes())
}

#[derive(Debug, Deserialize)]
pub struct BindRequest {
    pub appid: AppId,
    pub openid: OpenId,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
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
    pub apps: &'a Registry,
    pub link_key: &'a Secret,
    pub urls: &'a Urls,
}

impl SiteLinks<'_> {
    /// The link a follower gets from the menu.
    pub fn make_link(&self, site: &Site, oa: &App, openid: &OpenId) -> String {
        let ts = self.assoc.clock.now_secs().to_string();
        let nonce = self.assoc.ids.token();
        let sig = sign(self.link_key, oa.appid.as_str(), openid.as_str(), &ts, &nonce);
        let base = site.login_url.clone().unwrap_or_else(|| format!("{}/site/login", self.urls.public_base));
        let mut u = match url::Url::parse(&base) {
            Ok(u) => u,
            Err(_) => return base,
        };
        u.query_pairs_mut()
            .append_pair("appid", oa.appid.as_str())
            .append_pair("openid", openid.as_str())
            .append_pair("timestamp", &ts)
            .append_pair("nonce", &nonce)
            .append_pair("signature", &sig);
        u.to_string()
    }

    /// `POST /v1/site/bind`.
    pub async fn bind(&self, site: &Site, req: BindRequest) -> Result<BindAnswer, Error> {
        let oa = self.apps.app_of_kind(&req.appid, AppKind::OfficialAccount)?;
        let sig = hex::decode(&req.signature).map_err(|_| Error::SignatureInvalid)?;
        mac(self.link_key, req.appid.as_str(), req.openid.as_str(), &req.timestamp, &req.nonce)
            .verify_slice(&sig)
            .map_err(|_| Error::SignatureInvalid)?;
        let ts: i64 = req.timestamp.parse().map_err(|_| Error::SignatureInvalid)?;
        let now = self.assoc.clock.now_secs();
        if ts > now + 60 {
            return Err(Error::SignatureInvalid);
        }
        if now - ts > LINK_TTL_SECS {
            return Err(Error::LinkExpired);
        }
        // Spend the nonce first: two redemptions racing, one wins.
        match self.assoc.store.write(link_nonce::spend(&req.nonce, ts + LINK_TTL_SECS + 60)).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => return Err(Error::LinkUsed),
            Err(e) => return Err(e.into()),
        }
        match bind_site_user(self.assoc, site, &req.site_user_id, oa, &req.openid, Via::LoginLink).await {
            Ok(view) => Ok(BindAnswer { person_id: view.person.to_string(), linked: Public::of(&view) }),
            Err(e) => {
                // Nothing was bound: the link may be used again (e.g. with the right account).
                let _ = self.assoc.store.write(link_nonce::release(&req.nonce)).await;
                Err(e)
            }
        }
    }
}
