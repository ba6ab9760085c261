//! The green ledger's writer: a flavor that built green in a trusted run is recorded under its
//! input key (`green/<key>`), create-only (`If-None-Match`), so a duplicated event writes
//! nothing new. A record already there is replaced only by a green build that ended later, and
//! only while it is still the record that was read (`If-Match`; the bucket keeps the older
//! version): a key's evidence stays fresh, and a record that names no green build stops
//! blocking the one that does. Only this function may write there.

use flavor_ci::inputs::ledger::GreenRecord;
use flavor_ci::layout::green_key;
use flavor_ci::runs::RunRecord;
use flavor_ci_aws::store::{ObjectStore, Put};
use flavor_ci_aws::undo::now_ms;
use lambda_runtime::tracing::{info, warn};

use crate::config::Config;
use crate::deps::{Deps, Ports};

/// The tag of green records.
const GREEN_TAG: &str = "flavor-ci=green";

/// The record `flavor` of `run` earns, if it earns one: its build succeeded in this run (not
/// carried or skipped), the run is trusted, and the webhook gave the flavor a key.
pub(crate) fn green_record(run: &RunRecord, flavor: &str) -> Option<GreenRecord> {
    if !run.trusted || run.carried.contains(flavor) {
        return None;
    }
    let key = run.inputs.get(flavor)?;
    let build = run.builds.get(flavor)?;
    if build.status != "SUCCEEDED" {
        return None;
    }
    Some(GreenRecord {
        key: key.clone(),
        flavor: flavor.to_owned(),
        build_id: build.build_id.clone(),
        batch_id: run.batch_id.clone(),
        project: run.project.clone(),
        commit: run.commit.clone(),
        git_ref: run.git_ref.clone(),
        trigger: run.trigger,
        at: build.ended_at.unwrap_or_else(now_ms),
        seconds: build.seconds,
    })
}

/// Writes `flavor`'s green record when it earns one. A failure is logged: the ledger only ever
/// saves builds, so a missing record costs a rebuild, never a wrong result.
pub(crate) async fn record_green<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    run: &RunRecord,
    flavor: &str,
) {
    let Some(record) = green_record(run, flavor) else {
        return;
    };
    let key = green_key(&config.root, &record.key);
    let body = serde_json::to_vec(&record).unwrap_or_default();
    match deps
        .store
        .put_if_absent(&config.bucket, &key, &body, "application/json", GREEN_TAG)
        .await
    {
        Ok(Put::Created { .. }) => {
            info!(flavor, key = %record.key, build = %record.build_id, "recorded green");
        }
        Ok(Put::Existed) => refresh(deps, config, &key, &record, &body).await,
        Err(e) => {
            warn!(flavor, key = %record.key, error = %e, "the green record was not written");
        }
    }
}

/// Replaces the record at `at` with `record` when the one there ended earlier (or is not a
/// green record at all), and nobody replaced it meanwhile.
async fn refresh<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    at: &str,
    record: &GreenRecord,
    body: &[u8],
) {
    let (store, bucket) = (&deps.store, &config.bucket);
    let (existing, etag) = match store.get_tagged(bucket, at).await {
        Ok(Some(found)) => found,
        Ok(None) => return,
        Err(e) => {
            warn!(key = %record.key, error = %e, "the green record there could not be read");
            return;
        }
    };
    if let Ok(there) = serde_json::from_slice::<GreenRecord>(&existing)
        && (there.build_id == record.build_id || there.at >= record.at)
    {
        return;
    }
    match store
        .replace_if_unchanged(bucket, at, body, "application/json", GREEN_TAG, &etag)
        .await
    {
        Ok(true) => {
            info!(flavor = %record.flavor, key = %record.key, build = %record.build_id, "recorded green over an older record");
        }
        Ok(false) => {}
        Err(e) => warn!(key = %record.key, error = %e, "the older green record was not replaced"),
    }
}
