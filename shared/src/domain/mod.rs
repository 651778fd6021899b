//! Association rules and flows. Pure domain: only the ports (store, WeChat, clock, ids).

pub mod admin;
pub mod assoc;
pub mod keys;
pub mod login;
pub mod translate;
pub mod webauth;
