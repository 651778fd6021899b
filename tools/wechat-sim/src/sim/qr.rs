//! Parametric QR codes of official accounts (contract §4): `POST /cgi-bin/qrcode/create` and
//! `GET /cgi-bin/showqrcode`. A ticket remembers its app, its scene and when it expires, so
//! `/sim/users/{user}/scan` can push the right event (or nothing for an expired code).

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::{errcode, lock, Sim, WxError};
use crate::ids;

/// `expire_seconds` when a temporary code's request leaves it out (the current service doc;
/// older docs say 30, contract §10).
pub const QR_DEFAULT_EXPIRE_SECONDS: i64 = 60;
/// The longest a temporary code may live: 30 days.
pub const QR_MAX_EXPIRE_SECONDS: i64 = 2_592_000;
/// `scene_str` is 1 to 64 characters.
pub const QR_MAX_SCENE_STR_CHARS: usize = 64;
/// Permanent codes take `scene_id` 1 to 100000.
pub const QR_MAX_LIMIT_SCENE_ID: i64 = 100_000;
/// Expired temporary codes are forgotten a day after they expired.
const QR_RETENTION_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// What `/cgi-bin/qrcode/create` answers on success (`expire_seconds` only for temporary codes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QrTicket {
    pub ticket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_seconds: Option<i64>,
    pub url: String,
}

/// An issued QR code.
#[derive(Debug)]
pub(super) struct QrCode {
    pub(super) appid: String,
    /// The scene value as pushed (`scene_id` in decimal or `scene_str`).
    pub(super) scene: String,
    /// `None` for a permanent code.
    pub(super) expires_at: Option<i64>,
}

/// A 1×1 PNG: what `showqrcode` serves for any known ticket.
pub const QR_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b, 0x55, 0x00, 0x00, 0x00, 0x0a, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x48, 0xaf, 0xa4, 0x71, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A ticket shaped like WeChat's: standard base64 (with `+`, `/`, `=`, so it needs URL
/// encoding) of a small binary record that embeds the code's URL and its times.
fn make_ticket(url: &str, created: i64, expires: i64) -> String {
    let mut raw = Vec::with_capacity(64 + url.len());
    raw.extend_from_slice(&[0x80, 0x01]);
    raw.extend_from_slice(&ids::random_iv()[..6]);
    raw.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x01]);
    raw.push(u8::try_from(url.len()).unwrap_or(u8::MAX));
    raw.extend_from_slice(url.as_bytes());
    raw.extend_from_slice(&[0x00, 0x02, 0x04]);
    raw.extend_from_slice(&u32::try_from(created).unwrap_or(0).to_le_bytes());
    raw.extend_from_slice(&[0x03, 0x04]);
    raw.extend_from_slice(&u32::try_from(expires).unwrap_or(0).to_le_bytes());
    STANDARD.encode(raw)
}

/// The scene value of a request: `Ok(None)` when `action_info.scene` is missing (WeChat then
/// issues a code whose scene is `0`, contract §4.1), else the validated value.
fn scene_value(body: &Value, string: bool, permanent: bool) -> Result<Option<String>, WxError> {
    let bad = WxError(errcode::INVALID_ARGS);
    let Some(scene) = body.get("action_info").and_then(|i| i.get("scene")) else {
        return Ok(None);
    };
    if string {
        let s = scene.get("scene_str").and_then(Value::as_str).ok_or(bad)?;
        let n = s.chars().count();
        if n == 0 || n > QR_MAX_SCENE_STR_CHARS {
            return Err(bad);
        }
        Ok(Some(s.to_owned()))
    } else {
        let id = scene.get("scene_id").and_then(Value::as_i64).ok_or(bad)?;
        let ok = if permanent {
            (1..=QR_MAX_LIMIT_SCENE_ID).contains(&id)
        } else {
            id != 0 && (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&id)
        };
        if !ok {
            return Err(bad);
        }
        Ok(Some(id.to_string()))
    }
}

impl Sim {
    /// `POST /cgi-bin/qrcode/create?access_token=` with its JSON body: official accounts only
    /// (48001 for another app's token), 47001 for a body that is not JSON, 40097 for an unknown
    /// `action_name`, an `expire_seconds` outside 1..=2592000 or a scene out of its range.
    pub fn qrcode_create(&self, q: &HashMap<String, String>, body: &[u8]) -> Result<QrTicket, WxError> {
        let app = self.check_access_token(q)?;
        if !app.is_official_account() {
            return Err(WxError(errcode::API_UNAUTHORIZED));
        }
        let body: Value = serde_json::from_slice(body).map_err(|_| WxError(errcode::DATA_FORMAT_ERROR))?;
        if !body.is_object() {
            return Err(WxError(errcode::DATA_FORMAT_ERROR));
        }
        let action = body.get("action_name").and_then(Value::as_str).ok_or(WxError(errcode::INVALID_ARGS))?;
        let (permanent, string) = match action {
            "QR_SCENE" => (false, false),
            "QR_STR_SCENE" => (false, true),
            "QR_LIMIT_SCENE" => (true, false),
            "QR_LIMIT_STR_SCENE" => (true, true),
            _ => return Err(WxError(errcode::INVALID_ARGS)),
        };
        let expire_seconds = if permanent {
            None
        } else {
            match body.get("expire_seconds") {
                None | Some(Value::Null) => Some(QR_DEFAULT_EXPIRE_SECONDS),
                Some(v) => Some(
                    v.as_i64()
                        .filter(|s| (1..=QR_MAX_EXPIRE_SECONDS).contains(s))
                        .ok_or(WxError(errcode::INVALID_ARGS))?,
                ),
            }
        };
        let scene = scene_value(&body, string, permanent)?.unwrap_or_else(|| "0".to_owned());
        let now = self.now_millis();
        let expires_at = expire_seconds.map(|s| now.saturating_add(s * 1000));
        let url = format!("http://weixin.qq.com/q/02{}", ids::random_alphanumeric(20));
        let ticket = make_ticket(&url, now.div_euclid(1000), expires_at.map_or(0, |e| e.div_euclid(1000)));
        let mut st = lock(&self.state);
        st.qr_codes.retain(|_, c| c.expires_at.is_none_or(|e| now.saturating_sub(e) < QR_RETENTION_MILLIS));
        st.qr_codes.insert(ticket.clone(), QrCode { appid: app.appid.clone(), scene, expires_at });
        Ok(QrTicket { ticket, expire_seconds, url })
    }

    /// Whether `showqrcode` knows the ticket (expired codes still have an image).
    pub fn qr_ticket_known(&self, ticket: &str) -> bool {
        lock(&self.state).qr_codes.contains_key(ticket)
    }

    /// The (appid, scene) of a ticket that can be scanned now: known and not expired.
    pub(super) fn live_qr(&self, ticket: &str) -> Option<(String, String)> {
        let now = self.now_millis();
        let st = lock(&self.state);
        let code = st.qr_codes.get(ticket)?;
        if code.expires_at.is_some_and(|e| now >= e) {
            return None;
        }
        Some((code.appid.clone(), code.scene.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::registry::Registry;
    use crate::sim::SimConfig;

    const REGISTRY: &str = r#"{"apps":[
        {"appid":"wxmp","kind":"mini_program","secret":"s1"},
        {"appid":"wxoa","kind":"official_account","secret":"s2"}]}"#;

    fn setup() -> (Arc<Sim>, HashMap<String, String>, HashMap<String, String>) {
        let s = Sim::new(SimConfig::new(Registry::from_json_str(REGISTRY).expect("registry")));
        let token = |appid: &str, secret: &str| {
            let q: HashMap<String, String> =
                [("grant_type", "client_credential"), ("appid", appid), ("secret", secret)]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
            let t = s.token(&q).expect("token").access_token;
            HashMap::from([("access_token".to_owned(), t)])
        };
        let (oa, mp) = (token("wxoa", "s2"), token("wxmp", "s1"));
        (s, oa, mp)
    }

    #[test]
    fn create_validates_like_wechat() {
        let (s, oa, mp) = setup();
        let err =
            |q: &HashMap<String, String>, b: Value| s.qrcode_create(q, b.to_string().as_bytes()).err().map(|e| e.0);
        let ok = json!({"expire_seconds":60,"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"x"}}});
        assert_eq!(err(&mp, ok.clone()), Some(48001));
        assert_eq!(err(&HashMap::new(), ok.clone()), Some(41001));
        assert_eq!(s.qrcode_create(&oa, b"{").err(), Some(WxError(47001)));
        let bad = |patch: Value| {
            let mut b = ok.clone();
            if let (Some(b), Some(p)) = (b.as_object_mut(), patch.as_object()) {
                b.extend(p.clone());
            }
            err(&oa, b)
        };
        assert_eq!(bad(json!({"expire_seconds": 2_592_001})), Some(40097));
        assert_eq!(bad(json!({"expire_seconds": 0})), Some(40097));
        assert_eq!(bad(json!({"action_name": "QR_NOPE"})), Some(40097));
        assert_eq!(bad(json!({"action_info": {"scene": {"scene_str": ""}}})), Some(40097));
        assert_eq!(bad(json!({"action_info": {"scene": {"scene_str": "x".repeat(65)}}})), Some(40097));
        assert_eq!(bad(json!({"action_info": {"scene": {"scene_str": "é".repeat(64)}}})), None);
        assert_eq!(bad(json!({"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 0}}})), Some(40097));
        assert_eq!(
            bad(json!({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100_001}}})),
            Some(40097)
        );
        assert_eq!(bad(json!({"expire_seconds": 2_592_000})), None);
    }

    #[test]
    fn tickets_remember_scene_and_expiry() {
        let (s, oa, _) = setup();
        let create = |b: Value| s.qrcode_create(&oa, b.to_string().as_bytes()).expect("created");
        let t = create(
            json!({"expire_seconds":120,"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"abc"}}}),
        );
        assert_eq!(t.expire_seconds, Some(120));
        assert!(t.url.starts_with("http://weixin.qq.com/q/"));
        assert!(STANDARD.decode(&t.ticket).is_ok_and(|raw| raw.windows(t.url.len()).any(|w| w == t.url.as_bytes())));
        assert_eq!(s.live_qr(&t.ticket), Some(("wxoa".into(), "abc".into())));
        let d = create(json!({"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":7}}}));
        assert_eq!(d.expire_seconds, Some(QR_DEFAULT_EXPIRE_SECONDS));
        let p = create(json!({"action_name":"QR_LIMIT_SCENE","action_info":{"scene":{"scene_id":42}}}));
        assert_eq!(p.expire_seconds, None);
        // The quirk: no `scene` wrapper still issues a ticket, for scene 0.
        let z = create(json!({"expire_seconds":60,"action_name":"QR_STR_SCENE","action_info":{"scene_str":"abc"}}));
        assert_eq!(s.live_qr(&z.ticket).map(|(_, scene)| scene).as_deref(), Some("0"));
        s.advance_clock_millis(120_000);
        assert_eq!(s.live_qr(&t.ticket), None);
        assert!(s.qr_ticket_known(&t.ticket));
        assert_eq!(s.live_qr(&p.ticket), Some(("wxoa".into(), "42".into())));
        assert_eq!(s.live_qr("nope"), None);
    }
}
