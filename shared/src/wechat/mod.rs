//! The WeChat port: what the bridge asks of WeChat's servers.

use async_trait::async_trait;

use crate::error::Error;
use crate::ids::{Code, OpenId, Secret, UnionId};
use crate::registry::App;

pub mod client;
pub mod push;

/// jscode2session's answer. `session_key` never leaves the server.
#[derive(Debug)]
pub struct Session {
    pub openid: OpenId,
    pub session_key: Secret,
    pub unionid: Option<UnionId>,
}

/// What an official account's web-authorization code yields (`/sns/oauth2/access_token`).
#[derive(Debug)]
pub struct WebGrant {
    pub openid: OpenId,
    pub unionid: Option<UnionId>,
    /// The web access token (for `/sns/userinfo`); never leaves the server.
    pub access_token: Secret,
    /// A "snapshot page" virtual user: the openid is not a person's and must not be bound.
    pub snapshot_user: bool,
}

#[async_trait]
pub trait WeChat: Send + Sync {
    /// Mini-program `wx.login` code → session (`/sns/jscode2session`).
    async fn code2session(&self, app: &App, code: &Code) -> Result<Session, Error>;
    /// Web-authorization code → openid (`/sns/oauth2/access_token`).
    async fn web_grant(&self, app: &App, code: &Code) -> Result<WebGrant, Error>;
    /// The unionid behind a `snsapi_userinfo` grant (`/sns/userinfo`).
    async fn web_unionid(&self, grant: &WebGrant) -> Result<Option<UnionId>, Error>;
    /// The app's access token (`/cgi-bin/stable_token`, which never invalidates another
    /// caller's token unless forced): the token and its remaining life in seconds.
    async fn stable_token(&self, app: &App, force_refresh: bool) -> Result<(Secret, i64), Error>;
    /// A temporary string-scene QR code of an official account (`/cgi-bin/qrcode/create`).
    async fn qrcode_create(&self, access_token: &Secret, scene: &str, expire_seconds: i64) -> Result<QrCode, Error>;
}

/// A WeChat that is never reached: every call answers `wechat_unavailable`. For a bridge
/// that only reads the store (operators' tools, tests of other parts).
pub struct NoWeChat;

#[async_trait]
impl WeChat for NoWeChat {
    async fn code2session(&self, _: &App, _: &Code) -> Result<Session, Error> {
        Err(Error::WeChatUnavailable)
    }
    async fn web_grant(&self, _: &App, _: &Code) -> Result<WebGrant, Error> {
        Err(Error::WeChatUnavailable)
    }
    async fn web_unionid(&self, _: &WebGrant) -> Result<Option<UnionId>, Error> {
        Err(Error::WeChatUnavailable)
    }
    async fn stable_token(&self, _: &App, _: bool) -> Result<(Secret, i64), Error> {
        Err(Error::WeChatUnavailable)
    }
    async fn qrcode_create(&self, _: &Secret, _: &str, _: i64) -> Result<QrCode, Error> {
        Err(Error::WeChatUnavailable)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCode {
    pub ticket: String,
    pub expire_seconds: i64,
    /// What the QR image encodes.
    pub url: String,
}

/// errcodes that mean "this access_token is not (or no longer) good": refresh once, retry once.
pub fn token_invalid(e: &Error) -> bool {
    matches!(e, Error::WeChatError(40001 | 40014 | 42001))
}

/// WeChat's errcode → our error (API.md). Callers match on errcode only, never errmsg.
pub fn map_errcode(errcode: i64) -> Error {
    match errcode {
        40029 | 42003 => Error::WeChatCodeInvalid,
        40163 => Error::WeChatCodeUsed,
        40226 => Error::WeChatUserBlocked,
        45009 | 45011 | 45033 => Error::WeChatRateLimited,
        -1 => Error::WeChatUnavailable,
        other => Error::WeChatError(other),
    }
}
