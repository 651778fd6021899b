//! One shared cache of each app's access_token (`TOK#<appid>` in the store), refreshed by a
//! single writer holding a conditional lease, with `stable_token` — so many Lambdas never
//! stampede WeChat, burn the daily quota, or invalidate each other's tokens.

use std::time::Duration;

use crate::error::Error;
use crate::ids::Secret;
use crate::items::token::{self, Cached};
use crate::ports::{Clock, Ids};
use crate::registry::App;
use crate::store::{Key, Store, StoreError};
use crate::wechat::{token_invalid, WeChat};

/// Refresh this long before WeChat's expiry (stable tokens overlap by 5 minutes).
const EARLY_SECS: i64 = 300;
/// A lease older than this is abandoned (its holder died) and may be taken over.
const LEASE_MILLIS: i64 = 10_000;
/// Pauses while another holds the lease: together longer than a lease lives (about 15 s), so a
/// caller already waiting when the holder dies takes over instead of giving up.
const WAIT_STEPS: u32 = 60;

/// What the broker needs: the shared cache, WeChat, time and lease ids.
#[derive(Clone, Copy)]
pub struct Broker<'a> {
    pub store: &'a dyn Store,
    pub wechat: &'a dyn WeChat,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn Ids,
}

impl Broker<'_> {
    /// A valid access token for `app`, from the shared cache or freshly fetched by one caller.
    pub async fn access_token(&self, app: &App) -> Result<Secret, Error> {
        self.get(app, None).await
    }

    /// Calls `f` with the app's token; when WeChat says the token is bad, refreshes once and
    /// retries once.
    pub async fn with_token<T, F, Fut>(&self, app: &App, f: F) -> Result<T, Error>
    where
        F: Fn(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let token = self.access_token(app).await?;
        match f(token.clone()).await {
            Err(e) if token_invalid(&e) => {
                tracing::warn!(appid = %app.appid, "access token refused by WeChat: refreshing once");
                let fresh = self.get(app, Some(&token)).await?;
                f(fresh).await
            }
            other => other,
        }
    }

    /// `stale`: a token WeChat refused; a cached token equal to it does not count as valid.
    async fn get(&self, app: &App, stale: Option<&Secret>) -> Result<Secret, Error> {
        let key = token::key(&app.appid);
        for step in 0..WAIT_STEPS {
            let now = self.clock.now_millis();
            let cached = Cached::from_item(self.store.get(&key).await?.as_ref());
            let fresh = cached.expires_millis.is_some_and(|e| e - EARLY_SECS * 1000 > now);
            if let Some(t) = cached.token.as_ref().filter(|t| fresh && stale.is_none_or(|s| s.expose() != t.expose())) {
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
            let me = self.ids.token();
            match self.store.write(cached.take_lease(&key, &me, now + LEASE_MILLIS, abandoned)).await {
                Ok(()) => {
                    let version = cached.version.unwrap_or(0) + 1;
                    return self.refresh(app, &key, &me, version, stale.is_some()).await;
                }
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::WeChatUnavailable)
    }

    async fn refresh(&self, app: &App, key: &Key, lease: &str, version: i64, force: bool) -> Result<Secret, Error> {
        let (token, expires_in) = match self.wechat.stable_token(app, force).await {
            Ok(t) => t,
            Err(e) => {
                // Give the lease back so the next caller may try at once.
                let _ = self.store.write(token::release_lease(key, lease)).await;
                return Err(e);
            }
        };
        let expires = self.clock.now_millis() + expires_in.max(0) * 1000;
        match self.store.write(token::store(key, lease, &token, expires, version)).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(appid = %app.appid, expires_in, "access token refreshed");
        Ok(token)
    }
}

#[cfg(test)]
mod tests;
