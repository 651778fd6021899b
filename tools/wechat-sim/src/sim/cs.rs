//! Customer-service messages (contract §6.1): `POST /cgi-bin/message/custom/send` and what the
//! user received (`/sim/users/{user}/messages?appid=`).
//!
//! For an official account WeChat only lets these through in a window: an event of the user
//! (follow, QR scan, menu click) allows 3 messages within 1 minute. Outside it, or to a user who
//! does not follow, the answer is 45015; over the count, 45047. The `cs_window` knob turns the
//! window off.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::{errcode, lock, validate_user, Sim, SimError, WxError};
use crate::ids;

/// How long the window an event opens lasts.
pub const CS_WINDOW_MILLIS: i64 = 60 * 1000;
/// How many messages the window an event opens allows.
pub const CS_WINDOW_MESSAGES: u32 = 3;
/// The longest text `content`, in bytes.
pub const CS_MAX_TEXT_BYTES: usize = 2048;

const MSG_TYPES: &[&str] = &[
    "text",
    "image",
    "voice",
    "video",
    "music",
    "news",
    "mpnews",
    "mpnewsarticle",
    "msgmenu",
    "wxcard",
    "miniprogrampage",
];

/// The window the user's last event opened in an app.
#[derive(Debug, Clone, Copy)]
pub(super) struct CsWindow {
    opened_at: i64,
    sent: u32,
}

/// A customer-service message as the user received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsMessage {
    pub msgtype: String,
    /// The text of a `text` message.
    pub content: Option<String>,
    /// The request body as sent.
    pub body: Value,
    /// Unix seconds by the sim clock.
    pub sent_at: i64,
}

impl Sim {
    /// Opens a fresh customer-service window: the user just caused an event in the app.
    pub(super) fn open_cs_window(&self, user: &str, appid: &str) {
        let now = self.now_millis();
        let mut st = lock(&self.state);
        let windows = &mut st.users.entry(user.to_owned()).or_default().cs_windows;
        windows.insert(appid.to_owned(), CsWindow { opened_at: now, sent: 0 });
    }

    /// `POST /cgi-bin/message/custom/send?access_token=` with its JSON body.
    pub fn custom_send(&self, q: &HashMap<String, String>, body: &[u8]) -> Result<(), WxError> {
        let app = self.check_access_token(q)?;
        let body: Value = serde_json::from_slice(body).map_err(|_| WxError(errcode::DATA_FORMAT_ERROR))?;
        if !body.is_object() {
            return Err(WxError(errcode::DATA_FORMAT_ERROR));
        }
        let touser = body
            .get("touser")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(WxError(errcode::INVALID_OPENID))?;
        let msgtype = body
            .get("msgtype")
            .and_then(Value::as_str)
            .filter(|t| MSG_TYPES.contains(t))
            .ok_or(WxError(errcode::INVALID_MESSAGE_TYPE))?
            .to_owned();
        let payload = body.get(&msgtype).filter(|p| p.is_object()).ok_or(WxError(errcode::DATA_FORMAT_ERROR))?;
        let content = if msgtype == "text" {
            let content = payload
                .get("content")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .ok_or(WxError(errcode::EMPTY_CONTENT))?;
            if content.len() > CS_MAX_TEXT_BYTES {
                return Err(WxError(errcode::CONTENT_TOO_LONG));
            }
            Some(content.to_owned())
        } else {
            None
        };
        let now = self.now_millis();
        let window = self.cs_window() && app.is_official_account();
        let appid = app.appid.as_str();
        let mut st = lock(&self.state);
        let user = st
            .users
            .keys()
            .find(|u| ids::openid(appid, u) == touser)
            .cloned()
            .ok_or(WxError(errcode::INVALID_OPENID))?;
        if window {
            let state = st.users.entry(user.clone()).or_default();
            if !state.following.contains(appid) {
                return Err(WxError(errcode::RESPONSE_OUT_OF_TIME));
            }
            let w = state
                .cs_windows
                .get_mut(appid)
                .filter(|w| now.saturating_sub(w.opened_at) <= CS_WINDOW_MILLIS)
                .ok_or(WxError(errcode::RESPONSE_OUT_OF_TIME))?;
            if w.sent >= CS_WINDOW_MESSAGES {
                return Err(WxError(errcode::RESPONSE_COUNT_LIMIT));
            }
            w.sent += 1;
        }
        let message = CsMessage { msgtype, content, body, sent_at: now.div_euclid(1000) };
        st.messages.entry((appid.to_owned(), user)).or_default().push(message);
        Ok(())
    }

    /// The customer-service messages the user received from the app, oldest first.
    pub fn messages(&self, user: &str, appid: &str) -> Result<Vec<CsMessage>, SimError> {
        validate_user(user)?;
        self.app(appid)?;
        Ok(lock(&self.state).messages.get(&(appid.to_owned(), user.to_owned())).cloned().unwrap_or_default())
    }
}
