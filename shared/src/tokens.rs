//! Bridge tokens: short-lived RS256 JWTs naming the person and the app identity that logged
//! in, with their public keys published as a JWKS (so API Gateway's own JWT authorizer can
//! protect merchant routes without a Lambda).
//!
//! Rotation: the first configured key signs; the others only verify, until every token they
//! signed has expired (keep a retired key for at least the token life, then drop it).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId};

/// The `aud` of the tokens of the platform's own apps (what the platform's API Gateway JWT
/// authorizer is told to expect). A tenant's apps get `wxbridge:<owner>` ([`audience_of`]), so
/// an authorizer of the platform's routes refuses a merchant app's token, and one of a
/// merchant's routes the platform's.
pub const AUDIENCE: &str = "wxbridge";

pub fn audience_of(owner: &crate::model::Owner) -> String {
    if owner.is_platform() {
        AUDIENCE.to_owned()
    } else {
        format!("{AUDIENCE}:{owner}")
    }
}

fn audience_ok(aud: &str) -> bool {
    aud == AUDIENCE || aud.strip_prefix(AUDIENCE).is_some_and(|rest| rest.starts_with(':') && rest.len() > 1)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The bridge's public origin (`PUBLIC_BASE`): where `/.well-known/openid-configuration` is.
    pub iss: String,
    pub aud: String,
    /// The person at the time of issue, as the app's owner is shown it (the platform-wide id
    /// for the platform's apps, a pairwise id for a tenant's); a later merge may have
    /// redirected it.
    pub sub: String,
    pub appid: String,
    pub openid: String,
    pub iat: i64,
    pub exp: i64,
    /// The session_key for the userinfo call, sealed (crate::session_seal): opaque to the
    /// client, opened only by the bridge, for this app and openid, for a short while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sk: Option<String>,
}

pub struct Verified {
    pub person: PersonId,
    pub appid: AppId,
    pub openid: OpenId,
    /// The sealed session_key, when the token carries one.
    pub sealed_session: Option<String>,
}

/// A configured signing key: `{"kid": "...", "pem": "-----BEGIN PRIVATE KEY-----..."}`.
#[derive(Deserialize)]
pub struct KeySpec {
    pub kid: String,
    pub pem: String,
}

struct Key {
    kid: String,
    /// None: a public key only (a function that verifies, never signs).
    enc: Option<EncodingKey>,
    dec: DecodingKey,
    /// The public half, as a JWK.
    jwk: serde_json::Value,
}

pub struct Tokens {
    keys: Vec<Key>,
    issuer: String,
    pub ttl_secs: i64,
}

fn key_from_rsa(kid: &str, private: &RsaPrivateKey) -> Result<Key, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::Internal(format!("signing key {kid}: {e}"));
    let pem = private.to_pkcs8_pem(LineEnding::LF).map_err(|e| bad(&e))?;
    let n = B64URL.encode(private.n().to_bytes_be());
    let e = B64URL.encode(private.e().to_bytes_be());
    Ok(Key {
        kid: kid.to_owned(),
        enc: Some(EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| bad(&e))?),
        dec: DecodingKey::from_rsa_components(&n, &e).map_err(|e| bad(&e))?,
        jwk: serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}),
    })
}

impl Tokens {
    /// The configured keys, current first.
    pub fn from_specs(specs: &[KeySpec], issuer: &str, ttl_secs: i64) -> Result<Self, Error> {
        if specs.is_empty() {
            return Err(Error::Internal("no token signing key configured".into()));
        }
        let keys = specs
            .iter()
            .map(|s| {
                let private = RsaPrivateKey::from_pkcs8_pem(&s.pem)
                    .map_err(|e| Error::Internal(format!("signing key {}: not a PKCS#8 RSA key: {e}", s.kid)))?;
                if private.size() < 256 {
                    return Err(Error::Internal(format!("signing key {}: RSA keys need 2048 bits or more", s.kid)));
                }
                key_from_rsa(&s.kid, &private)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tokens { keys, issuer: issuer.to_owned(), ttl_secs })
    }

    /// `WXBRIDGE_SIGNING_KEYS` as JSON: `[{"kid","pem"}, …]`, current first.
    pub fn from_json(json: &str, issuer: &str, ttl_secs: i64) -> Result<Self, Error> {
        let specs: Vec<KeySpec> = serde_json::from_str(json)
            .map_err(|e| Error::Internal(format!("signing keys are not [{{kid, pem}}]: {e}")))?;
        Self::from_specs(&specs, issuer, ttl_secs)
    }

    /// A fresh key that lives as long as the process: for local runs on the embedded store only
    /// (another instance could not verify its tokens).
    pub fn ephemeral(issuer: &str, ttl_secs: i64) -> Result<Self, Error> {
        let private = generate_key()?;
        Ok(Tokens { keys: vec![key_from_rsa("ephemeral", &private)?], issuer: issuer.to_owned(), ttl_secs })
    }

    /// Verification only, from a published JWKS (`/.well-known/jwks.json`): what a function that
    /// checks bridge tokens but never issues them is given instead of the private keys.
    pub fn from_jwks(json: &str, issuer: &str, ttl_secs: i64) -> Result<Self, Error> {
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(json).map_err(|e| Error::Internal(format!("WXBRIDGE_JWKS is not a JWKS: {e}")))?;
        let keys = set
            .keys
            .iter()
            .map(|k| {
                let kid = k.common.key_id.clone().ok_or_else(|| Error::Internal("a JWKS key without kid".into()))?;
                let dec = DecodingKey::from_jwk(k).map_err(|e| Error::Internal(format!("JWKS key {kid}: {e}")))?;
                let jwk = serde_json::to_value(k).map_err(|e| Error::Internal(e.to_string()))?;
                Ok(Key { kid, enc: None, dec, jwk })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if keys.is_empty() {
            return Err(Error::Internal("the JWKS holds no key".into()));
        }
        Ok(Tokens { keys, issuer: issuer.to_owned(), ttl_secs })
    }

    /// No keys: the function neither issues nor accepts bridge tokens.
    pub fn none(issuer: &str, ttl_secs: i64) -> Self {
        Tokens { keys: Vec::new(), issuer: issuer.to_owned(), ttl_secs }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn issue(&self, person: &PersonId, appid: &AppId, openid: &OpenId, now_secs: i64) -> Result<String, Error> {
        self.issue_with(person, appid, openid, now_secs, AUDIENCE, None)
    }

    /// A token that also carries a sealed session_key.
    pub fn issue_with(
        &self,
        person: &PersonId,
        appid: &AppId,
        openid: &OpenId,
        now_secs: i64,
        audience: &str,
        sealed_session: Option<String>,
    ) -> Result<String, Error> {
        let key = self.keys.first().ok_or_else(|| Error::Internal("this function has no signing key".into()))?;
        let enc = key.enc.as_ref().ok_or_else(|| Error::Internal("this function has no signing key".into()))?;
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: audience.into(),
            sub: person.to_string(),
            appid: appid.to_string(),
            openid: openid.to_string(),
            iat: now_secs,
            exp: now_secs + self.ttl_secs,
            sk: sealed_session,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        encode(&header, &claims, enc).map_err(|e| Error::Internal(format!("jwt: {e}")))
    }

    /// Checks the key (by `kid`, RS256 only), signature, issuer, audience and expiry (against
    /// the injected clock, not the system's, so tests can travel in time).
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Verified, Error> {
        let header = decode_header(token).map_err(|_| Error::InvalidToken)?;
        if header.alg != Algorithm::RS256 {
            return Err(Error::InvalidToken);
        }
        let kid = header.kid.ok_or(Error::InvalidToken)?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(Error::InvalidToken)?;
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.set_issuer(&[&self.issuer]);
        // Any bridge audience: the platform's or a tenant's (checked below).
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let c = decode::<Claims>(token, &key.dec, &v).map_err(|_| Error::InvalidToken)?.claims;
        if !audience_ok(&c.aud) {
            return Err(Error::InvalidToken);
        }
        if c.exp <= now_secs || c.iat > now_secs + 60 {
            return Err(Error::InvalidToken);
        }
        Ok(Verified {
            person: PersonId::parse(&c.sub).map_err(|_| Error::InvalidToken)?,
            appid: AppId::parse(&c.appid).map_err(|_| Error::InvalidToken)?,
            openid: OpenId::parse(&c.openid).map_err(|_| Error::InvalidToken)?,
            sealed_session: c.sk,
        })
    }

    /// `/.well-known/jwks.json`: every key that may still verify a live token.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    /// `/.well-known/openid-configuration`: what an API Gateway JWT authorizer reads to find
    /// the JWKS of the issuer it is given.
    pub fn discovery(&self) -> serde_json::Value {
        serde_json::json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer),
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["token"],
        })
    }
}

/// A new 2048-bit RSA key.
pub fn generate_key() -> Result<RsaPrivateKey, Error> {
    RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(|e| Error::Internal(format!("RSA key generation: {e}")))
}

/// A new key as the PKCS#8 PEM that `WXBRIDGE_SIGNING_KEYS` holds.
pub fn generate_pem() -> Result<String, Error> {
    Ok(generate_key()?.to_pkcs8_pem(LineEnding::LF).map_err(|e| Error::Internal(format!("PEM: {e}")))?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn pems() -> &'static (String, String) {
        static P: OnceLock<(String, String)> = OnceLock::new();
        P.get_or_init(|| (generate_pem().unwrap(), generate_pem().unwrap()))
    }

    fn ids() -> (PersonId, AppId, OpenId) {
        (
            PersonId::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap(),
            AppId::parse("wx1a2b3c4d5e6f7001").unwrap(),
            OpenId::parse("oabc").unwrap(),
        )
    }

    fn tokens(keys: &[(&str, &str)]) -> Tokens {
        let specs: Vec<KeySpec> = keys.iter().map(|(k, p)| KeySpec { kid: (*k).into(), pem: (*p).into() }).collect();
        Tokens::from_specs(&specs, "https://id.example.com", 600).unwrap()
    }

    #[test]
    fn tokens_verify_until_they_expire_and_not_when_forged() {
        let (a, b) = pems();
        let t = tokens(&[("k1", a)]);
        let (p, app, o) = ids();
        let tok = t.issue(&p, &app, &o, 1_000).unwrap();
        let v = t.verify(&tok, 1_100).unwrap();
        assert_eq!((v.person, v.appid, v.openid), (p.clone(), app.clone(), o.clone()));
        assert!(t.verify(&tok, 1_600).is_err(), "expired");
        assert!(tokens(&[("k1", b)]).verify(&tok, 1_100).is_err(), "another key under the same kid");
        let none = tok.rsplit_once('.').unwrap().0.to_owned() + ".";
        assert!(t.verify(&none, 1_100).is_err(), "stripped signature");
        let other_issuer =
            Tokens::from_specs(&[KeySpec { kid: "k1".into(), pem: a.clone() }], "https://x", 600).unwrap();
        assert!(other_issuer.verify(&tok, 1_100).is_err(), "another issuer");
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_and_signs_with_the_new_key() {
        let (a, b) = pems();
        let (p, app, o) = ids();
        let old = tokens(&[("k1", a)]);
        let tok = old.issue(&p, &app, &o, 1_000).unwrap();
        let rotated = tokens(&[("k2", b), ("k1", a)]);
        assert!(rotated.verify(&tok, 1_100).is_ok(), "the retired key still verifies");
        let fresh = rotated.issue(&p, &app, &o, 1_000).unwrap();
        assert_eq!(decode_header(&fresh).unwrap().kid.as_deref(), Some("k2"));
        assert!(tokens(&[("k2", b)]).verify(&tok, 1_100).is_err(), "a dropped key verifies nothing");
        let jwks = rotated.jwks();
        let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, ["k2", "k1"]);
        assert!(jwks.to_string().find("\"d\"").is_none(), "no private part in the JWKS");
    }

    #[test]
    fn a_tenants_token_has_its_own_audience_and_the_bridge_takes_both() {
        let (a, _) = pems();
        let t = tokens(&[("k1", a)]);
        let (p, app, o) = ids();
        let m1 = crate::model::Owner::parse("m1").unwrap();
        assert_eq!(audience_of(&m1), "wxbridge:m1");
        let tok = t.issue_with(&p, &app, &o, 1_000, &audience_of(&m1), None).unwrap();
        assert_eq!(t.verify(&tok, 1_100).unwrap().person, p);
        // An authorizer of the platform's routes (aud = wxbridge) refuses it.
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(t.jwks()["keys"][0].clone()).unwrap();
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[AUDIENCE]);
        v.validate_exp = false;
        assert!(decode::<Claims>(&tok, &DecodingKey::from_jwk(&jwk).unwrap(), &v).is_err());
        for bad in ["other", "wxbridge:", "wxbridgex"] {
            let forged = t.issue_with(&p, &app, &o, 1_000, bad, None).unwrap();
            assert!(t.verify(&forged, 1_100).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_verifier_from_the_published_jwks_verifies_and_cannot_sign() {
        let (a, _) = pems();
        let t = tokens(&[("k1", a)]);
        let (p, app, o) = ids();
        let tok = t.issue(&p, &app, &o, 1_000).unwrap();
        let v = Tokens::from_jwks(&t.jwks().to_string(), "https://id.example.com", 600).unwrap();
        assert_eq!(v.verify(&tok, 1_100).unwrap().person, p);
        assert!(v.issue(&p, &app, &o, 1_000).is_err(), "no private key");
        assert!(Tokens::from_jwks("{\"keys\": []}", "https://id.example.com", 600).is_err());
        assert!(Tokens::none("https://id.example.com", 600).verify(&tok, 1_100).is_err());
    }

    #[test]
    fn the_published_jwk_verifies_and_algorithm_confusion_is_refused() {
        let (a, _) = pems();
        let t = tokens(&[("k1", a)]);
        let (p, app, o) = ids();
        let tok = t.issue(&p, &app, &o, 1_000).unwrap();
        // What an outside verifier (API Gateway) does with the JWKS.
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(t.jwks()["keys"][0].clone()).unwrap();
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.set_audience(&[AUDIENCE]);
        assert!(decode::<Claims>(&tok, &DecodingKey::from_jwk(&jwk).unwrap(), &v).is_ok());
        // HS256 signed with the public modulus as the secret: refused.
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let claims = decode::<Claims>(&tok, &DecodingKey::from_jwk(&jwk).unwrap(), &v).unwrap().claims;
        let n = t.jwks()["keys"][0]["n"].as_str().unwrap().to_owned();
        let forged = encode(&h, &claims, &EncodingKey::from_secret(n.as_bytes())).unwrap();
        assert!(t.verify(&forged, 1_100).is_err());
    }
}
