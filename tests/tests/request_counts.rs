//! What each login costs in store requests (the DynamoDB bill and latency): asserted, so a
//! change that adds a round trip fails here.

use shared::store::counting::Counts;
use wxbridge_e2e::*;

async fn counts(kind: StoreKind) {
    let e = env_with(kind, UnionIdMode::Always).await;
    e.stack.store_counts.take();
    e.login("olga", PLATFORM_MP).await.expect_ok();
    let first = e.stack.store_counts.take();
    // Identity and union looked up; one transaction creates person, identity, membership, union.
    assert_eq!(first, Counts { gets: 2, queries: 0, writes: 0, transactions: 1 }, "first login");

    e.login("olga", PLATFORM_MP).await.expect_ok();
    let returning = e.stack.store_counts.take();
    // The identity, then the person's partition (person item and memberships in one query).
    assert_eq!(returning, Counts { gets: 1, queries: 1, writes: 0, transactions: 0 }, "returning login");

    e.login("olga", PLATFORM_MP2).await.expect_ok();
    let second_app = e.stack.store_counts.take();
    assert_eq!(second_app, Counts { gets: 2, queries: 1, writes: 0, transactions: 1 }, "second app, unionid first");
    println!(
        "store requests: first login {first:?}; returning login {returning:?}; second app via unionid {second_app:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_login_request_counts() {
    counts(StoreKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_login_request_counts() {
    counts(StoreKind::Dynamo).await;
}
