//! Newtypes that parse: an id that exists in the program has already been checked.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::Error;

/// WeChat ids have no published spec (WECHAT_CONTRACT.md §8): validate loosely, never by length 28.
fn wechat_id_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, Error> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(Error::InvalidRequest(format!("{} is malformed", $what)))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(|_| serde::de::Error::custom(concat!($what, " is malformed")))
            }
        }
    };
}

id_type!(
    /// A WeChat AppID (`wx` + 16 characters for real apps), or `site:<site_id>` for a
    /// website's own accounts.
    AppId,
    "appid",
    |s| s.len() >= 3 && s.len() <= 70 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-'))
);
id_type!(
    /// Per-(user, app) id.
    OpenId,
    "openid",
    wechat_id_ok
);
id_type!(
    /// Per-(user, open platform) id.
    UnionId,
    "unionid",
    wechat_id_ok
);
id_type!(
    /// An open-platform account; unionids are only comparable inside one.
    OpenPlatformId,
    "open_platform",
    wechat_id_ok
);
id_type!(
    /// A merchant: a tenant of the platform, owner of its apps.
    MerchantId,
    "merchant",
    wechat_id_ok
);
id_type!(
    /// A website whose own accounts are linked as identities (`site:<site_id>`).
    SiteId,
    "site_id",
    wechat_id_ok
);
id_type!(
    /// A website's own user id: chosen by the site, never a WeChat id.
    SiteUserId,
    "site_user_id",
    wechat_id_ok
);
id_type!(
    /// A wxbridge person: a UUIDv7, so ids sort by creation time.
    PersonId,
    "person_id",
    |s| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
);

impl SiteUserId {
    /// The site user as the identity it is filed under (`site:<site_id>`, this id): identities
    /// of every app keep their per-app user id in the same slot.
    pub fn as_openid(&self) -> OpenId {
        OpenId(self.0.clone())
    }
}

impl PersonId {
    pub fn from_uuid(u: uuid::Uuid) -> Self {
        Self(u.hyphenated().to_string())
    }
}

/// A wx.login / OAuth code: opaque, short, printable.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidRequest("code is malformed".into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(..)")
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|_| serde::de::Error::custom("code is malformed"))
    }
}

/// A value that must never reach a response or a log: Debug and Display print nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_loosely_but_refuse_junk() {
        assert!(OpenId::parse("oGZUI0egBJY1zhBYw2KhdUfwVJJE").is_ok());
        assert!(UnionId::parse("o6_bmasdasdsad6_2sgVt7hMZOPfL").is_ok(), "29 chars is fine");
        assert!(OpenId::parse("").is_err());
        assert!(OpenId::parse("o#x").is_err());
        assert!(AppId::parse("wx4f4bc4dec97d474b").is_ok());
        assert!(AppId::parse("wx/../x").is_err());
        assert!(PersonId::parse("not-a-uuid").is_err());
        assert!(Code::parse("a b").is_err());
        assert_eq!(format!("{:?}", Secret::new("k")), "Secret(***)");
    }
}
