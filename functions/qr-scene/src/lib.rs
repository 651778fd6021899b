//! `POST /v1/qr/scenes` and `GET /v1/qr/scenes/{scene}` (site API key).

use std::sync::Arc;

use shared::domain::scene::SceneRequest;
use shared::http::{bearer, json, json_body, Request, Response};
use shared::registry::Site;
use shared::routes::{path_param, Routes};
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("qr-scene").post("/v1/qr/scenes", create).get("/v1/qr/scenes/{scene}", status)
}

fn site<'a>(b: &'a Bridge, req: &Request) -> Result<&'a Site, Error> {
    b.registry().site_by_key(bearer(req)?).ok_or(Error::InvalidToken)
}

async fn create(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let site = site(&b, &req)?;
    let body: SceneRequest = json_body(&req)?;
    Ok(json(201, &b.scenes().create(site, body).await?))
}

async fn status(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let site = site(&b, &req)?;
    Ok(json(200, &b.scenes().status(site, path_param(&req, "scene")?).await?))
}
