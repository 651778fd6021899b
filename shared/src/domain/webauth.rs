//! The web-view chain (ARCHITECTURE.md §1, pivot method): a mini-program user gets a ticket,
//! the web-view walks each official account's silent authorization (merchants first, the
//! pivot last), and every OA openid seen is linked to the ticket's person.
//!
//! Trust: links rest only on codes WeChat returned for a `state` the bridge issued; tickets
//! and states are single use and short-lived; return URLs must be on the allow-list.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::bridge::Bridge;
use crate::domain::assoc::Via;
use crate::domain::keys;
use crate::domain::login::current;
use crate::error::Error;
use crate::ids::{AppId, Code, PersonId};
use crate::registry::AppKind;
use crate::store::{item, s, Attr, Check, Item, ItemExt, StoreError, Write};
use crate::tokens::Verified;

pub const TICKET_TTL_SECS: i64 = 300;
pub const STATE_TTL_SECS: i64 = 600;
/// More hops than this is not a web-view pass anyone sits through.
const MAX_TARGETS: usize = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Base,
    Userinfo,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "snsapi_base" => Ok(Scope::Base),
            "snsapi_userinfo" => Ok(Scope::Userinfo),
            _ => Err(Error::InvalidRequest("scope must be snsapi_base or snsapi_userinfo".into())),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::Userinfo => "snsapi_userinfo",
        }
    }
}

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

pub fn authorize_url(b: &Bridge, appid: &AppId, scope: Scope, state: &str) -> String {
    let redirect = format!("{}/v1/auth/callback", b.settings.public_base);
    let redirect: String = form_urlencoded::byte_serialize(redirect.as_bytes()).collect();
    format!(
        "{}/connect/oauth2/authorize?appid={appid}&redirect_uri={redirect}&response_type=code&scope={}&state={state}#wechat_redirect",
        b.settings.open_base,
        scope.as_str()
    )
}

/// `POST /v1/auth/tickets`: the mini program's web-view URL.
pub async fn create_ticket(b: &Bridge, who: &Verified, req: TicketRequest) -> Result<TicketAnswer, Error> {
    let (ident, view) = current(b, who).await?;
    let scope = req.scope.as_deref().map(Scope::parse).transpose()?.unwrap_or(Scope::Base);
    let pivot = b.registry.pivot().map(|p| p.appid.clone());
    let mut targets: Vec<AppId> = Vec::new();
    for t in req.targets.unwrap_or_default() {
        b.registry.app_of_kind(&t, AppKind::OfficialAccount)?;
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
        if r.len() > 2048 || !return_url_allowed(&b.registry.return_url_allow, r) {
            return Err(Error::ReturnUrlNotAllowed);
        }
    }
    let ticket = b.ids.token();
    let mut attrs = vec![
        ("person", s(view.person.as_str())),
        ("appid", s(ident.appid.as_str())),
        ("targets", s(join_targets(&targets))),
        ("scope", s(scope.as_str())),
        ("ttl", Attr::N(b.clock.now_secs() + TICKET_TTL_SECS)),
    ];
    if let Some(r) = req.return_url {
        attrs.push(("return_url", s(r)));
    }
    b.store.write(Write::Put { item: item(&keys::ticket(&ticket), attrs), cond: vec![Check::NotExists] }).await?;
    Ok(TicketAnswer {
        url: format!("{}/v1/auth/start?ticket={ticket}", b.settings.public_base),
        ticket,
        expires_in: TICKET_TTL_SECS,
    })
}

/// How a chain's targets are kept in a ticket or state item (read back by `Chain::from_item`).
fn join_targets(targets: &[AppId]) -> String {
    targets.iter().map(AppId::as_str).collect::<Vec<_>>().join(",")
}

fn live(it: Option<Item>, now_secs: i64) -> Option<Item> {
    it.filter(|i| i.n("ttl").is_some_and(|t| t > now_secs))
}

/// The chain a ticket or state carries on.
struct Chain {
    person: PersonId,
    targets: Vec<AppId>,
    index: usize,
    scope: Scope,
    return_url: Option<String>,
}

impl Chain {
    fn from_item(it: &Item) -> Result<Self, Error> {
        let bad = || Error::Internal("malformed ticket or state item".into());
        Ok(Chain {
            person: PersonId::parse(it.s("person").ok_or_else(bad)?)?,
            targets: it.s("targets").ok_or_else(bad)?.split(',').map(AppId::parse).collect::<Result<_, _>>()?,
            index: it.n("index").unwrap_or(0).max(0) as usize,
            scope: Scope::parse(it.s("scope").unwrap_or("snsapi_base"))?,
            return_url: it.s("return_url").map(str::to_owned),
        })
    }

    /// Issues a state for hop `index` and answers the authorize URL for it.
    async fn hop(&self, b: &Bridge, index: usize) -> Result<String, Error> {
        let state = b.ids.token();
        let mut attrs = vec![
            ("person", s(self.person.as_str())),
            ("targets", s(join_targets(&self.targets))),
            ("index", Attr::N(index as i64)),
            ("scope", s(self.scope.as_str())),
            ("ttl", Attr::N(b.clock.now_secs() + STATE_TTL_SECS)),
        ];
        if let Some(r) = &self.return_url {
            attrs.push(("return_url", s(r.as_str())));
        }
        b.store.write(Write::Put { item: item(&keys::state(&state), attrs), cond: vec![Check::NotExists] }).await?;
        Ok(authorize_url(b, &self.targets[index], self.scope, &state))
    }

    fn finish(&self, result: &str) -> Finish {
        match &self.return_url {
            Some(r) => Finish::Redirect(with_result(r, result)),
            None => Finish::Page { linked: result == "linked" },
        }
    }
}

/// `GET /v1/auth/start?ticket=`: spends the ticket, sends the web-view to the first OA.
pub async fn start(b: &Bridge, ticket: &str) -> Result<String, Error> {
    if !token_ok(ticket) {
        return Err(Error::TicketInvalid);
    }
    let key = keys::ticket(ticket);
    let it = live(b.store.get(&key).await?, b.clock.now_secs()).ok_or(Error::TicketInvalid)?;
    let chain = Chain::from_item(&it)?;
    match b.store.write(Write::Delete { key, cond: vec![Check::Exists] }).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { .. }) => return Err(Error::TicketInvalid),
        Err(e) => return Err(e.into()),
    }
    chain.hop(b, 0).await
}

fn encode_outcome(r: &Result<Finish, Error>) -> String {
    match r {
        Ok(Finish::Redirect(u)) => format!("redirect:{u}"),
        Ok(Finish::Page { linked }) => format!("page:{linked}"),
        Err(Error::IdentityConflict) => "error:identity_conflict".into(),
        Err(_) => "error:state_invalid".into(),
    }
}

fn decode_outcome(s: &str) -> Option<Result<Finish, Error>> {
    if let Some(u) = s.strip_prefix("redirect:") {
        return Some(Ok(Finish::Redirect(u.to_owned())));
    }
    if let Some(l) = s.strip_prefix("page:") {
        return Some(Ok(Finish::Page { linked: l == "true" }));
    }
    match s.strip_prefix("error:")? {
        "identity_conflict" => Some(Err(Error::IdentityConflict)),
        _ => Some(Err(Error::StateInvalid)),
    }
}

/// Marker for "the user refused" in the state's `used` attribute (codes never contain `!`).
const DENIED: &str = "!denied";

/// `GET /v1/auth/callback?code&state`.
pub async fn callback(b: &Bridge, code: Option<&str>, state: &str) -> Result<Finish, Error> {
    if !token_ok(state) {
        return Err(Error::StateInvalid);
    }
    let code = code.filter(|c| !c.is_empty()).map(Code::parse).transpose()?;
    let used_as = code.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_else(|| DENIED.into());
    let key = keys::state(state);
    // WeChat can deliver the same redirect twice: the second gets the first one's outcome.
    for _ in 0..12 {
        let it = live(b.store.get(&key).await?, b.clock.now_secs()).ok_or(Error::StateInvalid)?;
        match it.s("used") {
            None => {
                let claim = Write::Update {
                    key: key.clone(),
                    set: vec![("used".into(), s(used_as.as_str()))],
                    remove: vec![],
                    cond: vec![Check::Exists, Check::Absent("used".into())],
                };
                match b.store.write(claim).await {
                    Ok(()) => return run_hop(b, &key, Chain::from_item(&it)?, code).await,
                    Err(StoreError::ConditionFailed { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Some(u) if u == used_as => match it.s("outcome").and_then(decode_outcome) {
                Some(outcome) => return outcome,
                // The first delivery is still being handled.
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            Some(_) => return Err(Error::StateInvalid),
        }
    }
    Err(Error::StateInvalid)
}

async fn run_hop(b: &Bridge, key: &crate::store::Key, chain: Chain, code: Option<Code>) -> Result<Finish, Error> {
    let result = hop_outcome(b, &chain, code.as_ref()).await;
    match &result {
        // WeChat refused the code or is down: give the state back, so nothing has changed.
        Err(Error::WeChatCodeInvalid | Error::WeChatCodeUsed | Error::WeChatRateLimited | Error::WeChatUnavailable) => {
            if let Some(c) = &code {
                let release = Write::Update {
                    key: key.clone(),
                    set: vec![],
                    remove: vec!["used".into()],
                    cond: vec![Check::Eq("used".into(), s(c.as_str()))],
                };
                let _ = b.store.write(release).await;
            }
        }
        // Anything else is final for this state: WeChat's second delivery gets the same answer.
        outcome => {
            let record = Write::Update {
                key: key.clone(),
                set: vec![("outcome".into(), s(encode_outcome(outcome)))],
                remove: vec![],
                cond: vec![Check::Exists],
            };
            if let Err(e) = b.store.write(record).await {
                tracing::warn!(error = %e, "could not record a callback outcome");
            }
        }
    }
    result
}

async fn hop_outcome(b: &Bridge, chain: &Chain, code: Option<&Code>) -> Result<Finish, Error> {
    let Some(code) = code else {
        tracing::info!(hop = chain.index, "web authorization refused by the user");
        return Ok(chain.finish("denied"));
    };
    let target = chain.targets.get(chain.index).ok_or_else(|| Error::Internal("state hop out of range".into()))?;
    let app = b.registry.app_of_kind(target, AppKind::OfficialAccount)?;
    let grant = b.wechat.web_grant(app, code).await?;
    if grant.snapshot_user {
        // A virtual "snapshot page" openid is nobody's: bind nothing.
        return Ok(chain.finish("denied"));
    }
    let unionid = match (chain.scope, &grant.unionid) {
        (Scope::Userinfo, None) if app.open_platform.is_some() => b.wechat.web_unionid(&grant).await?,
        _ => grant.unionid.clone(),
    };
    b.assoc().link(app, &grant.openid, unionid.as_ref(), &chain.person, Via::WebAuth).await?;
    let next = chain.index + 1;
    if next < chain.targets.len() {
        return chain.hop(b, next).await.map(Finish::Redirect);
    }
    Ok(chain.finish("linked"))
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
}
