//! Logging for the functions: Lambda's log level and format controls, as the runtime's default
//! subscriber reads them, with one thing it does not do: the runtime's line that carries each
//! raw event (at TRACE) is never enabled, whatever the level. Raw events hold webhook bodies and
//! signatures, and CloudFormation's pre-signed response URLs.

use std::env;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{Directive, LevelFilter};

/// Where lambda_runtime logs each raw event.
const RAW_EVENT_TARGET: &str = "lambda_runtime::layers::api_response";

/// The filter: `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO; the raw-event line capped at
/// DEBUG.
pub fn filter() -> EnvFilter {
    let level = env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| env::var("RUST_LOG"))
        .ok()
        .and_then(|l| LevelFilter::from_str(&l).ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    match Directive::from_str(&format!("{RAW_EVENT_TARGET}=debug")) {
        Ok(cap) => filter.add_directive(cap),
        Err(_) => filter,
    }
}

/// Installs the subscriber: JSON lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON`, text otherwise.
pub fn init() {
    let json = env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
