//! Where web authorization starts in the user's WeChat browser, each answering a 302 to an
//! official account's authorize page and a cookie that binds the authorization to this browser:
//! `GET /v1/auth/start?ticket=` (a mini program's web-view pass), `GET /v1/qr/confirm?scene&code`
//! (the scanner confirming a scene), `GET /v1/site/link?…` (a follower's login link).

use std::sync::Arc;

use shared::domain::sitelink::LinkParams;
use shared::domain::webauth::{set_cookie, Started};
use shared::http::{param, query, redirect, Request, Response};
use shared::ids::{AppId, OpenId, SiteId};
use shared::routes::Routes;
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("auth-start")
        .get("/v1/auth/start", start)
        .get("/v1/qr/confirm", scene_confirm)
        .get("/v1/site/link", site_link)
}

fn started(b: &Bridge, s: Started) -> Response {
    let mut r = redirect(&s.location);
    if let Ok(v) = http::HeaderValue::from_str(&set_cookie(b.urls(), &s.cookie)) {
        r.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    r
}

async fn start(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let q = query(&req);
    Ok(started(&b, b.webauth().start(param(&q, "ticket")?).await?))
}

async fn scene_confirm(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let q = query(&req);
    Ok(started(&b, b.scenes().open_confirm(param(&q, "scene")?, param(&q, "code")?).await?))
}

async fn site_link(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let q = query(&req);
    let p = LinkParams {
        site: SiteId::parse(param(&q, "site")?)?,
        appid: AppId::parse(param(&q, "appid")?)?,
        openid: OpenId::parse(param(&q, "openid")?)?,
        timestamp: param(&q, "timestamp")?.to_owned(),
        nonce: param(&q, "nonce")?.to_owned(),
        signature: param(&q, "signature")?.to_owned(),
    };
    Ok(started(&b, b.site_links().open(&p).await?))
}
