//! The CloudFormation custom resource that generates flavor-ci buildspecs and stores them in S3.

use std::sync::Arc;
use std::time::Duration;

use flavor_ci::nesting::BoundedJson;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[cfg(feature = "fault-injection")]
mod fault;
mod guard;
mod handler;
mod inflight;
mod respond;

use flavor_ci_aws::store::S3Store;
use handler::Deps;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    flavor_ci_aws::logging::init();
    inflight::install_panic_hook();

    let config = flavor_ci_aws::load_config(Duration::from_secs(20)).await;
    let deps = Arc::new(Deps {
        store: S3Store::new(flavor_ci_aws::s3_client(&config)),
        responder: respond::Responder::new()?,
        guard: guard::Guard::from_env(&config),
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<BoundedJson>| {
        handler::handle(deps.clone(), event)
    }))
    .await
}
