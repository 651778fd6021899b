//! Association rules and flows. Pure domain: only the ports (store, WeChat, clock, ids). Each
//! flow is a use case that holds only the ports it needs (`Login`, `WebAuth`, `Scenes`, …).

pub mod access_token;
pub mod admin;
pub mod assoc;
pub mod component;
pub mod login;
pub mod push;
pub mod registrar;
pub mod scene;
pub mod sitelink;
pub mod translate;
pub mod views;
pub mod webauth;

/// Where the bridge and WeChat are, as users' browsers and WeChat see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Urls {
    /// The bridge's public origin (the fused domain).
    pub public_base: String,
    /// Where users' browsers go for web authorization (`WECHAT_OPEN_BASE`).
    pub open_base: String,
    /// Where QR images are shown and merchants authorize the platform (`WECHAT_MP_BASE`).
    pub mp_base: String,
    /// The platform's third-party platform, named in the authorize URL of the accounts it acts for.
    pub component_appid: Option<crate::ids::AppId>,
}
