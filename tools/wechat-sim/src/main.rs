//! `wechat-sim --listen 127.0.0.1:9090 --registry config/demo-apps.json [--unionid MODE] [--push-base URL]`
//! (env WXSIM_LISTEN, WXSIM_REGISTRY, WXSIM_UNIONID, WXSIM_PUSH_BASE).

use std::process::ExitCode;

use wechat_sim::{Registry, Sim, SimConfig, UnionIdMode};

const USAGE: &str =
    "usage: wechat-sim [--listen ADDR] [--registry FILE] [--unionid conditional|always|never] [--push-base URL]
  env: WXSIM_LISTEN (default 127.0.0.1:9090), WXSIM_REGISTRY (default config/demo-apps.json),
       WXSIM_UNIONID (default conditional), WXSIM_PUSH_BASE";

struct Args {
    listen: String,
    registry: String,
    unionid: String,
    push_base: Option<String>,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        listen: env_or("WXSIM_LISTEN", "127.0.0.1:9090"),
        registry: env_or("WXSIM_REGISTRY", "config/demo-apps.json"),
        unionid: env_or("WXSIM_UNIONID", "conditional"),
        push_base: std::env::var("WXSIM_PUSH_BASE").ok().filter(|v| !v.is_empty()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => return Err(format!("{name} needs a value")),
        };
        match name.as_str() {
            "--listen" => args.listen = value,
            "--registry" => args.registry = value,
            "--unionid" => args.unionid = value,
            "--push-base" => args.push_base = Some(value),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wechat-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let Some(args) = parse_args().map_err(|e| format!("{e}\n{USAGE}"))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let registry = Registry::from_file(&args.registry).map_err(|e| e.to_string())?;
    let unionid_mode: UnionIdMode = args.unionid.parse()?;
    let apps = registry.apps.len();
    let sim = Sim::new(SimConfig { registry, unionid_mode, push_base: args.push_base.clone() });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot read the local address: {e}"))?;
    println!("wechat-sim serving on http://{addr}");
    println!("  registry: {} ({apps} apps)", args.registry);
    println!("  unionid mode: {unionid_mode}");
    if let Some(base) = &args.push_base {
        println!("  push base: {base}");
    }
    println!(
        "  WeChat: GET /sns/jscode2session, /connect/oauth2/authorize, /connect/qrconnect, /sns/oauth2/access_token,"
    );
    println!("          GET /sns/userinfo, /cgi-bin/token, /cgi-bin/showqrcode, POST /cgi-bin/stable_token,");
    println!("          POST /cgi-bin/qrcode/create, /cgi-bin/message/custom/send");
    println!(
        "  control: GET /sim/apps, POST /sim/users/{{user}}/login|userinfo, GET /sim/users/{{user}}/identity?appid=,"
    );
    println!(
        "           GET|POST /sim/users/{{user}}/switches, POST /sim/users/{{user}}/scan|click|subscribe|unsubscribe,"
    );
    println!("           GET|POST /sim/users/{{user}}/follow, GET /sim/users/{{user}}/messages?appid=,");
    println!("           POST /sim/users/{{user}}/app-login, GET /sim/pushes, POST /sim/pushes/replay,");
    println!("           GET|POST|DELETE /sim/clock, /sim/faults, GET|DELETE /sim/calls, GET|POST /sim/config, POST /sim/reset");
    println!("  component: POST /cgi-bin/component/api_component_token|api_start_push_ticket|api_create_preauthcode,");
    println!("             POST /cgi-bin/component/api_query_auth|api_authorizer_token|api_get_authorizer_info,");
    println!(
        "             GET /cgi-bin/componentloginpage, /wxaopen/safe/bindcomponent, /sns/component/jscode2session,"
    );
    println!(
        "             GET /sns/oauth2/component/access_token; GET|PUT /sim/component, POST /sim/component/ticket,"
    );
    println!("             POST /sim/merchants/{{merchant}}/authorize|unauthorize");
    if let Some(c) = sim.component() {
        println!("  component: {} (a ticket every 10 simulated minutes)", c.component_appid);
    }
    // WeChat pushes tickets on its own; here only once the server listens (a no-op without a
    // component until one is configured).
    sim.spawn_ticket_timer();
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server error: {e}"))
}
