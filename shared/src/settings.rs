//! The whole configuration surface, read once from the environment and checked: a bad value is
//! an error at cold start, never a silent default. Secrets are named here (a value, an SSM
//! SecureString or a file) and fetched when the bridge is built.

use std::time::Duration;

use crate::domain::Urls;
use crate::error::Error;
use crate::ids::Secret;
use crate::wechat::client::WeChatConfig;

/// Where the bridge runs. `aws` insists on a table and real keys; `local` (devstack, cargo
/// lambda watch) accepts the embedded store and throwaway keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Local,
    Aws,
}

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The value itself, from the variable.
    Value(Secret),
    /// An SSM SecureString parameter of this name (decrypted at cold start).
    Ssm(String),
    /// A file of this path (the registry only).
    File(String),
    Unset,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// `WXBRIDGE_MODE`: `local` or `aws` (the default).
    pub mode: Mode,
    /// `WXBRIDGE_TABLE`: the DynamoDB table; required in `aws`, the embedded store without it.
    pub table: Option<String>,
    /// `PUBLIC_BASE`, `WECHAT_OPEN_BASE`, `WECHAT_MP_BASE`.
    pub urls: Urls,
    /// `WECHAT_API_BASE`, `WECHAT_OPEN_BASE`, `WECHAT_TIMEOUT_MS`.
    pub wechat: WeChatConfig,
    /// `WXBRIDGE_TOKEN_TTL_SECS`: bridge-token life.
    pub token_ttl_secs: i64,
    /// `WXBRIDGE_STASH_TTL_SECS`: how long a session_key is kept for the userinfo call.
    pub stash_ttl_secs: i64,
    /// `WXBRIDGE_REGISTRY_JSON` or `WXBRIDGE_REGISTRY` (a file): local mode only, a seed
    /// imported into the store at start. In AWS the registry lives in the table
    /// (`wxbridge registry import`, the admin API).
    pub registry: Source,
    /// `WXBRIDGE_KMS_KEY_ID`: the KMS key the registry's secrets are sealed under. A function
    /// without it never opens a secret (and needs no KMS permission).
    pub kms_key_id: Option<String>,
    /// `WXBRIDGE_LOCAL_KEY` (64 hex): local mode's key for the registry's secrets instead of
    /// KMS; a fixed development key when unset.
    pub local_key: Source,
    /// `WXBRIDGE_SEAL_KEY` or `WXBRIDGE_SEAL_KEY_SSM`: the server key that pairwise person ids
    /// and the session_key sealed into a bridge token derive from. In `aws` only the functions
    /// that show a tenant a person or seal sessions have it.
    pub seal_key: Source,
    /// `WXBRIDGE_SIGNING_KEYS` or `WXBRIDGE_SIGNING_KEYS_SSM`.
    pub signing_keys: Source,
    /// `WXBRIDGE_LINK_KEY` or `WXBRIDGE_LINK_KEY_SSM`.
    pub link_key: Source,
    /// `WXBRIDGE_JWKS` or `WXBRIDGE_JWKS_SSM`: the public keys, for a function that verifies
    /// bridge tokens without the signing keys (the translate authorizer).
    pub jwks: Source,
    /// `WXBRIDGE_COMPONENT_APPID` with `WXBRIDGE_COMPONENT_SECRET`, `WXBRIDGE_COMPONENT_TOKEN`
    /// and `WXBRIDGE_COMPONENT_AES_KEY` (each a value or `…_SSM`): the platform's third-party
    /// platform, in the functions that act for component apps. The appid alone names it in
    /// authorize URLs (`urls.component_appid`).
    pub component: Option<ComponentSettings>,
}

#[derive(Clone, Debug)]
pub struct ComponentSettings {
    pub appid: String,
    pub secret: Source,
    pub token: Source,
    pub encoding_aes_key: Source,
}

pub const DEFAULT_PUBLIC_BASE: &str = "http://127.0.0.1:8080";
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
pub const DEFAULT_OPEN_BASE: &str = "https://open.weixin.qq.com";
pub const DEFAULT_MP_BASE: &str = "https://mp.weixin.qq.com";
pub const DEFAULT_TOKEN_TTL_SECS: i64 = 3600;
pub const DEFAULT_STASH_TTL_SECS: i64 = 600;
pub const DEFAULT_WECHAT_TIMEOUT_MS: u64 = 2500;

fn bad(name: &str, why: &str) -> Error {
    Error::Internal(format!("{name}: {why}"))
}

impl Settings {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// The settings from any source of variables (tests pass a map).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        let mode = match var("WXBRIDGE_MODE").as_deref() {
            None | Some("aws") => Mode::Aws,
            Some("local") => Mode::Local,
            Some(_) => return Err(bad("WXBRIDGE_MODE", "must be local or aws")),
        };
        let base = |k: &str, default: &str| -> Result<String, Error> {
            let v = var(k).unwrap_or_else(|| default.to_owned());
            let u = url::Url::parse(&v).map_err(|_| bad(k, "must be an http(s) URL"))?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(bad(k, "must be an http(s) URL"));
            }
            Ok(v.trim_end_matches('/').to_owned())
        };
        let positive = |k: &str, default: i64| -> Result<i64, Error> {
            match var(k) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| bad(k, "must be a positive integer")),
            }
        };
        let secret = |k: &str| -> Source {
            match (var(k), var(&format!("{k}_SSM"))) {
                (Some(v), _) => Source::Value(Secret::new(v)),
                (None, Some(p)) => Source::Ssm(p),
                (None, None) => Source::Unset,
            }
        };
        // A part of the third-party platform that must come with its secret.
        let secret_of = |k: &str| -> Result<Source, Error> {
            match secret(k) {
                Source::Unset => Err(bad(k, "is required with WXBRIDGE_COMPONENT_SECRET")),
                s => Ok(s),
            }
        };
        let table = var("WXBRIDGE_TABLE");
        if mode == Mode::Aws && table.is_none() {
            return Err(bad("WXBRIDGE_TABLE", "is required when WXBRIDGE_MODE is aws"));
        }
        if mode == Mode::Aws && var("PUBLIC_BASE").is_none() {
            return Err(bad("PUBLIC_BASE", "is required when WXBRIDGE_MODE is aws"));
        }
        let open_base = base("WECHAT_OPEN_BASE", DEFAULT_OPEN_BASE)?;
        let timeout_ms = positive("WECHAT_TIMEOUT_MS", DEFAULT_WECHAT_TIMEOUT_MS as i64)? as u64;
        let registry = match (var("WXBRIDGE_REGISTRY_JSON"), var("WXBRIDGE_REGISTRY")) {
            (Some(v), _) => Source::Value(Secret::new(v)),
            (None, Some(path)) => Source::File(path),
            (None, None) => Source::Unset,
        };
        if mode == Mode::Aws && (registry != Source::Unset || var("WXBRIDGE_REGISTRY_JSON_SSM").is_some()) {
            return Err(bad(
                "WXBRIDGE_REGISTRY",
                "the registry lives in the table in aws mode: import the document with `wxbridge registry import`",
            ));
        }
        let seal_key = secret("WXBRIDGE_SEAL_KEY");
        Ok(Settings {
            mode,
            table,
            urls: Urls {
                public_base: base("PUBLIC_BASE", DEFAULT_PUBLIC_BASE)?,
                open_base: open_base.clone(),
                mp_base: base("WECHAT_MP_BASE", DEFAULT_MP_BASE)?,
                component_appid: match var("WXBRIDGE_COMPONENT_APPID") {
                    Some(a) => Some(
                        crate::ids::AppId::parse(&a).map_err(|_| bad("WXBRIDGE_COMPONENT_APPID", "is not an appid"))?,
                    ),
                    None => None,
                },
            },
            wechat: WeChatConfig {
                api_base: base("WECHAT_API_BASE", DEFAULT_API_BASE)?,
                open_base,
                timeout: Duration::from_millis(timeout_ms),
                attempts: 3,
                backoff: Duration::from_millis(100),
            },
            token_ttl_secs: positive("WXBRIDGE_TOKEN_TTL_SECS", DEFAULT_TOKEN_TTL_SECS)?,
            stash_ttl_secs: positive("WXBRIDGE_STASH_TTL_SECS", DEFAULT_STASH_TTL_SECS)?,
            registry,
            kms_key_id: var("WXBRIDGE_KMS_KEY_ID"),
            local_key: secret("WXBRIDGE_LOCAL_KEY"),
            seal_key,
            signing_keys: secret("WXBRIDGE_SIGNING_KEYS"),
            link_key: secret("WXBRIDGE_LINK_KEY"),
            jwks: secret("WXBRIDGE_JWKS"),
            // Only the functions that act for component apps get the platform's secrets; the
            // others know only its appid (for authorize URLs).
            component: match (var("WXBRIDGE_COMPONENT_APPID"), secret("WXBRIDGE_COMPONENT_SECRET")) {
                (Some(appid), secret @ (Source::Value(_) | Source::Ssm(_))) => Some(ComponentSettings {
                    appid,
                    secret,
                    token: secret_of("WXBRIDGE_COMPONENT_TOKEN")?,
                    encoding_aes_key: secret_of("WXBRIDGE_COMPONENT_AES_KEY")?,
                }),
                (None, Source::Value(_) | Source::Ssm(_)) => {
                    return Err(bad("WXBRIDGE_COMPONENT_SECRET", "is set without WXBRIDGE_COMPONENT_APPID"))
                }
                _ => None,
            },
        })
    }

    /// The SSM parameters named, for one batched read at cold start.
    pub fn ssm_names(&self) -> Vec<&str> {
        let component = self.component.iter().flat_map(|c| [&c.secret, &c.token, &c.encoding_aes_key]);
        [&self.signing_keys, &self.link_key, &self.jwks, &self.seal_key]
            .into_iter()
            .chain(component)
            .filter_map(|s| match s {
                Source::Ssm(p) => Some(p.as_str()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, Error> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Settings::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn aws_mode_is_the_default_and_needs_a_table_and_an_origin() {
        assert!(from(&[]).is_err());
        assert!(from(&[("WXBRIDGE_TABLE", "t")]).is_err());
        let aws =
            [("WXBRIDGE_TABLE", "t"), ("PUBLIC_BASE", "https://id.example.com/"), ("WXBRIDGE_SEAL_KEY_SSM", "/k")];
        assert_eq!(from(&aws[..2]).unwrap().seal_key, Source::Unset, "a function may have no seal key");
        let s = from(&aws).unwrap();
        assert_eq!((s.mode, s.urls.public_base.as_str()), (Mode::Aws, "https://id.example.com"));
        let mut seeded = aws.to_vec();
        seeded.push(("WXBRIDGE_REGISTRY", "apps.json"));
        assert!(from(&seeded).is_err(), "aws reads the registry from the table, not a file");
        let local = from(&[("WXBRIDGE_MODE", "local")]).unwrap();
        assert_eq!((local.mode, local.table, local.stash_ttl_secs), (Mode::Local, None, DEFAULT_STASH_TTL_SECS));
    }

    #[test]
    fn bad_values_are_errors_not_defaults() {
        let local = [("WXBRIDGE_MODE", "local")];
        for (k, v) in [
            ("WXBRIDGE_MODE", "lambda"),
            ("WXBRIDGE_STASH_TTL_SECS", "ten"),
            ("WXBRIDGE_TOKEN_TTL_SECS", "-1"),
            ("WECHAT_TIMEOUT_MS", "2s"),
            ("PUBLIC_BASE", "id.example.com"),
            ("WECHAT_API_BASE", "ftp://x"),
        ] {
            let mut pairs = local.to_vec();
            pairs.push((k, v));
            assert!(from(&pairs).is_err(), "{k}={v} was accepted");
        }
    }

    #[test]
    fn the_third_party_platform_comes_whole_or_as_its_appid_alone() {
        let local = ("WXBRIDGE_MODE", "local");
        let appid = ("WXBRIDGE_COMPONENT_APPID", "wxc0ffee0000000c01");
        let named = from(&[local, appid]).unwrap();
        assert!(named.component.is_none(), "the appid alone: authorize URLs only");
        assert_eq!(named.urls.component_appid.as_ref().map(|a| a.as_str()), Some("wxc0ffee0000000c01"));
        let secret = ("WXBRIDGE_COMPONENT_SECRET_SSM", "/wx/c/secret");
        assert!(from(&[local, appid, secret]).is_err(), "a secret without its token and key");
        let whole = from(&[
            local,
            appid,
            secret,
            ("WXBRIDGE_COMPONENT_TOKEN_SSM", "/wx/c/token"),
            ("WXBRIDGE_COMPONENT_AES_KEY_SSM", "/wx/c/key"),
        ])
        .unwrap();
        assert_eq!(whole.ssm_names(), ["/wx/c/secret", "/wx/c/token", "/wx/c/key"]);
        assert!(from(&[local, secret]).is_err(), "a secret without the appid");
        assert!(from(&[local, ("WXBRIDGE_COMPONENT_APPID", "not an appid")]).is_err());
    }

    #[test]
    fn secrets_come_from_a_value_ssm_or_a_file() {
        let s = from(&[
            ("WXBRIDGE_MODE", "local"),
            ("WXBRIDGE_REGISTRY", "apps.json"),
            ("WXBRIDGE_SIGNING_KEYS_SSM", "/wx/keys"),
            ("WXBRIDGE_LINK_KEY", "k"),
        ])
        .unwrap();
        assert_eq!(s.registry, Source::File("apps.json".into()));
        assert_eq!(s.signing_keys, Source::Ssm("/wx/keys".into()));
        assert_eq!(s.link_key, Source::Value(Secret::new("k")));
        assert_eq!(s.ssm_names(), ["/wx/keys"]);
    }
}
