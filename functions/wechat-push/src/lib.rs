//! `GET,POST /v1/wechat/push/{appid}`: what WeChat's servers send to an official account's URL.

use std::sync::Arc;

use shared::domain::push::{PushAnswer, PushQuery};
use shared::http::{query, text, Request, Response};
use shared::ids::AppId;
use shared::routes::{path_param, Routes};
use shared::{Bridge, Error};

pub fn routes() -> Routes {
    Routes::new("wechat-push").get("/v1/wechat/push/{appid}", verify).post("/v1/wechat/push/{appid}", push)
}

fn parts(req: &Request) -> Result<(AppId, PushQuery), Error> {
    let appid = AppId::parse(path_param(req, "appid")?).map_err(|_| Error::UnknownApp)?;
    let mut q = query(req);
    Ok((
        appid,
        PushQuery {
            signature: q.remove("signature"),
            timestamp: q.remove("timestamp"),
            nonce: q.remove("nonce"),
            echostr: q.remove("echostr"),
            encrypt_type: q.remove("encrypt_type"),
            msg_signature: q.remove("msg_signature"),
        },
    ))
}

async fn verify(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let (appid, q) = parts(&req)?;
    Ok(text(200, "text/plain; charset=utf-8", b.pushes().verify_url(&appid, &q).await?))
}

async fn push(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let (appid, q) = parts(&req)?;
    Ok(match b.pushes().handle(&appid, &q, req.body()).await? {
        PushAnswer::Success => text(200, "text/plain; charset=utf-8", "success".into()),
        PushAnswer::Xml(x) => text(200, "application/xml; charset=utf-8", x),
    })
}
