//! Operators (admin credential): `GET /v1/persons/{id}`, `GET /v1/identities/{appid}/{openid}`,
//! `DELETE /v1/persons/{id}/identities/{appid}/{openid}` (unlink), `DELETE /v1/persons/{id}` (erase).

use std::sync::Arc;

use shared::bridge::AdminAuth;
use shared::http::{json, no_content, require_key, IamCaller, Request, Response};
use shared::ids::{AppId, OpenId, PersonId};
use shared::routes::{path_param, Routes};
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("identity-api")
        .get("/v1/persons/{person_id}", person)
        .delete("/v1/persons/{person_id}", erase)
        .get("/v1/identities/{appid}/{openid}", identity)
        .delete("/v1/persons/{person_id}/identities/{appid}/{openid}", unlink)
}

/// Operators only: in AWS, a caller API Gateway authorized with IAM (no bearer key on the
/// public domain); locally, the admin key.
fn admin(b: &Bridge, req: &Request) -> Result<(), Error> {
    match b.admin_auth() {
        AdminAuth::Iam => match req.extensions().get::<IamCaller>() {
            Some(c) => {
                tracing::info!(caller = c.0.as_str(), "operator request");
                Ok(())
            }
            None => Err(Error::Forbidden),
        },
        AdminAuth::Key => require_key(req, b.registry().credentials.admin.as_ref()),
    }
}

async fn person(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req)?;
    let person = PersonId::parse(path_param(&req, "person_id")?)?;
    Ok(json(200, &b.admin().person(&person).await?))
}

async fn erase(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req)?;
    b.admin().erase(&PersonId::parse(path_param(&req, "person_id")?)?).await?;
    Ok(no_content())
}

async fn identity(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req)?;
    let appid = AppId::parse(path_param(&req, "appid")?)?;
    let openid = OpenId::parse(path_param(&req, "openid")?)?;
    Ok(json(200, &b.admin().identity(&appid, &openid).await?))
}

async fn unlink(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req)?;
    let person = PersonId::parse(path_param(&req, "person_id")?)?;
    let appid = AppId::parse(path_param(&req, "appid")?)?;
    let openid = OpenId::parse(path_param(&req, "openid")?)?;
    b.admin().unlink(&person, &appid, &openid).await?;
    Ok(no_content())
}
