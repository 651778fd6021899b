//! The `wxbridge` binary against DynamoDB Local: a person seeded through devstack's own login
//! and web-view flows on the same table, then looked up, exported, unlinked and erased.

use serde_json::{json, Value};
use std::process::{Command, Stdio};

const PLATFORM_MP: &str = "wx1a2b3c4d5e6f7001";
const PIVOT_OA: &str = "wx1a2b3c4d5e6f7002";
const REGISTRY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/demo-apps.json");

/// The DynamoDB Local endpoint started by `scripts/test`. Missing is a failure, never a skip.
fn endpoint() -> String {
    std::env::var("WXBRIDGE_TEST_DYNAMODB").unwrap_or_else(|_| {
        panic!("WXBRIDGE_TEST_DYNAMODB is not set: run the suite with scripts/test, which starts DynamoDB Local")
    })
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
    #[track_caller]
    fn expect_error(&self, code: i32, text: &str) {
        assert_eq!(self.code, code, "{self:?}");
        assert!(self.stderr.contains(text), "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
    }
}

/// Runs the binary with no terminal on stdin, as CI does, and without the caller's table.
fn wxbridge_with(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxbridge"));
    cmd.args(args).stdin(Stdio::null()).env_remove("WXBRIDGE_TABLE").env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run wxbridge");
    Out {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `wxbridge --endpoint E --table T --registry demo ARGS…`
fn on(table: &str, args: &[&str]) -> Out {
    let e = endpoint();
    let mut all = vec!["--endpoint", &e, "--table", table, "--registry", REGISTRY];
    all.extend_from_slice(args);
    wxbridge_with(&all, &[])
}

fn appids(person: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        person["identities"].as_array().unwrap().iter().map(|i| i["appid"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

async fn post(http: &reqwest::Client, url: String, body: Value, bearer: Option<&str>) -> Value {
    let mut r = http.post(&url).json(&body);
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// A fresh table made by `wxbridge create-table` (twice: it is idempotent), and devstack on it.
struct Stack {
    table: String,
    base: String,
    http: reqwest::Client,
    devstack: devstack::Devstack,
}

impl Stack {
    async fn start(unionid_mode: wechat_sim::UnionIdMode) -> Stack {
        let table = format!("wxb-cli-{:016x}", rand::random::<u64>());
        for _ in 0..2 {
            let out = on(&table, &["create-table"]);
            assert_eq!(out.code, 0, "{out:?}");
            assert!(out.stdout.contains(&table), "{out:?}");
        }
        let devstack = devstack::start(devstack::Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            dynamodb: Some((endpoint(), table.clone())),
            unionid_mode,
            ..Default::default()
        })
        .await
        .expect("devstack starts on DynamoDB Local");
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap();
        Stack { table, base: devstack.base.clone(), http, devstack }
    }

    /// The user's mini-program login: `/sim/users/{user}/login` for a code, then `/v1/mp/login`.
    async fn login(&self, user: &str, appid: &str) -> Value {
        let (base, http) = (&self.base, &self.http);
        let code = post(http, format!("{base}/sim/users/{user}/login"), json!({"appid": appid}), None).await;
        post(http, format!("{base}/v1/mp/login"), json!({"appid": appid, "code": code["code"]}), None).await
    }

    /// Every item of the table, as `PK SK {attributes}` lines.
    async fn scan(&self) -> Vec<String> {
        scan_table(&endpoint(), &self.table).await
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.devstack.server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_export_unlink_erase_on_dynamodb_local() {
    let endpoint = endpoint();
    let stack = Stack::start(wechat_sim::UnionIdMode::Conditional).await;
    let table = stack.table.clone();

    // A person in two apps: a mini-program login, then the web-view through the pivot OA.
    let login = stack.login("u1", PLATFORM_MP).await;
    let person = login["person_id"].as_str().unwrap().to_owned();
    let mp_openid = login["openid"].as_str().unwrap().to_owned();
    let ticket = post(&stack.http, format!("{}/v1/auth/tickets", stack.base), json!({}), login["token"].as_str()).await;
    // The user's WeChat browser keeps the pass's cookie; the mini program then confirms.
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let page = browser.get(ticket["url"].as_str().unwrap()).header("X-WxSim-User", "u1").send().await.unwrap();
    let page = page.text().await.unwrap();
    let meta = "name=\"wxbridge-confirm\" content=\"";
    let at = page.find(meta).expect("a confirm code") + meta.len();
    let code = &page[at..at + 32];
    let confirmed =
        post(&stack.http, format!("{}/v1/auth/confirm", stack.base), json!({"code": code}), login["token"].as_str())
            .await;
    assert_eq!(confirmed["pivot_linked"], true, "{confirmed}");

    // lookup: the person behind the mini-program identity, with both identities.
    let found = on(&table, &["lookup", PLATFORM_MP, &mp_openid]).json();
    assert_eq!(found["person_id"], person.as_str());
    assert_eq!(appids(&found), [PLATFORM_MP, PIVOT_OA]);
    let pivot_openid = found["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["appid"] == PIVOT_OA)
        .and_then(|i| i["openid"].as_str())
        .unwrap()
        .to_owned();

    // export: the links, stamped.
    let export = on(&table, &["export", &person]).json();
    assert_eq!(export["person_id"], person.as_str());
    let stamp = export["exported_at"].as_str().expect("exported_at");
    assert!(stamp.ends_with('Z') && stamp.len() == "2024-01-01T00:00:00.000Z".len(), "{stamp}");
    let mp = export["identities"].as_array().unwrap().iter().find(|i| i["appid"] == PLATFORM_MP).unwrap().clone();
    assert_eq!(mp["openid"], mp_openid.as_str());
    assert_eq!((mp["kind"].as_str(), mp["owner"].as_str()), (Some("mini_program"), Some("platform")));
    assert!(mp["linked_at"].is_string() && mp["via"].is_string(), "{mp}");

    // unlink the mini program: the person keeps the pivot identity.
    let out = on(&table, &["unlink", &person, PLATFORM_MP, &mp_openid]);
    assert_eq!(out.code, 0, "{out:?}");
    on(&table, &["lookup", PLATFORM_MP, &mp_openid]).expect_error(1, "error: not_found:");
    on(&table, &["unlink", &person, PLATFORM_MP, &mp_openid]).expect_error(1, "error: not_found:");

    // Without --endpoint: the SDK's own chain, pointed by AWS_ENDPOINT_URL_DYNAMODB; the table
    // from WXBRIDGE_TABLE.
    let sdk_env = [
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("WXBRIDGE_TABLE", table.as_str()),
    ];
    let left = wxbridge_with(&["--registry", REGISTRY, "person", &person], &sdk_env).json();
    assert_eq!(appids(&left), [PIVOT_OA]);

    // erase: refused without a terminal unless --yes, and nothing is touched.
    on(&table, &["erase", &person]).expect_error(2, "--yes");
    assert_eq!(on(&table, &["person", &person]).code, 0);
    let out = on(&table, &["erase", &person, "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&person), "{out:?}");

    // Gone, by both ways in.
    on(&table, &["lookup", PIVOT_OA, &pivot_openid]).expect_error(1, "error: not_found:");
    on(&table, &["person", &person]).expect_error(1, "error: not_found:");
    on(&table, &["erase", &person, "--yes"]).expect_error(1, "error: not_found:");

    // And in the table: no association item of the person or their identities is left.
    assert_eq!(association_items(&stack.scan().await, &[&person, &mp_openid, &pivot_openid]), Vec::<String>::new());

    // A login after the erase is a new person.
    let again = stack.login("u1", PLATFORM_MP).await;
    assert_ne!(again["person_id"], person.as_str());
    assert_eq!(again["new_person"], true);
}

/// The association items (person, identity, unionid, conflict, stash) that mention any of `needles`.
fn association_items(scan: &[String], needles: &[&str]) -> Vec<String> {
    scan.iter()
        .filter(|i| ["P#", "ID#", "U#", "CONFLICT#", "STASH#"].iter().any(|p| i.starts_with(p)))
        .filter(|i| needles.iter().any(|n| i.contains(n)))
        .cloned()
        .collect()
}

/// Erase finds a person's unionid items through the registry (each app's open platform), so it
/// refuses a registry that does not list one of the person's apps rather than leave one behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_removes_the_unionid_and_refuses_a_registry_that_misses_an_app() {
    let stack = Stack::start(wechat_sim::UnionIdMode::Always).await;
    let login = stack.login("u2", PLATFORM_MP).await;
    let person = login["person_id"].as_str().unwrap().to_owned();
    let unionid = login["unionid"].as_str().expect("a unionid in this mode").to_owned();
    let unionid_items = |scan: &[String]| scan.iter().filter(|i| i.starts_with("U#")).count();
    assert_eq!(unionid_items(&stack.scan().await), 1);

    // The demo registry without the platform mini program.
    let mut reg: Value = serde_json::from_str(&std::fs::read_to_string(REGISTRY).unwrap()).unwrap();
    reg["apps"].as_array_mut().unwrap().retain(|a| a["appid"] != PLATFORM_MP);
    let partial = std::env::temp_dir().join(format!("wxb-cli-registry-{:016x}.json", rand::random::<u64>()));
    std::fs::write(&partial, reg.to_string()).unwrap();
    let e = endpoint();
    let args = ["--endpoint", &e, "--table", &stack.table, "--registry", partial.to_str().unwrap()];
    let refused = wxbridge_with(&[&args[..], &["erase", &person, "--yes"]].concat(), &[]);
    std::fs::remove_file(&partial).unwrap();
    refused.expect_error(1, "error: invalid_request:");
    assert!(refused.stderr.contains(PLATFORM_MP), "{refused:?}");
    assert_eq!(on(&stack.table, &["person", &person]).json()["person_id"], person.as_str(), "nothing erased");

    let out = on(&stack.table, &["erase", &person, "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    let scan = stack.scan().await;
    assert_eq!(unionid_items(&scan), 0, "{scan:#?}");
    assert_eq!(association_items(&scan, &[&person, &unionid]), Vec::<String>::new());
    let again = stack.login("u2", PLATFORM_MP).await;
    assert_eq!((again["new_person"].as_bool(), again["unionid"].as_str()), (Some(true), Some(unionid.as_str())));
}

async fn scan_table(endpoint: &str, table: &str) -> Vec<String> {
    let config = aws_config::from_env()
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "test"))
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client.scan().table_name(table).set_exclusive_start_key(start).send().await.expect("scan");
        for item in page.items() {
            let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            items.push(format!("{} {} {item:?}", s("PK"), s("SK")));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    items
}

#[test]
fn usage_errors_exit_2_and_apps_needs_no_table() {
    let apps = wxbridge_with(&["--registry", REGISTRY, "apps"], &[]);
    assert_eq!(apps.code, 0, "{apps:?}");
    assert!(apps.stdout.contains(PLATFORM_MP) && apps.stdout.contains("op_platform"), "{apps:?}");
    assert!(!apps.stdout.contains("secret") && !apps.stdout.contains("a382c32af48e4cf5ee604205b5c29595"));

    let person = "0190a5c8-7b3e-7c1a-9f00-0123456789ab";
    for (args, text) in [
        (vec![], "no command"),
        (vec!["frobnicate"], "unknown command"),
        (vec!["lookup", PLATFORM_MP], "operands"),
        (vec!["person", person], "WXBRIDGE_TABLE"),
        (vec!["--table", "t", "person", "nope"], "invalid_request"),
        (vec!["--table", "t", "unlink", person, PLATFORM_MP, "o", "--yes"], "erase only"),
    ] {
        wxbridge_with(&args, &[]).expect_error(2, text);
    }
    let help = wxbridge_with(&["--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("erase PERSON_ID [--yes]"));

    // A registry that cannot be read is an error of its own (exit 1).
    wxbridge_with(&["--registry", "/nonexistent/apps.json", "apps"], &[])
        .expect_error(1, "error: internal: cannot read registry");
}

#[test]
fn a_missing_table_is_an_error() {
    let table = format!("wxb-cli-missing-{:016x}", rand::random::<u64>());
    let out = on(&table, &["person", "0190a5c8-7b3e-7c1a-9f00-0123456789ab"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("error: internal:"), "{out:?}");
}
