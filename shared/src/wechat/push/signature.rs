//! `signature` and `msg_signature`: SHA-1 of the sorted parts, compared in constant time.

use sha1::{Digest, Sha1};

use crate::crypto::same_secret;
use crate::error::Error;
use crate::ids::Secret;

/// `sha1(join(sort(parts)))` as lowercase hex: WeChat's `signature` (token, timestamp, nonce)
/// and `msg_signature` (the same plus `Encrypt`). The sort is bytewise, like Python's on str.
pub fn sha1_sorted(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for p in sorted {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Checks the plain `signature` (token, timestamp, nonce): URL verification and every POST,
/// safe mode included.
pub fn verify_signature(token: &Secret, timestamp: &str, nonce: &str, signature: &str) -> Result<(), Error> {
    let expected = sha1_sorted(&[token.expose(), timestamp, nonce]);
    if same_secret(expected.as_bytes(), signature.as_bytes()) {
        Ok(())
    } else {
        Err(Error::SignatureInvalid)
    }
}

/// Checks safe mode's `msg_signature` (token, timestamp, nonce, Encrypt).
pub fn verify_msg_signature(
    token: &Secret,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    msg_signature: &str,
) -> Result<(), Error> {
    let expected = sha1_sorted(&[token.expose(), timestamp, nonce, encrypt]);
    if same_secret(expected.as_bytes(), msg_signature.as_bytes()) {
        Ok(())
    } else {
        Err(Error::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Secret {
        Secret::new(x)
    }

    // ---- V3: plain signatures (token AAAAA, official docs) ----
    #[test]
    fn v3_plain_signatures() {
        assert_eq!(sha1_sorted(&["AAAAA", "1714036504", "1514711492"]), "f464b24fc39322e44b38aa78f5edd27bd1441696");
        let tok = s("AAAAA");
        verify_signature(&tok, "1714036504", "1514711492", "f464b24fc39322e44b38aa78f5edd27bd1441696").unwrap();
        verify_signature(&tok, "1714037059", "486452656", "899cf89e464efb63f54ddac96b0a0a235f53aa78").unwrap();
        for bad_sig in ["", "899cf89e464efb63f54ddac96b0a0a235f53aa79", "F464B24FC39322E44B38AA78F5EDD27BD1441696"] {
            assert!(matches!(
                verify_signature(&tok, "1714036504", "1514711492", bad_sig),
                Err(Error::SignatureInvalid)
            ));
        }
        assert!(matches!(
            verify_signature(&s("AAAAB"), "1714036504", "1514711492", "f464b24fc39322e44b38aa78f5edd27bd1441696"),
            Err(Error::SignatureInvalid)
        ));
    }
}
