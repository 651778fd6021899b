//! The Lambda adapter: the only module that knows lambda_http. A function's `main` is
//! `shared::lambda::run(routes())`.

use std::future::Future;
use std::sync::Arc;

use crate::bridge::Bridge;
use crate::routes::{service, Routes};
use crate::settings::Settings;

pub type Error = lambda_http::Error;

/// Serves a function's routes: the bridge is built once, at cold start.
pub async fn run(routes: Routes) -> Result<(), Error> {
    let bridge = cold_start(routes.function()).await?;
    lambda_http::run(app(routes, bridge)).await
}

/// A function's service as Lambda runs it: its routes, with what the Lambda event adds
/// (the request id, an IAM caller) carried into the request.
pub fn app(routes: Routes, bridge: Arc<Bridge>) -> axum::Router {
    // Lambda's request id names the request in every log line.
    service([routes.into_router()], bridge).layer(axum::middleware::map_request(
        |mut req: axum::extract::Request| async move {
            let id = req.extensions().get::<lambda_http::Context>().map(|c| c.request_id.clone());
            if let Some(v) = id.and_then(|id| http::HeaderValue::from_str(&id).ok()) {
                req.headers_mut().insert("x-request-id", v);
            }
            // An IAM-authorized caller (operators' routes) is named for the handler.
            if let Some(arn) = iam_caller(req.extensions()) {
                req.extensions_mut().insert(crate::http::IamCaller(arn));
            }
            req
        },
    ))
}

fn iam_caller(ext: &http::Extensions) -> Option<String> {
    match ext.get::<lambda_http::request::RequestContext>()? {
        lambda_http::request::RequestContext::ApiGatewayV2(c) => {
            let iam = c.authorizer.as_ref()?.iam.as_ref()?;
            Some(iam.user_arn.clone().or_else(|| iam.caller_id.clone()).unwrap_or_else(|| "iam".into()))
        }
        _ => None,
    }
}

async fn cold_start(function: &'static str) -> Result<Arc<Bridge>, Error> {
    crate::telemetry::init();
    let built = match Settings::from_env() {
        Ok(settings) => Bridge::from_settings(&settings).await,
        Err(e) => Err(e),
    };
    let bridge = built.map_err(|e| {
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
