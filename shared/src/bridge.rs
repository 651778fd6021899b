//! Everything a request needs, built once per cold start (Lambda) or once per process
//! (devstack): the ports, the registry, the token keys and the settings.

use std::sync::Arc;

use crate::domain::assoc::Assoc;
use crate::domain::translate::PersonCache;
use crate::error::Error;
use crate::ids::Secret;
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
    /// Where users' browsers go for web authorization (`WECHAT_OPEN_BASE`).
    pub open_base: String,
    /// Where QR images are shown (`WECHAT_MP_BASE`, `https://mp.weixin.qq.com`).
    pub mp_base: String,
    /// Signs follower login links (`WXBRIDGE_LINK_KEY`).
    pub link_key: Secret,
    /// How long a mini-program session_key is kept for the two-step userinfo call.
    pub stash_ttl_secs: i64,
}

impl Settings {
    pub fn from_env(link_key: Secret) -> Self {
        Settings {
            mp_base: std::env::var("WECHAT_MP_BASE")
                .unwrap_or_else(|_| "https://mp.weixin.qq.com".into())
                .trim_end_matches('/')
                .to_owned(),
            link_key,
            public_base: std::env::var("PUBLIC_BASE")
                .unwrap_or_else(|_| "http://127.0.0.1:8080".into())
                .trim_end_matches('/')
                .to_owned(),
            open_base: std::env::var("WECHAT_OPEN_BASE")
                .unwrap_or_else(|_| "https://open.weixin.qq.com".into())
                .trim_end_matches('/')
                .to_owned(),
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
    /// Per cold start: which person an (app, openid) is (translation's warm path).
    pub translations: PersonCache,
}

impl Bridge {
    pub fn assoc(&self) -> Assoc<'_> {
        Assoc { store: &*self.store, clock: &*self.clock, ids: &*self.ids }
    }

    /// The Lambda configuration: DynamoDB (`WXBRIDGE_TABLE`) or, without it, the embedded
    /// store; the registry and keys from the environment or SSM Parameter Store.
    pub async fn from_env() -> Result<Self, Error> {
        let aws = aws_config::load_from_env().await;
        let ssm = aws_sdk_ssm::Client::new(&aws);
        let store: Arc<dyn Store> = match std::env::var("WXBRIDGE_TABLE") {
            Ok(table) => Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table)),
            Err(_) => {
                tracing::warn!("WXBRIDGE_TABLE is not set: using the in-memory store");
                Arc::new(MemoryStore::new())
            }
        };
        let registry = match setting("WXBRIDGE_REGISTRY_JSON", &ssm).await? {
            Some(json) => Registry::from_json(&json)?,
            None => Registry::from_env()?,
        };
        // Without a table this is a local run: throwaway keys are fine there, never in AWS.
        let local = std::env::var("WXBRIDGE_TABLE").is_err();
        let link_key = match setting("WXBRIDGE_LINK_KEY", &ssm).await? {
            Some(k) if k.len() >= 32 => Secret::new(k),
            Some(_) => return Err(Error::Internal("WXBRIDGE_LINK_KEY must be 32 bytes or more".into())),
            None if local => Secret::new(hex::encode(rand::random::<[u8; 32]>())),
            None => return Err(Error::Internal("set WXBRIDGE_LINK_KEY or WXBRIDGE_LINK_KEY_SSM".into())),
        };
        let settings = Settings::from_env(link_key);
        let tokens = match setting("WXBRIDGE_SIGNING_KEYS", &ssm).await? {
            Some(json) => Tokens::from_json(&json, &settings.public_base, token_ttl())?,
            None if local => {
                tracing::warn!("WXBRIDGE_SIGNING_KEYS is not set: signing with a throwaway key");
                Tokens::ephemeral(&settings.public_base, token_ttl())?
            }
            None => return Err(Error::Internal("set WXBRIDGE_SIGNING_KEYS or WXBRIDGE_SIGNING_KEYS_SSM".into())),
        };
        Ok(Bridge {
            store,
            wechat: Arc::new(WeChatClient::new(WeChatConfig::from_env())?),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            registry: Arc::new(registry),
            tokens,
            settings,
            translations: PersonCache::default(),
        })
    }
}

/// A setting from the variable `name`, else from the SSM parameter (decrypted) that the
/// variable `<name>_SSM` names — how secrets reach a Lambda without sitting in its config.
async fn setting(name: &str, ssm: &aws_sdk_ssm::Client) -> Result<Option<String>, Error> {
    if let Ok(v) = std::env::var(name) {
        return Ok(Some(v));
    }
    let Ok(param) = std::env::var(format!("{name}_SSM")) else {
        return Ok(None);
    };
    let out = ssm.get_parameter().name(&param).with_decryption(true).send().await.map_err(|e| {
        Error::Internal(format!("SSM parameter {param}: {}", aws_sdk_ssm::error::DisplayErrorContext(&e)))
    })?;
    Ok(out.parameter.and_then(|p| p.value))
}

pub fn token_ttl() -> i64 {
    std::env::var("WXBRIDGE_TOKEN_TTL_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3600)
}
