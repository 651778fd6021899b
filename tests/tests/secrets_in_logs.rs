//! At `RUST_LOG=trace`, every flow runs and no secret reaches a log line: not an app secret,
//! an OA token or key, a site, service or admin key, the link key, a session_key, an access
//! token, a bridge token, a confirm or site code, nor a private key — not from our code, nor
//! from lambda_runtime, the AWS SDK, hyper or reqwest (pinned at `info` whatever the level).

use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Mutex, Once};
use wxbridge_e2e::*;

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_at_trace() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(shared::telemetry::filter("trace"))
            .with_current_span(true)
            .with_writer(|| Capture)
            .init();
    });
}

fn registry_secrets(reg: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for app in reg["apps"].as_array().unwrap() {
        for k in ["secret", "token", "encoding_aes_key"] {
            out.extend(app[k].as_str().map(str::to_owned));
        }
    }
    for site in std::iter::once(&reg["site"]).chain(reg["sites"].as_array().unwrap()) {
        out.extend(site["api_key"].as_str().map(str::to_owned));
    }
    for k in ["service", "admin"] {
        out.extend(reg["credentials"][k].as_str().map(str::to_owned));
    }
    for key in reg["merchant_keys"].as_object().unwrap().values() {
        out.extend(key.as_str().map(str::to_owned));
    }
    out
}

/// The sealed session_key a bridge token carries (its `sk` claim), if any.
fn sealed_session(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).ok()?;
    serde_json::from_slice::<Value>(&claims).ok()?["sk"].as_str().map(str::to_owned)
}

async fn every_flow_at_trace(kind: StoreKind) {
    capture_at_trace();
    let e = env(kind).await;
    let reg = e.registry();
    let mut secrets = registry_secrets(&reg);
    secrets.push(LINK_KEY.to_owned());
    let user = format!("tracy-{kind:?}");

    // Mini-program login, the two-step unionid, a web-view pass and its confirm.
    let login = e.login(&user, PLATFORM_MP).await.expect_ok().clone();
    let token = login["token"].as_str().unwrap().to_owned();
    secrets.push(e.stack.sim.session_key(&user, PLATFORM_MP).expect("a session key"));
    secrets.push(sealed_session(&token).expect("the session_key rides sealed in the token"));
    let data = e.wx_userinfo(&user, PLATFORM_MP).await;
    let u = e
        .post("/v1/mp/userinfo", &json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}), Some(&token))
        .await;
    secrets.push(u.expect_ok()["token"].as_str().unwrap().to_owned());
    let walk = e.pass_via_webview(&user, &token, json!({"return_url": RETURN_URL})).await;
    let code = walk.confirm_code().unwrap();
    let c = e.post("/v1/auth/confirm", &json!({"code": code}), Some(&token)).await;
    secrets.extend([token.clone(), code, c.expect_ok()["token"].as_str().unwrap().to_owned()]);

    // A scene (the shared access token is fetched), its scan and confirmation.
    let sc = e.post("/v1/qr/scenes", &json!({"site_user_id": "tracy-site"}), Some(&e.site_key())).await;
    let (_, walk) = e.scan_and_confirm(&user, sc.body["ticket"].as_str().unwrap()).await;
    assert_eq!(walk.result().as_deref(), Some("bound"));
    let pivot = reg["apps"].as_array().unwrap().iter().find(|a| a["appid"] == PIVOT_OA).unwrap();
    let stable = e
        .post(
            "/cgi-bin/stable_token",
            &json!({"grant_type": "client_credential", "appid": PIVOT_OA, "secret": pivot["secret"], "force_refresh": false}),
            None,
        )
        .await;
    secrets.push(stable.body["access_token"].as_str().expect("the cached access token").to_owned());

    // A login link, checked in the follower's browser, redeemed by the site.
    let link = e.login_link(&user, PIVOT_OA).await;
    let (_, site_code) = e.open_login_link(&user, &link).await;
    let site_code = site_code.unwrap();
    e.post("/v1/site/bind", &json!({"code": site_code, "site_user_id": "tracy-site-2"}), Some(&e.site_key())).await;
    secrets.push(site_code);

    // Translation and an operator's look-up.
    let (openid, _) = e.truth(&user, PLATFORM_MP).await;
    e.get(
        &format!("/v1/translate?from_appid={PLATFORM_MP}&openid={openid}&to_appid={PIVOT_OA}"),
        Some(&e.service_key()),
    )
    .await
    .expect_ok();
    e.get(&format!("/v1/persons/{}", login["person_id"].as_str().unwrap()), Some(&e.admin_key())).await.expect_ok();
    // A merchant key issued by operators, and translation with merchant keys (refused too).
    let issued = e.post("/v1/admin/merchants/m1/keys", &json!({}), Some(&e.admin_key())).await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let new_key = issued.body["key"].as_str().expect("a merchant key").to_owned();
    for key in [new_key.clone(), e.merchant_key("m1")] {
        e.translate(&key, PLATFORM_MP, &openid, MERCHANT1_MP).await.expect_problem(404, "not_linked");
        e.translate(&key, PLATFORM_MP, &openid, PIVOT_OA).await.expect_problem(403, "forbidden");
    }
    secrets.push(new_key);

    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    assert!(logs.contains("request done"), "the flows were logged at all");
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(!logs.contains(s.as_str()), "a secret reached the logs: {}…", &s[..6]);
    }
    for pattern in ["PRIVATE KEY", "eyJhbGci", "session_key\":\"", "Authorization: Bearer", "authorization\":\"Bearer"]
    {
        assert!(!logs.contains(pattern), "{pattern} in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_every_flow_at_trace_logs_no_secret() {
    every_flow_at_trace(StoreKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_every_flow_at_trace_logs_no_secret() {
    every_flow_at_trace(StoreKind::Dynamo).await;
}
