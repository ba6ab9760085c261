//! The function's ports: the services a request talks to, built once per process. One trait
//! names their types (the AWS services in the function, in-memory ones in tests), so every
//! step takes one `Deps<P>`; one request's view of them is a [`Job`].

use std::fmt;
use std::sync::Arc;

use flavor_ci::layout::s3_uri;
use flavor_ci::settings::Settings;
use flavor_ci_aws::secrets::{Cached, SecretSource};
use flavor_ci_aws::store::ObjectStore;
use flavor_ci_aws::undo::UndoLog;
use tokio::sync::Mutex;

use crate::builds::Builds;
use crate::config::{Config, ConfigError};
use crate::github::Repository;
use crate::outcome::{Fault, Refusal};

/// The types of the services a request uses.
pub(crate) trait Ports: Send + Sync + fmt::Debug + 'static {
    /// Where specs and records are kept (S3).
    type Store: ObjectStore;
    /// Where batches start and stop (CodeBuild).
    type Builds: Builds;
    /// Where secret values come from (Secrets Manager).
    type Secrets: SecretSource;
    /// What the webhook reads from and posts to GitHub, and the App's deliveries.
    type GitHub: Repository + crate::github::AppHooks;
}

/// Everything a request needs; built once per process.
#[derive(Debug)]
pub(crate) struct Deps<P: Ports> {
    pub(crate) config: Result<Config, ConfigError>,
    pub(crate) store: P::Store,
    pub(crate) builds: P::Builds,
    pub(crate) webhook_secrets: Cached<P::Secrets, Vec<Vec<u8>>>,
    /// The repository hook's deliveries, for the sweep without an App (when a hook token is
    /// configured).
    pub(crate) repo_hook: Option<crate::repo_hook::RepoHook<P::Secrets>>,
    pub(crate) github: P::GitHub,
    pub(crate) region: flavor_ci_aws::FromSdk<String>,
    pub(crate) settings: Mutex<Option<Arc<Settings>>>,
}

/// One verified request's view of the function: its ports, its configuration, and the log
/// of what it wrote (removed again when it fails).
#[derive(Debug)]
pub(crate) struct Job<'a, P: Ports> {
    pub(crate) deps: &'a Deps<P>,
    pub(crate) config: &'a Config,
    pub(crate) written: &'a UndoLog,
}

impl<P: Ports> Clone for Job<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Ports> Copy for Job<'_, P> {}

impl<P: Ports> Job<'_, P> {
    /// The settings the stack deployed, read from S3 once per process.
    pub(crate) async fn settings(&self) -> Result<Arc<Settings>, Refusal> {
        let (deps, config) = (self.deps, self.config);
        let mut cached = deps.settings.lock().await;
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let location = s3_uri(&config.bucket, &config.settings_key);
        let bytes = deps
            .store
            .get(&config.bucket, &config.settings_key)
            .await
            .map_err(|e| {
                Refusal::new(
                    Fault::Unavailable,
                    format!("cannot read the deployed settings: {e}"),
                )
            })?
            .ok_or_else(|| {
                Refusal::new(Fault::Misconfigured, format!("the deployed settings {location} are missing: redeploy the stack, or set FLAVOR_CI_SETTINGS_KEY to the resource's SettingsKey"))
            })?;
        let invalid = |e: String| {
            Refusal::new(
                Fault::Misconfigured,
                format!("the deployed settings {location} are not valid: {e}; redeploy the stack"),
            )
        };
        let value = flavor_ci::nesting::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let settings = Arc::new(Settings::from_json(value).map_err(|e| invalid(e.to_string()))?);
        *cached = Some(settings.clone());
        Ok(settings)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! The ports in memory, for tests: an in-memory store, a recording CodeBuild, a GitHub
    //! stand-in, and any secret source.
    use std::marker::PhantomData;

    use flavor_ci_aws::store::memory::MemoryStore;

    use super::*;
    use crate::builds::recording::Recording;

    #[derive(Debug)]
    pub(crate) struct Fake<K>(PhantomData<K>);

    impl<K: SecretSource> Ports for Fake<K> {
        type Store = MemoryStore;
        type Builds = Recording;
        type Secrets = K;
        type GitHub = crate::github::stand_in::StandIn;
    }
}
