//! Harness for the end-to-end tests: a devstack per test (embedded store or DynamoDB Local),
//! and a client that plays the user through the simulator's control surface — over HTTP only.

use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub use devstack::Devstack;
use shared::store::dynamo::DynamoStore;
use shared::store::Store;
pub use wechat_sim::UnionIdMode;

/// The key devstack signs login links with in tests (a secret the logs must never show).
pub const LINK_KEY: &str = "test-link-key-0123456789abcdef0123456789abcdef";

pub const PLATFORM_MP: &str = "wx1a2b3c4d5e6f7001";
pub const PIVOT_OA: &str = "wx1a2b3c4d5e6f7002";
pub const MERCHANT1_MP: &str = "wx2b3c4d5e6f708101";
/// A second platform mini program on the platform's open platform (test registry only).
pub const PLATFORM_MP2: &str = "wx1a2b3c4d5e6f7009";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Dynamo,
}

/// The DynamoDB Local endpoint started by `scripts/test`. Missing is a failure, never a skip.
pub fn dynamodb_endpoint() -> String {
    std::env::var("WXBRIDGE_TEST_DYNAMODB").unwrap_or_else(|_| {
        panic!("WXBRIDGE_TEST_DYNAMODB is not set: run the suite with scripts/test, which starts DynamoDB Local")
    })
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// A DynamoDB store on a fresh table of DynamoDB Local.
pub async fn dynamo_store() -> Arc<dyn Store> {
    let s = DynamoStore::local(&dynamodb_endpoint(), unique("wxb-test")).await;
    s.ensure_table().await.expect("create table on DynamoDB Local");
    Arc::new(s)
}

/// The demo tenant plus a second platform mini program, so two apps share a unionid.
pub fn test_registry() -> String {
    let mut reg: Value = serde_json::from_str(devstack::DEMO_REGISTRY).unwrap();
    let apps = reg["apps"].as_array_mut().unwrap();
    apps.push(json!({"appid": PLATFORM_MP2, "name": "Platform second mini program", "kind": "mini_program",
        "role": "platform_mp", "owner": "platform", "open_platform": "op_platform", "secret": "0123456789abcdef0123456789abcdef"}));
    reg.to_string()
}

pub struct Env {
    pub stack: Devstack,
    pub base: String,
    pub http: reqwest::Client,
    /// Each simulated user's WeChat browser, with its own cookies.
    browsers: std::sync::Mutex<std::collections::HashMap<String, reqwest::Client>>,
}

pub async fn env(kind: StoreKind) -> Env {
    env_with(kind, UnionIdMode::Conditional).await
}

pub async fn env_with(kind: StoreKind, mode: UnionIdMode) -> Env {
    let dynamodb = match kind {
        StoreKind::Memory => None,
        StoreKind::Dynamo => Some((dynamodb_endpoint(), unique("wxb-e2e"))),
    };
    env_on(dynamodb, mode).await
}

/// A devstack with the test registry, on the embedded store or `(endpoint, table)`.
async fn env_on(dynamodb: Option<(String, String)>, mode: UnionIdMode) -> Env {
    let opts = devstack::Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        registry_json: Some(test_registry()),
        dynamodb,
        unionid_mode: mode,
        wechat_timeout: Duration::from_millis(400),
        stash_ttl_secs: 600,
        link_key: Some(LINK_KEY.into()),
        // Tests push verify tickets when they need them.
        ticket_timer: false,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("TEST_LOG").unwrap_or("off".into()))
        .with_test_writer()
        .try_init();
    let stack = devstack::start(opts).await.expect("devstack starts");
    let base = stack.base.clone();
    Env {
        stack,
        base,
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        browsers: Default::default(),
    }
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    #[track_caller]
    pub fn expect_problem(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.text);
        assert!(self.content_type.starts_with("application/problem+json"), "{}", self.content_type);
    }
    #[track_caller]
    pub fn expect_ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.text);
        &self.body
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn answer(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, content_type, body, text }
    }

    /// Sends the request, with the bearer credential when given, and reads the answer.
    async fn send(r: reqwest::RequestBuilder, token: Option<&str>) -> Answer {
        let r = match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        };
        Self::answer(r.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Answer {
        Self::send(self.http.post(self.url(path)).json(body), token).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>, token: Option<&str>) -> Answer {
        Self::send(self.http.post(self.url(path)).header("content-type", "application/json").body(body), token).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        Self::send(self.http.get(self.url(path)), token).await
    }

    pub async fn put(&self, path: &str, body: &Value, token: Option<&str>) -> Answer {
        Self::send(self.http.put(self.url(path)).json(body), token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        Self::send(self.http.delete(self.url(path)), token).await
    }

    /// What `wx.login` gives the user in the mini program.
    pub async fn wx_login(&self, user: &str, appid: &str) -> String {
        let a = self.post(&format!("/sim/users/{user}/login"), &json!({"appid": appid}), None).await;
        a.body["code"].as_str().unwrap_or_else(|| panic!("sim login: {}", a.text)).to_owned()
    }

    /// wx.login then POST /v1/mp/login.
    pub async fn login(&self, user: &str, appid: &str) -> Answer {
        let code = self.wx_login(user, appid).await;
        self.post("/v1/mp/login", &json!({"appid": appid, "code": code}), None).await
    }

    /// What `wx.getUserInfo` gives after the user's last login in that app.
    pub async fn wx_userinfo(&self, user: &str, appid: &str) -> Value {
        let a = self.post(&format!("/sim/users/{user}/userinfo"), &json!({"appid": appid}), None).await;
        assert_eq!(a.status, 200, "sim userinfo: {}", a.text);
        a.body
    }

    pub async fn truth(&self, user: &str, appid: &str) -> (String, Option<String>) {
        let a = self.get(&format!("/sim/users/{user}/identity?appid={appid}"), None).await;
        (a.body["openid"].as_str().unwrap().to_owned(), a.body["unionid"].as_str().map(str::to_owned))
    }

    pub async fn fault(&self, path: &str, fault: Value) {
        let mut f = fault;
        f["path"] = json!(path);
        let a = self.post("/sim/faults", &f, None).await;
        assert!(a.status < 300, "fault: {}", a.text);
    }

    pub async fn advance_clock(&self, secs: i64) {
        let a = self.post("/sim/clock", &json!({"advance_seconds": secs}), None).await;
        assert_eq!(a.status, 200, "clock: {}", a.text);
    }

    pub async fn calls(&self, path: &str) -> u64 {
        self.get("/sim/calls", None).await.body[path].as_u64().unwrap_or(0)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.stack.bridge.store()
    }

    /// Another instance of the bridge (a cold start) over the same table, WeChat and clock.
    pub fn fresh_bridge(&self) -> shared::Bridge {
        use shared::wechat::client::{WeChatClient, WeChatConfig};
        let seed = shared::registry::Registry::from_json(&test_registry()).unwrap();
        let sim = self.stack.sim.clone();
        let wechat = WeChatClient::new(WeChatConfig {
            api_base: self.base.clone(),
            open_base: self.base.clone(),
            timeout: Duration::from_secs(2),
            attempts: 3,
            backoff: Duration::from_millis(50),
        })
        .unwrap();
        shared::Bridge::builder()
            .store(self.store().clone())
            .wechat(Arc::new(wechat))
            .clock(Arc::new(move || sim.now_millis()))
            .component(seed.component)
            .build()
            .unwrap()
    }
}

/// Encrypts like `wx.getUserInfo` (AES-128-CBC, PKCS#7) — for crafting hostile inputs.
pub fn wxa_encrypt(session_key_b64: &str, plaintext: &[u8], iv: [u8; 16]) -> (String, String) {
    use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(session_key_b64).unwrap();
    let enc = cbc::Encryptor::<aes::Aes128>::new_from_slices(&key, &iv).unwrap();
    (b64.encode(enc.encrypt_padded_vec_mut::<Pkcs7>(plaintext)), b64.encode(iv))
}

/// Runs an async test body once per store: `both_stores!(name, |kind| async move { … })`;
/// `both_stores!(#[ignore = "bug: …"] name, …)` keeps a test that shows a known bug, ignored.
#[macro_export]
macro_rules! both_stores {
    (#[ignore = $why:literal] $name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[ignore = $why]
            async fn memory() {
                ($body)($crate::StoreKind::Memory).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[ignore = $why]
            async fn dynamodb() {
                ($body)($crate::StoreKind::Dynamo).await
            }
        }
    };
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn memory() {
                ($body)($crate::StoreKind::Memory).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn dynamodb() {
                ($body)($crate::StoreKind::Dynamo).await
            }
        }
    };
}

pub const MERCHANT1_OA: &str = "wx2b3c4d5e6f708102";
pub const MERCHANT2_OA: &str = "wx3c4d5e6f7a809202";
pub const MERCHANT2_MP: &str = "wx3c4d5e6f7a809201";
pub const RETURN_URL: &str = "https://demo.example.com/linked";

/// Where a web-view pass ended.
#[derive(Debug)]
pub struct Walk {
    /// Every URL visited, in order.
    pub hops: Vec<String>,
    /// The last answer: a page of ours, or the redirect that left the bridge and WeChat.
    pub last: Answer,
    /// Set when the pass ended on a redirect to a URL outside devstack (the return_url).
    pub left_to: Option<String>,
    /// The owner's confirm, when the walk was confirmed.
    pub confirmed: Option<Answer>,
}

impl Env {
    pub fn registry(&self) -> Value {
        serde_json::from_str(&test_registry()).unwrap()
    }

    pub fn service_key(&self) -> String {
        self.registry()["credentials"]["service"].as_str().unwrap().to_owned()
    }

    pub fn admin_key(&self) -> String {
        self.registry()["credentials"]["admin"].as_str().unwrap().to_owned()
    }

    /// The user's WeChat browser: the simulator knows who by a header; it keeps its cookies.
    pub fn browser(&self, user: &str) -> reqwest::Client {
        let mut all = self.browsers.lock().unwrap();
        all.entry(user.to_owned())
            .or_insert_with(|| {
                let mut h = reqwest::header::HeaderMap::new();
                h.insert("X-WxSim-User", reqwest::header::HeaderValue::from_str(user).unwrap());
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .cookie_store(true)
                    .default_headers(h)
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap()
            })
            .clone()
    }

    /// The user's browser is a new one: no cookies.
    pub fn new_browser(&self, user: &str) {
        self.browsers.lock().unwrap().remove(user);
    }

    /// A GET as the user's WeChat browser makes it (`url` may be a path of the bridge's origin).
    pub async fn browse(&self, user: &str, url: &str) -> (reqwest::StatusCode, Option<String>, Answer) {
        self.browse_with(user, url, None).await
    }

    /// The same, with a bearer credential.
    pub async fn browse_with(
        &self,
        user: &str,
        url: &str,
        bearer: Option<&str>,
    ) -> (reqwest::StatusCode, Option<String>, Answer) {
        let url = if url.starts_with('/') { self.url(url) } else { url.to_owned() };
        let req = self.browser(user).get(url);
        let req = match bearer {
            Some(b) => req.bearer_auth(b),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (status, location, Self::answer(resp).await)
    }

    /// Follows redirects like a mini program's web-view, as `user`, from `url`.
    pub async fn webview(&self, user: &str, url: &str) -> Walk {
        let mut hops = Vec::new();
        let mut url = url.split('#').next().unwrap().to_owned();
        for _ in 0..16 {
            hops.push(url.clone());
            let (status, location, last) = self.browse(user, &url).await;
            match location {
                Some(loc) if status.is_redirection() => {
                    let next = loc.split('#').next().unwrap().to_owned();
                    if !next.starts_with(&self.base) {
                        return Walk { hops, last, left_to: Some(next), confirmed: None };
                    }
                    url = next;
                }
                _ => return Walk { hops, last, left_to: None, confirmed: None },
            }
        }
        panic!("web-view redirect loop: {hops:?}");
    }

    /// A ticket for the user's mini-program token, then the web-view pass, unconfirmed.
    pub async fn pass_via_webview(&self, user: &str, token: &str, body: Value) -> Walk {
        let t = self.post("/v1/auth/tickets", &body, Some(token)).await;
        assert_eq!(t.status, 201, "ticket: {}", t.text);
        self.webview(user, t.body["url"].as_str().unwrap()).await
    }

    /// A pass, confirmed by the mini program that made the ticket: the whole link.
    pub async fn link_via_webview(&self, user: &str, token: &str, body: Value) -> Walk {
        let walk = self.pass_via_webview(user, token, body).await;
        if let Some(code) = walk.confirm_code() {
            let c = self.post("/v1/auth/confirm", &json!({"code": code}), Some(token)).await;
            return Walk { confirmed: Some(c), ..walk };
        }
        walk
    }
}

/// The first URL in a reply text.
pub fn link_in(text: &str) -> Option<String> {
    let at = text.find("http")?;
    Some(text[at..].split(|c: char| c.is_whitespace() || "\"'<>」".contains(c)).next()?.to_owned())
}

impl Env {
    pub fn site_key(&self) -> String {
        self.registry()["site"]["api_key"].as_str().unwrap().to_owned()
    }

    /// The key of merchant 1's site (it binds through merchant 1's official account).
    pub fn m1_site_key(&self) -> String {
        self.registry()["sites"][0]["api_key"].as_str().unwrap().to_owned()
    }

    /// The user scans a QR ticket: the simulator pushes the event; its answer has the reply.
    pub async fn scan(&self, user: &str, ticket: &str) -> Value {
        let a = self.post(&format!("/sim/users/{user}/scan"), &json!({"ticket": ticket}), None).await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.body
    }

    /// A scan, then the confirm link its reply carries, opened in the scanner's own browser.
    pub async fn scan_and_confirm(&self, user: &str, ticket: &str) -> (Value, Walk) {
        let r = self.scan(user, ticket).await;
        let link = link_in(r["reply"].as_str().unwrap_or("")).unwrap_or_else(|| panic!("no confirm link: {r}"));
        let walk = self.webview(user, &link).await;
        (r, walk)
    }

    /// The follower asks the official account's menu for a login link.
    pub async fn login_link(&self, user: &str, appid: &str) -> String {
        let key = self.registry()["menu_login_key"].as_str().unwrap().to_owned();
        let c = self.post(&format!("/sim/users/{user}/click"), &json!({"appid": appid, "key": key}), None).await;
        link_in(c.body["reply"].as_str().unwrap_or_else(|| panic!("{}", c.text))).unwrap()
    }

    /// A login link opened in `opener`'s WeChat browser: the site's code when the browser was
    /// the follower's.
    pub async fn open_login_link(&self, opener: &str, link: &str) -> (Walk, Option<String>) {
        let walk = self.webview(opener, link).await;
        let landed = walk.left_to.clone().or_else(|| walk.hops.last().cloned());
        let code = landed.and_then(|to| {
            reqwest::Url::parse(&to)
                .ok()?
                .query_pairs()
                .find(|(k, _)| k == "wxbridge_code")
                .map(|(_, v)| v.into_owned())
        });
        (walk, code)
    }
}

impl Walk {
    /// The confirm code the pass ended with: in the return URL, or in the page's meta.
    pub fn confirm_code(&self) -> Option<String> {
        if let Some(to) = &self.left_to {
            let u = reqwest::Url::parse(to).ok()?;
            if let Some((_, c)) = u.query_pairs().find(|(k, _)| k == "confirm") {
                return Some(c.into_owned());
            }
        }
        let t = &self.last.text;
        let at = t.find("name=\"wxbridge-confirm\" content=\"")? + "name=\"wxbridge-confirm\" content=\"".len();
        Some(t[at..].split('"').next()?.to_owned())
    }

    /// The `result` the pass ended with (return URL query, or the page's data-result).
    pub fn result(&self) -> Option<String> {
        if let Some(to) = &self.left_to {
            let u = reqwest::Url::parse(to).ok()?;
            return u.query_pairs().find(|(k, _)| k == "result").map(|(_, v)| v.into_owned());
        }
        let t = &self.last.text;
        let at = t.find("data-result=\"")? + "data-result=\"".len();
        Some(t[at..].split('"').next()?.to_owned())
    }
}

/// A TCP proxy in front of DynamoDB Local that can be cut: while down it drops every
/// connection, old and new, as a store that went away does.
pub struct FaultProxy {
    pub url: String,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    pub async fn start(target: &str) -> FaultProxy {
        use std::sync::atomic::Ordering;
        let target = target.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = down.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped at once
                }
                let (target, flag) = (target.clone(), flag.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else { return };
                    let (mut ri, mut wi) = inbound.split();
                    let (mut ro, mut wo) = outbound.split();
                    let cut = async {
                        while !flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy(&mut ri, &mut wo) => {}
                        _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        FaultProxy { url, down }
    }

    pub fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A devstack on DynamoDB Local reached through `proxy`.
pub async fn env_through(proxy: &FaultProxy) -> Env {
    env_on(Some((proxy.url.clone(), unique("wxb-fault"))), UnionIdMode::Conditional).await
}

/// Tenants (API.md v1.1): a merchant's app and a site are shown pairwise person ids, which the
/// operators' API does not take. "The same person" is told by the platform-wide id operators
/// see for an identity, or by translation with the key of the app's owner.
impl Env {
    /// A merchant's translation key (the registry's `merchant_keys`).
    pub fn merchant_key(&self, merchant: &str) -> String {
        self.registry()["merchant_keys"][merchant]
            .as_str()
            .unwrap_or_else(|| panic!("no key for merchant {merchant}"))
            .to_owned()
    }

    /// The owner of an app of the registry: `platform` or a merchant's id.
    pub fn owner_of(&self, appid: &str) -> String {
        let reg = self.registry();
        let app = reg["apps"].as_array().unwrap().iter().find(|a| a["appid"] == appid);
        app.unwrap_or_else(|| panic!("{appid} is not in the registry"))["owner"].as_str().unwrap().to_owned()
    }

    /// `GET /v1/translate` with `key`.
    pub async fn translate(&self, key: &str, from: &str, openid: &str, to: &str) -> Answer {
        self.get(&format!("/v1/translate?from_appid={from}&openid={openid}&to_appid={to}"), Some(key)).await
    }

    /// The platform-wide person behind an identity, as operators see it
    /// (`GET /v1/identities/{appid}/{openid}` with the admin key).
    pub async fn person_of(&self, appid: &str, openid: &str) -> String {
        let a = self.get(&format!("/v1/identities/{appid}/{openid}"), Some(&self.admin_key())).await;
        a.expect_ok()["person_id"].as_str().unwrap_or_else(|| panic!("no person_id: {}", a.text)).to_owned()
    }

    /// The person id the owner of `appid` is shown for that identity: the platform-wide id for
    /// the platform's apps, the merchant's pairwise id (translation with its own key) otherwise.
    pub async fn shown_to_owner(&self, appid: &str, openid: &str) -> String {
        let owner = self.owner_of(appid);
        if owner == "platform" {
            return self.person_of(appid, openid).await;
        }
        let t = self.translate(&self.merchant_key(&owner), appid, openid, appid).await;
        t.expect_ok()["person_id"].as_str().unwrap_or_else(|| panic!("no person_id: {}", t.text)).to_owned()
    }
}
