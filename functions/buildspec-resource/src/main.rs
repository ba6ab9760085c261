//! The CloudFormation custom resource that generates flavor-ci buildspecs and stores them in S3.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[cfg(feature = "fault-injection")]
mod fault;
mod handler;
mod inflight;
mod respond;
mod store;

use handler::Deps;
use store::S3Store;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    inflight::install_panic_hook();

    let config = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(20))
                .build(),
        )
        .load()
        .await;
    // A local endpoint (moto, MinIO) needs path-style addressing.
    let local_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(local_endpoint)
        .build();
    let deps = Arc::new(Deps {
        store: S3Store::new(aws_sdk_s3::Client::from_conf(s3)),
        responder: respond::Responder::new()?,
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        handler::handle(deps.clone(), event)
    }))
    .await
}
