//! The push adapter: a verified push, routed by its ref (a branch builds the CI variant, a tag
//! the release variant), becomes one [`Start`] for the batch step, with the files its commits
//! list as the changes.

use flavor_ci::generate::Variant;
use flavor_ci::runs::RunTrigger;
use flavor_ci::webhook::push::{self, Push, Route, Routing};

use crate::batch::{self, ChangesFrom, Start, Ticket};
use crate::config::Config;
use crate::edge::Signed;
use crate::outcome::{Context, Outcome};
use crate::ports::{Job, Ports};
use crate::skip::Trust;
use crate::superseded;
use flavor_ci::inputs::ledger;
use flavor_ci::settings::SkipTrigger;

pub(crate) async fn on_push<P: Ports>(
    job: Job<'_, P>,
    delivery: &str,
    signed: Signed<Push>,
) -> Outcome {
    let Signed { key, payload: push } = signed;
    let config = job.config;
    if let Some(other) = other_repository(config, &push.repository.full_name, "the push is to") {
        return other;
    }
    let settings = match job.settings().await {
        Ok(s) => s,
        Err(refusal) => return refusal.into(),
    };
    let routing = Routing {
        branches: config.branches.clone(),
        tags: config.tags.clone(),
        release: match (&config.release_project, settings.release.enabled) {
            (None, _) => Err("no release project is configured (RELEASE_PROJECT)".into()),
            (Some(_), false) => Err("the deployed settings disable the release variant".into()),
            (Some(_), true) => Ok(()),
        },
    };
    let (variant, project, release_id) = match push::route(&push, &routing) {
        Route::Ignore { reason } => return Outcome::nothing(reason),
        Route::Ci { .. } => (Variant::Ci, config.ci_project.clone(), None),
        Route::Release { tag } => (
            Variant::Release,
            config.release_project.clone().unwrap_or_default(),
            Some(tag),
        ),
    };
    let default_branch = push.repository.default_branch.as_deref();
    let on_default =
        default_branch.is_some_and(|b| push.git_ref.strip_prefix("refs/heads/") == Some(b));
    let trusted = ledger::trusted(RunTrigger::Push, &push.git_ref, on_default, false);
    let start = Start {
        skip_as: (variant == Variant::Ci).then_some(SkipTrigger::Pushes),
        rebuild: push.asks_rebuild(),
        trust: if trusted { Trust::Yes } else { Trust::No },
        tree_id: push.tree_id().map(str::to_owned),
        variant,
        project,
        release_id,
        changes: ChangesFrom::Delivery(push.changes()),
        context: Context::default(),
        trigger: RunTrigger::Push,
        pull_request: None,
        default_branch: on_default,
        supersede: variant == Variant::Ci
            && superseded::applies(
                settings.batch.stop_superseded,
                &push.git_ref,
                default_branch,
            ),
        git_ref: push.git_ref,
        commit: push.after,
        earlier: None,
        merge_group: None,
        announce: None,
    };
    batch::run(job, Ticket::new(delivery, &key), &settings, start).await
}

/// The answer to a delivery about a repository other than the stack's, if it is one.
pub(crate) fn other_repository(config: &Config, repo: &str, what: &str) -> Option<Outcome> {
    let expected = &config.repository;
    (!expected.eq_ignore_ascii_case(repo)).then(|| {
        Outcome::nothing(format!(
            "{what} {repo}, but this stack builds {expected}; ignored"
        ))
    })
}
