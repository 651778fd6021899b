//! One contract, two stores: the embedded store and DynamoDB Local must behave alike.

use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_store_contract() {
    shared::store::contract::run_all(Arc::new(shared::store::memory::MemoryStore::new()), "c#").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store_passes_the_store_contract() {
    shared::store::contract::run_all(wxbridge_e2e::dynamo_store().await, "c#").await;
}
