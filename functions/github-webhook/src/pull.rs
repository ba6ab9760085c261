//! The pull request adapter: a verified `pull_request` delivery, decided by its action, draft
//! state and origin, becomes one [`Start`] for the batch step, on the CI project, at exactly the
//! head commit, with the files GitHub's comparison lists as the changes. Closing one stops its
//! batches.

use flavor_ci::generate::Variant;
use flavor_ci::runs::{RunTrigger, StatusText};
use flavor_ci::settings::Settings;
use flavor_ci::webhook::pull_request::{Decision, PullRequestEvent, decide};

use crate::batch::{self, ChangesFrom, Start, Ticket};
use crate::edge::Signed;
use crate::outcome::{Context, Fault, Outcome, Refusal, Stopping};
use crate::ports::{Job, Ports};
use crate::push::other_repository;
use crate::report::post_aggregate;
use crate::superseded;

pub(crate) async fn on_pull_request<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    signed: Signed<PullRequestEvent>,
) -> Outcome {
    let Signed {
        key,
        payload: event,
    } = signed;
    let repo = &event.repository.full_name;
    if let Some(other) = other_repository(job.config, repo, "the pull request is in") {
        return other;
    }
    let n = event.number;
    let settings = match job.settings().await {
        Ok(s) => s,
        Err(refusal) => return refusal.into(),
    };
    match decide(&event, &settings.pull_requests) {
        Decision::Ignore(reason) => Outcome::Nothing {
            reason,
            context: Context::pull_request(n),
            aggregate: None,
        },
        Decision::AwaitApproval(reason) => await_approval(job, &event, &settings, reason).await,
        Decision::Stop => match stop(job, n, &settings).await {
            Ok(outcome) | Err(outcome) => outcome,
        },
        Decision::Build(why) => {
            let pr = event.pull_request;
            let git_ref = format!("refs/pull/{n}/head");
            // The head commit itself, never `pr/<n>`: the build runs what was planned even if
            // the branch moves meanwhile. A fork's commit is fetched through the base
            // repository, where GitHub keeps it under refs/pull/<n>/head.
            let start = Start {
                supersede: superseded::applies(settings.batch.stop_superseded, &git_ref, None),
                git_ref,
                commit: pr.head.sha,
                tree_id: None,
                variant: Variant::Ci,
                project: job.config.ci_project.clone(),
                release_id: None,
                changes: ChangesFrom::Compare { base: pr.base.sha },
                context: Context {
                    pull_request: Some(n),
                    head_ref: Some(pr.head.git_ref),
                    base_ref: Some(pr.base.git_ref),
                    trigger: Some(why),
                    run: None,
                },
                trigger: RunTrigger::PullRequest,
                pull_request: Some(n),
                default_branch: false,
            };
            batch::run(job, Ticket::new(delivery, &key), &settings, start).await
        }
    }
}

/// A fork's commit waits: the required check says how to allow the build.
async fn await_approval<P: Ports>(
    job: Job<'_, P>,
    event: &PullRequestEvent,
    settings: &Settings,
    reason: String,
) -> Outcome {
    let text = StatusText {
        state: "pending",
        description: format!(
            "waiting: a maintainer adds the label `{}` after reviewing this commit",
            settings.pull_requests.fork_label
        ),
    };
    let head = &event.pull_request.head.sha;
    let aggregate = post_aggregate(job, head, false, &text, None).await;
    Outcome::Waiting {
        reason,
        context: Context::pull_request(event.number),
        aggregate,
    }
}

/// A closed pull request: its running batches are stopped.
async fn stop<P: Ports>(job: Job<'_, P>, n: u64, settings: &Settings) -> Result<Outcome, Outcome> {
    let git_ref = format!("refs/pull/{n}/head");
    if !superseded::applies(settings.batch.stop_superseded, &git_ref, None) {
        return Ok(Outcome::Nothing {
            reason: format!(
                "pull request #{n} was closed; its batches are left running (batch.stop-superseded: none)"
            ),
            context: Context::pull_request(n),
            aggregate: None,
        });
    }
    let done = superseded::replace_and_stop(
        &job.deps.store,
        &job.deps.builds,
        &job.config.bucket,
        &job.config.root,
        &git_ref,
        None,
    )
    .await
    .map_err(|e| Refusal::new(Fault::Unavailable, format!("{e}; redeliver the closing")))?;
    let count = done.stopped.len();
    Ok(Outcome::Stopped {
        message: format!("pull request #{n} was closed: {count} running batch(es) stopped"),
        pull_request: n,
        stopped: Stopping::Done {
            stopped: done.stopped,
            not_stopped: done.not_stopped,
        },
    })
}
