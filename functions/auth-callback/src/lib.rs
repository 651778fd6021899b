//! `GET /v1/auth/callback?code&state`: WeChat's redirect after an official account's web
//! authorization; links, then sends the web-view on to the next account or back.

use std::sync::Arc;

use shared::domain::webauth::Finish;
use shared::http::{html, param, query, redirect, Request, Response};
use shared::routes::Routes;
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("auth-callback").get("/v1/auth/callback", callback)
}

async fn callback(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let q = query(&req);
    let state = param(&q, "state")?;
    Ok(match b.webauth().callback(q.get("code").map(String::as_str), state).await? {
        Finish::Redirect(to) => redirect(&to),
        Finish::Page { linked } => html(200, page(linked)),
    })
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
