//! devstack: every wxbridge function and the WeChat simulator in one process, on one
//! origin, over the embedded store (or a DynamoDB server). Tests start it in-process.

use axum::response::IntoResponse;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::bridge::Bridge;
use shared::domain::Urls;
use shared::registry::{Registry, Role};
use shared::routes::Routes;
use shared::store::counting::CountingStore;
use shared::store::dynamo::DynamoStore;
use shared::store::memory::MemoryStore;
use shared::store::Store;
use shared::tokens::Tokens;
use shared::vault::{LocalKey, Vault, LOCAL_DEV_KEY};
use shared::wechat::client::{WeChatClient, WeChatConfig};
use wechat_sim::{Sim, SimConfig, UnionIdMode};

/// The demo tenant: a platform mini program, the pivot official account, two merchants with
/// a mini program and an official account each, a platform app and website, one site.
pub const DEMO_REGISTRY: &str = include_str!("../../../config/demo-apps.json");

#[derive(Clone, Debug)]
pub struct Options {
    pub listen: SocketAddr,
    /// Registry JSON; the demo tenant when `None`.
    pub registry_json: Option<String>,
    /// `(endpoint, table)` of a DynamoDB server; the embedded store when `None`.
    pub dynamodb: Option<(String, String)>,
    pub unionid_mode: UnionIdMode,
    pub wechat_timeout: Duration,
    pub stash_ttl_secs: i64,
    /// The key that signs login links; a random one when `None`.
    pub link_key: Option<String>,
    /// The simulator pushes a component_verify_ticket at start and every 10 simulated minutes,
    /// as WeChat does (tests of a missing ticket turn it off).
    pub ticket_timer: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            registry_json: None,
            dynamodb: None,
            unionid_mode: UnionIdMode::Conditional,
            wechat_timeout: Duration::from_millis(2500),
            stash_ttl_secs: 600,
            link_key: None,
            ticket_timer: true,
        }
    }
}

pub struct Devstack {
    pub addr: SocketAddr,
    /// `http://addr`: the bridge's PUBLIC_BASE and the simulator's origin.
    pub base: String,
    pub bridge: Arc<Bridge>,
    pub sim: Arc<Sim>,
    /// Every store request the bridge made (the figures behind "requests per login").
    pub store_counts: Arc<CountingStore>,
    pub server: tokio::task::JoinHandle<()>,
    /// The registry document it was seeded with.
    pub seed: String,
}

/// Every function's routes: the same split as the API Gateway routes in template.yaml.
pub fn functions() -> Vec<Routes> {
    vec![
        mp_login::routes(),
        auth_start::routes(),
        auth_callback::routes(),
        translate::routes(),
        identity_api::routes(),
        qr_scene::routes(),
        wechat_push::routes(),
        site_bind::routes(),
        component::routes(),
    ]
}

/// What a merchant route behind the translate authorizer sees (template.yaml's example
/// route): `GET /merchant-api/{merchant}/whoami` with the platform mini program's bridge
/// token answers the authorizer's context, or 403 as API Gateway would.
async fn merchant_api(
    axum::extract::State(b): axum::extract::State<Arc<Bridge>>,
    axum::extract::Path(merchant): axum::extract::Path<String>,
    headers: http::HeaderMap,
) -> axum::response::Response {
    let headers =
        headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect();
    let event =
        translate::AuthorizerEvent { headers, path_parameters: [("merchant".to_owned(), merchant.clone())].into() };
    let answer = translate::authorize(b, event).await;
    if !answer.is_authorized {
        let body = serde_json::json!({"message": "Forbidden"});
        return (http::StatusCode::FORBIDDEN, [(http::header::CONTENT_TYPE, "application/json")], body.to_string())
            .into_response();
    }
    let (parts, body): (_, Bytes) =
        shared::http::json(200, &serde_json::json!({"merchant": merchant, "authorizer": answer.context})).into_parts();
    http::Response::from_parts(parts, axum::body::Body::from(body))
}

/// One RSA key per process (generating one takes a moment): every devstack in it signs with
/// it, under its own issuer.
fn devstack_tokens(issuer: &str) -> Result<Tokens, String> {
    static PEM: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let pem = PEM.get_or_init(|| shared::tokens::generate_pem().map_err(|e| e.to_string())).clone()?;
    let spec = shared::tokens::KeySpec { kid: "devstack".into(), pem };
    Tokens::from_specs(&[spec], issuer, shared::settings::DEFAULT_TOKEN_TTL_SECS).map_err(|e| e.to_string())
}

pub async fn start(opts: Options) -> Result<Devstack, String> {
    let listener =
        tokio::net::TcpListener::bind(opts.listen).await.map_err(|e| format!("bind {}: {e}", opts.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");
    let registry_json = opts.registry_json.clone().unwrap_or_else(|| DEMO_REGISTRY.to_owned());

    let sim_registry = wechat_sim::Registry::from_json_str(&registry_json).map_err(|e| format!("registry: {e}"))?;
    let sim =
        Sim::new(SimConfig { registry: sim_registry, unionid_mode: opts.unionid_mode, push_base: Some(base.clone()) });

    let store: Arc<dyn Store> = match &opts.dynamodb {
        Some((endpoint, table)) => {
            let s = DynamoStore::local(endpoint, table.clone()).await;
            s.ensure_table().await.map_err(|e| format!("dynamodb table {table}: {e}"))?;
            Arc::new(s)
        }
        None => Arc::new(MemoryStore::new()),
    };
    let store_counts = Arc::new(CountingStore::new(store));
    let wechat = WeChatClient::new(WeChatConfig {
        api_base: base.clone(),
        open_base: base.clone(),
        timeout: opts.wechat_timeout,
        attempts: 3,
        backoff: Duration::from_millis(50),
    })
    .map_err(|e| e.to_string())?;
    let seed = Registry::from_json(&registry_json).map_err(|e| e.to_string())?;
    let seed_component = seed.component.clone();
    let clock_sim = sim.clone();
    let bridge = Bridge::builder()
        .store(store_counts.clone())
        .wechat(Arc::new(wechat))
        // One world clock: moving the simulator's clock moves the bridge's too.
        .clock(Arc::new(move || clock_sim.now_millis()))
        .tokens(devstack_tokens(&base)?)
        // Local mode's development keys, so a table that outlives this process (DynamoDB
        // Local with -dbPath) still opens, and pairwise ids stay the same across restarts.
        .vault(Some(Vault::new(Arc::new(LocalKey::new("local", LOCAL_DEV_KEY)))))
        .seal_key(Some(shared::ids::Secret::new(hex::encode(LOCAL_DEV_KEY))))
        .urls(Urls {
            public_base: base.clone(),
            open_base: base.clone(),
            mp_base: base.clone(),
            component_appid: seed_component.as_ref().map(|c| c.appid.clone()),
        })
        .stash_ttl_secs(opts.stash_ttl_secs)
        .component(seed_component.clone())
        .link_key(Some(shared::ids::Secret::new(
            opts.link_key.clone().unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>())),
        )))
        .build()
        .map_err(|e| e.to_string())?;
    // The registry lives in the store, as in AWS: the seed is imported at start, and the admin
    // API changes it while devstack runs (seen at once: a change clears this process's cache).
    bridge.registrar().map_err(|e| e.to_string())?.import(&seed).await.map_err(|e| e.to_string())?;
    store_counts.take();
    let bridge = Arc::new(bridge);

    let pages = axum::Router::new()
        .route("/", axum::routing::get(demo_page))
        .route("/demo", axum::routing::get(demo_page))
        .route("/openapi.yaml", axum::routing::get(openapi))
        .route("/site/login", axum::routing::get(site_login))
        .route("/merchant-api/{merchant}/whoami", axum::routing::get(merchant_api))
        .with_state(bridge.clone());
    let routers = functions().into_iter().map(Routes::into_router);
    let app = sim.router().merge(pages).merge(shared::routes::service(routers, bridge.clone()));
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "devstack server stopped");
        }
    });
    if opts.ticket_timer && seed_component.is_some() {
        sim.spawn_ticket_timer();
    }
    Ok(Devstack { addr, base, bridge, sim, store_counts, server, seed: registry_json })
}

/// The demo page (plain HTML + vanilla JS), served at `GET /` and `GET /demo`.
pub const DEMO_HTML: &str = include_str!("demo.html");

/// The OpenAPI description of the bridge's public routes, served at `GET /openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../../openapi.yaml");

async fn demo_page() -> axum::response::Response {
    ([(http::header::CONTENT_TYPE, "text/html; charset=utf-8")], DEMO_HTML).into_response()
}

/// The demo site's login page, where a checked login link lands with its `wxbridge_code`: a
/// real site logs its user in here and redeems the code with `POST /v1/site/bind`.
async fn site_login() -> axum::response::Response {
    let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo site login</title></head>\
        <body><main><h1 data-result=\"site_login\">Demo site</h1><p>The bridge checked the WeChat user's browser; \
        the site now logs its user in and redeems <code>wxbridge_code</code> with <code>POST /v1/site/bind</code>.</p></main></body></html>";
    ([(http::header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

async fn openapi() -> axum::response::Response {
    ([(http::header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML).into_response()
}

/// What devstack prints on start: what it serves and how to try it.
pub fn banner(d: &Devstack, store: &str) -> String {
    let Ok(reg) = Registry::from_json(&d.seed) else { return format!("wxbridge devstack on {}", d.base) };
    let mp = reg.apps().find(|a| a.role == Role::PlatformMp).map(|a| a.appid.to_string()).unwrap_or_default();
    let b = &d.base;
    format!(
        "wxbridge devstack on {b} (store: {store})\n\
         bridge:    POST /v1/mp/login · /v1/mp/userinfo · /v1/open/login · /v1/auth/tickets · GET /v1/me\n\
         \u{20}          GET /v1/auth/start · /v1/auth/callback · /v1/translate · /v1/persons/{{id}} · /v1/identities/{{appid}}/{{openid}}\n\
         \u{20}          POST /v1/qr/scenes · GET /v1/qr/scenes/{{scene}} · GET,POST /v1/wechat/push/{{appid}} · POST /v1/site/bind\n\
         \u{20}          GET /merchant-api/{{merchant}}/whoami (the translate authorizer in front of a merchant route)\n\
         \u{20}          POST /v1/component/events · GET /v1/component/onboard?merchant=m4 (admin) · GET /v1/component/authorized\n\
         demo:      {b}/ (click a person through the flows in a browser)\n\
         simulator: WeChat's own paths (/sns/…, /cgi-bin/…, /connect/…) and /sim/apps · /sim/users/{{user}}/… · /sim/faults · /sim/calls · /sim/clock\n\
         \n\
         try it (the demo registry, with its demo keys: curl -s {b}/sim/apps):\n\
         CODE=$(curl -s -X POST {b}/sim/users/alice/login -d '{{\"appid\":\"{mp}\"}}' | sed 's/.*\"code\":\"\\([^\"]*\\)\".*/\\1/')\n\
         curl -s -X POST {b}/v1/mp/login -d \"{{\\\"appid\\\":\\\"{mp}\\\",\\\"code\\\":\\\"$CODE\\\"}}\"\n\
         curl -s '{b}/sim/users/alice/identity?appid={mp}'\n"
    )
}
