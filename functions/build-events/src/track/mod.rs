//! Keeping a run's record and its GitHub statuses or check runs in step with CodeBuild: one build's event,
//! the batch when its last event arrives, and every open run on the reconcile schedule.
//!
//! The run record (`runs/<batch id>.json`) is the one truth. Each change is a conditional
//! write (`If-Match`) retried on conflict, so concurrent events never lose each other's
//! updates; a state is applied only when it is newer than the recorded one, so an ended build
//! never goes back to running. Statuses are posted after the write, from what was written.

use flavor_ci::layout::{console_batch_url, superseded_key};
use flavor_ci::runs::{
    Applied, Finished, Progress, RunRecord, StatusText, Superseded, aggregate_status,
    flavor_status, is_final, stopped_status,
};
use flavor_ci_aws::store::{ObjectStore, StoreError};
use flavor_ci_aws::undo::now_ms;
use lambda_runtime::tracing::{info, warn};
use serde_json::{Value, json};

use crate::codebuild::{BatchView, Batches};
use crate::config::Config;
use crate::deps::{Deps, Ports};
use crate::event::Report;
use crate::notify::Notifier;

mod checks;
mod ledger;
mod notification;
mod reconcile;
mod record;
mod statuses;

use notification::announcement;
pub(crate) use reconcile::reconcile;
use record::{Updated, close, mark_open, update};
use statuses::{post, run_context};

/// How often a conditional write is tried before the event is handed back for a retry.
const WRITE_ATTEMPTS: u32 = 10;
/// A finished run whose aggregate status could not be posted for this long is given up on.
const GIVE_UP_AFTER_MS: u64 = 24 * 3600 * 1000;
/// Open runs looked at per reconcile.
const MAX_OPEN_RUNS: usize = 1000;

/// What a failed step tells Lambda: the event is retried, then sent to the on-failure
/// destination.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrackError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    CodeBuild(#[from] crate::codebuild::CodeBuildError),
    #[error(
        "the run record of {0} kept changing during {WRITE_ATTEMPTS} attempts to update it; the event will be retried"
    )]
    Contended(String),
}

/// Reports `flavor` as `record` has it: its check run (a GitHub App) or its status; the state
/// GitHub now shows, when something was written.
async fn post_flavor<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    record: &RunRecord,
    flavor: &str,
    before: Option<StatusText>,
) -> Option<&'static str> {
    ledger::record_green(deps, config, record, flavor).await;
    if config.app.is_some() {
        checks::post_flavor(deps, config, record, flavor, before).await
    } else {
        statuses::post_flavor(deps, config, record, flavor, before).await
    }
}

/// One build's event.
pub(crate) async fn on_report<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    report: Report,
    region: &str,
) -> Result<Value, TrackError> {
    let ignored = |why: String| {
        info!(build = %report.build_id, why, "event ignored");
        Ok(json!({"build": report.build_id, "ignored": why}))
    };
    if !config.is_ours(&report.project) {
        return ignored(format!(
            "project {} is not one of this stack's projects",
            report.project
        ));
    }
    let batch = match &report.batch_id {
        Some(b) => b.clone(),
        None => match deps.batches.batch_of(&report.build_id).await? {
            Some(b) => b,
            None => return ignored("the build is not part of a batch build".into()),
        },
    };
    // Our buildspecs set FLAVOR; without it, the batch task's identifier names the flavor.
    let identifier = match &report.flavor {
        Some(_) => None,
        None => deps
            .batches
            .describe(std::slice::from_ref(&batch), region)
            .await?
            .into_iter()
            .flat_map(|v| v.builds)
            .find(|(_, b)| b.build_id == report.build_id)
            .map(|(identifier, _)| identifier),
    };
    let mut outcome = "changed";
    let updated = update(deps, config, &batch, |record| {
        let Some(flavor) = record.flavor_of(report.flavor.as_deref(), identifier.as_deref()) else {
            outcome = "not a flavor of the run";
            return None;
        };
        let before = record.builds.get(&flavor).map(flavor_status);
        match record.apply(&flavor, report.state.clone()) {
            Applied::Changed { reopened } => Some((flavor, reopened, before)),
            Applied::Stale(why) => {
                outcome = why;
                None
            }
            Applied::UnknownFlavor => {
                outcome = "not a flavor of the run";
                None
            }
        }
    })
    .await?;
    let (record, (flavor, reopened, before)) = match updated {
        Updated::NoRecord => {
            return ignored(format!(
                "batch {batch} has no run record: flavor-ci's webhook did not start it"
            ));
        }
        Updated::Unchanged => {
            info!(batch, build = %report.build_id, status = %report.state.status, why = outcome, "nothing to change");
            return Ok(json!({"batch": batch, "build": report.build_id, "unchanged": outcome}));
        }
        Updated::Written(record, value) => (record, value),
    };
    if reopened {
        mark_open(deps, config, &batch).await;
    }
    let mut answer = json!({"batch": batch, "flavor": flavor, "status": report.state.status});
    if let Some(state) = post_flavor(deps, config, &record, &flavor, before).await {
        answer["posted"] = state.into();
    }
    if is_final(&report.state.status) {
        let done = match record.progress() {
            Progress::Ended { .. } => finish(deps, config, &batch, region).await?,
            // Other builds' events may have been lost: once the batch has ended, CodeBuild's
            // view fills them in.
            Progress::Open { .. } => {
                let views = deps
                    .batches
                    .describe(std::slice::from_ref(&batch), region)
                    .await?;
                match views.into_iter().find(|v| v.status != "IN_PROGRESS") {
                    Some(view) => {
                        catch_up(deps, config, &view).await?;
                        finish(deps, config, &batch, region).await?
                    }
                    None => None,
                }
            }
        };
        if let Some(finished) = done {
            answer["finished"] = finished;
        }
    }
    Ok(answer)
}

/// Applies CodeBuild's view of a batch to its record and posts what changed; the flavors that
/// changed.
async fn catch_up<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    view: &BatchView,
) -> Result<Vec<String>, TrackError> {
    let updated = update(deps, config, &view.id, |record| {
        let changed: Vec<(String, Option<StatusText>)> = view
            .builds
            .iter()
            .filter_map(|(identifier, state)| {
                let flavor = record.flavor_of(None, Some(identifier))?;
                let before = record.builds.get(&flavor).map(flavor_status);
                matches!(
                    record.apply(&flavor, state.clone()),
                    Applied::Changed { .. }
                )
                .then_some((flavor, before))
            })
            .collect();
        // Once the batch has ended, flavors that never got a result end with it.
        let settled = record.settle(&view.status, now_ms()).into_iter().map(|f| {
            let before = None;
            (f, before)
        });
        let changed: Vec<(String, Option<StatusText>)> =
            changed.into_iter().chain(settled).collect();
        (!changed.is_empty()).then_some(changed)
    })
    .await?;
    let Updated::Written(record, changed) = updated else {
        return Ok(Vec::new());
    };
    if record.finished.is_none() && matches!(record.progress(), Progress::Open { .. }) {
        mark_open(deps, config, &view.id).await;
    }
    let mut flavors = Vec::new();
    for (flavor, before) in changed {
        post_flavor(deps, config, &record, &flavor, before).await;
        flavors.push(flavor);
    }
    info!(batch = %view.id, changed = ?flavors, "caught up with CodeBuild");
    Ok(flavors)
}

/// Records the outcome of a run whose builds all ended, then reports it. `None` when the run
/// has not ended or another handler records it.
async fn finish<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    batch: &str,
    region: &str,
) -> Result<Option<Value>, TrackError> {
    let marker = deps
        .store
        .get(&config.bucket, &superseded_key(&config.root, batch))
        .await?;
    let superseded = marker.is_some();
    let stopped_for = marker
        .and_then(|b| serde_json::from_slice::<Superseded>(&b).ok())
        .and_then(|s| s.reason);
    let updated = update(deps, config, batch, |record| {
        if record.finished.is_some() {
            return None;
        }
        let Progress::Ended { succeeded, failed } = record.progress() else {
            return None;
        };
        // A superseded run's stopped builds are no failure worth a message.
        let superseded = superseded && !succeeded;
        record.finished = Some(Finished {
            succeeded,
            failed,
            at: now_ms(),
            status_posted: config.status_context.is_none(),
            announced: succeeded
                || superseded
                || config.topic.is_none()
                || !record.announces_failure(),
            stopped_for: stopped_for.clone().filter(|_| superseded),
            superseded,
        });
        Some(())
    })
    .await?;
    match updated {
        Updated::Written(record, ()) => report(deps, config, *record, region).await.map(Some),
        _ => Ok(None),
    }
}

/// Posts the aggregate status and sends the notification of a finished run, records what went
/// out, and closes the run once both did.
async fn report<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    record: RunRecord,
    region: &str,
) -> Result<Value, TrackError> {
    let Some(finished) = record.finished.clone() else {
        return Ok(Value::Null);
    };
    let text = if finished.superseded {
        stopped_status(finished.stopped_for.as_deref())
    } else {
        aggregate_status(record.flavors.len(), &finished.failed)
    };
    let page = console_batch_url(region, &record.project, &record.batch_id);
    let mut status_posted = finished.status_posted;
    if !status_posted && config.app.is_some() {
        status_posted =
            checks::complete_aggregate(deps, config, &record, &finished, &text, &page).await;
    } else if let (false, Some(context)) = (status_posted, run_context(config, &record)) {
        status_posted = post(
            deps,
            config,
            &record.commit,
            &context,
            &text,
            Some(page.clone()),
        )
        .await;
    }
    let mut announced = finished.announced;
    if let (false, Some(topic)) = (announced, &config.topic) {
        let (subject, message) = announcement(config, &record, &finished, &page);
        match deps.notifier.publish(topic, &subject, &message).await {
            Ok(()) => {
                info!(batch = %record.batch_id, topic, "failure announced");
                announced = true;
            }
            Err(e) => {
                warn!(batch = %record.batch_id, topic, error = %e, "the failure was not announced")
            }
        }
    }
    if (status_posted, announced) != (finished.status_posted, finished.announced) {
        update(deps, config, &record.batch_id, |r| {
            let f = r.finished.as_mut()?;
            f.status_posted |= status_posted;
            f.announced |= announced;
            Some(())
        })
        .await?;
    }
    if status_posted && announced {
        close(deps, config, &record.batch_id).await;
    }
    Ok(json!({
        "succeeded": finished.succeeded,
        "state": text.state,
        "description": text.description,
        "statusPosted": status_posted,
        "announced": announced,
    }))
}

#[cfg(test)]
pub(crate) fn state(
    id: &str,
    status: &str,
    started: u64,
    reported: u64,
) -> flavor_ci::runs::BuildState {
    flavor_ci::runs::BuildState {
        build_id: id.into(),
        status: status.into(),
        phase: None,
        failed_phase: None,
        started_at: Some(started),
        ended_at: None,
        seconds: None,
        compute_type: None,
        logs: None,
        page: None,
        reported_at: reported,
    }
}
