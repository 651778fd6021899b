//! The platform's WeChat third-party platform (第三方平台): its appid, secret and the one push
//! token and EncodingAESKey WeChat uses for its authorization events and for every authorized
//! account's pushes. Merchants authorize it instead of handing over their apps' secrets.

use std::fmt;

use serde::Deserialize;

use crate::error::Error;
use crate::ids::{AppId, Secret};
use crate::wechat::push::PushCrypto;

#[derive(Clone)]
pub struct Component {
    pub appid: AppId,
    pub secret: Secret,
    /// The 消息校验Token: signs authorization events and authorized accounts' pushes.
    pub token: Secret,
    /// Safe mode is forced for a third-party platform; the receive id is the component appid.
    pub crypto: PushCrypto,
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component").field("appid", &self.appid).finish_non_exhaustive()
    }
}

impl Component {
    pub fn new(appid: &str, secret: Secret, token: Secret, encoding_aes_key: &Secret) -> Result<Self, Error> {
        // Configuration faults, named for the operator (never the values).
        let bad = |why: &str| Error::InvalidRequest(format!("third-party platform: {why}"));
        let appid = AppId::parse(appid).map_err(|_| bad("the component appid is malformed"))?;
        if secret.expose().is_empty() || token.expose().is_empty() {
            return Err(bad("the secret and the token must not be empty"));
        }
        let crypto = PushCrypto::new(encoding_aes_key, appid.as_str())
            .map_err(|_| bad("the EncodingAESKey must be 43 base64 characters"))?;
        Ok(Component { appid, secret, token, crypto })
    }
}

/// The seed document's `component` section (devstack; in AWS the values come from SSM). Its
/// `domains` (the 公众号开发域名) are the simulator's to check, so they are not read here.
#[derive(Deserialize)]
pub struct ComponentSeed {
    pub component_appid: String,
    pub secret: Secret,
    pub token: Secret,
    pub encoding_aes_key: Secret,
}

impl ComponentSeed {
    pub fn component(self) -> Result<Component, Error> {
        Component::new(&self.component_appid, self.secret, self.token, &self.encoding_aes_key)
    }
}
