//! WeChat's own paths, answered the way WeChat answers them: HTTP 200, a JSON body with
//! `Content-Type: application/json; encoding=utf-8`, and `{"errcode","errmsg"}` on failure.
//! The browser-facing `/connect/oauth2/authorize` answers a 302 or WeChat's HTML error page.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use crate::control::acting_user;
use crate::ids;
use crate::sim::{authorize_errmsg, errcode, errmsg_for, AuthorizeError, Sim, WxError};

/// The Content-Type WeChat's JSON APIs answer with.
pub const WECHAT_JSON: &str = "application/json; encoding=utf-8";
/// The Content-Type of WeChat's HTML pages (the authorization error page).
pub const WECHAT_HTML: &str = "text/html; charset=utf-8";

// Every WeChat path the simulator serves (faults and call counts apply to these).
pub const JSCODE2SESSION: &str = "/sns/jscode2session";
/// The browser-facing authorize URL of OA web authorization (on `open.weixin.qq.com`).
pub const OAUTH2_AUTHORIZE: &str = "/connect/oauth2/authorize";
pub const OAUTH2_ACCESS_TOKEN: &str = "/sns/oauth2/access_token";
pub const SNS_USERINFO: &str = "/sns/userinfo";

/// The WeChat routes, behind the gate that counts calls and applies faults.
pub(crate) fn routes(sim: Arc<Sim>) -> Router<Arc<Sim>> {
    Router::new()
        .route(JSCODE2SESSION, get(jscode2session))
        .route(OAUTH2_AUTHORIZE, get(authorize))
        .route(OAUTH2_ACCESS_TOKEN, get(oauth2_access_token))
        .route(SNS_USERINFO, get(sns_userinfo))
        .route_layer(middleware::from_fn_with_state(sim, gate))
}

/// A 200 JSON answer as WeChat sends it.
pub fn wx_json<T: Serialize>(body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(WECHAT_JSON))], bytes).into_response()
        }
        Err(_) => wx_error(crate::sim::errcode::SYSTEM_ERROR),
    }
}

/// WeChat's error body: `{"errcode":N,"errmsg":"<msg>, rid: <rid>"}` with HTTP 200.
pub fn wx_error(errcode: i64) -> Response {
    let body = format!(r#"{{"errcode":{errcode},"errmsg":"{}, rid: {}"}}"#, errmsg_for(errcode), ids::rid());
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(WECHAT_JSON))], body).into_response()
}

impl IntoResponse for WxError {
    fn into_response(self) -> Response {
        wx_error(self.0)
    }
}

/// The query string as a map (last value wins; never fails).
pub fn query_map(raw: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect()
}

/// WeChat's web-authorization error page (HTTP 200, HTML, no redirect): the errcode and its
/// message, or, without an errcode, a simulator-only message.
pub fn auth_error_page(errcode: Option<i64>, message: &str) -> Response {
    let (attr, code_line) = match errcode {
        Some(code) => (
            format!(r#" data-errcode="{code}""#),
            format!("<p class=\"weui-msg__desc\">errcode: <span id=\"errcode\">{code}</span></p>\n"),
        ),
        None => (String::new(), String::new()),
    };
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>微信网页授权</title>\n</head>\n\
         <body{attr}>\n<div class=\"weui-msg\">\n<h2 class=\"weui-msg__title\">Oops! Something went wrong:(</h2>\n\
         {code_line}<p class=\"weui-msg__desc\" id=\"errmsg\">{}</p>\n</div>\n</body>\n</html>\n",
        html_escape(message)
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(WECHAT_HTML))], body).into_response()
}

/// The error page for an authorize errcode (also used for faults of the authorize path).
fn auth_error_code_page(code: i64) -> Response {
    auth_error_page(Some(code), authorize_errmsg(code))
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Counts the call, then applies the next programmed fault of the path, if any. An errcode
/// fault answers WeChat's JSON error, or the HTML error page on the authorize path.
async fn gate(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    sim.record_call(&path);
    let Some(fault) = sim.take_fault(&path) else {
        return next.run(req).await;
    };
    tracing::debug!(%path, ?fault, "applying fault");
    let error = |code: i64| if path == OAUTH2_AUTHORIZE { auth_error_code_page(code) } else { wx_error(code) };
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match (fault.http_status, fault.errcode) {
        (Some(status), errcode) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut res = match errcode {
                Some(code) => error(code),
                None => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{status}")).into_response(),
            };
            *res.status_mut() = status;
            res
        }
        (None, Some(code)) => error(code),
        (None, None) => next.run(req).await,
    }
}

async fn jscode2session(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    match sim.jscode2session(&query_map(q.as_deref())) {
        Ok(session) => wx_json(&session),
        Err(e) => e.into_response(),
    }
}

/// `GET /connect/oauth2/authorize`: what the user's WeChat browser does with an authorize URL.
/// The user comes from the `X-WxSim-User` header or the `wxsim_user` cookie.
async fn authorize(State(sim): State<Arc<Sim>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let user = acting_user(None, &headers).ok();
    match sim.authorize(user.as_deref(), &query_map(q.as_deref())) {
        Ok(location) => match HeaderValue::from_str(&location) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            // redirect_location only emits visible ASCII, so this cannot happen; never panic.
            Err(_) => auth_error_code_page(errcode::AUTH_REDIRECT_DOMAIN),
        },
        Err(AuthorizeError::Page(code)) => auth_error_code_page(code),
        Err(AuthorizeError::UnknownUser) => auth_error_page(
            None,
            "wechat-sim: 未知的微信用户 (unknown WeChat user): name the user in the X-WxSim-User header or the \
             wxsim_user cookie",
        ),
    }
}

async fn oauth2_access_token(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    match sim.oauth2_access_token(&query_map(q.as_deref())) {
        Ok(token) => wx_json(&token),
        Err(e) => e.into_response(),
    }
}

async fn sns_userinfo(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    match sim.sns_userinfo(&query_map(q.as_deref())) {
        Ok(info) => wx_json(&info),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_page_escapes_and_shows_the_errcode() {
        let page = auth_error_page(Some(10003), "a<b>&\"c'");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some(WECHAT_HTML));
        assert!(page.headers().get(header::LOCATION).is_none());
        assert_eq!(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }
}
