//! `GET /v1/auth/start?ticket=` → 302 to the first official account's authorize page.

use std::sync::Arc;

use shared::domain::webauth;
use shared::http::{param, query, redirect, serve, Request, Response};
use shared::{Bridge, Error};

pub async fn handle(b: Arc<Bridge>, req: Request) -> Response {
    serve("auth-start", req, |req| route(b, req)).await
}

async fn route(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/v1/auth/start") => {
            let q = query(&req);
            Ok(redirect(&webauth::start(&b, param(&q, "ticket")?).await?))
        }
        (_, "/v1/auth/start") => Err(Error::MethodNotAllowed("GET")),
        _ => Err(Error::RouteNotFound),
    }
}
