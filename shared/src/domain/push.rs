//! WeChat server pushes to an official account's URL (`/v1/wechat/push/{appid}`): URL
//! verification, scene scans, the login-link menu, unsubscribes. The plain signature is
//! checked always, `msg_signature` and decryption in safe mode — the mode comes from the app's
//! configuration, never from the request. Retried pushes change nothing twice; a signed
//! (timestamp, nonce) pair belongs to the first body it came with, so a plain-mode push
//! replayed with another body is refused.

use sha2::{Digest, Sha256};

use crate::component::Component;
use crate::directory::{Directory, DirectoryExt};
use crate::domain::scene::{ScanOutcome, Scenes};
use crate::domain::sitelink::SiteLinks;
use crate::error::Error;
use crate::ids::{AppId, OpenId, Secret};
use crate::items::push_seen::{self, Reply};
use crate::items::{identity, Tx, TxError};
use crate::model::{AppKind, Auth};
use crate::registry::App;
use crate::store::StoreError;
use crate::wechat::push::{self as wx, PushCrypto, PushMessage};
use std::sync::Arc;

/// A push signed further from now than this is a replay, not WeChat (whose retries end within
/// ~15 s): refused, so a captured request cannot be played back once it is forgotten.
const MAX_AGE_SECS: i64 = 300;
/// Pushes are remembered for the whole window a signature is accepted in, both ways, and more.
const SEEN_SECS: i64 = 2 * MAX_AGE_SECS + 60;

pub const TEXT_BOUND: &str =
    "绑定成功：你的微信已关联网站账号。Bound: your WeChat is now linked to your website account.";
pub const TEXT_EXPIRED: &str =
    "二维码已过期，请刷新网页后重新扫码。This QR code has expired: refresh the page and scan again.";
pub const TEXT_CONFLICT: &str =
    "无法绑定：该网站账号已关联其他微信。Cannot bind: this website account is linked to another WeChat.";
pub const TEXT_WECHAT_TAKEN: &str =
    "无法绑定：你的微信已绑定该网站的另一个账号。Cannot bind: your WeChat is already bound to another account of this website.";
pub const TEXT_CONFIRM: &str =
    "请在微信中打开链接确认绑定网站账号 / Open the link to confirm binding the website account";
pub const TEXT_LINK: &str = "点击登录网站 / Log in to the website:";

/// The query WeChat sends with every push.
#[derive(Debug, Default)]
pub struct PushQuery {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
}

/// What to answer WeChat: `success`, or a passive reply (XML, enveloped in safe mode).
#[derive(Debug, PartialEq, Eq)]
pub enum PushAnswer {
    Success,
    Xml(String),
}

/// What the push endpoint needs: the registry, scene binding and login links.
pub struct Pushes<'a> {
    pub apps: &'a dyn Directory,
    pub scenes: Scenes<'a>,
    pub links: SiteLinks<'a>,
}

/// The account, the token its pushes are signed with, and their crypto in safe mode. An
/// account that authorized the platform is pushed to in safe mode, always, with the platform's
/// one token and key (receive id: the component appid): WeChat fills `$APPID$` into the
/// platform's one message URL.
async fn push_app(
    apps: &dyn Directory,
    component: Option<&Component>,
    appid: &AppId,
) -> Result<(Arc<App>, Secret, Option<PushCrypto>), Error> {
    let app = apps.app_of_kind(appid, AppKind::OfficialAccount).await?;
    match app.auth {
        Auth::Component => {
            let c = component.ok_or(Error::UnknownApp)?;
            Ok((app, c.token.clone(), Some(c.crypto.clone())))
        }
        Auth::Secret => {
            let token = app.token.clone().ok_or(Error::UnknownApp)?;
            let crypto = match (app.safe_mode, &app.encoding_aes_key) {
                (false, _) => None,
                (true, Some(key)) => Some(PushCrypto::new(key, app.appid.as_str())?),
                (true, None) => return Err(Error::Internal("safe mode without a key".into())),
            };
            Ok((app, token, crypto))
        }
    }
}

fn signed_parts(q: &PushQuery) -> Result<(&str, &str, &str), Error> {
    match (&q.signature, &q.timestamp, &q.nonce) {
        (Some(s), Some(t), Some(n)) => Ok((s, t, n)),
        _ => Err(Error::SignatureInvalid),
    }
}

impl Pushes<'_> {
    /// `GET`: WeChat checks the URL when the developer saves it; answer echostr if it is WeChat.
    pub async fn verify_url(&self, appid: &AppId, q: &PushQuery) -> Result<String, Error> {
        let (_, token, _) = push_app(self.apps, self.scenes.broker.component, appid).await?;
        let (sig, ts, nonce) = signed_parts(q)?;
        wx::verify_signature(&token, ts, nonce, sig)?;
        q.echostr.clone().ok_or_else(|| Error::InvalidRequest("echostr is required".into()))
    }

    /// `POST`: one push.
    pub async fn handle(&self, appid: &AppId, q: &PushQuery, body: &[u8]) -> Result<PushAnswer, Error> {
        let (app, token, crypto) = push_app(self.apps, self.scenes.broker.component, appid).await?;
        let token = &token;
        let app = &*app;
        let menu_key = self.apps.platform().await?.menu_login_key.clone();
        let (store, clock) = (self.scenes.assoc.store, self.scenes.assoc.clock);
        if body.len() > wx::MAX_PUSH_BODY {
            return Err(Error::PayloadTooLarge(wx::MAX_PUSH_BODY));
        }
        let (sig, ts, nonce) = signed_parts(q)?;
        wx::verify_signature(token, ts, nonce, sig)?;
        let signed_at: i64 = ts.parse().map_err(|_| Error::SignatureInvalid)?;
        if (clock.now_secs() - signed_at).abs() > MAX_AGE_SECS {
            return Err(Error::SignatureInvalid);
        }
        let msg = match &crypto {
            Some(c) => {
                let msg_sig = match (q.encrypt_type.as_deref(), &q.msg_signature) {
                    (Some("aes"), Some(m)) => m,
                    // A plaintext push to a safe-mode account is not WeChat's.
                    _ => return Err(Error::SignatureInvalid),
                };
                let outer = wx::parse(body)?;
                let enc = outer.encrypt.ok_or(Error::SignatureInvalid)?;
                wx::verify_msg_signature(token, ts, nonce, &enc, msg_sig)?;
                wx::parse(c.decrypt(&enc)?.as_bytes())?
            }
            None => {
                let m = wx::parse(body)?;
                if m.encrypt.is_some() {
                    return Err(Error::InvalidRequest("an encrypted push to a plain-mode account".into()));
                }
                m
            }
        };
        let openid =
            OpenId::parse(&msg.from_user).map_err(|_| Error::InvalidRequest("FromUserName is malformed".into()))?;
        crate::metrics::count(crate::metrics::Counter::PushHandled);

        // Claim the push (the event, and the signed pair for this body). A retry of one
        // already handled gets the same reply, changing nothing; a replay changes nothing.
        let now = clock.now_secs();
        let event = push_seen::event_key(&app.appid, &dedup_key(&msg));
        let pair = push_seen::signed_key(sig);
        let body_digest = digest(&[&String::from_utf8_lossy(body)]);
        let mut claim = Tx::new();
        let pair_op = claim.add(push_seen::claim_pair(&pair, &body_digest, now + SEEN_SECS));
        claim.add(push_seen::claim_event(&event, now + SEEN_SECS));
        let reply = match claim.commit(store).await {
            Ok(()) => {
                if crypto.is_none() && binds(menu_key.as_deref(), &msg) {
                    tracing::warn!(
                        appid = %app.appid,
                        "a push that binds came in plain mode, where WeChat's signature does not cover the body: \
                         switch this official account to safe mode"
                    );
                }
                let reply = match self.react(app, &msg, &openid, menu_key.as_deref()).await {
                    Ok(r) => r,
                    Err(e) => {
                        // Let WeChat's retry try again.
                        let _ = store.write(push_seen::release(&event)).await;
                        let _ = store.write(push_seen::release(&pair)).await;
                        return Err(e);
                    }
                };
                if let Some(r) = &reply {
                    let _ = store.write(push_seen::record_reply(&event, r)).await;
                }
                reply
            }
            Err(TxError::Refused(op)) if op == pair_op => {
                let first = store.get(&pair).await?;
                if first.as_ref().and_then(push_seen::body) != Some(body_digest.as_str()) {
                    tracing::warn!(appid = %app.appid, "a signed push replayed with another body: refused");
                    return Err(Error::SignatureInvalid);
                }
                tracing::info!("push retried by WeChat: answered again, handled once");
                store.get(&event).await?.as_ref().and_then(push_seen::reply)
            }
            Err(TxError::Refused(_)) => {
                // The same event under a new pair: a redelivery. The pair is this body's now.
                let _ = store.write(push_seen::claim_pair(&pair, &body_digest, now + SEEN_SECS)).await;
                tracing::info!("push redelivered by WeChat: answered again, handled once");
                store.get(&event).await?.as_ref().and_then(push_seen::reply)
            }
            Err(e) => return Err(e.into()),
        };
        let text = match reply {
            None => None,
            Some(Reply::Text { text }) => Some(text),
            Some(Reply::LoginLink { timestamp, nonce }) => match self.apps.site_of_account(&app.appid).await? {
                Some(site) => {
                    Some(format!("{TEXT_LINK} {}", self.links.link(&site, app, &openid, &timestamp, &nonce)?))
                }
                None => None,
            },
        };
        let Some(text) = text else { return Ok(PushAnswer::Success) };
        let xml = wx::text_reply(&msg.from_user, &msg.to_user, clock.now_secs(), &text);
        Ok(PushAnswer::Xml(match &crypto {
            Some(c) => {
                let nonce: String = self.scenes.assoc.ids.token().chars().take(10).collect();
                c.envelope(token, &xml, &clock.now_secs().to_string(), &nonce)
            }
            None => xml,
        }))
    }
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex::encode(&h.finalize()[..16])
}

/// Scene events and the login-link menu: the pushes that end in a binding.
fn binds(menu_login_key: Option<&str>, m: &PushMessage) -> bool {
    let key = m.event_key.as_deref().unwrap_or("");
    match m.event.as_deref() {
        Some("subscribe") => key.starts_with("qrscene_"),
        Some("SCAN") => !key.is_empty(),
        Some("CLICK") => menu_login_key == Some(key),
        _ => false,
    }
}

/// MsgId when WeChat gives one (messages), else what identifies an event.
fn dedup_key(m: &PushMessage) -> String {
    let raw = match &m.msg_id {
        Some(id) => format!("id\n{id}"),
        None => format!(
            "ev\n{}\n{}\n{}\n{}",
            m.from_user,
            m.create_time,
            m.event.as_deref().unwrap_or(""),
            m.event_key.as_deref().unwrap_or("")
        ),
    };
    hex::encode(&Sha256::digest(raw.as_bytes())[..16])
}

impl Pushes<'_> {
    /// What the push means for us; the reply, if any.
    async fn react(
        &self,
        app: &App,
        m: &PushMessage,
        openid: &OpenId,
        menu_login_key: Option<&str>,
    ) -> Result<Option<Reply>, Error> {
        if m.msg_type != "event" {
            return Ok(None);
        }
        let key = m.event_key.as_deref().unwrap_or("");
        let scene = match m.event.as_deref() {
            Some("subscribe") => key.strip_prefix("qrscene_"),
            Some("SCAN") => Some(key),
            Some("CLICK") if menu_login_key == Some(key) => {
                if self.apps.site_of_account(&app.appid).await?.is_none() {
                    return Ok(None);
                }
                let timestamp = self.scenes.assoc.clock.now_secs().to_string();
                return Ok(Some(Reply::LoginLink { timestamp, nonce: self.scenes.assoc.ids.token() }));
            }
            Some("unsubscribe") => {
                let mark = identity::mark_unsubscribed(&app.appid, openid, self.scenes.assoc.clock.now_millis());
                match self.scenes.assoc.store.write(mark).await {
                    Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                return Ok(None);
            }
            _ => None,
        };
        let Some(scene) = scene.filter(|s| !s.is_empty()) else { return Ok(None) };
        let text = match self.scenes.scanned(app, scene, openid).await? {
            ScanOutcome::Confirm { label, link } => match label {
                Some(l) => format!("{TEXT_CONFIRM}「{l}」: {link}"),
                None => format!("{TEXT_CONFIRM}: {link}"),
            },
            ScanOutcome::Bound => TEXT_BOUND.to_owned(),
            ScanOutcome::Expired | ScanOutcome::Unknown => TEXT_EXPIRED.to_owned(),
            ScanOutcome::WeChatTaken => TEXT_WECHAT_TAKEN.to_owned(),
            ScanOutcome::SiteUserTaken => TEXT_CONFLICT.to_owned(),
        };
        Ok(Some(Reply::Text { text }))
    }
}
