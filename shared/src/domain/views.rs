//! How a person's identities ([`Linked`]) are shown, per audience: one type inside, a view
//! for each reader outside.

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::domain::assoc::PersonView;
use crate::items::membership::Linked;

/// What a mini program or a site is shown of each identity: the app, its kind and owner —
/// never another app's openid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Public(pub Vec<Linked>);

impl Public {
    pub fn of(view: &PersonView) -> Self {
        Public(view.linked.clone())
    }
}

impl Serialize for Public {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for l in &self.0 {
            seq.serialize_element(&PublicOne(l))?;
        }
        seq.end()
    }
}

struct PublicOne<'a>(&'a Linked);

impl Serialize for PublicOne<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Linked", 3)?;
        st.serialize_field("appid", &self.0.appid)?;
        st.serialize_field("kind", &self.0.kind)?;
        st.serialize_field("owner", &self.0.owner)?;
        st.end()
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
