//! Everything a request needs, built once per cold start (Lambda) or once per process
//! (devstack): the ports, the registry, the token keys and the settings.

use std::sync::Arc;

use crate::domain::assoc::Assoc;
use crate::error::Error;
use crate::ports::{Clock, Ids, RandomIds, SystemClock};
use crate::registry::Registry;
use crate::store::dynamo::DynamoStore;
use crate::store::memory::MemoryStore;
use crate::store::Store;
use crate::tokens::Tokens;
use crate::wechat::client::{WeChatClient, WeChatConfig};
use crate::wechat::WeChat;

#[derive(Clone, Debug)]
pub struct Settings {
    /// The bridge's public origin (the fused domain).
    pub public_base: String,
    /// How long a mini-program session_key is kept for the two-step userinfo call.
    pub stash_ttl_secs: i64,
}

impl Settings {
    pub fn from_env() -> Self {
        Settings {
            public_base: std::env::var("PUBLIC_BASE").unwrap_or_else(|_| "http://127.0.0.1:8080".into()),
            stash_ttl_secs: std::env::var("WXBRIDGE_STASH_TTL_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(600),
        }
    }
}

pub struct Bridge {
    pub store: Arc<dyn Store>,
    pub wechat: Arc<dyn WeChat>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn Ids>,
    pub registry: Arc<Registry>,
    pub tokens: Tokens,
    pub settings: Settings,
}

impl Bridge {
    pub fn assoc(&self) -> Assoc<'_> {
        Assoc { store: &*self.store, clock: &*self.clock, ids: &*self.ids }
    }

    /// The Lambda configuration: DynamoDB (`WXBRIDGE_TABLE`) or, without it, the embedded
    /// store; the registry and token key from the environment.
    pub async fn from_env() -> Result<Self, Error> {
        let store: Arc<dyn Store> = if std::env::var("WXBRIDGE_TABLE").is_ok() {
            Arc::new(DynamoStore::from_env().await?)
        } else {
            tracing::warn!("WXBRIDGE_TABLE is not set: using the in-memory store");
            Arc::new(MemoryStore::new())
        };
        let key = std::env::var("WXBRIDGE_TOKEN_KEY")
            .map_err(|_| Error::Internal("set WXBRIDGE_TOKEN_KEY (32 bytes or more)".into()))?;
        Ok(Bridge {
            store,
            wechat: Arc::new(WeChatClient::new(WeChatConfig::from_env())?),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            registry: Arc::new(Registry::from_env()?),
            tokens: Tokens::new(key.as_bytes(), token_ttl())?,
            settings: Settings::from_env(),
        })
    }
}

pub fn token_ttl() -> i64 {
    std::env::var("WXBRIDGE_TOKEN_TTL_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3600)
}
