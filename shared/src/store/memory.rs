//! The embedded store (devstack, fast tests): one lock, so every transaction is serializable,
//! with DynamoDB's condition and transaction semantics.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{item_key, validate_transaction, Attr, Check, Item, Key, Store, StoreError, Write};

#[derive(Default)]
pub struct MemoryStore {
    items: Mutex<BTreeMap<Key, Item>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Item>> {
        // A panic while holding the lock cannot leave a half-applied write: writes are
        // checked first and applied after, so the map is consistent even if poisoned.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn holds(current: Option<&Item>, cond: &[Check]) -> bool {
    cond.iter().all(|c| match c {
        Check::Exists => current.is_some(),
        Check::NotExists => current.is_none(),
        Check::Eq(name, v) => current.and_then(|i| i.get(name)) == Some(v),
        Check::Absent(name) => current.and_then(|i| i.get(name)).is_none(),
    })
}

fn cond_of(op: &Write) -> &[Check] {
    match op {
        Write::Put { cond, .. }
        | Write::Update { cond, .. }
        | Write::Delete { cond, .. }
        | Write::Check { cond, .. } => cond,
    }
}

fn apply(items: &mut BTreeMap<Key, Item>, op: Write) {
    match op {
        Write::Put { item, .. } => {
            items.insert(item_key(&item), item);
        }
        Write::Update { key, set, remove, .. } => {
            let entry = items.entry(key.clone()).or_insert_with(|| {
                let mut it = Item::new();
                it.insert("PK".into(), Attr::S(key.pk.clone()));
                it.insert("SK".into(), Attr::S(key.sk.clone()));
                it
            });
            for (k, v) in set {
                entry.insert(k, v);
            }
            for k in remove {
                entry.remove(&k);
            }
        }
        Write::Delete { key, .. } => {
            items.remove(&key);
        }
        Write::Check { .. } => {}
    }
}

fn check_item_shape(op: &Write) -> Result<(), StoreError> {
    if let Write::Put { item, .. } = op {
        let k = item_key(item);
        if k.pk.is_empty() || k.sk.is_empty() {
            return Err(StoreError::Invalid("an item needs non-empty PK and SK".into()));
        }
    }
    if let Write::Update { set, remove, .. } = op {
        if set.iter().any(|(k, _)| k == "PK" || k == "SK") || remove.iter().any(|k| k == "PK" || k == "SK") {
            return Err(StoreError::Invalid("an update cannot change the key".into()));
        }
    }
    Ok(())
}

#[async_trait]
impl Store for MemoryStore {
    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        Ok(self.lock().values().cloned().collect())
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let items = self.lock();
        let from = Key::new(pk, sk_prefix);
        Ok(items
            .range(from..)
            .take_while(|(k, _)| k.pk == pk && k.sk.starts_with(sk_prefix))
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn write(&self, op: Write) -> Result<(), StoreError> {
        if matches!(op, Write::Check { .. }) {
            return Err(StoreError::Invalid("a condition check only exists inside a transaction".into()));
        }
        check_item_shape(&op)?;
        let mut items = self.lock();
        if !holds(items.get(&op.key()), cond_of(&op)) {
            return Err(StoreError::ConditionFailed { index: 0 });
        }
        apply(&mut items, op);
        Ok(())
    }

    async fn transact(&self, ops: Vec<Write>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        for op in &ops {
            check_item_shape(op)?;
        }
        let mut items = self.lock();
        if let Some(index) = ops.iter().position(|op| !holds(items.get(&op.key()), cond_of(op))) {
            return Err(StoreError::ConditionFailed { index });
        }
        for op in ops {
            apply(&mut items, op);
        }
        Ok(())
    }
}
