//! `POST /cgi-bin/open/get?access_token=` `{"appid"}`: the open-platform account an app is bound
//! to (`open_appid`), which its unionids belong to; 89002 when it is bound to none. A third-party
//! platform calls it with the authorizer access token to learn where an authorized app's
//! unionids live.

use std::collections::HashMap;

use serde_json::Value;

use super::{errcode, Sim, WxError};

impl Sim {
    pub fn open_get(&self, q: &HashMap<String, String>, body: &[u8]) -> Result<String, WxError> {
        let app = self.check_access_token(q)?;
        let body: Value = serde_json::from_slice(body).map_err(|_| WxError(errcode::DATA_FORMAT_ERROR))?;
        // The token must be the named app's own.
        if body.get("appid").and_then(Value::as_str) != Some(app.appid.as_str()) {
            return Err(WxError(errcode::INVALID_APPID));
        }
        app.open_platform.clone().ok_or(WxError(errcode::OPEN_NOT_EXISTS))
    }
}
