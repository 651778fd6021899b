//! Web authorization in the user's WeChat browser (ARCHITECTURE.md §1, pivot method): the
//! web-view pass (a mini-program user's ticket walks each official account's silent
//! authorization, merchants first, the pivot last), the scanner's confirmation of a scene, and
//! the check of a login link. All three come back to one callback.
//!
//! Trust: a browser proves which OA openids it has, not whose mini program asked. So a pass
//! only records what it saw on its ticket and ends with a one-time confirm code; only the
//! ticket's owner, with its own token, links (`Login::confirm`). Every authorization is bound to
//! the browser that started it by a cookie (only its digest is stored), so a forwarded WeChat
//! authorize URL links nothing; states are single use and short-lived; return URLs must be on
//! the allow-list, matched on whole path segments.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

use crate::crypto::same_secret;
use crate::directory::{Directory, DirectoryExt};
use crate::domain::access_token::Broker;
use crate::domain::assoc::Assoc;
use crate::domain::{scene, sitelink, Urls};
use crate::error::Error;
use crate::ids::{AppId, Code, OpenId, UnionId};
use crate::items::state::{self, Outcome, Page, Purpose, State};
use crate::items::ticket::{self, Seen, Ticket};
use crate::items::{confirm, refs, Tx};
use crate::model::{AppKind, Auth, Scope};
use crate::registry::App;
use crate::store::StoreError;
use crate::tokens::Verified;

/// An unstarted ticket is good this long.
pub const TICKET_TTL_SECS: i64 = 300;
/// A started pass may take this long, hops and confirmation included.
pub const PASS_TTL_SECS: i64 = 1800;
pub const STATE_TTL_SECS: i64 = 600;
/// The confirm code's life (API.md: 5 minutes).
pub const CONFIRM_TTL_SECS: i64 = 300;
/// More hops than this is not a web-view pass anyone sits through.
const MAX_TARGETS: usize = 6;

#[derive(Debug, Default, Deserialize)]
pub struct TicketRequest {
    #[serde(default)]
    pub targets: Option<Vec<AppId>>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub return_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TicketAnswer {
    pub ticket: String,
    pub url: String,
    pub expires_in: i64,
}

/// Where the browser goes when an authorization ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    Redirect(String),
    /// No return URL: a page that says how it went.
    Page(Page),
}

/// An authorization begun: where the browser goes, and the cookie that binds it.
#[derive(Debug)]
pub struct Started {
    pub location: String,
    /// The cookie's value (its digest is on the state); never logged.
    pub cookie: String,
}

/// What the web-view chain needs: the association rules, WeChat, the registry and the URLs.
pub struct WebAuth<'a> {
    pub assoc: Assoc<'a>,
    /// WeChat, acting for the app with its secret or through the third-party platform.
    pub broker: Broker<'a>,
    pub apps: &'a dyn Directory,
    pub urls: &'a Urls,
}

/// Tickets, states and codes are 128-bit hex tokens (WeChat allows `[a-zA-Z0-9]`, ≤ 128 bytes).
pub fn token_ok(t: &str) -> bool {
    t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The digest kept in place of a cookie or an openid that must not be stored.
pub fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The prefix of the cookies that bind authorizations to their browser: `__Host-` on HTTPS
/// (Secure, Path=/, no Domain), a plain name on plain-HTTP devstack, where browsers would drop
/// a `__Host-` cookie. One cookie per authorization (its name ends in a few characters of its
/// own), so two web-views open at once in one WeChat do not undo each other.
pub fn cookie_prefix(urls: &Urls) -> &'static str {
    if urls.public_base.starts_with("https://") {
        "__Host-wxb_"
    } else {
        "wxb_"
    }
}

/// The `Set-Cookie` value for a started authorization.
pub fn set_cookie(urls: &Urls, value: &str) -> String {
    let secure = if urls.public_base.starts_with("https://") { "; Secure" } else { "" };
    let name = &value[..value.len().min(8)];
    format!("{}{name}={value}; Path=/; Max-Age={PASS_TTL_SECS}; HttpOnly; SameSite=Lax{secure}", cookie_prefix(urls))
}

/// `return_url` must be under an allow-listed prefix: same scheme, host and port, and a path
/// equal to the allowed one or below it by whole segments (`/app` admits `/app/x`, never
/// `/app-evil`); no credentials in it.
pub fn return_url_allowed(allow: &[String], candidate: &str) -> bool {
    let Ok(u) = url::Url::parse(candidate) else { return false };
    if !u.username().is_empty() || u.password().is_some() || !matches!(u.scheme(), "https" | "http") {
        return false;
    }
    allow.iter().filter_map(|a| url::Url::parse(a).ok()).any(|a| {
        let (base, path) = (a.path(), u.path());
        let under = path == base
            || base.ends_with('/') && path.starts_with(base)
            || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'));
        a.scheme() == u.scheme()
            && a.host_str() == u.host_str()
            && a.port_or_known_default() == u.port_or_known_default()
            && under
    })
}

/// The return URL with the bridge's parameters, after dropping any of theirs it already held
/// (so a return URL cannot say `result=linked` before the bridge does).
fn with_query(return_url: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(return_url) {
        Ok(mut u) => {
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| !pairs.iter().any(|(p, _)| p == k))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            u.set_query(None);
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in &kept {
                    q.append_pair(k, v);
                }
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => return_url.to_owned(),
    }
}

impl Urls {
    /// `via`: the third-party platform that acts for the official account, when it does; the
    /// callback is then on the platform's 公众号开发域名, the same public origin.
    pub fn authorize(&self, appid: &AppId, scope: Scope, state: &str, via: Option<&AppId>) -> String {
        let redirect = format!("{}/v1/auth/callback", self.public_base);
        let redirect: String = form_urlencoded::byte_serialize(redirect.as_bytes()).collect();
        let component = via.map(|c| format!("&component_appid={c}")).unwrap_or_default();
        format!(
            "{}/connect/oauth2/authorize?appid={appid}&redirect_uri={redirect}&response_type=code&scope={}&state={state}{component}#wechat_redirect",
            self.open_base,
            scope.as_str()
        )
    }
}

fn to_outcome(r: &Result<Finish, Error>) -> Outcome {
    match r {
        Ok(Finish::Redirect(u)) => Outcome::Redirect { to: u.clone() },
        Ok(Finish::Page(p)) => Outcome::Page { page: p.clone() },
        Err(e @ Error::IdentityConflict) => Outcome::Refused { code: e.code().into() },
        Err(_) => Outcome::Refused { code: Error::StateInvalid.code().into() },
    }
}

fn from_outcome(o: Outcome) -> Result<Finish, Error> {
    match o {
        Outcome::Redirect { to } => Ok(Finish::Redirect(to)),
        Outcome::Page { page } => Ok(Finish::Page(page)),
        Outcome::Refused { code } if code == Error::IdentityConflict.code() => Err(Error::IdentityConflict),
        Outcome::Refused { .. } => Err(Error::StateInvalid),
    }
}

/// Marker for "the user refused" in the state's `used` attribute (a code is printable ASCII
/// without spaces, so it is never this).
const DENIED: &str = " denied";

/// Issues a state for `purpose`, bound to the browser by `binding`, and answers the authorize
/// URL of `appid` for it.
pub(crate) async fn hop(
    assoc: Assoc<'_>,
    urls: &Urls,
    purpose: &Purpose,
    binding: &str,
    app: &App,
    scope: Scope,
) -> Result<String, Error> {
    let via = match app.auth {
        Auth::Secret => None,
        Auth::Component => Some(
            urls.component_appid
                .as_ref()
                .ok_or_else(|| Error::Internal("a component app, but no third-party platform configured".into()))?,
        ),
    };
    let id = assoc.ids.token();
    let ttl = assoc.clock.now_secs() + STATE_TTL_SECS;
    assoc.store.write(state::issue(&id, purpose, binding, ttl)).await?;
    Ok(urls.authorize(&app.appid, scope, &id, via))
}

/// Begins an authorization in a new browser: a fresh cookie, and the first state bound to it.
pub(crate) async fn begin(
    assoc: Assoc<'_>,
    urls: &Urls,
    purpose: &Purpose,
    app: &App,
    scope: Scope,
) -> Result<Started, Error> {
    let cookie = assoc.ids.token();
    let location = hop(assoc, urls, purpose, &digest(&cookie), app, scope).await?;
    Ok(Started { location, cookie })
}

/// Whether an error means "nothing happened, the same redirect may try again".
fn passing(e: &Error) -> bool {
    matches!(
        e,
        Error::WeChatCodeInvalid
            | Error::WeChatCodeUsed
            | Error::WeChatRateLimited
            | Error::WeChatUnavailable
            | Error::StoreUnavailable
            | Error::Busy
    )
}

impl WebAuth<'_> {
    /// `POST /v1/auth/tickets`: the mini program's web-view URL.
    pub async fn create_ticket(&self, who: &Verified, req: TicketRequest) -> Result<TicketAnswer, Error> {
        let (ident, view) = self.assoc.current(who).await?;
        let scope = req.scope.as_deref().map(Scope::parse).transpose()?.unwrap_or(Scope::Base);
        let pivot = self.apps.pivot().await?.map(|p| p.appid.clone());
        let mut targets: Vec<AppId> = Vec::new();
        for t in req.targets.unwrap_or_default() {
            self.apps.app_of_kind(&t, AppKind::OfficialAccount).await?;
            if Some(&t) != pivot.as_ref() && !targets.contains(&t) {
                targets.push(t);
            }
        }
        // Merchant accounts first, the pivot last: the pass ends on the one that joins everything.
        targets.extend(pivot);
        if targets.is_empty() {
            return Err(Error::InvalidRequest("no target official account (and no pivot configured)".into()));
        }
        if targets.len() > MAX_TARGETS {
            return Err(Error::InvalidRequest(format!("at most {MAX_TARGETS} targets")));
        }
        if let Some(r) = &req.return_url {
            if r.len() > 2048 || !return_url_allowed(&self.apps.platform().await?.return_url_allow, r) {
                return Err(Error::ReturnUrlNotAllowed);
            }
        }
        let now = self.assoc.clock.now_secs();
        let t = Ticket {
            id: self.assoc.ids.token(),
            person: view.person.clone(),
            owner_appid: ident.appid,
            owner_openid: ident.openid,
            targets,
            scope,
            return_url: req.return_url,
            start_by_secs: now + TICKET_TTL_SECS,
            ttl_secs: now + PASS_TTL_SECS,
            binding: None,
            seen: Vec::new(),
        };
        let mut tx = Tx::new();
        tx.add(t.create());
        tx.add(refs::put(&t.owner_appid, &t.owner_openid, &t.key(), t.ttl_secs));
        tx.commit(self.assoc.store).await?;
        Ok(TicketAnswer {
            url: format!("{}/v1/auth/start?ticket={}", self.urls.public_base, t.id),
            ticket: t.id,
            expires_in: TICKET_TTL_SECS,
        })
    }

    /// `GET /v1/auth/start?ticket=`: starts the pass in this browser, sends it to the first OA.
    pub async fn start(&self, id: &str) -> Result<Started, Error> {
        if !token_ok(id) {
            return Err(Error::TicketInvalid);
        }
        let now = self.assoc.clock.now_secs();
        let found = self.assoc.store.get(&ticket::key(id)).await?;
        let t = Ticket::from_live(id, found, now)?.ok_or(Error::TicketInvalid)?;
        if t.binding.is_some() || t.start_by_secs <= now {
            return Err(Error::TicketInvalid);
        }
        let cookie = self.assoc.ids.token();
        let binding = digest(&cookie);
        match self.assoc.store.write(ticket::start(id, &binding)).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => return Err(Error::TicketInvalid),
            Err(e) => return Err(e.into()),
        }
        let first = Purpose::Hop { ticket: id.to_owned(), index: 0 };
        let oa = self.apps.app_of_kind(&t.targets[0], AppKind::OfficialAccount).await?;
        let location = hop(self.assoc, self.urls, &first, &binding, &oa, t.scope).await?;
        Ok(Started { location, cookie })
    }

    /// `GET /v1/auth/callback?code&state`, in the browser holding the authorization's cookie.
    pub async fn callback(&self, code: Option<&str>, id: &str, cookies: &[&str]) -> Result<Finish, Error> {
        if !token_ok(id) {
            return Err(Error::StateInvalid);
        }
        let code = code.filter(|c| !c.is_empty()).map(Code::parse).transpose()?;
        let used_as = code.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_else(|| DENIED.into());
        // WeChat can deliver the same redirect twice: the second gets the first one's outcome.
        for _ in 0..12 {
            let found = self.assoc.store.get(&state::key(id)).await?;
            let st = State::from_live(found, self.assoc.clock.now_secs())?.ok_or(Error::StateInvalid)?;
            // Another browser (a forwarded authorize URL) neither uses nor spends the state.
            let bound = cookies.iter().any(|c| same_secret(digest(c).as_bytes(), st.binding.as_bytes()));
            if !bound {
                tracing::info!("callback without the cookie of the browser that started it");
                return Err(Error::StateInvalid);
            }
            match st.used {
                None => match self.assoc.store.write(state::claim(id, &used_as)).await {
                    Ok(()) => return self.run(id, &st, code).await,
                    Err(StoreError::ConditionFailed { .. }) => continue,
                    Err(e) => return Err(e.into()),
                },
                Some(u) if u == used_as => match st.outcome {
                    Some(outcome) => return from_outcome(outcome),
                    // The first delivery is still being handled.
                    None => tokio::time::sleep(Duration::from_millis(100)).await,
                },
                Some(_) => return Err(Error::StateInvalid),
            }
        }
        Err(Error::StateInvalid)
    }

    async fn run(&self, id: &str, st: &State, code: Option<Code>) -> Result<Finish, Error> {
        let result = match &st.purpose {
            Purpose::Hop { ticket, index } => self.pass_hop(ticket, *index, &st.binding, code.as_ref()).await,
            Purpose::Scene { scene } => match &code {
                Some(c) => scene::confirmed(self.assoc, self.broker, self.apps, scene, c).await,
                None => Ok(Finish::Page(Page::Denied)),
            },
            Purpose::Link { .. } => match &code {
                Some(c) => sitelink::checked(self.assoc, self.broker, self.apps, self.urls, &st.purpose, c).await,
                None => Ok(Finish::Page(Page::Denied)),
            },
        };
        match &result {
            // Nothing happened (WeChat refused the code, something was down): give the state
            // back, so the same redirect may try again.
            Err(e) if passing(e) => {
                if let Some(c) = &code {
                    let _ = self.assoc.store.write(state::release(id, c.as_str())).await;
                }
            }
            // Anything else is final for this state: WeChat's second delivery gets the same answer.
            outcome => {
                if let Err(e) = self.assoc.store.write(state::record(id, &to_outcome(outcome))).await {
                    tracing::warn!(error = %e, "could not record a callback outcome");
                }
            }
        }
        result
    }

    /// One hop of a pass: record what the browser has in this official account, then the next
    /// hop, or at the end the confirm code for the ticket's owner.
    async fn pass_hop(&self, id: &str, index: usize, binding: &str, code: Option<&Code>) -> Result<Finish, Error> {
        let found = self.assoc.store.get(&ticket::key(id)).await?;
        let t = Ticket::from_live(id, found, self.assoc.clock.now_secs())?.ok_or(Error::StateInvalid)?;
        if t.binding.as_deref() != Some(binding) {
            return Err(Error::StateInvalid);
        }
        let end = |result: &str| match &t.return_url {
            Some(r) => Finish::Redirect(with_query(r, &[("result", result)])),
            None => Finish::Page(Page::Denied),
        };
        let Some(code) = code else {
            tracing::info!(hop = index, "web authorization refused by the user");
            return Ok(end("denied"));
        };
        let target = t.targets.get(index).ok_or_else(|| Error::Internal("state hop out of range".into()))?;
        let app = self.apps.app_of_kind(target, AppKind::OfficialAccount).await?;
        let grant = self.broker.web_grant(&app, code).await?;
        if grant.snapshot_user {
            // A virtual "snapshot page" openid is nobody's: bind nothing.
            return Ok(end("denied"));
        }
        let unionid: Option<UnionId> = match (t.scope, &grant.unionid) {
            (Scope::Userinfo, None) if app.open_platform.is_some() => self.broker.wechat.web_unionid(&grant).await?,
            _ => grant.unionid.clone(),
        };
        let seen = Seen { appid: app.appid.clone(), openid: grant.openid.clone(), unionid };
        // The evidence names the browser's identity: a ref lets erasing its person find it.
        let mut tx = Tx::new();
        tx.add(ticket::saw(id, binding, index, &seen));
        tx.add(refs::put(&seen.appid, &seen.openid, &t.key(), t.ttl_secs));
        match tx.commit(self.assoc.store).await {
            Ok(()) => {}
            Err(crate::items::TxError::Refused(_)) => return Err(Error::StateInvalid),
            Err(e) => return Err(e.into()),
        }
        let next = index + 1;
        if next < t.targets.len() {
            let purpose = Purpose::Hop { ticket: id.to_owned(), index: next };
            let oa = self.apps.app_of_kind(&t.targets[next], AppKind::OfficialAccount).await?;
            return hop(self.assoc, self.urls, &purpose, binding, &oa, t.scope).await.map(Finish::Redirect);
        }
        let confirm_code = self.assoc.ids.token();
        let ttl = self.assoc.clock.now_secs() + CONFIRM_TTL_SECS;
        self.assoc.store.write(confirm::issue(&confirm_code, id, ttl)).await?;
        Ok(match &t.return_url {
            Some(r) => Finish::Redirect(with_query(r, &[("result", "pending"), ("confirm", &confirm_code)])),
            None => Finish::Page(Page::Pending { confirm: confirm_code }),
        })
    }
}

/// What the owner of a pass may link: the pass's ticket, once its confirm code is spent. The
/// code stays spent whatever follows, but for a failure that may pass (then it is restored).
pub(crate) struct Confirmed {
    pub ticket: Ticket,
    pub seen: Vec<Seen>,
}

/// Checks a confirm code against the caller and spends it.
pub(crate) async fn spend_confirm(assoc: Assoc<'_>, who: &Verified, code: &str) -> Result<Confirmed, Error> {
    if !token_ok(code) {
        return Err(Error::ConfirmInvalid);
    }
    let now = assoc.clock.now_secs();
    let id = confirm::ticket(assoc.store.get(&confirm::key(code)).await?, now).ok_or(Error::ConfirmInvalid)?;
    let t = Ticket::from_live(&id, assoc.store.get(&ticket::key(&id)).await?, now)?.ok_or(Error::ConfirmInvalid)?;
    if (&who.appid, &who.openid) != (&t.owner_appid, &t.owner_openid) {
        tracing::warn!("a web-view pass confirmed with another identity's token: refused");
        return Err(Error::ConfirmMismatch);
    }
    let seen = t.complete().ok_or(Error::ConfirmInvalid)?;
    match assoc.store.write(confirm::spend(code)).await {
        Ok(()) => Ok(Confirmed { ticket: t, seen }),
        Err(StoreError::ConditionFailed { .. }) => Err(Error::ConfirmInvalid),
        Err(e) => Err(e.into()),
    }
}

/// After a confirm: the pass is over (linked or refused) and its ticket goes; or it may be
/// tried again, and the code comes back.
pub(crate) async fn settle_confirm(assoc: Assoc<'_>, c: &Confirmed, code: &str, failed: Option<&Error>) {
    let writes = match failed {
        Some(e) if passing(e) => {
            vec![confirm::issue(code, &c.ticket.id, assoc.clock.now_secs() + CONFIRM_TTL_SECS)]
        }
        _ => {
            let t = &c.ticket;
            let mut w = vec![ticket::delete(&t.id), refs::delete(&t.owner_appid, &t.owner_openid, &t.key())];
            w.extend(c.seen.iter().map(|s| refs::delete(&s.appid, &s.openid, &t.key())));
            w
        }
    };
    for w in writes {
        if let Err(e) = assoc.store.write(w).await {
            tracing::warn!(error = %e, "could not settle a confirmed pass");
        }
    }
}

/// The openid WeChat showed a browser matches the one a link or scan was for (compared by
/// digest, as stored).
pub(crate) fn same_user(openid: &OpenId, digest_stored: &str) -> bool {
    same_secret(digest(openid.as_str()).as_bytes(), digest_stored.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_urls_must_be_on_the_allow_list() {
        let allow = vec!["https://demo.example.com/app/".to_owned()];
        assert!(return_url_allowed(&allow, "https://demo.example.com/app/done?x=1"));
        assert!(!return_url_allowed(&allow, "https://demo.example.com/other"));
        assert!(!return_url_allowed(&allow, "https://demo.example.com.evil.com/app/"));
        assert!(!return_url_allowed(&allow, "https://evil.com/app/"));
        assert!(!return_url_allowed(&allow, "http://demo.example.com/app/"));
        assert!(!return_url_allowed(&allow, "https://demo.example.com:444/app/"));
        assert!(!return_url_allowed(&allow, "https://user:pw@demo.example.com/app/"));
        assert!(!return_url_allowed(&allow, "javascript:alert(1)"));
        assert!(!return_url_allowed(&[], "https://demo.example.com/app/"));
    }

    #[test]
    fn return_urls_match_on_whole_path_segments() {
        let allow = vec!["https://h.example/app".to_owned()];
        assert!(return_url_allowed(&allow, "https://h.example/app"));
        assert!(return_url_allowed(&allow, "https://h.example/app/"));
        assert!(return_url_allowed(&allow, "https://h.example/app/done?x=1"));
        assert!(!return_url_allowed(&allow, "https://h.example/app-evil"));
        assert!(!return_url_allowed(&allow, "https://h.example/appx/"));
        assert!(!return_url_allowed(&allow, "https://h.example/app/../admin"), "dot segments are resolved first");
    }

    #[test]
    fn results_are_appended_to_the_return_url() {
        assert_eq!(
            with_query("https://a.example/x?y=1", &[("result", "denied")]),
            "https://a.example/x?y=1&result=denied"
        );
        assert_eq!(
            with_query("https://a.example/x?result=linked&y=1", &[("result", "pending")]),
            "https://a.example/x?y=1&result=pending",
            "the return URL's own result is dropped"
        );
        assert_eq!(
            with_query("https://a.example/x", &[("result", "pending"), ("confirm", "c0")]),
            "https://a.example/x?result=pending&confirm=c0"
        );
    }

    #[test]
    fn outcomes_round_trip_through_the_store() {
        for r in [
            Ok(Finish::Redirect("https://x/y".into())),
            Ok(Finish::Page(Page::Pending { confirm: "c".into() })),
            Ok(Finish::Page(Page::NotYours)),
            Err(Error::IdentityConflict),
        ] {
            let json = serde_json::to_string(&to_outcome(&r)).unwrap();
            let back = from_outcome(serde_json::from_str(&json).unwrap());
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
        }
        assert!(matches!(from_outcome(to_outcome(&Err(Error::Busy))), Err(Error::StateInvalid)));
    }

    #[test]
    fn the_cookie_is_host_only_and_secure_on_https() {
        let urls =
            |b: &str| Urls { public_base: b.into(), open_base: b.into(), mp_base: b.into(), component_appid: None };
        let https = set_cookie(&urls("https://id.example.com"), "v");
        assert!(https.starts_with("__Host-wxb_v=v; Path=/;") && https.ends_with("; Secure"), "{https}");
        assert!(https.contains("HttpOnly") && https.contains("SameSite=Lax") && !https.contains("Domain"));
        let http = set_cookie(&urls("http://127.0.0.1:8080"), "v");
        assert!(http.starts_with("wxb_v=v;") && !http.contains("Secure"), "{http}");
    }
}
