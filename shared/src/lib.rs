//! wxbridge's common crate: ids, association rules, store and WeChat ports with their
//! adapters, crypto, tokens, and the HTTP edge. Domain modules know nothing of Lambda or AWS.

pub mod bridge;
pub mod component;
pub mod crypto;
pub mod directory;
pub mod domain;
pub mod error;
pub mod http;
pub mod ids;
pub mod items;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod metrics;
pub mod model;
pub mod pairwise;
pub mod ports;
pub mod registry;
pub mod routes;
pub mod session_seal;
pub mod settings;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tokens;
pub mod vault;
pub mod wechat;

pub use bridge::Bridge;
pub use error::Error;
