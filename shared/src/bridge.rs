//! The composition root: the ports, the registry, the token keys and the URLs, built once per
//! cold start (Lambda) or once per process (devstack), and the use cases made from them. A use
//! case borrows only the ports it needs.

use std::sync::Arc;

use crate::component::Component;
use crate::directory::{CacheLife, Cached, Directory, StoreDirectory};
use crate::domain::access_token::Broker;
use crate::domain::admin::Admin;
use crate::domain::assoc::Assoc;
use crate::domain::component::Components;
use crate::domain::login::Login;
use crate::domain::push::Pushes;
use crate::domain::registrar::Registrar;
use crate::domain::scene::Scenes;
use crate::domain::sitelink::SiteLinks;
use crate::domain::translate::{PersonCache, Translator};
use crate::domain::webauth::WebAuth;
use crate::domain::Urls;
use crate::error::Error;
use crate::ids::Secret;
use crate::pairwise::Pairwise;
use crate::ports::{Clock, Ids, RandomIds, SystemClock};
use crate::registry::Registry;
use crate::session_seal::{derive, SessionSeal};
use crate::settings::{self, Mode, Settings, Source};
use crate::store::dynamo::DynamoStore;
use crate::store::memory::MemoryStore;
use crate::store::Store;
use crate::tokens::Tokens;
use crate::vault::{KmsKey, LocalKey, Vault, LOCAL_DEV_KEY};
use crate::wechat::client::WeChatClient;
use crate::wechat::{NoWeChat, WeChat};

/// How operators' requests (identity-api) are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAuth {
    /// The registry's admin key as a bearer credential (devstack, local runs).
    Key,
    /// Only requests API Gateway authorized with IAM (SigV4); no bearer key is accepted.
    Iam,
}

pub struct Bridge {
    admin_auth: AdminAuth,
    store: Arc<dyn Store>,
    wechat: Arc<dyn WeChat>,
    component: Option<Arc<Component>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn Ids>,
    directory: Arc<dyn Directory>,
    /// Only in the functions that open or write the registry's secrets.
    vault: Option<Vault>,
    pairwise: Pairwise,
    sessions: SessionSeal,
    tokens: Tokens,
    urls: Urls,
    /// Only in the functions that sign or check login links.
    link_key: Option<Secret>,
    stash_ttl_secs: i64,
    /// Per cold start: which person an (app, openid) is (translation's warm path).
    translations: PersonCache,
}

impl Bridge {
    /// A bridge with test defaults for every part not given: the embedded store, no WeChat
    /// (every call answers `wechat_unavailable`), the system clock, random ids, an empty
    /// registry, a throwaway signing key and link key, local URLs.
    pub fn builder() -> BridgeBuilder {
        BridgeBuilder::default()
    }

    /// The Lambda configuration: everything [`Settings`] names, secrets fetched in one
    /// batched SSM call when any lives there.
    pub async fn from_settings(s: &Settings) -> Result<Self, Error> {
        let mut b = Bridge::builder()
            .urls(s.urls.clone())
            .stash_ttl_secs(s.stash_ttl_secs)
            .wechat(Arc::new(WeChatClient::new(s.wechat.clone())?));
        let needs_aws = s.table.is_some() || !s.ssm_names().is_empty() || s.kms_key_id.is_some();
        let aws = if needs_aws { Some(aws_config::load_from_env().await) } else { None };
        let ssm = match &aws {
            Some(aws) if !s.ssm_names().is_empty() => fetch_ssm(aws, &s.ssm_names()).await?,
            _ => Default::default(),
        };
        let resolve = |src: &Source| -> Result<Option<String>, Error> {
            Ok(match src {
                Source::Value(v) => Some(v.expose().to_owned()),
                Source::Ssm(p) => {
                    Some(ssm.get(p).cloned().ok_or_else(|| Error::Internal(format!("SSM parameter {p} is missing")))?)
                }
                Source::File(path) => Some(
                    std::fs::read_to_string(path).map_err(|e| Error::Internal(format!("cannot read {path}: {e}")))?,
                ),
                Source::Unset => None,
            })
        };
        let store: Arc<dyn Store> = match (&s.table, &aws) {
            (Some(table), Some(aws)) => Arc::new(DynamoStore::new(DynamoStore::client(aws), table.clone())),
            _ => {
                tracing::warn!("WXBRIDGE_TABLE is not set: using the in-memory store");
                Arc::new(MemoryStore::new())
            }
        };
        let vault = match (&s.kms_key_id, &aws, s.mode) {
            (Some(k), Some(aws), _) => Some(Vault::new(Arc::new(KmsKey::new(aws, k)))),
            (None, _, Mode::Local) => Some(Vault::new(Arc::new(match resolve(&s.local_key)? {
                Some(hex_key) => LocalKey::from_hex("local", &hex_key)?,
                None => LocalKey::new("local", LOCAL_DEV_KEY),
            }))),
            _ => None,
        };
        b = b
            .store(store.clone())
            .vault(vault.clone())
            .directory(Arc::new(Cached::new(StoreDirectory { store, vault }, CacheLife::LAMBDA)));
        // Only the functions that show tenants a person or seal sessions get a seal key.
        b = match (resolve(&s.seal_key)?, s.mode) {
            (Some(k), _) => b.seal_key(Some(Secret::new(k))),
            (None, Mode::Local) => b.seal_key(Some(Secret::new(hex::encode(LOCAL_DEV_KEY)))),
            (None, Mode::Aws) => b.seal_key(None),
        };
        // Throwaway keys are fine for a local run, never in AWS; a function that needs no link
        // key is given none.
        b = match resolve(&s.link_key)? {
            Some(k) if k.len() >= 32 => b.link_key(Some(Secret::new(k))),
            Some(_) => return Err(Error::Internal("WXBRIDGE_LINK_KEY must be 32 bytes or more".into())),
            None if s.mode == Mode::Local => b,
            None => b.link_key(None),
        };
        // Only mp-login signs; the authorizer verifies with the published keys; the rest need none.
        let (issuer, ttl) = (&s.urls.public_base, s.token_ttl_secs);
        b = match (resolve(&s.signing_keys)?, resolve(&s.jwks)?) {
            (Some(json), _) => b.tokens(Tokens::from_json(&json, issuer, ttl)?),
            (None, Some(jwks)) => b.tokens(Tokens::from_jwks(&jwks, issuer, ttl)?),
            (None, None) if s.mode == Mode::Local => {
                tracing::warn!("WXBRIDGE_SIGNING_KEYS is not set: signing with a throwaway key");
                b.tokens(Tokens::ephemeral(issuer, ttl)?)
            }
            (None, None) => b.tokens(Tokens::none(issuer, ttl)),
        };
        if let Some(c) = &s.component {
            let part = |src: &Source, name: &str| -> Result<Secret, Error> {
                resolve(src)?.map(Secret::new).ok_or_else(|| Error::Internal(format!("{name} is not set")))
            };
            b = b.component(Some(
                Component::new(
                    &c.appid,
                    part(&c.secret, "WXBRIDGE_COMPONENT_SECRET")?,
                    part(&c.token, "WXBRIDGE_COMPONENT_TOKEN")?,
                    &part(&c.encoding_aes_key, "WXBRIDGE_COMPONENT_AES_KEY")?,
                )
                .map_err(|e| Error::Internal(e.detail()))?,
            ));
        }
        // Operators: IAM in AWS (API Gateway checked the caller); the admin key locally.
        let bridge = b
            .admin_auth(match s.mode {
                Mode::Aws => AdminAuth::Iam,
                Mode::Local => AdminAuth::Key,
            })
            .build()?;
        // A local run may seed its (embedded) store; in AWS the registry is only in the table.
        if let Some(seed) = resolve(&s.registry)? {
            bridge.registrar()?.import(&Registry::from_json(&seed)?).await?;
        }
        Ok(bridge)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn directory(&self) -> &dyn Directory {
        &*self.directory
    }
    pub fn pairwise(&self) -> &Pairwise {
        &self.pairwise
    }
    /// Changes the registry (apps with secrets only where they can be sealed).
    pub fn registrar(&self) -> Result<Registrar<'_>, Error> {
        Ok(Registrar {
            store: &*self.store,
            vault: self.vault.as_ref(),
            directory: &*self.directory,
            clock: &*self.clock,
        })
    }
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
    pub fn urls(&self) -> &Urls {
        &self.urls
    }
    pub fn admin_auth(&self) -> AdminAuth {
        self.admin_auth
    }

    pub fn assoc(&self) -> Assoc<'_> {
        Assoc { store: &*self.store, clock: &*self.clock, ids: &*self.ids }
    }
    pub fn login(&self) -> Login<'_> {
        Login {
            assoc: self.assoc(),
            broker: self.broker(),
            apps: &*self.directory,
            tokens: &self.tokens,
            pairwise: &self.pairwise,
            sessions: &self.sessions,
            stash_ttl_secs: self.stash_ttl_secs,
        }
    }
    pub fn webauth(&self) -> WebAuth<'_> {
        WebAuth { assoc: self.assoc(), broker: self.broker(), apps: &*self.directory, urls: &self.urls }
    }
    pub fn broker(&self) -> Broker<'_> {
        Broker {
            store: &*self.store,
            wechat: &*self.wechat,
            clock: &*self.clock,
            ids: &*self.ids,
            component: self.component.as_deref(),
        }
    }
    pub fn component(&self) -> Option<&Component> {
        self.component.as_deref()
    }
    pub fn scenes(&self) -> Scenes<'_> {
        Scenes {
            assoc: self.assoc(),
            broker: self.broker(),
            apps: &*self.directory,
            urls: &self.urls,
            pairwise: &self.pairwise,
        }
    }
    pub fn site_links(&self) -> SiteLinks<'_> {
        SiteLinks {
            assoc: self.assoc(),
            apps: &*self.directory,
            link_key: self.link_key.as_ref(),
            urls: &self.urls,
            pairwise: &self.pairwise,
        }
    }
    pub fn pushes(&self) -> Pushes<'_> {
        Pushes { apps: &*self.directory, scenes: self.scenes(), links: self.site_links() }
    }
    pub fn translator(&self) -> Translator<'_> {
        Translator { assoc: self.assoc(), apps: &*self.directory, cache: &self.translations, pairwise: &self.pairwise }
    }
    pub fn components(&self) -> Result<Components<'_>, Error> {
        Ok(Components { broker: self.broker(), registrar: self.registrar()?, apps: &*self.directory, urls: &self.urls })
    }
    pub fn admin(&self) -> Admin<'_> {
        Admin { assoc: self.assoc(), apps: &*self.directory, cache: Some(&self.translations) }
    }
}

/// The decrypted values of SSM parameters, read in one call.
async fn fetch_ssm(
    aws: &aws_config::SdkConfig,
    names: &[&str],
) -> Result<std::collections::HashMap<String, String>, Error> {
    let ssm = aws_sdk_ssm::Client::new(aws);
    let out = ssm
        .get_parameters()
        .set_names(Some(names.iter().map(|n| (*n).to_owned()).collect()))
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| Error::Internal(format!("SSM GetParameters: {}", aws_sdk_ssm::error::DisplayErrorContext(&e))))?;
    if let Some(missing) = out.invalid_parameters().first() {
        return Err(Error::Internal(format!("SSM parameter {missing} is missing")));
    }
    Ok(out.parameters().iter().filter_map(|p| Some((p.name()?.to_owned(), p.value()?.to_owned()))).collect())
}

#[derive(Default)]
pub struct BridgeBuilder {
    admin_auth: Option<AdminAuth>,
    store: Option<Arc<dyn Store>>,
    wechat: Option<Arc<dyn WeChat>>,
    clock: Option<Arc<dyn Clock>>,
    ids: Option<Arc<dyn Ids>>,
    directory: Option<Arc<dyn Directory>>,
    vault: Option<Option<Vault>>,
    seal_key: Option<Option<Secret>>,
    tokens: Option<Tokens>,
    urls: Option<Urls>,
    link_key: Option<Option<Secret>>,
    stash_ttl_secs: Option<i64>,
    component: Option<Component>,
}

impl BridgeBuilder {
    pub fn admin_auth(mut self, a: AdminAuth) -> Self {
        self.admin_auth = Some(a);
        self
    }
    pub fn store(mut self, s: Arc<dyn Store>) -> Self {
        self.store = Some(s);
        self
    }
    pub fn wechat(mut self, w: Arc<dyn WeChat>) -> Self {
        self.wechat = Some(w);
        self
    }
    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = Some(c);
        self
    }
    pub fn ids(mut self, i: Arc<dyn Ids>) -> Self {
        self.ids = Some(i);
        self
    }
    /// The seed document as the registry, read-only (unit tests).
    pub fn registry(mut self, r: Registry) -> Self {
        self.directory = Some(Arc::new(r));
        self
    }
    pub fn directory(mut self, d: Arc<dyn Directory>) -> Self {
        self.directory = Some(d);
        self
    }
    pub fn vault(mut self, v: Option<Vault>) -> Self {
        self.vault = Some(v);
        self
    }
    /// `None`: the function has no seal key (it shows no tenant a person).
    pub fn seal_key(mut self, k: Option<Secret>) -> Self {
        self.seal_key = Some(k);
        self
    }
    pub fn tokens(mut self, t: Tokens) -> Self {
        self.tokens = Some(t);
        self
    }
    pub fn urls(mut self, u: Urls) -> Self {
        self.urls = Some(u);
        self
    }
    pub fn link_key(mut self, k: Option<Secret>) -> Self {
        self.link_key = Some(k);
        self
    }
    pub fn stash_ttl_secs(mut self, secs: i64) -> Self {
        self.stash_ttl_secs = Some(secs);
        self
    }
    /// The platform's third-party platform, when merchants authorize it.
    pub fn component(mut self, c: Option<Component>) -> Self {
        self.component = c;
        self
    }

    pub fn build(self) -> Result<Bridge, Error> {
        let urls = self.urls.unwrap_or_else(|| Urls {
            public_base: settings::DEFAULT_PUBLIC_BASE.into(),
            open_base: settings::DEFAULT_PUBLIC_BASE.into(),
            mp_base: settings::DEFAULT_PUBLIC_BASE.into(),
            component_appid: None,
        });
        let tokens = match self.tokens {
            Some(t) => t,
            None => Tokens::ephemeral(&urls.public_base, settings::DEFAULT_TOKEN_TTL_SECS)?,
        };
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let vault = self.vault.unwrap_or_else(|| Some(Vault::ephemeral()));
        let directory = self.directory.unwrap_or_else(|| {
            Arc::new(Cached::new(StoreDirectory { store: store.clone(), vault: vault.clone() }, CacheLife::LAMBDA))
        });
        let seal_key = self.seal_key.unwrap_or_else(|| Some(Secret::new(hex::encode(rand::random::<[u8; 32]>()))));
        Ok(Bridge {
            admin_auth: self.admin_auth.unwrap_or(AdminAuth::Key),
            store,
            directory,
            vault,
            pairwise: seal_key.as_ref().map_or_else(Pairwise::none, |k| Pairwise::new(derive(k, "pairwise/v1"))),
            sessions: seal_key.as_ref().map_or_else(SessionSeal::none, SessionSeal::new),
            wechat: self.wechat.unwrap_or_else(|| Arc::new(NoWeChat)),
            component: self.component.map(Arc::new),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            ids: self.ids.unwrap_or_else(|| Arc::new(RandomIds)),
            tokens,
            urls,
            link_key: self.link_key.unwrap_or_else(|| Some(Secret::new(hex::encode(rand::random::<[u8; 32]>())))),
            stash_ttl_secs: self.stash_ttl_secs.unwrap_or(settings::DEFAULT_STASH_TTL_SECS),
            translations: PersonCache::default(),
        })
    }
}
