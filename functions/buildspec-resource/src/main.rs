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

use handler::Deps;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    flavor_ci_aws::logging::init();
    inflight::install_panic_hook();

    // Built on first use: the cold start reaches its first request for work without loading
    // the SDK configuration (and the root certificates with it).
    let sdk = flavor_ci_aws::LazySdk::new(Duration::from_secs(20));
    let deps = Arc::new(Deps {
        store: flavor_ci_aws::store::s3(sdk.clone()),
        responder: respond::Responder::new()?,
        guard: guard::Guard::from_env(&sdk),
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<BoundedJson>| {
        handler::handle(deps.clone(), event)
    }))
    .await
}
