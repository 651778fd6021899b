//! Routing, declared once per function: its routes (method, path) build its axum router, and
//! the same list is what template.yaml is checked against. Lambda serves the router with
//! lambda_http; devstack merges every function's router on one origin.
//!
//! Every answer is the bridge's: an unknown path is a problem+json 404, a known path with
//! another method a problem+json 405 with `Allow` (axum computes it from the routes).

use axum::extract::{RawPathParams, Request as AxumRequest, State};
use axum::routing::{on, MethodFilter};
use bytes::Bytes;
use http::Method;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use crate::bridge::Bridge;
use crate::error::Error;
use crate::http::{finish, problem, Request, Response};

/// A request body larger than API Gateway's own cap is not read at all; handlers refuse
/// anything over [`crate::http::MAX_BODY`] themselves.
const EDGE_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// One route: what template.yaml must declare for the function.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: Method,
    /// In API Gateway's and axum's syntax: `/v1/qr/scenes/{scene}`.
    pub path: &'static str,
}

/// The path's parameters, in the request's extensions for the handler.
#[derive(Clone, Debug, Default)]
pub struct PathParams(HashMap<String, String>);

/// A path parameter of the route (`{name}` in its path), percent-decoded.
pub fn path_param<'a>(req: &'a Request, name: &str) -> Result<&'a str, Error> {
    req.extensions().get::<PathParams>().and_then(|p| p.0.get(name)).map(String::as_str).ok_or(Error::RouteNotFound)
}

/// A function's routes and its router.
pub struct Routes {
    function: &'static str,
    routes: Vec<Route>,
    router: axum::Router<Arc<Bridge>>,
}

impl Routes {
    pub fn new(function: &'static str) -> Self {
        Routes { function, routes: Vec::new(), router: axum::Router::new() }
    }

    pub fn function(&self) -> &'static str {
        self.function
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn get<H, Fut>(self, path: &'static str, h: H) -> Self
    where
        H: Fn(Arc<Bridge>, Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Response, Error>> + Send + 'static,
    {
        self.on(Method::GET, path, h)
    }

    pub fn post<H, Fut>(self, path: &'static str, h: H) -> Self
    where
        H: Fn(Arc<Bridge>, Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Response, Error>> + Send + 'static,
    {
        self.on(Method::POST, path, h)
    }

    pub fn put<H, Fut>(self, path: &'static str, h: H) -> Self
    where
        H: Fn(Arc<Bridge>, Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Response, Error>> + Send + 'static,
    {
        self.on(Method::PUT, path, h)
    }

    pub fn delete<H, Fut>(self, path: &'static str, h: H) -> Self
    where
        H: Fn(Arc<Bridge>, Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Response, Error>> + Send + 'static,
    {
        self.on(Method::DELETE, path, h)
    }

    fn on<H, Fut>(mut self, method: Method, path: &'static str, h: H) -> Self
    where
        H: Fn(Arc<Bridge>, Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Response, Error>> + Send + 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum can route");
        let function = self.function;
        let handler = move |State(b): State<Arc<Bridge>>, params: RawPathParams, req: AxumRequest| {
            let h = h.clone();
            let params = PathParams(params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect());
            async move { to_axum(serve(function, b, params, req, h).await) }
        };
        self.router = self.router.route(path, on(filter, handler));
        self.routes.push(Route { method, path });
        self
    }

    /// The function's routes, before the edge handling that a whole service gets once.
    pub fn into_router(self) -> axum::Router<Arc<Bridge>> {
        self.router
    }
}

/// The service on one origin: the routers given, with the bridge's 404 and 405.
pub fn service(routers: impl IntoIterator<Item = axum::Router<Arc<Bridge>>>, b: Arc<Bridge>) -> axum::Router {
    let inner = routers
        .into_iter()
        .fold(axum::Router::new(), axum::Router::merge)
        .fallback(|| async { to_axum(problem(&Error::RouteNotFound)) })
        .with_state(b);
    // Outside the routes: axum adds `Allow` to a 405 after a route's own layers have run.
    let outer = tower::ServiceBuilder::new().layer(axum::middleware::map_response(method_not_allowed)).service(inner);
    axum::Router::new().fallback_service(outer)
}

/// axum answers a known path with another method by an empty 405 with `Allow`: make it ours.
async fn method_not_allowed(r: axum::response::Response) -> axum::response::Response {
    if r.status() != http::StatusCode::METHOD_NOT_ALLOWED {
        return r;
    }
    let allow = r.headers().get(http::header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    to_axum(problem(&Error::MethodNotAllowed(allow)))
}

/// Runs one request inside a log span (function, request id, method, path — no query
/// string, no body) and renders its outcome.
async fn serve<H, Fut>(function: &'static str, b: Arc<Bridge>, params: PathParams, req: AxumRequest, h: H) -> Response
where
    H: Fn(Arc<Bridge>, Request) -> Fut,
    Fut: Future<Output = Result<Response, Error>>,
{
    use tracing::Instrument;
    let (mut parts, body) = req.into_parts();
    let span = tracing::info_span!(
        "request",
        function,
        request_id = %crate::http::request_id(&parts.headers),
        method = %parts.method,
        path = parts.uri.path()
    );
    async move {
        let body = match axum::body::to_bytes(body, EDGE_BODY_LIMIT).await {
            Ok(b) => b,
            Err(_) => return finish(Err(Error::PayloadTooLarge(crate::http::MAX_BODY))),
        };
        parts.extensions.insert(params);
        finish(h(b, http::Request::from_parts(parts, body)).await)
    }
    .instrument(span)
    .await
}

fn to_axum(resp: Response) -> axum::response::Response {
    let (parts, body): (_, Bytes) = resp.into_parts();
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}
