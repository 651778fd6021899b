//! The session_key between a login and its userinfo call, carried inside the bridge token
//! instead of a stash item: sealed (AES-256-GCM under a server key), bound to the app and the
//! openid, with a short life of its own. The client cannot read it, and a sealed value copied
//! into another app's or user's token does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;
use crate::ids::{AppId, OpenId, Secret};

pub struct SessionSeal {
    /// None: a function that issues and reads no bridge token with a session (no seal key).
    key: Option<[u8; 32]>,
}

impl std::fmt::Debug for SessionSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSeal(***)")
    }
}

/// A key for one purpose, derived from the bridge's seal key.
pub fn derive(seal_key: &Secret, purpose: &str) -> Secret {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(seal_key.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(b"wxbridge/");
    mac.update(purpose.as_bytes());
    Secret::new(hex::encode(mac.finalize().into_bytes()))
}

fn aad(appid: &AppId, openid: &OpenId, until_secs: i64) -> String {
    format!("session/{appid}/{openid}/{until_secs}")
}

impl SessionSeal {
    pub fn new(seal_key: &Secret) -> Self {
        let k = derive(seal_key, "session/v1");
        let mut key = [0u8; 32];
        hex::decode_to_slice(k.expose(), &mut key).expect("32 bytes of hex");
        SessionSeal { key: Some(key) }
    }

    pub fn none() -> Self {
        SessionSeal { key: None }
    }

    fn key(&self) -> Result<&[u8; 32], Error> {
        self.key.as_ref().ok_or_else(|| Error::Internal("this function has no seal key".into()))
    }

    /// `<until>.<nonce>.<ciphertext>`; the life is in the clear but bound into the AAD.
    pub fn seal(&self, session_key: &Secret, appid: &AppId, openid: &OpenId, until_secs: i64) -> Result<String, Error> {
        let nonce: [u8; 12] = rand::random();
        let ct = Aes256Gcm::new(&(*self.key()?).into())
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload { msg: session_key.expose().as_bytes(), aad: aad(appid, openid, until_secs).as_bytes() },
            )
            .expect("AES-GCM seals any length we give it");
        Ok(format!("{until_secs}.{}.{}", B64.encode(nonce), B64.encode(ct)))
    }

    /// The session_key, if the value is ours, for this app and openid, and still alive.
    pub fn open(&self, sealed: &str, appid: &AppId, openid: &OpenId, now_secs: i64) -> Result<Secret, Error> {
        let refused = || Error::TicketInvalid;
        let mut parts = sealed.splitn(3, '.');
        let (Some(until), Some(nonce), Some(ct)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refused());
        };
        let until: i64 = until.parse().map_err(|_| refused())?;
        let nonce = B64.decode(nonce).map_err(|_| refused())?;
        let ct = B64.decode(ct).map_err(|_| refused())?;
        if nonce.len() != 12 {
            return Err(refused());
        }
        let plain = Aes256Gcm::new(&(*self.key()?).into())
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: aad(appid, openid, until).as_bytes() })
            .map_err(|_| refused())?;
        if until <= now_secs {
            return Err(refused());
        }
        String::from_utf8(plain).map(Secret::new).map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_session_opens_only_for_its_app_and_user_and_only_while_alive() {
        let seal = SessionSeal::new(&Secret::new("seal-key"));
        let (a, b) = (AppId::parse("wxa").unwrap(), AppId::parse("wxb").unwrap());
        let (u, v) = (OpenId::parse("o1").unwrap(), OpenId::parse("o2").unwrap());
        let sk = Secret::new("tiihtNczf5v6AKRyjwEUhQ==");
        let sealed = seal.seal(&sk, &a, &u, 1_000).unwrap();
        assert!(!sealed.contains(sk.expose()));
        assert_eq!(seal.open(&sealed, &a, &u, 999).unwrap().expose(), sk.expose());
        assert!(seal.open(&sealed, &a, &u, 1_000).is_err(), "expired");
        assert!(seal.open(&sealed, &b, &u, 999).is_err(), "another app");
        assert!(seal.open(&sealed, &a, &v, 999).is_err(), "another user");
        let longer = sealed.replacen("1000.", "9000.", 1);
        assert!(seal.open(&longer, &a, &u, 999).is_err(), "a life stretched by hand");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(seal.open(std::str::from_utf8(&tampered).unwrap(), &a, &u, 999).is_err(), "tampered");
        assert!(SessionSeal::new(&Secret::new("other")).open(&sealed, &a, &u, 999).is_err(), "another server key");
        for bad in ["", "1000", "x.y.z", "1000..", "1000.AAAA.AAAA"] {
            assert!(seal.open(bad, &a, &u, 999).is_err(), "{bad}");
        }
    }
}
