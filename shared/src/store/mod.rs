//! The store port: a single table of items keyed by (PK, SK), with conditional writes and
//! all-or-nothing transactions — exactly the part of DynamoDB the domain relies on, so the
//! association rules are written once and both adapters are held to one contract suite.

use async_trait::async_trait;
use std::collections::BTreeMap;

pub mod counting;
pub mod dynamo;
pub mod memory;

#[cfg(any(test, feature = "testkit"))]
pub mod contract;

/// The largest transaction DynamoDB accepts.
pub const MAX_TRANSACT_ITEMS: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attr {
    S(String),
    N(i64),
}

/// One item: its attributes, including `PK` and `SK`.
pub type Item = BTreeMap<String, Attr>;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key { pk: pk.into(), sk: sk.into() }
    }
}

/// One clause of a write condition; a write's clauses must all hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The item exists.
    Exists,
    /// The item does not exist.
    NotExists,
    /// The item exists and the attribute has this value.
    Eq(String, Attr),
    /// The attribute is absent (true for a missing item).
    Absent(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Put {
        item: Item,
        cond: Vec<Check>,
    },
    /// Sets and removes attributes; like DynamoDB, creates the item when it is missing
    /// unless a condition forbids it.
    Update {
        key: Key,
        set: Vec<(String, Attr)>,
        remove: Vec<String>,
        cond: Vec<Check>,
    },
    Delete {
        key: Key,
        cond: Vec<Check>,
    },
    /// Writes nothing; the transaction fails if the condition does not hold.
    Check {
        key: Key,
        cond: Vec<Check>,
    },
}

impl Write {
    pub fn key(&self) -> Key {
        match self {
            Write::Put { item, .. } => item_key(item),
            Write::Update { key, .. } | Write::Delete { key, .. } | Write::Check { key, .. } => key.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The condition of the write at `index` (0 for a single write) did not hold.
    #[error("condition failed on write {index}")]
    ConditionFailed { index: usize },
    /// Another transaction touched the same items at the same time; nothing was written.
    #[error("transaction conflict")]
    Conflict,
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    /// A strongly consistent read of one item.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// Every item of partition `pk` whose SK starts with `sk_prefix`, in SK order (all pages).
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError>;
    /// One conditional write (not `Write::Check`).
    async fn write(&self, op: Write) -> Result<(), StoreError>;
    /// All writes or none; at most [`MAX_TRANSACT_ITEMS`], no two on the same item.
    async fn transact(&self, ops: Vec<Write>) -> Result<(), StoreError>;
    /// Every item of the table. For tests and operators' audits only, never on a request
    /// path (it reads the whole table).
    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        Err(StoreError::Invalid("this store cannot list its items".into()))
    }
}

pub fn item_key(item: &Item) -> Key {
    Key::new(item.s("PK").unwrap_or_default(), item.s("SK").unwrap_or_default())
}

/// Typed access to item attributes.
pub trait ItemExt {
    fn s(&self, name: &str) -> Option<&str>;
    fn n(&self, name: &str) -> Option<i64>;
}

impl ItemExt for Item {
    fn s(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Attr::S(s)) => Some(s),
            _ => None,
        }
    }
    fn n(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Attr::N(n)) => Some(*n),
            _ => None,
        }
    }
}

/// Builds an item from its key and attributes.
pub fn item(key: &Key, attrs: impl IntoIterator<Item = (&'static str, Attr)>) -> Item {
    let mut it = Item::new();
    it.insert("PK".into(), Attr::S(key.pk.clone()));
    it.insert("SK".into(), Attr::S(key.sk.clone()));
    for (k, v) in attrs {
        it.insert(k.to_owned(), v);
    }
    it
}

pub fn s(v: impl Into<String>) -> Attr {
    Attr::S(v.into())
}

/// Validation both adapters apply before writing, so they fail alike.
pub(crate) fn validate_transaction(ops: &[Write]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACT_ITEMS {
        return Err(StoreError::Invalid(format!("a transaction holds 1 to {MAX_TRANSACT_ITEMS} writes")));
    }
    let mut keys: Vec<Key> = ops.iter().map(Write::key).collect();
    keys.sort();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::Invalid("two writes in one transaction touch the same item".into()));
    }
    Ok(())
}
