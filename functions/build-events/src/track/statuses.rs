//! The GitHub statuses of a run: one per flavor and the aggregate, under the stack's context
//! (`<context>/release` for release runs).

use flavor_ci::layout::run_key;
use flavor_ci::runs::{RunRecord, StatusText, flavor_status};
use flavor_ci_aws::github::Auth;
use flavor_ci_aws::github_status::{CommitStatus, StatusState};
use flavor_ci_aws::store::ObjectStore;
use lambda_runtime::tracing::{info, warn};

use crate::config::Config;
use crate::deps::{Deps, Ports};

/// Posts one status on the run's commit; a failure is logged and returned as `false`, never
/// an error: statuses do not decide whether builds run.
pub(crate) async fn post<P: Ports>(
    deps: &Deps<P>,
    config: &Config,
    commit: &str,
    context: &str,
    text: &StatusText,
    target: Option<String>,
) -> bool {
    let token = &deps.github;
    if !token.has_token() {
        return true;
    }
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
pub(super) fn run_context(config: &Config, record: &RunRecord) -> Option<String> {
    let base = config.status_context.as_ref()?;
    Some(
        if config.release_project.as_deref() == Some(record.project.as_str()) {
            format!("{base}/release")
        } else {
            base.clone()
        },
    )
}

pub(super) fn flavor_context(config: &Config, record: &RunRecord, flavor: &str) -> Option<String> {
    run_context(config, record).map(|c| format!("{c}/{flavor}"))
}

/// Posts the status of `flavor` as `record` has it. A pending status that raced with a later
/// write is followed by the newer one, so GitHub ends with the record's state.
pub(super) async fn post_flavor<P: Ports>(
    deps: &Deps<P>,
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
