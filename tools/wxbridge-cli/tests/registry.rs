//! `wxbridge register` and `unregister` on a temp copy of config/demo-apps.json (no DynamoDB):
//! the result loads with the shared crate's `Registry::from_json`, keeps what it does not
//! touch, and no secret ever reaches stdout or stderr.

use serde_json::Value;
use shared::registry::Registry;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/demo-apps.json");
const PIVOT_OA: &str = "wx1a2b3c4d5e6f7002";
const M1_OA: &str = "wx2b3c4d5e6f708102";
const M2_OA: &str = "wx3c4d5e6f7a809202";
const M3_OA: &str = "wx4d5e6f7a8b9c0301";

const M3_SECRET: &str = "3f1c0d9e8b7a65544332211000ffeedd";
const M3_TOKEN: &str = "m3Token0a1b2c3d4e5f";
const M3_AES_KEY: &str = "Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo";
const SECRET_VARS: [&str; 3] = ["WXBRIDGE_APP_SECRET", "WXBRIDGE_APP_TOKEN", "WXBRIDGE_APP_AES_KEY"];

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(&self, stdout: &str) {
        assert_eq!((self.code, self.stdout.as_str(), self.stderr.as_str()), (0, stdout, ""), "{self:?}");
    }

    #[track_caller]
    fn expect_error(&self, code: i32, text: &str) {
        assert_eq!(self.code, code, "{self:?}");
        assert!(self.stderr.contains(text), "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
    }
}

/// A copy of the demo registry in a folder of its own, removed on drop.
struct TempRegistry {
    dir: PathBuf,
    path: PathBuf,
}

impl TempRegistry {
    fn new() -> TempRegistry {
        let dir = std::env::temp_dir().join(format!("wxb-cli-register-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("apps.json");
        std::fs::copy(DEMO, &path).unwrap();
        TempRegistry { dir, path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text()).unwrap()
    }

    fn app(&self, appid: &str) -> Option<Value> {
        self.json()["apps"].as_array().unwrap().iter().find(|a| a["appid"] == appid).cloned()
    }

    fn appids(&self) -> Vec<String> {
        self.json()["apps"].as_array().unwrap().iter().map(|a| a["appid"].as_str().unwrap().to_owned()).collect()
    }

    /// Only the registry: no temp file was left behind.
    #[track_caller]
    fn assert_alone(&self) {
        let names: Vec<String> =
            std::fs::read_dir(&self.dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert_eq!(names, ["apps.json"]);
    }
}

impl Drop for TempRegistry {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every secret, token and key of the demo registry, and the ones these tests register.
fn all_secrets() -> Vec<String> {
    let demo: Value = serde_json::from_str(&std::fs::read_to_string(DEMO).unwrap()).unwrap();
    let mut out: Vec<String> = [M3_SECRET, M3_TOKEN, M3_AES_KEY, "n3wSecretFromStdin0000"].map(String::from).into();
    for app in demo["apps"].as_array().unwrap() {
        for k in ["secret", "token", "encoding_aes_key"] {
            out.extend(app[k].as_str().map(String::from));
        }
    }
    out
}

/// Runs the binary with `env` as the only WXBRIDGE_APP_* variables, and `stdin` (or nothing) on
/// stdin; asserts that no secret is on its stdout or stderr.
fn wxbridge(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxbridge"));
    cmd.args(args).env_remove("WXBRIDGE_TABLE").env("RUST_LOG", "warn");
    for v in SECRET_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run wxbridge");
    if let Some(input) = stdin {
        // The CLI may refuse before it reads stdin; a closed pipe is then no failure of ours.
        match child.stdin.take().unwrap().write_all(input.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.unwrap(),
        }
    }
    let out = child.wait_with_output().unwrap();
    let out = Out {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for s in all_secrets() {
        assert!(!out.stdout.contains(&s) && !out.stderr.contains(&s), "a secret was printed: {out:?}");
    }
    out
}

fn m3_env() -> [(&'static str, &'static str); 3] {
    [("WXBRIDGE_APP_SECRET", M3_SECRET), ("WXBRIDGE_APP_TOKEN", M3_TOKEN), ("WXBRIDGE_APP_AES_KEY", M3_AES_KEY)]
}

#[track_caller]
fn assert_loads(path: &Path) -> Registry {
    Registry::from_json(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn register_a_merchant_official_account_then_update_it() {
    let reg = TempRegistry::new();
    let before = reg.json();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&reg.path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let add = [
        "register",
        "--registry",
        reg.arg(),
        "--appid",
        M3_OA,
        "--kind",
        "official_account",
        "--owner",
        "m3",
        "--role",
        "merchant_oa",
        "--name",
        "Merchant 3 official account",
        "--open-platform",
        "op_m3",
        "--safe-mode",
        "--web-auth-domain",
        "id.example.com",
        "--web-auth-domain",
        "localhost",
    ];
    wxbridge(&add, &m3_env(), None).ok(&format!("added {M3_OA} (official_account, owner m3)\n"));

    // The file: loads with the shared parser, the new app last with its secrets, everything
    // else as it was and in its order, pretty with a trailing newline.
    let loaded = assert_loads(&reg.path);
    assert_eq!(loaded.pivot().unwrap().appid.as_str(), PIVOT_OA);
    let app = loaded.app(&shared::ids::AppId::parse(M3_OA).unwrap()).expect("registered");
    assert_eq!((app.owner.to_string().as_str(), app.role.as_str(), app.safe_mode), ("m3", "merchant_oa", true));
    assert_eq!(app.secret.expose(), M3_SECRET);
    assert_eq!(app.token.as_ref().unwrap().expose(), M3_TOKEN);
    assert_eq!(app.encoding_aes_key.as_ref().unwrap().expose(), M3_AES_KEY);
    let after = reg.json();
    let mut appids: Vec<String> =
        before["apps"].as_array().unwrap().iter().map(|a| a["appid"].as_str().unwrap().to_owned()).collect();
    appids.push(M3_OA.into());
    assert_eq!(reg.appids(), appids);
    assert_eq!(after["apps"].as_array().unwrap()[..appids.len() - 1], before["apps"].as_array().unwrap()[..]);
    for key in ["_comment", "site", "menu_login_key", "credentials", "return_url_allow"] {
        assert_eq!(after[key], before[key], "{key}");
    }
    let text = reg.text();
    assert!(text.starts_with("{\n  \"_comment\": ") && text.ends_with("}\n") && !text.ends_with("\n\n"), "{text}");
    let top_keys: Vec<usize> =
        ["\"_comment\"", "\"apps\"", "\"site\"", "\"credentials\""].iter().map(|k| text.find(k).unwrap()).collect();
    assert!(top_keys.windows(2).all(|w| w[0] < w[1]), "top-level order kept: {text}");
    assert_eq!(reg.app(M3_OA).unwrap()["web_auth_domains"], serde_json::json!(["id.example.com", "localhost"]));
    reg.assert_alone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&reg.path).unwrap().permissions().mode() & 0o777, 0o600, "mode kept");
    }

    // `apps` lists it, without secrets.
    let apps = wxbridge(&["--registry", reg.arg(), "apps"], &[], None);
    assert_eq!(apps.code, 0, "{apps:?}");
    let row = apps.stdout.lines().find(|l| l.starts_with(M3_OA)).expect("listed");
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), [M3_OA, "official_account", "merchant_oa", "m3", "op_m3"]);

    // An update with no secrets keeps them, and the fields not given.
    let update =
        ["register", "--registry", reg.arg(), "--appid", M3_OA, "--open-platform", "op_platform", "--no-safe-mode"];
    wxbridge(&update, &[], None).ok(&format!("updated {M3_OA}: open_platform, safe_mode\n"));
    let app = reg.app(M3_OA).unwrap();
    assert_eq!((app["secret"].as_str(), app["token"].as_str()), (Some(M3_SECRET), Some(M3_TOKEN)));
    assert_eq!((app["encoding_aes_key"].as_str(), app["owner"].as_str()), (Some(M3_AES_KEY), Some("m3")));
    assert_eq!((app["open_platform"].as_str(), app["safe_mode"].as_bool()), (Some("op_platform"), Some(false)));
    assert_eq!(app["name"], "Merchant 3 official account");
    assert_loads(&reg.path);

    // The whole command again changes what differs; then nothing, and the file is left as is.
    wxbridge(&add, &[], None).ok(&format!("updated {M3_OA}: open_platform, safe_mode\n"));
    let same = reg.text();
    wxbridge(&add, &m3_env(), None).ok(&format!("unchanged {M3_OA}: it already is as given\n"));
    assert_eq!(reg.text(), same);

    // A new secret from stdin; the token and key stay.
    let stdin_update = ["register", "--registry", reg.arg(), "--appid", M3_OA, "--secrets-stdin"];
    wxbridge(&stdin_update, &[], Some(r#"{"secret": "n3wSecretFromStdin0000"}"#))
        .ok(&format!("updated {M3_OA}: secret\n"));
    let app = reg.app(M3_OA).unwrap();
    assert_eq!((app["secret"].as_str(), app["token"].as_str()), (Some("n3wSecretFromStdin0000"), Some(M3_TOKEN)));
    assert_loads(&reg.path);
    reg.assert_alone();
}

#[test]
fn a_new_app_from_stdin_secrets() {
    let reg = TempRegistry::new();
    let args = [
        "register",
        "--registry",
        reg.arg(),
        "--appid",
        "wx4d5e6f7a8b9c0302",
        "--kind",
        "mini_program",
        "--owner",
        "m3",
        "--secrets-stdin",
    ];
    wxbridge(&args, &[], Some(&format!(r#"{{"secret":"{M3_SECRET}"}}"#)))
        .ok("added wx4d5e6f7a8b9c0302 (mini_program, owner m3)\n");
    assert_eq!(reg.app("wx4d5e6f7a8b9c0302").unwrap()["secret"], M3_SECRET);
    // Not both ways at once; not a malformed object (and the error quotes no value of it).
    wxbridge(&args, &[("WXBRIDGE_APP_SECRET", M3_SECRET)], Some("{}")).expect_error(2, "--secrets-stdin");
    wxbridge(&args, &[], Some(&format!(r#"{{"secret": "{M3_SECRET}", "aes": 1}}"#)))
        .expect_error(1, "error: invalid_request: --secrets-stdin");
    wxbridge(&args, &[], Some("")).expect_error(1, "stdin is empty");
    assert_loads(&reg.path);
}

#[test]
fn refusals_leave_the_file_as_it_was() {
    let reg = TempRegistry::new();
    let original = reg.text();
    let r = reg.arg();
    fn cmd<'a>(r: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        [&["register", "--registry", r, "--appid", M3_OA][..], extra].concat()
    }
    let new_oa = |extra: &[&'static str]| cmd(r, extra);
    let oa = ["--kind", "official_account", "--owner", "m3"];

    // A new app needs its secret (exit 1), and an official account its token.
    wxbridge(&new_oa(&oa), &[], None).expect_error(1, "error: invalid_request: ");
    wxbridge(&new_oa(&oa), &[], None).expect_error(1, "WXBRIDGE_APP_SECRET");
    wxbridge(&new_oa(&oa), &[("WXBRIDGE_APP_SECRET", M3_SECRET)], None).expect_error(1, "WXBRIDGE_APP_TOKEN");
    wxbridge(&new_oa(&["--kind", "website"]), &m3_env()[..1], None).expect_error(1, "--owner");
    // Bad kind, bad appid: usage errors (exit 2).
    wxbridge(&new_oa(&["--kind", "channel", "--owner", "m3"]), &m3_env(), None)
        .expect_error(2, "--kind must be mini_program, official_account, mobile_app or website");
    wxbridge(&["register", "--registry", r, "--appid", "wx/../x", "--kind", "website", "--owner", "m3"], &[], None)
        .expect_error(2, "invalid_request: appid is malformed");
    // A short EncodingAESKey (exit 1); the message names it, never shows it.
    let short = [("WXBRIDGE_APP_SECRET", M3_SECRET), ("WXBRIDGE_APP_TOKEN", M3_TOKEN), ("WXBRIDGE_APP_AES_KEY", "abc")];
    wxbridge(&new_oa(&oa), &short, None).expect_error(1, "encoding_aes_key must have exactly 43 characters, not 3");
    // A secret with a pasted newline.
    wxbridge(&new_oa(&oa), &[("WXBRIDGE_APP_SECRET", "abc\n"), ("WXBRIDGE_APP_TOKEN", M3_TOKEN)], None)
        .expect_error(1, "without spaces, newlines");
    // A token for a mini program.
    wxbridge(&new_oa(&["--kind", "mini_program", "--owner", "m3"]), &m3_env(), None)
        .expect_error(1, "official accounts only");
    // A second pivot, new or promoted.
    let pivot = new_oa(&["--kind", "official_account", "--owner", "m3", "--role", "pivot_oa"]);
    wxbridge(&pivot, &m3_env(), None).expect_error(1, &format!("{PIVOT_OA} is the pivot_oa already"));
    wxbridge(&["register", "--registry", r, "--appid", M2_OA, "--role", "pivot_oa"], &[], None)
        .expect_error(1, &format!("{PIVOT_OA} is the pivot_oa already"));
    // Demoting the pivot needs --force.
    wxbridge(&["register", "--registry", r, "--appid", PIVOT_OA, "--role", "merchant_oa"], &[], None)
        .expect_error(1, "--force");
    // No --registry: the demo file is never written by default.
    wxbridge(&["register", "--appid", M3_OA, "--kind", "website", "--owner", "m3"], &m3_env()[..1], None)
        .expect_error(2, "pass --registry FILE");
    // A registry that does not load is not edited.
    let broken = reg.dir.join("broken.json");
    std::fs::write(&broken, r#"{"apps": [{"appid": "wx1", "kind": "website"}]}"#).unwrap();
    wxbridge(&["unregister", "--registry", broken.to_str().unwrap(), "wx1"], &[], None)
        .expect_error(1, "error: invalid_request: the registry does not load");
    std::fs::remove_file(&broken).unwrap();

    assert_eq!(reg.text(), original, "nothing was written");
    reg.assert_alone();
}

#[test]
fn unregister_an_app_and_the_pivot_only_with_force() {
    let reg = TempRegistry::new();
    let mut appids = reg.appids();
    wxbridge(&["unregister", "--registry", reg.arg(), M2_OA], &[], None)
        .ok(&format!("removed {M2_OA} (official_account, owner m2)\n"));
    appids.retain(|a| a != M2_OA);
    assert_eq!(reg.appids(), appids, "the others, in their order");
    assert_loads(&reg.path);
    let apps = wxbridge(&["--registry", reg.arg(), "apps"], &[], None);
    assert!(apps.code == 0 && !apps.stdout.contains(M2_OA), "{apps:?}");
    wxbridge(&["unregister", "--registry", reg.arg(), M2_OA], &[], None).expect_error(1, "error: not_found:");

    // The pivot: refused, then with --force.
    let kept = reg.text();
    wxbridge(&["unregister", "--registry", reg.arg(), PIVOT_OA], &[], None).expect_error(1, "pass --force");
    assert_eq!(reg.text(), kept);
    // A merchant site's only account: refused, as the site would bind through the pivot.
    wxbridge(&["unregister", "--registry", reg.arg(), M1_OA], &[], None)
        .expect_error(1, "the only official account of site m1-shop");
    assert_eq!(reg.text(), kept);
    // The demo site names the pivot: it is taken off the site's list too, and the output says so.
    wxbridge(&["unregister", "--registry", reg.arg(), PIVOT_OA, "--force"], &[], None).ok(&format!(
        "removed {PIVOT_OA} (official_account, owner platform)\n\
         site demo-site: {PIVOT_OA} taken off its official_accounts; none left, so it binds through the next \
         pivot_oa registered\n"
    ));
    let loaded = assert_loads(&reg.path);
    assert!(loaded.pivot().is_none());
    assert!(loaded.sites.iter().all(|s| !s.official_accounts.iter().any(|a| a.as_str() == PIVOT_OA)));
    assert_eq!(reg.json()["site"]["official_accounts"], serde_json::json!([]));
    assert_eq!(reg.json()["sites"][0]["official_accounts"], serde_json::json!([M1_OA]), "other sites untouched");
    reg.assert_alone();

    // And a new pivot can then be registered.
    let args = ["register", "--registry", reg.arg(), "--appid", M3_OA, "--kind", "official_account"];
    wxbridge(&[&args[..], &["--owner", "platform", "--role", "pivot_oa"]].concat(), &m3_env(), None)
        .ok(&format!("added {M3_OA} (official_account, owner platform)\n"));
    assert_eq!(assert_loads(&reg.path).pivot().unwrap().appid.as_str(), M3_OA);
}
