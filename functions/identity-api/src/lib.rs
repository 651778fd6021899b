//! Operators (admin credential): `GET /v1/persons/{id}`, `GET /v1/identities/{appid}/{openid}`,
//! `DELETE /v1/persons/{id}/identities/{appid}/{openid}` (unlink), `DELETE /v1/persons/{id}` (erase).

use std::sync::Arc;

use shared::domain::admin;
use shared::http::{json, no_content, require_key, segments, serve, Request, Response};
use shared::ids::{AppId, OpenId, PersonId};
use shared::{Bridge, Error};

pub async fn handle(b: Arc<Bridge>, req: Request) -> Response {
    serve("identity-api", req, |req| route(b, req)).await
}

async fn route(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let path = req.uri().path().to_owned();
    let method = req.method().as_str().to_owned();
    if !path.starts_with("/v1/persons/") && !path.starts_with("/v1/identities/") {
        return Err(Error::RouteNotFound);
    }
    require_key(&req, b.registry.credentials.admin.as_ref())?;
    if let Some(s) = segments(&path, "/v1/identities/") {
        let [appid, openid] = s[..] else { return Err(Error::RouteNotFound) };
        let (appid, openid) = (AppId::parse(appid)?, OpenId::parse(openid)?);
        return match method.as_str() {
            "GET" => Ok(json(200, &admin::identity(&b, &appid, &openid).await?)),
            _ => Err(Error::MethodNotAllowed("GET")),
        };
    }
    let s = segments(&path, "/v1/persons/").ok_or(Error::RouteNotFound)?;
    match (method.as_str(), &s[..]) {
        ("GET", [person]) => Ok(json(200, &admin::person(&b, &PersonId::parse(person)?).await?)),
        ("DELETE", [person]) => {
            admin::erase(&b, &PersonId::parse(person)?).await?;
            Ok(no_content())
        }
        ("DELETE", [person, "identities", appid, openid]) => {
            admin::unlink(&b, &PersonId::parse(person)?, &AppId::parse(appid)?, &OpenId::parse(openid)?).await?;
            Ok(no_content())
        }
        (_, [_]) => Err(Error::MethodNotAllowed("GET, DELETE")),
        (_, [_, "identities", _, _]) => Err(Error::MethodNotAllowed("DELETE")),
        _ => Err(Error::RouteNotFound),
    }
}
