//! `POST /v1/mp/login`, `POST /v1/mp/userinfo`, `GET /v1/me`, `POST /v1/auth/tickets`,
//! `POST /v1/auth/confirm` (API.md "Mini program", "Confirmation by the ticket's owner"), `POST /v1/open/login` (mobile app, website QR, OA H5 login), and
//! the token keys: `/.well-known/jwks.json`, `/.well-known/openid-configuration`.

use serde::Deserialize;
use std::sync::Arc;

use shared::domain::webauth::TicketRequest;
use shared::http::{bearer, json, json_body, Request, Response};
use shared::ids::{AppId, Code};
use shared::routes::Routes;
use shared::tokens::Verified;
use shared::{Bridge, Error};

#[derive(Deserialize)]
struct LoginBody {
    appid: AppId,
    code: Code,
}

#[derive(Deserialize)]
struct ConfirmBody {
    code: String,
}

#[derive(Deserialize)]
struct UserinfoBody {
    #[serde(rename = "encryptedData")]
    encrypted_data: String,
    iv: String,
}

pub fn routes() -> Routes {
    Routes::new("mp-login")
        .post("/v1/mp/login", login)
        .post("/v1/open/login", open_login)
        .post("/v1/mp/userinfo", userinfo)
        .post("/v1/auth/tickets", tickets)
        .post("/v1/auth/confirm", confirm)
        .get("/v1/me", me)
        .get("/.well-known/jwks.json", jwks)
        .get("/.well-known/openid-configuration", discovery)
}

fn caller(b: &Bridge, req: &Request) -> Result<Verified, Error> {
    b.tokens().verify(bearer(req)?, b.clock().now_secs())
}

async fn login(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let body: LoginBody = json_body(&req)?;
    Ok(json(200, &b.login().mp_login(&body.appid, &body.code).await?))
}

async fn open_login(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let body: LoginBody = json_body(&req)?;
    Ok(json(200, &b.login().open_login(&body.appid, &body.code).await?))
}

async fn userinfo(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let who = caller(&b, &req)?;
    let body: UserinfoBody = json_body(&req)?;
    Ok(json(200, &b.login().mp_userinfo(&who, &body.encrypted_data, &body.iv).await?))
}

async fn tickets(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let who = caller(&b, &req)?;
    let body: TicketRequest = if req.body().is_empty() { Default::default() } else { json_body(&req)? };
    Ok(json(201, &b.webauth().create_ticket(&who, body).await?))
}

async fn confirm(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let who = caller(&b, &req)?;
    let body: ConfirmBody = json_body(&req)?;
    Ok(json(200, &b.login().confirm(&who, &body.code).await?))
}

async fn me(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let who = caller(&b, &req)?;
    Ok(json(200, &b.login().me(&who).await?))
}

/// Public keys change only by rotation (old keys stay published until their tokens expire):
/// verifiers may cache them a few minutes.
fn cacheable(mut r: Response) -> Response {
    r.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=300"));
    r
}

async fn jwks(b: Arc<Bridge>, _: Request) -> Result<Response, Error> {
    Ok(cacheable(json(200, &b.tokens().jwks())))
}

async fn discovery(b: Arc<Bridge>, _: Request) -> Result<Response, Error> {
    Ok(cacheable(json(200, &b.tokens().discovery())))
}
