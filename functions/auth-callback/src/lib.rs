//! `GET /v1/auth/callback?code&state`: WeChat's redirect after an official account's web
//! authorization, in the browser that started it; sends it on to the next account, to the
//! return URL or the site, or shows how it went.

use std::sync::Arc;

use shared::domain::webauth::{cookie_prefix, Finish};
use shared::http::{cookies, html, param, query, redirect, Request, Response};
use shared::items::state::Page;
use shared::routes::Routes;
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("auth-callback").get("/v1/auth/callback", callback)
}

async fn callback(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let q = query(&req);
    let state = param(&q, "state")?;
    let pass = cookies(&req, cookie_prefix(b.urls()));
    Ok(match b.webauth().callback(q.get("code").map(String::as_str), state, &pass).await? {
        Finish::Redirect(to) => redirect(&to),
        Finish::Page(p) => html(200, page(&p)),
    })
}

/// Shown in the browser when there is nowhere else to go. The end of a web-view pass hands
/// its confirm code to the mini program (the kit's confirm page), never shows it.
fn page(p: &Page) -> String {
    let (result, title, text) = match p {
        Page::Pending { .. } => ("pending", "Almost linked", "Go back to the mini program to finish linking."),
        Page::Denied => ("denied", "Not linked", "Nothing was linked. You can go back to the mini program."),
        Page::SceneBound => ("bound", "Bound", "Your WeChat is now linked to your website account."),
        Page::SceneRefused => (
            "refused",
            "Not bound",
            "Nothing was bound: the WeChat or the website account is bound to another already.",
        ),
        Page::NotYours => ("not_yours", "Not bound", "Nothing was bound: this link was sent to another WeChat user."),
        Page::Used => ("used", "Already used", "This link was used already; nothing changed."),
    };
    let handoff = match p {
        Page::Pending { confirm } => format!(
            "<meta name=\"wxbridge-confirm\" content=\"{confirm}\">\
             <script>(function(){{if(!/MicroMessenger/i.test(navigator.userAgent))return;\
             var c=document.querySelector('meta[name=\"wxbridge-confirm\"]').content,s=document.createElement('script');\
             s.src='https://res.wx.qq.com/open/js/jweixin-1.6.0.js';\
             s.onload=function(){{if(window.wx&&wx.miniProgram){{wx.miniProgram.redirectTo({{url:'/pages/wxbridge/confirm?confirm='+c}});}}}};\
             document.head.appendChild(s);}})();</script>"
        ),
        _ => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title>{handoff}</head><body><main><h1 data-result=\"{result}\">{title}</h1><p>{text}</p></main></body></html>"
    )
}
