//! What the webhook reports on a commit: the aggregate (a commit status, or with a GitHub App
//! the aggregate check run) pending while a batch builds, a success when nothing is affected,
//! waiting while a fork waits for approval; with the App, each flavor's check run queued when
//! its batch starts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flavor_ci::runs::Skipped;
use flavor_ci_aws::undo::now_ms;

use flavor_ci::runs::checks::{Button, aggregate_summary, external_id, flavor_check_name};
use flavor_ci::runs::{CheckIds, RunRecord, StatusText};
use flavor_ci_aws::github::checks::{Action, CheckRun, CheckState, Output};
use flavor_ci_aws::github_status::{CommitStatus, StatusState};
use lambda_runtime::tracing::{info, warn};

use crate::config::FlavorChecks;
use crate::github::Repository;
use crate::outcome::Aggregate;
use crate::ports::{Job, Ports};

/// How long a started batch's flavor check runs may take to create; the build-events function
/// creates the rest when their builds report. GitHub asks for such requests one at a time.
const FLAVOR_CHECKS_BUDGET: Duration = Duration::from_millis(2500);

/// What the aggregate says: as a commit status (`text`) and as a check run (`check`, with
/// `text.description` for its title and a markdown summary).
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub(crate) text: StatusText,
    pub(crate) check: CheckState,
    pub(crate) summary: String,
    pub(crate) button: Option<Button>,
    pub(crate) external_id: Option<String>,
    pub(crate) target: Option<String>,
}

impl Verdict {
    /// Nothing to build: the required check passes at once.
    pub(crate) fn nothing(reason: &str) -> Self {
        Self {
            text: StatusText {
                state: "success",
                description: format!("no flavor affected: {reason}"),
            },
            check: CheckState::Completed("success"),
            summary: format!("No flavor is affected, so nothing was built.\n\n{reason}\n"),
            button: None,
            external_id: None,
            target: None,
        }
    }

    /// Waiting for someone: pending, a queued check run.
    pub(crate) fn waiting(description: String, reason: &str) -> Self {
        Self {
            text: StatusText {
                state: "pending",
                description,
            },
            check: CheckState::Queued,
            summary: format!("{reason}\n"),
            button: None,
            external_id: None,
            target: None,
        }
    }
}

/// The aggregate's name on `commit`: `<context>`, or `<context>/release` for release runs, so
/// a tag on a commit the CI built never overwrites the required check.
fn context<P: Ports>(job: Job<'_, P>, release: bool) -> Option<String> {
    let base = job.config.status_context.as_ref()?;
    Some(if release {
        format!("{base}/release")
    } else {
        base.clone()
    })
}

/// Reports the aggregate on `commit`, when the stack reports at all. A failure is logged,
/// never an error: the report does not decide whether builds run. Returns what the answer
/// says of it.
pub(crate) async fn post_aggregate<P: Ports>(
    job: Job<'_, P>,
    commit: &str,
    release: bool,
    verdict: Verdict,
) -> Option<Aggregate> {
    let (github, repo) = (&job.deps.github, &job.config.repository);
    let context = context(job, release)?;
    if github.writes_checks() {
        let run = CheckRun {
            name: context.clone(),
            head_sha: commit.to_owned(),
            state: verdict.check,
            external_id: verdict.external_id,
            details_url: verdict.target,
            output: Some(Output {
                title: verdict.text.description.clone(),
                summary: verdict.summary,
                text: None,
            }),
            actions: verdict.button.map(action).into_iter().collect(),
        };
        let written = github.write_check(repo, None, &run).await;
        if let Err(e) = &written {
            warn!(check = context, commit, error = %e, "the aggregate check run was not written");
        }
        return Some(Aggregate {
            context,
            state: check_state(verdict.check),
            description: verdict.text.description,
            posted: written.is_ok(),
        });
    }
    let status = CommitStatus {
        state: StatusState::from_name(verdict.text.state),
        context: context.clone(),
        description: verdict.text.description.clone(),
        target_url: verdict.target,
    };
    let posted = github.post_status(repo, commit, &status).await?;
    if let Err(e) = &posted {
        warn!(context, commit, error = %e, "the aggregate status was not posted");
    }
    Some(Aggregate {
        context,
        state: verdict.text.state,
        description: status.description,
        posted: posted.is_ok(),
    })
}

pub(crate) fn action(b: Button) -> Action {
    Action {
        label: b.label.into(),
        description: b.description.into(),
        identifier: b.identifier.into(),
    }
}

/// A check run's state as the answer names it.
fn check_state(state: CheckState) -> &'static str {
    match state {
        CheckState::Queued => "queued",
        CheckState::InProgress => "in_progress",
        CheckState::Completed(c) => c,
    }
}

/// Reports each flavor left out because identical inputs built green: its own check run,
/// completed `success` with the evidence (`FlavorChecks: all`), or its own commit status
/// (`FlavorStatuses: all`), linking to the build that proved it. Returns the check runs'
/// ids by flavor.
pub(crate) async fn skipped_flavors<P: Ports>(
    job: Job<'_, P>,
    commit: &str,
    project: &str,
    skipped: &BTreeMap<String, Skipped>,
) -> BTreeMap<String, u64> {
    let mut ids = BTreeMap::new();
    let (github, config) = (&job.deps.github, job.config);
    let Some(context) = context(job, false) else {
        return ids;
    };
    let app = github.writes_checks();
    let wanted = if app {
        config.flavor_checks
    } else {
        config.flavor_statuses
    };
    if wanted != FlavorChecks::All || skipped.is_empty() {
        return ids;
    }
    let region = job.deps.region.get().await;
    let now = now_ms();
    let began = Instant::now();
    for (flavor, s) in skipped {
        if began.elapsed() > FLAVOR_CHECKS_BUDGET {
            warn!(
                left = skipped.len() - ids.len(),
                "no time left to report every skipped flavor"
            );
            break;
        }
        let page = flavor_ci::layout::console_build_url(region, project, &s.build_id);
        if app {
            let run = CheckRun {
                name: flavor_check_name(&context, flavor),
                head_sha: commit.to_owned(),
                state: CheckState::Completed("success"),
                external_id: Some(format!("skipped#{flavor}")),
                details_url: Some(page.clone()),
                output: Some(Output {
                    title: "skipped: identical inputs built green".into(),
                    summary: format!(
                        "Not built: {}.\n\nThe inputs (input key `{}`) are byte for byte those of that build; see docs/skipping.md.\n",
                        s.evidence(now, &format!("[{}]({page})", s.build_id)),
                        s.key
                    ),
                    text: None,
                }),
                actions: Vec::new(),
            };
            match github.write_check(&config.repository, None, &run).await {
                Ok(id) => {
                    ids.insert(flavor.clone(), id);
                }
                Err(e) => {
                    warn!(check = %run.name, error = %e, "the skipped flavor's check run was not written")
                }
            }
        } else {
            let status = CommitStatus {
                state: StatusState::Success,
                context: format!("{context}/{flavor}"),
                description: s.evidence(now, &s.build_id),
                target_url: Some(page),
            };
            if let Some(Err(e)) = github
                .post_status(&config.repository, commit, &status)
                .await
            {
                warn!(context = %status.context, error = %e, "the skipped flavor's status was not posted");
            }
        }
    }
    ids
}

/// The check runs of a batch that just started (the App mode): the aggregate in progress, with
/// the table of its flavors, and each flavor's queued (`FlavorChecks: all`, as many as fit in
/// the time they may take). `flavors` limits which flavors get a new check run (a re-run keeps
/// the others'). Their ids go into the run record; `None` when the stack writes no check runs.
/// A flavor without an id gets its check run from the build-events function.
pub(crate) async fn open_checks<P: Ports>(
    job: Job<'_, P>,
    record: &RunRecord,
    release: bool,
    flavors: Option<&[String]>,
) -> Option<(CheckIds, Aggregate)> {
    let github = &job.deps.github;
    if !github.writes_checks() {
        return None;
    }
    let context = context(job, release)?;
    let repo = &job.config.repository;
    let region = job.deps.region.get().await;
    let page = flavor_ci::layout::console_batch_url(region, &record.project, &record.batch_id);
    let title = flavor_ci::runs::building_status(record.flavors.len()).description;
    let aggregate = CheckRun {
        name: context.clone(),
        head_sha: record.commit.clone(),
        state: CheckState::InProgress,
        external_id: Some(external_id(&record.batch_id, None)),
        details_url: Some(page.clone()),
        output: Some(Output {
            title: title.clone(),
            summary: aggregate_summary(record),
            text: None,
        }),
        actions: Vec::new(),
    };
    let mut ids = record.checks.clone().unwrap_or_default();
    let written = github.write_check(repo, None, &aggregate).await;
    match &written {
        Ok(id) => ids.aggregate = Some(*id),
        Err(e) => {
            // The build-events function creates it when the run ends.
            ids.aggregate = None;
            warn!(check = context, error = %e, "the aggregate check run was not created");
        }
    }
    // A re-run under `FlavorChecks: failures` replaces the failed flavors' check runs too, so
    // none stays red once its new build passes.
    let create = match job.config.flavor_checks {
        FlavorChecks::All => true,
        FlavorChecks::Failures => flavors.is_some(),
        FlavorChecks::None => false,
    };
    if create {
        let began = Instant::now();
        for flavor in &record.flavors {
            let name = &flavor.name;
            if flavors.is_some_and(|only| !only.contains(name)) || record.skipped.contains_key(name)
            {
                continue;
            }
            ids.flavors.remove(name);
            if began.elapsed() > FLAVOR_CHECKS_BUDGET {
                continue;
            }
            let run = CheckRun {
                name: flavor_check_name(&context, name),
                head_sha: record.commit.clone(),
                state: CheckState::Queued,
                external_id: Some(external_id(&record.batch_id, Some(name))),
                details_url: Some(page.clone()),
                output: Some(Output {
                    title: "queued".into(),
                    summary: format!(
                        "Waiting for CodeBuild. Why it builds: {}\n",
                        record.why(name)
                    ),
                    text: None,
                }),
                actions: Vec::new(),
            };
            match github.write_check(repo, None, &run).await {
                Ok(id) => {
                    ids.flavors.insert(name.clone(), id);
                }
                Err(e) => {
                    warn!(check = %run.name, error = %e, "the flavor's check run was not created");
                }
            }
        }
        info!(
            batch = %record.batch_id,
            created = ids.flavors.len(),
            ms = began.elapsed().as_millis() as u64,
            "check runs created"
        );
    }
    Some((
        ids,
        Aggregate {
            context,
            state: "in_progress",
            description: title,
            posted: written.is_ok(),
        },
    ))
}
