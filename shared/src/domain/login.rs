//! Mini-program login (unionid first) and the two-step encryptedData unionid; app, website and
//! OA H5 login.

use serde::Serialize;

use crate::crypto;
use crate::directory::{Directory, DirectoryExt};
use crate::domain::access_token::Broker;
use crate::domain::assoc::{Assoc, PersonView, Seen};
use crate::domain::views::Public;
use crate::domain::views::Shown;
use crate::domain::webauth::{settle_confirm, spend_confirm};
use crate::error::Error;
use crate::ids::{AppId, Code, OpenId, PersonId, UnionId};
use crate::items::identity::{self, Found, Identity};
use crate::items::{person, Tx, TxError};
use crate::model::{AppKind, Owner, Via};
use crate::pairwise::Pairwise;
use crate::registry::App;
use crate::session_seal::SessionSeal;
use crate::tokens::{Tokens, Verified};

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

/// What logging in needs: the association rules, WeChat, the registry, the token keys and the
/// server keys (pairwise ids, sealed sessions).
pub struct Login<'a> {
    pub assoc: Assoc<'a>,
    /// WeChat, acting for the app with its secret or through the third-party platform.
    pub broker: Broker<'a>,
    pub apps: &'a dyn Directory,
    pub tokens: &'a Tokens,
    pub pairwise: &'a Pairwise,
    pub sessions: &'a SessionSeal,
    /// How long a session_key stays good for the two-step userinfo call.
    pub stash_ttl_secs: i64,
}

/// What a login answers of the person: the app's owner's own links, and whether the pivot is.
pub(crate) struct Summary {
    pub person: PersonId,
    pub pivot_linked: bool,
    pub linked: Public,
}

/// A summary kept on the identity item, so a returning login reads that one item.
#[derive(serde::Serialize, serde::Deserialize)]
struct LoginView {
    /// When it was computed: after a day it is computed again (the bound on a view a crash
    /// left stale).
    at: i64,
    /// The pivot it was computed for: an operator replacing the pivot changes no person, so
    /// a view of another pivot is not used.
    pivot: Option<AppId>,
    pivot_linked: bool,
    linked: Vec<Shown>,
}

const LOGIN_VIEW_SECS: i64 = 24 * 3600;

enum Returning {
    Answer(Identity, Summary),
    /// No fresh view: the identity item as read.
    Read(Found),
}

impl Login<'_> {
    async fn summary(&self, app: &App, view: &PersonView) -> Result<Summary, Error> {
        let pivot = self.apps.platform().await?.pivot.clone();
        Ok(Summary {
            person: view.person.clone(),
            pivot_linked: pivot.as_ref().is_some_and(|p| view.has_app(p)),
            linked: Public::owned_by(view, &app.owner),
        })
    }

    fn answer(
        &self,
        app: &App,
        identity: &Identity,
        shown: Summary,
        new_person: bool,
        sealed_session: Option<String>,
    ) -> Result<LoginAnswer, Error> {
        let now = self.assoc.clock.now_secs();
        let person_id = self.pairwise.id(&shown.person, &app.owner)?;
        let sub = PersonId::parse(&person_id)?;
        Ok(LoginAnswer {
            token: self.tokens.issue_with(
                &sub,
                &identity.appid,
                &identity.openid,
                now,
                &crate::tokens::audience_of(&app.owner),
                sealed_session,
            )?,
            token_type: "Bearer",
            expires_in: self.tokens.ttl_secs,
            person_id,
            openid: identity.openid.to_string(),
            unionid: identity.unionid.as_ref().map(|u| u.to_string()),
            new_person,
            pivot_linked: shown.pivot_linked,
            linked: shown.linked,
        })
    }

    async fn answer_view(
        &self,
        app: &App,
        identity: &Identity,
        view: &PersonView,
        new_person: bool,
    ) -> Result<LoginAnswer, Error> {
        let shown = self.summary(app, view).await?;
        self.answer(app, identity, shown, new_person, None)
    }

    /// `wx.login` code → session → person. When the unionid is still unknown (the two-step
    /// flow may need the session_key), the key rides in the bearer token, sealed; nothing is
    /// written for it. A returning login reads one item, the identity, whatever the person's
    /// size: it answers from the login view kept there.
    pub async fn mp_login(&self, appid: &AppId, code: &Code) -> Result<LoginAnswer, Error> {
        let app = self.apps.app_of_kind(appid, AppKind::MiniProgram).await?;
        let session = self.broker.code2session(&app, code).await?;
        crate::metrics::count(crate::metrics::Counter::Login);
        let seal = |unionid: &Option<UnionId>| {
            (unionid.is_none() && app.open_platform.is_some())
                .then(|| {
                    let until = self.assoc.clock.now_secs() + self.stash_ttl_secs;
                    self.sessions.seal(&session.session_key, &app.appid, &session.openid, until)
                })
                .transpose()
        };
        let read = match self.returning(&app, &session.openid, session.unionid.as_ref()).await? {
            Returning::Answer(ident, shown) => return self.answer(&app, &ident, shown, false, seal(&ident.unionid)?),
            Returning::Read(found) => found,
        };
        let r = self
            .assoc
            .login_from(&app, &session.openid, session.unionid.as_ref(), Via::Jscode2session, Some(read))
            .await?;
        let shown = self.summary(&app, &r.view).await?;
        if !r.new_person {
            self.keep_view(&r.identity).await;
        }
        self.answer(&app, &r.identity, shown, r.new_person, seal(&r.identity.unionid)?)
    }

    /// A returning identity with a fresh login view (and nothing new to attach): its answer;
    /// else the identity item as read, for the login to go on from.
    async fn returning(&self, app: &App, openid: &OpenId, unionid: Option<&UnionId>) -> Result<Returning, Error> {
        let it = self.assoc.store.get(&identity::key(&app.appid, openid)).await?;
        let found = Identity::found(&app.appid, openid, it.as_ref())?;
        let view = it.as_ref().and_then(identity::login_view).and_then(|v| serde_json::from_str::<LoginView>(v).ok());
        let pivot = self.apps.platform().await?.pivot.clone();
        let now = self.assoc.clock.now_secs();
        let learns_unionid = |i: &Identity| unionid.is_some() && i.unionid.is_none() && app.open_platform.is_some();
        Ok(match (found, view) {
            (Found::Live(ident), Some(view))
                if !learns_unionid(&ident) && now - view.at <= LOGIN_VIEW_SECS && view.pivot == pivot =>
            {
                let shown = Summary {
                    person: ident.person.clone(),
                    pivot_linked: view.pivot_linked,
                    linked: Public(view.linked),
                };
                Returning::Answer(ident, shown)
            }
            (found, _) => Returning::Read(found),
        })
    }

    /// Keeps the answer on the identity for the next login — only if the person is still at
    /// the version it was computed from (read settled: the version no newer than the links).
    async fn keep_view(&self, ident: &Identity) {
        let kept = async {
            let view = self.assoc.settled(&ident.person).await?;
            if view.person != ident.person {
                return Ok::<_, Error>(());
            }
            let app = self.apps.app(&ident.appid).await?.ok_or(Error::UnknownApp)?;
            let shown = self.summary(&app, &view).await?;
            let lv = LoginView {
                at: self.assoc.clock.now_secs(),
                pivot: self.apps.platform().await?.pivot.clone(),
                pivot_linked: shown.pivot_linked,
                linked: shown.linked.0,
            };
            let json = serde_json::to_string(&lv).map_err(|e| Error::Internal(e.to_string()))?;
            let mut tx = Tx::new();
            tx.add(person::still_at(&view.person, view.version.as_deref()));
            tx.add(identity::keep_login_view(&ident.appid, &ident.openid, &view.person, &json));
            match tx.commit(self.assoc.store).await {
                Ok(()) | Err(TxError::Refused(_)) | Err(TxError::Conflict) => Ok(()),
                Err(e) => Err(e.into()),
            }
        };
        if let Err(e) = kept.await {
            tracing::debug!(error = %e, "login view not kept");
        }
    }

    /// `wx.getUserInfo`'s encryptedData, opened with the stashed session_key, names the unionid.
    pub async fn mp_userinfo(&self, who: &Verified, encrypted: &str, iv: &str) -> Result<LoginAnswer, Error> {
        let app = self.apps.app_of_kind(&who.appid, AppKind::MiniProgram).await?;
        let sealed = who.sealed_session.as_deref().ok_or(Error::TicketInvalid)?;
        let session_key = self.sessions.open(sealed, &who.appid, &who.openid, self.assoc.clock.now_secs())?;
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
                let (view, attached) = self.assoc.attach_unionid(&app, &ident, &u).await?;
                let ident = Identity { person: view.person.clone(), unionid: attached.then_some(u), ..ident };
                self.answer_view(&app, &ident, &view, false).await
            }
            _ => self.answer_view(&app, &ident, &view, false).await,
        }
    }

    /// `POST /v1/auth/confirm`: the ticket's owner, with its own token, links what its
    /// web-view pass saw — all of it or, when that would give a person two openids of one app,
    /// none of it.
    pub async fn confirm(&self, who: &Verified, code: &str) -> Result<LoginAnswer, Error> {
        let c = spend_confirm(self.assoc, who, code).await?;
        let linked = async {
            let (ident, view) = self.assoc.current(who).await?;
            let mut apps = Vec::with_capacity(c.seen.len());
            for s in &c.seen {
                apps.push(self.apps.app_of_kind(&s.appid, AppKind::OfficialAccount).await?);
            }
            let seen: Vec<Seen<'_>> = c
                .seen
                .iter()
                .zip(&apps)
                .map(|(s, app)| Seen { app, openid: &s.openid, unionid: s.unionid.as_ref() })
                .collect();
            let view = self.assoc.link_all(&view.person, &seen, Via::WebAuth).await?;
            Ok::<_, Error>((Identity { person: view.person.clone(), ..ident }, view))
        }
        .await;
        settle_confirm(self.assoc, &c, code, linked.as_ref().err()).await;
        let (ident, view) = linked?;
        let app = self.apps.app(&who.appid).await?.ok_or(Error::InvalidToken)?;
        self.answer_view(&app, &ident, &view, false).await
    }

    pub async fn me(&self, who: &Verified) -> Result<MeAnswer, Error> {
        let (_, view) = self.assoc.current(who).await?;
        let app = self.apps.app(&who.appid).await?.ok_or(Error::InvalidToken)?;
        let linked = match &app.owner {
            Owner::Platform => Public::of(&view),
            owner => Public::owned_by(&view, owner),
        };
        Ok(MeAnswer { person_id: self.pairwise.id(&view.person, &app.owner)?, linked })
    }

    /// Mobile-app login (WeChat SDK), website QR login (`snsapi_login`) and an official
    /// account's H5 login (`snsapi_userinfo`): the app's backend hands the bridge the OAuth
    /// code; the person is found unionid first, so these apps join the person the mini
    /// programs know.
    pub async fn open_login(&self, appid: &AppId, code: &Code) -> Result<LoginAnswer, Error> {
        let app = self
            .apps
            .app(appid)
            .await?
            .filter(|a| matches!(a.kind, AppKind::MobileApp | AppKind::Website | AppKind::OfficialAccount))
            .ok_or(Error::UnknownApp)?;
        let grant = self.broker.web_grant(&app, code).await?;
        if grant.snapshot_user {
            return Err(Error::InvalidRequest("a snapshot-page visitor has no identity to log in".into()));
        }
        let unionid = match (&grant.unionid, app.kind, &app.open_platform) {
            (None, AppKind::OfficialAccount, Some(_)) => match self.broker.wechat.web_unionid(&grant).await {
                Ok(u) => u,
                // A snsapi_base grant cannot read userinfo (48001): log in by openid alone.
                Err(Error::WeChatError(48001)) => None,
                Err(e) => return Err(e),
            },
            _ => grant.unionid.clone(),
        };
        let r = self.assoc.login(&app, &grant.openid, unionid.as_ref(), Via::OpenLogin).await?;
        crate::metrics::count(crate::metrics::Counter::Login);
        self.answer_view(&app, &r.identity, &r.view, r.new_person).await
    }
}
