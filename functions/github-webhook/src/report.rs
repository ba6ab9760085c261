//! The aggregate status the webhook reports on a commit: pending while a batch builds, a
//! success when nothing is affected, pending while a fork waits for approval.

use flavor_ci::runs::StatusText;
use flavor_ci_aws::github_status::{CommitStatus, StatusState};
use lambda_runtime::tracing::warn;

use crate::github::Repository;
use crate::outcome::Aggregate;
use crate::ports::{Job, Ports};

/// Posts the aggregate status on `commit`, when the stack posts statuses. A failure is
/// logged, never an error: the status does not decide whether builds run. Returns what the
/// answer reports.
pub(crate) async fn post_aggregate<P: Ports>(
    job: Job<'_, P>,
    commit: &str,
    release: bool,
    text: &StatusText,
    target: Option<String>,
) -> Option<Aggregate> {
    let (deps, config) = (job.deps, job.config);
    let base = config.status_context.as_ref()?;
    // Release runs report under `<context>/release`: a tag on a commit the CI built never
    // overwrites the required check.
    let context = if release {
        format!("{base}/release")
    } else {
        base.clone()
    };
    let status = CommitStatus {
        state: StatusState::from_name(text.state),
        context: context.clone(),
        description: text.description.clone(),
        target_url: target,
    };
    let posted = deps
        .github
        .post_status(&config.repository, commit, &status)
        .await?;
    if let Err(e) = &posted {
        warn!(context, commit, error = %e, "the aggregate status was not posted");
    }
    Some(Aggregate {
        context,
        state: text.state,
        description: status.description,
        posted: posted.is_ok(),
    })
}
