//! Superseded batches: per pull request or branch, the batches flavor-ci started and that may
//! still run are kept in one S3 object (`pushes/refs/…`, see `flavor_ci::layout::ref_key`).
//! A new batch for the ref replaces them there and stops them; closing a pull request stops
//! them without a new one.
//!
//! The record is swapped with conditional writes: created with `If-None-Match: *`, replaced
//! with `If-Match` on the ETag it was read with, and read again when another delivery wrote in
//! between. So two concurrent deliveries for one ref never both keep their batch: the one that
//! writes second stops the other's. (The role has no `s3:ListBucket`, so the record is only
//! read after a conditional create found it there.)

use flavor_ci::layout::{REF_TAG, ref_key, superseded_key};
use flavor_ci::runs::{RUN_TAG, Superseded};
use flavor_ci::settings::StopSuperseded;
use flavor_ci_aws::store::{ObjectStore, Put, StoreError};
use flavor_ci_aws::undo::now_ms;
use lambda_runtime::tracing::{info, warn};
use serde::{Deserialize, Serialize};

use crate::builds::Builds;

/// How often a swap is tried again after another delivery changed the record first.
const SWAP_ATTEMPTS: usize = 10;

/// One batch flavor-ci started for a ref.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunningBatch {
    pub(crate) id: String,
    pub(crate) commit: String,
    pub(crate) at: u64,
}

/// The stored record of one ref.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct RefRecord {
    #[serde(rename = "ref")]
    git_ref: String,
    batches: Vec<RunningBatch>,
}

/// Whether a batch of `git_ref` is stopped when a newer one starts. `default_branch` is the
/// repository's, when known; without it a branch is not stopped (it may be the default one).
pub(crate) fn applies(policy: StopSuperseded, git_ref: &str, default_branch: Option<&str>) -> bool {
    if git_ref.starts_with("refs/pull/") {
        return policy != StopSuperseded::None;
    }
    let Some(branch) = git_ref.strip_prefix("refs/heads/") else {
        // Tags build releases, which are never stopped.
        return false;
    };
    match policy {
        StopSuperseded::None => false,
        StopSuperseded::AllBranches => true,
        StopSuperseded::ExceptDefaultBranch => default_branch.is_some_and(|d| d != branch),
    }
}

/// What stopping the superseded batches did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Stopped {
    pub(crate) stopped: Vec<String>,
    /// Batches CodeBuild did not stop (most often: they had finished), with its answer.
    pub(crate) not_stopped: Vec<(String, String)>,
}

/// Makes `newest` the batch recorded for `git_ref` (none: the ref is done, e.g. a closed pull
/// request) and stops every batch it replaces. A batch that will not stop is not an error.
pub(crate) async fn replace_and_stop<S: ObjectStore, B: Builds>(
    store: &S,
    builds: &B,
    bucket: &str,
    root: &str,
    git_ref: &str,
    newest: Option<RunningBatch>,
) -> Result<Stopped, StoreError> {
    let by = match &newest {
        Some(b) => b.id.clone(),
        None => format!("the closing of {git_ref}"),
    };
    let replaced = swap(store, bucket, &ref_key(root, git_ref), git_ref, newest).await?;
    let mut out = Stopped::default();
    for batch in replaced {
        match builds.stop_batch(&batch.id).await {
            Ok(()) => {
                info!(batch = %batch.id, git_ref, "stopped a superseded batch");
                // `flavor-ci retry` tells a superseded run from a failed one by this marker.
                let marker = Superseded {
                    by: by.clone(),
                    at: now_ms(),
                    reason: None,
                };
                if let Err(e) = store
                    .put(
                        bucket,
                        &superseded_key(root, &batch.id),
                        &serde_json::to_vec(&marker).unwrap_or_default(),
                        "application/json",
                        RUN_TAG,
                    )
                    .await
                {
                    warn!(batch = %batch.id, error = %e, "a stopped batch was not marked superseded");
                }
                out.stopped.push(batch.id);
            }
            Err(e) => {
                info!(batch = %batch.id, git_ref, answer = %e, "a superseded batch was not stopped");
                out.not_stopped.push((batch.id, e.to_string()));
            }
        }
    }
    Ok(out)
}

/// Writes the record holding only `newest`; returns the batches it held before.
async fn swap<S: ObjectStore>(
    store: &S,
    bucket: &str,
    key: &str,
    git_ref: &str,
    newest: Option<RunningBatch>,
) -> Result<Vec<RunningBatch>, StoreError> {
    let record = RefRecord {
        git_ref: git_ref.to_owned(),
        batches: newest.iter().cloned().collect(),
    };
    let body = serde_json::to_vec(&record).unwrap_or_default();
    for _ in 0..SWAP_ATTEMPTS {
        if let Put::Created { .. } = store
            .put_if_absent(bucket, key, &body, "application/json", REF_TAG)
            .await?
        {
            return Ok(Vec::new());
        }
        // There is a record: read it, and replace it only if nobody wrote in between.
        let Some((bytes, etag)) = store.get_tagged(bucket, key).await? else {
            continue;
        };
        let before: RefRecord = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            warn!(key, error = %e, "an unreadable running-batches record is replaced");
            RefRecord::default()
        });
        if store
            .replace_if_unchanged(bucket, key, &body, "application/json", REF_TAG, &etag)
            .await?
        {
            let newest_id = newest.as_ref().map(|b| b.id.as_str());
            return Ok(before
                .batches
                .into_iter()
                .filter(|b| Some(b.id.as_str()) != newest_id)
                .collect());
        }
    }
    Err(StoreError {
        operation: "PutObject",
        bucket: bucket.into(),
        key: key.into(),
        code: Some("PreconditionFailed".into()),
        message: format!(
            "the running-batches record changed under {SWAP_ATTEMPTS} attempts in a row"
        ),
    })
}

/// A running batch started now.
pub(crate) fn started(id: &str, commit: &str) -> RunningBatch {
    RunningBatch {
        id: id.to_owned(),
        commit: commit.to_owned(),
        at: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flavor_ci_aws::store::memory::MemoryStore;

    use super::*;
    use crate::builds::recording::Recording;

    #[test]
    fn which_refs_are_superseded() {
        use StopSuperseded::{AllBranches, ExceptDefaultBranch};
        let main = Some("main");
        assert!(applies(ExceptDefaultBranch, "refs/pull/7/head", main));
        assert!(applies(ExceptDefaultBranch, "refs/heads/topic", main));
        assert!(!applies(ExceptDefaultBranch, "refs/heads/main", main));
        assert!(!applies(
            ExceptDefaultBranch,
            "refs/heads/topic",
            Option::None
        ));
        assert!(applies(AllBranches, "refs/heads/main", main));
        assert!(!applies(AllBranches, "refs/tags/v1", main));
        assert!(!applies(StopSuperseded::None, "refs/pull/7/head", main));
        assert!(!applies(StopSuperseded::None, "refs/heads/topic", main));
    }

    #[tokio::test]
    async fn each_new_batch_stops_the_ones_it_replaces_and_closing_stops_the_last() {
        let store = MemoryStore::default();
        let builds = Recording::default();
        let r = "refs/pull/7/head";
        let first = replace_and_stop(&store, &builds, "b", "root/", r, Some(started("ci:1", "a")))
            .await
            .unwrap();
        assert_eq!(first, Stopped::default());
        let second = replace_and_stop(&store, &builds, "b", "root/", r, Some(started("ci:2", "b")))
            .await
            .unwrap();
        assert_eq!(second.stopped, ["ci:1"]);
        // The same batch recorded again (a redelivery) stops nothing.
        let again = replace_and_stop(&store, &builds, "b", "root/", r, Some(started("ci:2", "b")))
            .await
            .unwrap();
        assert!(again.stopped.is_empty());
        let closed = replace_and_stop(&store, &builds, "b", "root/", r, None)
            .await
            .unwrap();
        assert_eq!(closed.stopped, ["ci:2"]);
        assert_eq!(*builds.stopped.lock().unwrap(), ["ci:1", "ci:2"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_deliveries_never_both_keep_their_batch() {
        // Rounds of 8 racing deliveries on four threads.
        for _round in 0..40 {
            let store = Arc::new(MemoryStore::default());
            let builds = Arc::new(Recording::default());
            let r = "refs/heads/topic";
            replace_and_stop(
                &*store,
                &*builds,
                "b",
                "root/",
                r,
                Some(started("ci:0", "a")),
            )
            .await
            .unwrap();
            let mut tasks = Vec::new();
            for i in 1..=8 {
                let (store, builds) = (store.clone(), builds.clone());
                tasks.push(tokio::spawn(async move {
                    replace_and_stop(
                        &*store,
                        &*builds,
                        "b",
                        "root/",
                        r,
                        Some(started(&format!("ci:{i}"), "c")),
                    )
                    .await
                    .unwrap()
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            // Every batch but the one recorded last was stopped, each exactly once.
            let stopped = builds.stopped.lock().unwrap().clone();
            let record: RefRecord =
                serde_json::from_str(&store.text("b", &ref_key("root/", r)).unwrap()).unwrap();
            assert_eq!(record.batches.len(), 1);
            let kept = &record.batches[0].id;
            let mut expected: Vec<String> = (0..=8)
                .map(|i| format!("ci:{i}"))
                .filter(|id| id != kept)
                .collect();
            let mut got = stopped;
            expected.sort();
            got.sort();
            assert_eq!(got, expected);
        }
    }
}
