//! The repository's own webhook, for the sweep of a stack without a GitHub App: its recent
//! deliveries (`GET /repos/{repo}/hooks/{hook_id}/deliveries`) and a redelivery (`POST
//! .../deliveries/{id}/attempts`), with a token that may read and redeliver the hook
//! (fine-grained: Webhooks read and write; classic: `admin:repo_hook`), read from the secret
//! `HOOK_TOKEN_SECRET_ID`. The hook's id is learned from the deliveries themselves
//! (`X-GitHub-Hook-ID`) and kept at `pushes/hook.json`.

use flavor_ci::layout::DELIVERY_TAG;
use flavor_ci_aws::github::{Call, GitHubClient};
use flavor_ci_aws::secrets::{Cached, SecretSource};
use flavor_ci_aws::store::ObjectStore;
use lambda_runtime::tracing::warn;
use tokio::sync::Mutex;

use crate::fault::Fault;
use crate::github::{ApiError, HookDelivery};

/// What the hook's endpoints need of the token.
const HOOK_PERMISSION: &str = "Webhooks: Read and write (classic: admin:repo_hook)";

/// The repository hook's deliveries, read with the hook token.
#[derive(Debug)]
pub(crate) struct RepoHook<K> {
    pub(crate) client: GitHubClient,
    pub(crate) token: Cached<K, String>,
    /// The hook id this process last recorded.
    pub(crate) recorded: Mutex<Option<u64>>,
}

/// Where the hook's id is kept.
pub(crate) fn hook_key(root: &str) -> String {
    format!("{root}pushes/hook.json")
}

/// Records the id of the repository hook a verified delivery came through, once per process
/// (and again if it changes).
pub(crate) async fn record_hook_id<K: SecretSource, S: ObjectStore>(
    hook: &RepoHook<K>,
    store: &S,
    bucket: &str,
    root: &str,
    id: u64,
) {
    let mut recorded = hook.recorded.lock().await;
    if *recorded == Some(id) {
        return;
    }
    let body = serde_json::json!({"hookId": id}).to_string();
    match store
        .put(
            bucket,
            &hook_key(root),
            body.as_bytes(),
            "application/json",
            DELIVERY_TAG,
        )
        .await
    {
        Ok(_) => *recorded = Some(id),
        Err(e) => warn!(error = %e, "the repository hook's id was not recorded"),
    }
}

/// The hook id the deliveries named, as recorded.
pub(crate) async fn hook_id<S: ObjectStore>(
    store: &S,
    bucket: &str,
    root: &str,
) -> Result<Option<u64>, ApiError> {
    let bytes = store
        .get(bucket, &hook_key(root))
        .await
        .map_err(|e| ApiError {
            fault: Fault::Unavailable,
            message: e.to_string(),
            github_status: 0,
        })?;
    Ok(bytes
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["hookId"].as_u64()))
}

impl<K: SecretSource> RepoHook<K> {
    /// One page of the hook's deliveries, newest first, and the next page's path.
    pub(crate) async fn deliveries(
        &self,
        repo: &str,
        hook: u64,
        page: Option<&str>,
    ) -> Result<(Vec<HookDelivery>, Option<String>), ApiError> {
        let first = format!("/repos/{repo}/hooks/{hook}/deliveries?per_page=100");
        let path = page.unwrap_or(&first);
        let answer = self.send(Call::get(path, HOOK_PERMISSION)).await?;
        crate::github::deliveries_page(&answer, self.client.base())
    }

    /// Asks GitHub to deliver attempt `id` of the hook again.
    pub(crate) async fn redeliver(&self, repo: &str, hook: u64, id: u64) -> Result<(), ApiError> {
        let path = format!("/repos/{repo}/hooks/{hook}/deliveries/{id}/attempts");
        self.send(Call::post(&path, b"", HOOK_PERMISSION))
            .await
            .map(|_| ())
    }

    async fn send(&self, call: Call<'_>) -> Result<flavor_ci_aws::github::Answer, ApiError> {
        let hint = format!("; the hook token needs {HOOK_PERMISSION}");
        crate::github::send_checked(&self.client, &self.token, &call, &hint).await
    }
}
