//! Pairwise person ids: what a tenant (a merchant, a site) is shown instead of the
//! platform-wide person id.
//!
//! The id for (person, owner) is the person's 16 UUID bytes encrypted as one AES-128 block
//! under a key only that owner's ids use (HMAC-SHA256 of the bridge's pairwise key and the
//! owner, cut to 16 bytes), printed like a UUID. So it is:
//! - stable: the same person and owner give the same id, every time, in every function;
//! - unlinkable: ids of one person for two owners look independent without the bridge's key,
//!   so two merchants cannot join their customer lists on them;
//! - reversible by the bridge alone: given the owner, the bridge recovers the person, and
//!   from there follows merges, so an absorbed person's ids answer as the survivor's.
//!
//! The platform's own apps see the platform-wide id.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;
use crate::ids::{PersonId, Secret};
use crate::model::Owner;

pub struct Pairwise {
    /// None: a function that shows no tenant a person (it is given no seal key).
    key: Option<Secret>,
}

impl std::fmt::Debug for Pairwise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pairwise(***)")
    }
}

impl Pairwise {
    pub fn new(key: Secret) -> Self {
        Pairwise { key: Some(key) }
    }

    pub fn none() -> Self {
        Pairwise { key: None }
    }

    pub fn random() -> Self {
        Pairwise::new(Secret::new(hex::encode(rand::random::<[u8; 32]>())))
    }

    fn cipher(&self, owner: &Owner) -> Result<Aes128, Error> {
        let key = self.key.as_ref().ok_or_else(|| Error::Internal("this function has no seal key".into()))?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes any key");
        mac.update(b"wxbridge/pairwise/v1\n");
        mac.update(owner.to_string().as_bytes());
        let k = mac.finalize().into_bytes();
        Ok(Aes128::new_from_slice(&k[..16]).expect("16 bytes"))
    }

    /// The id `owner` is shown for `person`.
    pub fn id(&self, person: &PersonId, owner: &Owner) -> Result<String, Error> {
        if owner.is_platform() {
            return Ok(person.to_string());
        }
        let u = uuid::Uuid::parse_str(person.as_str()).map_err(|_| Error::Internal("person id is no UUID".into()))?;
        let mut block = aes::Block::from(*u.as_bytes());
        self.cipher(owner)?.encrypt_block(&mut block);
        Ok(uuid::Uuid::from_bytes(block.into()).hyphenated().to_string())
    }

    /// The person behind an id `owner` was shown (the person as it was then: follow merges).
    pub fn person(&self, id: &str, owner: &Owner) -> Result<PersonId, Error> {
        let u = uuid::Uuid::parse_str(id).map_err(|_| Error::NotFound)?;
        if owner.is_platform() {
            return PersonId::parse(id).map_err(|_| Error::NotFound);
        }
        let mut block = aes::Block::from(*u.as_bytes());
        self.cipher(owner)?.decrypt_block(&mut block);
        Ok(PersonId::from_uuid(uuid::Uuid::from_bytes(block.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MerchantId;

    fn m(s: &str) -> Owner {
        Owner::Merchant(MerchantId::parse(s).unwrap())
    }

    #[test]
    fn stable_per_owner_different_between_owners_and_reversible() {
        let p = Pairwise::new(Secret::new("k".repeat(32)));
        let person = PersonId::from_uuid(uuid::Uuid::now_v7());
        let id = |o: &Owner| p.id(&person, o).unwrap();
        let (a, b) = (id(&m("m1")), id(&m("m2")));
        assert_eq!(a, id(&m("m1")));
        assert_ne!(a, b);
        assert_ne!(a, person.to_string());
        assert_eq!(id(&Owner::Platform), person.to_string());
        assert_eq!(p.person(&a, &m("m1")).unwrap(), person);
        assert_ne!(p.person(&a, &m("m2")).unwrap(), person, "another owner's id names nobody it knows");
        let other_key = Pairwise::new(Secret::new("j".repeat(32)));
        assert_ne!(other_key.id(&person, &m("m1")).unwrap(), a);
        assert!(PersonId::parse(&a).is_ok(), "shaped like a person id");
        assert!(Pairwise::none().id(&person, &m("m1")).is_err(), "no key, no tenant id");
        assert_eq!(Pairwise::none().id(&person, &Owner::Platform).unwrap(), person.to_string());
    }
}
