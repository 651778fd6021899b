//! The WeChat port: what the bridge asks of WeChat's servers.

use async_trait::async_trait;

use crate::component::Component;
use crate::error::Error;
use crate::ids::{AppId, Code, OpenId, Secret, UnionId};
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

/// What a merchant's authorization yields (`api_query_auth`) or a refresh gives
/// (`api_authorizer_token`): the app's access token and the refresh token to keep.
#[derive(Debug)]
pub struct AuthorizerGrant {
    pub appid: AppId,
    pub access_token: Secret,
    pub expires_in: i64,
    /// WeChat may hand out a new one with every refresh; lose it and the merchant must
    /// authorize again (61023), so it is stored with the access token in one write.
    pub refresh_token: Secret,
}

/// `api_get_authorizer_info`: what an authorized account is, and its current refresh token.
#[derive(Debug)]
pub struct AuthorizerInfo {
    pub appid: AppId,
    pub name: String,
    /// A mini program's answer carries `MiniProgramInfo`.
    pub mini_program: bool,
    pub refresh_token: Secret,
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

    // The third-party platform (WECHAT_CONTRACT.md §11). Every call below but the first takes
    // the component_access_token; a fake that plays no component answers `wechat_unavailable`.

    /// `api_component_token` from the last verify ticket: the token and its life in seconds.
    async fn component_token(&self, _c: &Component, _ticket: &Secret) -> Result<(Secret, i64), Error> {
        Err(Error::WeChatUnavailable)
    }
    /// `api_create_preauthcode`: the code and its life in seconds.
    async fn pre_auth_code(&self, _c: &Component, _token: &Secret) -> Result<(Secret, i64), Error> {
        Err(Error::WeChatUnavailable)
    }
    /// `api_query_auth`: what the merchant approved.
    async fn query_auth(&self, _c: &Component, _token: &Secret, _auth_code: &Secret) -> Result<AuthorizerGrant, Error> {
        Err(Error::WeChatUnavailable)
    }
    /// `api_authorizer_token`.
    async fn authorizer_token(
        &self,
        _c: &Component,
        _token: &Secret,
        _appid: &AppId,
        _refresh: &Secret,
    ) -> Result<AuthorizerGrant, Error> {
        Err(Error::WeChatUnavailable)
    }
    /// `api_get_authorizer_info`.
    async fn authorizer_info(&self, _c: &Component, _token: &Secret, _appid: &AppId) -> Result<AuthorizerInfo, Error> {
        Err(Error::WeChatUnavailable)
    }
    /// The open-platform account an app is bound to (`/cgi-bin/open/get` with the app's access
    /// token), which its unionids belong to; `None` when it is bound to none (89002).
    async fn open_platform_of(&self, _access_token: &Secret, _appid: &AppId) -> Result<Option<String>, Error> {
        Ok(None)
    }
    /// `/sns/component/jscode2session` for an authorized mini program.
    async fn component_code2session(
        &self,
        _app: &App,
        _code: &Code,
        _c: &Component,
        _token: &Secret,
    ) -> Result<Session, Error> {
        Err(Error::WeChatUnavailable)
    }
    /// `/sns/oauth2/component/access_token` for an authorized official account.
    async fn component_web_grant(
        &self,
        _app: &App,
        _code: &Code,
        _c: &Component,
        _token: &Secret,
    ) -> Result<WebGrant, Error> {
        Err(Error::WeChatUnavailable)
    }
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

/// 61023: the authorizer refresh token is not (or no longer) the app's.
pub fn refresh_token_invalid(e: &Error) -> bool {
    matches!(e, Error::WeChatError(61023))
}

/// WeChat's errcode → our error (API.md). Callers match on errcode only, never errmsg.
pub fn map_errcode(errcode: i64) -> Error {
    match errcode {
        40029 | 42003 => Error::WeChatCodeInvalid,
        40163 => Error::WeChatCodeUsed,
        40226 => Error::WeChatUserBlocked,
        45009 | 45011 | 45033 => Error::WeChatRateLimited,
        // The app withdrew its authorization of the platform (or never gave it).
        61003 => Error::ReauthorizationRequired,
        // An authorization code unknown, used or expired.
        61009 | 61010 => Error::AuthCodeInvalid,
        -1 => Error::WeChatUnavailable,
        other => Error::WeChatError(other),
    }
}
