//! How a person's identities ([`Linked`]) are shown, per audience: one type inside, a view
//! for each reader outside.

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::domain::assoc::PersonView;
use crate::ids::AppId;
use crate::items::membership::Linked;
use crate::model::{AppKind, Owner};

/// What a mini program or a site is shown of each identity: the app, its kind and owner —
/// never another app's openid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Public(pub Vec<Shown>);

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shown {
    pub appid: AppId,
    pub kind: AppKind,
    pub owner: Owner,
}

impl Shown {
    fn of(l: &Linked) -> Self {
        Shown { appid: l.appid.clone(), kind: l.kind, owner: l.owner.clone() }
    }
}

impl Public {
    /// Every identity (the platform's `GET /v1/me`).
    pub fn of(view: &PersonView) -> Self {
        Public(view.linked.iter().map(Shown::of).collect())
    }

    /// Only `owner`'s apps: what a tenant is shown (and what a login answers, whoever asks,
    /// so its size does not grow with the person).
    pub fn owned_by(view: &PersonView, owner: &Owner) -> Self {
        Self::only(view, |l| &l.owner == owner)
    }

    pub fn only(view: &PersonView, keep: impl Fn(&Linked) -> bool) -> Self {
        Public(view.linked.iter().filter(|l| keep(l)).map(Shown::of).collect())
    }
}

impl Serialize for Public {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for l in &self.0 {
            seq.serialize_element(l)?;
        }
        seq.end()
    }
}

/// What operators are shown: a person and every field of each identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator(pub PersonView);

impl Serialize for Operator {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Person", 2)?;
        st.serialize_field("person_id", &self.0.person)?;
        st.serialize_field("identities", &OperatorList(&self.0.linked))?;
        st.end()
    }
}

struct OperatorList<'a>(&'a [Linked]);

impl Serialize for OperatorList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for l in self.0 {
            seq.serialize_element(&OperatorOne(l))?;
        }
        seq.end()
    }
}

struct OperatorOne<'a>(&'a Linked);

impl Serialize for OperatorOne<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let l = self.0;
        let mut st = s.serialize_struct("Identity", 6)?;
        st.serialize_field("appid", &l.appid)?;
        st.serialize_field("openid", &l.openid)?;
        st.serialize_field("kind", &l.kind)?;
        st.serialize_field("owner", &l.owner)?;
        st.serialize_field("via", &l.via)?;
        st.serialize_field("linked_at", &rfc3339_millis(l.at_millis))?;
        st.end()
    }
}

pub fn rfc3339_millis(millis: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn rfc3339_secs(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
