//! The third-party platform side (WECHAT_CONTRACT.md §11): WeChat's authorization events, a
//! merchant's onboarding, and registering what it approved.
//!
//! Trust: an authorization event is WeChat's only when its `msg_signature` holds under the
//! platform's token and it opens with the platform's key, signed within five minutes. A
//! merchant is named by the onboarding the bridge made for it (the pre_auth_code's digest in
//! the redirect, and the same digest from the event's `PreAuthCode`), never by a query
//! parameter alone, so one merchant cannot file its app under another. An authorization code
//! registers once; a replay answers what it registered. An `unauthorized` older than the app's
//! last authorization changes nothing.

use std::time::Duration;

use crate::directory::Directory;
use crate::domain::access_token::Broker;
use crate::domain::push::PushQuery;
use crate::domain::registrar::Registrar;
use crate::domain::webauth::{digest, Started};
use crate::domain::Urls;
use crate::error::Error;
use crate::ids::{AppId, MerchantId, OpenPlatformId, Secret};
use crate::items::component::{self as cmp, AuthCode};
use crate::items::{registry as reg, token};
use crate::model::{AppKind, Auth, Owner, Role};
use crate::ports::{Clock, Ids};
use crate::registry::{App, AppInfo};
use crate::store::{ItemExt, Store, StoreError};
use crate::wechat::push as wx;

/// An event signed further from now than this is a replay, not WeChat.
const MAX_AGE_SECS: i64 = 300;
/// An authorization code's record outlives the code (10 minutes) well.
const AUTH_CODE_RECORD_SECS: i64 = 3600;
/// How long an onboarding outlives its pre_auth_code: the merchant may finish the approval it
/// began just before the code expired, and come back with the code WeChat gave.
const ONBOARDING_GRACE_SECS: i64 = 600;
/// How long a second request for one code waits for the first to finish registering.
const WAIT_FOR_FIRST: Duration = Duration::from_millis(4000);
/// How long the way back waits for WeChat's `authorized` event before registering itself.
const WAIT_FOR_EVENT: Duration = Duration::from_millis(2000);

/// What the third-party platform's routes need.
pub struct Components<'a> {
    pub broker: Broker<'a>,
    pub registrar: Registrar<'a>,
    pub apps: &'a dyn Directory,
    pub urls: &'a Urls,
}

/// A one-time onboarding link for `merchant` (`wxbridge onboard`, the admin API): the merchant
/// opens it without any credential of the bridge, once, within `life_secs`.
pub async fn issue_link(
    store: &dyn Store,
    clock: &dyn Clock,
    ids: &dyn Ids,
    public_base: &str,
    merchant: &MerchantId,
    life_secs: i64,
) -> Result<String, Error> {
    let token = ids.token();
    store.write(cmp::link(&token, merchant, clock.now_secs() + life_secs)).await?;
    Ok(format!("{public_base}/v1/component/onboard?merchant={merchant}&link={token}"))
}

/// An authorization event, checked and decrypted.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Ticket {
        ticket: Secret,
        created: i64,
    },
    Authorized {
        appid: AppId,
        code: Secret,
        pre_auth_code: Option<Secret>,
        created: i64,
    },
    Unauthorized {
        appid: AppId,
        created: i64,
    },
    /// Another InfoType (component-side notices the bridge does not act on).
    Other(String),
}

fn field(v: Option<String>, name: &str) -> Result<String, Error> {
    v.filter(|s| !s.is_empty()).ok_or_else(|| Error::InvalidRequest(format!("authorization event without {name}")))
}

impl Components<'_> {
    fn component(&self) -> Result<&crate::component::Component, Error> {
        // A bridge without a third-party platform has no such route to serve.
        self.broker.component.ok_or(Error::RouteNotFound)
    }

    /// Checks and opens one authorization event.
    pub fn open(&self, q: &PushQuery, body: &[u8]) -> Result<Event, Error> {
        let c = self.component()?;
        if body.len() > wx::MAX_PUSH_BODY {
            return Err(Error::PayloadTooLarge(wx::MAX_PUSH_BODY));
        }
        let (ts, nonce, msg_sig) = match (&q.timestamp, &q.nonce, &q.msg_signature) {
            (Some(t), Some(n), Some(m)) => (t, n, m),
            _ => return Err(Error::SignatureInvalid),
        };
        let signed_at: i64 = ts.parse().map_err(|_| Error::SignatureInvalid)?;
        if (self.broker.clock.now_secs() - signed_at).abs() > MAX_AGE_SECS {
            return Err(Error::SignatureInvalid);
        }
        let enc = wx::parse(body)?.encrypt.ok_or(Error::SignatureInvalid)?;
        wx::verify_msg_signature(&c.token, ts, nonce, &enc, msg_sig)?;
        let m = wx::parse_event(c.crypto.decrypt(&enc)?.as_bytes())?;
        if m.app_id.as_deref() != Some(c.appid.as_str()) {
            return Err(Error::InvalidRequest("an authorization event for another third-party platform".into()));
        }
        let appid = |v: Option<String>| AppId::parse(&field(v, "AuthorizerAppid")?);
        let info_type = m.info_type.clone().unwrap_or_default();
        Ok(match info_type.as_str() {
            "component_verify_ticket" => Event::Ticket {
                ticket: Secret::new(field(m.component_verify_ticket, "ComponentVerifyTicket")?),
                created: m.create_time,
            },
            "authorized" | "updateauthorized" => Event::Authorized {
                appid: appid(m.authorizer_appid)?,
                code: Secret::new(field(m.authorization_code, "AuthorizationCode")?),
                pre_auth_code: m.pre_auth_code.filter(|p| !p.is_empty()).map(Secret::new),
                created: m.create_time,
            },
            "unauthorized" => Event::Unauthorized { appid: appid(m.authorizer_appid)?, created: m.create_time },
            _ => Event::Other(info_type),
        })
    }

    /// `POST /v1/component/events`: acts on one event. An event that cannot be acted on
    /// (an onboarding the bridge never made, a code WeChat refuses) is dropped with a metric:
    /// WeChat's retry would fare no better.
    pub async fn event(&self, q: &PushQuery, body: &[u8]) -> Result<(), Error> {
        match self.open(q, body)? {
            Event::Ticket { ticket, created } => self.keep_ticket(&ticket, created).await,
            Event::Authorized { appid, code, pre_auth_code, created } => {
                let onboarding = pre_auth_code.as_ref().map(|p| cmp::digest(p.expose()));
                let merchant = match &onboarding {
                    Some(id) => self.onboarding_merchant(id).await?,
                    None => None,
                };
                let Some(merchant) = merchant else {
                    crate::metrics::count(crate::metrics::Counter::ComponentEventDropped);
                    tracing::warn!(%appid, "an authorization for no onboarding of this bridge: nothing registered");
                    return Ok(());
                };
                match self.register(&merchant, &code, created).await {
                    Ok(_) => Ok(()),
                    Err(e @ (Error::AuthCodeInvalid | Error::RegistryConflict(_) | Error::ReauthorizationRequired)) => {
                        crate::metrics::count(crate::metrics::Counter::ComponentEventDropped);
                        tracing::warn!(%appid, code = e.code(), "an authorization event not acted on");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Event::Unauthorized { appid, created } => self.unauthorized(&appid, created).await,
            Event::Other(kind) => {
                tracing::info!(info_type = kind.as_str(), "authorization event ignored");
                Ok(())
            }
        }
    }

    /// Keeps the newest ticket: an older one (a replay, a late retry) changes nothing.
    async fn keep_ticket(&self, ticket: &Secret, created: i64) -> Result<(), Error> {
        let c = self.component()?;
        let store = self.broker.store;
        for _ in 0..3 {
            let seen = cmp::Ticket::from_item(store.get(&cmp::ticket_key(&c.appid)).await?.as_ref());
            if seen.as_ref().is_some_and(|t| t.created >= created) {
                return Ok(());
            }
            match store.write(cmp::keep_ticket(&c.appid, ticket, created, seen.map(|t| t.created))).await {
                Ok(()) => {
                    tracing::info!(created, "component_verify_ticket kept");
                    return Ok(());
                }
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn onboarding(&self, id: &str) -> Result<Option<cmp::Onboarding>, Error> {
        let it = self.broker.store.get(&cmp::onboarding_key(id)).await?;
        cmp::onboarding_of(it, self.broker.clock.now_secs())
    }

    async fn onboarding_merchant(&self, id: &str) -> Result<Option<MerchantId>, Error> {
        Ok(self.onboarding(id).await?.map(|o| o.merchant))
    }

    /// A one-time onboarding link for `merchant` (the admin API): see [`issue_link`].
    pub async fn issue_link(&self, merchant: &MerchantId, life_secs: i64) -> Result<String, Error> {
        self.component()?;
        let b = &self.broker;
        issue_link(b.store, b.clock, b.ids, &self.urls.public_base, merchant, life_secs).await
    }

    /// A link made for `merchant`, alive and unspent; anything else (another merchant's,
    /// spent, expired) is the same refusal.
    pub async fn check_link(&self, merchant: &MerchantId, token: &str) -> Result<(), Error> {
        let (store, now) = (self.broker.store, self.broker.clock.now_secs());
        match crate::items::live(store.get(&cmp::link_key(token)).await?, cmp::TTL, now) {
            Some(it) if it.s(cmp::MERCHANT) == Some(merchant.as_str()) => Ok(()),
            _ => Err(Error::OnboardingInvalid),
        }
    }

    /// Spends a link made for `merchant`, once.
    pub async fn redeem_link(&self, merchant: &MerchantId, token: &str) -> Result<(), Error> {
        self.check_link(merchant, token).await?;
        match self.broker.store.write(cmp::spend_link(token, merchant)).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => Err(Error::OnboardingInvalid),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /v1/component/onboard?merchant=`: where to send the merchant to approve the
    /// platform (WeChat's authorization page, with a fresh pre_auth_code), and the cookie that
    /// binds the way back to this browser.
    pub async fn onboard(&self, merchant: &MerchantId) -> Result<Started, Error> {
        let c = self.component()?;
        let b = &self.broker;
        let (code, expires_in) = b.with_component_token(|t| async move { b.wechat.pre_auth_code(c, &t).await }).await?;
        let id = cmp::digest(code.expose());
        let ttl = b.clock.now_secs() + expires_in.max(0) + ONBOARDING_GRACE_SECS;
        let cookie = b.ids.token();
        b.store.write(cmp::onboarding(&id, merchant, &digest(&cookie), ttl)).await?;
        let back = format!("{}/v1/component/authorized?merchant={merchant}&onboarding={id}", self.urls.public_base);
        let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let location = format!(
            "{}/cgi-bin/componentloginpage?component_appid={}&pre_auth_code={}&redirect_uri={}&auth_type=3",
            self.urls.mp_base,
            c.appid,
            enc(code.expose()),
            enc(&back)
        );
        Ok(Started { location, cookie })
    }

    /// `GET /v1/component/authorized?merchant&onboarding&auth_code`: the merchant is back
    /// from WeChat's page; registers what it approved.
    ///
    /// The way back must come to the browser that started the onboarding (its cookie), so a
    /// redirect URL that leaks registers nothing. WeChat's `authorized` event, which names the
    /// onboarding by its pre_auth_code, normally lands first and registers; the redirect then
    /// only shows what it did, waiting for it a moment. Only when no event came does the
    /// redirect register the code itself.
    pub async fn authorized(
        &self,
        merchant: &MerchantId,
        onboarding: &str,
        code: &Secret,
        cookies: &[&str],
    ) -> Result<Vec<AppInfo>, Error> {
        self.component()?;
        let o = self.onboarding(onboarding).await?.ok_or(Error::OnboardingInvalid)?;
        let ours = cookies.iter().any(|c| crate::crypto::same_secret(digest(c).as_bytes(), o.binding.as_bytes()));
        if &o.merchant != merchant || !ours {
            return Err(Error::OnboardingInvalid);
        }
        let (store, clock) = (self.broker.store, self.broker.clock);
        let started = clock.now_millis();
        let seen = loop {
            if AuthCode::from_item(store.get(&cmp::auth_code_key(code)).await?, clock.now_secs())?.is_some() {
                break true;
            }
            if clock.now_millis() - started >= WAIT_FOR_EVENT.as_millis() as i64 {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let done = match seen {
            true => self.registered_before(merchant, code).await,
            false => self.register(merchant, code, clock.now_secs()).await,
        };
        let apps = done.map_err(|e| match e {
            // The page is public: it does not name the tenant that holds the app.
            Error::RegistryConflict(_) => Error::RegistryConflict("this app is registered to another tenant".into()),
            e => e,
        })?;
        let mut out = Vec::new();
        for appid in apps {
            if let Some(app) = self.apps.app(&appid).await? {
                out.push(app.public());
            }
        }
        Ok(out)
    }

    /// Registers what `code` authorized, once: a second request for the same code (the event
    /// and the redirect both carry it, and either may be replayed) answers the first's apps.
    async fn register(&self, merchant: &MerchantId, code: &Secret, at_secs: i64) -> Result<Vec<AppId>, Error> {
        let (store, clock) = (self.broker.store, self.broker.clock);
        let me = self.broker.ids.token();
        let claim = cmp::claim_auth_code(code, merchant, &me, clock.now_secs() + AUTH_CODE_RECORD_SECS);
        match store.write(claim).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => return self.registered_before(merchant, code).await,
            Err(e) => return Err(e.into()),
        }
        match self.register_claimed(merchant, code, at_secs).await {
            Ok(appid) => {
                let done = vec![appid];
                store.write(cmp::auth_code_done(code, &me, &done)).await?;
                Ok(done)
            }
            // WeChat spent the code: the refusal is its outcome, for the event and the redirect alike.
            Err(e @ Error::RegistryConflict(_)) => {
                let _ = store.write(cmp::auth_code_refused(code, &me)).await;
                Err(e)
            }
            Err(e) => {
                let _ = store.write(cmp::release_auth_code(code, &me)).await;
                Err(e)
            }
        }
    }

    async fn registered_before(&self, merchant: &MerchantId, code: &Secret) -> Result<Vec<AppId>, Error> {
        let (store, clock) = (self.broker.store, self.broker.clock);
        let started = clock.now_millis();
        loop {
            match AuthCode::from_item(store.get(&cmp::auth_code_key(code)).await?, clock.now_secs())? {
                Some(AuthCode::Done { merchant: m, apps }) if &m == merchant => return Ok(apps),
                Some(AuthCode::Claimed { merchant: m, .. }) if &m == merchant => {}
                Some(AuthCode::Refused { merchant: m }) if &m == merchant => {
                    return Err(Error::RegistryConflict("this app is registered to another tenant".into()))
                }
                // Claimed for another merchant: a replay under someone else's onboarding.
                Some(_) => return Err(Error::AuthCodeInvalid),
                // The first gave up: WeChat has spent the code, or will answer the same.
                None => return Err(Error::AuthCodeInvalid),
            }
            if clock.now_millis() - started > WAIT_FOR_FIRST.as_millis() as i64 {
                return Err(Error::Busy);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn register_claimed(&self, merchant: &MerchantId, code: &Secret, at_secs: i64) -> Result<AppId, Error> {
        let c = self.component()?;
        let b = &self.broker;
        let grant = b.with_component_token(|t| async move { b.wechat.query_auth(c, &t, code).await }).await?;
        let appid = &grant.appid;
        let info = b.with_component_token(|t| async move { b.wechat.authorizer_info(c, &t, appid).await }).await?;
        // unionids follow the app's own open-platform binding, which the platform only reads.
        // Not knowable (the permission not granted, WeChat down): the app keeps no unionid
        // rather than the code being spent for nothing.
        let open_platform = match b.wechat.open_platform_of(&grant.access_token, appid).await {
            Ok(Some(op)) => OpenPlatformId::parse(op.as_str()).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(%appid, code = e.code(), "the app's open-platform account is unknown: its unionids are not used");
                None
            }
        };
        let kind = if info.mini_program { AppKind::MiniProgram } else { AppKind::OfficialAccount };
        let owner = Owner::Merchant(merchant.clone());
        let app = App {
            appid: appid.clone(),
            name: info.name,
            kind,
            role: Role::default_for(kind, &owner),
            owner,
            open_platform,
            auth: Auth::Component,
            secret: Secret::new(""),
            token: None,
            encoding_aes_key: None,
            safe_mode: true,
            primary: false,
        };
        let expires = b.clock.now_millis() + grant.expires_in.max(0) * 1000;
        let tokens = token::authorized(
            &token::key(appid),
            &grant.access_token,
            expires,
            &grant.refresh_token,
            b.clock.now_millis(),
        );
        self.registrar.authorize(&app, at_secs, tokens).await?;
        tracing::info!(%appid, %merchant, kind = %kind, "app registered by its merchant's authorization");
        Ok(appid.clone())
    }

    /// `unauthorized`: the app stops (its logins answer `unknown_app`); its links stay, and
    /// so does its owner (a tombstone, see [`reg::STOPPED_AT`]).
    async fn unauthorized(&self, appid: &AppId, created: i64) -> Result<(), Error> {
        let Some(it) = self.broker.store.get(&reg::app_key(appid)).await? else { return Ok(()) };
        let (app, _) = reg::app_from_item(appid, &it)?;
        if app.auth != Auth::Component {
            tracing::warn!(%appid, "unauthorized for an app that is not a component app: ignored");
            return Ok(());
        }
        let authorized_at = it.n(reg::AUTHORIZED_AT);
        if authorized_at.is_some_and(|at| at > created) || it.contains_key(reg::STOPPED_AT) {
            tracing::info!(%appid, "an unauthorized older than the app's last authorization, or repeated: ignored");
            return Ok(());
        }
        match self.registrar.stop(appid, authorized_at, created).await {
            Ok(()) => {}
            // Authorized again meanwhile: the newer authorization stands.
            Err(Error::Busy) => return Ok(()),
            Err(e) => return Err(e),
        }
        // Its tokens died with the authorization.
        self.broker.store.write(crate::store::Write::Delete { key: token::key(appid), cond: vec![] }).await?;
        tracing::info!(%appid, "app stopped: its merchant withdrew the authorization");
        Ok(())
    }
}
