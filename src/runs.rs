//! Run records: what the webhook writes when it starts a batch (`runs/<batch id>.json`, see
//! [`crate::layout::run_key`]), and how a run's state reads once CodeBuild reports its builds.
//! `flavor-ci status` and `flavor-ci retry` read them.

use serde::{Deserialize, Serialize};

/// The tag of run records and of the markers of superseded runs.
pub const RUN_TAG: &str = "flavor-ci=run";

/// One flavor of a run, with its build identifier in the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFlavor {
    pub name: String,
    pub identifier: String,
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunTrigger {
    Push,
    PullRequest,
    Schedule,
    Dispatch,
}

/// The record of one batch the webhook started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub batch_id: String,
    pub project: String,
    pub commit: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<u64>,
    pub trigger: RunTrigger,
    pub flavors: Vec<RunFlavor>,
    /// Milliseconds since the epoch.
    pub started_at: u64,
    /// `s3://…` of the batch buildspec.
    pub buildspec: String,
}

/// A marker the webhook leaves when it stops a run because a newer one replaced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Superseded {
    pub by: String,
    pub at: u64,
}

/// One flavor's build as CodeBuild reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlavorState {
    pub flavor: String,
    /// CodeBuild's build status (`SUCCEEDED`, `FAILED`, `IN_PROGRESS`, …), or `NOT_STARTED`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// A run's overall state, as `flavor-ci status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    Succeeded,
    Failed,
    Running,
}

impl Overall {
    /// The exit status `flavor-ci status` ends with: 0 all succeeded, 1 any failed, 4 any
    /// still running.
    pub fn exit_code(self) -> u8 {
        match self {
            Overall::Succeeded => 0,
            Overall::Failed => 1,
            Overall::Running => 4,
        }
    }
}

fn is_running(status: &str) -> bool {
    matches!(status, "IN_PROGRESS" | "NOT_STARTED" | "PENDING" | "QUEUED")
}

/// Any build still running makes the run running; otherwise any build that did not succeed
/// makes it failed.
pub fn overall(states: &[FlavorState]) -> Overall {
    if states.iter().any(|s| is_running(&s.status)) {
        Overall::Running
    } else if states.iter().all(|s| s.status == "SUCCEEDED") {
        Overall::Succeeded
    } else {
        Overall::Failed
    }
}

/// A table of the flavors (flavor, status, duration, logs) and a one-line summary.
pub fn table(record: &RunRecord, states: &[FlavorState]) -> String {
    let width = states
        .iter()
        .map(|s| s.flavor.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "batch {} on {}, commit {} ({}{})\n",
        record.batch_id,
        record.project,
        record.commit,
        record.git_ref,
        record
            .pull_request
            .map(|n| format!(", pull request #{n}"))
            .unwrap_or_default()
    );
    out.push_str(&format!(
        "{:<width$}  {:<12}  {:>8}  logs\n",
        "flavor", "status", "duration"
    ));
    for s in states {
        let duration = s
            .seconds
            .map(|t| format!("{}m{:02}s", t / 60, t % 60))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<width$}  {:<12}  {:>8}  {}\n",
            s.flavor,
            s.status,
            duration,
            s.logs.as_deref().unwrap_or("-")
        ));
    }
    let count = |f: &dyn Fn(&FlavorState) -> bool| states.iter().filter(|s| f(s)).count();
    let failed: Vec<&str> = states
        .iter()
        .filter(|s| !is_running(&s.status) && s.status != "SUCCEEDED")
        .map(|s| s.flavor.as_str())
        .collect();
    out.push_str(&match overall(states) {
        Overall::Succeeded => format!("all {} flavors succeeded\n", states.len()),
        Overall::Running => format!(
            "{} of {} flavors still running, {} succeeded, {} failed\n",
            count(&|s| is_running(&s.status)),
            states.len(),
            count(&|s| s.status == "SUCCEEDED"),
            failed.len()
        ),
        Overall::Failed => format!(
            "{} of {} flavors failed: {}\n",
            failed.len(),
            states.len(),
            failed.join(", ")
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(flavor: &str, status: &str) -> FlavorState {
        FlavorState {
            flavor: flavor.into(),
            status: status.into(),
            seconds: Some(75),
            logs: None,
        }
    }

    #[test]
    fn the_overall_state_and_exit_code_follow_the_builds() {
        let ok = [state("a", "SUCCEEDED"), state("b", "SUCCEEDED")];
        assert_eq!(overall(&ok), Overall::Succeeded);
        let failed = [state("a", "SUCCEEDED"), state("b", "FAILED")];
        assert_eq!(overall(&failed).exit_code(), 1);
        let running = [state("a", "FAILED"), state("b", "IN_PROGRESS")];
        assert_eq!(overall(&running).exit_code(), 4);
        let stopped = [state("a", "STOPPED")];
        assert_eq!(overall(&stopped), Overall::Failed);
    }

    #[test]
    fn the_table_names_each_flavor_and_sums_up() {
        let record = RunRecord {
            batch_id: "ci:1".into(),
            project: "ci".into(),
            commit: "abc".into(),
            git_ref: "refs/pull/7/head".into(),
            pull_request: Some(7),
            trigger: RunTrigger::PullRequest,
            flavors: vec![],
            started_at: 0,
            buildspec: String::new(),
        };
        let text = table(
            &record,
            &[state("base", "SUCCEEDED"), state("r-4.4", "FAILED")],
        );
        assert!(
            text.starts_with("batch ci:1 on ci, commit abc (refs/pull/7/head, pull request #7)\n"),
            "{text}"
        );
        assert!(text.contains("r-4.4   FAILED           1m15s  -"), "{text}");
        assert!(text.ends_with("1 of 2 flavors failed: r-4.4\n"), "{text}");
    }
}
