//! The function's ports: the services an event talks to, built once per process. One trait
//! names their types (the AWS services in the function, in-memory ones in tests), so every
//! step takes one `Deps<P>`.

use std::fmt;

use flavor_ci_aws::github::app::Credentials;
use flavor_ci_aws::github::checks::CheckRuns;
use flavor_ci_aws::github_status::StatusPoster;
use flavor_ci_aws::secrets::SecretSource;
use flavor_ci_aws::store::ObjectStore;

use crate::codebuild::Batches;
use crate::config::{Config, ConfigError};
use crate::logs::Logs;
use crate::notify::Notifier;

/// The types of the services an event uses.
pub(crate) trait Ports: Send + Sync + fmt::Debug + 'static {
    /// The run records (S3).
    type Store: ObjectStore;
    /// The batches and builds (CodeBuild).
    type Batches: Batches;
    /// The GitHub token or the App's key (Secrets Manager).
    type Secrets: SecretSource;
    /// Failure notifications (SNS).
    type Notifier: Notifier;
    /// The builds' logs (CloudWatch Logs).
    type Logs: Logs;
}

/// Everything an event needs; built once per process.
#[derive(Debug)]
pub(crate) struct Deps<P: Ports> {
    pub(crate) config: Result<Config, ConfigError>,
    pub(crate) store: P::Store,
    pub(crate) batches: P::Batches,
    /// How GitHub is written to: nothing, a token (statuses), the App (check runs).
    pub(crate) github: Credentials<P::Secrets>,
    pub(crate) poster: StatusPoster,
    pub(crate) checks: CheckRuns,
    pub(crate) notifier: P::Notifier,
    pub(crate) logs: P::Logs,
    pub(crate) region: flavor_ci_aws::FromSdk<String>,
}
