//! The third-party platform (API.md v1.2): `POST /v1/component/events` (WeChat's
//! authorization-event URL), `GET /v1/component/onboard?merchant=` (to WeChat's authorization
//! page) and `GET /v1/component/authorized` (back from it: what was registered); for
//! operators, `POST /v1/admin/merchants/{merchant}/onboarding` (a one-time onboarding link).

use std::sync::Arc;

use shared::domain::push::PushQuery;
use shared::domain::webauth::{cookie_prefix, set_cookie, Started};
use shared::http::{cookies, html, json, operator, param, query, redirect, text, Request, Response};
use shared::ids::{MerchantId, Secret};
use shared::registry::AppInfo;
use shared::routes::{path_param, Routes};
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("component")
        .post("/v1/component/events", events)
        .get("/v1/component/onboard", onboard)
        .post("/v1/component/onboard", onboard_by_link)
        .get("/v1/component/authorized", authorized)
        .post("/v1/admin/merchants/{merchant}/onboarding", onboarding_link)
}

/// How long an onboarding link an operator hands a merchant stays good (one use).
const LINK_LIFE_SECS: i64 = 7 * 24 * 3600;

async fn onboarding_link(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    operator(&b, &req).await?;
    let merchant = MerchantId::parse(path_param(&req, "merchant")?)?;
    let link = b.components()?.issue_link(&merchant, LINK_LIFE_SECS).await?;
    Ok(json(201, &serde_json::json!({"link": link, "expires_in": LINK_LIFE_SECS})))
}

async fn events(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let mut q = query(&req);
    let q = PushQuery {
        signature: q.remove("signature"),
        timestamp: q.remove("timestamp"),
        nonce: q.remove("nonce"),
        echostr: None,
        encrypt_type: q.remove("encrypt_type"),
        msg_signature: q.remove("msg_signature"),
    };
    b.components()?.event(&q, req.body()).await?;
    Ok(text(200, "text/plain; charset=utf-8", "success".into()))
}

/// An operator (admin credential) goes straight to WeChat's page. A merchant's one-time link
/// shows a page whose button spends it (`POST`), so a link preview opening the URL spends
/// nothing.
async fn onboard(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let q = query(&req);
    let merchant = MerchantId::parse(param(&q, "merchant")?)?;
    let c = b.components()?;
    if let Some(link) = q.get("link") {
        c.check_link(&merchant, link).await?;
        return Ok(html(200, link_page(&merchant, link)));
    }
    operator(&b, &req).await?;
    Ok(started(&b, c.onboard(&merchant).await?))
}

async fn onboard_by_link(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let q = query(&req);
    let merchant = MerchantId::parse(param(&q, "merchant")?)?;
    let link = param(&q, "link")?;
    let c = b.components()?;
    c.check_link(&merchant, link).await?;
    // The link is spent only once WeChat's page is ready, so a WeChat failure leaves it good.
    let s = c.onboard(&merchant).await?;
    c.redeem_link(&merchant, link).await?;
    Ok(started(&b, s))
}

/// To WeChat's page, with the cookie the way back must come with.
fn started(b: &Bridge, s: Started) -> Response {
    let mut r = redirect(&s.location);
    if let Ok(v) = http::HeaderValue::from_str(&set_cookie(b.urls(), &s.cookie)) {
        r.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    r
}

async fn authorized(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let q = query(&req);
    let merchant = MerchantId::parse(param(&q, "merchant")?)?;
    let onboarding = param(&q, "onboarding")?;
    let code = Secret::new(param(&q, "auth_code")?);
    let cookies = cookies(&req, cookie_prefix(b.urls()));
    let apps = b.components()?.authorized(&merchant, onboarding, &code, &cookies).await?;
    Ok(html(200, page(&merchant, &apps)))
}

fn link_page(merchant: &MerchantId, link: &str) -> String {
    let action = format!("/v1/component/onboard?merchant={}&link={}", escape(merchant.as_str()), escape(link));
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorize the platform</title></head><body><main>\
         <h1 data-result=\"onboarding\">授权平台 · Authorize the platform</h1><p>Merchant <code>{}</code>: WeChat's page \
         asks which of your mini programs and official accounts the platform may act for. No secret is asked.</p>\
         <form method=\"post\" action=\"{action}\" data-onboard><button type=\"submit\">Continue to WeChat</button></form>\
         </main></body></html>",
        escape(merchant.as_str())
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(merchant: &MerchantId, apps: &[AppInfo]) -> String {
    let rows: String = apps
        .iter()
        .map(|a| {
            format!(
                "<li data-app=\"{}\"><code>{}</code> {} ({})</li>",
                escape(a.appid.as_str()),
                escape(a.appid.as_str()),
                escape(&a.name),
                a.kind
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorized</title></head><body><main>\
         <h1 data-result=\"authorized\">授权成功 · Authorized</h1><p>Merchant <code>{}</code>: the platform now acts for \
         these apps. No secret of them is held.</p><ul>{rows}</ul></main></body></html>",
        escape(merchant.as_str())
    )
}
