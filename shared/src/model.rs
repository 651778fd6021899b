//! The domain's closed sets: what kind of app, which role it plays, who owns it, what evidence
//! a link rests on, where a scene stands. Each is an enum with one spelling on the wire and in
//! the store, so a typo is a parse error, not a silent new value.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::Error;
use crate::ids::{MerchantId, SiteId};

/// Declares a unit-only enum with its one spelling per variant (store, JSON, logs).
macro_rules! spelled {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            pub fn parse(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::InvalidRequest(format!(
                        concat!(stringify!($name), " must be one of {}"),
                        [$($text,)+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                $name::parse(&s).map_err(|e| serde::de::Error::custom(e.detail()))
            }
        }
    };
}

spelled! {
    /// What WeChat calls the app (and a website's own accounts, linked like an app).
    pub enum AppKind {
        MiniProgram = "mini_program",
        OfficialAccount = "official_account",
        MobileApp = "mobile_app",
        Website = "website",
        /// A website's own user accounts (`site:<site_id>`), linked as identities.
        Site = "site",
    }
}

spelled! {
    /// The part an app plays for the bridge.
    pub enum Role {
        PlatformMp = "platform_mp",
        PlatformOa = "platform_oa",
        /// The platform's official account whose openid joins every mini program (one at most).
        PivotOa = "pivot_oa",
        MerchantMp = "merchant_mp",
        MerchantOa = "merchant_oa",
        App = "app",
        Website = "website",
        Site = "site",
    }
}

impl Role {
    /// The role an app has when the registry names none.
    pub fn default_for(kind: AppKind, owner: &Owner) -> Role {
        let platform = matches!(owner, Owner::Platform);
        match kind {
            AppKind::MiniProgram if platform => Role::PlatformMp,
            AppKind::MiniProgram => Role::MerchantMp,
            AppKind::OfficialAccount if platform => Role::PlatformOa,
            AppKind::OfficialAccount => Role::MerchantOa,
            AppKind::MobileApp => Role::App,
            AppKind::Website => Role::Website,
            AppKind::Site => Role::Site,
        }
    }
}

spelled! {
    /// How the bridge acts for an app at WeChat.
    pub enum Auth {
        /// With the app's own AppSecret (and, for an official account, its push token and key).
        Secret = "secret",
        /// Through the platform's third-party platform, which the app's owner authorized: no
        /// secret of the app is ever held, tokens come from the authorization.
        Component = "component",
    }
}

spelled! {
    /// The evidence a link rests on.
    pub enum Via {
        /// `jscode2session` answered this openid for a wx.login code.
        Jscode2session = "jscode2session",
        /// WeChat-encrypted userinfo named the unionid.
        Userinfo = "userinfo",
        /// An official account's web authorization, in a web-view pass the bridge started.
        WebAuth = "web_auth",
        /// A scan of a scene QR code the bridge made, pushed by WeChat.
        Scene = "scene",
        /// A login link the bridge signed, redeemed by the site.
        LoginLink = "login_link",
        /// A mobile app's, website's or official account's OAuth code, exchanged by the bridge.
        OpenLogin = "open_login",
    }
}

spelled! {
    /// Where a scene-QR binding stands.
    pub enum SceneStatus {
        Pending = "pending",
        /// Scanned: waiting for the scanner to confirm in their own browser.
        AwaitingConfirmation = "awaiting_confirmation",
        Bound = "bound",
        Expired = "expired",
        /// Final: the scanner's WeChat or the site user is bound to another already.
        Refused = "refused",
    }
}

spelled! {
    /// An official account's web-authorization scope.
    pub enum Scope {
        /// Silent: the openid (and the unionid only when WeChat's conditions hold).
        Base = "snsapi_base",
        /// A consent page: the unionid too.
        Userinfo = "snsapi_userinfo",
    }
}

/// Who an app (and so every identity of it) belongs to: the platform, a merchant (a tenant),
/// or a website's own accounts. Spelled `platform`, `<merchant id>` or `site:<site id>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    Platform,
    Merchant(MerchantId),
    Site(SiteId),
}

impl Owner {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s == "platform" {
            return Ok(Owner::Platform);
        }
        match s.strip_prefix("site:") {
            Some(site) => Ok(Owner::Site(SiteId::parse(site)?)),
            None => Ok(Owner::Merchant(MerchantId::parse(s)?)),
        }
    }

    pub fn is_platform(&self) -> bool {
        matches!(self, Owner::Platform)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Platform => f.write_str("platform"),
            Owner::Merchant(m) => f.write_str(m.as_str()),
            Owner::Site(s) => write!(f, "site:{s}"),
        }
    }
}

impl Serialize for Owner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Owner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Owner::parse(&s).map_err(|e| serde::de::Error::custom(e.detail()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_back() {
        for k in AppKind::ALL {
            assert_eq!(AppKind::parse(k.as_str()).unwrap(), *k);
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), *r);
        }
        for v in Via::ALL {
            assert_eq!(serde_json::from_value::<Via>(serde_json::json!(v.as_str())).unwrap(), *v);
        }
        assert!(Role::parse("pivot").is_err());
    }

    #[test]
    fn owners_round_trip() {
        for s in ["platform", "m1", "site:demo-site"] {
            assert_eq!(Owner::parse(s).unwrap().to_string(), s);
        }
        assert!(matches!(Owner::parse("site:demo").unwrap(), Owner::Site(_)));
        assert!(Owner::parse("").is_err());
        assert!(Owner::parse("a#b").is_err());
    }
}
