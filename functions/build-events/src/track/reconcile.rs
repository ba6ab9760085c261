//! The reconcile schedule: every open run brought in step with CodeBuild's view, finished runs
//! recorded, and reports that did not go out tried again.

use flavor_ci::layout::{open_run_batch, open_runs_prefix, run_key};
use flavor_ci::runs::RunRecord;
use flavor_ci_aws::store::ObjectStore;
use flavor_ci_aws::undo::now_ms;
use lambda_runtime::tracing::{error, info, warn};
use serde_json::{Value, json};

use super::{GIVE_UP_AFTER_MS, MAX_OPEN_RUNS, TrackError, catch_up, close, finish, report};
use crate::codebuild::{BatchView, Batches};
use crate::config::Config;
use crate::deps::{Deps, Ports};

/// Every open run: CodeBuild's view applied, finished runs recorded, reports that did not go
/// out tried again.
pub(crate) async fn reconcile<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    region: &str,
) -> Result<Value, TrackError> {
    let keys = deps
        .store
        .list_keys(
            &config.bucket,
            &open_runs_prefix(&config.root),
            MAX_OPEN_RUNS,
        )
        .await?;
    let batches: Vec<String> = keys
        .iter()
        .filter_map(|k| open_run_batch(&config.root, k))
        .collect();
    if batches.is_empty() {
        return Ok(json!({"open": 0}));
    }
    let views = deps.batches.describe(&batches, region).await?;
    let mut caught_up = Vec::new();
    let mut finished = Vec::new();
    let mut closed = Vec::new();
    for batch in &batches {
        if let Some(view) = views.iter().find(|v| &v.id == batch) {
            let changed = !catch_up(deps, config, view).await?.is_empty();
            if changed {
                caught_up.push(batch.clone());
            } else if view.status == "IN_PROGRESS" {
                // Still running, nothing new: the next event or reconcile takes it on.
                continue;
            }
        }
        let key = run_key(&config.root, batch);
        let record: Option<RunRecord> = deps
            .store
            .get(&config.bucket, &key)
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(record) = record else {
            warn!(batch, "an open run without a readable run record is closed");
            close(deps, config, batch).await;
            closed.push(batch.clone());
            continue;
        };
        let now = now_ms();
        match &record.finished {
            None => {
                let forgotten = !views.iter().any(|v| &v.id == batch)
                    && now.saturating_sub(record.started_at) > GIVE_UP_AFTER_MS;
                if finish(deps, config, batch, region).await?.is_some()
                    || (forgotten && end_forgotten(deps, config, batch, region).await?)
                {
                    finished.push(batch.clone());
                }
            }
            Some(f) if f.reported() => {
                close(deps, config, batch).await;
                closed.push(batch.clone());
            }
            Some(f) if now.saturating_sub(f.at) > GIVE_UP_AFTER_MS => {
                error!(
                    batch,
                    "the run's outcome could not be reported for a day; giving up"
                );
                close(deps, config, batch).await;
                closed.push(batch.clone());
            }
            Some(f)
                if u128::from(now.saturating_sub(f.at)) > config.reporting_grace.as_millis() =>
            {
                report(deps, config, record, region).await?;
                finished.push(batch.clone());
            }
            Some(_) => {}
        }
    }
    info!(
        open = batches.len(),
        ?caught_up,
        ?finished,
        ?closed,
        "reconciled"
    );
    Ok(json!({
        "open": batches.len(),
        "caughtUp": caught_up,
        "finished": finished,
        "closed": closed,
    }))
}

/// Ends the run of a batch CodeBuild no longer describes: what has no result gets none, so
/// its aggregate status does not wait forever. Returns whether the run finished.
async fn end_forgotten<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    batch: &str,
    region: &str,
) -> Result<bool, TrackError> {
    warn!(
        batch,
        "CodeBuild no longer knows this batch; its run ends without the missing results"
    );
    let gone = BatchView {
        id: batch.to_owned(),
        status: "UNKNOWN".into(),
        builds: Vec::new(),
    };
    catch_up(deps, config, &gone).await?;
    Ok(finish(deps, config, batch, region).await?.is_some())
}
