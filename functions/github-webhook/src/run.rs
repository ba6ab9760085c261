//! A run without a change: the nightly schedule and `flavor-ci dispatch` invoke the function
//! directly with `{"flavorCiRun": {…}}` (see `flavor_ci::webhook::run`). The ref's head commit is
//! resolved through GitHub, then built like a push of it: every flavor, or the ones asked for.

use flavor_ci::generate::Variant;
use flavor_ci::runs::RunTrigger;
use flavor_ci::selection::Changes;
use flavor_ci::webhook::run::{RunRequest, Trigger};
use flavor_ci::webhook::signature;
use flavor_ci_aws::store::ObjectStore;
use flavor_ci_aws::undo::UndoLog;
use serde_json::{Value, json};

use crate::builds::Builds;
use crate::config::Config;
use crate::deps::{Deps, settings};
use crate::http::Reply;
use crate::push::{ChangesFrom, Start, build};
use crate::secrets::SecretSource;
use crate::superseded;

pub(crate) async fn on_run<S, B, K>(
    deps: &Deps<S, B, K>,
    config: &Config,
    value: Value,
    progress: &UndoLog,
) -> Result<Reply, Reply>
where
    S: ObjectStore,
    B: Builds,
    K: SecretSource,
{
    let run = RunRequest::from_value(value).map_err(|e| Reply::error(400, e.to_string()))?;
    let settings = settings(deps, config).await?;
    let token = match &deps.github_token {
        Some(cache) => Some(
            cache
                .get()
                .await
                .map_err(|e| Reply::error(503, format!("cannot read the GitHub token: {e}")))?,
        ),
        None => None,
    };
    let token = token.as_deref().map(String::as_str);
    let repo = &config.repository;
    let api_error = |e: crate::github::ApiError| Reply::error(e.status, e.message);
    let default_branch = deps
        .github
        .default_branch(repo, token)
        .await
        .map_err(api_error)?;
    let git_ref = run.full_ref(&default_branch);
    let commit = deps
        .github
        .ref_commit(repo, &git_ref, token)
        .await
        .map_err(api_error)?;
    let (variant, project, release_id) = if git_ref.starts_with("refs/heads/") {
        (Variant::Ci, config.ci_project.clone(), None)
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        let Some(release) = &config.release_project else {
            return Err(Reply::error(
                422,
                format!(
                    "{git_ref} is a tag, but no release project is configured (RELEASE_PROJECT)"
                ),
            ));
        };
        if !settings.release.enabled {
            return Err(Reply::error(
                422,
                format!(
                    "{git_ref} is a tag, but the deployed settings disable the release variant"
                ),
            ));
        }
        (
            Variant::Release,
            release.clone(),
            Some(run.release_id.clone().unwrap_or_else(|| tag.to_owned())),
        )
    } else {
        return Err(Reply::error(
            400,
            format!("{git_ref} is neither a branch nor a tag"),
        ));
    };
    let what = match run.trigger {
        Trigger::Schedule => "the scheduled run",
        Trigger::Dispatch => "a dispatched run",
    };
    let changes = if run.flavors.is_empty() {
        Changes::Unknown(format!("{what} builds every flavor"))
    } else {
        Changes::Flavors {
            names: run.flavors.clone(),
            reason: format!("asked for by {what}"),
        }
    };
    // A retried invocation (the scheduler retries, a dispatch may be sent twice) is the same
    // request: it is handled once, like a redelivered webhook body.
    let trigger = serde_json::to_value(run.trigger).unwrap_or_default();
    let identity = format!(
        "{}\n{}\n{git_ref}",
        trigger.as_str().unwrap_or_default(),
        run.id
    );
    let key = signature::delivery_key("run", identity.as_bytes());
    let start = Start {
        trigger: match run.trigger {
            Trigger::Schedule => RunTrigger::Schedule,
            Trigger::Dispatch => RunTrigger::Dispatch,
        },
        pull_request: None,
        default_branch: git_ref.strip_prefix("refs/heads/") == Some(default_branch.as_str()),
        supersede: variant == Variant::Ci
            && superseded::applies(
                settings.batch.stop_superseded,
                &git_ref,
                Some(&default_branch),
            ),
        git_ref,
        commit,
        tree_id: None,
        variant,
        project,
        release_id,
        changes: ChangesFrom::Delivery(changes),
        about: vec![("trigger", trigger), ("run", json!(run.id))],
    };
    build(deps, config, &run.id, &key, &settings, start, progress).await
}
