//! A decorator that counts the requests a store receives: the figures behind "DynamoDB
//! requests per login" in tests and benchmarks.

use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Item, Key, Store, StoreError, Write};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub gets: u64,
    pub queries: u64,
    pub writes: u64,
    pub transactions: u64,
}

impl Counts {
    pub fn reads(&self) -> u64 {
        self.gets + self.queries
    }
    pub fn writes(&self) -> u64 {
        self.writes + self.transactions
    }
}

pub struct CountingStore {
    inner: Arc<dyn Store>,
    gets: AtomicU64,
    queries: AtomicU64,
    writes: AtomicU64,
    transactions: AtomicU64,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        CountingStore {
            inner,
            gets: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
        }
    }

    /// The counts so far, and a fresh start.
    pub fn take(&self) -> Counts {
        Counts {
            gets: self.gets.swap(0, Ordering::Relaxed),
            queries: self.queries.swap(0, Ordering::Relaxed),
            writes: self.writes.swap(0, Ordering::Relaxed),
            transactions: self.transactions.swap(0, Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.inner.query(pk, sk_prefix).await
    }
    async fn write(&self, op: Write) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.write(op).await
    }
    async fn transact(&self, ops: Vec<Write>) -> Result<(), StoreError> {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.inner.transact(ops).await
    }
    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        self.inner.scan_all().await
    }
}
