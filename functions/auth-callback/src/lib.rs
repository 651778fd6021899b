//! `GET /v1/auth/callback?code&state`: WeChat's redirect after an official account's web
//! authorization; links, then sends the web-view on to the next account or back.

use std::sync::Arc;

use shared::domain::webauth::{self, Finish};
use shared::http::{html, param, query, redirect, serve, Request, Response};
use shared::{Bridge, Error};

pub async fn handle(b: Arc<Bridge>, req: Request) -> Response {
    serve("auth-callback", req, |req| route(b, req)).await
}

async fn route(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/v1/auth/callback") => {
            let q = query(&req);
            let state = param(&q, "state")?;
            Ok(match webauth::callback(&b, q.get("code").map(String::as_str), state).await? {
                Finish::Redirect(to) => redirect(&to),
                Finish::Page { linked } => html(200, page(linked)),
            })
        }
        (_, "/v1/auth/callback") => Err(Error::MethodNotAllowed("GET")),
        _ => Err(Error::RouteNotFound),
    }
}

/// Shown in the web-view when the mini program gave no return URL.
fn page(linked: bool) -> String {
    let (title, text) = if linked {
        ("Linked", "Your accounts are linked. You can go back to the mini program.")
    } else {
        ("Not linked", "Nothing was linked. You can go back to the mini program.")
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title></head><body><main><h1 data-result=\"{}\">{title}</h1><p>{text}</p></main></body></html>",
        if linked { "linked" } else { "denied" }
    )
}
