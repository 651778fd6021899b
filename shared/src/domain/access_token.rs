//! One shared cache of each token the bridge holds at WeChat (`TOK#<appid>` in the store),
//! refreshed by a single writer holding a conditional lease — so many Lambdas never stampede
//! WeChat, burn the daily quota, or invalidate each other's tokens. Three kinds share it:
//!
//! - an app with its own secret: `stable_token`;
//! - the third-party platform: `component_access_token`, from the last verify ticket WeChat
//!   pushed (kept in the store, so a cold start loses nothing);
//! - an app that authorized the platform: `authorizer_access_token`, from its refresh token,
//!   which is stored in the same conditional write as every token it comes with.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::component::Component;
use crate::error::Error;
use crate::ids::{Code, Secret};
use crate::items::component as cmp;
use crate::items::token::{self, Cached};
use crate::model::Auth;
use crate::ports::{Clock, Ids};
use crate::registry::App;
use crate::store::{Key, Store, StoreError};
use crate::wechat::{refresh_token_invalid, token_invalid, Session, WeChat, WebGrant};

/// Refresh this long before WeChat's expiry (stable tokens overlap by 5 minutes; a new
/// component or authorizer token leaves the old one 5 minutes).
const EARLY_SECS: i64 = 300;
/// A lease older than this is abandoned (its holder died) and may be taken over. A slow
/// holder outliving it (an authorizer refresh makes up to three WeChat calls) costs at worst a
/// second exchange of the same refresh token: WeChat refuses one (61023), the recovery mends
/// it, and the authorization is marked gone only when nobody else stored a newer token.
const LEASE_MILLIS: i64 = 10_000;
/// Pauses while another holds the lease: together longer than a lease lives (about 15 s), so a
/// caller already waiting when the holder dies takes over instead of giving up.
const WAIT_STEPS: u32 = 60;

/// What the broker needs: the shared cache, WeChat, time, lease ids, and the third-party
/// platform when one is configured.
#[derive(Clone, Copy)]
pub struct Broker<'a> {
    pub store: &'a dyn Store,
    pub wechat: &'a dyn WeChat,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn Ids,
    pub component: Option<&'a Component>,
}

/// Whose token, and how WeChat gives it.
#[derive(Clone, Copy)]
enum Source<'b> {
    Stable(&'b App),
    Component(&'b Component),
    Authorizer(&'b App, &'b Component),
}

impl Source<'_> {
    fn key(&self) -> Key {
        match self {
            Source::Stable(app) | Source::Authorizer(app, _) => token::key(&app.appid),
            Source::Component(c) => token::key(&c.appid),
        }
    }
}

/// A fresh token, and the refresh token to keep with it.
struct Fetched {
    token: Secret,
    expires_in: i64,
    refresh: Option<Secret>,
}

type Boxed<'f, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'f>>;

impl<'a> Broker<'a> {
    /// The third-party platform, which a component app cannot do without.
    pub fn component(&self) -> Result<&'a Component, Error> {
        self.component.ok_or_else(|| Error::Internal("a component app, but no third-party platform configured".into()))
    }

    fn source<'b>(&self, app: &'b App) -> Result<Source<'b>, Error>
    where
        'a: 'b,
    {
        Ok(match app.auth {
            Auth::Secret => Source::Stable(app),
            Auth::Component => Source::Authorizer(app, self.component()?),
        })
    }

    /// A valid access token for `app`, from the shared cache or freshly fetched by one caller.
    pub async fn access_token(&self, app: &App) -> Result<Secret, Error> {
        self.get(self.source(app)?, None).await
    }

    /// The third-party platform's component_access_token.
    pub async fn component_token(&self) -> Result<Secret, Error> {
        self.get(Source::Component(self.component()?), None).await
    }

    /// Calls `f` with the app's token; when WeChat says the token is bad, refreshes once and
    /// retries once.
    pub async fn with_token<T, F, Fut>(&self, app: &App, f: F) -> Result<T, Error>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.retrying(self.source(app)?, f).await
    }

    /// Calls `f` with the component_access_token, refreshing once and retrying once as above.
    pub async fn with_component_token<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.retrying(Source::Component(self.component()?), f).await
    }

    async fn retrying<T, F, Fut>(&self, src: Source<'_>, f: F) -> Result<T, Error>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let token = self.get(src, None).await?;
        match f(token.clone()).await {
            Err(e) if token_invalid(&e) => {
                tracing::warn!(key = %src.key().pk, "token refused by WeChat: refreshing once");
                let fresh = self.get(src, Some(&token)).await?;
                f(fresh).await
            }
            other => other,
        }
    }

    /// A mini-program login code → session, with the app's secret or through the platform.
    pub async fn code2session(&self, app: &App, code: &Code) -> Result<Session, Error> {
        match app.auth {
            Auth::Secret => self.wechat.code2session(app, code).await,
            Auth::Component => {
                let c = self.component()?;
                self.with_component_token(|t| async move { self.wechat.component_code2session(app, code, c, &t).await })
                    .await
            }
        }
    }

    /// An official account's web-authorization code → openid, likewise.
    pub async fn web_grant(&self, app: &App, code: &Code) -> Result<WebGrant, Error> {
        match app.auth {
            Auth::Secret => self.wechat.web_grant(app, code).await,
            Auth::Component => {
                let c = self.component()?;
                self.with_component_token(|t| async move { self.wechat.component_web_grant(app, code, c, &t).await })
                    .await
            }
        }
    }

    /// `stale`: a token WeChat refused; a cached token equal to it does not count as valid.
    /// Boxed: an authorizer token's refresh asks for the component token first.
    fn get<'f>(&'f self, src: Source<'f>, stale: Option<&'f Secret>) -> Boxed<'f, Secret> {
        Box::pin(async move {
            let key = src.key();
            for step in 0..WAIT_STEPS {
                let now = self.clock.now_millis();
                let cached = Cached::from_item(self.store.get(&key).await?.as_ref());
                if cached.reauth {
                    return Err(Error::ReauthorizationRequired);
                }
                let fresh = cached.expires_millis.is_some_and(|e| e - EARLY_SECS * 1000 > now);
                if let Some(t) =
                    cached.token.as_ref().filter(|t| fresh && stale.is_none_or(|s| s.expose() != t.expose()))
                {
                    return Ok(t.clone());
                }
                // Take the lease: free, or abandoned by a holder that died. The version makes
                // "free" mean "free, and nobody refreshed since I looked": a caller that read
                // before another's refresh must not refresh again.
                let abandoned = cached.lease_until_millis.is_some_and(|u| u < now);
                if cached.lease.is_some() && !abandoned {
                    tokio::time::sleep(Duration::from_millis((50 + 10 * u64::from(step)).min(300))).await;
                    continue;
                }
                if let Source::Authorizer(..) = src {
                    // Before the lease, so the lease covers only the authorizer's own calls.
                    self.component_token().await?;
                }
                let me = self.ids.token();
                match self.store.write(cached.take_lease(&key, &me, now + LEASE_MILLIS, abandoned)).await {
                    Ok(()) => {
                        let version = cached.version.unwrap_or(0) + 1;
                        return self.refresh(src, &key, &me, version, stale.is_some(), cached.refresh.as_ref()).await;
                    }
                    Err(StoreError::ConditionFailed { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(Error::WeChatUnavailable)
        })
    }

    async fn refresh(
        &self,
        src: Source<'_>,
        key: &Key,
        lease: &str,
        version: i64,
        force: bool,
        refresh: Option<&Secret>,
    ) -> Result<Secret, Error> {
        let fetched = match self.fetch(src, force, refresh).await {
            Ok(f) => f,
            Err(Error::ReauthorizationRequired) => {
                crate::metrics::count(crate::metrics::Counter::Reauthorization);
                tracing::error!(key = %key.pk, "the app's authorization of the platform is gone: its merchant must authorize again");
                let _ = self.store.write(token::mark_reauth(key, lease)).await;
                return Err(Error::ReauthorizationRequired);
            }
            Err(e) => {
                // Give the lease back so the next caller may try at once.
                let _ = self.store.write(token::release_lease(key, lease)).await;
                return Err(e);
            }
        };
        let expires = self.clock.now_millis() + fetched.expires_in.max(0) * 1000;
        let write = token::store(key, lease, &fetched.token, expires, version, fetched.refresh.as_ref());
        match self.store.write(write).await {
            Ok(()) => {}
            // Another took the lease over (it thought this holder dead). A refresh token lost
            // this way is mended from api_get_authorizer_info on the next refresh.
            Err(StoreError::ConditionFailed { .. }) => tracing::warn!(key = %key.pk, "token lease lost before storing"),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(key = %key.pk, expires_in = fetched.expires_in, "token refreshed");
        Ok(fetched.token)
    }

    async fn fetch(&self, src: Source<'_>, force: bool, refresh: Option<&Secret>) -> Result<Fetched, Error> {
        match src {
            Source::Stable(app) => {
                let (token, expires_in) = self.wechat.stable_token(app, force).await?;
                Ok(Fetched { token, expires_in, refresh: None })
            }
            Source::Component(c) => {
                let ticket = cmp::Ticket::from_item(self.store.get(&cmp::ticket_key(&c.appid)).await?.as_ref())
                    .ok_or_else(|| {
                        tracing::error!("no component_verify_ticket stored yet: WeChat pushes one every 10 minutes");
                        Error::WeChatUnavailable
                    })?;
                let (token, expires_in) = self.wechat.component_token(c, &ticket.ticket).await.inspect_err(|e| {
                    if matches!(e, Error::WeChatError(61005 | 61006)) {
                        crate::metrics::count(crate::metrics::Counter::ComponentTicket);
                        tracing::error!(errcode = ?e, "the stored component_verify_ticket was refused");
                    }
                })?;
                Ok(Fetched { token, expires_in, refresh: None })
            }
            Source::Authorizer(app, c) => {
                let exchange = |refresh: Secret| async move {
                    self.with_component_token(|t| {
                        let refresh = refresh.clone();
                        async move { self.wechat.authorizer_token(c, &t, &app.appid, &refresh).await }
                    })
                    .await
                };
                let first = match refresh {
                    Some(r) => exchange(r.clone()).await,
                    None => Err(Error::WeChatError(61023)),
                };
                let grant = match first {
                    Err(e) if refresh_token_invalid(&e) => {
                        // Lost or stale (another writer's rotation never stored): WeChat still
                        // knows the current one.
                        tracing::warn!(appid = %app.appid, "authorizer refresh token refused: recovering it");
                        let info = self
                            .with_component_token(
                                |t| async move { self.wechat.authorizer_info(c, &t, &app.appid).await },
                            )
                            .await?;
                        match exchange(info.refresh_token).await {
                            Err(e) if refresh_token_invalid(&e) => {
                                // Refused twice. Gone for good only if nobody rotated the token
                                // meanwhile (a holder that outlived its lease): else, retry.
                                let now = Cached::from_item(self.store.get(&src.key()).await?.as_ref());
                                let same = now.refresh.as_ref().map(Secret::expose) == refresh.map(Secret::expose);
                                Err(if same { Error::ReauthorizationRequired } else { Error::Busy })
                            }
                            other => other,
                        }
                    }
                    other => other,
                }?;
                Ok(Fetched {
                    token: grant.access_token,
                    expires_in: grant.expires_in,
                    refresh: Some(grant.refresh_token),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
