//! `POST /v1/mp/login`, `POST /v1/mp/userinfo`, `GET /v1/me`, `POST /v1/auth/tickets`
//! (API.md "Mini program"), `POST /v1/open/login` (mobile app, website QR, OA H5 login), and
//! the token keys: `/.well-known/jwks.json`, `/.well-known/openid-configuration`.

use serde::Deserialize;
use std::sync::Arc;

use shared::domain::{login, webauth};
use shared::http::{bearer, json, json_body, serve, Request, Response};
use shared::ids::{AppId, Code};
use shared::tokens::Verified;
use shared::{Bridge, Error};

#[derive(Deserialize)]
struct LoginBody {
    appid: AppId,
    code: Code,
}

#[derive(Deserialize)]
struct UserinfoBody {
    #[serde(rename = "encryptedData")]
    encrypted_data: String,
    iv: String,
}

/// Public keys change only by rotation (old keys stay published until their tokens expire):
/// verifiers may cache them a few minutes.
fn cacheable(mut r: Response) -> Response {
    r.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=300"));
    r
}

pub async fn handle(b: Arc<Bridge>, req: Request) -> Response {
    serve("mp-login", req, |req| route(b, req)).await
}

fn caller(b: &Bridge, req: &Request) -> Result<Verified, Error> {
    b.tokens.verify(bearer(req)?, b.clock.now_secs())
}

async fn route(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    match (req.method().as_str(), req.uri().path()) {
        ("POST", "/v1/mp/login") => {
            let body: LoginBody = json_body(&req)?;
            Ok(json(200, &login::mp_login(&b, &body.appid, &body.code).await?))
        }
        ("POST", "/v1/open/login") => {
            let body: LoginBody = json_body(&req)?;
            Ok(json(200, &login::open_login(&b, &body.appid, &body.code).await?))
        }
        ("POST", "/v1/mp/userinfo") => {
            let who = caller(&b, &req)?;
            let body: UserinfoBody = json_body(&req)?;
            Ok(json(200, &login::mp_userinfo(&b, &who, &body.encrypted_data, &body.iv).await?))
        }
        ("POST", "/v1/auth/tickets") => {
            let who = caller(&b, &req)?;
            let body: webauth::TicketRequest =
                if req.body().is_empty() { Default::default() } else { json_body(&req)? };
            Ok(json(201, &webauth::create_ticket(&b, &who, body).await?))
        }
        ("GET", "/.well-known/jwks.json") => Ok(cacheable(json(200, &b.tokens.jwks()))),
        ("GET", "/.well-known/openid-configuration") => Ok(cacheable(json(200, &b.tokens.discovery()))),
        ("GET", "/v1/me") => {
            let who = caller(&b, &req)?;
            Ok(json(200, &login::me(&b, &who).await?))
        }
        (_, "/v1/mp/login" | "/v1/mp/userinfo" | "/v1/auth/tickets" | "/v1/open/login") => {
            Err(Error::MethodNotAllowed("POST"))
        }
        (_, "/v1/me" | "/.well-known/jwks.json" | "/.well-known/openid-configuration") => {
            Err(Error::MethodNotAllowed("GET"))
        }
        _ => Err(Error::RouteNotFound),
    }
}
