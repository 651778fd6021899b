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
    let bridge = cold_start(function).await?;
    let handler = Arc::new(handler);
    lambda_http::run(lambda_http::service_fn(move |event: lambda_http::Request| {
        let bridge = bridge.clone();
        let handler = handler.clone();
        async move {
            let (mut parts, body) = event.into_parts();
            let request_id =
                parts.extensions.get::<lambda_http::Context>().map(|c| c.request_id.clone()).unwrap_or_default();
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
    }))
    .await
}

async fn cold_start(function: &'static str) -> Result<Arc<Bridge>, Error> {
    crate::telemetry::init();
    let bridge = Bridge::from_env().await.map_err(|e| {
        tracing::error!(function, error = %e, "cold start failed");
        Box::new(e) as Error
    })?;
    Ok(Arc::new(bridge))
}

/// For non-HTTP events (the API Gateway authorizer): JSON in, JSON out.
pub async fn run_events<F, Fut, E, R>(function: &'static str, handler: F) -> Result<(), Error>
where
    F: Fn(Arc<Bridge>, E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send,
    E: serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + Send + 'static,
{
    let bridge = cold_start(function).await?;
    let handler = Arc::new(handler);
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<E>| {
        let bridge = bridge.clone();
        let handler = handler.clone();
        async move {
            use tracing::Instrument;
            let span = tracing::info_span!("event", function, request_id = %event.context.request_id);
            Ok::<R, std::convert::Infallible>(handler(bridge, event.payload).instrument(span).await)
        }
    }))
    .await
}
