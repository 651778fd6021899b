//! WeChat's own paths, answered the way WeChat answers them: HTTP 200, a JSON body with
//! `Content-Type: application/json; encoding=utf-8`, and `{"errcode","errmsg"}` on failure.
//! The browser-facing `/connect/oauth2/authorize` and `/connect/qrconnect` answer a 302 or
//! WeChat's HTML error page; `/cgi-bin/showqrcode` answers an image (or 404).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::control::acting_user;
use crate::ids;
use crate::sim::{authorize_errmsg, errcode, errmsg_for, qrconnect_errmsg, AuthorizeError, Sim, WxError};

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
/// The website QR-login page (on `open.weixin.qq.com`).
pub const QRCONNECT: &str = "/connect/qrconnect";
pub const CGI_TOKEN: &str = "/cgi-bin/token";
pub const CGI_STABLE_TOKEN: &str = "/cgi-bin/stable_token";
pub const QRCODE_CREATE: &str = "/cgi-bin/qrcode/create";
/// The QR image (on `mp.weixin.qq.com`).
pub const SHOWQRCODE: &str = "/cgi-bin/showqrcode";
pub const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";
pub const OPEN_GET: &str = "/cgi-bin/open/get";
// The third-party platform's paths (contract §11).
pub const COMPONENT_TOKEN: &str = "/cgi-bin/component/api_component_token";
pub const COMPONENT_START_PUSH_TICKET: &str = "/cgi-bin/component/api_start_push_ticket";
pub const COMPONENT_CREATE_PREAUTHCODE: &str = "/cgi-bin/component/api_create_preauthcode";
pub const COMPONENT_QUERY_AUTH: &str = "/cgi-bin/component/api_query_auth";
pub const COMPONENT_AUTHORIZER_TOKEN: &str = "/cgi-bin/component/api_authorizer_token";
pub const COMPONENT_GET_AUTHORIZER_INFO: &str = "/cgi-bin/component/api_get_authorizer_info";
/// The PC authorization page (on `mp.weixin.qq.com`).
pub const COMPONENT_LOGIN_PAGE: &str = "/cgi-bin/componentloginpage";
/// The mobile authorization page (on `open.weixin.qq.com`).
pub const COMPONENT_BIND_PAGE: &str = "/wxaopen/safe/bindcomponent";
pub const COMPONENT_JSCODE2SESSION: &str = "/sns/component/jscode2session";
pub const COMPONENT_OAUTH2_ACCESS_TOKEN: &str = "/sns/oauth2/component/access_token";

/// The WeChat routes, behind the gate that counts calls and applies faults.
pub(crate) fn routes(sim: Arc<Sim>) -> Router<Arc<Sim>> {
    Router::new()
        .route(JSCODE2SESSION, get(jscode2session))
        .route(OAUTH2_AUTHORIZE, get(authorize))
        .route(OAUTH2_ACCESS_TOKEN, get(oauth2_access_token))
        .route(SNS_USERINFO, get(sns_userinfo))
        .route(QRCONNECT, get(qrconnect))
        .route(CGI_TOKEN, get(cgi_token))
        .route(CGI_STABLE_TOKEN, post(stable_token))
        .route(QRCODE_CREATE, post(qrcode_create))
        .route(SHOWQRCODE, get(showqrcode))
        .route(CUSTOM_SEND, post(custom_send))
        .route(OPEN_GET, post(open_get))
        .route(COMPONENT_TOKEN, post(component_token))
        .route(COMPONENT_START_PUSH_TICKET, post(start_push_ticket))
        .route(COMPONENT_CREATE_PREAUTHCODE, post(create_preauthcode))
        .route(COMPONENT_QUERY_AUTH, post(query_auth))
        .route(COMPONENT_AUTHORIZER_TOKEN, post(authorizer_token))
        .route(COMPONENT_GET_AUTHORIZER_INFO, post(get_authorizer_info))
        .route(COMPONENT_LOGIN_PAGE, get(authorization_page))
        .route(COMPONENT_BIND_PAGE, get(authorization_page))
        .route(COMPONENT_JSCODE2SESSION, get(component_jscode2session))
        .route(COMPONENT_OAUTH2_ACCESS_TOKEN, get(component_oauth2_access_token))
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
/// message, or, without an errcode, a simulator-only message. The body carries the errcode as
/// `data-errcode` and, as the third-party platform's pages do, `data-error`.
pub fn auth_error_page(errcode: Option<i64>, message: &str) -> Response {
    let (attr, code_line) = match errcode {
        Some(code) => (
            format!(r#" data-errcode="{code}" data-error="{code}""#),
            format!("<p class=\"weui-msg__desc\">errcode: <span id=\"errcode\">{code}</span></p>\n"),
        ),
        None => (String::new(), String::new()),
    };
    let body = format!(
        "<body{attr}>\n<div class=\"weui-msg\">\n<h2 class=\"weui-msg__title\">Oops! Something went wrong:(</h2>\n\
         {code_line}<p class=\"weui-msg__desc\" id=\"errmsg\">{}</p>\n</div>\n</body>\n",
        html_escape(message)
    );
    html_page("微信网页授权", &body)
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
    let error = |code: i64| match path.as_str() {
        OAUTH2_AUTHORIZE => auth_error_code_page(code),
        QRCONNECT => auth_error_page(Some(code), qrconnect_errmsg(code)),
        COMPONENT_LOGIN_PAGE | COMPONENT_BIND_PAGE => component_error_page(code),
        _ => wx_error(code),
    };
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
        Err(AuthorizeError::UnknownUser) => unknown_user_page(),
        Err(AuthorizeError::Refused) => auth_error_page(None, "用户拒绝授权"),
    }
}

fn unknown_user_page() -> Response {
    auth_error_page(
        None,
        "wechat-sim: 未知的微信用户 (unknown WeChat user): name the user in the X-WxSim-User header or the \
         wxsim_user cookie",
    )
}

/// `GET /connect/qrconnect`: the website QR-login page, as if the acting user (header or cookie)
/// scanned it and confirmed on the phone.
async fn qrconnect(State(sim): State<Arc<Sim>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let user = acting_user(None, &headers).ok();
    match sim.qrconnect(user.as_deref(), &query_map(q.as_deref())) {
        Ok(location) => match HeaderValue::from_str(&location) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => {
                auth_error_page(Some(errcode::AUTH_REDIRECT_DOMAIN), qrconnect_errmsg(errcode::AUTH_REDIRECT_DOMAIN))
            }
        },
        Err(AuthorizeError::Page(code)) => auth_error_page(Some(code), qrconnect_errmsg(code)),
        Err(AuthorizeError::UnknownUser) => unknown_user_page(),
        Err(AuthorizeError::Refused) => auth_error_page(None, "你已取消此次登录"),
    }
}

fn json_or_error<T: Serialize>(result: Result<T, WxError>) -> Response {
    match result {
        Ok(body) => wx_json(&body),
        Err(e) => e.into_response(),
    }
}

async fn cgi_token(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    json_or_error(sim.token(&query_map(q.as_deref())))
}

async fn stable_token(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    json_or_error(sim.stable_token(&body))
}

async fn qrcode_create(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    json_or_error(sim.qrcode_create(&query_map(q.as_deref()), &body))
}

/// `GET /cgi-bin/showqrcode?ticket=`: a (1×1) PNG for a known ticket, 404 otherwise.
async fn showqrcode(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    let known = query_map(q.as_deref()).get("ticket").is_some_and(|t| sim.qr_ticket_known(t));
    if known {
        ([(header::CONTENT_TYPE, "image/png")], crate::sim::QR_PNG).into_response()
    } else {
        (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "404 Not Found").into_response()
    }
}

async fn open_get(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    match sim.open_get(&query_map(q.as_deref()), &body) {
        Ok(open_appid) => wx_json(&serde_json::json!({"errcode": 0, "errmsg": "ok", "open_appid": open_appid})),
        Err(e) => e.into_response(),
    }
}

async fn custom_send(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    match sim.custom_send(&query_map(q.as_deref()), &body) {
        Ok(()) => wx_json(&serde_json::json!({"errcode": 0, "errmsg": "ok"})),
        Err(e) => e.into_response(),
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

// ---- the third-party platform ----------------------------------------------------------------

async fn component_token(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    json_or_error(sim.component_token(&body))
}

/// Answers at once; the ticket follows shortly, as from WeChat (so a bridge that calls this
/// while handling a request is not pushed to before it answered).
async fn start_push_ticket(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    if let Err(e) = sim.start_push_ticket(&body) {
        return e.into_response();
    }
    let pusher = Arc::clone(&sim);
    tokio::spawn(async move {
        if let Err(e) = pusher.push_ticket().await {
            tracing::warn!(error = %e, "api_start_push_ticket: cannot push a ticket");
        }
    });
    wx_json(&serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

async fn create_preauthcode(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    json_or_error(sim.create_preauthcode(&query_map(q.as_deref()), &body))
}

async fn query_auth(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    json_or_error(sim.query_auth(&query_map(q.as_deref()), &body))
}

async fn authorizer_token(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    json_or_error(sim.authorizer_token(&query_map(q.as_deref()), &body))
}

async fn get_authorizer_info(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    json_or_error(sim.get_authorizer_info(&query_map(q.as_deref()), &body))
}

async fn component_jscode2session(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    json_or_error(sim.component_jscode2session(&query_map(q.as_deref())))
}

async fn component_oauth2_access_token(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    json_or_error(sim.component_oauth2_access_token(&query_map(q.as_deref())))
}

fn html_page(title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>{title}</title>\n</head>\n\
         {body}</html>\n"
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(WECHAT_HTML))], page).into_response()
}

/// The authorization page's error: nothing can be authorized from it.
fn component_error_page(code: i64) -> Response {
    let body = format!(
        "<body data-error=\"{code}\">\n<h2>授权失败</h2>\n<p>errcode: <span id=\"errcode\">{code}</span></p>\n\
         <p id=\"errmsg\">{}</p>\n</body>\n",
        html_escape(errmsg_for(code))
    );
    html_page("公众平台帐号授权", &body)
}

/// What the page's buttons do: the merchant approves one app (through the simulator's control
/// surface), then the browser follows the redirect back to the platform.
const AUTHORIZE_SCRIPT: &str = r#"<script>
document.querySelectorAll('[data-authorize]').forEach(function (b) {
  b.addEventListener('click', function () {
    var page = document.body.dataset;
    var body = {appids: [b.dataset.authorize], pre_auth_code: page.preAuthCode};
    if (page.redirectUri) { body.redirect_uri = page.redirectUri; }
    fetch('/sim/merchants/' + encodeURIComponent(b.dataset.owner) + '/authorize', {
      method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)
    }).then(function (r) { return r.json(); }).then(function (a) {
      if (a.location) { location.href = a.location; }
      else { document.getElementById('result').textContent = a.error || 'authorized'; }
    });
  });
});
</script>
"#;

/// `GET /cgi-bin/componentloginpage` and `/wxaopen/safe/bindcomponent`: the merchant's side of
/// the authorization, one button (`data-authorize="{appid}"`) per app it may authorize.
async fn authorization_page(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    let page = match sim.authorization_page(&query_map(q.as_deref())) {
        Ok(page) => page,
        Err(WxError(code)) => return component_error_page(code),
    };
    let mut items = String::new();
    for app in &page.apps {
        let kind = if app.is_mini_program() { "小程序" } else { "公众号" };
        items.push_str(&format!(
            "<li><span class=\"nick\">{}</span> <code>{}</code> ({kind}, {})\n\
             <button type=\"button\" data-authorize=\"{}\" data-owner=\"{}\">授权</button></li>\n",
            html_escape(&app.name),
            html_escape(&app.appid),
            html_escape(&app.owner),
            html_escape(&app.appid),
            html_escape(&app.owner),
        ));
    }
    let body = format!(
        "<body data-component-appid=\"{}\" data-pre-auth-code=\"{}\" data-redirect-uri=\"{}\">\n\
         <h2>授权给第三方平台 {}</h2>\n<ul id=\"apps\">\n{items}</ul>\n<p id=\"result\"></p>\n{AUTHORIZE_SCRIPT}</body>\n",
        html_escape(&page.component_appid),
        html_escape(&page.pre_auth_code),
        html_escape(page.redirect_uri.as_deref().unwrap_or("")),
        html_escape(&page.component_appid),
    );
    html_page("公众平台帐号授权", &body)
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
