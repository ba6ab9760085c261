//! The check runs of a run (the GitHub App reporting mode): one per flavor,
//! `<context> / <flavor>`, and the aggregate `<context>`, the one branch protection requires.
//!
//! A flavor's check run is written at most three times: created (by the webhook, queued), when
//! its build starts, and when it ends. The aggregate is completed once the run ends. What is
//! written follows the run record, written first: nothing flips back, and a check run the
//! webhook did not create is created here and its id recorded.

use flavor_ci::layout::run_key;
use flavor_ci::runs::checks::{
    Conclusion, LOG_TAIL_LINES, RERUN_FAILED, aggregate_summary, external_id, flavor_check_name,
    flavor_summary,
};
use flavor_ci::runs::{BuildState, Finished, RunRecord, StatusText, flavor_status};
use flavor_ci_aws::github::checks::{Action, CheckRun, CheckState, Output};
use flavor_ci_aws::store::ObjectStore;
use lambda_runtime::tracing::{info, warn};

use super::record::{Updated, update};
use super::statuses::run_context;
use crate::codebuild::{Batches, BuildDetails};
use crate::config::Config;
use crate::deps::{Deps, Ports};
use crate::logs::Logs;

/// Which of a run's check runs.
#[derive(Debug, Clone, Copy)]
enum Which<'a> {
    Aggregate,
    Flavor(&'a str),
}

/// Writes `flavor`'s check run as `record` has it; returns the state written. A check run
/// marked in progress that raced with the build's end is followed by the newer state, so
/// GitHub ends with the record's.
pub(super) async fn post_flavor<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    record: &RunRecord,
    flavor: &str,
    before: Option<StatusText>,
) -> Option<&'static str> {
    let build = record.builds.get(flavor)?;
    let text = flavor_status(build);
    // A check run that exists is always carried to its end; `FlavorChecks` decides which
    // are created here.
    let exists = record
        .checks
        .as_ref()
        .is_some_and(|c| c.flavors.contains_key(flavor));
    if before.as_ref() == Some(&text) || !(exists || config.flavor_checks.posts(text.state)) {
        return None;
    }
    let written = write_flavor(deps, config, record, flavor, build).await?;
    if text.state == "pending" {
        let key = run_key(&config.root, &record.batch_id);
        if let Ok(Some(bytes)) = deps.store.get(&config.bucket, &key).await
            && let Ok(now) = serde_json::from_slice::<RunRecord>(&bytes)
            && let Some(newer) = now.builds.get(flavor).filter(|b| *b != build)
        {
            return write_flavor(deps, config, &now, flavor, newer).await;
        }
    }
    Some(written)
}

/// Writes one flavor's check run from `build`; the state written.
async fn write_flavor<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    record: &RunRecord,
    flavor: &str,
    build: &BuildState,
) -> Option<&'static str> {
    let context = run_context(config, record)?;
    let conclusion = Conclusion::of_build(&build.status);
    let (state, output) = match conclusion {
        None => (
            CheckState::InProgress,
            Output {
                title: format!("building ({})", build.phase.as_deref().unwrap_or("started")),
                summary: format!(
                    "CodeBuild build `{}` is running. Why it builds: {}",
                    build.build_id,
                    record.why(flavor)
                ),
                text: None,
            },
        ),
        Some(c) => (
            CheckState::Completed(c.as_str()),
            Output {
                title: flavor_title(build, c),
                summary: completed_summary(deps, build, c).await,
                text: None,
            },
        ),
    };
    let run = CheckRun {
        name: flavor_check_name(&context, flavor),
        head_sha: record.commit.clone(),
        state,
        external_id: Some(external_id(&record.batch_id, Some(flavor))),
        details_url: build.page.clone(),
        output: Some(output),
        actions: Vec::new(),
    };
    let id = record
        .checks
        .as_ref()
        .and_then(|c| c.flavors.get(flavor))
        .copied();
    write(deps, config, record, Which::Flavor(flavor), id, &run)
        .await
        .then(|| conclusion.map_or("in_progress", Conclusion::as_str))
}

fn flavor_title(build: &BuildState, conclusion: Conclusion) -> String {
    let took = build
        .seconds
        .map(|s| format!(" in {}", flavor_ci::runs::duration(s)))
        .unwrap_or_default();
    match (conclusion, &build.failed_phase) {
        (Conclusion::Success, _) => format!("built{took}"),
        (Conclusion::Cancelled, _) => "stopped".into(),
        (Conclusion::TimedOut, _) => format!("timed out{took}"),
        (Conclusion::Failure, Some(phase)) => format!("failed in {phase}{took}"),
        (Conclusion::Failure, None) => format!("failed{took}"),
    }
}

/// An ended build's summary: its phases, and for a failure CodeBuild's message and the tail of
/// its log. What cannot be read is said, never an error: the check run still ends.
async fn completed_summary<P: Ports>(
    deps: &Deps<P>,
    build: &BuildState,
    conclusion: Conclusion,
) -> String {
    let details = match deps.batches.details(&build.build_id).await {
        Ok(d) => d.unwrap_or_default(),
        Err(e) => {
            warn!(build = %build.build_id, error = %e, "the build's phases were not read");
            BuildDetails::default()
        }
    };
    let failed = matches!(conclusion, Conclusion::Failure | Conclusion::TimedOut);
    let mut note = None;
    let log = match (&details.log, failed) {
        (Some((group, stream)), true) => {
            match deps.logs.tail(group, stream, LOG_TAIL_LINES).await {
                Ok(text) => Some(text),
                Err(e) => {
                    warn!(build = %build.build_id, error = %e, "the build's log was not read");
                    note = Some(format!("\n_The log could not be read: {e}_\n"));
                    None
                }
            }
        }
        _ => None,
    };
    let mut summary = flavor_summary(build, &details.phases, log.as_deref());
    if let Some(note) = note {
        summary.push_str(&note);
    }
    summary
}

/// Completes the aggregate check run of a finished run; whether it was written.
pub(super) async fn complete_aggregate<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    record: &RunRecord,
    finished: &Finished,
    text: &StatusText,
    page: &str,
) -> bool {
    let Some(context) = run_context(config, record) else {
        return true;
    };
    let conclusion = if finished.superseded {
        Conclusion::Cancelled
    } else if finished.succeeded {
        Conclusion::Success
    } else if !finished.failed.is_empty() && finished.failed.iter().all(|(_, s)| s == "TIMED_OUT") {
        Conclusion::TimedOut
    } else {
        Conclusion::Failure
    };
    let actions = match conclusion {
        Conclusion::Failure | Conclusion::TimedOut => vec![Action {
            label: RERUN_FAILED.label.into(),
            description: RERUN_FAILED.description.into(),
            identifier: RERUN_FAILED.identifier.into(),
        }],
        _ => Vec::new(),
    };
    let run = CheckRun {
        name: context,
        head_sha: record.commit.clone(),
        state: CheckState::Completed(conclusion.as_str()),
        external_id: Some(external_id(&record.batch_id, None)),
        details_url: Some(page.to_owned()),
        output: Some(Output {
            title: text.description.clone(),
            summary: aggregate_summary(record),
            text: None,
        }),
        actions,
    };
    let id = record.checks.as_ref().and_then(|c| c.aggregate);
    write(deps, config, record, Which::Aggregate, id, &run).await
}

/// Updates check run `id`, or creates it and records its id; whether GitHub took it. A failure
/// is logged: check runs do not decide whether builds run, and the reconciler retries the
/// aggregate.
async fn write<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    record: &RunRecord,
    which: Which<'_>,
    id: Option<u64>,
    run: &CheckRun,
) -> bool {
    let repo = &config.repository;
    let written = match id {
        Some(id) => deps
            .checks
            .update(&deps.github, repo, id, run)
            .await
            .map(|()| id),
        None => deps.checks.create(&deps.github, repo, run).await,
    };
    let id_now = match written {
        Ok(id) => id,
        Err(e) => {
            warn!(check = %run.name, commit = %run.head_sha, error = %e, "the check run was not written");
            return false;
        }
    };
    info!(check = %run.name, commit = %run.head_sha, state = ?run.state, id = id_now, "check run written");
    if id.is_none() {
        keep_id(deps, config, &record.batch_id, which, id_now).await;
    }
    true
}

/// Records the id of a check run created here, so later writes update it.
async fn keep_id<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    batch: &str,
    which: Which<'_>,
    id: u64,
) {
    let kept = update(deps, config, batch, |r| {
        let checks = r.checks.get_or_insert_with(Default::default);
        let slot = match which {
            Which::Aggregate => &mut checks.aggregate,
            Which::Flavor(f) => {
                if checks.flavors.contains_key(f) {
                    return None;
                }
                checks.flavors.insert(f.to_owned(), id);
                return Some(());
            }
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(id);
        Some(())
    })
    .await;
    match kept {
        Ok(Updated::Written(..) | Updated::Unchanged) => {}
        Ok(Updated::NoRecord) => {}
        Err(e) => warn!(batch, error = %e, "the check run's id was not recorded"),
    }
}
