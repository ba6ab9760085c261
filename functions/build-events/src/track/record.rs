//! The run record's writes: a conditional read-change-write retried on conflict, and the open
//! marker the reconciler looks for.

use std::time::Duration;

use flavor_ci::layout::{open_run_key, run_key};
use flavor_ci::runs::{RUN_TAG, RunRecord};
use flavor_ci_aws::store::ObjectStore;
use flavor_ci_aws::undo::now_ms;
use lambda_runtime::tracing::{error, warn};

use super::{TrackError, WRITE_ATTEMPTS};
use crate::config::Config;
use crate::deps::{Deps, Ports};

pub(super) enum Updated<T> {
    NoRecord,
    Unchanged,
    Written(Box<RunRecord>, T),
}

/// Reads the run record of `batch`, lets `change` change it, and writes it back if it did,
/// only while nobody else wrote it in between.
pub(super) async fn update<P: Ports, T>(
    deps: &Deps<P>,
    config: &Config,
    batch: &str,
    mut change: impl FnMut(&mut RunRecord) -> Option<T>,
) -> Result<Updated<T>, TrackError> {
    let key = run_key(&config.root, batch);
    for attempt in 0..WRITE_ATTEMPTS {
        let Some((bytes, etag)) = deps.store.get_tagged(&config.bucket, &key).await? else {
            return Ok(Updated::NoRecord);
        };
        let mut record: RunRecord = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                error!(batch, error = %e, "the run record is not readable; it is left as it is");
                return Ok(Updated::NoRecord);
            }
        };
        let Some(value) = change(&mut record) else {
            return Ok(Updated::Unchanged);
        };
        let body = serde_json::to_vec(&record).unwrap_or_default();
        if deps
            .store
            .replace_if_unchanged(
                &config.bucket,
                &key,
                &body,
                "application/json",
                RUN_TAG,
                &etag,
            )
            .await?
        {
            return Ok(Updated::Written(Box::new(record), value));
        }
        // Someone else wrote first: read their update and apply ours on top.
        let pause = 5 * u64::from(attempt) + now_ms() % 15;
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Err(TrackError::Contended(batch.to_owned()))
}

/// Marks the run open, for the reconciler.
pub(super) async fn mark_open<P: Ports>(deps: &Deps<P>, config: &Config, batch: &str) {
    let key = open_run_key(&config.root, batch);
    if let Err(e) = deps
        .store
        .put(&config.bucket, &key, b"{}", "application/json", RUN_TAG)
        .await
    {
        warn!(batch, error = %e, "the run was not marked open; the reconciler will not see it");
    }
}

/// Removes the run's open marker.
pub(super) async fn close<P: Ports>(deps: &Deps<P>, config: &Config, batch: &str) {
    let key = open_run_key(&config.root, batch);
    if let Err(e) = deps.store.delete_under(&config.bucket, &key).await {
        warn!(batch, error = %e, "the run's open marker was not removed; the next reconcile tries again");
    }
}
