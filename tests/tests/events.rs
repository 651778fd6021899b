//! Every sample event under events/ is what API Gateway sends: it parses as lambda_http
//! parses it in Lambda, reaches its function's routes, and gets a contract answer (never a
//! 5xx, never a route miss). The authorizer event parses as the authorizer reads it.

use std::path::PathBuf;
use wxbridge_e2e::*;

fn events() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"));
    let mut out = Vec::new();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        for e in std::fs::read_dir(&f).unwrap() {
            out.push(e.unwrap().path());
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_events_reach_their_functions() {
    let e = env(StoreKind::Memory).await;
    let all = events();
    assert!(all.len() >= 15, "{all:?}");
    for path in all {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display().to_string();
        if name.ends_with("authorizer.json") {
            let ev: translate::AuthorizerEvent = serde_json::from_str(&text).unwrap();
            assert_eq!(ev.path_parameters["merchant"], "m1");
            let answer = translate::authorize(e.stack.bridge.clone(), ev).await;
            assert!(!answer.is_authorized, "a placeholder token is denied");
            continue;
        }
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
        let function = path.parent().unwrap().file_name().unwrap().to_str().unwrap().to_owned();
        // The function's own router, as shared::lambda serves it in Lambda.
        let routes = devstack::functions()
            .into_iter()
            .find(|r| r.function() == function)
            .unwrap_or_else(|| panic!("{name}: no function {function}"));
        let app = shared::lambda::app(routes, e.stack.bridge.clone());
        let resp = tower::ServiceExt::oneshot(app, req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let resp = http::Response::from_parts(parts, body);
        let status = resp.status().as_u16();
        assert!(status < 500, "{name} ({function}): {status} {:?}", resp.body());
        let body = String::from_utf8_lossy(resp.body()).to_string();
        assert!(
            !body.contains("\"code\":\"not_found\"") || function == "identity-api" || function == "qr-scene",
            "{name}: {body}"
        );
    }
}

/// In AWS the operators' routes are IAM-authorized by API Gateway: the function accepts only
/// requests whose context names an IAM caller, and no bearer key at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_routes_in_aws_take_iam_callers_only() {
    let bridge = std::sync::Arc::new(
        shared::Bridge::builder()
            .registry(shared::registry::Registry::from_json(&test_registry()).unwrap())
            .admin_auth(shared::bridge::AdminAuth::Iam)
            .build()
            .unwrap(),
    );
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/identity-api/person.json")).unwrap();
    let mut ev: serde_json::Value = serde_json::from_str(&text).unwrap();
    let admin = serde_json::from_str::<serde_json::Value>(&test_registry()).unwrap()["credentials"]["admin"].clone();
    ev["headers"]["authorization"] = serde_json::json!(format!("Bearer {}", admin.as_str().unwrap()));
    let status = |ev: &serde_json::Value| {
        let req = lambda_http::request::from_str(&ev.to_string()).unwrap();
        let app = shared::lambda::app(identity_api::routes(), bridge.clone());
        async move { tower::ServiceExt::oneshot(app, req).await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&ev).await, 403, "the admin key is no credential in AWS");
    ev["requestContext"]["authorizer"] =
        serde_json::json!({"iam": {"userArn": "arn:aws:iam::123456789012:user/ops", "accountId": "123456789012"}});
    assert_eq!(status(&ev).await, 404, "an IAM caller reaches the route (the person does not exist)");
}
