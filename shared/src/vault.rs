//! Envelope encryption of the registry's secrets (app secrets, OA tokens and keys).
//!
//! A value is sealed under a data key (AES-256-GCM); the data key is kept only wrapped by a
//! key-encryption key: KMS in AWS, a local key in devstack and tests. The sealed text is
//!
//! ```text
//! v1.<kek id>.<wrapped data key>.<nonce>.<ciphertext+tag>      (base64url, no padding)
//! ```
//!
//! and the ciphertext is bound to what it is for (the AAD, e.g. `app/<appid>`), so a sealed
//! value copied onto another app does not open. A process seals everything under one data key
//! and remembers the keys it has unwrapped, so a container calls KMS once per data key, not
//! once per app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use tokio::sync::OnceCell;

use crate::error::Error;
use crate::ids::Secret;

const VERSION: &str = "v1";

/// Local mode's key for sealing the registry's secrets (and deriving pairwise ids) when none
/// is configured: a development value, public by design; AWS mode never uses it.
pub const LOCAL_DEV_KEY: [u8; 32] = *b"wxbridge-local-development-key!!";

/// A fresh data key: the key itself and the same key wrapped by the key-encryption key.
pub struct DataKey {
    pub plain: [u8; 32],
    pub wrapped: Vec<u8>,
}

/// The key-encryption key: KMS, or a local key. Small on purpose; it never sees a secret.
#[async_trait]
pub trait KeyWrap: Send + Sync {
    /// Names the key-encryption key in sealed values (no dots).
    fn id(&self) -> &str;
    async fn new_data_key(&self) -> Result<DataKey, Error>;
    async fn unwrap(&self, wrapped: &[u8]) -> Result<[u8; 32], Error>;
}

/// A local AES-256-GCM key-encryption key (devstack, tests, and the CLI's offline import).
pub struct LocalKey {
    id: String,
    kek: [u8; 32],
}

impl LocalKey {
    pub fn new(id: &str, kek: [u8; 32]) -> Self {
        LocalKey { id: id.replace('.', "-"), kek }
    }

    /// 64 hex characters, e.g. from `WXBRIDGE_LOCAL_KEY`.
    pub fn from_hex(id: &str, hex_key: &str) -> Result<Self, Error> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| Error::Internal("the local key is not hex".into()))?;
        let kek: [u8; 32] = bytes.try_into().map_err(|_| Error::Internal("the local key must be 32 bytes".into()))?;
        Ok(LocalKey::new(id, kek))
    }

    pub fn random(id: &str) -> Self {
        LocalKey::new(id, rand::random())
    }
}

#[async_trait]
impl KeyWrap for LocalKey {
    fn id(&self) -> &str {
        &self.id
    }

    async fn new_data_key(&self) -> Result<DataKey, Error> {
        let plain: [u8; 32] = rand::random();
        let nonce: [u8; 12] = rand::random();
        let ct = Aes256Gcm::new(&self.kek.into())
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: b"wxbridge/data-key" })
            .map_err(|_| Error::Internal("local key wrap failed".into()))?;
        Ok(DataKey { plain, wrapped: [nonce.as_slice(), &ct].concat() })
    }

    async fn unwrap(&self, wrapped: &[u8]) -> Result<[u8; 32], Error> {
        if wrapped.len() < 12 {
            return Err(sealed_invalid());
        }
        let (nonce, ct) = wrapped.split_at(12);
        let plain = Aes256Gcm::new(&self.kek.into())
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: b"wxbridge/data-key" })
            .map_err(|_| sealed_invalid())?;
        plain.try_into().map_err(|_| sealed_invalid())
    }
}

/// KMS as the key-encryption key: `GenerateDataKey` to seal, `Decrypt` to open, both under the
/// encryption context `{"wxbridge": "registry"}` so the key's grants can require it.
pub struct KmsKey {
    client: aws_sdk_kms::Client,
    key_id: String,
    id: String,
}

impl KmsKey {
    pub fn new(aws: &aws_config::SdkConfig, key_id: &str) -> Self {
        // The id in sealed values only tells keys apart; the ARN's last part does that.
        let id = key_id.rsplit([':', '/']).next().unwrap_or(key_id).replace('.', "-");
        KmsKey { client: aws_sdk_kms::Client::new(aws), key_id: key_id.to_owned(), id: format!("kms-{id}") }
    }
}

const KMS_CONTEXT: (&str, &str) = ("wxbridge", "registry");

fn kms_error<E: std::error::Error + 'static>(e: aws_sdk_kms::error::SdkError<E>) -> Error {
    use aws_sdk_kms::error::SdkError;
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Error::StoreUnavailable,
        e => Error::Internal(format!("KMS: {}", aws_sdk_kms::error::DisplayErrorContext(&e))),
    }
}

#[async_trait]
impl KeyWrap for KmsKey {
    fn id(&self) -> &str {
        &self.id
    }

    async fn new_data_key(&self) -> Result<DataKey, Error> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
            .send()
            .await
            .map_err(kms_error)?;
        let plain = out.plaintext().ok_or_else(|| Error::Internal("KMS returned no data key".into()))?;
        let wrapped = out.ciphertext_blob().ok_or_else(|| Error::Internal("KMS returned no wrapped key".into()))?;
        Ok(DataKey {
            plain: plain.as_ref().try_into().map_err(|_| Error::Internal("KMS data key is not 32 bytes".into()))?,
            wrapped: wrapped.as_ref().to_vec(),
        })
    }

    async fn unwrap(&self, wrapped: &[u8]) -> Result<[u8; 32], Error> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped))
            .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
            .send()
            .await
            .map_err(kms_error)?;
        let plain = out.plaintext().ok_or_else(sealed_invalid)?;
        plain.as_ref().try_into().map_err(|_| sealed_invalid())
    }
}

fn sealed_invalid() -> Error {
    Error::Internal("a sealed registry value does not open".into())
}

/// Seals and opens values under one key-encryption key.
#[derive(Clone)]
pub struct Vault {
    kek: Arc<dyn KeyWrap>,
    /// This process's data key for sealing, made on first use.
    sealing: Arc<OnceCell<(Vec<u8>, [u8; 32])>>,
    /// Data keys this process has unwrapped, by their wrapped form.
    opened: Arc<Mutex<HashMap<Vec<u8>, [u8; 32]>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({})", self.kek.id())
    }
}

impl Vault {
    pub fn new(kek: Arc<dyn KeyWrap>) -> Self {
        Vault { kek, sealing: Arc::default(), opened: Arc::default() }
    }

    /// A vault under a random local key: for tests and a devstack that keeps nothing.
    pub fn ephemeral() -> Self {
        Vault::new(Arc::new(LocalKey::random("local")))
    }

    pub async fn seal(&self, plain: &[u8], aad: &str) -> Result<String, Error> {
        let (wrapped, key) = self
            .sealing
            .get_or_try_init(|| async {
                let dk = self.kek.new_data_key().await?;
                Ok::<_, Error>((dk.wrapped, dk.plain))
            })
            .await?;
        let nonce: [u8; 12] = rand::random();
        let ct = Aes256Gcm::new(&(*key).into())
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: aad.as_bytes() })
            .map_err(|_| Error::Internal("seal failed".into()))?;
        Ok(format!("{VERSION}.{}.{}.{}.{}", self.kek.id(), B64.encode(wrapped), B64.encode(nonce), B64.encode(ct)))
    }

    pub async fn open(&self, sealed: &str, aad: &str) -> Result<Secret, Error> {
        let parts: Vec<&str> = sealed.split('.').collect();
        let [VERSION, kek, wrapped, nonce, ct] = parts[..] else { return Err(sealed_invalid()) };
        if kek != self.kek.id() {
            return Err(Error::Internal(format!("a sealed registry value is under key {kek}, not {}", self.kek.id())));
        }
        let decode = |s: &str| B64.decode(s).map_err(|_| sealed_invalid());
        let (wrapped, nonce, ct) = (decode(wrapped)?, decode(nonce)?, decode(ct)?);
        if nonce.len() != 12 {
            return Err(sealed_invalid());
        }
        let known = self.opened.lock().unwrap_or_else(|p| p.into_inner()).get(&wrapped).copied();
        let key = match known {
            Some(k) => k,
            None => {
                let k = self.kek.unwrap(&wrapped).await?;
                let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
                if opened.len() > 1024 {
                    opened.clear();
                }
                opened.insert(wrapped, k);
                k
            }
        };
        let plain = Aes256Gcm::new(&key.into())
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: aad.as_bytes() })
            .map_err(|_| sealed_invalid())?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| sealed_invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Vault {
        Vault::new(Arc::new(LocalKey::new("local", [7; 32])))
    }

    #[tokio::test]
    async fn sealed_values_open_only_for_their_aad_and_key() {
        let v = local();
        let sealed = v.seal(b"app secret", "app/wx1").await.unwrap();
        assert!(sealed.starts_with("v1.local.") && !sealed.contains("app secret"));
        assert_eq!(v.open(&sealed, "app/wx1").await.unwrap().expose(), "app secret");
        assert!(v.open(&sealed, "app/wx2").await.is_err(), "another app's AAD");
        let other = Vault::new(Arc::new(LocalKey::new("local", [8; 32])));
        assert!(other.open(&sealed, "app/wx1").await.is_err(), "another key of the same id");
        let renamed = Vault::new(Arc::new(LocalKey::new("other", [7; 32])));
        assert!(renamed.open(&sealed, "app/wx1").await.is_err(), "another key id");
    }

    #[tokio::test]
    async fn one_data_key_per_process_and_tampering_is_refused() {
        let v = local();
        let a = v.seal(b"a", "x").await.unwrap();
        let b = v.seal(b"b", "x").await.unwrap();
        let wrapped = |s: &str| s.split('.').nth(2).unwrap().to_owned();
        assert_eq!(wrapped(&a), wrapped(&b));
        assert_ne!(a, b, "a fresh nonce each time");
        let mut parts: Vec<String> = a.split('.').map(str::to_owned).collect();
        let mut ct = B64.decode(&parts[4]).unwrap();
        ct[0] ^= 1;
        parts[4] = B64.encode(ct);
        assert!(v.open(&parts.join("."), "x").await.is_err());
        for bad in ["", "v1", "v2.local.a.b.c", "v1.local.!.b.c", "v1.local.a.b"] {
            assert!(v.open(bad, "x").await.is_err(), "{bad}");
        }
    }

    /// A value sealed by an earlier build opens: the format is fixed, not whatever this build
    /// writes.
    #[tokio::test]
    async fn a_known_sealed_value_opens() {
        let kek = LocalKey::new("local", [7; 32]);
        let dk = [9u8; 32];
        let wnonce = [1u8; 12];
        let wrapped = Aes256Gcm::new(&[7u8; 32].into())
            .encrypt(Nonce::from_slice(&wnonce), Payload { msg: &dk, aad: b"wxbridge/data-key" })
            .unwrap();
        let nonce = [2u8; 12];
        let ct = Aes256Gcm::new(&dk.into())
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: b"s3cret", aad: b"app/wx1" })
            .unwrap();
        let text = format!(
            "v1.local.{}.{}.{}",
            B64.encode([wnonce.as_slice(), &wrapped].concat()),
            B64.encode(nonce),
            B64.encode(ct)
        );
        assert_eq!(Vault::new(Arc::new(kek)).open(&text, "app/wx1").await.unwrap().expose(), "s3cret");
    }
}
