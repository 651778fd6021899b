//! The WeChat client over HTTPS (reqwest + rustls), built once per cold start.

use async_trait::async_trait;
use serde::Deserialize;
use std::time::{Duration, Instant};

use super::{map_errcode, QrCode, Session, WeChat, WebGrant};
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

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    errcode: i64,
    access_token: Option<String>,
    #[serde(default)]
    expires_in: i64,
}

#[derive(Deserialize)]
struct QrBody {
    #[serde(default)]
    errcode: i64,
    ticket: Option<String>,
    #[serde(default)]
    expire_seconds: i64,
    #[serde(default)]
    url: String,
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

    /// GET (or POST `body` as JSON to) `path` with `query` and parse the JSON answer,
    /// retrying what WeChat says to retry. URLs and bodies carry secrets and tokens, so no error
    /// that includes them is ever logged.
    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        path: &'static str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        errcode: fn(&T) -> i64,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let mut last = Error::WeChatUnavailable;
        for attempt in 0..self.cfg.attempts {
            if attempt > 0 {
                tokio::time::sleep(self.cfg.backoff * 2u32.pow(attempt - 1)).await;
            }
            match self.once(path, query, body, errcode).await {
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
        crate::metrics::count(crate::metrics::Counter::WeChatError);
        Err(last)
    }

    async fn once<T: for<'de> Deserialize<'de>>(
        &self,
        path: &'static str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        errcode: fn(&T) -> i64,
    ) -> Attempt<T> {
        let url = format!("{}{}", self.cfg.api_base, path);
        let req = match body {
            Some(b) => self.http.post(&url).query(query).json(b),
            None => self.http.get(&url).query(query),
        };
        let resp = match req.send().await {
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
                crate::metrics::count(crate::metrics::Counter::WeChatError);
                Attempt::Done(Err(map_errcode(code)))
            }
        }
    }
}

#[async_trait]
impl WeChat for WeChatClient {
    async fn code2session(&self, app: &App, code: &Code) -> Result<Session, Error> {
        let body: CodeSessionBody = self
            .call(
                "/sns/jscode2session",
                &[
                    ("appid", app.appid.as_str()),
                    ("secret", app.secret.expose()),
                    ("js_code", code.as_str()),
                    ("grant_type", "authorization_code"),
                ],
                None,
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
            .call(
                "/sns/oauth2/access_token",
                &[
                    ("appid", app.appid.as_str()),
                    ("secret", app.secret.expose()),
                    ("code", code.as_str()),
                    ("grant_type", "authorization_code"),
                ],
                None,
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
            .call(
                "/sns/userinfo",
                &[("access_token", grant.access_token.expose()), ("openid", grant.openid.as_str()), ("lang", "zh_CN")],
                None,
                |b: &UserInfoBody| b.errcode,
            )
            .await?;
        optional_unionid(body.unionid.as_deref())
    }

    async fn stable_token(&self, app: &App, force_refresh: bool) -> Result<(Secret, i64), Error> {
        // Always send force_refresh: some accounts answer 41002 without it.
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": app.appid.as_str(),
            "secret": app.secret.expose(),
            "force_refresh": force_refresh,
        });
        let t: TokenBody = self.call("/cgi-bin/stable_token", &[], Some(&body), |b: &TokenBody| b.errcode).await?;
        let token = t.access_token.ok_or_else(|| Error::Internal("stable_token answer lacks access_token".into()))?;
        Ok((Secret::new(token), t.expires_in))
    }

    async fn qrcode_create(&self, access_token: &Secret, scene: &str, expire_seconds: i64) -> Result<QrCode, Error> {
        let body = serde_json::json!({
            "expire_seconds": expire_seconds,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        });
        let q: QrBody = self
            .call("/cgi-bin/qrcode/create", &[("access_token", access_token.expose())], Some(&body), |b: &QrBody| {
                b.errcode
            })
            .await?;
        let ticket = q.ticket.ok_or_else(|| Error::Internal("qrcode/create answer lacks ticket".into()))?;
        Ok(QrCode { ticket, expire_seconds: q.expire_seconds, url: q.url })
    }
}
