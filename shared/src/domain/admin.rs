//! Operators' view of the association: look-up, unlink, erase (API.md "Translation and look-up").

use serde::Serialize;

use crate::bridge::Bridge;
use crate::domain::assoc::PersonView;
use crate::domain::keys;
use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId};
use crate::store::{s, Check, ItemExt, Key, StoreError, Write, MAX_TRANSACT_ITEMS};

#[derive(Debug, Serialize)]
pub struct IdentityOut {
    pub appid: String,
    pub openid: String,
    pub kind: String,
    pub owner: String,
    pub via: String,
    pub linked_at: String,
}

#[derive(Debug, Serialize)]
pub struct PersonOut {
    pub person_id: String,
    pub identities: Vec<IdentityOut>,
}

fn rfc3339(millis: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn person_out(view: &PersonView) -> PersonOut {
    PersonOut {
        person_id: view.person.to_string(),
        identities: view
            .linked
            .iter()
            .map(|l| IdentityOut {
                appid: l.appid.to_string(),
                openid: l.openid.to_string(),
                kind: l.kind.clone(),
                owner: l.owner.clone(),
                via: l.via.clone(),
                linked_at: rfc3339(l.at_millis),
            })
            .collect(),
    }
}

pub async fn person(b: &Bridge, person: &PersonId) -> Result<PersonOut, Error> {
    Ok(person_out(&b.assoc().view(person).await?))
}

pub async fn identity(b: &Bridge, appid: &AppId, openid: &OpenId) -> Result<PersonOut, Error> {
    let ident = b.assoc().identity(appid, openid).await?.ok_or(Error::NotFound)?;
    Ok(person_out(&b.assoc().view(&ident.person).await?))
}

/// Removes one identity from a person: the identity is forgotten, the person keeps the rest.
pub async fn unlink(b: &Bridge, person: &PersonId, appid: &AppId, openid: &OpenId) -> Result<(), Error> {
    let view = b.assoc().view(person).await?;
    if !view.linked.iter().any(|l| &l.appid == appid && &l.openid == openid) {
        return Err(Error::NotFound);
    }
    let ops = vec![
        Write::Delete { key: keys::identity(appid, openid), cond: vec![Check::Exists] },
        Write::Delete {
            key: keys::membership(&view.person, appid),
            cond: vec![Check::Eq("openid".into(), s(openid.as_str()))],
        },
        Write::Delete { key: keys::stash(appid, openid), cond: vec![] },
    ];
    match b.store.transact(ops).await {
        Ok(()) => {
            b.translations.forget(appid, openid);
            Ok(())
        }
        Err(StoreError::ConditionFailed { .. }) => Err(Error::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Erases every item of a person: identities, memberships, unionids, stashed sessions, the
/// persons merged into it, and the person. Safe to repeat if it stops half-way: the person
/// item goes last, so a retry finds what is left.
pub async fn erase(b: &Bridge, person: &PersonId) -> Result<(), Error> {
    let view = b.assoc().view(person).await?;
    let root = view.person.clone();
    let mut deletes: Vec<Key> = Vec::new();
    for l in &view.linked {
        let ikey = keys::identity(&l.appid, &l.openid);
        if let Some(ident) = b.store.get(&ikey).await? {
            let op = b.registry.app(&l.appid).and_then(|a| a.open_platform.clone());
            if let (Some(u), Some(op)) = (ident.s("unionid").and_then(|u| crate::ids::UnionId::parse(u).ok()), op) {
                deletes.push(keys::union(&op, &u));
            }
        }
        deletes.push(ikey);
        deletes.push(keys::stash(&l.appid, &l.openid));
    }
    // The person's partition, and those of the persons merged into it: memberships, marks,
    // and the unionids they carry (found even when the identity that brought one is unlinked).
    let mut partitions = vec![root.clone()];
    let mut i = 0;
    while let Some(p) = partitions.get(i).cloned() {
        i += 1;
        for it in b.store.query(&keys::person_pk(&p), "").await? {
            let Some(sk) = it.s("SK") else { continue };
            if let Some(loser) = sk.strip_prefix(keys::ABSORBED_PREFIX).and_then(|l| PersonId::parse(l).ok()) {
                if !partitions.contains(&loser) {
                    partitions.push(loser);
                }
            }
            if let Some(union) = keys::union_of_mark(sk) {
                deletes.push(union);
            }
            if p != root || sk != "P" {
                deletes.push(Key::new(keys::person_pk(&p), sk));
            }
        }
    }
    for it in b.store.query(&format!("CONFLICT#{root}"), "").await? {
        if let (Some(pk), Some(sk)) = (it.s("PK"), it.s("SK")) {
            deletes.push(Key::new(pk, sk));
        }
    }
    deletes.sort();
    deletes.dedup();
    // The person item last: a retry after a partial erase still finds everything else.
    deletes.retain(|k| *k != keys::person(&root));
    deletes.push(keys::person(&root));
    for chunk in deletes.chunks(MAX_TRANSACT_ITEMS) {
        let ops = chunk.iter().map(|k| Write::Delete { key: k.clone(), cond: vec![] }).collect();
        b.store.transact(ops).await?;
    }
    for l in &view.linked {
        b.translations.forget(&l.appid, &l.openid);
    }
    tracing::info!(identities = view.linked.len(), "person erased");
    Ok(())
}
