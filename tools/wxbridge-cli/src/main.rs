//! `wxbridge`: the operators' command line, straight on the table (no API credential): look
//! a person up, export their links, unlink one identity, erase a person. Every store operation
//! is `shared::domain::admin`'s, the same code the identity-api function runs. It also edits
//! the app registry file: `register` and `unregister` (see `register.rs`).

mod register;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args as _, CommandFactory, FromArgMatches, Parser};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use shared::domain::admin::Admin;
use shared::domain::assoc::{Assoc, PersonView};
use shared::domain::views::Operator;
use shared::ids::{AppId, MerchantId, OpenId, OpenPlatformId, PersonId};
use shared::model::AppKind;
use shared::ports::{RandomIds, SystemClock};
use shared::registry::Registry;
use shared::store::dynamo::DynamoStore;
use shared::Error;

const USAGE: &str = "\
usage: wxbridge [--endpoint URL] [--table NAME] [--registry FILE] COMMAND

commands:
  apps                              the registry's apps (never their secrets)
  lookup APPID OPENID               the person behind an identity, as JSON
  person PERSON_ID                  a person and their identities, as JSON
  export PERSON_ID                  a person's links as JSON, with exported_at
  unlink PERSON_ID APPID OPENID     forget one identity of a person
  erase PERSON_ID [--yes]           erase a person and everything linked to them
                                    (asks on a terminal; without one, --yes is required)
  create-table                      create the table if it does not exist (DynamoDB Local, dev)
  registry import                   write the registry document (--registry FILE) into the table:
                                    every entry is checked first, one bad entry and nothing is
                                    written; secrets sealed under WXBRIDGE_KMS_KEY_ID (KMS), or
                                    with --endpoint under WXBRIDGE_LOCAL_KEY or the dev key
  app-put FILE                      register or replace one app from a JSON document (- for stdin)
  app-get APPID                     one registered app, without its secrets
  app-delete APPID                  remove an app: its logins stop, its links stay
  merchant-key MERCHANT             issue a merchant key (shown once; only its hash is kept)
  revoke-key MERCHANT KEY_ID        revoke one of a merchant's keys
  onboard MERCHANT                  print a one-time link (7 days) that sends the merchant to
                                    WeChat's page to authorize the platform's third-party
                                    platform; the link is on $PUBLIC_BASE
  register --appid APPID --kind KIND --owner OWNER [--role ROLE] [--name NAME]
           [--open-platform OP] [--safe-mode | --no-safe-mode] [--web-auth-domain HOST ...]
           [--secrets-stdin] [--force]
                                    add an app to the registry file, or update the app with this
                                    appid: fields not given are kept (--kind and --owner too);
                                    --web-auth-domain replaces the list. KIND: mini_program,
                                    official_account, mobile_app or website. Secrets never come
                                    from arguments: WXBRIDGE_APP_SECRET, WXBRIDGE_APP_TOKEN and
                                    WXBRIDGE_APP_AES_KEY, or with --secrets-stdin a JSON object
                                    {\"secret\": …, \"token\": …, \"encoding_aes_key\": …} on stdin.
                                    A new app needs its secret (an official account its token).
                                    Changing the pivot_oa's role needs --force.
  unregister APPID [--force]        remove an app from the registry file (the pivot_oa only with
                                    --force)

options:
  --endpoint URL     a DynamoDB server, e.g. DynamoDB Local (default: the AWS SDK's chain,
                     AWS_ENDPOINT_URL_DYNAMODB and AWS_REGION honoured)
  --table NAME       the table (default: $WXBRIDGE_TABLE)
  --registry FILE    the app registry (default: config/demo-apps.json); erase needs the
                     deployment's, to find the person's unionids; register and unregister
                     rewrite it (temp file + rename) and need it given

Errors print the wxbridge error code and detail on stderr and exit 1; usage errors exit 2.";

const DEFAULT_REGISTRY: &str = "config/demo-apps.json";

#[derive(Debug, PartialEq)]
enum Command {
    Apps,
    CreateTable,
    Lookup(AppId, OpenId),
    Person(PersonId),
    Export(PersonId),
    Unlink(PersonId, AppId, OpenId),
    Erase { person: PersonId, yes: bool },
    Register(Box<register::Register>),
    Unregister { appid: AppId, force: bool },
    Import,
    AppPut(String),
    AppGet(AppId),
    AppDelete(AppId),
    MerchantKey(MerchantId),
    RevokeKey(MerchantId, String),
    Onboard(MerchantId),
}

impl Command {
    fn needs_table(&self) -> bool {
        !self.edits_registry() && !matches!(self, Command::Apps)
    }

    fn edits_registry(&self) -> bool {
        matches!(self, Command::Register(_) | Command::Unregister { .. })
    }
}

#[derive(Debug, PartialEq)]
struct Args {
    endpoint: Option<String>,
    table: Option<String>,
    registry: String,
    command: Command,
}

#[derive(Debug, PartialEq)]
enum Parsed {
    Run(Args),
    Help,
}

#[derive(Debug)]
enum Failure {
    /// Exit 2: the command line is wrong.
    Usage(String),
    /// Exit 1: wxbridge refused or failed.
    Wx(Error),
    /// Exit 1: the operator did not confirm.
    Aborted,
    /// Exit 1, `not_found`, with this detail.
    NotFound(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Wx(e)
    }
}

fn id<T>(parse: fn(&str) -> Result<T, Error>, s: &str) -> Result<T, Failure> {
    parse(s).map_err(|e| Failure::Usage(format!("{}: {}", e.code(), e.detail())))
}

/// The command line as clap reads it. Options may stand anywhere, before the command too, so it is
/// one flat level rather than clap subcommands: the first word is the command, the rest its
/// operands, and which command takes which options and operands is checked once the command is
/// known, so that the message can say so ("--yes is for erase only"). An option's value is the
/// next argument, whatever it looks like.
#[derive(Parser)]
#[command(name = "wxbridge", override_help = USAGE, disable_help_flag = true, args_override_self = true)]
struct Cli {
    #[arg(long, value_name = "URL", allow_hyphen_values = true)]
    endpoint: Option<String>,
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    table: Option<String>,
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    registry: Option<String>,
    #[arg(short = 'y', long)]
    yes: bool,
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    register: RegisterOptions,
    // Help wins over anything that follows it, as it always has.
    #[arg(short = 'h', long, action = ArgAction::Help)]
    help: Option<bool>,
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
    #[arg(value_name = "OPERAND")]
    operands: Vec<String>,
}

/// `register`'s options as given, checked once the command is known.
#[derive(clap::Args)]
struct RegisterOptions {
    #[arg(long, value_name = "APPID", allow_hyphen_values = true)]
    appid: Option<String>,
    #[arg(long, value_name = "KIND", allow_hyphen_values = true)]
    kind: Option<String>,
    #[arg(long, value_name = "OWNER", allow_hyphen_values = true)]
    owner: Option<String>,
    #[arg(long, value_name = "ROLE", allow_hyphen_values = true)]
    role: Option<String>,
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    name: Option<String>,
    #[arg(long, value_name = "OP", allow_hyphen_values = true)]
    open_platform: Option<String>,
    #[arg(long = "web-auth-domain", value_name = "HOST", allow_hyphen_values = true)]
    web_auth_domains: Vec<String>,
    #[arg(long)]
    safe_mode: bool,
    #[arg(long)]
    no_safe_mode: bool,
    #[arg(long)]
    secrets_stdin: bool,
}

impl RegisterOptions {
    fn into_command(self, force: bool) -> Result<register::Register, Failure> {
        let usage = |m: String| Failure::Usage(m);
        let Some(appid) = self.appid else { return Err(usage("register needs --appid APPID".into())) };
        let word = |option: &str, v: Option<String>| v.map(|v| register::check_word(option, &v)).transpose();
        Ok(register::Register {
            appid: id(AppId::parse, &appid)?,
            kind: self.kind.map(|k| register::parse_kind(&k)).transpose().map_err(usage)?,
            owner: word("--owner", self.owner).map_err(usage)?,
            role: word("--role", self.role).map_err(usage)?,
            name: self.name.map(|n| register::check_name(&n)).transpose().map_err(usage)?,
            open_platform: self.open_platform.map(|o| id(OpenPlatformId::parse, &o)).transpose()?,
            safe_mode: (self.safe_mode || self.no_safe_mode).then_some(self.safe_mode),
            web_auth_domains: self
                .web_auth_domains
                .iter()
                .map(|h| register::check_host(h))
                .collect::<Result<_, _>>()
                .map_err(usage)?,
            secrets_stdin: self.secrets_stdin,
            force,
        })
    }

    /// The one of these options given first on the command line, for "--kind is for register only".
    fn first_given(matches: &ArgMatches) -> Option<String> {
        let options = RegisterOptions::augment_args(clap::Command::new("register"));
        options
            .get_arguments()
            .filter(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
            .filter_map(|a| Some((matches.index_of(a.get_id().as_str())?, a.get_long()?)))
            .min()
            .map(|(_, long)| format!("--{long}"))
    }
}

/// clap's objection, in the words wxbridge has always used for it.
fn clap_usage(e: &clap::Error) -> Failure {
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.as_str(),
        _ => "",
    };
    Failure::Usage(match e.kind() {
        ErrorKind::UnknownArgument => format!("unknown option {arg}"),
        // Only a missing value gets here: no option has a fixed set of values. clap names the
        // option with its placeholder ("--table <NAME>").
        ErrorKind::InvalidValue => format!("{} needs a value", arg.split(' ').next().unwrap_or(arg)),
        _ => e.to_string().lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned(),
    })
}

/// Options may stand anywhere; everything else is the command and its operands.
fn parse(argv: impl IntoIterator<Item = String>, env_table: Option<String>) -> Result<Parsed, Failure> {
    let usage = |m: &str| Failure::Usage(m.to_owned());
    let matches = match Cli::command().try_get_matches_from(std::iter::once("wxbridge".to_owned()).chain(argv)) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::DisplayHelp => return Ok(Parsed::Help),
        Err(e) => return Err(clap_usage(&e)),
    };
    let misplaced = RegisterOptions::first_given(&matches);
    let Cli { endpoint, table, registry, yes, force, register: reg, command, operands, .. } =
        Cli::from_arg_matches(&matches).map_err(|e| clap_usage(&e))?;
    let words: Vec<&str> = command.iter().chain(&operands).map(String::as_str).collect();
    if words.contains(&"help") {
        return Ok(Parsed::Help);
    }
    // clap takes a lone "-", and anything after "--", for a word.
    if let Some(w) = words.iter().find(|w| w.starts_with('-')) {
        return Err(usage(&format!("unknown option {w}")));
    }
    if reg.safe_mode && reg.no_safe_mode {
        return Err(usage("--safe-mode and --no-safe-mode together"));
    }
    let Some((&name, operands)) = words.split_first() else { return Err(usage("no command")) };
    let command = match (name, operands) {
        ("apps", []) => Command::Apps,
        ("create-table", []) => Command::CreateTable,
        ("lookup", [appid, openid]) => Command::Lookup(id(AppId::parse, appid)?, id(OpenId::parse, openid)?),
        ("person", [p]) => Command::Person(id(PersonId::parse, p)?),
        ("export", [p]) => Command::Export(id(PersonId::parse, p)?),
        ("unlink", [p, appid, openid]) => {
            Command::Unlink(id(PersonId::parse, p)?, id(AppId::parse, appid)?, id(OpenId::parse, openid)?)
        }
        ("erase", [p]) => Command::Erase { person: id(PersonId::parse, p)?, yes },
        ("unregister", [appid]) => Command::Unregister { appid: id(AppId::parse, appid)?, force },
        ("register", []) => Command::Register(Box::new(reg.into_command(force)?)),
        ("registry", ["import"]) => Command::Import,
        ("app-put", [file]) => Command::AppPut((*file).to_owned()),
        ("app-get", [appid]) => Command::AppGet(id(AppId::parse, appid)?),
        ("app-delete", [appid]) => Command::AppDelete(id(AppId::parse, appid)?),
        ("merchant-key", [m]) => Command::MerchantKey(id(MerchantId::parse, m)?),
        ("revoke-key", [m, key_id]) => Command::RevokeKey(id(MerchantId::parse, m)?, (*key_id).to_owned()),
        ("onboard", [m]) => Command::Onboard(id(MerchantId::parse, m)?),
        ("registry" | "app-put" | "app-get" | "app-delete" | "merchant-key" | "revoke-key" | "onboard", _) => {
            return Err(usage(&format!("wrong operands for {name}")))
        }
        ("register", _) => return Err(usage("register takes no operands: the appid is --appid APPID")),
        ("apps" | "create-table" | "lookup" | "person" | "export" | "unlink" | "erase" | "unregister", _) => {
            return Err(usage(&format!("wrong number of operands for {name}")))
        }
        _ => return Err(usage(&format!("unknown command {name}"))),
    };
    if yes && !matches!(command, Command::Erase { .. }) {
        return Err(usage("--yes is for erase only"));
    }
    if force && !command.edits_registry() {
        return Err(usage("--force is for register and unregister only"));
    }
    if let Some(option) = misplaced.filter(|_| !matches!(command, Command::Register(_))) {
        return Err(usage(&format!("{option} is for register only")));
    }
    if command.edits_registry() && registry.is_none() {
        return Err(usage(&format!("{name} rewrites the registry file: pass --registry FILE")));
    }
    let table = table.or(env_table.filter(|t| !t.is_empty()));
    if command.needs_table() && table.is_none() {
        return Err(usage("which table? pass --table NAME or set WXBRIDGE_TABLE"));
    }
    Ok(Parsed::Run(Args { endpoint, table, registry: registry.unwrap_or_else(|| DEFAULT_REGISTRY.into()), command }))
}

fn load_registry(path: &str) -> Result<Registry, Error> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Internal(format!("cannot read registry {path}: {e}")))?;
    Registry::from_json(&text)
}

async fn store(endpoint: Option<&str>, table: &str) -> DynamoStore {
    match endpoint {
        Some(e) => DynamoStore::local(e, table).await,
        None => {
            let aws = aws_config::load_from_env().await;
            DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table)
        }
    }
}

/// The registry's apps, and its sites as the `site:<id>` apps their identities are filed under.
fn apps_table(registry: &Registry) -> Result<String, Error> {
    let mut apps: Vec<_> = registry.apps().cloned().collect();
    apps.sort_by(|a, b| a.appid.cmp(&b.appid));
    for site in &registry.sites {
        apps.push(site.as_app()?);
    }
    let mut rows = vec![["APPID", "KIND", "ROLE", "OWNER", "OPEN_PLATFORM"].map(String::from)];
    for a in &apps {
        let or_dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
        rows.push([
            a.appid.to_string(),
            a.kind.as_str().to_owned(),
            or_dash(a.role.as_str()),
            or_dash(&a.owner.to_string()),
            a.open_platform.as_ref().map_or_else(|| "-".to_owned(), |o| o.to_string()),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    Ok(out)
}

/// The commands that change or read the registry in the table, through the same
/// `Registrar` the admin API runs; `None` for the others.
async fn registry_command(args: &Args, table: &str) -> Result<Option<String>, Failure> {
    use shared::directory::StoreDirectory;
    use shared::domain::registrar::Registrar;
    use shared::registry::{App, Holder};
    use shared::vault::{KmsKey, LocalKey, Vault, LOCAL_DEV_KEY};
    use std::sync::Arc;
    if let Command::Onboard(m) = &args.command {
        let base = std::env::var("PUBLIC_BASE")
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Failure::Usage("onboard prints a link on the bridge's origin: set PUBLIC_BASE".into()))?;
        let store = store(args.endpoint.as_deref(), table).await;
        let link = shared::domain::component::issue_link(
            &store,
            &SystemClock,
            &RandomIds,
            base.trim_end_matches('/'),
            m,
            7 * 24 * 3600,
        )
        .await?;
        return Ok(Some(link));
    }
    if !matches!(
        args.command,
        Command::Import
            | Command::AppPut(_)
            | Command::AppGet(_)
            | Command::AppDelete(_)
            | Command::MerchantKey(_)
            | Command::RevokeKey(..)
    ) {
        return Ok(None);
    }
    let store: Arc<dyn shared::store::Store> = Arc::new(store(args.endpoint.as_deref(), table).await);
    let vault = match (std::env::var("WXBRIDGE_KMS_KEY_ID").ok().filter(|k| !k.is_empty()), &args.endpoint) {
        (Some(k), _) => Vault::new(Arc::new(KmsKey::new(&aws_config::load_from_env().await, &k))),
        (None, Some(_)) => Vault::new(Arc::new(match std::env::var("WXBRIDGE_LOCAL_KEY") {
            Ok(hex_key) if !hex_key.is_empty() => LocalKey::from_hex("local", &hex_key)?,
            _ => LocalKey::new("local", LOCAL_DEV_KEY),
        })),
        (None, None) => {
            return Err(Failure::Usage("the registry's secrets are sealed with KMS: set WXBRIDGE_KMS_KEY_ID".into()))
        }
    };
    let directory = StoreDirectory { store: store.clone(), vault: None };
    let r = Registrar { store: &*store, vault: Some(&vault), directory: &directory, clock: &SystemClock };
    Ok(Some(match &args.command {
        Command::Import => {
            let done = r.import(&load_registry(&args.registry)?).await?;
            format!("imported {} apps, {} sites, {} keys from {}", done.apps, done.sites, done.keys, args.registry)
        }
        Command::AppPut(file) => {
            let text =
                if file == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(file) }
                    .map_err(|e| Error::InvalidRequest(format!("cannot read {file}: {e}")))?;
            let app: App = serde_json::from_str(&text).map_err(|e| Error::InvalidRequest(format!("the app: {e}")))?;
            let put = r.put_app(&app).await?;
            format!("{:?} {}: {}", put, app.appid, pretty(&r.app_info(&app.appid).await?))
        }
        Command::AppGet(appid) => pretty(&r.app_info(appid).await?),
        Command::AppDelete(appid) => {
            r.delete_app(appid).await?;
            format!("removed {appid}: its logins stop, its links stay")
        }
        Command::MerchantKey(m) => pretty(&r.issue_key(Holder::Merchant(m.clone())).await?),
        Command::RevokeKey(m, key_id) => {
            r.revoke_key(&Holder::Merchant(m.clone()), key_id).await?;
            format!("revoked key {key_id} of {m}")
        }
        _ => unreachable!("filtered above"),
    }))
}

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn print_json(v: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Erase deletes a person's unionid items through the registry (an app's open platform):
/// with a registry that does not list one of the person's apps, that unionid would survive.
fn check_registry_covers(registry: &Registry, person: &PersonView, path: &str) -> Result<(), Error> {
    for i in &person.linked {
        let known = i.kind == AppKind::Site || registry.app(&i.appid).is_some();
        if !known {
            return Err(Error::InvalidRequest(format!(
                "the person has an identity in {}, which the registry {path} does not list, so its unionid \
                 would be left behind; pass the deployment's registry with --registry",
                i.appid
            )));
        }
    }
    Ok(())
}

fn confirm_erase(person: &PersonView) -> Result<bool, Failure> {
    let mut err = std::io::stderr().lock();
    let io = |e: std::io::Error| Failure::Wx(Error::Internal(format!("terminal: {e}")));
    writeln!(err, "Erase person {} and all that is linked to it:", person.person).map_err(io)?;
    for i in &person.linked {
        writeln!(err, "  {}  {}  ({}, owner {})", i.appid, i.openid, i.kind, i.owner).map_err(io)?;
    }
    if person.linked.is_empty() {
        writeln!(err, "  (no identities)").map_err(io)?;
    }
    write!(err, "This cannot be undone. Erase? [y/N] ").map_err(io)?;
    err.flush().map_err(io)?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(io)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

async fn run(args: Args) -> Result<(), Failure> {
    match &args.command {
        Command::Register(r) => return register::run_register(&args.registry, r),
        Command::Unregister { appid, force } => return register::run_unregister(&args.registry, appid, *force),
        _ => {}
    }
    let table = args.table.as_deref().unwrap_or_default();
    if let Command::CreateTable = args.command {
        store(args.endpoint.as_deref(), table).await.ensure_table().await.map_err(Error::from)?;
        println!("table {table} is ready");
        return Ok(());
    }
    if let Some(done) = registry_command(&args, table).await? {
        println!("{done}");
        return Ok(());
    }
    let registry = load_registry(&args.registry)?;
    if let Command::Apps = args.command {
        print!("{}", apps_table(&registry)?);
        return Ok(());
    }
    if let Command::Erase { yes: false, .. } = args.command {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::Usage("erase asks for confirmation on a terminal; without one, pass --yes".into()));
        }
    }
    // Only the store and the registry: operators' commands never reach WeChat nor sign tokens.
    let store = store(args.endpoint.as_deref(), table).await;
    let admin =
        Admin { assoc: Assoc { store: &store, clock: &SystemClock, ids: &RandomIds }, apps: &registry, cache: None };
    match args.command {
        Command::Lookup(appid, openid) => print_json(&admin.identity(&appid, &openid).await?)?,
        Command::Person(p) => print_json(&admin.person(&p).await?)?,
        Command::Export(p) => {
            let mut out = serde_json::to_value(admin.person(&p).await?).map_err(|e| Error::Internal(e.to_string()))?;
            let exported_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            out["exported_at"] = serde_json::Value::String(exported_at);
            print_json(&out)?
        }
        Command::Unlink(p, appid, openid) => {
            admin.unlink(&p, &appid, &openid).await?;
            println!("unlinked {appid} {openid} from person {p}");
        }
        Command::Erase { person, yes } => {
            let Operator(view) = admin.person(&person).await?;
            check_registry_covers(&registry, &view, &args.registry)?;
            if !yes && !confirm_erase(&view)? {
                return Err(Failure::Aborted);
            }
            // The person as it stands (a merged-away id names its survivor).
            let root = view.person.clone();
            admin.erase(&root).await?;
            let n = view.linked.len();
            println!("erased person {root} and its {n} {}", if n == 1 { "identity" } else { "identities" });
        }
        _ => unreachable!("handled above"),
    }
    Ok(())
}

fn main() -> ExitCode {
    // Logs go to stderr (stdout carries the JSON), warnings only unless RUST_LOG says otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();

    let outcome = match parse(std::env::args().skip(1), std::env::var("WXBRIDGE_TABLE").ok()) {
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(args)) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(run(args)),
            Err(e) => Err(Failure::Wx(Error::Internal(format!("tokio runtime: {e}")))),
        },
        Err(f) => Err(f),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("wxbridge: {m}\n(wxbridge --help for usage)");
            ExitCode::from(2)
        }
        Err(Failure::Wx(e)) => {
            // The operator is trusted with internal details (the API hides them from callers).
            let detail = match &e {
                Error::Internal(m) => m.clone(),
                other => other.detail(),
            };
            eprintln!("error: {}: {detail}", e.code());
            ExitCode::from(1)
        }
        Err(Failure::Aborted) => {
            eprintln!("aborted: nothing was erased");
            ExitCode::from(1)
        }
        Err(Failure::NotFound(detail)) => {
            eprintln!("error: not_found: {detail}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::registry::AppKind;

    const P: &str = "0190a5c8-7b3e-7c1a-9f00-0123456789ab";

    fn args(s: &str, env_table: Option<&str>) -> Result<Parsed, Failure> {
        parse(s.split_whitespace().map(String::from), env_table.map(String::from))
    }

    fn usage_error(s: &str) -> String {
        match args(s, None) {
            Err(Failure::Usage(m)) => m,
            other => panic!("{s}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn options_anywhere_and_table_from_env() {
        let Ok(Parsed::Run(a)) = args(&format!("erase {P} --yes --endpoint http://x:1"), Some("t1")) else { panic!() };
        assert_eq!(a.endpoint.as_deref(), Some("http://x:1"));
        assert_eq!(a.table.as_deref(), Some("t1"));
        assert_eq!(a.registry, DEFAULT_REGISTRY);
        assert!(matches!(a.command, Command::Erase { yes: true, .. }));
        let Ok(Parsed::Run(a)) = args("--table t2 --registry r.json lookup wx1a2b3c4d5e6f7001 o_1", Some("t1")) else {
            panic!()
        };
        assert_eq!((a.table.as_deref(), a.registry.as_str()), (Some("t2"), "r.json"));
        assert!(matches!(a.command, Command::Lookup(..)));
    }

    #[test]
    fn apps_needs_no_table_and_help_wins() {
        assert!(matches!(args("apps", None), Ok(Parsed::Run(Args { command: Command::Apps, .. }))));
        assert_eq!(args("lookup --help", None).unwrap(), Parsed::Help);
    }

    #[test]
    fn usage_errors() {
        assert!(usage_error("").contains("no command"));
        assert!(usage_error("frobnicate").contains("unknown command"));
        assert!(usage_error("person").contains("operands"));
        assert!(usage_error(&format!("person {P} extra")).contains("operands"));
        assert!(usage_error(&format!("person {P}")).contains("--table"));
        assert!(usage_error(&format!("person {P} --table")).contains("needs a value"));
        assert!(usage_error("person not-a-uuid --table t").starts_with("invalid_request: person_id"));
        assert!(usage_error(&format!("unlink {P} wx! o --table t")).starts_with("invalid_request: appid"));
        assert!(usage_error(&format!("person {P} --table t --yes")).contains("erase only"));
        assert!(usage_error("apps --frobnicate").contains("unknown option"));
        assert!(usage_error("apps --force").contains("register and unregister only"));
    }

    #[test]
    fn clap_reads_the_line_as_the_hand_parser_did() {
        let line = "--web-auth-domain a.example register --registry r.json --appid wx1 --web-auth-domain b.example";
        let Ok(Parsed::Run(Args { command: Command::Register(r), .. })) = args(line, None) else { panic!("{line}") };
        assert_eq!(r.web_auth_domains, ["a.example", "b.example"]);
        let Ok(Parsed::Run(a)) = args(&format!("--table a person {P} --table b"), None) else { panic!() };
        assert_eq!(a.table.as_deref(), Some("b"), "the last one counts");
        let Ok(Parsed::Run(a)) = args(&format!("person {P} --table --yes"), None) else { panic!() };
        assert_eq!(a.table.as_deref(), Some("--yes"), "a value is the next argument");
        assert_eq!(args("person help --table t", None).unwrap(), Parsed::Help);
        assert_eq!(usage_error("apps -"), "unknown option -");
        assert_eq!(usage_error("apps --no-safe-mode --frobnicate"), "unknown option --frobnicate");
        assert_eq!(usage_error("unregister wx1 --owner m1 --kind website"), "--owner is for register only");
        assert_eq!(
            usage_error("--secrets-stdin unregister wx1 --kind website"),
            "--secrets-stdin is for register only"
        );
        assert_eq!(usage_error("register --appid wx1 --name"), "--name needs a value");
    }

    #[test]
    fn register_and_unregister_options() {
        let line = "register --registry r.json --appid wx4d5e6f7a8b9c0301 --kind official_account --owner m3 \
                    --role merchant_oa --name M3 --open-platform op_m3 --safe-mode --web-auth-domain a.example \
                    --web-auth-domain localhost --secrets-stdin";
        let Ok(Parsed::Run(a)) = args(line, None) else { panic!("{line}") };
        let Command::Register(r) = a.command else { panic!() };
        assert_eq!(a.registry, "r.json");
        assert_eq!(r.appid.as_str(), "wx4d5e6f7a8b9c0301");
        assert_eq!(
            (r.kind, r.owner.as_deref(), r.role.as_deref()),
            (Some(AppKind::OfficialAccount), Some("m3"), Some("merchant_oa"))
        );
        assert_eq!((r.name.as_deref(), r.open_platform.as_ref().map(|o| o.as_str())), (Some("M3"), Some("op_m3")));
        assert_eq!((r.safe_mode, r.web_auth_domains.len(), r.secrets_stdin, r.force), (Some(true), 2, true, false));
        let Ok(Parsed::Run(a)) = args("unregister wx1a2b3c4d5e6f7002 --force --registry r.json", Some("t")) else {
            panic!()
        };
        assert_eq!(a.command, Command::Unregister { appid: AppId::parse("wx1a2b3c4d5e6f7002").unwrap(), force: true });

        let r = "--registry r.json";
        assert!(usage_error(&format!("register {r} --kind website")).contains("--appid"));
        assert!(usage_error(&format!("register {r} --appid wx/1")).starts_with("invalid_request: appid"));
        assert!(
            usage_error(&format!("register {r} --appid wx1 --kind robot")).contains("mini_program, official_account")
        );
        assert!(usage_error(&format!("register {r} --appid wx1 --owner")).contains("needs a value"));
        assert!(usage_error(&format!("register {r} --appid wx1 --open-platform op!")).contains("open_platform"));
        assert!(usage_error(&format!("register {r} --appid wx1 --web-auth-domain https://x.example/"))
            .contains("bare host"));
        assert!(
            usage_error(&format!("register {r} --appid wx1 --web-auth-domain x.example:8080")).contains("bare host")
        );
        assert!(usage_error(&format!("register {r} --appid wx1 --safe-mode --no-safe-mode")).contains("together"));
        assert!(usage_error(&format!("register {r} wx1")).contains("no operands"));
        assert!(usage_error("register --appid wx1 --kind website --owner m1").contains("--registry FILE"));
        assert!(usage_error("unregister wx1").contains("--registry FILE"));
        assert!(usage_error(&format!("unregister {r}")).contains("operands"));
        assert!(usage_error(&format!("unregister {r} wx1 --kind website")).contains("--kind is for register only"));
        assert!(usage_error(&format!("apps {r} --secrets-stdin")).contains("for register only"));
        assert!(usage_error(&format!("erase {P} --force --table t")).contains("register and unregister only"));
    }

    #[test]
    fn apps_table_lists_apps_and_sites_without_secrets() {
        let text = include_str!("../../../config/demo-apps.json");
        let t = apps_table(&Registry::from_json(text).unwrap()).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("APPID") && lines[0].ends_with("OPEN_PLATFORM"), "{t}");
        assert!(t.contains("wx1a2b3c4d5e6f7002  official_account  pivot_oa"), "{t}");
        assert!(lines.iter().any(|l| l.starts_with("site:demo-site")), "{t}");
        assert!(lines.last().unwrap().starts_with("site:m1-shop"), "{t}");
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        // Component apps are the bridge's only once their merchant authorizes the platform.
        for app in doc["apps"].as_array().unwrap().iter().filter(|a| a["auth"] != "component") {
            assert!(t.contains(app["appid"].as_str().unwrap()));
            for secret in ["secret", "token", "encoding_aes_key"] {
                if let Some(s) = app[secret].as_str() {
                    assert!(!t.contains(s), "{secret} shown");
                }
            }
        }
        assert!(!t.contains(doc["site"]["api_key"].as_str().unwrap()));
    }
}
