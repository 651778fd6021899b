//! Test doubles for the domain's ports, so the association rules and the token broker are
//! tested without HTTP: a scripted WeChat that counts what it is asked, a clock that stands
//! still until told, ids that come in order, a store that fails when told, and apps.
//!
//! Compiled for this crate's tests and, with the `testkit` feature, for other crates' tests.

use async_trait::async_trait;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::bridge::{Bridge, BridgeBuilder};
use crate::domain::access_token::Broker;
use crate::domain::assoc::Assoc;
use crate::error::Error;
use crate::ids::{AppId, Code, OpenId, OpenPlatformId, PersonId, Secret, UnionId};
use crate::model::{AppKind, Owner, Role};
use crate::ports::{Clock, Ids};
use crate::registry::App;
use crate::store::memory::MemoryStore;
use crate::store::{Item, Key, Store, StoreError, Write};
use crate::wechat::{QrCode, Session, WeChat, WebGrant};

/// 2023-11-14T22:13:20Z: a "now" far from zero, so no time computation meets an edge.
pub const EPOCH_MILLIS: i64 = 1_700_000_000_000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A clock that only moves when told.
#[derive(Debug)]
pub struct FixedClock {
    millis: AtomicI64,
}

impl Default for FixedClock {
    fn default() -> Self {
        FixedClock::at(EPOCH_MILLIS)
    }
}

impl FixedClock {
    pub fn at(millis: i64) -> Self {
        FixedClock { millis: AtomicI64::new(millis) }
    }

    pub fn set(&self, millis: i64) {
        self.millis.store(millis, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.millis.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_millis(&self) -> i64 {
        self.millis.load(Ordering::SeqCst)
    }
}

/// Ids in the order they are asked for: person ids are valid UUIDv7s whose order is the
/// order of creation (as real ones are), tokens are 32 distinct hex characters.
#[derive(Debug, Default)]
pub struct SeqIds {
    persons: AtomicU64,
    tokens: AtomicU64,
}

impl SeqIds {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `n`th person id this source gives (from 1), for asserting on it in advance.
    pub fn nth_person(n: u64) -> PersonId {
        let mut tail = [0u8; 10];
        tail[2..].copy_from_slice(&n.to_be_bytes());
        let u = uuid::Builder::from_unix_timestamp_millis(EPOCH_MILLIS as u64 + n, &tail).into_uuid();
        PersonId::from_uuid(u)
    }
}

impl Ids for SeqIds {
    fn person(&self) -> PersonId {
        Self::nth_person(self.persons.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn token(&self) -> String {
        format!("{:032x}", self.tokens.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// One request the fake WeChat received, in the order received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Code2Session { appid: AppId, code: String },
    WebGrant { appid: AppId, code: String },
    WebUnionid { openid: OpenId },
    StableToken { appid: AppId, force_refresh: bool },
    QrCodeCreate { access_token: String, scene: String },
}

/// How many times each method was called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub code2session: usize,
    pub web_grant: usize,
    pub web_unionid: usize,
    pub stable_token: usize,
    /// Of `stable_token`'s calls, those with `force_refresh`.
    pub forced_refreshes: usize,
    pub qrcode_create: usize,
}

type Answers<T> = HashMap<(AppId, String), Result<T, Error>>;
/// A `stable_token` answer: the token and its remaining life in seconds.
type TokenAnswer = Result<(Secret, i64), Error>;

#[derive(Default)]
struct Script {
    sessions: Answers<Session>,
    grants: Answers<WebGrant>,
    userinfo: HashMap<OpenId, Option<UnionId>>,
    stable_tokens: HashMap<AppId, VecDeque<TokenAnswer>>,
    issued_tokens: u64,
    refused_tokens: HashSet<String>,
    qrcodes: VecDeque<Result<QrCode, Error>>,
    spent_codes: HashSet<(AppId, String)>,
    calls: Vec<Call>,
}

impl Script {
    /// A scripted answer to a code, once: WeChat's codes are single use.
    fn answer<T>(&mut self, scripted: fn(&mut Script) -> &mut Answers<T>, app: &App, code: &Code) -> Result<T, Error> {
        let key = (app.appid.clone(), code.as_str().to_owned());
        match scripted(self).remove(&key) {
            Some(answer) => {
                self.spent_codes.insert(key);
                answer
            }
            None if self.spent_codes.contains(&key) => Err(Error::WeChatCodeUsed),
            None => Err(Error::WeChatCodeInvalid),
        }
    }
}

/// A WeChat that answers what the test scripted. A code answers once (a second use is
/// `wechat_code_used`, an unscripted one `wechat_code_invalid`); `stable_token` answers the
/// scripted results in order, then a fresh token a call (`<appid>-token-<n>`, 7200 s);
/// `qrcode_create` refuses every token told to refuse (errcode 40001), else answers the
/// scripted codes in order, then one made from the scene.
#[derive(Default)]
pub struct FakeWeChat {
    script: Mutex<Script>,
    /// How long `stable_token` takes (with a paused tokio clock, no real time passes).
    token_latency: Mutex<Duration>,
}

impl FakeWeChat {
    pub fn new() -> Self {
        Self::default()
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        lock(&self.script)
    }

    /// `code` of `appid` logs in `openid` (with `unionid`, when WeChat would name it).
    pub fn session(&self, appid: &AppId, code: &str, openid: &str, unionid: Option<&str>) -> &Self {
        let session = Session {
            openid: openid_of(openid),
            session_key: Secret::new(format!("session-key-{code}")),
            unionid: unionid.map(unionid_of),
        };
        self.answer_code2session(appid, code, Ok(session))
    }

    pub fn answer_code2session(&self, appid: &AppId, code: &str, answer: Result<Session, Error>) -> &Self {
        self.script().sessions.insert((appid.clone(), code.to_owned()), answer);
        self
    }

    /// `code` of official account `appid` names `openid` (and `unionid`, when WeChat would).
    pub fn web_grant(&self, appid: &AppId, code: &str, openid: &str, unionid: Option<&str>) -> &Self {
        let grant = WebGrant {
            openid: openid_of(openid),
            unionid: unionid.map(unionid_of),
            access_token: Secret::new(format!("web-token-{code}")),
            snapshot_user: false,
        };
        self.answer_web_grant(appid, code, Ok(grant))
    }

    pub fn answer_web_grant(&self, appid: &AppId, code: &str, answer: Result<WebGrant, Error>) -> &Self {
        self.script().grants.insert((appid.clone(), code.to_owned()), answer);
        self
    }

    /// What `/sns/userinfo` names for `openid` (else the grant's own unionid).
    pub fn userinfo(&self, openid: &str, unionid: Option<&str>) -> &Self {
        self.script().userinfo.insert(openid_of(openid), unionid.map(unionid_of));
        self
    }

    /// The next answer of `stable_token` for `appid` (answers queue up).
    pub fn stable_token(&self, appid: &AppId, answer: TokenAnswer) -> &Self {
        self.script().stable_tokens.entry(appid.clone()).or_default().push_back(answer);
        self
    }

    /// Every `stable_token` call takes this long.
    pub fn token_latency(&self, d: Duration) -> &Self {
        *lock(&self.token_latency) = d;
        self
    }

    /// WeChat no longer takes this access token: `qrcode_create` with it answers 40001.
    pub fn refuse_token(&self, access_token: &str) -> &Self {
        self.script().refused_tokens.insert(access_token.to_owned());
        self
    }

    /// The next answer of `qrcode_create` (answers queue up).
    pub fn qrcode(&self, answer: Result<QrCode, Error>) -> &Self {
        self.script().qrcodes.push_back(answer);
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.script().calls.clone()
    }

    pub fn counts(&self) -> CallCounts {
        let mut c = CallCounts::default();
        for call in &self.script().calls {
            match call {
                Call::Code2Session { .. } => c.code2session += 1,
                Call::WebGrant { .. } => c.web_grant += 1,
                Call::WebUnionid { .. } => c.web_unionid += 1,
                Call::StableToken { force_refresh, .. } => {
                    c.stable_token += 1;
                    c.forced_refreshes += usize::from(*force_refresh);
                }
                Call::QrCodeCreate { .. } => c.qrcode_create += 1,
            }
        }
        c
    }
}

#[async_trait]
impl WeChat for FakeWeChat {
    async fn code2session(&self, app: &App, code: &Code) -> Result<Session, Error> {
        let mut s = self.script();
        s.calls.push(Call::Code2Session { appid: app.appid.clone(), code: code.as_str().to_owned() });
        s.answer(|s| &mut s.sessions, app, code)
    }

    async fn web_grant(&self, app: &App, code: &Code) -> Result<WebGrant, Error> {
        let mut s = self.script();
        s.calls.push(Call::WebGrant { appid: app.appid.clone(), code: code.as_str().to_owned() });
        s.answer(|s| &mut s.grants, app, code)
    }

    async fn web_unionid(&self, grant: &WebGrant) -> Result<Option<UnionId>, Error> {
        let mut s = self.script();
        s.calls.push(Call::WebUnionid { openid: grant.openid.clone() });
        Ok(s.userinfo.get(&grant.openid).cloned().unwrap_or_else(|| grant.unionid.clone()))
    }

    async fn stable_token(&self, app: &App, force_refresh: bool) -> Result<(Secret, i64), Error> {
        let latency = *lock(&self.token_latency);
        let answer = {
            let mut s = self.script();
            s.calls.push(Call::StableToken { appid: app.appid.clone(), force_refresh });
            match s.stable_tokens.get_mut(&app.appid).and_then(VecDeque::pop_front) {
                Some(answer) => answer,
                None => {
                    s.issued_tokens += 1;
                    Ok((Secret::new(format!("{}-token-{}", app.appid, s.issued_tokens)), 7200))
                }
            }
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        answer
    }

    async fn qrcode_create(&self, access_token: &Secret, scene: &str, expire_seconds: i64) -> Result<QrCode, Error> {
        let mut s = self.script();
        s.calls.push(Call::QrCodeCreate { access_token: access_token.expose().to_owned(), scene: scene.to_owned() });
        if s.refused_tokens.contains(access_token.expose()) {
            return Err(Error::WeChatError(40001));
        }
        s.qrcodes.pop_front().unwrap_or_else(|| {
            Ok(QrCode {
                ticket: format!("ticket-{scene}"),
                expire_seconds,
                url: format!("http://weixin.qq.com/q/{scene}"),
            })
        })
    }
}

/// A store that passes everything to `inner`, except the transactions it was told to fail:
/// those answer `StoreError::Unavailable` and write nothing (a throttled or unreachable
/// DynamoDB), so a flow can be stopped half-way. Told to [`Self::interleave`], it lets other
/// tasks run before every request, so flows joined in one test take turns as they would
/// against a remote store.
pub struct FailingStore {
    inner: Arc<dyn Store>,
    interleave: AtomicBool,
    /// Transactions received so far.
    transacts: AtomicU64,
    /// The transactions numbered `[fail_from, fail_until)` fail.
    fail_from: AtomicU64,
    fail_until: AtomicU64,
}

impl FailingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        FailingStore {
            inner,
            interleave: AtomicBool::new(false),
            transacts: AtomicU64::new(0),
            fail_from: AtomicU64::new(u64::MAX),
            fail_until: AtomicU64::new(u64::MAX),
        }
    }

    fn fail_window(&self, after: u64, len: u64) {
        let from = self.transacts.load(Ordering::SeqCst) + after + 1;
        self.fail_from.store(from, Ordering::SeqCst);
        self.fail_until.store(from.saturating_add(len), Ordering::SeqCst);
    }

    /// The `nth` transaction from now fails (1: the next one); the others pass.
    pub fn fail_transact(&self, nth: u64) {
        self.fail_window(nth.saturating_sub(1), 1);
    }

    /// The next `n` transactions pass, and every one after them fails until [`Self::heal`].
    pub fn fail_transacts_after(&self, n: u64) {
        self.fail_window(n, u64::MAX);
    }

    /// Every transaction passes again.
    pub fn heal(&self) {
        self.fail_from.store(u64::MAX, Ordering::SeqCst);
    }

    /// Every request first lets the other tasks run.
    pub fn interleave(&self) {
        self.interleave.store(true, Ordering::SeqCst);
    }

    async fn turn(&self) {
        if self.interleave.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    }

    /// How many transactions were asked for (failed ones included).
    pub fn transacts(&self) -> u64 {
        self.transacts.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for FailingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.turn().await;
        self.inner.get(key).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.turn().await;
        self.inner.query(pk, sk_prefix).await
    }
    async fn write(&self, op: Write) -> Result<(), StoreError> {
        self.turn().await;
        self.inner.write(op).await
    }
    async fn transact(&self, ops: Vec<Write>) -> Result<(), StoreError> {
        self.turn().await;
        let n = self.transacts.fetch_add(1, Ordering::SeqCst) + 1;
        if (self.fail_from.load(Ordering::SeqCst)..self.fail_until.load(Ordering::SeqCst)).contains(&n) {
            return Err(StoreError::Unavailable(format!("transaction {n} failed on purpose")));
        }
        self.inner.transact(ops).await
    }
    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        self.inner.scan_all().await
    }
}

/// Every item of a store, for before/after comparisons.
pub async fn dump(store: &dyn Store) -> Vec<Item> {
    store.scan_all().await.expect("a store that lists its items")
}

/// Every port a domain test needs, as doubles: an embedded store behind a [`FailingStore`],
/// a scripted WeChat, a clock at [`EPOCH_MILLIS`] and ids in order.
pub struct Ports {
    pub store: Arc<FailingStore>,
    pub wechat: Arc<FakeWeChat>,
    pub clock: Arc<FixedClock>,
    pub ids: Arc<SeqIds>,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            store: Arc::new(FailingStore::new(Arc::new(MemoryStore::new()))),
            wechat: Arc::new(FakeWeChat::new()),
            clock: Arc::new(FixedClock::default()),
            ids: Arc::new(SeqIds::new()),
        }
    }
}

impl Ports {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn assoc(&self) -> Assoc<'_> {
        Assoc { store: &*self.store, clock: &*self.clock, ids: &*self.ids }
    }

    pub fn broker(&self) -> Broker<'_> {
        Broker { store: &*self.store, wechat: &*self.wechat, clock: &*self.clock, ids: &*self.ids, component: None }
    }

    /// A bridge over these ports; the rest (registry, keys, URLs) is the caller's to give.
    pub fn bridge(&self) -> BridgeBuilder {
        Bridge::builder()
            .store(self.store.clone())
            .wechat(self.wechat.clone())
            .clock(self.clock.clone())
            .ids(self.ids.clone())
    }
}

/// An app of `kind` owned by `owner`, in `open_platform` when given, with the role the
/// registry would default to and a dummy secret.
pub fn app(appid: &str, kind: AppKind, owner: Owner, open_platform: Option<&str>) -> App {
    App {
        appid: appid_of(appid),
        name: appid.to_owned(),
        kind,
        role: Role::default_for(kind, &owner),
        owner,
        open_platform: open_platform.map(|op| OpenPlatformId::parse(op).expect("a valid open platform id")),
        auth: crate::model::Auth::Secret,
        secret: Secret::new(format!("secret-{appid}")),
        token: None,
        encoding_aes_key: None,
        safe_mode: false,
        primary: false,
    }
}

/// The platform's mini program `appid`.
pub fn mini_program(appid: &str, open_platform: Option<&str>) -> App {
    app(appid, AppKind::MiniProgram, Owner::Platform, open_platform)
}

/// The platform's official account `appid`.
pub fn official_account(appid: &str, open_platform: Option<&str>) -> App {
    app(appid, AppKind::OfficialAccount, Owner::Platform, open_platform)
}

pub fn appid_of(s: &str) -> AppId {
    AppId::parse(s).expect("a valid appid")
}

pub fn openid_of(s: &str) -> OpenId {
    OpenId::parse(s).expect("a valid openid")
}

pub fn unionid_of(s: &str) -> UnionId {
    UnionId::parse(s).expect("a valid unionid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_ids_are_valid_uuidv7s_in_creation_order() {
        let ids = SeqIds::new();
        let (a, b) = (ids.person(), ids.person());
        assert!(a < b);
        assert_eq!(a, SeqIds::nth_person(1));
        for p in [&a, &b] {
            assert_eq!(PersonId::parse(p.as_str()).unwrap(), *p);
            assert_eq!(uuid::Uuid::parse_str(p.as_str()).unwrap().get_version_num(), 7);
        }
        let (t, u) = (ids.token(), ids.token());
        assert!(t != u && t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn the_clock_moves_only_when_told() {
        let clock = FixedClock::default();
        assert_eq!(clock.now_millis(), EPOCH_MILLIS);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now_secs(), EPOCH_MILLIS / 1000 + 2);
        clock.set(5);
        assert_eq!(clock.now_millis(), 5);
    }

    #[tokio::test]
    async fn a_scripted_code_answers_once_and_is_counted() {
        let wechat = FakeWeChat::new();
        let mp = mini_program("wxtestmp0000000001", Some("op"));
        wechat.session(&mp.appid, "c1", "o1", Some("u1"));
        let code = Code::parse("c1").unwrap();
        let s = wechat.code2session(&mp, &code).await.unwrap();
        assert_eq!((s.openid.as_str(), s.unionid.unwrap().as_str()), ("o1", "u1"));
        assert!(matches!(wechat.code2session(&mp, &code).await, Err(Error::WeChatCodeUsed)));
        let unknown = Code::parse("c2").unwrap();
        assert!(matches!(wechat.code2session(&mp, &unknown).await, Err(Error::WeChatCodeInvalid)));
        assert_eq!(wechat.counts(), CallCounts { code2session: 3, ..Default::default() });
    }

    #[tokio::test]
    async fn the_store_fails_exactly_the_transactions_it_was_told_to() {
        let store = FailingStore::new(Arc::new(MemoryStore::new()));
        let put = |sk: &str| vec![Write::Put { item: crate::store::item(&Key::new("P", sk), []), cond: vec![] }];
        store.fail_transact(2);
        assert!(store.transact(put("a")).await.is_ok());
        assert!(matches!(store.transact(put("b")).await, Err(StoreError::Unavailable(_))));
        assert!(store.transact(put("c")).await.is_ok());
        store.fail_transacts_after(1);
        assert!(store.transact(put("d")).await.is_ok());
        assert!(store.transact(put("e")).await.is_err() && store.transact(put("f")).await.is_err());
        store.heal();
        assert!(store.transact(put("g")).await.is_ok());
        let sks: Vec<_> = store.query("P", "").await.unwrap().iter().map(|i| i["SK"].clone()).collect();
        assert_eq!(sks.len(), 4, "failed transactions wrote nothing: {sks:?}");
        assert_eq!(store.transacts(), 7);
    }
}
