//! What each login costs in store requests (the DynamoDB bill and latency): asserted, so a
//! change that adds a round trip fails here.

use shared::store::counting::Counts;
use wxbridge_e2e::*;

async fn counts(kind: StoreKind) {
    let e = env_with(kind, UnionIdMode::Always).await;
    // A warm container: the registry entries these logins read are cached.
    e.login("warm", PLATFORM_MP).await.expect_ok();
    e.login("warm", PLATFORM_MP2).await.expect_ok();
    e.stack.store_counts.take();
    e.login("olga", PLATFORM_MP).await.expect_ok();
    let first = e.stack.store_counts.take();
    // Identity (read once: the login goes on from the fast path's read) and union looked up;
    // one transaction creates person, identity, membership, union.
    assert_eq!(first, Counts { gets: 2, queries: 0, writes: 0, transactions: 1 }, "first login");

    e.login("olga", PLATFORM_MP).await.expect_ok();
    let keeps = e.stack.store_counts.take();
    // The first returning login computes the login view once and keeps it on the identity.
    assert_eq!(keeps.transactions, 1, "{keeps:?}");

    e.login("olga", PLATFORM_MP).await.expect_ok();
    let returning = e.stack.store_counts.take();
    // One read: the identity, with its login view. Nothing written.
    assert_eq!(returning, Counts { gets: 1, queries: 0, writes: 0, transactions: 0 }, "returning login");

    e.login("olga", PLATFORM_MP2).await.expect_ok();
    let second_app = e.stack.store_counts.take();
    assert!(second_app.transactions >= 1, "second app, unionid first: {second_app:?}");
    e.login("olga", PLATFORM_MP).await.expect_ok();
    let after_change = e.stack.store_counts.take();
    assert!(after_change.queries >= 1, "the new platform app made the view stale: {after_change:?}");
    println!(
        "store requests: first login {first:?}; first returning {keeps:?}; returning login {returning:?}; \
         second app via unionid {second_app:?}; after it {after_change:?}"
    );
}

/// A person linked to 300 identities of 150 merchants logs in as cheaply as one with one, and
/// is answered as briefly.
async fn heavy_counts(kind: StoreKind) {
    use shared::ids::{AppId, OpenId};
    use shared::model::{AppKind, Owner, Via};
    let e = env_with(kind, UnionIdMode::Always).await;
    e.login("warm", PLATFORM_MP).await.expect_ok();
    let light = e.login("lena", PLATFORM_MP).await.expect_ok().clone();
    let heavy = e.login("hugo", PLATFORM_MP).await.expect_ok().clone();
    let (hugo_openid, _) = e.truth("hugo", PLATFORM_MP).await;
    let b = &e.stack.bridge;
    let (mp, hugo) = (AppId::parse(PLATFORM_MP).unwrap(), OpenId::parse(&hugo_openid).unwrap());
    let ident = b.assoc().identity(&mp, &hugo).await.unwrap();
    let person = ident.unwrap().person;
    for i in 0..300 {
        let owner = Owner::parse(&format!("hm{}", i / 2)).unwrap();
        let kind = if i % 2 == 0 { AppKind::MiniProgram } else { AppKind::OfficialAccount };
        let app = shared::testkit::app(&format!("wxheavy{i:05}"), kind, owner, None);
        let openid = OpenId::parse(&format!("oHeavy{i:05}")).unwrap();
        b.assoc().link(&app, &openid, None, &person, Via::WebAuth).await.unwrap();
    }
    assert_eq!(b.assoc().view(&person).await.unwrap().linked.len(), 301);
    let mut sizes = Vec::new();
    let mut costs = Vec::new();
    for user in ["lena", "hugo"] {
        e.login(user, PLATFORM_MP).await.expect_ok();
        e.stack.store_counts.take();
        let a = e.login(user, PLATFORM_MP).await;
        costs.push(e.stack.store_counts.take());
        sizes.push(a.text.len());
    }
    println!(
        "returning login: light {:?} {} bytes; heavy (301 identities) {:?} {} bytes",
        costs[0], sizes[0], costs[1], sizes[1]
    );
    assert_eq!(costs[0], Counts { gets: 1, queries: 0, writes: 0, transactions: 0 });
    assert_eq!(costs[1], costs[0], "a heavy person costs what a light one does");
    assert!(sizes[1].abs_diff(sizes[0]) < 64, "and is answered as briefly: {sizes:?}");
    let _ = (light, heavy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_heavy_person_login_costs_what_a_light_one_does() {
    heavy_counts(StoreKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_heavy_person_login_costs_what_a_light_one_does() {
    heavy_counts(StoreKind::Dynamo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_login_request_counts() {
    counts(StoreKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_login_request_counts() {
    counts(StoreKind::Dynamo).await;
}

/// The web-view pass, its confirmation and translation, step by step.
async fn pivot_counts(kind: StoreKind) {
    let e = env(kind).await;
    // The first user warms the container's registry cache; the second is counted.
    for user in ["warm", "pia"] {
        pivot_pass(&e, user, user == "pia").await;
    }
}

async fn pivot_pass(e: &Env, user: &str, check: bool) {
    let m = e.login(user, MERCHANT1_MP).await.expect_ok().clone();
    let c = &e.stack.store_counts;
    c.take();
    let t = e.post("/v1/auth/tickets", &serde_json::json!({}), m["token"].as_str()).await;
    assert_eq!(t.status, 201);
    let ticket = c.take();
    let (_, authorize, _) = e.browse(user, t.body["url"].as_str().unwrap()).await;
    let start = c.take();
    let (_, callback, _) = e.browse(user, authorize.unwrap().split('#').next().unwrap()).await;
    let (status, _, page) = e.browse(user, &callback.unwrap()).await;
    assert_eq!(status, 200);
    let cb = c.take();
    let code = Walk { hops: vec![], last: page, left_to: None, confirmed: None }.confirm_code().unwrap();
    e.post("/v1/auth/confirm", &serde_json::json!({"code": code}), m["token"].as_str()).await.expect_ok();
    let confirm = c.take();
    let (openid, _) = e.truth(user, MERCHANT1_MP).await;
    let path = format!("/v1/translate?from_appid={MERCHANT1_MP}&openid={openid}&to_appid={PIVOT_OA}");
    e.get(&path, Some(&e.service_key())).await.expect_ok();
    let cold = c.take();
    e.get(&path, Some(&e.service_key())).await.expect_ok();
    let warm = c.take();
    if !check {
        return;
    }
    println!(
        "store requests: ticket {ticket:?}; start {start:?}; callback {cb:?}; confirm {confirm:?}; translate cold {cold:?}; warm {warm:?}"
    );
    // Ticket: the caller's identity and person, then the ticket and its ref on the person.
    assert_eq!(ticket, Counts { gets: 1, queries: 1, writes: 0, transactions: 1 });
    // Start: read and start the ticket, issue the state.
    assert_eq!(start, Counts { gets: 1, queries: 0, writes: 2, transactions: 0 });
    // Callback: read and claim the state, read the ticket, record what it saw (with a ref on
    // the identity it saw), the confirm code and the outcome. Nothing is linked yet.
    assert_eq!(cb, Counts { gets: 2, queries: 0, writes: 3, transactions: 1 });
    // Confirm: code, ticket, spend; the owner; the person settled, the OA identity and its
    // unionid; one transaction links; the ticket and its refs go.
    assert!(confirm.transactions == 1 && confirm.writes == 4, "{confirm:?}");
    assert_eq!(cold, Counts { gets: 2, queries: 0, writes: 0, transactions: 0 });
    assert_eq!(warm, Counts { gets: 1, queries: 0, writes: 0, transactions: 0 }, "warm translation is one read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_pivot_request_counts() {
    pivot_counts(StoreKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_pivot_request_counts() {
    pivot_counts(StoreKind::Dynamo).await;
}

/// A scene QR code, the scan, and the scanner's confirmation (safe mode, a new follower).
async fn scene_counts(kind: StoreKind) {
    let e = env(kind).await;
    let key = e.site_key();
    let c = &e.stack.store_counts;
    // The first QR code fetches the access token; count the second, with the token cached.
    e.post("/v1/qr/scenes", &serde_json::json!({"site_user_id": "warm"}), Some(&key)).await;
    c.take();
    let sc = e.post("/v1/qr/scenes", &serde_json::json!({"site_user_id": "zoe-site"}), Some(&key)).await;
    assert_eq!(sc.status, 201, "{}", sc.text);
    let create = c.take();
    let r = e.scan("zoe", sc.body["ticket"].as_str().unwrap()).await;
    let link = link_in(r["reply"].as_str().unwrap()).unwrap();
    let scan = c.take();
    let walk = e.webview("zoe", &link).await;
    assert_eq!(walk.result().as_deref(), Some("bound"));
    let confirm = c.take();
    e.get(&format!("/v1/qr/scenes/{}", sc.body["scene"].as_str().unwrap()), Some(&key)).await.expect_ok();
    let poll = c.take();
    println!("store requests: scene create {create:?}; scan {scan:?}; confirm {confirm:?}; poll {poll:?}");
    // The cached token; the scene, with a ref on its site user's identity.
    assert_eq!(create, Counts { gets: 1, queries: 0, writes: 0, transactions: 1 }, "cached token, scene item");
    assert_eq!(poll, Counts { gets: 1, queries: 0, writes: 0, transactions: 0 });
    // Claim the push (event and pair), read the scene, check both parties, ask to confirm,
    // record the reply.
    assert_eq!(scan.transactions, 2, "{scan:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_scene_request_counts() {
    scene_counts(StoreKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_scene_request_counts() {
    scene_counts(StoreKind::Dynamo).await;
}
