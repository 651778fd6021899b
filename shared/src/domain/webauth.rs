//! The web-view chain (ARCHITECTURE.md §1, pivot method): a mini-program user gets a ticket,
//! the web-view walks each official account's silent authorization (merchants first, the
//! pivot last), and every OA openid seen is linked to the ticket's person.
//!
//! Trust: links rest only on codes WeChat returned for a `state` the bridge issued; tickets
//! and states are single use and short-lived; return URLs must be on the allow-list.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::domain::assoc::Assoc;
use crate::domain::Urls;
use crate::error::Error;
use crate::ids::{AppId, Code};
use crate::items::state::{self, Chain, Outcome, State};
use crate::items::ticket;
use crate::model::{AppKind, Scope, Via};
use crate::registry::Registry;
use crate::store::StoreError;
use crate::tokens::Verified;
use crate::wechat::WeChat;

pub const TICKET_TTL_SECS: i64 = 300;
pub const STATE_TTL_SECS: i64 = 600;
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

/// Where the web-view goes when the chain ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    Redirect(String),
    /// No return URL: a page that says how it went.
    Page {
        linked: bool,
    },
}

/// What the web-view chain needs: the association rules, WeChat, the registry and the URLs.
pub struct WebAuth<'a> {
    pub assoc: Assoc<'a>,
    pub wechat: &'a dyn WeChat,
    pub apps: &'a Registry,
    pub urls: &'a Urls,
}

/// Tickets and states are 128-bit hex tokens (WeChat allows `[a-zA-Z0-9]`, ≤ 128 bytes).
fn token_ok(t: &str) -> bool {
    t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `return_url` must start with an allow-listed prefix: same scheme, host and port, and a
/// path under the allowed one; no credentials in it.
pub fn return_url_allowed(allow: &[String], candidate: &str) -> bool {
    let Ok(u) = url::Url::parse(candidate) else { return false };
    if !u.username().is_empty() || u.password().is_some() || !matches!(u.scheme(), "https" | "http") {
        return false;
    }
    allow.iter().filter_map(|a| url::Url::parse(a).ok()).any(|a| {
        a.scheme() == u.scheme()
            && a.host_str() == u.host_str()
            && a.port_or_known_default() == u.port_or_known_default()
            && u.path().starts_with(a.path())
    })
}

fn with_result(return_url: &str, result: &str) -> String {
    match url::Url::parse(return_url) {
        Ok(mut u) => {
            u.query_pairs_mut().append_pair("result", result);
            u.to_string()
        }
        Err(_) => return_url.to_owned(),
    }
}

fn finish(chain: &Chain, result: &str) -> Finish {
    match &chain.return_url {
        Some(r) => Finish::Redirect(with_result(r, result)),
        None => Finish::Page { linked: result == "linked" },
    }
}

impl Urls {
    pub fn authorize(&self, appid: &AppId, scope: Scope, state: &str) -> String {
        let redirect = format!("{}/v1/auth/callback", self.public_base);
        let redirect: String = form_urlencoded::byte_serialize(redirect.as_bytes()).collect();
        format!(
            "{}/connect/oauth2/authorize?appid={appid}&redirect_uri={redirect}&response_type=code&scope={}&state={state}#wechat_redirect",
            self.open_base,
            scope.as_str()
        )
    }
}

fn to_outcome(r: &Result<Finish, Error>) -> Outcome {
    match r {
        Ok(Finish::Redirect(u)) => Outcome::Redirect { to: u.clone() },
        Ok(Finish::Page { linked }) => Outcome::Page { linked: *linked },
        Err(e @ Error::IdentityConflict) => Outcome::Refused { code: e.code().into() },
        Err(_) => Outcome::Refused { code: Error::StateInvalid.code().into() },
    }
}

fn from_outcome(o: Outcome) -> Result<Finish, Error> {
    match o {
        Outcome::Redirect { to } => Ok(Finish::Redirect(to)),
        Outcome::Page { linked } => Ok(Finish::Page { linked }),
        Outcome::Refused { code } if code == Error::IdentityConflict.code() => Err(Error::IdentityConflict),
        Outcome::Refused { .. } => Err(Error::StateInvalid),
    }
}

/// Marker for "the user refused" in the state's `used` attribute (codes never contain `!`).
const DENIED: &str = "!denied";

impl WebAuth<'_> {
    /// `POST /v1/auth/tickets`: the mini program's web-view URL.
    pub async fn create_ticket(&self, who: &Verified, req: TicketRequest) -> Result<TicketAnswer, Error> {
        let (ident, view) = self.assoc.current(who).await?;
        let scope = req.scope.as_deref().map(Scope::parse).transpose()?.unwrap_or(Scope::Base);
        let pivot = self.apps.pivot().map(|p| p.appid.clone());
        let mut targets: Vec<AppId> = Vec::new();
        for t in req.targets.unwrap_or_default() {
            self.apps.app_of_kind(&t, AppKind::OfficialAccount)?;
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
            if r.len() > 2048 || !return_url_allowed(&self.apps.return_url_allow, r) {
                return Err(Error::ReturnUrlNotAllowed);
            }
        }
        let id = self.assoc.ids.token();
        let chain = Chain { person: view.person, targets, index: 0, scope, return_url: req.return_url };
        let ttl = self.assoc.clock.now_secs() + TICKET_TTL_SECS;
        self.assoc.store.write(ticket::issue(&id, &chain, &ident.appid, ttl)).await?;
        Ok(TicketAnswer {
            url: format!("{}/v1/auth/start?ticket={id}", self.urls.public_base),
            ticket: id,
            expires_in: TICKET_TTL_SECS,
        })
    }

    /// Issues a state for the chain's current hop and answers the authorize URL for it.
    async fn hop(&self, chain: &Chain) -> Result<String, Error> {
        let id = self.assoc.ids.token();
        let ttl = self.assoc.clock.now_secs() + STATE_TTL_SECS;
        self.assoc.store.write(state::issue(&id, chain, ttl)).await?;
        Ok(self.urls.authorize(&chain.targets[chain.index], chain.scope, &id))
    }

    /// `GET /v1/auth/start?ticket=`: spends the ticket, sends the web-view to the first OA.
    pub async fn start(&self, id: &str) -> Result<String, Error> {
        if !token_ok(id) {
            return Err(Error::TicketInvalid);
        }
        let found = self.assoc.store.get(&ticket::key(id)).await?;
        let chain = ticket::chain(found, self.assoc.clock.now_secs())?.ok_or(Error::TicketInvalid)?;
        match self.assoc.store.write(ticket::spend(id)).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => return Err(Error::TicketInvalid),
            Err(e) => return Err(e.into()),
        }
        self.hop(&chain.at(0)).await
    }

    /// `GET /v1/auth/callback?code&state`.
    pub async fn callback(&self, code: Option<&str>, id: &str) -> Result<Finish, Error> {
        if !token_ok(id) {
            return Err(Error::StateInvalid);
        }
        let code = code.filter(|c| !c.is_empty()).map(Code::parse).transpose()?;
        let used_as = code.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_else(|| DENIED.into());
        // WeChat can deliver the same redirect twice: the second gets the first one's outcome.
        for _ in 0..12 {
            let found = self.assoc.store.get(&state::key(id)).await?;
            let st = State::from_live(found, self.assoc.clock.now_secs())?.ok_or(Error::StateInvalid)?;
            match st.used {
                None => match self.assoc.store.write(state::claim(id, &used_as)).await {
                    Ok(()) => return self.run_hop(id, &st.chain, code).await,
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

    async fn run_hop(&self, id: &str, chain: &Chain, code: Option<Code>) -> Result<Finish, Error> {
        let result = self.hop_outcome(chain, code.as_ref()).await;
        match &result {
            // WeChat refused the code or is down: give the state back, so nothing has changed.
            Err(
                Error::WeChatCodeInvalid | Error::WeChatCodeUsed | Error::WeChatRateLimited | Error::WeChatUnavailable,
            ) => {
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

    async fn hop_outcome(&self, chain: &Chain, code: Option<&Code>) -> Result<Finish, Error> {
        let Some(code) = code else {
            tracing::info!(hop = chain.index, "web authorization refused by the user");
            return Ok(finish(chain, "denied"));
        };
        let target = chain.targets.get(chain.index).ok_or_else(|| Error::Internal("state hop out of range".into()))?;
        let app = self.apps.app_of_kind(target, AppKind::OfficialAccount)?;
        let grant = self.wechat.web_grant(app, code).await?;
        if grant.snapshot_user {
            // A virtual "snapshot page" openid is nobody's: bind nothing.
            return Ok(finish(chain, "denied"));
        }
        let unionid = match (chain.scope, &grant.unionid) {
            (Scope::Userinfo, None) if app.open_platform.is_some() => self.wechat.web_unionid(&grant).await?,
            _ => grant.unionid.clone(),
        };
        self.assoc.link(app, &grant.openid, unionid.as_ref(), &chain.person, Via::WebAuth).await?;
        let next = chain.index + 1;
        if next < chain.targets.len() {
            return self.hop(&chain.at(next)).await.map(Finish::Redirect);
        }
        Ok(finish(chain, "linked"))
    }
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
    fn results_are_appended_to_the_return_url() {
        assert_eq!(with_result("https://a.example/x?y=1", "linked"), "https://a.example/x?y=1&result=linked");
        assert_eq!(with_result("https://a.example/x", "denied"), "https://a.example/x?result=denied");
    }

    #[test]
    fn outcomes_round_trip_through_the_store() {
        for r in [
            Ok(Finish::Redirect("https://x/y".into())),
            Ok(Finish::Page { linked: true }),
            Err(Error::IdentityConflict),
        ] {
            let json = serde_json::to_string(&to_outcome(&r)).unwrap();
            let back = from_outcome(serde_json::from_str(&json).unwrap());
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
        }
        assert!(matches!(from_outcome(to_outcome(&Err(Error::Busy))), Err(Error::StateInvalid)));
    }
}
