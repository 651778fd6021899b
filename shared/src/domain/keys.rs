//! The item layout of the single table (ARCHITECTURE.md §3). Every key is built here.

use crate::ids::{AppId, OpenId, OpenPlatformId, PersonId, UnionId};
use crate::store::Key;

/// Who an (app, openid) is.
pub fn identity(appid: &AppId, openid: &OpenId) -> Key {
    Key::new(format!("ID#{appid}#{openid}"), "ID")
}

pub fn person_pk(person: &PersonId) -> String {
    format!("P#{person}")
}

/// The person item itself (created, merged_into, merging).
pub fn person(person: &PersonId) -> Key {
    Key::new(person_pk(person), "P")
}

/// Prefix of a person's memberships; one per app, so a person can never hold two openids
/// of one app (the key itself refuses it).
pub const MEMBERSHIP_PREFIX: &str = "A#";

pub fn membership(person: &PersonId, appid: &AppId) -> Key {
    Key::new(person_pk(person), format!("{MEMBERSHIP_PREFIX}{appid}"))
}

pub fn union(open_platform: &OpenPlatformId, unionid: &UnionId) -> Key {
    Key::new(format!("U#{open_platform}#{unionid}"), "U")
}

/// On the person, which unionids name it (so erasing the person finds them all).
pub const UNION_MARK_PREFIX: &str = "U#";

pub fn union_mark(person: &PersonId, open_platform: &OpenPlatformId, unionid: &UnionId) -> Key {
    Key::new(person_pk(person), format!("{UNION_MARK_PREFIX}{open_platform}#{unionid}"))
}

/// The union item a mark names.
pub fn union_of_mark(sk: &str) -> Option<Key> {
    let rest = sk.strip_prefix(UNION_MARK_PREFIX)?;
    let (op, uid) = rest.split_once('#')?;
    Some(Key::new(format!("U#{op}#{uid}"), "U"))
}

/// The session_key of a mini-program login, kept for the two-step userinfo call.
pub fn stash(appid: &AppId, openid: &OpenId) -> Key {
    Key::new(format!("STASH#{appid}#{openid}"), "T")
}

pub fn conflict(person: &PersonId, at_millis: i64, nonce: &str) -> Key {
    Key::new(format!("CONFLICT#{person}"), format!("C#{at_millis:013}#{nonce}"))
}

/// Marks, on the survivor, a person merged into it (so erasing the survivor finds it).
pub const ABSORBED_PREFIX: &str = "M#";

pub fn absorbed(winner: &PersonId, loser: &PersonId) -> Key {
    Key::new(person_pk(winner), format!("{ABSORBED_PREFIX}{loser}"))
}

/// A web-view ticket: single use, short life.
pub fn ticket(id: &str) -> Key {
    Key::new(format!("T#{id}"), "T")
}

/// An OAuth `state`: single use, short life.
pub fn state(id: &str) -> Key {
    Key::new(format!("N#{id}"), "N")
}

/// A scene-QR binding request: scene → site user.
pub fn scene(scene: &str) -> Key {
    Key::new(format!("SCENE#{scene}"), "S")
}

/// A spent login link (its nonce), kept until the link could no longer be valid anyway.
pub fn link_nonce(nonce: &str) -> Key {
    Key::new(format!("LINK#{nonce}"), "L")
}

/// A push already handled (WeChat retries within ~15 s).
pub fn push_seen(appid: &AppId, digest: &str) -> Key {
    Key::new(format!("MSG#{appid}#{digest}"), "MSG")
}
