//! The WeChat client over HTTPS (reqwest + rustls), built once per cold start.

use async_trait::async_trait;
use serde::Deserialize;
use std::time::{Duration, Instant};

use super::{map_errcode, AuthorizerGrant, AuthorizerInfo, QrCode, Session, WeChat, WebGrant};
use crate::component::Component;
use crate::error::Error;
use crate::ids::{AppId, Code, OpenId, Secret, UnionId};
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

#[derive(Deserialize)]
struct ComponentTokenBody {
    #[serde(default)]
    errcode: i64,
    component_access_token: Option<String>,
    #[serde(default)]
    expires_in: i64,
}

#[derive(Deserialize)]
struct PreAuthCodeBody {
    #[serde(default)]
    errcode: i64,
    pre_auth_code: Option<String>,
    #[serde(default)]
    expires_in: i64,
}

#[derive(Deserialize)]
struct AuthorizationBody {
    authorizer_appid: Option<String>,
    authorizer_access_token: Option<String>,
    #[serde(default)]
    expires_in: i64,
    authorizer_refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct QueryAuthBody {
    #[serde(default)]
    errcode: i64,
    authorization_info: Option<AuthorizationBody>,
}

#[derive(Deserialize)]
struct AuthorizerTokenBody {
    #[serde(default)]
    errcode: i64,
    authorizer_access_token: Option<String>,
    #[serde(default)]
    expires_in: i64,
    authorizer_refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct AuthorizerDetails {
    #[serde(default)]
    nick_name: String,
    #[serde(rename = "MiniProgramInfo")]
    mini_program_info: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct AuthorizerInfoBody {
    #[serde(default)]
    errcode: i64,
    authorizer_info: Option<AuthorizerDetails>,
    authorization_info: Option<AuthorizationBody>,
}

#[derive(Deserialize)]
struct OpenGetBody {
    #[serde(default)]
    errcode: i64,
    open_appid: Option<String>,
}

fn lacks(what: &str) -> Error {
    Error::Internal(format!("WeChat's answer lacks {what}"))
}

fn appid_of(v: Option<&str>) -> Result<AppId, Error> {
    AppId::parse(v.ok_or_else(|| lacks("authorizer_appid"))?).map_err(|_| lacks("a well-formed authorizer_appid"))
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

fn session_of(body: CodeSessionBody) -> Result<Session, Error> {
    let bad = || Error::Internal("jscode2session answer lacks openid or session_key".into());
    let openid = OpenId::parse(body.openid.as_deref().ok_or_else(bad)?).map_err(|_| bad())?;
    let session_key = Secret::new(body.session_key.ok_or_else(bad)?);
    let unionid = optional_unionid(body.unionid.as_deref())?;
    Ok(Session { openid, session_key, unionid })
}

fn web_grant_of(body: WebGrantBody) -> Result<WebGrant, Error> {
    let bad = || Error::Internal("oauth2/access_token answer lacks openid or access_token".into());
    Ok(WebGrant {
        openid: OpenId::parse(body.openid.as_deref().ok_or_else(bad)?).map_err(|_| bad())?,
        unionid: optional_unionid(body.unionid.as_deref())?,
        access_token: Secret::new(body.access_token.ok_or_else(bad)?),
        snapshot_user: body.is_snapshotuser == 1,
    })
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
        session_of(body)
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
        web_grant_of(body)
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

    async fn component_token(&self, c: &Component, ticket: &Secret) -> Result<(Secret, i64), Error> {
        let body = serde_json::json!({
            "component_appid": c.appid.as_str(),
            "component_appsecret": c.secret.expose(),
            "component_verify_ticket": ticket.expose(),
        });
        let t: ComponentTokenBody = self
            .call("/cgi-bin/component/api_component_token", &[], Some(&body), |b: &ComponentTokenBody| b.errcode)
            .await?;
        Ok((Secret::new(t.component_access_token.ok_or_else(|| lacks("component_access_token"))?), t.expires_in))
    }

    async fn pre_auth_code(&self, c: &Component, token: &Secret) -> Result<(Secret, i64), Error> {
        let body = serde_json::json!({"component_appid": c.appid.as_str()});
        let p: PreAuthCodeBody = self
            .call(
                "/cgi-bin/component/api_create_preauthcode",
                &[("component_access_token", token.expose())],
                Some(&body),
                |b: &PreAuthCodeBody| b.errcode,
            )
            .await?;
        Ok((Secret::new(p.pre_auth_code.ok_or_else(|| lacks("pre_auth_code"))?), p.expires_in))
    }

    async fn query_auth(&self, c: &Component, token: &Secret, auth_code: &Secret) -> Result<AuthorizerGrant, Error> {
        let body = serde_json::json!({"component_appid": c.appid.as_str(), "authorization_code": auth_code.expose()});
        let q: QueryAuthBody = self
            .call(
                "/cgi-bin/component/api_query_auth",
                &[("component_access_token", token.expose())],
                Some(&body),
                |b: &QueryAuthBody| b.errcode,
            )
            .await?;
        let a = q.authorization_info.ok_or_else(|| lacks("authorization_info"))?;
        Ok(AuthorizerGrant {
            appid: appid_of(a.authorizer_appid.as_deref())?,
            access_token: Secret::new(a.authorizer_access_token.ok_or_else(|| lacks("authorizer_access_token"))?),
            expires_in: a.expires_in,
            refresh_token: Secret::new(a.authorizer_refresh_token.ok_or_else(|| lacks("authorizer_refresh_token"))?),
        })
    }

    async fn authorizer_token(
        &self,
        c: &Component,
        token: &Secret,
        appid: &AppId,
        refresh: &Secret,
    ) -> Result<AuthorizerGrant, Error> {
        let body = serde_json::json!({
            "component_appid": c.appid.as_str(),
            "authorizer_appid": appid.as_str(),
            "authorizer_refresh_token": refresh.expose(),
        });
        let t: AuthorizerTokenBody = self
            .call(
                "/cgi-bin/component/api_authorizer_token",
                &[("component_access_token", token.expose())],
                Some(&body),
                |b: &AuthorizerTokenBody| b.errcode,
            )
            .await?;
        Ok(AuthorizerGrant {
            appid: appid.clone(),
            access_token: Secret::new(t.authorizer_access_token.ok_or_else(|| lacks("authorizer_access_token"))?),
            expires_in: t.expires_in,
            // Some answers leave the refresh token out when it did not change.
            refresh_token: t.authorizer_refresh_token.map(Secret::new).unwrap_or_else(|| refresh.clone()),
        })
    }

    async fn authorizer_info(&self, c: &Component, token: &Secret, appid: &AppId) -> Result<AuthorizerInfo, Error> {
        let body = serde_json::json!({"component_appid": c.appid.as_str(), "authorizer_appid": appid.as_str()});
        let i: AuthorizerInfoBody = self
            .call(
                "/cgi-bin/component/api_get_authorizer_info",
                &[("component_access_token", token.expose())],
                Some(&body),
                |b: &AuthorizerInfoBody| b.errcode,
            )
            .await?;
        let details = i.authorizer_info.ok_or_else(|| lacks("authorizer_info"))?;
        let a = i.authorization_info.ok_or_else(|| lacks("authorization_info"))?;
        Ok(AuthorizerInfo {
            appid: appid_of(a.authorizer_appid.as_deref())?,
            name: details.nick_name,
            mini_program: details.mini_program_info.is_some(),
            refresh_token: Secret::new(a.authorizer_refresh_token.ok_or_else(|| lacks("authorizer_refresh_token"))?),
        })
    }

    async fn open_platform_of(&self, access_token: &Secret, appid: &AppId) -> Result<Option<String>, Error> {
        let body = serde_json::json!({"appid": appid.as_str()});
        let answer = self
            .call("/cgi-bin/open/get", &[("access_token", access_token.expose())], Some(&body), |b: &OpenGetBody| {
                b.errcode
            })
            .await;
        match answer {
            Ok(b) => Ok(b.open_appid.filter(|o| !o.is_empty())),
            // "open not exists": the app is bound to no open-platform account.
            Err(Error::WeChatError(89002)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn component_code2session(
        &self,
        app: &App,
        code: &Code,
        c: &Component,
        token: &Secret,
    ) -> Result<Session, Error> {
        let body: CodeSessionBody = self
            .call(
                "/sns/component/jscode2session",
                &[
                    ("appid", app.appid.as_str()),
                    ("js_code", code.as_str()),
                    ("grant_type", "authorization_code"),
                    ("component_appid", c.appid.as_str()),
                    ("component_access_token", token.expose()),
                ],
                None,
                |b: &CodeSessionBody| b.errcode,
            )
            .await?;
        session_of(body)
    }

    async fn component_web_grant(
        &self,
        app: &App,
        code: &Code,
        c: &Component,
        token: &Secret,
    ) -> Result<WebGrant, Error> {
        let body: WebGrantBody = self
            .call(
                "/sns/oauth2/component/access_token",
                &[
                    ("appid", app.appid.as_str()),
                    ("code", code.as_str()),
                    ("grant_type", "authorization_code"),
                    ("component_appid", c.appid.as_str()),
                    ("component_access_token", token.expose()),
                ],
                None,
                |b: &WebGrantBody| b.errcode,
            )
            .await?;
        web_grant_of(body)
    }
}
