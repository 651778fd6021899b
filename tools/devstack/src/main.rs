//! `devstack [--listen ADDR] [--dynamodb-endpoint URL [--table NAME]] [--registry FILE]`

use std::time::Duration;

fn usage() -> ! {
    eprintln!("usage: devstack [--listen ADDR] [--dynamodb-endpoint URL] [--table NAME] [--registry FILE] [--unionid conditional|always|never]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    shared::telemetry::init();
    let mut opts = devstack::Options::default();
    if let Ok(l) = std::env::var("DEVSTACK_LISTEN") {
        opts.listen = l.parse().unwrap_or_else(|_| usage());
    }
    let mut endpoint: Option<String> = None;
    let mut table = "wxbridge-devstack".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--listen" => opts.listen = val().parse().unwrap_or_else(|_| usage()),
            "--dynamodb-endpoint" => endpoint = Some(val()),
            "--table" => table = val(),
            "--registry" => {
                let path = val();
                opts.registry_json = Some(std::fs::read_to_string(&path).unwrap_or_else(|e| {
                    eprintln!("cannot read {path}: {e}");
                    std::process::exit(2)
                }))
            }
            "--unionid" => opts.unionid_mode = val().parse().unwrap_or_else(|_| usage()),
            "--wechat-timeout-ms" => {
                opts.wechat_timeout = Duration::from_millis(val().parse().unwrap_or_else(|_| usage()))
            }
            _ => usage(),
        }
    }
    let store = match &endpoint {
        Some(e) => format!("DynamoDB {e} table {table}"),
        None => "embedded".to_owned(),
    };
    opts.dynamodb = endpoint.map(|e| (e, table));
    let d = match devstack::start(opts).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("devstack: {e}");
            std::process::exit(1)
        }
    };
    println!("{}", devstack::banner(&d, &store));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = d.server => {}
    }
}
