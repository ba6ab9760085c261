//! The CloudFormation custom resource that generates flavor-ci buildspecs and stores them in S3.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[cfg(feature = "fault-injection")]
mod fault;
mod handler;
mod inflight;
mod respond;

use flavor_ci_aws::store::S3Store;
use handler::Deps;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    inflight::install_panic_hook();

    let config = flavor_ci_aws::load_config(Duration::from_secs(20)).await;
    let deps = Arc::new(Deps {
        store: S3Store::new(flavor_ci_aws::s3_client(&config)),
        responder: respond::Responder::new()?,
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        handler::handle(deps.clone(), event)
    }))
    .await
}
