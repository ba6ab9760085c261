//! The operator commands: they call AWS with the standard environment (profile, region,
//! credentials, `AWS_ENDPOINT_URL`), print one line per step, and exit non-zero on failure.
//! They are compiled with the `aws` feature; without it each says how to install them.

mod args;
pub(crate) mod templates;

pub(crate) use args::{AwsArgs, DeployArgs, DispatchArgs, HealthArgs, RetryArgs, StatusArgs};

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "aws")]
pub(crate) mod deploy;
#[cfg(feature = "aws")]
pub(crate) mod dispatch;
#[cfg(feature = "aws")]
pub(crate) mod health;
#[cfg(feature = "aws")]
pub(crate) mod runs;
#[cfg(feature = "aws")]
pub(crate) mod validate;

#[cfg(feature = "aws")]
pub(crate) use aws::{aws_error, runtime};

/// What a build without the `aws` feature says when asked for a command that calls AWS.
#[cfg(not(feature = "aws"))]
pub(crate) fn without_aws(command: &str) -> String {
    format!(
        "`flavor-ci {command}` calls AWS, and this flavor-ci was built without the AWS commands; install them with `cargo install --locked --path crates/cli --features aws` (or run `cargo run --locked -p flavor-ci-cli --features aws -- {command} …`)"
    )
}
