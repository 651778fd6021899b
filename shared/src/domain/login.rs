//! Mini-program login (unionid first) and the two-step encryptedData unionid.

use serde::Serialize;

use crate::bridge::Bridge;
use crate::crypto;
use crate::domain::assoc::{Identity, PersonView, Via};
use crate::domain::keys;
use crate::error::Error;
use crate::ids::{AppId, Code, OpenId, PersonId, Secret, UnionId};
use crate::registry::{App, AppKind};
use crate::store::{item, s, Attr, ItemExt, Write};
use crate::tokens::Verified;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct LinkedOut {
    pub appid: String,
    pub kind: String,
    pub owner: String,
}

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
    pub linked: Vec<LinkedOut>,
}

#[derive(Debug, Serialize)]
pub struct MeAnswer {
    pub person_id: String,
    pub linked: Vec<LinkedOut>,
}

pub fn linked_out(view: &PersonView) -> Vec<LinkedOut> {
    view.linked
        .iter()
        .map(|l| LinkedOut { appid: l.appid.to_string(), kind: l.kind.clone(), owner: l.owner.clone() })
        .collect()
}

fn answer(b: &Bridge, identity: &Identity, view: &PersonView, new_person: bool) -> Result<LoginAnswer, Error> {
    let now = b.clock.now_secs();
    let pivot_linked = b.registry.pivot().is_some_and(|p| view.has_app(&p.appid));
    Ok(LoginAnswer {
        token: b.tokens.issue(&view.person, &identity.appid, &identity.openid, now)?,
        token_type: "Bearer",
        expires_in: b.tokens.ttl_secs,
        person_id: view.person.to_string(),
        openid: identity.openid.to_string(),
        unionid: identity.unionid.as_ref().map(|u| u.to_string()),
        new_person,
        pivot_linked,
        linked: linked_out(view),
    })
}

/// `wx.login` code → session → person. The session_key is kept server-side, and only when
/// the unionid is still unknown (the two-step flow may need it).
pub async fn mp_login(b: &Bridge, appid: &AppId, code: &Code) -> Result<LoginAnswer, Error> {
    let app = b.registry.app_of_kind(appid, AppKind::MiniProgram)?;
    let session = b.wechat.code2session(app, code).await?;
    let r = b.assoc().login(app, &session.openid, session.unionid.as_ref(), Via::Jscode2session).await?;
    crate::metrics::count(crate::metrics::Counter::Login);
    if r.identity.unionid.is_none() && app.open_platform.is_some() {
        stash(b, app, &session.openid, &r.view.person, &session.session_key).await?;
    }
    answer(b, &r.identity, &r.view, r.new_person)
}

async fn stash(b: &Bridge, app: &App, openid: &OpenId, person: &PersonId, key: &Secret) -> Result<(), Error> {
    let expires = b.clock.now_secs() + b.settings.stash_ttl_secs;
    let it = item(
        &keys::stash(&app.appid, openid),
        [("session_key", s(key.expose())), ("person", s(person.as_str())), ("ttl", Attr::N(expires))],
    );
    b.store.write(Write::Put { item: it, cond: vec![] }).await?;
    Ok(())
}

/// The identity behind a verified bridge token, as it is now.
pub async fn current(b: &Bridge, who: &Verified) -> Result<(Identity, PersonView), Error> {
    // A token outlives nothing it names: an unlinked or erased identity ends it.
    let ident = b.assoc().identity(&who.appid, &who.openid).await?.ok_or(Error::InvalidToken)?;
    let view = b.assoc().view(&ident.person).await.map_err(|e| match e {
        Error::NotFound => Error::InvalidToken,
        e => e,
    })?;
    Ok((ident, view))
}

/// `wx.getUserInfo`'s encryptedData, opened with the stashed session_key, names the unionid.
pub async fn mp_userinfo(b: &Bridge, who: &Verified, encrypted: &str, iv: &str) -> Result<LoginAnswer, Error> {
    let app = b.registry.app_of_kind(&who.appid, AppKind::MiniProgram)?;
    let stashed = b.store.get(&keys::stash(&who.appid, &who.openid)).await?;
    let session_key = stashed
        .filter(|it| it.n("ttl").is_some_and(|t| t > b.clock.now_secs()))
        .and_then(|it| it.s("session_key").map(Secret::new))
        .ok_or(Error::TicketInvalid)?;
    let info = crypto::open_userinfo(&session_key, encrypted, iv, who.appid.as_str())?;
    if info.open_id.as_deref().is_some_and(|o| o != who.openid.as_str()) {
        return Err(Error::WatermarkMismatch);
    }
    let (ident, view) = current(b, who).await?;
    let unionid = match info.union_id.as_deref() {
        Some(u) if app.open_platform.is_some() => Some(UnionId::parse(u).map_err(|_| Error::DecryptFailed)?),
        _ => None,
    };
    match (unionid, &ident.unionid) {
        (Some(u), None) => {
            let view = b.assoc().attach_unionid(app, &ident, &u).await?;
            let ident = Identity { person: view.person.clone(), unionid: Some(u), ..ident };
            answer(b, &ident, &view, false)
        }
        _ => answer(b, &Identity { person: view.person.clone(), ..ident }, &view, false),
    }
}

pub async fn me(b: &Bridge, who: &Verified) -> Result<MeAnswer, Error> {
    let (_, view) = current(b, who).await?;
    Ok(MeAnswer { person_id: view.person.to_string(), linked: linked_out(&view) })
}

/// Mobile-app login (WeChat SDK), website QR login (`snsapi_login`) and an official
/// account's H5 login (`snsapi_userinfo`): the app's backend hands the bridge the OAuth code;
/// the person is found unionid first, so these apps join the person the mini programs know.
pub async fn open_login(b: &Bridge, appid: &AppId, code: &Code) -> Result<LoginAnswer, Error> {
    let app = b
        .registry
        .app(appid)
        .filter(|a| matches!(a.kind, AppKind::MobileApp | AppKind::Website | AppKind::OfficialAccount))
        .ok_or(Error::UnknownApp)?;
    let grant = b.wechat.web_grant(app, code).await?;
    if grant.snapshot_user {
        return Err(Error::InvalidRequest("a snapshot-page visitor has no identity to log in".into()));
    }
    let unionid = match (&grant.unionid, app.kind, &app.open_platform) {
        (None, AppKind::OfficialAccount, Some(_)) => match b.wechat.web_unionid(&grant).await {
            Ok(u) => u,
            // A snsapi_base grant cannot read userinfo (48001): log in by openid alone.
            Err(Error::WeChatError(48001)) => None,
            Err(e) => return Err(e),
        },
        _ => grant.unionid.clone(),
    };
    let r = b.assoc().login(app, &grant.openid, unionid.as_ref(), crate::domain::assoc::Via::OpenLogin).await?;
    crate::metrics::count(crate::metrics::Counter::Login);
    answer(b, &r.identity, &r.view, r.new_person)
}
