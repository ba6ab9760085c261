//! A verified `pull_request` delivery: decided by its action, draft state and origin, then built
//! like a push, on the CI project, at exactly the head commit, with the files GitHub's
//! comparison lists as the changes.

use flavor_ci::generate::Variant;
use flavor_ci::runs::RunTrigger;
use flavor_ci::webhook::pull_request::{Decision, PullRequestEvent, decide};
use flavor_ci_aws::store::ObjectStore;
use flavor_ci_aws::undo::UndoLog;
use serde_json::json;

use crate::builds::Builds;
use crate::config::Config;
use crate::deps::{Deps, post_aggregate, settings};
use crate::http::Reply;
use crate::push::{ChangesFrom, Start, build, not_stopped, other_repository};
use crate::secrets::SecretSource;
use crate::superseded;

pub(crate) async fn on_pull_request<S, B, K>(
    deps: &Deps<S, B, K>,
    config: &Config,
    delivery: &str,
    key: &str,
    payload: &[u8],
    progress: &UndoLog,
) -> Result<Reply, Reply>
where
    S: ObjectStore,
    B: Builds,
    K: SecretSource,
{
    let event =
        PullRequestEvent::from_json(payload).map_err(|e| Reply::error(400, e.to_string()))?;
    if let Some(other) = other_repository(
        config,
        &event.repository.full_name,
        "the pull request is in",
    ) {
        return Ok(other);
    }
    let n = event.number;
    let settings = settings(deps, config).await?;
    match decide(&event, &settings.pull_requests) {
        Decision::Ignore(reason) => Ok(Reply::new(202, "ignored", reason).with("pullRequest", n)),
        Decision::AwaitApproval(reason) => {
            // The required check waits, saying how to allow the build.
            let text = flavor_ci::runs::StatusText {
                state: "pending",
                description: format!(
                    "waiting: a maintainer adds the label `{}` after reviewing this commit",
                    settings.pull_requests.fork_label
                ),
            };
            let mut reply = Reply::new(202, "ignored", reason).with("pullRequest", n);
            if let Some(status) = post_aggregate(
                deps,
                config,
                &event.pull_request.head.sha,
                false,
                &text,
                None,
            )
            .await
            {
                reply = reply.with("aggregateStatus", status);
            }
            Ok(reply)
        }
        Decision::Stop => {
            let git_ref = format!("refs/pull/{n}/head");
            if !superseded::applies(settings.batch.stop_superseded, &git_ref, None) {
                return Ok(Reply::new(
                    202,
                    "ignored",
                    format!(
                        "pull request #{n} was closed; its batches are left running (batch.stop-superseded: none)"
                    ),
                )
                .with("pullRequest", n));
            }
            let done = superseded::replace_and_stop(
                &deps.store,
                &deps.builds,
                &config.bucket,
                &config.root,
                &git_ref,
                None,
            )
            .await
            .map_err(|e| Reply::error(503, format!("{e}; redeliver the closing")))?;
            let count = done.stopped.len();
            let mut reply = Reply::new(
                200,
                "stopped",
                format!("pull request #{n} was closed: {count} running batch(es) stopped"),
            )
            .with("pullRequest", n)
            .with("stopped", done.stopped);
            if !done.not_stopped.is_empty() {
                reply = reply.with("notStopped", not_stopped(&done.not_stopped));
            }
            Ok(reply)
        }
        Decision::Build(why) => {
            let pr = &event.pull_request;
            // The head commit itself, never `pr/<n>`: the build runs what was planned even if
            // the branch moves meanwhile. A fork's commit is fetched through the base
            // repository, where GitHub keeps it under refs/pull/<n>/head.
            let start = Start {
                git_ref: format!("refs/pull/{n}/head"),
                commit: pr.head.sha.clone(),
                tree_id: None,
                variant: Variant::Ci,
                project: config.ci_project.clone(),
                release_id: None,
                changes: ChangesFrom::Compare {
                    base: pr.base.sha.clone(),
                },
                about: vec![
                    ("pullRequest", json!(n)),
                    ("headRef", json!(pr.head.git_ref)),
                    ("baseRef", json!(pr.base.git_ref)),
                    ("trigger", json!(why)),
                ],
                trigger: RunTrigger::PullRequest,
                pull_request: Some(n),
                default_branch: false,
                supersede: superseded::applies(
                    settings.batch.stop_superseded,
                    &format!("refs/pull/{n}/head"),
                    None,
                ),
            };
            build(deps, config, delivery, key, &settings, start, progress).await
        }
    }
}
