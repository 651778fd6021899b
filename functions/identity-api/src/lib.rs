//! Operators (admin credential): `GET /v1/persons/{id}`, `GET /v1/identities/{appid}/{openid}`,
//! `DELETE /v1/persons/{id}/identities/{appid}/{openid}` (unlink), `DELETE /v1/persons/{id}` (erase);
//! and the registry while the bridge runs: `PUT/GET/DELETE /v1/admin/apps/{appid}`,
//! `GET /v1/admin/apps`, `PUT /v1/admin/sites/{site}`, `POST /v1/admin/merchants/{m}/keys`,
//! `GET /v1/admin/merchants/{m}/keys`, `DELETE /v1/admin/merchants/{m}/keys/{key_id}`,
//! `POST /v1/admin/sites/{site}/keys`.

use std::sync::Arc;

use shared::domain::registrar::Put;
use shared::http::{json, json_body, no_content, Request, Response};
use shared::ids::{AppId, MerchantId, OpenId, PersonId, SiteId};
use shared::registry::{App, Holder, Site};
use shared::routes::{path_param, Routes};
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("identity-api")
        .get("/v1/persons/{person_id}", person)
        .delete("/v1/persons/{person_id}", erase)
        .get("/v1/identities/{appid}/{openid}", identity)
        .delete("/v1/persons/{person_id}/identities/{appid}/{openid}", unlink)
        .get("/v1/admin/apps", list_apps)
        .put("/v1/admin/apps/{appid}", put_app)
        .get("/v1/admin/apps/{appid}", get_app)
        .delete("/v1/admin/apps/{appid}", delete_app)
        .put("/v1/admin/sites/{site_id}", put_site)
        .post("/v1/admin/sites/{site_id}/keys", issue_key)
        .post("/v1/admin/merchants/{merchant}/keys", issue_key)
        .get("/v1/admin/merchants/{merchant}/keys", list_keys)
        .delete("/v1/admin/merchants/{merchant}/keys/{key_id}", revoke_key)
        .get("/v1/admin/sites/{site_id}/keys", list_keys)
        .delete("/v1/admin/sites/{site_id}/keys/{key_id}", revoke_key)
}

use shared::http::operator as admin;

async fn person(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let person = PersonId::parse(path_param(&req, "person_id")?)?;
    Ok(json(200, &b.admin().person(&person).await?))
}

async fn erase(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    b.admin().erase(&PersonId::parse(path_param(&req, "person_id")?)?).await?;
    Ok(no_content())
}

async fn identity(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let appid = AppId::parse(path_param(&req, "appid")?)?;
    let openid = OpenId::parse(path_param(&req, "openid")?)?;
    Ok(json(200, &b.admin().identity(&appid, &openid).await?))
}

async fn unlink(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let person = PersonId::parse(path_param(&req, "person_id")?)?;
    let appid = AppId::parse(path_param(&req, "appid")?)?;
    let openid = OpenId::parse(path_param(&req, "openid")?)?;
    b.admin().unlink(&person, &appid, &openid).await?;
    Ok(no_content())
}

async fn list_apps(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let apps: Vec<_> = b
        .registrar()?
        .list()
        .await?
        .into_iter()
        .map(|(appid, owner, kind)| serde_json::json!({"appid": appid, "owner": owner, "kind": kind}))
        .collect();
    Ok(json(200, &serde_json::json!({ "apps": apps })))
}

/// A JSON object body whose `field` is the path's id, or absent (then set to it).
fn body_naming(req: &Request, field: &str, id: &str) -> Result<serde_json::Value, Error> {
    let mut doc: serde_json::Value = json_body(req)?;
    let obj = doc.as_object_mut().ok_or_else(|| Error::InvalidRequest("the body must be a JSON object".into()))?;
    match obj.get(field) {
        None => {
            obj.insert(field.into(), id.into());
        }
        Some(v) if v.as_str() == Some(id) => {}
        Some(_) => return Err(Error::InvalidRequest(format!("the body's {field} is not the one in the path"))),
    }
    Ok(doc)
}

async fn put_app(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let appid = AppId::parse(path_param(&req, "appid")?)?;
    let doc = body_naming(&req, "appid", appid.as_str())?;
    let app: App = serde_json::from_value(doc).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let r = b.registrar()?;
    let status = match r.put_app(&app).await? {
        Put::Created => 201,
        Put::Replaced => 200,
    };
    tracing::info!(appid = %app.appid, owner = %app.owner, status, "app registered");
    Ok(json(status, &r.app_info(&app.appid).await?))
}

async fn get_app(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let appid = AppId::parse(path_param(&req, "appid")?)?;
    Ok(json(200, &b.registrar()?.app_info(&appid).await?))
}

async fn delete_app(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let appid = AppId::parse(path_param(&req, "appid")?)?;
    b.registrar()?.delete_app(&appid).await?;
    tracing::info!(appid = %appid, "app removed");
    Ok(no_content())
}

async fn put_site(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let site_id = SiteId::parse(path_param(&req, "site_id")?)?;
    let doc = body_naming(&req, "site_id", site_id.as_str())?;
    let site: Site = serde_json::from_value(doc).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let status = match b.registrar()?.put_site(&site).await? {
        Put::Created => 201,
        Put::Replaced => 200,
    };
    Ok(json(status, &site))
}

/// The merchant or site a key route names.
fn key_holder(req: &Request) -> Result<Holder, Error> {
    match path_param(req, "merchant") {
        Ok(m) => Ok(Holder::Merchant(MerchantId::parse(m)?)),
        Err(_) => Ok(Holder::Site(SiteId::parse(path_param(req, "site_id")?)?)),
    }
}

async fn issue_key(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let issued = b.registrar()?.issue_key(key_holder(&req)?).await?;
    tracing::info!(key_id = issued.key_id.as_str(), holder = issued.holder.as_str(), "key issued");
    Ok(json(201, &issued))
}

async fn list_keys(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    Ok(json(200, &serde_json::json!({ "key_ids": b.registrar()?.keys_of(&key_holder(&req)?).await? })))
}

async fn revoke_key(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    admin(&b, &req).await?;
    let holder = key_holder(&req)?;
    let id = path_param(&req, "key_id")?;
    if id.len() != 12 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::NotFound);
    }
    b.registrar()?.revoke_key(&holder, id).await?;
    tracing::info!(key_id = id, holder = %holder, "key revoked");
    Ok(no_content())
}
