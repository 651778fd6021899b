//! The WeChat client over HTTPS (reqwest + rustls), built once per cold start.

use async_trait::async_trait;
use serde::Deserialize;
use std::time::{Duration, Instant};

use super::{map_errcode, Session, WeChat, WebGrant};
use crate::error::Error;
use crate::ids::{Code, OpenId, Secret, UnionId};
use crate::registry::App;

#[derive(Clone, Debug)]
pub struct WeChatConfig {
    pub api_base: String,
    pub open_base: String,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts in all, for WeChat's -1, timeouts, connection errors and 5xx only.
    pub attempts: u32,
    pub backoff: Duration,
}

impl WeChatConfig {
    /// `WECHAT_API_BASE`, `WECHAT_OPEN_BASE`, `WECHAT_TIMEOUT_MS`.
    pub fn from_env() -> Self {
        let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
        WeChatConfig {
            api_base: env("WECHAT_API_BASE", "https://api.weixin.qq.com").trim_end_matches('/').to_owned(),
            open_base: env("WECHAT_OPEN_BASE", "https://open.weixin.qq.com").trim_end_matches('/').to_owned(),
            timeout: Duration::from_millis(env("WECHAT_TIMEOUT_MS", "2500").parse().unwrap_or(2500)),
            attempts: 3,
            backoff: Duration::from_millis(100),
        }
    }
}

pub struct WeChatClient {
    http: reqwest::Client,
    cfg: WeChatConfig,
}

#[derive(Deserialize)]
struct CodeSessionBody {
    #[serde(default)]
    errcode: i64,
    openid: Option<String>,
    session_key: Option<String>,
    unionid: Option<String>,
}

#[derive(Deserialize)]
struct WebGrantBody {
    #[serde(default)]
    errcode: i64,
    openid: Option<String>,
    access_token: Option<String>,
    unionid: Option<String>,
    #[serde(default)]
    is_snapshotuser: i64,
}

#[derive(Deserialize)]
struct UserInfoBody {
    #[serde(default)]
    errcode: i64,
    unionid: Option<String>,
}

fn optional_unionid(u: Option<&str>) -> Result<Option<UnionId>, Error> {
    match u {
        Some(u) if !u.is_empty() => {
            UnionId::parse(u).map(Some).map_err(|_| Error::Internal("WeChat answered a malformed unionid".into()))
        }
        _ => Ok(None),
    }
}

enum Attempt<T> {
    Done(Result<T, Error>),
    Retry(Error),
}

impl WeChatClient {
    pub fn new(cfg: WeChatConfig) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| Error::Internal(format!("http client: {e}")))?;
        Ok(WeChatClient { http, cfg })
    }

    pub fn config(&self) -> &WeChatConfig {
        &self.cfg
    }

    /// GET `path` with `query` and parse the JSON answer, retrying what WeChat says to retry.
    /// The URL carries the app secret, so no error that includes it is ever logged.
    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &'static str,
        query: &[(&str, &str)],
        errcode: fn(&T) -> i64,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let mut last = Error::WeChatUnavailable;
        for attempt in 0..self.cfg.attempts {
            if attempt > 0 {
                tokio::time::sleep(self.cfg.backoff * 2u32.pow(attempt - 1)).await;
            }
            match self.once(path, query, errcode).await {
                Attempt::Done(r) => return r,
                Attempt::Retry(e) => {
                    tracing::warn!(
                        path,
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "wechat call will be retried"
                    );
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn once<T: for<'de> Deserialize<'de>>(
        &self,
        path: &'static str,
        query: &[(&str, &str)],
        errcode: fn(&T) -> i64,
    ) -> Attempt<T> {
        let url = format!("{}{}", self.cfg.api_base, path);
        let resp = match self.http.get(&url).query(query).send().await {
            Ok(r) => r,
            Err(e) => {
                let e = e.without_url();
                tracing::warn!(path, timeout = e.is_timeout(), connect = e.is_connect(), "wechat unreachable");
                return Attempt::Retry(Error::WeChatUnavailable);
            }
        };
        let status = resp.status();
        if status.is_server_error() {
            tracing::warn!(path, status = status.as_u16(), "wechat server error");
            return Attempt::Retry(Error::WeChatUnavailable);
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(_) => return Attempt::Retry(Error::WeChatUnavailable),
        };
        // WeChat answers 200 with a JSON body whatever the Content-Type says.
        let parsed: T = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                tracing::warn!(path, status = status.as_u16(), "wechat answer is not the expected JSON");
                return Attempt::Retry(Error::WeChatUnavailable);
            }
        };
        match errcode(&parsed) {
            0 => Attempt::Done(Ok(parsed)),
            -1 => {
                tracing::warn!(path, errcode = -1, "wechat busy");
                Attempt::Retry(Error::WeChatUnavailable)
            }
            code => {
                tracing::info!(path, errcode = code, "wechat refused");
                Attempt::Done(Err(map_errcode(code)))
            }
        }
    }
}

#[async_trait]
impl WeChat for WeChatClient {
    async fn code2session(&self, app: &App, code: &Code) -> Result<Session, Error> {
        let body: CodeSessionBody = self
            .get_json(
                "/sns/jscode2session",
                &[
                    ("appid", app.appid.as_str()),
                    ("secret", app.secret.expose()),
                    ("js_code", code.as_str()),
                    ("grant_type", "authorization_code"),
                ],
                |b: &CodeSessionBody| b.errcode,
            )
            .await?;
        let bad = || Error::Internal("jscode2session answer lacks openid or session_key".into());
        let openid = OpenId::parse(body.openid.as_deref().ok_or_else(bad)?).map_err(|_| bad())?;
        let session_key = Secret::new(body.session_key.ok_or_else(bad)?);
        let unionid = optional_unionid(body.unionid.as_deref())?;
        Ok(Session { openid, session_key, unionid })
    }

    async fn web_grant(&self, app: &App, code: &Code) -> Result<WebGrant, Error> {
        let body: WebGrantBody = self
            .get_json(
                "/sns/oauth2/access_token",
                &[
                    ("appid", app.appid.as_str()),
                    ("secret", app.secret.expose()),
                    ("code", code.as_str()),
                    ("grant_type", "authorization_code"),
                ],
                |b: &WebGrantBody| b.errcode,
            )
            .await?;
        let bad = || Error::Internal("oauth2/access_token answer lacks openid or access_token".into());
        Ok(WebGrant {
            openid: OpenId::parse(body.openid.as_deref().ok_or_else(bad)?).map_err(|_| bad())?,
            unionid: optional_unionid(body.unionid.as_deref())?,
            access_token: Secret::new(body.access_token.ok_or_else(bad)?),
            snapshot_user: body.is_snapshotuser == 1,
        })
    }

    async fn web_unionid(&self, grant: &WebGrant) -> Result<Option<UnionId>, Error> {
        let body: UserInfoBody = self
            .get_json(
                "/sns/userinfo",
                &[("access_token", grant.access_token.expose()), ("openid", grant.openid.as_str()), ("lang", "zh_CN")],
                |b: &UserInfoBody| b.errcode,
            )
            .await?;
        optional_unionid(body.unionid.as_deref())
    }
}
