//! `register` and `unregister`: edit the app registry file (the JSON document deployments keep
//! in SSM Parameter Store).
//!
//! The document is edited as a `serde_json::Value` that keeps its key order (this crate turns on
//! serde_json's `preserve_order`), so unknown fields, the order of the keys and the order of the
//! apps survive an edit. The result must load with
//! `shared::registry::Registry::from_json` before it replaces the file (temp file + rename).
//! Secrets come from the environment or stdin, never from the command line, and are never
//! printed: messages name the fields that changed, not their values.

use std::fmt;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};
use shared::ids::{AppId, OpenPlatformId, Secret};
use shared::registry::{AppKind, Registry};
use shared::wechat::push::PushCrypto;
use shared::Error;

use crate::Failure;

pub const PIVOT_ROLE: &str = "pivot_oa";
const OA: &str = "official_account";
const WEBSITE: &str = "website";

/// Where secrets come from when `--secrets-stdin` is not given.
pub const SECRET_ENV: [(&str, &str); 3] =
    [("secret", "WXBRIDGE_APP_SECRET"), ("token", "WXBRIDGE_APP_TOKEN"), ("encoding_aes_key", "WXBRIDGE_APP_AES_KEY")];

/// `wxbridge register …`, checked: every value given on the command line is well formed.
#[derive(Clone, Debug, PartialEq)]
pub struct Register {
    pub appid: AppId,
    pub kind: Option<AppKind>,
    pub owner: Option<String>,
    pub role: Option<String>,
    pub name: Option<String>,
    pub open_platform: Option<OpenPlatformId>,
    /// `--safe-mode` (true) or `--no-safe-mode` (false).
    pub safe_mode: Option<bool>,
    /// Replaces the app's list when not empty.
    pub web_auth_domains: Vec<String>,
    pub secrets_stdin: bool,
    /// Allows demoting the pivot (another role or kind).
    pub force: bool,
}

fn invalid(m: impl Into<String>) -> Failure {
    Failure::Wx(Error::InvalidRequest(m.into()))
}

fn internal(m: impl Into<String>) -> Failure {
    Failure::Wx(Error::Internal(m.into()))
}

/// The operator's view of an error of the shared crate (its internal details included).
fn reason(e: &Error) -> String {
    match e {
        Error::Internal(m) => m.clone(),
        other => other.detail(),
    }
}

// ------------------------------------------------------------------------------------------
// Command-line values

/// One of the four kinds an app of the registry can have (`site` is not registered as an app).
pub fn parse_kind(s: &str) -> Result<AppKind, String> {
    Ok(match s {
        "mini_program" => AppKind::MiniProgram,
        "official_account" => AppKind::OfficialAccount,
        "mobile_app" => AppKind::MobileApp,
        "website" => AppKind::Website,
        _ => return Err(format!("--kind must be mini_program, official_account, mobile_app or website, not {s:?}")),
    })
}

/// An owner or a role: a word, without spaces or control characters.
pub fn check_word(option: &str, s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 128 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{option} must be 1 to 128 characters without spaces, not {s:?}"));
    }
    Ok(s.to_owned())
}

pub fn check_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(format!("--name must be 1 to 256 characters without control characters, not {s:?}"));
    }
    Ok(s.to_owned())
}

/// A web-authorization domain is a bare host: no scheme, port, path or spaces (an IPv6 literal
/// in brackets), as WeChat and the simulator take it.
pub fn check_host(s: &str) -> Result<String, String> {
    let ipv6 = s.len() > 2 && s.starts_with('[') && s.ends_with(']');
    let ok = !s.is_empty()
        && s.len() <= 253
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "/?#@\\".contains(c))
        && (ipv6 || !s.contains(':'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("--web-auth-domain must be a bare host without scheme, port or path, not {s:?}"))
    }
}

// ------------------------------------------------------------------------------------------
// Secrets

/// An app's secrets as read from the environment or stdin. Debug prints none of them.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<String>| if v.is_some() { "***" } else { "-" };
        f.debug_struct("Secrets")
            .field("secret", &shown(&self.secret))
            .field("token", &shown(&self.token))
            .field("encoding_aes_key", &shown(&self.encoding_aes_key))
            .finish()
    }
}

impl Secrets {
    /// `WXBRIDGE_APP_SECRET`, `WXBRIDGE_APP_TOKEN`, `WXBRIDGE_APP_AES_KEY`; empty is unset.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Secrets {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        Secrets { secret: get(SECRET_ENV[0].1), token: get(SECRET_ENV[1].1), encoding_aes_key: get(SECRET_ENV[2].1) }
    }

    /// `{"secret": …, "token": …, "encoding_aes_key": …}`, every member optional. A parse error
    /// says where, never what (it could quote a secret).
    pub fn from_reader(input: impl Read) -> Result<Secrets, Failure> {
        let mut text = String::new();
        input
            .take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(|e| invalid(format!("cannot read the secrets on stdin: {}", e.kind())))?;
        if text.trim().is_empty() {
            return Err(invalid(
                "--secrets-stdin: stdin is empty; expected a JSON object with secret, token, encoding_aes_key",
            ));
        }
        serde_json::from_str(&text).map_err(|e| {
            invalid(format!(
                "--secrets-stdin: stdin is not a JSON object of strings with only secret, token and encoding_aes_key \
                 (line {} column {})",
                e.line(),
                e.column()
            ))
        })
    }

    fn any(&self) -> bool {
        self.secret.is_some() || self.token.is_some() || self.encoding_aes_key.is_some()
    }

    /// Well formed, whatever the app: no empty value, no spaces (a pasted newline), a 43-character
    /// base64 EncodingAESKey that decodes to an AES-256 key.
    fn check(&self, appid: &AppId) -> Result<(), Failure> {
        for (what, value) in [("secret", &self.secret), ("token", &self.token)] {
            if let Some(v) = value {
                if v.is_empty() || v.len() > 256 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(invalid(format!(
                        "the {what} must be 1 to 256 characters without spaces, newlines or control characters"
                    )));
                }
            }
        }
        if let Some(key) = &self.encoding_aes_key {
            let n = key.chars().count();
            if n != 43 {
                return Err(invalid(format!("encoding_aes_key must have exactly 43 characters, not {n}")));
            }
            PushCrypto::new(&Secret::new(key.clone()), appid.as_str())
                .map_err(|e| invalid(format!("encoding_aes_key: {}", reason(&e))))?;
        }
        Ok(())
    }
}

/// The secrets for `register`: stdin with `--secrets-stdin` (and then none in the environment,
/// so there is no doubt which one counts), else the environment.
pub fn read_secrets(from_stdin: bool) -> Result<Secrets, Failure> {
    let env = Secrets::from_env(|k| std::env::var(k).ok());
    if !from_stdin {
        return Ok(env);
    }
    if env.any() {
        let names: Vec<&str> = SECRET_ENV.iter().map(|(_, v)| *v).collect();
        return Err(Failure::Usage(format!(
            "--secrets-stdin reads the secrets from stdin only: unset {}",
            names.join(", ")
        )));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("secrets as JSON ({{\"secret\": …, \"token\": …, \"encoding_aes_key\": …}}), then Ctrl-D:");
    }
    Secrets::from_reader(stdin.lock())
}

// ------------------------------------------------------------------------------------------
// JSON objects

fn get_str<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    fields.get(key).and_then(Value::as_str)
}

/// Sets `key` in its place, or at the end when new; whether anything changed.
fn set(fields: &mut Map<String, Value>, key: &str, value: Value) -> bool {
    if fields.get(key) == Some(&value) {
        return false;
    }
    fields.insert(key.to_owned(), value);
    true
}

// ------------------------------------------------------------------------------------------
// The registry document

/// The registry file as ordered JSON: an object whose `apps` is an array of objects, and that
/// loads with `Registry::from_json`.
#[derive(Debug)]
pub struct Document {
    top: Map<String, Value>,
}

impl Document {
    pub fn parse(text: &str) -> Result<Document, Failure> {
        Registry::from_json(text).map_err(|e| invalid(format!("the registry does not load: {}", reason(&e))))?;
        let top = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(top)) => top,
            _ => return Err(invalid("the registry is not a JSON object")),
        };
        match top.get("apps") {
            Some(Value::Array(apps)) if apps.iter().all(Value::is_object) => Ok(Document { top }),
            _ => Err(invalid("the registry's apps are not a list of objects")),
        }
    }

    fn apps(&self) -> &[Value] {
        match self.top.get("apps") {
            Some(Value::Array(apps)) => apps,
            _ => unreachable!("checked by Document::parse"),
        }
    }

    fn apps_mut(&mut self) -> &mut Vec<Value> {
        match self.top.get_mut("apps") {
            Some(Value::Array(apps)) => apps,
            _ => unreachable!("checked by Document::parse"),
        }
    }

    /// The sites, in the document's order: `site` (one object), then each of `sites`.
    fn sites_mut(&mut self) -> Vec<&mut Map<String, Value>> {
        let mut out = Vec::new();
        let (mut one, mut many) = (None, None);
        for (key, value) in self.top.iter_mut() {
            match key.as_str() {
                "site" => one = value.as_object_mut(),
                "sites" => many = value.as_array_mut(),
                _ => {}
            }
        }
        out.extend(one);
        out.extend(many.into_iter().flatten().filter_map(Value::as_object_mut));
        out
    }

    fn position(&self, appid: &AppId) -> Option<usize> {
        self.apps().iter().position(|a| a.get("appid").and_then(Value::as_str) == Some(appid.as_str()))
    }

    /// Pretty JSON, two-space indent, a trailing newline; it loads with `Registry::from_json`.
    pub fn to_text(&self) -> Result<String, Failure> {
        let mut text = serde_json::to_string_pretty(&self.top)
            .map_err(|e| internal(format!("cannot write the registry as JSON: {e}")))?;
        text.push('\n');
        Registry::from_json(&text)
            .map_err(|e| invalid(format!("refused: the registry would not load: {}", reason(&e))))?;
        Ok(text)
    }
}

/// What an edit did: the message for the operator (no secret in it), and whether the file changes.
#[derive(Debug, PartialEq)]
pub struct Edit {
    pub message: String,
    pub changed: bool,
}

/// Adds the app, or updates the one with this appid (fields not given are kept).
pub fn register(doc: &mut Document, req: &Register, secrets: &Secrets) -> Result<Edit, Failure> {
    secrets.check(&req.appid)?;
    let appid = req.appid.as_str();
    let index = doc.position(&req.appid);
    let old: Option<Map<String, Value>> = index.map(|i| doc.apps()[i].as_object().cloned().unwrap_or_default());
    let old_kind = old.as_ref().and_then(|f| get_str(f, "kind")).map(str::to_owned);
    let kind = match (req.kind, &old_kind) {
        (Some(k), _) => k.as_str().to_owned(),
        (None, Some(k)) => k.clone(),
        (None, None) => return Err(invalid(format!("{appid} is a new app: pass --kind and --owner"))),
    };
    if old.is_none() && req.owner.is_none() {
        return Err(invalid(format!("{appid} is a new app: pass --owner (platform or the merchant's id)")));
    }
    let is_oa = kind == OA;

    // What the operator gives must fit the kind.
    if !is_oa && (secrets.token.is_some() || secrets.encoding_aes_key.is_some()) {
        return Err(invalid(format!(
            "a token and an encoding_aes_key are for official accounts only, and {appid} is a {kind}"
        )));
    }
    if !is_oa && req.safe_mode.is_some() {
        return Err(invalid(format!("safe mode is for official accounts only, and {appid} is a {kind}")));
    }
    let takes_domains = is_oa || kind == WEBSITE;
    if !takes_domains && !req.web_auth_domains.is_empty() {
        return Err(invalid(format!(
            "web-authorization domains are for official accounts and websites only, and {appid} is a {kind}"
        )));
    }

    let mut app = old.clone().unwrap_or_default();
    let mut changes: Vec<String> = Vec::new();
    let mut put = |app: &mut Map<String, Value>, key: &str, value: Value| {
        if set(app, key, value) {
            changes.push(key.to_owned());
        }
    };
    // For a new app these land in the demo registry's order.
    put(&mut app, "appid", appid.into());
    if let Some(name) = &req.name {
        put(&mut app, "name", name.as_str().into());
    }
    put(&mut app, "kind", kind.as_str().into());
    if let Some(role) = &req.role {
        put(&mut app, "role", role.as_str().into());
    }
    if let Some(owner) = &req.owner {
        put(&mut app, "owner", owner.as_str().into());
    }
    if let Some(op) = &req.open_platform {
        put(&mut app, "open_platform", op.as_str().into());
    }
    for (key, value) in
        [("secret", &secrets.secret), ("token", &secrets.token), ("encoding_aes_key", &secrets.encoding_aes_key)]
    {
        if let Some(v) = value {
            put(&mut app, key, v.as_str().into());
        }
    }
    match req.safe_mode {
        Some(on) => put(&mut app, "safe_mode", Value::Bool(on)),
        None if old.is_none() && is_oa => put(&mut app, "safe_mode", Value::Bool(false)),
        None => {}
    }
    if !req.web_auth_domains.is_empty() {
        put(&mut app, "web_auth_domains", req.web_auth_domains.clone().into());
    }
    // Another kind: the fields of the old kind that the new one has no use for go.
    if old_kind.as_deref().is_some_and(|k| k != kind) {
        let mut dropped = Vec::new();
        if !is_oa {
            dropped.extend(["token", "encoding_aes_key", "safe_mode"]);
        }
        if !is_oa && kind != WEBSITE {
            dropped.push("web_auth_domains");
        }
        for key in dropped {
            // Shifted out, not swapped: the keys after it keep their order.
            if app.shift_remove(key).is_some() {
                changes.push(format!("{key} (removed)"));
            }
        }
    }

    // The app as it would be.
    if get_str(&app, "secret").is_none() {
        return Err(invalid(format!(
            "{appid} needs its secret: set WXBRIDGE_APP_SECRET, or pass it on stdin with --secrets-stdin"
        )));
    }
    let becomes_oa = is_oa && old_kind.as_deref() != Some(OA);
    if becomes_oa && get_str(&app, "token").is_none() {
        return Err(invalid(format!(
            "the official account {appid} needs its token: set WXBRIDGE_APP_TOKEN, or pass it on stdin with \
             --secrets-stdin"
        )));
    }
    if app.get("safe_mode") == Some(&Value::Bool(true)) && get_str(&app, "encoding_aes_key").is_none() {
        return Err(invalid(format!(
            "safe mode needs the encoding_aes_key of {appid}: set WXBRIDGE_APP_AES_KEY, or pass it on stdin with \
             --secrets-stdin"
        )));
    }
    let was_pivot = old.as_ref().is_some_and(|f| get_str(f, "role") == Some(PIVOT_ROLE));
    let is_pivot = get_str(&app, "role") == Some(PIVOT_ROLE);
    if is_pivot {
        if !is_oa {
            return Err(invalid(format!("the {PIVOT_ROLE} must be an official account, and {appid} is a {kind}")));
        }
        let other = doc
            .apps()
            .iter()
            .filter_map(Value::as_object)
            .filter(|f| get_str(f, "role") == Some(PIVOT_ROLE))
            .filter_map(|f| get_str(f, "appid"))
            .find(|other| *other != appid);
        if let Some(other) = other {
            return Err(invalid(format!(
                "{other} is the {PIVOT_ROLE} already, and a registry has only one: give {appid} another role, \
                 or change {other}'s first"
            )));
        }
    }
    if was_pivot && !is_pivot && !req.force {
        return Err(invalid(format!(
            "{appid} is the {PIVOT_ROLE}: changing its role leaves the registry without a pivot (web-view \
             linking stops); pass --force to do it anyway"
        )));
    }

    match index {
        None => {
            doc.apps_mut().push(Value::Object(app));
            let owner = req.owner.as_deref().unwrap_or_default();
            Ok(Edit { message: format!("added {appid} ({kind}, owner {owner})"), changed: true })
        }
        Some(_) if changes.is_empty() => {
            Ok(Edit { message: format!("unchanged {appid}: it already is as given"), changed: false })
        }
        Some(i) => {
            doc.apps_mut()[i] = Value::Object(app);
            Ok(Edit { message: format!("updated {appid}: {}", changes.join(", ")), changed: true })
        }
    }
}

/// Removes the app; the pivot only with `force`. An official account is also taken off the
/// `official_accounts` of every site that names it (a registry whose site names an account it
/// does not have does not load), and the message says which. A site's empty list means "the
/// pivot": so removing the pivot leaves its sites to the next pivot, but removing a site's last
/// other account is refused, as it would let that site bind through the pivot instead.
pub fn unregister(doc: &mut Document, appid: &AppId, force: bool, path: &str) -> Result<Edit, Failure> {
    let Some(i) = doc.position(appid) else {
        return Err(Failure::NotFound(format!("{appid} is not in the registry {path}")));
    };
    let app = doc.apps()[i].as_object().cloned().unwrap_or_default();
    let kind = get_str(&app, "kind").unwrap_or("?").to_owned();
    let owner = get_str(&app, "owner").unwrap_or("?").to_owned();
    let is_pivot = get_str(&app, "role") == Some(PIVOT_ROLE);
    if is_pivot && !force {
        return Err(invalid(format!(
            "{appid} is the {PIVOT_ROLE}: without it web-view linking stops; pass --force to remove it anyway"
        )));
    }
    let names = |v: &Value| v.as_str() == Some(appid.as_str());
    let mut lines = vec![format!("removed {appid} ({kind}, owner {owner})")];
    // Checked for every site before any is changed.
    for site in doc.sites_mut() {
        let Some(Value::Array(list)) = site.get("official_accounts") else { continue };
        if list.iter().any(names) && list.iter().all(names) && !is_pivot {
            let id = get_str(site, "site_id").unwrap_or("?");
            return Err(invalid(format!(
                "{appid} is the only official account of site {id}: without it the site would bind through the \
                 {PIVOT_ROLE} instead; give the site another official account first, or remove the site"
            )));
        }
    }
    for site in doc.sites_mut() {
        let id = get_str(site, "site_id").unwrap_or("?").to_owned();
        let Some(Value::Array(list)) = site.get_mut("official_accounts") else { continue };
        if !list.iter().any(names) {
            continue;
        }
        list.retain(|v| !names(v));
        lines.push(if list.is_empty() {
            format!(
                "site {id}: {appid} taken off its official_accounts; none left, so it binds through the next \
                 {PIVOT_ROLE} registered"
            )
        } else {
            let left: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            format!("site {id}: {appid} taken off its official_accounts (left: {})", left.join(", "))
        });
    }
    doc.apps_mut().remove(i);
    Ok(Edit { message: lines.join("\n"), changed: true })
}

// ------------------------------------------------------------------------------------------
// The file

fn read(path: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| internal(format!("cannot read registry {path}: {e}")))
}

/// Replaces the file by a temp file in its folder, renamed over it (a symlink's target is what
/// is replaced), with the old file's permissions; refused if the file changed since `before`.
fn write_atomic(path: &str, before: &str, text: &str) -> Result<(), Failure> {
    let io = |what: &str, e: std::io::Error| internal(format!("cannot {what} {path}: {e}"));
    let target = std::fs::canonicalize(path).map_err(|e| io("resolve", e))?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.wxbridge-{}-{:08x}.tmp", std::process::id(), rand::random::<u32>()));
    let permissions = std::fs::metadata(&target).map_err(|e| io("stat", e))?.permissions();
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(permissions)?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(internal(format!("cannot write {}: {e}", tmp.display())));
    }
    if std::fs::read_to_string(&target).ok().as_deref() != Some(before) {
        let _ = std::fs::remove_file(&tmp);
        return Err(internal(format!(
            "the registry {path} changed while it was being edited; nothing written, run again"
        )));
    }
    if let Err(e) = std::fs::rename(&tmp, &target) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("replace", e));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub fn run_register(path: &str, req: &Register) -> Result<(), Failure> {
    let before = read(path)?;
    let mut doc = Document::parse(&before)?;
    let secrets = read_secrets(req.secrets_stdin)?;
    let edit = register(&mut doc, req, &secrets)?;
    if edit.changed {
        write_atomic(path, &before, &doc.to_text()?)?;
    }
    println!("{}", edit.message);
    Ok(())
}

pub fn run_unregister(path: &str, appid: &AppId, force: bool) -> Result<(), Failure> {
    let before = read(path)?;
    let mut doc = Document::parse(&before)?;
    let edit = unregister(&mut doc, appid, force, path)?;
    write_atomic(path, &before, &doc.to_text()?)?;
    println!("{}", edit.message);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../config/demo-apps.json");
    const KEY: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";

    fn req(appid: &str) -> Register {
        Register {
            appid: AppId::parse(appid).unwrap(),
            kind: None,
            owner: None,
            role: None,
            name: None,
            open_platform: None,
            safe_mode: None,
            web_auth_domains: vec![],
            secrets_stdin: false,
            force: false,
        }
    }

    fn secrets(secret: Option<&str>, token: Option<&str>, key: Option<&str>) -> Secrets {
        Secrets {
            secret: secret.map(String::from),
            token: token.map(String::from),
            encoding_aes_key: key.map(String::from),
        }
    }

    fn refusal(r: Result<Edit, Failure>) -> String {
        match r {
            Err(Failure::Wx(Error::InvalidRequest(m))) => m,
            other => panic!("expected invalid_request, got {other:?}"),
        }
    }

    #[test]
    fn the_document_round_trips_in_order() {
        let doc = Document::parse(DEMO).unwrap();
        let text = doc.to_text().unwrap();
        let (a, b): (serde_json::Value, serde_json::Value) =
            (serde_json::from_str(DEMO).unwrap(), serde_json::from_str(&text).unwrap());
        assert_eq!(a, b);
        assert!(text.starts_with("{\n  \"_comment\": ") && text.ends_with("}\n"), "{text}");
        let keys: Vec<&str> = doc.top.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "_comment",
                "apps",
                "site",
                "sites",
                "menu_login_key",
                "credentials",
                "return_url_allow",
                "merchant_keys",
                "component"
            ]
        );
        assert!(text.find("\"appid\"").unwrap() < text.find("\"name\"").unwrap());
    }

    #[test]
    fn a_new_official_account_lands_last_in_the_demo_order() {
        let mut doc = Document::parse(DEMO).unwrap();
        let mut r = req("wx4d5e6f7a8b9c0301");
        r.kind = Some(AppKind::OfficialAccount);
        r.owner = Some("m3".into());
        r.role = Some("merchant_oa".into());
        let edit = register(&mut doc, &r, &secrets(Some("s3"), Some("t3"), Some(KEY))).unwrap();
        assert_eq!(edit.message, "added wx4d5e6f7a8b9c0301 (official_account, owner m3)");
        let app = doc.apps().last().unwrap().as_object().unwrap();
        let keys: Vec<&str> = app.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["appid", "kind", "role", "owner", "secret", "token", "encoding_aes_key", "safe_mode"]);
        Registry::from_json(&doc.to_text().unwrap()).unwrap();
    }

    #[test]
    fn a_kind_change_drops_what_the_new_kind_has_no_use_for() {
        let mut doc = Document::parse(DEMO).unwrap();
        let mut r = req("wx2b3c4d5e6f708102");
        r.kind = Some(AppKind::MiniProgram);
        let edit = register(&mut doc, &r, &Secrets::default()).unwrap();
        assert_eq!(
            edit.message,
            "updated wx2b3c4d5e6f708102: kind, token (removed), encoding_aes_key (removed), safe_mode (removed), \
             web_auth_domains (removed)"
        );
        // And back: an official account needs its token again.
        r.kind = Some(AppKind::OfficialAccount);
        assert!(refusal(register(&mut doc, &r, &Secrets::default())).contains("WXBRIDGE_APP_TOKEN"));
    }

    #[test]
    fn refusals() {
        let doc = || Document::parse(DEMO).unwrap();
        let new_mp = || {
            let mut r = req("wx9f9f9f9f9f9f9f01");
            r.kind = Some(AppKind::MiniProgram);
            r.owner = Some("m9".into());
            r
        };
        assert!(refusal(register(&mut doc(), &new_mp(), &Secrets::default())).contains("WXBRIDGE_APP_SECRET"));
        let mut no_owner = new_mp();
        no_owner.owner = None;
        assert!(refusal(register(&mut doc(), &no_owner, &secrets(Some("s"), None, None))).contains("--owner"));
        let m = refusal(register(&mut doc(), &new_mp(), &secrets(Some("s"), Some("t"), None)));
        assert!(m.contains("official accounts only"), "{m}");
        let mut safe = new_mp();
        safe.safe_mode = Some(true);
        assert!(refusal(register(&mut doc(), &safe, &secrets(Some("s"), None, None))).contains("safe mode"));
        let mut pivot = new_mp();
        pivot.role = Some(PIVOT_ROLE.into());
        assert!(refusal(register(&mut doc(), &pivot, &secrets(Some("s"), None, None))).contains("official account"));
        let m = refusal(register(&mut doc(), &new_mp(), &secrets(Some("two words"), None, None)));
        assert!(m.contains("without spaces") && !m.contains("two words"), "{m}");
        let mut oa = new_mp();
        oa.kind = Some(AppKind::OfficialAccount);
        let m = refusal(register(&mut doc(), &oa, &secrets(Some("s"), Some("t"), Some(&KEY[1..]))));
        assert!(m.contains("43") && !m.contains(&KEY[1..]), "{m}");
        let m = refusal(register(&mut doc(), &oa, &secrets(Some("s"), Some("t"), Some(&KEY.replace('a', "!")))));
        assert!(m.contains("base64"), "{m}");
        // Demoting the pivot needs --force.
        let mut demote = req("wx1a2b3c4d5e6f7002");
        demote.role = Some("merchant_oa".into());
        assert!(refusal(register(&mut doc(), &demote, &Secrets::default())).contains("--force"));
        demote.force = true;
        assert!(register(&mut doc(), &demote, &Secrets::default()).unwrap().changed);
    }

    #[test]
    fn unregistering_an_official_account_takes_it_off_its_sites() {
        const M1_OA: &str = "wx2b3c4d5e6f708102";
        const M2_OA: &str = "wx3c4d5e6f7a809202";
        let id = |a: &str| AppId::parse(a).unwrap();
        let sites = |doc: &Document| -> Vec<Value> {
            let top = &doc.top;
            std::iter::once(top["site"].clone()).chain(top["sites"].as_array().unwrap().iter().cloned()).collect()
        };
        // A site's last account other than the pivot: refused (it would bind through the pivot).
        let mut doc = Document::parse(DEMO).unwrap();
        let m = refusal(unregister(&mut doc, &id(M1_OA), false, "apps.json"));
        assert!(m.contains("the only official account of site m1-shop") && m.contains("pivot_oa"), "{m}");
        assert_eq!(doc.to_text().unwrap(), Document::parse(DEMO).unwrap().to_text().unwrap(), "nothing changed");
        // One of two: taken off, the other left, and the document still loads.
        let mut two: Value = serde_json::from_str(DEMO).unwrap();
        two["sites"][0]["official_accounts"] = serde_json::json!([M1_OA, M2_OA]);
        let mut doc = Document::parse(&two.to_string()).unwrap();
        let edit = unregister(&mut doc, &id(M1_OA), false, "apps.json").unwrap();
        assert_eq!(
            edit.message,
            format!(
                "removed {M1_OA} (official_account, owner m1)\n\
                 site m1-shop: {M1_OA} taken off its official_accounts (left: {M2_OA})"
            )
        );
        assert_eq!(sites(&doc)[1]["official_accounts"], serde_json::json!([M2_OA]));
        Registry::from_json(&doc.to_text().unwrap()).unwrap();
        // The pivot (with --force): its site is left to the next pivot.
        let mut doc = Document::parse(DEMO).unwrap();
        let edit = unregister(&mut doc, &id("wx1a2b3c4d5e6f7002"), true, "apps.json").unwrap();
        assert!(edit.message.ends_with("none left, so it binds through the next pivot_oa registered"), "{edit:?}");
        assert_eq!(sites(&doc)[0]["official_accounts"], serde_json::json!([]));
        assert_eq!(sites(&doc)[1]["official_accounts"], serde_json::json!([M1_OA]), "other sites untouched");
        assert!(Registry::from_json(&doc.to_text().unwrap()).unwrap().pivot().is_none());
        // An app no site names: the one line.
        let mut doc = Document::parse(DEMO).unwrap();
        let edit = unregister(&mut doc, &id(M2_OA), false, "apps.json").unwrap();
        assert_eq!(edit.message, format!("removed {M2_OA} (official_account, owner m2)"));
    }

    #[test]
    fn nothing_given_is_no_change() {
        let mut doc = Document::parse(DEMO).unwrap();
        let mut r = req("wx1a2b3c4d5e6f7001");
        r.owner = Some("platform".into());
        let edit = register(&mut doc, &r, &secrets(Some("a382c32af48e4cf5ee604205b5c29595"), None, None)).unwrap();
        assert!(!edit.changed && edit.message.starts_with("unchanged"), "{edit:?}");
    }

    #[test]
    fn secrets_from_stdin_never_echo_a_value() {
        let s = Secrets::from_reader(&br#"{"secret":"s1","token":"t1"}"#[..]).unwrap();
        assert_eq!(
            (s.secret.as_deref(), s.token.as_deref(), s.encoding_aes_key.is_none()),
            (Some("s1"), Some("t1"), true)
        );
        assert_eq!(format!("{s:?}"), r#"Secrets { secret: "***", token: "***", encoding_aes_key: "-" }"#);
        for bad in [&br#"{"secret": 12345678}"#[..], br#""hunter2hunter2""#, br#"{"aes_key":"hunter2hunter2"}"#] {
            let Err(Failure::Wx(Error::InvalidRequest(m))) = Secrets::from_reader(bad) else { panic!() };
            assert!(!m.contains("12345678") && !m.contains("hunter2"), "{m}");
        }
        let env = Secrets::from_env(|k| (k == "WXBRIDGE_APP_SECRET").then(|| "x".to_owned()));
        assert_eq!((env.secret.as_deref(), env.token.is_none()), (Some("x"), true));
    }
}
