//! `POST /v1/qr/scenes` and `GET /v1/qr/scenes/{scene}` (site API key).

use std::sync::Arc;

use shared::domain::scene;
use shared::http::{bearer, json, json_body, segments, serve, Request, Response};
use shared::registry::Site;
use shared::{Bridge, Error};

pub async fn handle(b: Arc<Bridge>, req: Request) -> Response {
    serve("qr-scene", req, |req| route(b, req)).await
}

fn site<'a>(b: &'a Bridge, req: &Request) -> Result<&'a Site, Error> {
    b.registry.site_by_key(bearer(req)?).ok_or(Error::InvalidToken)
}

async fn route(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let path = req.uri().path();
    match (req.method().as_str(), path) {
        ("POST", "/v1/qr/scenes") => {
            let site = site(&b, &req)?;
            let body: scene::SceneRequest = json_body(&req)?;
            Ok(json(201, &scene::create(&b, site, body).await?))
        }
        (_, "/v1/qr/scenes") => Err(Error::MethodNotAllowed("POST")),
        (method, _) => {
            let [id] = segments(path, "/v1/qr/scenes/").ok_or(Error::RouteNotFound)?[..] else {
                return Err(Error::RouteNotFound);
            };
            if method != "GET" {
                return Err(Error::MethodNotAllowed("GET"));
            }
            let site = site(&b, &req)?;
            Ok(json(200, &scene::status(&b, site, id).await?))
        }
    }
}
