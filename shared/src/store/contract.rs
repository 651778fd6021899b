//! The store contract: every `Store` implementation must pass `run_all`. Keys are prefixed by
//! `ns` so the suite can run against a shared table.

use std::sync::Arc;

use super::{item, Attr, Check, ItemExt, Key, Store, StoreError, Write};

fn k(ns: &str, pk: &str, sk: &str) -> Key {
    Key::new(format!("{ns}{pk}"), sk)
}

pub async fn run_all(store: Arc<dyn Store>, ns: &str) {
    put_get_roundtrip(&*store, ns).await;
    conditional_put(&*store, ns).await;
    update_semantics(&*store, ns).await;
    delete_semantics(&*store, ns).await;
    query_prefix_in_order(&*store, ns).await;
    transaction_all_or_nothing(&*store, ns).await;
    transaction_validation(&*store, ns).await;
    concurrent_creates_one_winner(store.clone(), ns).await;
}

async fn put_get_roundtrip(s: &dyn Store, ns: &str) {
    let key = k(ns, "rt", "A");
    assert_eq!(s.get(&key).await.unwrap(), None);
    let it = item(&key, [("name", Attr::S("x".into())), ("n", Attr::N(-42)), ("big", Attr::N(1_700_000_000_123))]);
    s.write(Write::Put { item: it.clone(), cond: vec![] }).await.unwrap();
    let got = s.get(&key).await.unwrap().unwrap();
    assert_eq!(got, it);
    assert_eq!(got.s("name"), Some("x"));
    assert_eq!(got.n("big"), Some(1_700_000_000_123));
}

async fn conditional_put(s: &dyn Store, ns: &str) {
    let key = k(ns, "cp", "A");
    let it = item(&key, [("v", Attr::N(1))]);
    s.write(Write::Put { item: it.clone(), cond: vec![Check::NotExists] }).await.unwrap();
    let again = item(&key, [("v", Attr::N(2))]);
    let e = s.write(Write::Put { item: again, cond: vec![Check::NotExists] }).await.unwrap_err();
    assert_eq!(e, StoreError::ConditionFailed { index: 0 });
    assert_eq!(s.get(&key).await.unwrap().unwrap().n("v"), Some(1), "a failed write changes nothing");
    // Eq on an attribute holds only with that value.
    let e = s
        .write(Write::Put { item: item(&key, [("v", Attr::N(3))]), cond: vec![Check::Eq("v".into(), Attr::N(9))] })
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::ConditionFailed { index: 0 });
    s.write(Write::Put { item: item(&key, [("v", Attr::N(3))]), cond: vec![Check::Eq("v".into(), Attr::N(1))] })
        .await
        .unwrap();
    assert_eq!(s.get(&key).await.unwrap().unwrap().n("v"), Some(3));
}

async fn update_semantics(s: &dyn Store, ns: &str) {
    let key = k(ns, "up", "A");
    // Upsert on a missing item, unless Exists is required.
    let e = s
        .write(Write::Update {
            key: key.clone(),
            set: vec![("a".into(), Attr::N(1))],
            remove: vec![],
            cond: vec![Check::Exists],
        })
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::ConditionFailed { index: 0 });
    assert_eq!(s.get(&key).await.unwrap(), None);
    s.write(Write::Update {
        key: key.clone(),
        set: vec![("a".into(), Attr::N(1)), ("b".into(), Attr::S("x".into()))],
        remove: vec![],
        cond: vec![],
    })
    .await
    .unwrap();
    let got = s.get(&key).await.unwrap().unwrap();
    assert_eq!((got.n("a"), got.s("b"), got.s("PK")), (Some(1), Some("x"), Some(key.pk.as_str())));
    // Absent holds while the attribute is missing; remove takes it away.
    s.write(Write::Update {
        key: key.clone(),
        set: vec![("m".into(), Attr::S("p".into()))],
        remove: vec![],
        cond: vec![Check::Exists, Check::Absent("m".into())],
    })
    .await
    .unwrap();
    let e = s
        .write(Write::Update {
            key: key.clone(),
            set: vec![("m".into(), Attr::S("q".into()))],
            remove: vec![],
            cond: vec![Check::Absent("m".into())],
        })
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::ConditionFailed { index: 0 });
    s.write(Write::Update {
        key: key.clone(),
        set: vec![],
        remove: vec!["m".into(), "b".into()],
        cond: vec![Check::Eq("m".into(), Attr::S("p".into()))],
    })
    .await
    .unwrap();
    let got = s.get(&key).await.unwrap().unwrap();
    assert_eq!((got.s("m"), got.s("b"), got.n("a")), (None, None, Some(1)));
}

async fn delete_semantics(s: &dyn Store, ns: &str) {
    let key = k(ns, "del", "A");
    let e = s.write(Write::Delete { key: key.clone(), cond: vec![Check::Exists] }).await.unwrap_err();
    assert_eq!(e, StoreError::ConditionFailed { index: 0 });
    s.write(Write::Delete { key: key.clone(), cond: vec![] }).await.unwrap();
    s.write(Write::Put { item: item(&key, []), cond: vec![] }).await.unwrap();
    s.write(Write::Delete { key: key.clone(), cond: vec![Check::Exists] }).await.unwrap();
    assert_eq!(s.get(&key).await.unwrap(), None);
}

async fn query_prefix_in_order(s: &dyn Store, ns: &str) {
    let pk = format!("{ns}q");
    for sk in ["B#2", "A#3", "A#1", "A#2", "A", "C"] {
        s.write(Write::Put { item: item(&Key::new(&pk, sk), [("sk", Attr::S(sk.into()))]), cond: vec![] })
            .await
            .unwrap();
    }
    let sks = |v: Vec<super::Item>| v.iter().map(|i| i.s("SK").unwrap_or_default().to_owned()).collect::<Vec<_>>();
    assert_eq!(sks(s.query(&pk, "A#").await.unwrap()), ["A#1", "A#2", "A#3"]);
    assert_eq!(sks(s.query(&pk, "").await.unwrap()), ["A", "A#1", "A#2", "A#3", "B#2", "C"]);
    assert!(s.query(&pk, "Z").await.unwrap().is_empty());
    assert!(s.query(&format!("{ns}nothing"), "").await.unwrap().is_empty());
    // Many items in one partition come back whole (the DynamoDB adapter pages).
    let big = format!("{ns}big");
    let pad = "x".repeat(40_000);
    for i in 0..40 {
        s.write(Write::Put {
            item: item(&Key::new(&big, format!("I#{i:03}")), [("pad", Attr::S(pad.clone()))]),
            cond: vec![],
        })
        .await
        .unwrap();
    }
    assert_eq!(s.query(&big, "I#").await.unwrap().len(), 40);
}

async fn transaction_all_or_nothing(s: &dyn Store, ns: &str) {
    let a = k(ns, "tx", "A");
    let b = k(ns, "tx", "B");
    let c = k(ns, "tx", "C");
    s.write(Write::Put { item: item(&b, [("v", Attr::N(1))]), cond: vec![] }).await.unwrap();
    let e = s
        .transact(vec![
            Write::Put { item: item(&a, []), cond: vec![Check::NotExists] },
            Write::Put { item: item(&b, [("v", Attr::N(2))]), cond: vec![Check::NotExists] },
        ])
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::ConditionFailed { index: 1 });
    assert_eq!(s.get(&a).await.unwrap(), None, "nothing of a failed transaction is written");
    assert_eq!(s.get(&b).await.unwrap().unwrap().n("v"), Some(1));
    // A failing Check cancels the writes beside it.
    let e = s
        .transact(vec![
            Write::Check { key: b.clone(), cond: vec![Check::Eq("v".into(), Attr::N(7))] },
            Write::Put { item: item(&a, []), cond: vec![] },
        ])
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::ConditionFailed { index: 0 });
    assert_eq!(s.get(&a).await.unwrap(), None);
    s.transact(vec![
        Write::Check { key: b.clone(), cond: vec![Check::Eq("v".into(), Attr::N(1))] },
        Write::Put { item: item(&a, [("v", Attr::N(5))]), cond: vec![Check::NotExists] },
        Write::Update {
            key: c.clone(),
            set: vec![("v".into(), Attr::N(6))],
            remove: vec![],
            cond: vec![Check::NotExists],
        },
        Write::Delete { key: k(ns, "tx", "missing"), cond: vec![] },
    ])
    .await
    .unwrap();
    assert_eq!(s.get(&a).await.unwrap().unwrap().n("v"), Some(5));
    assert_eq!(s.get(&c).await.unwrap().unwrap().n("v"), Some(6));
}

async fn transaction_validation(s: &dyn Store, ns: &str) {
    let a = k(ns, "tv", "A");
    let dup = s
        .transact(vec![Write::Put { item: item(&a, []), cond: vec![] }, Write::Delete { key: a.clone(), cond: vec![] }])
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Invalid(_)), "{dup:?}");
    let too_many: Vec<Write> =
        (0..101).map(|i| Write::Put { item: item(&k(ns, "tv", &format!("I{i}")), []), cond: vec![] }).collect();
    assert!(matches!(s.transact(too_many).await.unwrap_err(), StoreError::Invalid(_)));
    assert_eq!(s.get(&k(ns, "tv", "I0")).await.unwrap(), None);
    let hundred: Vec<Write> =
        (0..100).map(|i| Write::Put { item: item(&k(ns, "tv", &format!("I{i}")), []), cond: vec![] }).collect();
    s.transact(hundred).await.unwrap();
    assert!(s.get(&k(ns, "tv", "I99")).await.unwrap().is_some());
}

async fn concurrent_creates_one_winner(s: Arc<dyn Store>, ns: &str) {
    let key = k(ns, "race", "A");
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let s = s.clone();
            let key = key.clone();
            tokio::spawn(async move {
                s.transact(vec![
                    Write::Put { item: item(&key, [("by", Attr::N(i))]), cond: vec![Check::NotExists] },
                    Write::Put { item: item(&Key::new(key.pk.clone(), format!("B#{i}")), []), cond: vec![] },
                ])
                .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::ConditionFailed { index: 0 }) | Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(s.query(&key.pk, "B#").await.unwrap().len(), 1, "losers wrote nothing");
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        super::run_all(std::sync::Arc::new(crate::store::memory::MemoryStore::new()), "t#").await;
    }
}
