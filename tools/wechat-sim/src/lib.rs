//! wechat-sim: an independent simulator of WeChat's servers for local runs and tests.
//!
//! It answers WeChat's own paths (`/sns/jscode2session`, OA web authorization at
//! `/connect/oauth2/authorize`, `/sns/oauth2/access_token`, `/sns/userinfo`, website QR login at
//! `/connect/qrconnect`, `/cgi-bin/token`, `/cgi-bin/stable_token`, `/cgi-bin/qrcode/create`,
//! `/cgi-bin/showqrcode`, `/cgi-bin/message/custom/send`) with WeChat's field names, error codes
//! and crypto, pushes events to official accounts' URLs as WeChat's servers do (signed, encrypted
//! in safe mode, retried, passive replies read back), and has a `/sim/*` control surface that
//! plays the user's WeChat client (`wx.login`, `wx.getUserInfo`, consent switches, QR scans, menu
//! clicks, follows, app login), tells the truth about identities and received messages, moves the
//! clock, counts calls and injects faults. It deliberately shares no code with the bridge.
//!
//! It also plays WeChat towards a third-party platform (第三方平台, "component"): it pushes
//! `component_verify_ticket`s to the platform's events URL (at once with
//! `POST /sim/component/ticket`, every 10 simulated minutes with [`Sim::spawn_ticket_timer`]),
//! answers `/cgi-bin/component/*` (component token, pre-auth codes, query_auth, authorizer
//! tokens with rotating refresh tokens, authorizer info), renders the authorization pages on
//! which a merchant approves its `"auth": "component"` apps (`POST /sim/merchants/{m}/authorize`
//! plays the click), pushes `authorized` / `unauthorized` events, logs authorized mini programs
//! in (`/sns/component/jscode2session`) and runs OA web authorization with `component_appid`,
//! and routes pushes of authorized OAs to the platform's message URL, sealed with its key. The
//! platform comes from the registry's `component` section or `PUT /sim/component`
//! ([`Sim::set_component`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wechat_sim::{Registry, Sim, SimConfig};
//! let sim = Sim::new(SimConfig::new(Registry::from_file("config/demo-apps.json")?));
//! let app = sim.router(); // axum::Router<()>: merge it with other routes on one origin
//! # let _ = app; Ok(()) }
//! ```

pub mod control;
pub mod crypto;
pub mod ids;
pub mod registry;
pub mod sim;
pub mod wechat;

use std::sync::Arc;

pub use control::{acting_user, ActingUser, ApiError};
pub use registry::{App, AppKind, AuthMode, ComponentConfig, Registry, RegistryError};
pub use sim::{
    AccessToken, AuthorizeError, AuthorizeRequest, Authorized, Code2Session, ComponentToken, CsMessage, EventPush,
    Fault, Identity, PreAuthCode, Profile, PushAttempt, PushOutcome, PushRecord, PushStatus, QrTicket, ScanResult, Sim,
    SimConfig, SimError, SnsUserInfo, Switches, SwitchesUpdate, TicketPush, UnionIdMode, UserInfoBundle,
    WebAccessToken, WebScope,
};

impl Sim {
    /// Every WeChat path plus the `/sim/*` control surface, state applied (`Router<()>`).
    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .merge(wechat::routes(Arc::clone(self)))
            .merge(control::routes())
            .with_state(Arc::clone(self))
    }
}
