//! The run adapter: the nightly schedule and `flavor-ci dispatch` invoke the function directly
//! with `{"flavorCiRun": {…}}` (see `flavor_ci::webhook::run`). The ref's head commit is
//! resolved through GitHub, then built like a push of it: every flavor, or the ones asked for.

use flavor_ci::generate::Variant;
use flavor_ci::runs::RunTrigger;
use flavor_ci::selection::Changes;
use flavor_ci::settings::Settings;
use flavor_ci::webhook::run::{RunRequest, Trigger};
use flavor_ci::webhook::signature;

use crate::batch::{self, ChangesFrom, Start, Ticket};
use crate::github::Repository;
use crate::outcome::{Context, Fault, Outcome, Refusal};
use crate::ports::{Job, Ports};
use crate::skip::Trust;
use crate::superseded;
use flavor_ci::settings::SkipTrigger;

pub(crate) async fn on_run<P: Ports>(job: Job<'_, P>, run: RunRequest) -> Outcome {
    match start(job, run).await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

async fn start<P: Ports>(job: Job<'_, P>, run: RunRequest) -> Result<Outcome, Outcome> {
    let config = job.config;
    let settings = job.settings().await?;
    let (github, repo) = (&job.deps.github, &config.repository);
    let default_branch = github.default_branch(repo).await.map_err(Refusal::from)?;
    let git_ref = run.full_ref(&default_branch);
    let commit = github
        .ref_commit(repo, &git_ref)
        .await
        .map_err(Refusal::from)?;
    let (variant, project, release_id) = target(job, &settings, &run, &git_ref)?;
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
    let trigger = trigger.as_str().unwrap_or_default().to_owned();
    let identity = format!("{trigger}\n{}\n{git_ref}", run.id);
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
        context: Context {
            trigger: Some(trigger),
            run: Some(run.id.clone()),
            ..Context::default()
        },
        earlier: None,
        merge_group: None,
        announce: None,
        skip_as: match run.trigger {
            Trigger::Schedule => None,
            // `--force` builds every asked-for flavor.
            Trigger::Dispatch => (!run.force).then_some(SkipTrigger::Dispatches),
        },
        rebuild: run.force,
        trust: Trust::Yes,
    };
    Ok(batch::run(job, Ticket::new(&run.id, &key), &settings, start).await)
}

/// The variant, project and release id a run of `git_ref` builds: a branch the CI variant, a
/// tag the release variant.
fn target<P: Ports>(
    job: Job<'_, P>,
    settings: &Settings,
    run: &RunRequest,
    git_ref: &str,
) -> Result<(Variant, String, Option<String>), Refusal> {
    let config = job.config;
    if git_ref.starts_with("refs/heads/") {
        return Ok((Variant::Ci, config.ci_project.clone(), None));
    }
    let Some(tag) = git_ref.strip_prefix("refs/tags/") else {
        return Err(Refusal::new(
            Fault::BadRequest,
            format!("{git_ref} is neither a branch nor a tag"),
        ));
    };
    let Some(release) = &config.release_project else {
        return Err(Refusal::new(
            Fault::Unbuildable,
            format!("{git_ref} is a tag, but no release project is configured (RELEASE_PROJECT)"),
        ));
    };
    if !settings.release.enabled {
        return Err(Refusal::new(
            Fault::Unbuildable,
            format!("{git_ref} is a tag, but the deployed settings disable the release variant"),
        ));
    }
    Ok((
        Variant::Release,
        release.clone(),
        Some(run.release_id.clone().unwrap_or_else(|| tag.to_owned())),
    ))
}
