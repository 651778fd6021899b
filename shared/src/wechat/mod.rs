//! The WeChat port: what the bridge asks of WeChat's servers.

use async_trait::async_trait;

use crate::error::Error;
use crate::ids::{Code, OpenId, Secret, UnionId};
use crate::registry::App;

pub mod client;

/// jscode2session's answer. `session_key` never leaves the server.
#[derive(Debug)]
pub struct Session {
    pub openid: OpenId,
    pub session_key: Secret,
    pub unionid: Option<UnionId>,
}

#[async_trait]
pub trait WeChat: Send + Sync {
    /// Mini-program `wx.login` code → session (`/sns/jscode2session`).
    async fn code2session(&self, app: &App, code: &Code) -> Result<Session, Error>;
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
