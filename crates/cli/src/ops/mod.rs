//! The operator commands: they call AWS with the standard environment (profile, region,
//! credentials, `AWS_ENDPOINT_URL`), print one line per step, and exit non-zero on failure.
//! They are compiled with the `aws` feature; without it each says how to install them.

use std::process::ExitCode;

use crate::failure::Failure;
#[cfg(feature = "aws")]
use crate::failure::{EXIT_INVALID, EXIT_IO};

mod args;
pub(crate) mod templates;

pub(crate) use args::{
    AwsArgs, DeployArgs, DispatchArgs, HealthArgs, LedgerArgs, RetryArgs, StatusArgs,
};

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "aws")]
pub(crate) mod deploy;
#[cfg(feature = "aws")]
pub(crate) mod dispatch;
#[cfg(feature = "aws")]
pub(crate) mod health;
#[cfg(feature = "aws")]
pub(crate) mod ledger;
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

/// An operator command, with its arguments (which a build without the `aws` feature only names).
#[derive(Debug)]
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub(crate) enum Operation {
    Health(HealthArgs),
    Deploy(DeployArgs),
    Dispatch(DispatchArgs),
    Status(StatusArgs),
    Retry(RetryArgs),
    Ledger(LedgerArgs),
}

impl Operation {
    /// The command's name on the command line.
    #[cfg(not(feature = "aws"))]
    fn name(&self) -> &'static str {
        match self {
            Operation::Health(_) => "health",
            Operation::Deploy(_) => "deploy-source-credentials",
            Operation::Dispatch(_) => "dispatch",
            Operation::Status(_) => "status",
            Operation::Retry(_) => "retry",
            Operation::Ledger(_) => "ledger",
        }
    }
}

/// Runs an operator command on a runtime of its own.
#[cfg(feature = "aws")]
pub(crate) fn run(operation: Operation) -> Result<ExitCode, Failure> {
    let done = |r: Result<(), String>| r.map(|()| ExitCode::SUCCESS).map_err(Failure::invalid);
    with_runtime(|| async move {
        match operation {
            Operation::Health(args) => Ok(if health::run(&args).await {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_INVALID)
            }),
            Operation::Deploy(args) => done(deploy::run(&args).await),
            Operation::Dispatch(args) => done(dispatch::run(&args).await),
            Operation::Status(args) => runs::status(&args).await.map_err(Failure::invalid),
            Operation::Retry(args) => done(runs::retry(&args).await),
            Operation::Ledger(args) => ledger::run(&args).await.map_err(Failure::invalid),
        }
    })
}

/// What a stack's ledger says of the keys `keys_for(project)` computes for the stack's CI
/// project: (flavor, key, what the ledger says).
#[cfg(feature = "aws")]
pub(crate) fn with_ledger<F>(
    aws: &AwsArgs,
    stack: &str,
    settings: &flavor_ci::settings::Settings,
    keys_for: F,
) -> Result<Vec<(String, String, String)>, Failure>
where
    F: FnOnce(&str) -> Result<Vec<(String, String)>, Failure>,
{
    let runtime = runtime().map_err(|e| Failure {
        status: EXIT_IO,
        message: format!("cannot start the async runtime: {e}"),
    })?;
    let (records, project) = runtime
        .block_on(ledger::open(aws, stack))
        .map_err(Failure::invalid)?;
    let keys = keys_for(&project)?;
    let said = runtime
        .block_on(ledger::explain(&records, &project, settings, &keys))
        .map_err(Failure::invalid)?;
    Ok(keys
        .into_iter()
        .zip(said)
        .map(|((flavor, key), (_, said))| (flavor, key, said))
        .collect())
}

/// Without the `aws` feature there is no stack to ask.
#[cfg(not(feature = "aws"))]
pub(crate) fn with_ledger<F>(
    _aws: &AwsArgs,
    _stack: &str,
    _settings: &flavor_ci::settings::Settings,
    _keys_for: F,
) -> Result<Vec<(String, String, String)>, Failure>
where
    F: FnOnce(&str) -> Result<Vec<(String, String)>, Failure>,
{
    Err(Failure::usage(without_aws("plan --stack")))
}

/// Without the `aws` feature: says how to get the command.
#[cfg(not(feature = "aws"))]
pub(crate) fn run(operation: Operation) -> Result<ExitCode, Failure> {
    Err(Failure::usage(without_aws(operation.name())))
}

/// Runs an async command on a runtime of its own.
#[cfg(feature = "aws")]
fn with_runtime<F, Fut>(command: F) -> Result<ExitCode, Failure>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<ExitCode, Failure>>,
{
    let runtime = runtime().map_err(|e| Failure {
        status: EXIT_IO,
        message: format!("cannot start the async runtime: {e}"),
    })?;
    runtime.block_on(command())
}

/// Checks the templates: CloudFormation's ValidateTemplate unless `offline`, then the
/// `Custom::Buildspecs` resources, every template reported also after one fails. Returns
/// whether all passed.
#[cfg(feature = "aws")]
pub(crate) fn check_templates(
    aws: &AwsArgs,
    offline: bool,
    parameters: &[(String, String)],
    templates: &[templates::TemplateFile],
) -> Result<bool, Failure> {
    let parameters = parameters.iter().cloned().collect();
    let passed = with_runtime(|| async move {
        let cfn = if offline {
            None
        } else {
            match validate::client(aws).await {
                Some(c) => Some(c),
                None => return Ok(ExitCode::from(EXIT_INVALID)),
            }
        };
        let mut ok = true;
        for t in templates {
            if let Some(cfn) = &cfn {
                ok &= validate::one(cfn, t).await;
            }
            ok &= templates::check(t, &parameters);
        }
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_INVALID)
        })
    })?;
    Ok(passed == ExitCode::SUCCESS)
}

/// Without the `aws` feature only `offline` checks are possible.
#[cfg(not(feature = "aws"))]
pub(crate) fn check_templates(
    _aws: &AwsArgs,
    offline: bool,
    parameters: &[(String, String)],
    templates: &[templates::TemplateFile],
) -> Result<bool, Failure> {
    if !offline {
        return Err(Failure::usage(format!(
            "{}; or pass --offline to check the templates' Custom::Buildspecs resources without CloudFormation",
            without_aws("validate")
        )));
    }
    let parameters = parameters.iter().cloned().collect();
    let mut ok = true;
    for t in templates {
        ok &= templates::check(t, &parameters);
    }
    Ok(ok)
}
