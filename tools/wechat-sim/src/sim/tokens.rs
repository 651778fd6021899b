//! Base access tokens (contract §3): `GET /cgi-bin/token`, `POST /cgi-bin/stable_token`, and the
//! check every API that takes `?access_token=` does first.
//!
//! * `/cgi-bin/token` issues a new token on every call; the previous one stays valid for 5 more
//!   minutes (never past its own expiry), any older one dies at once.
//! * `/cgi-bin/stable_token` is isolated from it. Without `force_refresh` it returns the current
//!   stable token with the seconds it has left; in its last 5 minutes it is renewed (the old one
//!   lives out its 5 minutes), so `expires_in >= 300` always holds. `force_refresh: true`
//!   invalidates the current stable token at once and issues a new one (20 times a day).
//! * On use: missing → 41001, unknown or superseded → 40001, past its 7200 s → 42001.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{errcode, lock, param, Sim, State, WxError};
use crate::ids;
use crate::registry::App;

/// An access token lives 7200 seconds.
pub const ACCESS_TOKEN_TTL_SECONDS: i64 = 7200;
/// How long an old token stays valid after a new one was issued (and when a stable token is renewed).
pub const TOKEN_OVERLAP_MILLIS: i64 = 5 * 60 * 1000;
/// `/cgi-bin/token` calls per app and day (contract §3.1); more answer 45009.
pub const TOKEN_DAILY_QUOTA: u32 = 2000;
/// `force_refresh: true` stable-token calls per app and day (contract §3.2); more answer 45009.
pub const STABLE_FORCE_REFRESH_DAILY_QUOTA: u32 = 20;
/// Tokens are forgotten a day after they stopped being valid (then they answer 40001 anyway).
const TOKEN_RETENTION_MILLIS: i64 = 24 * 60 * 60 * 1000;
const TOKEN_LEN: usize = 136;
/// WeChat's quotas reset at midnight Beijing time (UTC+8).
const BEIJING_OFFSET_MILLIS: i64 = 8 * 60 * 60 * 1000;
const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// What `/cgi-bin/token` and `/cgi-bin/stable_token` answer on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessToken {
    pub access_token: String,
    pub expires_in: i64,
}

/// What a token in [`State::access_tokens`] was issued as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// An app's own token (`/cgi-bin/token`, `/cgi-bin/stable_token`).
    App,
    /// An authorizer access token the third-party platform got for an app.
    Authorizer,
    /// A `component_access_token`; its appid is the platform's.
    Component,
}

/// An issued access token (of an app, an authorizer or the third-party platform).
#[derive(Debug)]
pub(super) struct IssuedToken {
    appid: String,
    kind: TokenKind,
    expires_at: i64,
    /// When a newer token (or a forced refresh) ended this one early.
    revoked_at: Option<i64>,
}

impl IssuedToken {
    /// When the token stops being valid, and whether that is a revocation (not its natural end).
    fn end(&self) -> (i64, bool) {
        match self.revoked_at {
            Some(r) if r < self.expires_at => (r, true),
            _ => (self.expires_at, false),
        }
    }
}

/// One app's current tokens and quota counters.
#[derive(Debug, Default)]
pub(super) struct AppTokens {
    normal: Option<String>,
    normal_prev: Option<String>,
    stable: Option<String>,
    stable_prev: Option<String>,
    quota_day: i64,
    token_calls: u32,
    force_refreshes: u32,
}

impl AppTokens {
    fn roll_day(&mut self, day: i64) {
        if self.quota_day != day {
            self.quota_day = day;
            self.token_calls = 0;
            self.force_refreshes = 0;
        }
    }
}

/// The body of `/cgi-bin/stable_token`.
#[derive(Deserialize)]
struct StableTokenBody {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    force_refresh: Option<bool>,
}

pub(super) fn revoke(tokens: &mut HashMap<String, IssuedToken>, token: &str, at: i64) {
    if let Some(t) = tokens.get_mut(token) {
        t.revoked_at = Some(t.revoked_at.map_or(at, |r| r.min(at)));
    }
}

fn issue(tokens: &mut HashMap<String, IssuedToken>, appid: &str, kind: TokenKind, now: i64) -> String {
    let token = ids::random_alphanumeric(TOKEN_LEN);
    tokens.insert(
        token.clone(),
        IssuedToken {
            appid: appid.to_owned(),
            kind,
            expires_at: now.saturating_add(ACCESS_TOKEN_TTL_SECONDS * 1000),
            revoked_at: None,
        },
    );
    token
}

/// The overlap rule of `/cgi-bin/token`, shared by component and authorizer tokens: a new token
/// in `current`, the previous one valid 5 more minutes in `prev`, any older one dead at once.
pub(super) fn rotate(
    tokens: &mut HashMap<String, IssuedToken>,
    (current, prev): (&mut Option<String>, &mut Option<String>),
    appid: &str,
    kind: TokenKind,
    now: i64,
) -> String {
    if let Some(older) = prev.take() {
        revoke(tokens, &older, now);
    }
    if let Some(previous) = current.take() {
        revoke(tokens, &previous, now.saturating_add(TOKEN_OVERLAP_MILLIS));
        *prev = Some(previous);
    }
    let token = issue(tokens, appid, kind, now);
    *current = Some(token.clone());
    token
}

pub(super) fn prune(st: &mut State, now: i64) {
    st.access_tokens.retain(|_, t| now.saturating_sub(t.end().0) < TOKEN_RETENTION_MILLIS);
}

impl Sim {
    /// The app whose credentials a token request names: a mini program or an official account
    /// (40013 otherwise) with this secret (40125 otherwise; always for a component app, which
    /// has no secret: WeChat answers a secret request for an authorized app so).
    fn token_app(&self, appid: Option<&str>, secret: Option<&str>) -> Result<&App, WxError> {
        let app = appid
            .and_then(|a| self.registry.app(a))
            .filter(|a| a.is_mini_program() || a.is_official_account())
            .ok_or(WxError(errcode::INVALID_APPID))?;
        if !app.secret_matches(secret) {
            return Err(WxError(errcode::INVALID_APPSECRET));
        }
        Ok(app)
    }

    fn quota_day(&self) -> i64 {
        self.now_millis().saturating_add(BEIJING_OFFSET_MILLIS).div_euclid(DAY_MILLIS)
    }

    /// `GET /cgi-bin/token?grant_type=client_credential&appid&secret`.
    pub fn token(&self, q: &HashMap<String, String>) -> Result<AccessToken, WxError> {
        let app = self.token_app(param(q, "appid"), param(q, "secret"))?;
        if param(q, "grant_type") != Some("client_credential") {
            return Err(WxError(errcode::INVALID_GRANT_TYPE));
        }
        let now = self.now_millis();
        let day = self.quota_day();
        let mut st = lock(&self.state);
        prune(&mut st, now);
        let State { access_tokens, app_tokens, .. } = &mut *st;
        let slot = app_tokens.entry(app.appid.clone()).or_default();
        slot.roll_day(day);
        if slot.token_calls >= TOKEN_DAILY_QUOTA {
            return Err(WxError(errcode::DAILY_QUOTA));
        }
        slot.token_calls += 1;
        let token = rotate(access_tokens, (&mut slot.normal, &mut slot.normal_prev), &app.appid, TokenKind::App, now);
        Ok(AccessToken { access_token: token, expires_in: ACCESS_TOKEN_TTL_SECONDS })
    }

    /// `POST /cgi-bin/stable_token` with its JSON body.
    pub fn stable_token(&self, body: &[u8]) -> Result<AccessToken, WxError> {
        let body: StableTokenBody = serde_json::from_slice(body).map_err(|_| WxError(errcode::DATA_FORMAT_ERROR))?;
        let nonempty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
        let app = self.token_app(nonempty(&body.appid).as_deref(), nonempty(&body.secret).as_deref())?;
        if body.grant_type.as_deref() != Some("client_credential") {
            return Err(WxError(errcode::INVALID_GRANT_TYPE));
        }
        let force = body.force_refresh.unwrap_or(false);
        let now = self.now_millis();
        let day = self.quota_day();
        let mut st = lock(&self.state);
        prune(&mut st, now);
        let State { access_tokens, app_tokens, .. } = &mut *st;
        let slot = app_tokens.entry(app.appid.clone()).or_default();
        slot.roll_day(day);
        if force {
            if slot.force_refreshes >= STABLE_FORCE_REFRESH_DAILY_QUOTA {
                return Err(WxError(errcode::DAILY_QUOTA));
            }
            slot.force_refreshes += 1;
            for old in [slot.stable.take(), slot.stable_prev.take()].into_iter().flatten() {
                revoke(access_tokens, &old, now);
            }
        } else if let Some(current) = slot.stable.clone() {
            let left = access_tokens.get(&current).map(|t| t.end().0.saturating_sub(now)).unwrap_or(0);
            if left > TOKEN_OVERLAP_MILLIS {
                return Ok(AccessToken { access_token: current, expires_in: left.div_euclid(1000) });
            }
            // The last 5 minutes: renew; the old token lives out its remaining time.
            if let Some(older) = slot.stable_prev.replace(current) {
                revoke(access_tokens, &older, now);
            }
            slot.stable = None;
        }
        let token = issue(access_tokens, &app.appid, TokenKind::App, now);
        slot.stable = Some(token.clone());
        Ok(AccessToken { access_token: token, expires_in: ACCESS_TOKEN_TTL_SECONDS })
    }

    /// The appid and kind of a live token: unknown or superseded → 40001, past its 7200 s → 42001.
    pub(super) fn live_token(&self, token: &str) -> Result<(String, TokenKind), WxError> {
        let now = self.now_millis();
        let st = lock(&self.state);
        let t = st.access_tokens.get(token).ok_or(WxError(errcode::INVALID_CREDENTIAL))?;
        let (end, revoked) = t.end();
        if now >= end {
            return Err(WxError(if revoked { errcode::INVALID_CREDENTIAL } else { errcode::ACCESS_TOKEN_EXPIRED }));
        }
        Ok((t.appid.clone(), t.kind))
    }

    /// Checks the `access_token` query parameter of an API call; the app it belongs to. An
    /// authorizer access token stands for its app; a component_access_token is no access token
    /// (40001).
    pub fn check_access_token(&self, q: &HashMap<String, String>) -> Result<&App, WxError> {
        let token = param(q, "access_token").ok_or(WxError(errcode::MISSING_ACCESS_TOKEN))?;
        let (appid, kind) = self.live_token(token)?;
        if kind == TokenKind::Component {
            return Err(WxError(errcode::INVALID_CREDENTIAL));
        }
        self.registry.app(&appid).ok_or(WxError(errcode::INVALID_CREDENTIAL))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::Registry;
    use crate::sim::SimConfig;

    const REGISTRY: &str = r#"{"apps":[
        {"appid":"wxmp","kind":"mini_program","secret":"s1"},
        {"appid":"wxoa","kind":"official_account","secret":"s2"},
        {"appid":"wxweb","kind":"website","secret":"s3"}]}"#;

    fn sim() -> Arc<Sim> {
        Sim::new(SimConfig::new(Registry::from_json_str(REGISTRY).expect("registry")))
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn token_q(appid: &str, secret: &str) -> HashMap<String, String> {
        q(&[("grant_type", "client_credential"), ("appid", appid), ("secret", secret)])
    }

    fn check(s: &Sim, token: &str) -> Result<String, i64> {
        s.check_access_token(&q(&[("access_token", token)])).map(|a| a.appid.clone()).map_err(|e| e.0)
    }

    #[test]
    fn token_errors() {
        let s = sim();
        let err = |q: &HashMap<String, String>| s.token(q).err().map(|e| e.0);
        assert_eq!(err(&token_q("wxnope", "s1")), Some(40013));
        assert_eq!(err(&token_q("wxweb", "s3")), Some(40013));
        assert_eq!(err(&token_q("wxmp", "bad")), Some(40125));
        assert_eq!(err(&q(&[("appid", "wxmp"), ("secret", "s1")])), Some(40002));
        assert!(s.token(&token_q("wxmp", "s1")).is_ok());
        assert_eq!(check(&s, ""), Err(41001));
        assert_eq!(check(&s, "bogus"), Err(40001));
    }

    #[test]
    fn normal_token_overlap_is_five_minutes_and_only_for_the_previous_one() {
        let s = sim();
        let t1 = s.token(&token_q("wxoa", "s2")).expect("t1").access_token;
        assert_eq!(check(&s, &t1).as_deref(), Ok("wxoa"));
        let t2 = s.token(&token_q("wxoa", "s2")).expect("t2").access_token;
        assert_ne!(t1, t2);
        s.advance_clock_millis(TOKEN_OVERLAP_MILLIS - 1000);
        assert!(check(&s, &t1).is_ok(), "the previous token lives 5 more minutes");
        s.advance_clock_millis(1000);
        assert_eq!(check(&s, &t1), Err(40001));
        assert!(check(&s, &t2).is_ok());
        // A third token kills the first at once and gives the second 5 minutes.
        let t3 = s.token(&token_q("wxoa", "s2")).expect("t3").access_token;
        let t4 = s.token(&token_q("wxoa", "s2")).expect("t4").access_token;
        assert_eq!(check(&s, &t2), Err(40001));
        assert!(check(&s, &t3).is_ok());
        assert!(check(&s, &t4).is_ok());
        s.advance_clock_millis(ACCESS_TOKEN_TTL_SECONDS * 1000);
        assert_eq!(check(&s, &t4), Err(42001));
    }

    #[test]
    fn stable_token_is_reused_renewed_and_force_refreshed() {
        let s = sim();
        let body = |force: bool| {
            serde_json::json!({"grant_type":"client_credential","appid":"wxmp","secret":"s1","force_refresh":force})
                .to_string()
        };
        let a = s.stable_token(body(false).as_bytes()).expect("a");
        assert_eq!(a.expires_in, 7200);
        // Isolated from /cgi-bin/token.
        s.token(&token_q("wxmp", "s1")).expect("normal");
        s.token(&token_q("wxmp", "s1")).expect("normal");
        s.advance_clock_millis(100_000);
        let b = s.stable_token(body(false).as_bytes()).expect("b");
        assert_eq!(b.access_token, a.access_token);
        assert!((7099..=7100).contains(&b.expires_in), "{}", b.expires_in);
        // In its last 5 minutes it is renewed; the old one lives on until its end.
        s.advance_clock_millis((7100 - 299) * 1000);
        let c = s.stable_token(body(false).as_bytes()).expect("c");
        assert_ne!(c.access_token, a.access_token);
        assert_eq!(c.expires_in, 7200);
        assert!(check(&s, &a.access_token).is_ok());
        s.advance_clock_millis(300_000);
        assert_eq!(check(&s, &a.access_token), Err(42001));
        // force_refresh invalidates the current one at once.
        let d = s.stable_token(body(true).as_bytes()).expect("d");
        assert_ne!(d.access_token, c.access_token);
        assert_eq!(check(&s, &c.access_token), Err(40001));
        assert!(check(&s, &d.access_token).is_ok());
        for _ in 1..STABLE_FORCE_REFRESH_DAILY_QUOTA {
            s.stable_token(body(true).as_bytes()).expect("within quota");
        }
        assert_eq!(s.stable_token(body(true).as_bytes()).err(), Some(WxError(45009)));
        s.advance_clock_millis(DAY_MILLIS);
        assert!(s.stable_token(body(true).as_bytes()).is_ok(), "the quota resets the next day");
    }

    #[test]
    fn stable_token_errors() {
        let s = sim();
        let err = |b: &str| s.stable_token(b.as_bytes()).err().map(|e| e.0);
        assert_eq!(err("not json"), Some(47001));
        assert_eq!(
            err(r#"{"grant_type":"client_credential","appid":"wxmp","secret":"s1","force_refresh":"x"}"#),
            Some(47001)
        );
        assert_eq!(err(r#"{"grant_type":"client_credential","appid":"wxx","secret":"s1"}"#), Some(40013));
        assert_eq!(err(r#"{"grant_type":"client_credential","appid":"wxmp","secret":"s2"}"#), Some(40125));
        assert_eq!(err(r#"{"grant_type":"authorization_code","appid":"wxmp","secret":"s1"}"#), Some(40002));
    }
}
