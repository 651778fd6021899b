//! Operators' view of the association: look-up, unlink, erase (API.md "Translation and look-up").

use crate::directory::Directory;
use crate::domain::assoc::{sk, Assoc};
use crate::domain::translate::PersonCache;
use crate::domain::views::Operator;
use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId};
use crate::items::identity::{self, Found};
use crate::items::{conflict, membership, person, refs, stash, union, Tx, TxError};
use crate::store::{ItemExt, Key, Write, MAX_TRANSACT_ITEMS};

/// What operators need: the association rules, the registry (to find unionids) and, in a
/// function that also translates, its cache to clear.
pub struct Admin<'a> {
    pub assoc: Assoc<'a>,
    pub apps: &'a dyn Directory,
    pub cache: Option<&'a PersonCache>,
}

impl Admin<'_> {
    pub async fn person(&self, person: &PersonId) -> Result<Operator, Error> {
        Ok(Operator(self.assoc.view(person).await?))
    }

    pub async fn identity(&self, appid: &AppId, openid: &OpenId) -> Result<Operator, Error> {
        let ident = self.assoc.identity(appid, openid).await?.ok_or(Error::NotFound)?;
        Ok(Operator(self.assoc.view(&ident.person).await?))
    }

    fn forget(&self, appid: &AppId, openid: &OpenId) {
        if let Some(c) = self.cache {
            c.forget(appid, openid);
        }
    }

    /// Removes one identity from a person, durably: the identity becomes a tombstone naming
    /// the person, so the next login of that app makes a new person instead of putting it
    /// back, and no unionid joins it to this person again. A unionid no other identity of the
    /// person carries is retired with it.
    pub async fn unlink(&self, person: &PersonId, appid: &AppId, openid: &OpenId) -> Result<(), Error> {
        let view = self.assoc.view(person).await?;
        if !view.linked.iter().any(|l| &l.appid == appid && &l.openid == openid) {
            return Err(Error::NotFound);
        }
        let ident = self.assoc.identity(appid, openid).await?.ok_or(Error::NotFound)?;
        // The app's open platform; for an app removed from the registry since, the one the
        // person's unionid mark names.
        let op = match self.apps.app(appid).await?.and_then(|a| a.open_platform.clone()) {
            Some(op) => Some(op),
            None => match &ident.unionid {
                Some(u) => self.marked_platform(&view.person, u).await?,
                None => None,
            },
        };
        let mut retire = None;
        if let (Some(u), Some(op)) = (&ident.unionid, &op) {
            let mut others_carry = false;
            for l in view.linked.iter().filter(|l| &l.appid != appid) {
                let same_op = self.apps.app(&l.appid).await?.and_then(|a| a.open_platform.clone()).as_ref() == Some(op);
                if same_op
                    && self.assoc.identity(&l.appid, &l.openid).await?.and_then(|i| i.unionid).as_ref() == Some(u)
                {
                    others_carry = true;
                }
            }
            // The unionid names the person that claimed it (merged into this one since, maybe):
            // retired under what it says, its mark under that person.
            let stored =
                self.assoc.store.get(&union::key(op, u)).await?.map(|it| union::owner(&it)).transpose()?.flatten();
            if let Some(claimer) = stored.filter(|_| !others_carry) {
                retire = Some(union::retire(op, u, &claimer));
            }
        }
        let mut tx = Tx::new();
        tx.add(identity::unlink(appid, openid, &view.person, self.assoc.clock.now_millis()));
        tx.add(identity::unlinked_mark(&view.person, appid, openid));
        tx.add(membership::delete(&view.person, appid, openid));
        tx.add(person::bump(&view.person, &self.assoc.ids.token()));
        // The login views that listed it go in the same transaction (the rest, for a very
        // large person, right after).
        let owner = view.linked.iter().find(|l| &l.appid == appid).map(|l| l.owner.clone());
        if let Some(o) = &owner {
            tx.extend(crate::domain::assoc::stale_views(&view, &[o], &[appid]));
        }
        tx.add(stash::delete(appid, openid));
        if let Some(r) = retire {
            tx.extend(r);
        }
        match tx.commit(self.assoc.store).await {
            Ok(()) => {
                self.forget(appid, openid);
                if let Some(o) = &owner {
                    self.assoc.forget_rest(&view, &[o]).await;
                }
                tracing::info!(appid = %appid, "identity unlinked");
                Ok(())
            }
            Err(TxError::Refused(_)) => Err(Error::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn marked_platform(
        &self,
        person: &PersonId,
        unionid: &crate::ids::UnionId,
    ) -> Result<Option<crate::ids::OpenPlatformId>, Error> {
        let tail = format!("#{unionid}");
        for it in self.assoc.store.query(&person::pk(person), union::MARK_PREFIX).await? {
            let Some(sk) = it.s("SK") else { continue };
            if let Some(op) = sk.strip_prefix(union::MARK_PREFIX).and_then(|r| r.strip_suffix(tail.as_str())) {
                return Ok(crate::ids::OpenPlatformId::parse(op).ok());
            }
        }
        Ok(None)
    }

    /// Erases every item that names the person: its identities, memberships, unionids, stashed
    /// sessions, the persons merged into it, tombstones of identities unlinked from it, the
    /// tickets, pass evidence, scenes and codes that name any of its identities (through their
    /// refs, written with them even before the identity had a person), and the conflict records.
    /// Safe to repeat if it stops half-way: the person item goes last, so a retry finds what
    /// is left.
    pub async fn erase(&self, person: &PersonId) -> Result<(), Error> {
        let view = self.assoc.view(person).await?;
        let root = view.person.clone();
        let mut deletes: Vec<Key> = Vec::new();
        let mut scrub: Vec<Write> = Vec::new();
        // Every identity the person holds or was unlinked from: the items that name it are
        // found through its refs.
        let mut identities: Vec<(AppId, OpenId)> =
            view.linked.iter().map(|l| (l.appid.clone(), l.openid.clone())).collect();
        for l in &view.linked {
            if let Some(ident) = self.assoc.identity(&l.appid, &l.openid).await? {
                let op = self.apps.app(&l.appid).await?.and_then(|a| a.open_platform.clone());
                if let (Some(u), Some(op)) = (&ident.unionid, op) {
                    deletes.push(union::key(&op, u));
                }
            }
            deletes.push(identity::key(&l.appid, &l.openid));
            deletes.push(stash::key(&l.appid, &l.openid));
        }
        // The person's partition, and those of the persons merged into it: memberships, marks,
        // refs, and the unionids they carry (found even when the identity that brought one is
        // unlinked).
        let mut partitions = vec![root.clone()];
        let mut i = 0;
        while let Some(p) = partitions.get(i).cloned() {
            i += 1;
            for it in self.assoc.partition(&p).await? {
                let Some(sk) = sk(&it) else { continue };
                if let Some(loser) = person::absorbed_of(sk) {
                    if !partitions.contains(&loser) {
                        partitions.push(loser);
                    }
                }
                if let Some(u) = union::of_mark(sk) {
                    deletes.push(u);
                }
                if let Some((appid, openid)) = identity::of_unlinked_mark(sk) {
                    match self.assoc.lookup(&appid, &openid).await? {
                        Found::Unlinked(_) => {
                            deletes.push(identity::key(&appid, &openid));
                            identities.push((appid, openid));
                        }
                        // Now another person's: it forgets this one, and so does that person.
                        Found::Live(i) if i.unlinked_from.as_ref().is_some_and(|f| partitions.contains(f)) => {
                            scrub.push(identity::forget_unlinked_from(&appid, &openid));
                            let holder = self.assoc.view(&i.person).await.map(|v| v.person).unwrap_or(i.person);
                            for f in &partitions {
                                deletes.push(Key::new(person::pk(&holder), format!("{}{f}", person::NEVER_PREFIX)));
                            }
                        }
                        _ => {}
                    }
                }
                if p != root || sk != person::SK {
                    deletes.push(Key::new(person::pk(&p), sk));
                }
            }
            for it in self.assoc.store.query(&conflict::pk(&p), "").await? {
                let Some(sk) = sk(&it) else { continue };
                deletes.push(Key::new(conflict::pk(&p), sk));
                if let Some(other) = it.s(conflict::OTHER).and_then(|o| PersonId::parse(o).ok()) {
                    deletes.push(conflict::twin(&other, sk));
                }
            }
        }
        for (appid, openid) in &identities {
            for it in self.assoc.store.query(&refs::pk(appid, openid), "").await? {
                let Some(sk) = sk(&it) else { continue };
                deletes.extend(refs::target(sk));
                deletes.push(Key::new(refs::pk(appid, openid), sk));
            }
        }
        deletes.push(person::key(&root));
        deletes.sort();
        deletes.dedup();
        // What is found through the person goes first, the person's own partition (its
        // memberships and marks, which find the rest) after, its person item last: an erase
        // that stops half-way is finished by running it again.
        let root_pk = person::pk(&root);
        let order = |k: &Key| match (k.pk.starts_with("P#"), k.pk == root_pk) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) if k.sk != person::SK => 2,
            (true, true) => 3,
        };
        deletes.sort_by_key(|k| order(k));
        for w in scrub {
            match self.assoc.store.write(w).await {
                Ok(()) | Err(crate::store::StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for chunk in deletes.chunks(MAX_TRANSACT_ITEMS) {
            let ops = chunk.iter().map(|k| Write::Delete { key: k.clone(), cond: vec![] }).collect();
            self.assoc.store.transact(ops).await?;
        }
        for l in &view.linked {
            self.forget(&l.appid, &l.openid);
        }
        tracing::info!(identities = view.linked.len(), "person erased");
        Ok(())
    }
}
