//! The third-party platform's own items:
//!
//! | PK                      | SK       | what                                                    |
//! |-------------------------|----------|---------------------------------------------------------|
//! | `CMP#<component appid>` | `TICKET` | the last good component_verify_ticket and its CreateTime |
//! | `ONB#<digest>`          | `ONB`    | one onboarding: the merchant a pre_auth_code was made for |
//! | `AUTHCODE#<digest>`     | `AUTH`   | one authorization code: claimed once, then what it registered |
//! | `ONBLINK#<digest>`      | `LINK`   | a one-time onboarding link an operator gave a merchant  |
//!
//! Codes are filed by their SHA-256, so the table never holds one WeChat would accept.

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::ids::{AppId, MerchantId, Secret};
use crate::items::{live, required};
use crate::store::{item, s, Attr, Check, Item, ItemExt, Key, Write};

pub const TICKET_SK: &str = "TICKET";
pub const TICKET: &str = "ticket";
pub const CREATED: &str = "created";
pub const ONB_SK: &str = "ONB";
pub const MERCHANT: &str = "merchant";
pub const BINDING: &str = "binding";
pub const TTL: &str = "ttl";
pub const AUTH_SK: &str = "AUTH";
pub const CLAIMED: &str = "claimed";
pub const APPS: &str = "apps";
/// The code was spent at WeChat but its app could not be registered (another tenant's).
pub const REFUSED: &str = "refused";

/// A code's name in the table and in links (the onboarding id is the pre_auth_code's).
pub fn digest(code: &str) -> String {
    hex::encode(&Sha256::digest(code.as_bytes())[..16])
}

pub fn ticket_key(component: &AppId) -> Key {
    Key::new(format!("CMP#{component}"), TICKET_SK)
}

pub struct Ticket {
    pub ticket: Secret,
    /// WeChat's CreateTime (seconds).
    pub created: i64,
}

impl Ticket {
    pub fn from_item(it: Option<&Item>) -> Option<Ticket> {
        let it = it?;
        Some(Ticket { ticket: Secret::new(it.s(TICKET)?), created: it.n(CREATED).unwrap_or(0) })
    }
}

/// Keeps `ticket` unless a newer one is stored: `seen` is what was read (its CreateTime).
pub fn keep_ticket(component: &AppId, ticket: &Secret, created: i64, seen: Option<i64>) -> Write {
    let cond = match seen {
        Some(c) => vec![Check::Eq(CREATED.into(), Attr::N(c))],
        None => vec![Check::NotExists],
    };
    Write::Put { item: item(&ticket_key(component), [(TICKET, s(ticket.expose())), (CREATED, Attr::N(created))]), cond }
}

pub fn onboarding_key(id: &str) -> Key {
    Key::new(format!("ONB#{id}"), ONB_SK)
}

/// `binding`: the digest of the cookie the browser that started the onboarding holds.
pub fn onboarding(id: &str, merchant: &MerchantId, binding: &str, ttl_secs: i64) -> Write {
    Write::Put {
        item: item(
            &onboarding_key(id),
            [(MERCHANT, s(merchant.as_str())), (BINDING, s(binding)), (TTL, Attr::N(ttl_secs))],
        ),
        cond: vec![Check::NotExists],
    }
}

/// An onboarding, while it lives: the merchant it is for and its browser's cookie digest.
pub struct Onboarding {
    pub merchant: MerchantId,
    pub binding: String,
}

pub fn onboarding_of(it: Option<Item>, now_secs: i64) -> Result<Option<Onboarding>, Error> {
    let Some(it) = live(it, TTL, now_secs) else { return Ok(None) };
    Ok(Some(Onboarding {
        merchant: required(&it, MERCHANT, MerchantId::parse)?,
        binding: it.s(BINDING).unwrap_or_default().to_owned(),
    }))
}

pub fn auth_code_key(code: &Secret) -> Key {
    Key::new(format!("AUTHCODE#{}", digest(code.expose())), AUTH_SK)
}

/// What an authorization code's item says.
pub enum AuthCode {
    /// Being registered by `claimed` (another request, or a holder that died).
    Claimed {
        merchant: MerchantId,
        claimed: String,
    },
    Done {
        merchant: MerchantId,
        apps: Vec<AppId>,
    },
    /// Spent, and refused: the app is another tenant's.
    Refused {
        merchant: MerchantId,
    },
}

impl AuthCode {
    pub fn from_item(it: Option<Item>, now_secs: i64) -> Result<Option<AuthCode>, Error> {
        let Some(it) = live(it, TTL, now_secs) else { return Ok(None) };
        let merchant = required(&it, MERCHANT, MerchantId::parse)?;
        if it.contains_key(REFUSED) {
            return Ok(Some(AuthCode::Refused { merchant }));
        }
        Ok(Some(match it.s(APPS) {
            Some(apps) => AuthCode::Done {
                merchant,
                apps: serde_json::from_str(apps).map_err(|_| Error::Internal("stored authorization apps".into()))?,
            },
            None => AuthCode::Claimed { merchant, claimed: it.s(CLAIMED).unwrap_or_default().to_owned() },
        }))
    }
}

/// Claims the code for one registration; refused when anyone claimed it before.
pub fn claim_auth_code(code: &Secret, merchant: &MerchantId, me: &str, ttl_secs: i64) -> Write {
    Write::Put {
        item: item(
            &auth_code_key(code),
            [(MERCHANT, s(merchant.as_str())), (CLAIMED, s(me)), (TTL, Attr::N(ttl_secs))],
        ),
        cond: vec![Check::NotExists],
    }
}

/// Gives the claim back: nothing was registered.
pub fn release_auth_code(code: &Secret, me: &str) -> Write {
    Write::Delete { key: auth_code_key(code), cond: vec![Check::Eq(CLAIMED.into(), s(me))] }
}

pub fn auth_code_refused(code: &Secret, me: &str) -> Write {
    Write::Update {
        key: auth_code_key(code),
        set: vec![(REFUSED.into(), Attr::N(1))],
        remove: vec![],
        cond: vec![Check::Eq(CLAIMED.into(), s(me))],
    }
}

pub fn auth_code_done(code: &Secret, me: &str, apps: &[AppId]) -> Write {
    Write::Update {
        key: auth_code_key(code),
        set: vec![(APPS.into(), s(serde_json::to_string(apps).unwrap_or_else(|_| "[]".into())))],
        remove: vec![],
        cond: vec![Check::Eq(CLAIMED.into(), s(me))],
    }
}

pub const LINK_SK: &str = "LINK";

pub fn link_key(token: &str) -> Key {
    Key::new(format!("ONBLINK#{}", digest(token)), LINK_SK)
}

pub fn link(token: &str, merchant: &MerchantId, ttl_secs: i64) -> Write {
    Write::Put {
        item: item(&link_key(token), [(MERCHANT, s(merchant.as_str())), (TTL, Attr::N(ttl_secs))]),
        cond: vec![Check::NotExists],
    }
}

/// Spends the link: once, for the merchant it was made for.
pub fn spend_link(token: &str, merchant: &MerchantId) -> Write {
    Write::Delete { key: link_key(token), cond: vec![Check::Eq(MERCHANT.into(), s(merchant.as_str()))] }
}
