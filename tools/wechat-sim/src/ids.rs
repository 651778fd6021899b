//! Deterministic, opaque WeChat identities and random tokens.
//!
//! openid  = "o" + first 27 chars of base64url-no-pad(sha256("wxsim-openid\0"  + appid         + "\0" + user))
//! unionid = "o" + first 27 chars of base64url-no-pad(sha256("wxsim-unionid\0" + open_platform + "\0" + user))
//!
//! A "snapshot page" virtual account (contract §2.2 `is_snapshotuser`) gets ids of the same
//! shape from other domain strings (`wxsim-snapshot-openid`, `wxsim-snapshot-unionid`), so
//! they never equal the user's real ids.
//!
//! All are 28 characters of `[A-Za-z0-9_-]`, as observed on real WeChat ids (contract §8).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::distributions::Alphanumeric;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

fn derive(domain: &str, scope: &str, user: &str) -> String {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update([0u8]);
    h.update(scope.as_bytes());
    h.update([0u8]);
    h.update(user.as_bytes());
    let encoded = URL_SAFE_NO_PAD.encode(h.finalize());
    let mut id = String::with_capacity(28);
    id.push('o');
    id.push_str(&encoded[..27]);
    id
}

/// The user's openid in this app.
pub fn openid(appid: &str, user: &str) -> String {
    derive("wxsim-openid", appid, user)
}

/// The user's unionid in this Open Platform account.
pub fn unionid(open_platform: &str, user: &str) -> String {
    derive("wxsim-unionid", open_platform, user)
}

/// The virtual openid WeChat hands out for the user in snapshot-page mode.
pub fn snapshot_openid(appid: &str, user: &str) -> String {
    derive("wxsim-snapshot-openid", appid, user)
}

/// The virtual unionid WeChat hands out for the user in snapshot-page mode.
pub fn snapshot_unionid(open_platform: &str, user: &str) -> String {
    derive("wxsim-snapshot-unionid", open_platform, user)
}

/// `n` random characters of `[A-Za-z0-9]`.
pub fn random_alphanumeric(n: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(n).map(char::from).collect()
}

/// A `wx.login` code: 32 random characters of `[A-Za-z0-9]`.
pub fn login_code() -> String {
    random_alphanumeric(32)
}

/// A fresh session_key: 16 random bytes, base64 (standard, padded).
pub fn session_key() -> String {
    let mut key = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut key);
    STANDARD.encode(key)
}

/// 16 random bytes (an AES IV).
pub fn random_iv() -> [u8; 16] {
    let mut iv = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut iv);
    iv
}

/// A request id as WeChat appends to errmsg, e.g. `6166f719-6cb5d09c-633ab469`.
pub fn rid() -> String {
    let mut rng = rand::thread_rng();
    format!("{:08x}-{:08x}-{:08x}", rng.next_u32(), rng.next_u32(), rng.next_u32())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_wechat_id(s: &str) -> bool {
        s.len() == 28 && s.starts_with('o') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[test]
    fn ids_are_deterministic_and_shaped_like_wechat() {
        let a = openid("wx1", "alice");
        assert_eq!(a, openid("wx1", "alice"));
        assert!(is_wechat_id(&a));
        assert_ne!(a, openid("wx2", "alice"));
        assert_ne!(a, openid("wx1", "bob"));
        let u = unionid("op", "alice");
        assert!(is_wechat_id(&u));
        assert_ne!(u, unionid("op2", "alice"));
        // The domain separator keeps openids and unionids apart even with equal inputs.
        assert_ne!(openid("op", "alice"), unionid("op", "alice"));
        // The NUL separator keeps ("a","bc") and ("ab","c") apart.
        assert_ne!(openid("a", "bc"), openid("ab", "c"));
        // Snapshot (virtual) ids have the same shape and never equal the real ones.
        assert!(is_wechat_id(&snapshot_openid("wx1", "alice")));
        assert!(is_wechat_id(&snapshot_unionid("op", "alice")));
        assert_ne!(snapshot_openid("wx1", "alice"), a);
        assert_ne!(snapshot_unionid("op", "alice"), u);
    }

    #[test]
    fn derivation_matches_the_written_formula() {
        let digest = Sha256::digest(b"wxsim-openid\0wx1\0alice");
        let expected = format!("o{}", &URL_SAFE_NO_PAD.encode(digest)[..27]);
        assert_eq!(openid("wx1", "alice"), expected);
    }

    #[test]
    fn random_tokens_have_their_shapes() {
        let code = login_code();
        assert_eq!(code.len(), 32);
        assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(code, login_code());
        assert_eq!(STANDARD.decode(session_key()).map(|k| k.len()), Ok(16));
        let r = rid();
        assert_eq!(r.len(), 26);
        assert_eq!(r.matches('-').count(), 2);
    }
}
