//! Openid translation: `GET /v1/translate?from_appid&openid&to_appid` (service credential),
//! and the same code as an API Gateway HTTP API Lambda authorizer (payload 2.0, simple
//! responses): the binary `translate-authorizer`.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

use shared::http::{credential, json, param, query, Request, Response};
use shared::ids::{AppId, OpenId};
use shared::routes::Routes;
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("translate").get("/v1/translate", translate)
}

async fn translate(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let caller = credential(&b, &req).await?;
    let q = query(&req);
    let from = AppId::parse(param(&q, "from_appid")?)?;
    let openid = OpenId::parse(param(&q, "openid")?)?;
    let to = AppId::parse(param(&q, "to_appid")?)?;
    let answer = b.translator().translate_for(&caller, &from, &openid, &to).await?;
    // A merchant's backend may keep an answer as long as a bridge instance does.
    let mut res = json(200, &answer);
    res.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("private, max-age=60"));
    Ok(res)
}

/// The part of API Gateway's authorizer event (payload 2.0) we read.
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizerEvent {
    #[serde(default)]
    pub headers: HashMap<String, String>,
    #[serde(default, rename = "pathParameters")]
    pub path_parameters: HashMap<String, String>,
}

/// A simple response: allowed or not, and what the merchant's backend receives.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct AuthorizerAnswer {
    #[serde(rename = "isAuthorized")]
    pub is_authorized: bool,
    pub context: HashMap<String, String>,
}

/// Verifies the platform mini program's bridge token and passes on the same person as the
/// merchant's mini program knows them; anything else is a denial.
pub async fn authorize(b: Arc<Bridge>, event: AuthorizerEvent) -> AuthorizerAnswer {
    match decide(&b, &event).await {
        Ok(context) => AuthorizerAnswer { is_authorized: true, context },
        Err(e) => {
            tracing::info!(code = e.code(), "authorizer denied");
            AuthorizerAnswer { is_authorized: false, context: HashMap::new() }
        }
    }
}

async fn decide(b: &Bridge, event: &AuthorizerEvent) -> Result<HashMap<String, String>, Error> {
    let header = event
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str())
        .ok_or(Error::InvalidToken)?;
    let token = header.strip_prefix("Bearer ").ok_or(Error::InvalidToken)?.trim();
    let who = b.tokens().verify(token, b.clock().now_secs())?;
    let merchant = event.path_parameters.get("merchant").ok_or(Error::RouteNotFound)?;
    let (t, appid) = b.translator().for_merchant(&who, merchant).await?;
    Ok(HashMap::from([
        ("person_id".to_owned(), t.person_id),
        ("openid".to_owned(), t.openid),
        ("appid".to_owned(), appid.to_string()),
    ]))
}
