//! Keeping a run's record and its GitHub statuses in step with CodeBuild: one build's event,
//! the batch when its last event arrives, and every open run on the reconcile schedule.
//!
//! The run record (`runs/<batch id>.json`) is the one truth. Each change is a conditional
//! write (`If-Match`) retried on conflict, so concurrent events never lose each other's
//! updates; a state is applied only when it is newer than the recorded one, so an ended build
//! never goes back to running. Statuses are posted after the write, from what was written.

use std::time::Duration;

use flavor_ci::layout::{
    console_batch_url, open_run_batch, open_run_key, open_runs_prefix, run_key, superseded_key,
};
use flavor_ci::runs::{
    Applied, Finished, Progress, RUN_TAG, RunRecord, StatusText, aggregate_status, flavor_status,
    is_final, superseded_status,
};
use flavor_ci_aws::github_status::{CommitStatus, StatusState};
use flavor_ci_aws::secrets::SecretSource;
use flavor_ci_aws::store::{ObjectStore, StoreError};
use flavor_ci_aws::undo::now_ms;
use lambda_runtime::tracing::{error, info, warn};
use serde_json::{Value, json};

use crate::codebuild::{BatchView, Batches};
use crate::config::Config;
use crate::deps::Deps;
use crate::event::Report;
use crate::notify::Notifier;

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

enum Updated<T> {
    NoRecord,
    Unchanged,
    Written(Box<RunRecord>, T),
}

/// Reads the run record of `batch`, lets `change` change it, and writes it back if it did,
/// only while nobody else wrote it in between.
async fn update<S, C, K, N, T>(
    deps: &Deps<S, C, K, N>,
    config: &Config,
    batch: &str,
    mut change: impl FnMut(&mut RunRecord) -> Option<T>,
) -> Result<Updated<T>, TrackError>
where
    S: ObjectStore,
{
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

/// Posts one status on the run's commit; a failure is logged and returned as `false`, never
/// an error: statuses do not decide whether builds run.
pub(crate) async fn post<S, C, K: SecretSource, N>(
    deps: &Deps<S, C, K, N>,
    config: &Config,
    commit: &str,
    context: &str,
    text: &StatusText,
    target: Option<String>,
) -> bool {
    let Some(token) = &deps.token else {
        return true;
    };
    let status = CommitStatus {
        state: StatusState::from_name(text.state),
        context: context.to_owned(),
        description: text.description.clone(),
        target_url: target,
    };
    match deps
        .poster
        .post(token, &config.repository, commit, &status)
        .await
    {
        Ok(()) => {
            info!(
                context,
                state = text.state,
                commit,
                description = %status.description,
                "status posted"
            );
            true
        }
        Err(e) => {
            warn!(context, commit, error = %e, retried = e.retried, "the status was not posted");
            false
        }
    }
}

/// The aggregate status's context for `record`: the configured one for CI runs,
/// `<context>/release` for release runs, so a tag on a commit the CI built never overwrites the
/// required check.
fn run_context(config: &Config, record: &RunRecord) -> Option<String> {
    let base = config.status_context.as_ref()?;
    Some(
        if config.release_project.as_deref() == Some(record.project.as_str()) {
            format!("{base}/release")
        } else {
            base.clone()
        },
    )
}

fn flavor_context(config: &Config, record: &RunRecord, flavor: &str) -> Option<String> {
    run_context(config, record).map(|c| format!("{c}/{flavor}"))
}

/// Posts the status of `flavor` as `record` has it. A pending status that raced with a later
/// write is followed by the newer one, so GitHub ends with the record's state.
async fn post_flavor<S: ObjectStore, C, K: SecretSource, N>(
    deps: &Deps<S, C, K, N>,
    config: &Config,
    record: &RunRecord,
    flavor: &str,
    before: Option<StatusText>,
) -> Option<&'static str> {
    let context = flavor_context(config, record, flavor)?;
    let build = record.builds.get(flavor)?;
    let text = flavor_status(build);
    if before.as_ref() == Some(&text) || !config.flavor_statuses.posts(text.state) {
        // GitHub already shows this, or the stack posts no such status.
        return None;
    }
    let posted = post(
        deps,
        config,
        &record.commit,
        &context,
        &text,
        build.page.clone(),
    )
    .await;
    if posted && text.state == "pending" {
        let key = run_key(&config.root, &record.batch_id);
        if let Ok(Some(bytes)) = deps.store.get(&config.bucket, &key).await
            && let Ok(now) = serde_json::from_slice::<RunRecord>(&bytes)
            && let Some(newer) = now.builds.get(flavor).filter(|b| *b != build)
        {
            let text = flavor_status(newer);
            post(
                deps,
                config,
                &now.commit,
                &context,
                &text,
                newer.page.clone(),
            )
            .await;
            return Some(text.state);
        }
    }
    posted.then_some(text.state)
}

/// One build's event.
pub(crate) async fn on_report<S, C, K, N>(
    deps: &Deps<S, C, K, N>,
    config: &Config,
    report: Report,
    region: &str,
) -> Result<Value, TrackError>
where
    S: ObjectStore,
    C: Batches,
    K: SecretSource,
    N: Notifier,
{
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
async fn catch_up<S, C, K, N>(
    deps: &Deps<S, C, K, N>,
    config: &Config,
    view: &BatchView,
) -> Result<Vec<String>, TrackError>
where
    S: ObjectStore,
    K: SecretSource,
{
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
async fn finish<S, C, K, N>(
    deps: &Deps<S, C, K, N>,
    config: &Config,
    batch: &str,
    region: &str,
) -> Result<Option<Value>, TrackError>
where
    S: ObjectStore,
    K: SecretSource,
    N: Notifier,
{
    let superseded = deps
        .store
        .get(&config.bucket, &superseded_key(&config.root, batch))
        .await?
        .is_some();
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
async fn report<S, C, K, N>(
    deps: &Deps<S, C, K, N>,
    config: &Config,
    record: RunRecord,
    region: &str,
) -> Result<Value, TrackError>
where
    S: ObjectStore,
    K: SecretSource,
    N: Notifier,
{
    let Some(finished) = record.finished.clone() else {
        return Ok(Value::Null);
    };
    let text = if finished.superseded {
        superseded_status()
    } else {
        aggregate_status(record.flavors.len(), &finished.failed)
    };
    let page = console_batch_url(region, &record.project, &record.batch_id);
    let mut status_posted = finished.status_posted;
    if let (false, Some(context)) = (status_posted, run_context(config, &record)) {
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

/// The subject and text of a failure notification: the failed flavors with their links.
fn announcement(
    config: &Config,
    record: &RunRecord,
    finished: &Finished,
    page: &str,
) -> (String, String) {
    let what = match (record.trigger, record.git_ref.strip_prefix("refs/tags/")) {
        (flavor_ci::runs::RunTrigger::Schedule, _) => "scheduled run".to_owned(),
        (_, Some(tag)) => format!("tag {tag}"),
        _ => record
            .git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&record.git_ref)
            .to_owned(),
    };
    let names: Vec<&str> = finished.failed.iter().map(|(f, _)| f.as_str()).collect();
    let mut subject = format!(
        "flavor-ci: {} of {} flavors failed on {what} ({})",
        names.len(),
        record.flavors.len(),
        config.repository
    );
    // SNS subjects stop at 100 characters.
    if subject.chars().count() > 100 {
        subject = subject.chars().take(99).collect::<String>() + "…";
    }
    let mut message = format!(
        "{} of {} flavors failed in {} on {what}, commit {}.\nBatch: {page}\n\n",
        names.len(),
        record.flavors.len(),
        config.repository,
        record.commit
    );
    for (flavor, status) in &finished.failed {
        let build = record.builds.get(flavor);
        message.push_str(&format!(
            "{flavor}: {}\n  build: {}\n  logs: {}\n",
            build.map_or_else(|| status.to_lowercase(), |b| flavor_status(b).description),
            build.and_then(|b| b.page.as_deref()).unwrap_or("-"),
            build.and_then(|b| b.logs.as_deref()).unwrap_or("-"),
        ));
    }
    (subject, message)
}

/// Marks the run open, for the reconciler.
async fn mark_open<S: ObjectStore, C, K, N>(deps: &Deps<S, C, K, N>, config: &Config, batch: &str) {
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
async fn close<S: ObjectStore, C, K, N>(deps: &Deps<S, C, K, N>, config: &Config, batch: &str) {
    let key = open_run_key(&config.root, batch);
    if let Err(e) = deps.store.delete_under(&config.bucket, &key).await {
        warn!(batch, error = %e, "the run's open marker was not removed; the next reconcile tries again");
    }
}

/// Every open run: CodeBuild's view applied, finished runs recorded, reports that did not go
/// out tried again.
pub(crate) async fn reconcile<S, C, K, N>(
    deps: &Deps<S, C, K, N>,
    config: &Config,
    region: &str,
) -> Result<Value, TrackError>
where
    S: ObjectStore,
    C: Batches,
    K: SecretSource,
    N: Notifier,
{
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
                if finish(deps, config, batch, region).await?.is_some() {
                    finished.push(batch.clone());
                } else if !views.iter().any(|v| &v.id == batch)
                    && now.saturating_sub(record.started_at) > GIVE_UP_AFTER_MS
                {
                    // CodeBuild no longer describes the batch: what has no result gets none,
                    // and the run ends, so its aggregate status does not wait forever.
                    warn!(
                        batch,
                        "CodeBuild no longer knows this batch; its run ends without the missing results"
                    );
                    let gone = BatchView {
                        id: batch.clone(),
                        status: "UNKNOWN".into(),
                        builds: Vec::new(),
                    };
                    catch_up(deps, config, &gone).await?;
                    if finish(deps, config, batch, region).await?.is_some() {
                        finished.push(batch.clone());
                    }
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
