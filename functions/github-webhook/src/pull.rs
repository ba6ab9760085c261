//! The pull request adapter: a verified `pull_request` delivery, decided by its action, draft
//! state and origin, becomes one [`Start`] for the batch step, on the CI project, at exactly the
//! head commit, with the files GitHub's comparison lists as the changes. Closing one stops its
//! batches.

use flavor_ci::generate::Variant;
use flavor_ci::layout::{DELIVERY_TAG, fork_wait_key};
use flavor_ci::runs::checks::BUILD_COMMIT;
use flavor_ci::runs::{RunTrigger, StatusText};
use flavor_ci::settings::Settings;
use flavor_ci::webhook::pull_request::{Decision, PullRequestEvent, decide};
use flavor_ci_aws::github::checks::CheckState;
use flavor_ci_aws::store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::batch::{self, ChangesFrom, Start, Ticket};
use crate::edge::Signed;
use crate::github::Repository;
use crate::outcome::{Context, Fault, Outcome, Refusal, Stopped, Stopping};
use crate::ports::{Job, Ports};
use crate::push::other_repository;
use crate::report::{Verdict, post_aggregate};
use crate::skip::Trust;
use crate::superseded;
use flavor_ci::settings::SkipTrigger;

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
    let app = job.deps.github.writes_checks();
    match decide(&event, &settings.pull_requests, app) {
        Decision::Ignore(reason) => Outcome::Nothing {
            reason,
            context: Context::pull_request(n),
            aggregate: None,
        },
        Decision::Refuse(reason) if app => {
            let verdict = Verdict {
                text: StatusText {
                    state: "failure",
                    description: "pull requests from forks are not built here".into(),
                },
                check: CheckState::Completed("failure"),
                ..Verdict::waiting(String::new(), &reason)
            };
            let head = &event.pull_request.head.sha;
            let aggregate = post_aggregate(job, head, false, verdict).await;
            Outcome::Nothing {
                reason,
                context: Context::pull_request(n),
                aggregate,
            }
        }
        Decision::Refuse(reason) => Outcome::Nothing {
            reason,
            context: Context::pull_request(n),
            aggregate: None,
        },
        Decision::AwaitApproval(reason) => await_approval(job, &event, &settings, reason).await,
        Decision::AwaitClick(reason) => await_click(job, &event, reason).await,
        Decision::Stop => match stop(job, n, &settings).await {
            Ok(outcome) | Err(outcome) => outcome,
        },
        Decision::Build(why) => {
            let start = start(job, &settings, Head::of(&event), why);
            batch::run(job, Ticket::new(delivery, &key), &settings, start).await
        }
    }
}

/// What a pull request's build needs of it: kept while a fork's commit waits for a click.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Head {
    pub(crate) number: u64,
    pub(crate) head_sha: String,
    pub(crate) head_ref: String,
    pub(crate) base_sha: String,
    pub(crate) base_ref: String,
    /// Who opened it (its green builds count when they may write to the repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) author: Option<String>,
    /// Whether its head branch is in the repository itself (not a fork).
    #[serde(default)]
    pub(crate) same_repository: bool,
}

impl Head {
    fn of(event: &PullRequestEvent) -> Self {
        let pr = &event.pull_request;
        Self {
            number: event.number,
            head_sha: pr.head.sha.clone(),
            head_ref: pr.head.git_ref.clone(),
            base_sha: pr.base.sha.clone(),
            base_ref: pr.base.git_ref.clone(),
            author: pr.user.as_ref().map(|u| u.login.clone()),
            same_repository: event.fork().is_none(),
        }
    }
}

/// The batch of a pull request's head commit.
pub(crate) fn start<P: Ports>(
    job: Job<'_, P>,
    settings: &Settings,
    head: Head,
    why: String,
) -> Start {
    let n = head.number;
    let git_ref = format!("refs/pull/{n}/head");
    // The head commit itself, never `pr/<n>`: the build runs what was planned even if the
    // branch moves meanwhile. A fork's commit is fetched through the base repository, where
    // GitHub keeps it under refs/pull/<n>/head.
    Start {
        supersede: superseded::applies(settings.batch.stop_superseded, &git_ref, None),
        git_ref,
        commit: head.head_sha,
        tree_id: None,
        variant: Variant::Ci,
        project: job.config.ci_project.clone(),
        release_id: None,
        changes: ChangesFrom::Compare {
            base: head.base_sha,
        },
        context: Context {
            pull_request: Some(n),
            head_ref: Some(head.head_ref),
            base_ref: Some(head.base_ref),
            trigger: Some(why),
            run: None,
        },
        trigger: RunTrigger::PullRequest,
        pull_request: Some(n),
        default_branch: false,
        earlier: None,
        merge_group: None,
        announce: None,
        skip_as: Some(SkipTrigger::PullRequests),
        rebuild: false,
        trust: match head.author {
            Some(author) if head.same_repository => Trust::IfWriter(author),
            _ => Trust::No,
        },
    }
}

/// A fork's commit waits for "Build this commit" on its aggregate check run: what the build
/// needs is kept under the commit, and the check run asks for the click.
async fn await_click<P: Ports>(
    job: Job<'_, P>,
    event: &PullRequestEvent,
    reason: String,
) -> Outcome {
    let head = Head::of(event);
    let kept = serde_json::to_vec(&head).unwrap_or_default();
    let (store, config) = (&job.deps.store, job.config);
    if let Err(e) = store
        .put(
            &config.bucket,
            &fork_wait_key(&config.root, &head.head_sha),
            &kept,
            "application/json",
            DELIVERY_TAG,
        )
        .await
    {
        return Refusal::new(
            Fault::Unavailable,
            format!("{e}; the fork's commit cannot wait for approval; redeliver the pull request"),
        )
        .into();
    }
    let verdict = Verdict {
        text: StatusText {
            state: "pending",
            description: "waiting: someone with write access clicks Build this commit".into(),
        },
        check: CheckState::Completed("action_required"),
        button: Some(BUILD_COMMIT),
        external_id: Some(format!("fork#{}", event.number)),
        ..Verdict::waiting(String::new(), &reason)
    };
    let aggregate = post_aggregate(job, &head.head_sha, false, verdict).await;
    Outcome::Waiting {
        reason,
        context: Context::pull_request(event.number),
        aggregate,
    }
}

/// A fork's commit waits: the required check says how to allow the build.
async fn await_approval<P: Ports>(
    job: Job<'_, P>,
    event: &PullRequestEvent,
    settings: &Settings,
    reason: String,
) -> Outcome {
    let description = format!(
        "waiting: a maintainer adds the label `{}` after reviewing this commit",
        settings.pull_requests.fork_label
    );
    let head = &event.pull_request.head.sha;
    let verdict = Verdict::waiting(description, &reason);
    let aggregate = post_aggregate(job, head, false, verdict).await;
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
        about: Stopped::PullRequest(n),
        stopped: Stopping::Done {
            stopped: done.stopped,
            not_stopped: done.not_stopped,
        },
    })
}
