//! JSON logs, one line an event, filtered by `RUST_LOG` (default `info`).
//!
//! Whatever the level asked for, the libraries below us stay at `info`: at `debug` and `trace`
//! they print raw Lambda events, Authorization headers, request URLs with access tokens and
//! DynamoDB responses (session keys). Our own code logs no secret at any level.

use tracing_subscriber::filter::{Directive, EnvFilter};

/// Targets that print what they carry when asked for more than `info`.
const PINNED: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_dynamodb",
    "aws_sdk_ssm",
    "aws_sdk_kms",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "tower",
    "tower_http",
    "axum",
];

/// The filter for a `RUST_LOG`-style spec, with the libraries pinned at `info` at most.
pub fn filter(spec: &str) -> EnvFilter {
    let mut f = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    for target in PINNED {
        if let Ok(d) = format!("{target}=info").parse::<Directive>() {
            f = f.add_directive(d);
        }
    }
    f
}

pub fn init() {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter(&spec))
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}
