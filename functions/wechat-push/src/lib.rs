//! `GET,POST /v1/wechat/push/{appid}`: what WeChat's servers send to an official account's URL.

use bytes::Bytes;
use std::sync::Arc;

use shared::domain::push::{self, PushAnswer, PushQuery};
use shared::http::{query, segments, serve, Request, Response};
use shared::ids::AppId;
use shared::{Bridge, Error};

pub async fn handle(b: Arc<Bridge>, req: Request) -> Response {
    serve("wechat-push", req, |req| route(b, req)).await
}

fn text(body: String, content_type: &'static str) -> Response {
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Bytes::from(body))
        .unwrap_or_default()
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
        "GET" => Ok(text(push::verify_url(&b, &appid, &pq)?, "text/plain; charset=utf-8")),
        "POST" => Ok(match push::handle(&b, &appid, &pq, req.body()).await? {
            PushAnswer::Success => text("success".into(), "text/plain; charset=utf-8"),
            PushAnswer::Xml(x) => text(x, "application/xml; charset=utf-8"),
        }),
        _ => Err(Error::MethodNotAllowed("GET, POST")),
    }
}
