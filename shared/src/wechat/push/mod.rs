//! WeChat server push (WECHAT_CONTRACT.md §5): the signatures, safe mode (WXBizMsgCrypt:
//! AES-256-CBC, IV = key[..16], PKCS#7 with 32-byte blocks), the event XML and passive replies.
//!
//! Everything here is pure: the push handler reads the query and the body, calls these, and
//! answers. Hostile bodies are refused without panicking; no entity is ever expanded.

mod crypt;
mod reply;
mod signature;
mod xml;

pub use crypt::PushCrypto;
pub use reply::text_reply;
pub use signature::{sha1_sorted, verify_msg_signature, verify_signature};
pub use xml::{parse, parse_event, PushMessage};

/// The largest push body we read. WeChat's XML pushes are a few hundred bytes; safe mode's
/// compatibility flavour is about three times that.
pub const MAX_PUSH_BODY: usize = 64 * 1024;
