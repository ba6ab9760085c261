//! The merge group adapter: GitHub's merge queue asks for the required checks on a group's
//! head commit (`checks_requested`), which builds the flavors the group changes, exactly as a
//! push would, on the CI project; `destroyed` stops the group's batch when the group left the
//! queue unmerged.
//!
//! Groups are independent: several run side by side and none supersedes another. One batch per
//! group head, whatever the delivery id: a replayed `checks_requested` is handled once.

use flavor_ci::generate::Variant;
use flavor_ci::layout::{commit_run_key, run_key, superseded_key};
use flavor_ci::runs::{MergeGroupRun, RUN_TAG, RunRecord, RunTrigger, Superseded};
use flavor_ci::settings::MergeQueueCompare;
use flavor_ci::webhook::merge_group::MergeGroupEvent;
use flavor_ci::webhook::signature;
use flavor_ci_aws::store::ObjectStore;
use flavor_ci_aws::undo::now_ms;
use lambda_runtime::tracing::{info, warn};

use crate::batch::{self, ChangesFrom, Start, Ticket};
use crate::builds::Builds;
use crate::github::Repository;
use crate::outcome::{Context, Fault, Outcome, Refusal, Stopped, Stopping};
use crate::ports::{Job, Ports};
use crate::push::other_repository;
use crate::skip::Trust;
use flavor_ci::inputs::asks_rebuild;
use flavor_ci::settings::SkipTrigger;

pub(crate) async fn on_merge_group<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    event: MergeGroupEvent,
) -> Outcome {
    let repo = &event.repository.full_name;
    if let Some(other) = other_repository(job.config, repo, "the merge group is in") {
        return other;
    }
    let result = match event.action.as_str() {
        "checks_requested" => checks_requested(job, delivery, &event).await,
        "destroyed" => destroyed(job, &event).await,
        other => Ok(Outcome::nothing(format!(
            "merge_group {other} needs nothing from flavor-ci (checks_requested and destroyed do)"
        ))),
    };
    result.unwrap_or_else(Outcome::from)
}

/// The pull requests as the answer names them: `#101, #103`.
fn named(pull_requests: &[u64]) -> String {
    if pull_requests.is_empty() {
        return "pull requests GitHub did not name".into();
    }
    let list: Vec<String> = pull_requests.iter().map(|n| format!("#{n}")).collect();
    list.join(", ")
}

/// Builds the group: its change against its base (or the target branch's head), at its head
/// commit, reporting the required aggregate on that commit.
async fn checks_requested<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    event: &MergeGroupEvent,
) -> Result<Outcome, Refusal> {
    let settings = job.settings().await?;
    let group = &event.merge_group;
    let base = match settings.merge_queue.compare {
        MergeQueueCompare::GroupBase => group.base_sha.clone(),
        MergeQueueCompare::TargetBranch => {
            job.deps
                .github
                .ref_commit(&job.config.repository, &group.base_ref)
                .await?
        }
    };
    let pull_requests = event.pull_requests();
    let target = group
        .base_ref
        .strip_prefix("refs/heads/")
        .unwrap_or(&group.base_ref);
    let why = format!(
        "the merge queue asks for the checks of {} into {target}",
        named(&pull_requests)
    );
    // One batch per group: its head commit and what it is compared with identify it.
    let identity = format!("{}\n{base}", group.head_sha);
    let key = signature::delivery_key("merge_group", identity.as_bytes());
    let start = Start {
        git_ref: group.head_ref.clone(),
        commit: group.head_sha.clone(),
        tree_id: event.tree_id().map(str::to_owned),
        variant: Variant::Ci,
        project: job.config.ci_project.clone(),
        release_id: None,
        changes: ChangesFrom::Compare { base: base.clone() },
        context: Context {
            head_ref: Some(group.head_ref.clone()),
            base_ref: Some(group.base_ref.clone()),
            trigger: Some(why),
            ..Context::default()
        },
        // Groups run side by side; only `destroyed` stops one.
        supersede: false,
        trigger: RunTrigger::MergeGroup,
        pull_request: None,
        default_branch: false,
        earlier: None,
        merge_group: Some(MergeGroupRun {
            base_sha: base,
            base_ref: group.base_ref.clone(),
            pull_requests,
        }),
        announce: Some(settings.notifications.merge_groups),
        skip_as: Some(SkipTrigger::MergeGroups),
        rebuild: group
            .head_commit
            .as_ref()
            .is_some_and(|c| c.id == group.head_sha && asks_rebuild(&c.message)),
        trust: Trust::Yes,
    };
    Ok(batch::run(job, Ticket::new(delivery, &key), &settings, start).await)
}

/// A group left the queue: its batch is stopped when the group was dequeued or invalidated
/// while it built. A merged group's batch has done its job.
async fn destroyed<P: Ports>(job: Job<'_, P>, event: &MergeGroupEvent) -> Result<Outcome, Refusal> {
    let group = &event.merge_group;
    let reason = event.reason.as_deref().unwrap_or("unknown");
    let why = match reason {
        "dequeued" => "the merge queue dequeued the group",
        "invalidated" => "the merge queue invalidated the group (its base changed)",
        _ => {
            return Ok(Outcome::nothing(format!(
                "the merge group at {} was {reason}: nothing to stop",
                group.head_sha
            )));
        }
    };
    let (store, config) = (&job.deps.store, job.config);
    let unavailable = |e: String| {
        Refusal::new(
            Fault::Unavailable,
            format!("{e}; the group's batch was not stopped; redeliver the event"),
        )
    };
    let index = commit_run_key(&config.root, &config.ci_project, &group.head_sha);
    let Some(batch) = store
        .get(&config.bucket, &index)
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
    else {
        return Ok(Outcome::nothing(format!(
            "{why}, but flavor-ci started no batch for it (nothing was affected)"
        )));
    };
    let record = store
        .get(&config.bucket, &run_key(&config.root, &batch))
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok());
    if record.as_ref().is_some_and(|r| r.finished.is_some()) {
        return Ok(Outcome::nothing(format!(
            "{why}; its batch {batch} had already ended"
        )));
    }
    // The marker first: the stopped builds' events then end the run as cancelled, with this
    // reason, and announce nothing.
    let marker = Superseded {
        by: format!("merge group {}", group.head_sha),
        at: now_ms(),
        reason: Some(why.to_owned()),
    };
    let text = serde_json::to_vec(&marker).unwrap_or_default();
    store
        .put(
            &config.bucket,
            &superseded_key(&config.root, &batch),
            &text,
            "application/json",
            RUN_TAG,
        )
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let stopped = match job.deps.builds.stop_batch(&batch).await {
        Ok(()) => {
            info!(
                batch,
                reason, "stopped the batch of a merge group that left the queue"
            );
            Stopping::Done {
                stopped: vec![batch.clone()],
                not_stopped: Vec::new(),
            }
        }
        Err(e) => {
            warn!(batch, error = %e, "the merge group's batch was not stopped");
            Stopping::Done {
                stopped: Vec::new(),
                not_stopped: vec![(batch.clone(), e.to_string())],
            }
        }
    };
    Ok(Outcome::Stopped {
        message: format!("{why}: its batch {batch} is stopped"),
        about: Stopped::MergeGroup(group.head_sha.clone()),
        stopped,
    })
}
