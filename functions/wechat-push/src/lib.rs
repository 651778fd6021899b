//! `GET,POST /v1/wechat/push/{appid}`: what WeChat's servers send to an official account's URL.

use std::sync::Arc;

use shared::domain::push::{self, PushAnswer, PushQuery};
use shared::http::{query, segments, serve, text, Request, Response};
use shared::ids::AppId;
use shared::{Bridge, Error};

pub async fn handle(b: Arc<Bridge>, req: Request) -> Response {
    serve("wechat-push", req, |req| route(b, req)).await
}

async fn route(b: Arc<Bridge>, req: Request) -> Result<Response, Error> {
    let [appid] = segments(req.uri().path(), "/v1/wechat/push/").ok_or(Error::RouteNotFound)?[..] else {
        return Err(Error::RouteNotFound);
    };
    let appid = AppId::parse(appid).map_err(|_| Error::UnknownApp)?;
    let mut q = query(&req);
    let pq = PushQuery {
        signature: q.remove("signature"),
        timestamp: q.remove("timestamp"),
        nonce: q.remove("nonce"),
        echostr: q.remove("echostr"),
        encrypt_type: q.remove("encrypt_type"),
        msg_signature: q.remove("msg_signature"),
    };
    match req.method().as_str() {
        "GET" => Ok(text(200, "text/plain; charset=utf-8", push::verify_url(&b, &appid, &pq)?)),
        "POST" => Ok(match push::handle(&b, &appid, &pq, req.body()).await? {
            PushAnswer::Success => text(200, "text/plain; charset=utf-8", "success".into()),
            PushAnswer::Xml(x) => text(200, "application/xml; charset=utf-8", x),
        }),
        _ => Err(Error::MethodNotAllowed("GET, POST")),
    }
}
