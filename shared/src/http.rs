//! HTTP at the edge: body limits, JSON in and out, bearer credentials, and the one place
//! where an [`Error`] becomes an RFC 9457 problem+json response. Routing is in `routes`.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::directory::DirectoryExt;
use crate::error::Error;

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

/// Request bodies over this are refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, Error> {
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if req.body().len() > MAX_BODY || declared.is_some_and(|n| n > MAX_BODY) {
        return Err(Error::PayloadTooLarge(MAX_BODY));
    }
    // Only an object: serde would otherwise fill a struct from an array, by position.
    if req.body().iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::InvalidRequest("the body must be a JSON object".into()));
    }
    serde_json::from_slice(req.body()).map_err(|e| {
        // serde's message names the field and position, never the value.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or("malformed JSON");
        Error::InvalidRequest(format!("invalid JSON body: {msg}"))
    })
}

/// `Authorization: Bearer <token>`.
pub fn bearer(req: &Request) -> Result<&str, Error> {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Error::InvalidToken)
}

pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(v) => http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CACHE_CONTROL, "no-store")
            .body(Bytes::from(v))
            .unwrap_or_else(|_| fallback()),
        Err(e) => problem(&Error::Internal(format!("serialize: {e}"))),
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
}

fn title(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error")
}

pub fn problem(err: &Error) -> Response {
    let status = err.status();
    let body = Problem {
        kind: format!("urn:wxbridge:problem:{}", err.code()),
        title: title(status),
        status,
        detail: err.detail(),
        code: err.code(),
    };
    let mut b = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/problem+json")
        .header(http::header::CACHE_CONTROL, "no-store");
    if status == 401 {
        b = b.header(http::header::WWW_AUTHENTICATE, "Bearer");
    }
    if let Some(secs) = err.retry_after() {
        b = b.header(http::header::RETRY_AFTER, secs.to_string());
    }
    if let Error::MethodNotAllowed(allow) = err {
        b = b.header(http::header::ALLOW, allow.as_str());
    }
    b.body(Bytes::from(serde_json::to_vec(&body).unwrap_or_default())).unwrap_or_else(|_| fallback())
}

fn fallback() -> Response {
    let mut r = http::Response::new(Bytes::from_static(b"internal error"));
    *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    r
}

/// The end of every handler: logs the outcome once (status and code, never bodies) and
/// renders errors.
pub fn finish(result: Result<Response, Error>) -> Response {
    match result {
        Ok(r) => {
            tracing::info!(status = r.status().as_u16(), "request done");
            r
        }
        Err(e) => {
            if let Error::Internal(why) = &e {
                tracing::error!(status = e.status(), code = e.code(), why = why.as_str(), "request failed");
            } else {
                tracing::info!(status = e.status(), code = e.code(), "request refused");
            }
            problem(&e)
        }
    }
}

/// The request id API Gateway gave (or one made up), for the log span.
pub fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(64).collect())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// A caller API Gateway authenticated with IAM (SigV4): its ARN, as the Lambda adapter found it
/// in the request context.
#[derive(Clone, Debug)]
pub struct IamCaller(pub String);

/// The values of the cookies whose names start with `prefix` (`Cookie: a=1; b=2`).
pub fn cookies<'a>(req: &'a Request, prefix: &str) -> Vec<&'a str> {
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .collect()
}

/// The query string's parameters (the first of repeated names wins).
pub fn query(req: &Request) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// A required query parameter.
pub fn param<'a>(q: &'a std::collections::HashMap<String, String>, name: &str) -> Result<&'a str, Error> {
    q.get(name)
        .map(String::as_str)
        .ok_or_else(|| Error::InvalidRequest(format!("the query parameter {name} is required")))
}

/// The bearer credential must be this key (a site, service or admin key).
/// Who holds the bearer key: a service, admin, site or merchant credential from the registry.
pub async fn credential(b: &crate::Bridge, req: &Request) -> Result<crate::registry::Holder, Error> {
    b.directory().holder(bearer(req)?).await?.ok_or(Error::InvalidToken)
}

/// Operators only: in AWS, a caller API Gateway authorized with IAM (no bearer key on the
/// public domain); locally, the admin key.
pub async fn operator(b: &crate::Bridge, req: &Request) -> Result<(), Error> {
    match b.admin_auth() {
        crate::bridge::AdminAuth::Iam => match req.extensions().get::<IamCaller>() {
            Some(c) => {
                tracing::info!(caller = c.0.as_str(), "operator request");
                Ok(())
            }
            None => Err(Error::Forbidden),
        },
        crate::bridge::AdminAuth::Key => match credential(b, req).await? {
            crate::registry::Holder::Admin => Ok(()),
            _ => Err(Error::Forbidden),
        },
    }
}

/// The site whose key the request carries; any other credential is not a site's.
pub async fn site_credential(b: &crate::Bridge, req: &Request) -> Result<crate::registry::Site, Error> {
    match credential(b, req).await? {
        crate::registry::Holder::Site(id) => b.directory().site(&id).await?.ok_or(Error::InvalidToken),
        _ => Err(Error::InvalidToken),
    }
}

/// Authorization URLs carry codes, states and confirm codes: a page or redirect of the bridge
/// never hands them on in a `Referer`.
const NO_REFERRER: &str = "no-referrer";

pub fn redirect(location: &str) -> Response {
    http::Response::builder()
        .status(302)
        .header(http::header::LOCATION, location)
        .header(http::header::CACHE_CONTROL, "no-store")
        .header(http::header::REFERRER_POLICY, NO_REFERRER)
        .body(Bytes::new())
        .unwrap_or_else(|_| problem(&Error::Internal("bad redirect location".into())))
}

pub fn html(status: u16, body: String) -> Response {
    let mut r = text(status, "text/html; charset=utf-8", body);
    r.headers_mut().insert(http::header::REFERRER_POLICY, http::HeaderValue::from_static(NO_REFERRER));
    r
}

/// A body of another type than JSON (an HTML page, WeChat's plain `success`, reply XML).
pub fn text(status: u16, content_type: &'static str, body: String) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Bytes::from(body))
        .unwrap_or_else(|_| fallback())
}

pub fn no_content() -> Response {
    http::Response::builder().status(204).body(Bytes::new()).unwrap_or_else(|_| fallback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct B {
        code: String,
    }

    fn req(body: &[u8]) -> Request {
        http::Request::builder().body(Bytes::copy_from_slice(body)).unwrap()
    }

    #[test]
    fn bodies_are_checked() {
        assert!(matches!(json_body::<B>(&req(b"{")), Err(Error::InvalidRequest(_))));
        assert!(matches!(json_body::<B>(&req(b"{}")), Err(Error::InvalidRequest(m)) if m.contains("code")));
        assert!(matches!(json_body::<B>(&req(&vec![b' '; MAX_BODY + 1])), Err(Error::PayloadTooLarge(_))));
        assert!(json_body::<B>(&req(br#"{"code":"x"}"#)).is_ok());
    }

    #[test]
    fn problems_are_rfc9457() {
        let r = problem(&Error::WeChatCodeUsed);
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()[http::header::CONTENT_TYPE], "application/problem+json");
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["code"], "wechat_code_used");
        assert_eq!(v["status"], 400);
        let r = problem(&Error::Internal("db password is hunter2".into()));
        assert!(!String::from_utf8_lossy(r.body()).contains("hunter2"));
    }
}
