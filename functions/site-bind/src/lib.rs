//! `POST /v1/site/bind` (site API key): redeem a signed login link for a site user.

use std::sync::Arc;

use shared::domain::sitelink;
use shared::http::{bearer, json, json_body, serve, Request, Response};
use shared::{Bridge, Error};

pub async fn handle(b: Arc<Bridge>, req: Request) -> Response {
    serve("site-bind", req, |req| route(b, req)).await
}

async fn route(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    match (req.method().as_str(), req.uri().path()) {
        ("POST", "/v1/site/bind") => {
            let site = b.registry.site_by_key(bearer(&req)?).ok_or(Error::InvalidToken)?;
            let body: sitelink::BindRequest = json_body(&req)?;
            Ok(json(200, &sitelink::bind(&b, site, body).await?))
        }
        (_, "/v1/site/bind") => Err(Error::MethodNotAllowed("POST")),
        _ => Err(Error::RouteNotFound),
    }
}
