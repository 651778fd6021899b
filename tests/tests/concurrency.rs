//! Concurrent and retried requests never create two persons or lose a link.

use serde_json::json;
use wxbridge_e2e::*;

async fn simultaneous_first_logins(kind: StoreKind, mode: UnionIdMode, n: usize) {
    let e = env_with(kind, mode).await;
    let mut codes = Vec::new();
    for _ in 0..n {
        codes.push(e.wx_login("crowd", PLATFORM_MP).await);
    }
    let e = std::sync::Arc::new(e);
    let tasks: Vec<_> = codes
        .into_iter()
        .map(|code| {
            let e = e.clone();
            tokio::spawn(
                async move { e.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": code}), None).await },
            )
        })
        .collect();
    let mut persons = std::collections::BTreeSet::new();
    let mut new = 0;
    for t in tasks {
        let a = t.await.unwrap();
        let body = a.expect_ok();
        persons.insert(body["person_id"].as_str().unwrap().to_owned());
        if body["new_person"] == true {
            new += 1;
        }
    }
    assert_eq!(persons.len(), 1, "one person, whatever the interleaving: {persons:?}");
    assert_eq!(new, 1, "exactly one login created it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn dynamodb_24_first_logins_make_one_person() {
    simultaneous_first_logins(StoreKind::Dynamo, UnionIdMode::Conditional, 24).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn dynamodb_24_first_logins_with_unionid_make_one_person() {
    simultaneous_first_logins(StoreKind::Dynamo, UnionIdMode::Always, 24).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn memory_24_first_logins_make_one_person() {
    simultaneous_first_logins(StoreKind::Memory, UnionIdMode::Always, 24).await;
}

/// Two apps of one person logging in at once, each learning the shared unionid: one person
/// with both identities, on every interleaving.
async fn racing_apps_meet_at_the_unionid(kind: StoreKind) {
    let e = std::sync::Arc::new(env_with(kind, UnionIdMode::Always).await);
    for round in 0..6 {
        let user = format!("racer{round}");
        let c1 = e.wx_login(&user, PLATFORM_MP).await;
        let c2 = e.wx_login(&user, PLATFORM_MP2).await;
        let (e1, e2) = (e.clone(), e.clone());
        let t1 =
            tokio::spawn(
                async move { e1.post("/v1/mp/login", &json!({"appid": PLATFORM_MP, "code": c1}), None).await },
            );
        let t2 =
            tokio::spawn(
                async move { e2.post("/v1/mp/login", &json!({"appid": PLATFORM_MP2, "code": c2}), None).await },
            );
        let (a, b) = (t1.await.unwrap(), t2.await.unwrap());
        assert_eq!(a.expect_ok()["person_id"], b.expect_ok()["person_id"]);
        let me = e.get("/v1/me", a.body["token"].as_str()).await;
        assert_eq!(me.expect_ok()["linked"].as_array().unwrap().len(), 2, "{}", me.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn dynamodb_racing_apps_meet_at_the_unionid() {
    racing_apps_meet_at_the_unionid(StoreKind::Dynamo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn memory_racing_apps_meet_at_the_unionid() {
    racing_apps_meet_at_the_unionid(StoreKind::Memory).await;
}
