//! WeChat's own paths, answered the way WeChat answers them: HTTP 200, a JSON body with
//! `Content-Type: application/json; encoding=utf-8`, and `{"errcode","errmsg"}` on failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use crate::ids;
use crate::sim::{errmsg_for, Sim, WxError};

/// The Content-Type WeChat's JSON APIs answer with.
pub const WECHAT_JSON: &str = "application/json; encoding=utf-8";

/// Every WeChat path the simulator serves (faults and call counts apply to these).
pub const JSCODE2SESSION: &str = "/sns/jscode2session";

/// The WeChat routes, behind the gate that counts calls and applies faults.
pub(crate) fn routes(sim: Arc<Sim>) -> Router<Arc<Sim>> {
    Router::new()
        .route(JSCODE2SESSION, get(jscode2session))
        .route_layer(middleware::from_fn_with_state(sim, gate))
}

/// A 200 JSON answer as WeChat sends it.
pub fn wx_json<T: Serialize>(body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(WECHAT_JSON))],
            bytes,
        )
            .into_response(),
        Err(_) => wx_error(crate::sim::errcode::SYSTEM_ERROR),
    }
}

/// WeChat's error body: `{"errcode":N,"errmsg":"<msg>, rid: <rid>"}` with HTTP 200.
pub fn wx_error(errcode: i64) -> Response {
    let body = format!(
        r#"{{"errcode":{errcode},"errmsg":"{}, rid: {}"}}"#,
        errmsg_for(errcode),
        ids::rid()
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(WECHAT_JSON))],
        body,
    )
        .into_response()
}

impl IntoResponse for WxError {
    fn into_response(self) -> Response {
        wx_error(self.0)
    }
}

/// The query string as a map (last value wins; never fails).
pub fn query_map(raw: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Counts the call, then applies the next programmed fault of the path, if any.
async fn gate(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    sim.record_call(&path);
    let Some(fault) = sim.take_fault(&path) else {
        return next.run(req).await;
    };
    tracing::debug!(%path, ?fault, "applying fault");
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match (fault.http_status, fault.errcode) {
        (Some(status), errcode) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut res = match errcode {
                Some(code) => wx_error(code),
                None => (
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    format!("{status}"),
                )
                    .into_response(),
            };
            *res.status_mut() = status;
            res
        }
        (None, Some(code)) => wx_error(code),
        (None, None) => next.run(req).await,
    }
}

async fn jscode2session(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    match sim.jscode2session(&query_map(q.as_deref())) {
        Ok(session) => wx_json(&session),
        Err(e) => e.into_response(),
    }
}
