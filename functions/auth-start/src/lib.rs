//! `GET /v1/auth/start?ticket=` → 302 to the first official account's authorize page.

use std::sync::Arc;

use shared::http::{param, query, redirect, Request, Response};
use shared::routes::Routes;
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("auth-start").get("/v1/auth/start", start)
}

async fn start(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let q = query(&req);
    Ok(redirect(&b.webauth().start(param(&q, "ticket")?).await?))
}
