//! The single table's items (ARCHITECTURE.md §3), one module per kind. Each owns its key, its
//! attribute names and its conversions to and from a store [`Item`], so the domain speaks in
//! these types and never spells an attribute.
//!
//! A transaction is built with [`Tx`]: every write added gets a handle, and a refused
//! condition names that handle — reordering a transaction cannot change what a failure means.

pub mod component;
pub mod confirm;
pub mod conflict;
pub mod identity;
pub mod link_nonce;
pub mod membership;
pub mod person;
pub mod push_seen;
pub mod refs;
pub mod registry;
pub mod scene;
pub mod site_code;
pub mod stash;
pub mod state;
pub mod ticket;
pub mod token;
pub mod union;

use crate::error::Error;
use crate::store::{Item, ItemExt, Store, StoreError, Write};

/// One write inside a [`Tx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op(usize);

#[derive(Debug)]
pub enum TxError {
    /// The condition of this write did not hold; nothing was written.
    Refused(Op),
    /// Another transaction touched the same items at the same time; nothing was written.
    Conflict,
    Store(StoreError),
}

impl TxError {
    /// Lost a race (a condition or a concurrent transaction): read again and retry.
    pub fn is_race(&self) -> bool {
        matches!(self, TxError::Refused(_) | TxError::Conflict)
    }
}

impl From<TxError> for Error {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Refused(_) => StoreError::ConditionFailed { index: 0 }.into(),
            TxError::Conflict => StoreError::Conflict.into(),
            TxError::Store(e) => e.into(),
        }
    }
}

/// All writes or none (at most [`crate::store::MAX_TRANSACT_ITEMS`]).
#[derive(Clone, Debug, Default)]
pub struct Tx {
    ops: Vec<Write>,
}

impl Tx {
    pub fn new() -> Self {
        Tx::default()
    }

    /// Adds a write whose failure the caller wants to recognise.
    pub fn add(&mut self, w: Write) -> Op {
        self.ops.push(w);
        Op(self.ops.len() - 1)
    }

    /// Adds writes whose failures all mean the same to the caller.
    pub fn extend(&mut self, ws: impl IntoIterator<Item = Write>) {
        self.ops.extend(ws);
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub async fn commit(self, store: &dyn Store) -> Result<(), TxError> {
        match store.transact(self.ops).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { index }) => Err(TxError::Refused(Op(index))),
            Err(StoreError::Conflict) => Err(TxError::Conflict),
            Err(e) => Err(TxError::Store(e)),
        }
    }
}

/// A stored attribute that must be there, parsed: a malformed item is our bug, not the caller's.
pub(crate) fn required<T>(it: &Item, name: &str, parse: impl FnOnce(&str) -> Result<T, Error>) -> Result<T, Error> {
    let raw = it.s(name).ok_or_else(|| Error::Internal(format!("stored item without {name}")))?;
    parse(raw).map_err(|_| Error::Internal(format!("stored item with a malformed {name}")))
}

/// A stored attribute that may be absent; present but malformed is still an error.
pub(crate) fn optional<T>(
    it: &Item,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    it.s(name)
        .map(|raw| parse(raw).map_err(|_| Error::Internal(format!("stored item with a malformed {name}"))))
        .transpose()
}

/// Not expired by its own clock (DynamoDB's TTL deletes late, so every reader checks).
pub(crate) fn live(it: Option<Item>, ttl_attr: &str, now_secs: i64) -> Option<Item> {
    it.filter(|i| i.n(ttl_attr).is_some_and(|t| t > now_secs))
}
