//! The operator commands' arguments: parsed in every build, so `flavor-ci health --help`
//! works and says how to get the commands when the build lacks them.

use std::path::PathBuf;

/// Where to find AWS, from the command line; unset parts come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AwsArgs {
    /// The AWS profile [default: AWS_PROFILE, else the default profile].
    #[arg(long, value_name = "NAME", global = true)]
    pub(crate) profile: Option<String>,
    /// The AWS region [default: AWS_REGION, else the profile's region].
    #[arg(long, value_name = "REGION", global = true)]
    pub(crate) region: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct HealthArgs {
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// A deployed flavor-ci stack: checks its status, bucket, projects and webhook secret.
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: Option<String>,
    /// A Secrets Manager secret (name or ARN) that must exist and be readable; repeat for more
    /// (the GitHub token, Docker Hub credentials).
    #[arg(long = "secret", value_name = "ID")]
    pub(crate) secrets: Vec<String>,
    /// The GitHub API the stack's webhook token is checked against (with --stack).
    #[arg(long, default_value = "https://api.github.com", value_name = "URL")]
    pub(crate) github_api_url: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// The stack's name.
    #[arg(
        long,
        default_value = "flavor-ci-source-credentials",
        value_name = "NAME"
    )]
    pub(crate) stack_name: String,
    /// The Secrets Manager secret holding the GitHub token (the token alone).
    #[arg(long, default_value = "flavor-ci/github-token", value_name = "NAME")]
    pub(crate) token_secret: String,
    /// Deploy this template instead of the built-in source-credentials.yaml.
    #[arg(long, value_name = "FILE")]
    pub(crate) template: Option<PathBuf>,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    pub(crate) timeout: u64,
    /// Seconds between looks at the stack's events.
    #[arg(long, default_value_t = 3.0, value_name = "SECONDS")]
    pub(crate) poll: f64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DispatchArgs {
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// The deployed flavor-ci stack whose webhook function runs the build.
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "function",
        conflicts_with = "function"
    )]
    pub(crate) stack: Option<String>,
    /// The webhook function itself (name or ARN), instead of --stack.
    #[arg(long, value_name = "NAME")]
    pub(crate) function: Option<String>,
    /// A branch (`release/1.x`, `refs/heads/…`) or a tag (`refs/tags/v1`) [default: the
    /// repository's default branch].
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) git_ref: Option<String>,
    /// Build only this flavor and the ones that depend on it (repeat for more) [default: all].
    #[arg(long = "flavor", short = 'f', value_name = "NAME")]
    pub(crate) flavors: Vec<String>,
    /// RELEASE_ID for a run of a tag [default: the tag].
    #[arg(long, value_name = "ID")]
    pub(crate) release_id: Option<String>,
    /// Build every asked-for flavor, even those whose identical inputs already built green
    /// (with `dispatches` in the settings' skip.on, a dispatch skips them otherwise).
    #[arg(long, conflicts_with = "redeliver")]
    pub(crate) force: bool,
    /// Instead of a run: handle this kept delivery again now (its delivery id, or its key as
    /// `status --deliveries` lists it), whatever its state.
    #[arg(long, value_name = "ID", conflicts_with_all = ["git_ref", "flavors", "release_id"])]
    pub(crate) redeliver: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").multiple(false).args(["commit", "git_ref", "pr", "batch"]))]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// The deployed flavor-ci stack.
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: String,
    /// The latest run of this commit (a prefix is enough).
    #[arg(long, value_name = "SHA")]
    pub(crate) commit: Option<String>,
    /// The latest run of this branch (`main`) or ref (`refs/tags/v1`).
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) git_ref: Option<String>,
    /// The latest run of this pull request.
    #[arg(long, value_name = "N")]
    pub(crate) pr: Option<u64>,
    /// The run of the merge group with this head commit (a prefix is enough).
    #[arg(long, value_name = "HEAD_SHA")]
    pub(crate) merge_group: Option<String>,
    /// The deliveries the webhook keeps: retrying after a transient fault, or given up, each
    /// with its reason and next attempt.
    #[arg(long, conflicts_with_all = ["commit", "git_ref", "pr", "batch", "merge_group"])]
    pub(crate) deliveries: bool,
    /// This batch build.
    #[arg(long, value_name = "ID")]
    pub(crate) batch: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RetryArgs {
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// The deployed flavor-ci stack.
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: String,
    /// The batch build whose failed builds to run again.
    #[arg(value_name = "BATCH")]
    pub(crate) batch: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LedgerArgs {
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// The deployed flavor-ci stack.
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: String,
    /// List only this flavor's records (repeat for more).
    #[arg(long = "flavor", short = 'f', value_name = "NAME")]
    pub(crate) flavors: Vec<String>,
    /// Remove the record of this input key (repeat for more): the next run that selects its
    /// flavor builds it again.
    #[arg(long, value_name = "KEY", conflicts_with_all = ["flavors", "json"])]
    pub(crate) forget: Vec<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}
