//! The dependencies built once per process.

use flavor_ci_aws::github_status::StatusPoster;
use flavor_ci_aws::secrets::Cached;

use crate::config::{Config, ConfigError};

/// Everything an event needs; built once per process.
#[derive(Debug)]
pub(crate) struct Deps<S, C, K, N> {
    pub(crate) config: Result<Config, ConfigError>,
    pub(crate) store: S,
    pub(crate) batches: C,
    /// `None` when no statuses are posted.
    pub(crate) token: Option<Cached<K, String>>,
    pub(crate) poster: StatusPoster,
    pub(crate) notifier: N,
    pub(crate) region: flavor_ci_aws::FromSdk<String>,
}
