//! Mini-program login (unionid first) and the two-step encryptedData unionid; app, website and
//! OA H5 login.

use serde::Serialize;

use crate::crypto;
use crate::domain::assoc::{Assoc, PersonView, Seen};
use crate::domain::views::Public;
use crate::domain::webauth::{settle_confirm, spend_confirm};
use crate::error::Error;
use crate::ids::{AppId, Code, UnionId};
use crate::items::identity::Identity;
use crate::items::stash;
use crate::model::{AppKind, Via};
use crate::registry::Registry;
use crate::tokens::{Tokens, Verified};
use crate::wechat::WeChat;

#[derive(Debug, Serialize)]
pub struct LoginAnswer {
    pub token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub person_id: String,
    pub openid: String,
    pub unionid: Option<String>,
    pub new_person: bool,
    pub pivot_linked: bool,
    pub linked: Public,
}

#[derive(Debug, Serialize)]
pub struct MeAnswer {
    pub person_id: String,
    pub linked: Public,
}

/// What logging in needs: the association rules, WeChat, the registry and the token keys.
pub struct Login<'a> {
    pub assoc: Assoc<'a>,
    pub wechat: &'a dyn WeChat,
    pub apps: &'a Registry,
    pub tokens: &'a Tokens,
    /// How long a session_key is kept for the two-step userinfo call.
    pub stash_ttl_secs: i64,
}

impl Login<'_> {
    fn answer(&self, identity: &Identity, view: &PersonView, new_person: bool) -> Result<LoginAnswer, Error> {
        let now = self.assoc.clock.now_secs();
        let pivot_linked = self.apps.pivot().is_some_and(|p| view.has_app(&p.appid));
        Ok(LoginAnswer {
            token: self.tokens.issue(&view.person, &identity.appid, &identity.openid, now)?,
            token_type: "Bearer",
            expires_in: self.tokens.ttl_secs,
            person_id: view.person.to_string(),
            openid: identity.openid.to_string(),
            unionid: identity.unionid.as_ref().map(|u| u.to_string()),
            new_person,
            pivot_linked,
            linked: Public::of(view),
        })
    }

    /// `wx.login` code → session → person. The session_key is kept server-side, and only when
    /// the unionid is still unknown (the two-step flow may need it).
    pub async fn mp_login(&self, appid: &AppId, code: &Code) -> Result<LoginAnswer, Error> {
        let app = self.apps.app_of_kind(appid, AppKind::MiniProgram)?;
        let session = self.wechat.code2session(app, code).await?;
        let r = self.assoc.login(app, &session.openid, session.unionid.as_ref(), Via::Jscode2session).await?;
        crate::metrics::count(crate::metrics::Counter::Login);
        if r.identity.unionid.is_none() && app.open_platform.is_some() {
            let expires = self.assoc.clock.now_secs() + self.stash_ttl_secs;
            let keep = stash::put(&app.appid, &session.openid, &r.view.person, &session.session_key, expires);
            self.assoc.store.write(keep).await?;
        }
        self.answer(&r.identity, &r.view, r.new_person)
    }

    /// `wx.getUserInfo`'s encryptedData, opened with the stashed session_key, names the unionid.
    pub async fn mp_userinfo(&self, who: &Verified, encrypted: &str, iv: &str) -> Result<LoginAnswer, Error> {
        let app = self.apps.app_of_kind(&who.appid, AppKind::MiniProgram)?;
        let stashed = self.assoc.store.get(&stash::key(&who.appid, &who.openid)).await?;
        let session_key = stash::session_key(stashed, self.assoc.clock.now_secs()).ok_or(Error::TicketInvalid)?;
        let info = crypto::open_userinfo(&session_key, encrypted, iv, who.appid.as_str())?;
        if info.open_id.as_deref().is_some_and(|o| o != who.openid.as_str()) {
            return Err(Error::WatermarkMismatch);
        }
        let (ident, view) = self.assoc.current(who).await?;
        let unionid = match info.union_id.as_deref() {
            Some(u) if app.open_platform.is_some() => Some(UnionId::parse(u).map_err(|_| Error::DecryptFailed)?),
            _ => None,
        };
        match (unionid, &ident.unionid) {
            (Some(u), None) => {
                let (view, attached) = self.assoc.attach_unionid(app, &ident, &u).await?;
                let ident = Identity { person: view.person.clone(), unionid: attached.then_some(u), ..ident };
                self.answer(&ident, &view, false)
            }
            _ => self.answer(&ident, &view, false),
        }
    }

    /// `POST /v1/auth/confirm`: the ticket's owner, with its own token, links what its
    /// web-view pass saw — all of it or, when that would give a person two openids of one app,
    /// none of it.
    pub async fn confirm(&self, who: &Verified, code: &str) -> Result<LoginAnswer, Error> {
        let c = spend_confirm(self.assoc, who, code).await?;
        let linked = async {
            let (ident, view) = self.assoc.current(who).await?;
            let apps = c
                .seen
                .iter()
                .map(|s| self.apps.app_of_kind(&s.appid, AppKind::OfficialAccount))
                .collect::<Result<Vec<_>, _>>()?;
            let seen: Vec<Seen<'_>> = c
                .seen
                .iter()
                .zip(apps)
                .map(|(s, app)| Seen { app, openid: &s.openid, unionid: s.unionid.as_ref() })
                .collect();
            let view = self.assoc.link_all(&view.person, &seen, Via::WebAuth).await?;
            Ok::<_, Error>((Identity { person: view.person.clone(), ..ident }, view))
        }
        .await;
        settle_confirm(self.assoc, &c, code, linked.as_ref().err()).await;
        let (ident, view) = linked?;
        self.answer(&ident, &view, false)
    }

    pub async fn me(&self, who: &Verified) -> Result<MeAnswer, Error> {
        let (_, view) = self.assoc.current(who).await?;
        Ok(MeAnswer { person_id: view.person.to_string(), linked: Public::of(&view) })
    }

    /// Mobile-app login (WeChat SDK), website QR login (`snsapi_login`) and an official
    /// account's H5 login (`snsapi_userinfo`): the app's backend hands the bridge the OAuth
    /// code; the person is found unionid first, so these apps join the person the mini
    /// programs know.
    pub async fn open_login(&self, appid: &AppId, code: &Code) -> Result<LoginAnswer, Error> {
        let app = self
            .apps
            .app(appid)
            .filter(|a| matches!(a.kind, AppKind::MobileApp | AppKind::Website | AppKind::OfficialAccount))
            .ok_or(Error::UnknownApp)?;
        let grant = self.wechat.web_grant(app, code).await?;
        if grant.snapshot_user {
            return Err(Error::InvalidRequest("a snapshot-page visitor has no identity to log in".into()));
        }
        let unionid = match (&grant.unionid, app.kind, &app.open_platform) {
            (None, AppKind::OfficialAccount, Some(_)) => match self.wechat.web_unionid(&grant).await {
                Ok(u) => u,
                // A snsapi_base grant cannot read userinfo (48001): log in by openid alone.
                Err(Error::WeChatError(48001)) => None,
                Err(e) => return Err(e),
            },
            _ => grant.unionid.clone(),
        };
        let r = self.assoc.login(app, &grant.openid, unionid.as_ref(), Via::OpenLogin).await?;
        crate::metrics::count(crate::metrics::Counter::Login);
        self.answer(&r.identity, &r.view, r.new_person)
    }
}
