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
        let app = shared::routes::service([routes.into_router()], e.stack.bridge.clone());
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
