//! `flavor-ci`: generate and validate CodeBuild batch buildspecs for multi-flavor repositories.

use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod failure;
mod local;
mod ops;
mod outputs;
mod plan;
mod repo;

use local::{GenerateArgs, ValidateArgs};
use ops::Operation;
use repo::RepoArgs;

#[derive(Debug, Parser)]
#[command(
    name = "flavor-ci",
    version,
    about = "Generate and validate AWS CodeBuild batch buildspecs for repositories with one directory per flavor, and check and deploy what runs them",
    after_help = "Exit status: 0 success, 1 invalid input or a failed check or deployment, 2 usage error, 3 a file could not be read or written.\nThe AWS commands use the standard AWS environment: AWS_PROFILE, AWS_REGION, credentials, AWS_ENDPOINT_URL."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find the repository's flavors and write the CI and release buildspecs into a directory.
    Generate(GenerateArgs),
    /// Check buildspec files against the buildspec 0.2 schema and CodeBuild's batch rules, and
    /// CloudFormation templates through CloudFormation's ValidateTemplate plus a check of the
    /// settings and flavors their Custom::Buildspecs resources carry.
    Validate(ValidateArgs),
    /// List the repository's flavors with their build identifiers.
    Flavors(RepoArgs),
    /// Show which flavors a change builds and why, as the webhook decides: the working tree (or
    /// --head) against the merge base with the default branch (or --base), or a push delivery
    /// (--event); --out writes the batch buildspec the webhook would store.
    Plan(plan::PlanArgs),
    /// Check region, credentials, secrets, and a deployed stack's bucket and projects; prints
    /// PASS or FAIL with the fix per check.
    Health(ops::HealthArgs),
    /// Create or update the once-per-account stack of the GitHub source credential and follow
    /// its events.
    DeploySourceCredentials(ops::DeployArgs),
    /// Start a run by hand, as the nightly schedule does: the stack's webhook function builds
    /// the head of a branch or tag (every flavor, or the ones named); prints the batch id and
    /// its console link.
    Dispatch(ops::DispatchArgs),
    /// Show a run of a deployed stack: each flavor's build status, duration and log link, and a
    /// summary; exit 0 when all succeeded, 1 when any failed, 4 while any is running.
    Status(ops::StatusArgs),
    /// Run the failed builds of a failed batch again (RetryBuildBatch, failed builds only);
    /// refuses, saying why, a batch that is running, succeeded or was stopped.
    Retry(ops::RetryArgs),
    /// List a deployed stack's green ledger (the input keys that built green, with the build
    /// that proved each), or forget records (--forget KEY) so their flavors build again.
    Ledger(ops::LedgerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => local::run_generate(&args),
        Command::Validate(args) => local::run_validate(&args),
        Command::Flavors(args) => local::run_flavors(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Health(args) => ops::run(Operation::Health(args)),
        Command::DeploySourceCredentials(args) => ops::run(Operation::Deploy(args)),
        Command::Dispatch(args) => ops::run(Operation::Dispatch(args)),
        Command::Status(args) => ops::run(Operation::Status(args)),
        Command::Retry(args) => ops::run(Operation::Retry(args)),
        Command::Ledger(args) => ops::run(Operation::Ledger(args)),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(io::stderr(), "error: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}
