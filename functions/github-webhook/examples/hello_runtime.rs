//! The floor for cold-start figures: a Lambda function that does nothing but echo its event,
//! on the same runtime crate and tokio flavor as the real functions. The cold-start benchmarks
//! time it beside them, so their ratio to it is measured in one run.
//!
//! Build: `cargo build --release --example hello_runtime -p github-webhook`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
