//! One shared cache of each app's access_token (`TOK#<appid>` in the store), refreshed by a
//! single writer holding a conditional lease, with `stable_token` — so many Lambdas never
//! stampede WeChat, burn the daily quota, or invalidate each other's tokens.

use std::time::Duration;

use crate::bridge::Bridge;
use crate::error::Error;
use crate::ids::{AppId, Secret};
use crate::registry::App;
use crate::store::{s, Attr, Check, ItemExt, Key, StoreError, Write};
use crate::wechat::token_invalid;

/// Refresh this long before WeChat's expiry (stable tokens overlap by 5 minutes).
const EARLY_SECS: i64 = 300;
/// A lease older than this is abandoned (its holder died) and may be taken over.
const LEASE_MILLIS: i64 = 10_000;
const WAIT_STEPS: u32 = 40;

pub fn key(appid: &AppId) -> Key {
    Key::new(format!("TOK#{appid}"), "TOK")
}

/// A valid access token for `app`, from the shared cache or freshly fetched by one caller.
pub async fn access_token(b: &Bridge, app: &App) -> Result<Secret, Error> {
    get(b, app, None).await
}

/// Calls `f` with the app's token; when WeChat says the token is bad, refreshes once and
/// retries once.
pub async fn with_token<T, F, Fut>(b: &Bridge, app: &App, f: F) -> Result<T, Error>
where
    F: Fn(Secret) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let token = access_token(b, app).await?;
    match f(token.clone()).await {
        Err(e) if token_invalid(&e) => {
            tracing::warn!(appid = %app.appid, "access token refused by WeChat: refreshing once");
            let fresh = get(b, app, Some(&token)).await?;
            f(fresh).await
        }
        other => other,
    }
}

/// `stale`: a token WeChat refused; a cached token equal to it does not count as valid.
async fn get(b: &Bridge, app: &App, stale: Option<&Secret>) -> Result<Secret, Error> {
    let key = key(&app.appid);
    for step in 0..WAIT_STEPS {
        let now = b.clock.now_millis();
        let item = b.store.get(&key).await?;
        let cached = item.as_ref().and_then(|it| {
            let token = it.s("token")?;
            let fresh = it.n("expires").is_some_and(|e| e - EARLY_SECS * 1000 > now);
            (fresh && stale.is_none_or(|s| s.expose() != token)).then(|| Secret::new(token))
        });
        if let Some(t) = cached {
            return Ok(t);
        }
        // Take the lease: free, or abandoned by a holder that died.
        let lease = item.as_ref().and_then(|it| it.s("lease").map(str::to_owned));
        let lease_expired = item.as_ref().and_then(|it| it.n("lease_until")).is_some_and(|u| u < now);
        // The version makes "free" mean "free, and nobody refreshed since I looked": a caller
        // that read before another's refresh must not refresh again.
        let version = item.as_ref().and_then(|it| it.n("version"));
        let unchanged = match version {
            Some(v) => Check::Eq("version".into(), Attr::N(v)),
            None => Check::Absent("version".into()),
        };
        let cond = match &lease {
            None => vec![Check::Absent("lease".into()), unchanged],
            Some(l) if lease_expired => vec![Check::Eq("lease".into(), s(l.as_str()))],
            Some(_) => {
                tokio::time::sleep(Duration::from_millis(50 + 10 * u64::from(step))).await;
                continue;
            }
        };
        let me = b.ids.token();
        let take = Write::Update {
            key: key.clone(),
            set: vec![("lease".into(), s(me.as_str())), ("lease_until".into(), Attr::N(now + LEASE_MILLIS))],
            remove: vec![],
            cond,
        };
        match b.store.write(take).await {
            Ok(()) => return refresh(b, app, &key, &me, version.unwrap_or(0) + 1, stale.is_some()).await,
            Err(StoreError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::WeChatUnavailable)
}

async fn refresh(b: &Bridge, app: &App, key: &Key, lease: &str, version: i64, force: bool) -> Result<Secret, Error> {
    let fetched = b.wechat.stable_token(app, force).await;
    let release_cond = vec![Check::Eq("lease".into(), s(lease))];
    let (token, expires_in) = match fetched {
        Ok(t) => t,
        Err(e) => {
            // Give the lease back so the next caller may try at once.
            let release = Write::Update {
                key: key.clone(),
                set: vec![],
                remove: vec!["lease".into(), "lease_until".into()],
                cond: release_cond,
            };
            let _ = b.store.write(release).await;
            return Err(e);
        }
    };
    let expires = b.clock.now_millis() + expires_in.max(0) * 1000;
    let store = Write::Update {
        key: key.clone(),
        set: vec![
            ("token".into(), s(token.expose())),
            ("expires".into(), Attr::N(expires)),
            ("version".into(), Attr::N(version)),
        ],
        remove: vec!["lease".into(), "lease_until".into()],
        cond: release_cond,
    };
    match b.store.write(store).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(appid = %app.appid, expires_in, "access token refreshed");
    Ok(token)
}
