//! Association rules and flows. Pure domain: only the ports (store, WeChat, clock, ids).

pub mod access_token;
pub mod admin;
pub mod assoc;
pub mod keys;
pub mod login;
pub mod push;
pub mod scene;
pub mod sitelink;
pub mod translate;
pub mod webauth;
