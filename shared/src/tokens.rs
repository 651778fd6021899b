//! Bridge tokens: short-lived JWTs naming the person and the app identity that logged in.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{AppId, OpenId, PersonId};

pub const ISSUER: &str = "wxbridge";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    /// The person at the time of issue (a later merge may have redirected it).
    pub sub: String,
    pub appid: String,
    pub openid: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct Verified {
    pub person: PersonId,
    pub appid: AppId,
    pub openid: OpenId,
}

pub struct Tokens {
    enc: EncodingKey,
    dec: DecodingKey,
    pub ttl_secs: i64,
}

impl Tokens {
    /// HS256 with a key of at least 32 bytes.
    pub fn new(key: &[u8], ttl_secs: i64) -> Result<Self, Error> {
        if key.len() < 32 {
            return Err(Error::Internal("the token signing key must be at least 32 bytes".into()));
        }
        Ok(Tokens { enc: EncodingKey::from_secret(key), dec: DecodingKey::from_secret(key), ttl_secs })
    }

    pub fn issue(&self, person: &PersonId, appid: &AppId, openid: &OpenId, now_secs: i64) -> Result<String, Error> {
        let claims = Claims {
            iss: ISSUER.into(),
            sub: person.to_string(),
            appid: appid.to_string(),
            openid: openid.to_string(),
            iat: now_secs,
            exp: now_secs + self.ttl_secs,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.enc).map_err(|e| Error::Internal(format!("jwt: {e}")))
    }

    /// Checks signature, algorithm, issuer and expiry (against the injected clock, not the
    /// system's, so tests can travel in time).
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Verified, Error> {
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = decode::<Claims>(token, &self.dec, &v).map_err(|_| Error::InvalidToken)?;
        let c = data.claims;
        if c.exp <= now_secs || c.iat > now_secs + 60 {
            return Err(Error::InvalidToken);
        }
        Ok(Verified {
            person: PersonId::parse(&c.sub).map_err(|_| Error::InvalidToken)?,
            appid: AppId::parse(&c.appid).map_err(|_| Error::InvalidToken)?,
            openid: OpenId::parse(&c.openid).map_err(|_| Error::InvalidToken)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_not_when_forged() {
        let t = Tokens::new(&[7u8; 32], 600).unwrap();
        let p = PersonId::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap();
        let a = AppId::parse("wx1a2b3c4d5e6f7001").unwrap();
        let o = OpenId::parse("oabc").unwrap();
        let tok = t.issue(&p, &a, &o, 1_000).unwrap();
        let v = t.verify(&tok, 1_100).unwrap();
        assert_eq!((v.person, v.appid, v.openid), (p.clone(), a.clone(), o.clone()));
        assert!(t.verify(&tok, 1_600).is_err(), "expired");
        let other = Tokens::new(&[8u8; 32], 600).unwrap();
        assert!(other.verify(&tok, 1_100).is_err(), "forged");
        let none = tok.rsplit_once('.').unwrap().0.to_owned() + ".";
        assert!(t.verify(&none, 1_100).is_err(), "stripped signature");
    }
}
