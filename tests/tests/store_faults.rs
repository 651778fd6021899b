//! When DynamoDB cannot be reached, every answer is `503 store_unavailable` with
//! `Retry-After`, never a 500, nothing is half-written, and the same requests succeed once it
//! is back (DynamoDB Local behind a proxy that is cut and restored).

use serde_json::json;
use wxbridge_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_store_answers_503_and_writes_nothing() {
    let proxy = FaultProxy::start(&dynamodb_endpoint()).await;
    let e = env_through(&proxy).await;
    let first = e.login("fay", PLATFORM_MP).await.expect_ok().clone();
    let token = first["token"].as_str().unwrap().to_owned();
    let before = e.store().scan_all().await.unwrap();

    proxy.cut();
    // Connections open at the cut are dropped within the proxy's poll; a request already in
    // flight then is the ambiguous case (applied, answer lost), which a retry resolves.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let code = e.wx_login("fay", MERCHANT1_MP).await;
    let down = e.post("/v1/mp/login", &json!({"appid": MERCHANT1_MP, "code": code}), None).await;
    down.expect_problem(503, "store_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "{:?}", started.elapsed());
    for a in [
        e.get("/v1/me", Some(&token)).await,
        e.post("/v1/auth/tickets", &json!({}), Some(&token)).await,
        e.post("/v1/qr/scenes", &json!({"site_user_id": "fay-site"}), Some(&e.site_key())).await,
    ] {
        a.expect_problem(503, "store_unavailable");
    }
    let raw = e.http.get(e.url("/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(raw.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));

    proxy.restore();
    assert_eq!(e.store().scan_all().await.unwrap(), before, "nothing was written while the store was away");
    // The code was spent at WeChat (jscode2session answered): a new one logs in, as one person.
    let again = e.login("fay", MERCHANT1_MP).await.expect_ok().clone();
    assert_eq!(again["new_person"], true);
    assert_eq!(e.login("fay", MERCHANT1_MP).await.expect_ok()["person_id"], again["person_id"]);
    assert_eq!(e.get("/v1/me", Some(&token)).await.expect_ok()["person_id"], first["person_id"]);
}
