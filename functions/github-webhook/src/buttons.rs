//! The buttons of the Checks tab (GitHub App deliveries, verified like any other):
//!
//! - "Re-run failed" on a failed aggregate: its failed builds run again at the same commit,
//!   with `RetryBuildBatch` while CodeBuild allows it, in a new batch of those flavors otherwise;
//! - "Re-run" on one flavor's check run: that flavor alone, again, at the same commit;
//! - "Re-run" on the aggregate, or "Re-run all" on the suite: the whole selection again;
//! - "Build this commit" on a fork's aggregate: the fork's commit builds, when the one who
//!   clicked has write access (GitHub is asked; the payload is never trusted).
//!
//! A click is acted on once: a double click, or GitHub delivering it twice, starts one build.
//! The new attempt's check runs replace the old ones in the Checks tab; a re-run of some flavors
//! carries the others' results, so its aggregate speaks for the whole commit.

use flavor_ci::generate::Variant;
use flavor_ci::layout::{DELIVERY_TAG, click_key, commit_run_key, fork_wait_key, run_key};
use flavor_ci::runs::checks::{BUILD_COMMIT, RERUN_FAILED, read_external_id};
use flavor_ci::runs::{RUN_TAG, RunRecord};
use flavor_ci::selection::Changes;
use flavor_ci::webhook::checks::{CheckRunEvent, CheckSuiteEvent};
use flavor_ci::webhook::signature;
use flavor_ci_aws::store::{ObjectStore, Put, Written};
use lambda_runtime::tracing::{info, warn};

use crate::batch::{self, ChangesFrom, Start, Ticket};
use crate::builds::Builds;
use crate::github::Repository;
use crate::outcome::{Context, Fault, Outcome, Refusal};
use crate::ports::{Job, Ports};
use crate::pull::{self, Head};
use crate::push::other_repository;
use crate::report;
use crate::skip::Trust;

/// Permissions that may approve a fork's build.
const WRITERS: [&str; 3] = ["admin", "maintain", "write"];

fn nothing(reason: String) -> Outcome {
    Outcome::nothing(reason)
}

/// Whether the delivery is about this stack's App and repository; the answer when it is not.
fn not_ours<P: Ports>(job: Job<'_, P>, repo: &str, app_id: u64, what: &str) -> Option<Outcome> {
    if let Some(other) = other_repository(job.config, repo, what) {
        return Some(other);
    }
    let Some(app) = &job.config.app else {
        return Some(nothing(format!(
            "check run events are acted on only when the stack reports through a GitHub App (CommitStatuses: github-app); this {what} was ignored"
        )));
    };
    (app.id != app_id.to_string()).then(|| {
        nothing(format!(
            "the check run belongs to another GitHub App (id {app_id}); flavor-ci's is {}",
            app.id
        ))
    })
}

/// `check_run`: a requested action, or "Re-run".
pub(crate) async fn on_check_run<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    event: CheckRunEvent,
) -> Outcome {
    let run = &event.check_run;
    if let Some(answer) = not_ours(job, &event.repository.full_name, run.app.id, "check run") {
        return answer;
    }
    let clicked = event
        .requested_action
        .as_ref()
        .map(|a| a.identifier.as_str());
    let result = match (event.action.as_str(), clicked) {
        ("requested_action", Some(id)) if id == RERUN_FAILED.identifier => {
            rerun_failed(job, delivery, &event).await
        }
        ("requested_action", Some(id)) if id == BUILD_COMMIT.identifier => {
            approve(job, delivery, &event).await
        }
        ("requested_action", other) => Ok(nothing(format!(
            "the requested action {other:?} is not one of flavor-ci's"
        ))),
        ("rerequested", _) => rerequested(job, delivery, &event).await,
        (action, _) => Ok(nothing(format!(
            "check_run {action} needs nothing from flavor-ci (requested_action and rerequested do)"
        ))),
    };
    result.unwrap_or_else(Outcome::from)
}

/// `check_suite` `rerequested` ("Re-run all"): the commit's newest run, all of it, again.
pub(crate) async fn on_check_suite<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    event: CheckSuiteEvent,
) -> Outcome {
    let suite = &event.check_suite;
    if let Some(answer) = not_ours(
        job,
        &event.repository.full_name,
        suite.app.id,
        "check suite",
    ) {
        return answer;
    }
    if event.action != "rerequested" {
        return nothing(format!(
            "check_suite {} needs nothing from flavor-ci (rerequested does)",
            event.action
        ));
    }
    let result = async {
        let config = job.config;
        let key = commit_run_key(&config.root, &config.ci_project, &suite.head_sha);
        let batch = match job.deps.store.get(&config.bucket, &key).await {
            Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(None) => {
                return Ok(nothing(format!(
                    "flavor-ci has built nothing at commit {} to run again",
                    suite.head_sha
                )));
            }
            Err(e) => return Err(unavailable(e.to_string())),
        };
        let record = read_record(job, &batch).await?;
        let click = format!("suite\n{}\n{batch}", suite.id);
        rebuild(job, delivery, &click, record, None, &event.sender.login).await
    }
    .await;
    result.unwrap_or_else(Outcome::from)
}

fn unavailable(e: String) -> Refusal {
    Refusal::new(
        Fault::Unavailable,
        format!("{e}; nothing was started; click again"),
    )
}

/// The run record of `batch`.
async fn read_record<P: Ports>(job: Job<'_, P>, batch: &str) -> Result<RunRecord, Refusal> {
    let config = job.config;
    let bytes = job
        .deps
        .store
        .get(&config.bucket, &run_key(&config.root, batch))
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .ok_or_else(|| {
            Refusal::new(
                Fault::Unbuildable,
                format!("batch {batch} has no run record; its checks cannot be run again"),
            )
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Refusal::new(
            Fault::Unbuildable,
            format!("the run record of batch {batch} is not readable ({e})"),
        )
    })
}

/// "Re-run" on a check run: one flavor's (that flavor alone), or the aggregate's (the whole
/// selection).
async fn rerequested<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    event: &CheckRunEvent,
) -> Result<Outcome, Refusal> {
    let run = &event.check_run;
    let Some(external) = run
        .external_id
        .as_deref()
        .filter(|e| !e.starts_with("fork#"))
    else {
        return Ok(nothing(format!(
            "check run {} is not a run of a batch; nothing to run again",
            run.name
        )));
    };
    let (batch, flavor) = read_external_id(external);
    let record = read_record(job, batch).await?;
    let click = format!("check-run\n{}\nrerequested", run.id);
    let only = flavor.map(|f| vec![f.to_owned()]);
    rebuild(job, delivery, &click, record, only, &event.sender.login).await
}

/// Builds `flavors` of `record`'s commit again in a new batch (all of its flavors when `None`);
/// the flavors it does not build keep their results.
async fn rebuild<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    click: &str,
    record: RunRecord,
    flavors: Option<Vec<String>>,
    sender: &str,
) -> Result<Outcome, Refusal> {
    if record.project != job.config.ci_project {
        return Ok(nothing(format!(
            "batch {} is a release build; run a release again with flavor-ci dispatch --ref <tag>",
            record.batch_id
        )));
    }
    let settings = job.settings().await?;
    let names = flavors
        .clone()
        .unwrap_or_else(|| record.flavors.iter().map(|f| f.name.clone()).collect());
    let reason = match &flavors {
        Some(_) => format!("@{sender} asked to build {} again", names.join(", ")),
        None => format!("@{sender} asked to build the whole selection again"),
    };
    let key = signature::delivery_key("click", click.as_bytes());
    let start = Start {
        git_ref: record.git_ref.clone(),
        commit: record.commit.clone(),
        tree_id: None,
        variant: Variant::Ci,
        project: record.project.clone(),
        release_id: None,
        changes: ChangesFrom::Delivery(Changes::Flavors {
            names,
            reason: reason.clone(),
        }),
        context: Context {
            pull_request: record.pull_request,
            trigger: Some(reason),
            ..Context::default()
        },
        // A re-run replaces nothing: the newest run of the ref may be a later commit's.
        supersede: false,
        trigger: record.trigger,
        pull_request: record.pull_request,
        default_branch: record.default_branch,
        merge_group: record.merge_group.clone(),
        announce: record.announce,
        // A click asks for a build: it never skips.
        skip_as: None,
        rebuild: true,
        trust: if record.trusted {
            Trust::Yes
        } else {
            Trust::No
        },
        earlier: flavors.is_some().then(|| Box::new(record)),
    };
    Ok(batch::run(job, Ticket::new(delivery, &key), &settings, start).await)
}

/// "Re-run failed" on a failed aggregate.
async fn rerun_failed<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    event: &CheckRunEvent,
) -> Result<Outcome, Refusal> {
    let run = &event.check_run;
    let Some(external) = run.external_id.as_deref() else {
        return Ok(nothing(format!("check run {} names no batch", run.name)));
    };
    let (batch, _) = read_external_id(external);
    let record = read_record(job, batch).await?;
    let failed: Vec<String> = match &record.finished {
        Some(f) if !f.failed.is_empty() => f.failed.iter().map(|(n, _)| n.clone()).collect(),
        _ => {
            return Ok(nothing(format!(
                "batch {batch} has no failed flavor to run again"
            )));
        }
    };
    let click = format!("check-run\n{}\n{}", run.id, RERUN_FAILED.identifier);
    // Flavors carried from an earlier run are not in this batch: only a new batch builds them.
    let retryable = failed.iter().all(|f| !record.carried.contains(f));
    if retryable {
        // Claimed first: a double click retries once.
        let (store, config) = (&job.deps.store, job.config);
        let claim = click_key(
            &config.root,
            &signature::delivery_key("click", click.as_bytes()),
        );
        let claimed = match store
            .put_if_absent(
                &config.bucket,
                &claim,
                delivery.as_bytes(),
                "text/plain",
                DELIVERY_TAG,
            )
            .await
        {
            Ok(Put::Created { version }) => Written {
                key: claim,
                version,
            },
            Ok(Put::Existed) => {
                return Ok(nothing(format!(
                    "this click on check run {} was acted on already",
                    run.id
                )));
            }
            Err(e) => return Err(unavailable(e.to_string())),
        };
        let token = signature::delivery_key("retry", click.as_bytes());
        match job.deps.builds.retry_batch(batch, &token).await {
            Ok(true) => return Ok(retried(job, record, failed, &event.sender.login).await),
            Ok(false) => {
                info!(
                    batch,
                    "CodeBuild will not retry the batch; a new batch builds the failed flavors"
                )
            }
            Err(e) => {
                // The click may be tried again.
                let _ = store.delete_written(&config.bucket, &[claimed]).await;
                return Err(Refusal::new(
                    Fault::Upstream,
                    format!("CodeBuild did not retry batch {batch}: {e}"),
                ));
            }
        }
    }
    rebuild(
        job,
        delivery,
        &click,
        record,
        Some(failed),
        &event.sender.login,
    )
    .await
}

/// After `RetryBuildBatch`: new check runs for the retried flavors and the aggregate, kept in
/// the run record, so the retry's builds report on them.
async fn retried<P: Ports>(
    job: Job<'_, P>,
    record: RunRecord,
    failed: Vec<String>,
    sender: &str,
) -> Outcome {
    let release = record.project != job.config.ci_project;
    let opened = report::open_checks(job, &record, release, Some(&failed)).await;
    let aggregate = match opened {
        Some((ids, aggregate)) => {
            keep_check_ids(job, &record.batch_id, ids).await;
            Some(aggregate)
        }
        None => None,
    };
    info!(batch = %record.batch_id, flavors = ?failed, sender, "failed builds retried");
    Outcome::Retried {
        message: format!(
            "@{sender} asked to build the failed flavors again: batch {} retries {}",
            record.batch_id,
            failed.join(", ")
        ),
        batch_build_id: record.batch_id,
        flavors: failed,
        aggregate,
    }
}

/// Writes the new check run ids into the run record, only over the version read.
async fn keep_check_ids<P: Ports>(job: Job<'_, P>, batch: &str, ids: flavor_ci::runs::CheckIds) {
    let (store, config) = (&job.deps.store, job.config);
    let key = run_key(&config.root, batch);
    for _ in 0..5 {
        let Ok(Some((bytes, etag))) = store.get_tagged(&config.bucket, &key).await else {
            break;
        };
        let Ok(mut record) = serde_json::from_slice::<RunRecord>(&bytes) else {
            break;
        };
        record.checks = Some(ids.clone());
        let body = serde_json::to_vec(&record).unwrap_or_default();
        match store
            .replace_if_unchanged(
                &config.bucket,
                &key,
                &body,
                "application/json",
                RUN_TAG,
                &etag,
            )
            .await
        {
            Ok(true) => return,
            Ok(false) => continue,
            Err(e) => {
                warn!(batch, error = %e, "the new check runs' ids were not recorded");
                return;
            }
        }
    }
    warn!(
        batch,
        "the new check runs' ids were not recorded: the run record kept changing"
    );
}

/// "Build this commit" on a fork's aggregate: builds the fork's commit when the one who clicked
/// may write to the repository.
async fn approve<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    event: &CheckRunEvent,
) -> Result<Outcome, Refusal> {
    let (run, login) = (&event.check_run, &event.sender.login);
    let repo = &job.config.repository;
    let permission = match job.deps.github.permission(repo, login).await {
        Ok(p) => p,
        Err(e) if e.github_status == 404 => "none".into(),
        Err(e) => return Err(e.into()),
    };
    if !WRITERS.contains(&permission.as_str()) {
        warn!(
            sender = %login,
            permission,
            commit = %run.head_sha,
            "a click on Build this commit by someone without write access changed nothing"
        );
        return Ok(nothing(format!(
            "@{login} has {permission} permission on {repo}; only someone with write access may build a fork's commit"
        )));
    }
    let (store, config) = (&job.deps.store, job.config);
    let kept = store
        .get(&config.bucket, &fork_wait_key(&config.root, &run.head_sha))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let Some(head) = kept.and_then(|b| serde_json::from_slice::<Head>(&b).ok()) else {
        return Ok(nothing(format!(
            "no pull request from a fork waits at commit {}; push again or reopen the pull request",
            run.head_sha
        )));
    };
    let settings = job.settings().await?;
    let why = format!(
        "@{login} approved commit {} of pull request #{} from a fork",
        head.head_sha, head.number
    );
    let click = format!("check-run\n{}\n{}", run.id, BUILD_COMMIT.identifier);
    let key = signature::delivery_key("click", click.as_bytes());
    let start = pull::start(job, &settings, head, why);
    Ok(batch::run(job, Ticket::new(delivery, &key), &settings, start).await)
}
