//! The Lambda adapter: the only module that knows lambda_http. A function's `main` is
//! `shared::lambda::run("name", handler)`.

use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;

use crate::bridge::Bridge;
use crate::http::{Request, Response};

pub type Error = lambda_http::Error;

pub async fn run<F, Fut>(function: &'static str, handler: F) -> Result<(), Error>
where
    F: Fn(Arc<Bridge>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send,
{
    crate::telemetry::init();
    let bridge = Arc::new(Bridge::from_env().await.map_err(|e| {
        tracing::error!(function, error = %e, "cold start failed");
        Box::new(e) as Error
    })?);
    let handler = Arc::new(handler);
    lambda_http::run(lambda_http::service_fn(
        move |event: lambda_http::Request| {
            let bridge = bridge.clone();
            let handler = handler.clone();
            async move {
                let (mut parts, body) = event.into_parts();
                let request_id = parts
                    .extensions
                    .get::<lambda_http::Context>()
                    .map(|c| c.request_id.clone())
                    .unwrap_or_default();
                if let Ok(v) = http::HeaderValue::from_str(&request_id) {
                    parts.headers.insert("x-request-id", v);
                }
                let body = match body {
                    lambda_http::Body::Empty => Bytes::new(),
                    lambda_http::Body::Text(t) => Bytes::from(t),
                    lambda_http::Body::Binary(b) => Bytes::from(b),
                    _ => Bytes::new(),
                };
                let resp = handler(bridge, http::Request::from_parts(parts, body)).await;
                let (parts, body) = resp.into_parts();
                let body = match String::from_utf8(body.to_vec()) {
                    Ok(t) => lambda_http::Body::Text(t),
                    Err(e) => lambda_http::Body::Binary(e.into_bytes()),
                };
                Ok::<_, std::convert::Infallible>(http::Response::from_parts(parts, body))
            }
        },
    ))
    .await
}
