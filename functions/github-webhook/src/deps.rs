//! What every request path shares: the dependencies built once per process, the deployed
//! settings (read once), and the removal of what a failed request wrote.

use std::sync::Arc;
use std::time::Duration;

use flavor_ci::layout::s3_uri;
use flavor_ci::settings::Settings;
use flavor_ci_aws::store::ObjectStore;
use flavor_ci_aws::undo::{UndoLog, Undone};
use lambda_runtime::tracing::warn;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::github::GitHub;
use crate::http::Reply;
use crate::secrets::Cached;

/// Everything a request needs; built once per process.
#[derive(Debug)]
pub(crate) struct Deps<S, B, K> {
    pub(crate) config: Result<Config, crate::config::ConfigError>,
    pub(crate) store: S,
    pub(crate) builds: B,
    pub(crate) webhook_secrets: Cached<K, Vec<Vec<u8>>>,
    pub(crate) github_token: Option<Cached<K, String>>,
    pub(crate) github: GitHub,
    pub(crate) statuses: flavor_ci_aws::github_status::StatusPoster,
    pub(crate) region: flavor_ci_aws::FromSdk<String>,
    pub(crate) settings: Mutex<Option<Arc<Settings>>>,
}

/// Posts the aggregate status on `commit`, when the stack posts statuses. A failure is
/// logged, never an error: the status does not decide whether builds run. Returns what the
/// answer reports.
pub(crate) async fn post_aggregate<S, B, K: crate::secrets::SecretSource>(
    deps: &Deps<S, B, K>,
    config: &Config,
    commit: &str,
    release: bool,
    text: &flavor_ci::runs::StatusText,
    target: Option<String>,
) -> Option<serde_json::Value> {
    use flavor_ci_aws::github_status::{CommitStatus, StatusState};
    let (Some(base), Some(token)) = (&config.status_context, &deps.github_token) else {
        return None;
    };
    // Release runs report under `<context>/release`: a tag on a commit the CI built never
    // overwrites the required check.
    let context = &if release {
        format!("{base}/release")
    } else {
        base.clone()
    };
    let status = CommitStatus {
        state: StatusState::from_name(text.state),
        context: context.clone(),
        description: text.description.clone(),
        target_url: target,
    };
    let posted = deps
        .statuses
        .post_with(token, &config.repository, commit, &status)
        .await;
    if let Err(e) = &posted {
        warn!(context, commit, error = %e, "the aggregate status was not posted");
    }
    Some(serde_json::json!({
        "context": context,
        "state": text.state,
        "description": status.description,
        "posted": posted.is_ok(),
    }))
}

/// Removes what a failed delivery wrote (nothing once its batch started).
pub(crate) async fn cleanup<S: ObjectStore>(store: &S, written: &UndoLog) {
    match written.undo(store, Duration::from_millis(1500)).await {
        Undone::Nothing | Undone::Removed(_) => {}
        Undone::Failed(e) => warn!(error = %e, "removing what a failed delivery wrote failed"),
        Undone::TimedOut => warn!("removing what a failed delivery wrote timed out"),
    }
}

/// The settings the stack deployed, read from S3 once per process.
pub(crate) async fn settings<S: ObjectStore, B, K>(
    deps: &Deps<S, B, K>,
    config: &Config,
) -> Result<Arc<Settings>, Reply> {
    let mut cached = deps.settings.lock().await;
    if let Some(s) = cached.as_ref() {
        return Ok(s.clone());
    }
    let location = s3_uri(&config.bucket, &config.settings_key);
    let bytes = deps
        .store
        .get(&config.bucket, &config.settings_key)
        .await
        .map_err(|e| Reply::error(503, format!("cannot read the deployed settings: {e}")))?
        .ok_or_else(|| {
            Reply::error(500, format!("the deployed settings {location} are missing: redeploy the stack, or set FLAVOR_CI_SETTINGS_KEY to the resource's SettingsKey"))
        })?;
    let invalid = |e: String| {
        Reply::error(
            500,
            format!("the deployed settings {location} are not valid: {e}; redeploy the stack"),
        )
    };
    let value = flavor_ci::nesting::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    let settings = Arc::new(Settings::from_json(value).map_err(|e| invalid(e.to_string()))?);
    *cached = Some(settings.clone());
    Ok(settings)
}
