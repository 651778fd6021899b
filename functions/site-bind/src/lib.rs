//! `POST /v1/site/bind` (site API key): redeem the code of a login link, checked in its
//! follower's own browser, for the user the site logged in.

use std::sync::Arc;

use shared::domain::sitelink::BindRequest;
use shared::http::{json, json_body, site_credential, Request, Response};
use shared::routes::Routes;
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("site-bind").post("/v1/site/bind", bind)
}

async fn bind(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let site = site_credential(&b, &req).await?;
    let body: BindRequest = json_body(&req)?;
    Ok(json(200, &b.site_links().bind(&site, body).await?))
}
