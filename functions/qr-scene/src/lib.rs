//! `POST /v1/qr/scenes` and `GET /v1/qr/scenes/{scene}` (site API key).

use std::sync::Arc;

use shared::domain::scene::SceneRequest;
use shared::http::{json, json_body, site_credential, Request, Response};
use shared::routes::{path_param, Routes};
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("qr-scene").post("/v1/qr/scenes", create).get("/v1/qr/scenes/{scene}", status)
}

async fn create(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let site = site_credential(&b, &req).await?;
    let body: SceneRequest = json_body(&req)?;
    Ok(json(201, &b.scenes().create(&site, body).await?))
}

async fn status(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let site = site_credential(&b, &req).await?;
    Ok(json(200, &b.scenes().status(&site, path_param(&req, "scene")?).await?))
}
