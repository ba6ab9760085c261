//! What a run's state reads as: the commit statuses (one per flavor, the aggregate) and the
//! table `flavor-ci status` prints.

use serde::Serialize;

use super::{BuildState, NO_RESULT, RunRecord};

/// A commit status: GitHub's state (`pending`, `success`, `failure`, `error`) and a
/// description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusText {
    pub state: &'static str,
    pub description: String,
}

pub fn duration(seconds: u64) -> String {
    if seconds >= 3600 {
        format!("{}h{:02}m", seconds / 3600, seconds / 60 % 60)
    } else {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    }
}

/// The status of one flavor's build: state, phase, duration, and the phase that failed.
pub fn flavor_status(build: &BuildState) -> StatusText {
    let after = build
        .seconds
        .map(|s| format!(" after {}", duration(s)))
        .unwrap_or_default();
    let phase = |p: &Option<String>| p.as_deref().map(|p| format!(" in {p}")).unwrap_or_default();
    let (state, description) = match build.status.as_str() {
        "SUCCEEDED" => (
            "success",
            match build.seconds {
                Some(s) => format!("succeeded in {}", duration(s)),
                None => "succeeded".to_owned(),
            },
        ),
        "FAILED" => (
            "failure",
            format!("failed{}{after}", phase(&build.failed_phase)),
        ),
        "TIMED_OUT" => (
            "failure",
            format!(
                "timed out{}{after}",
                phase(&build.failed_phase.clone().or(build.phase.clone()))
            ),
        ),
        "FAULT" => (
            "error",
            format!("CodeBuild fault{}{after}", phase(&build.failed_phase)),
        ),
        "STOPPED" => ("error", format!("stopped{}{after}", phase(&build.phase))),
        NO_RESULT => (
            "error",
            "no result: the batch ended before this flavor's build reported one".to_owned(),
        ),
        "IN_PROGRESS" => (
            "pending",
            match &build.phase {
                Some(p) => format!("building ({p})"),
                None => "building".to_owned(),
            },
        ),
        other => ("pending", format!("waiting ({})", other.to_lowercase())),
    };
    StatusText { state, description }
}

/// The aggregate status of a run that ended: success only when every flavor succeeded.
pub fn aggregate_status(total: usize, failed: &[(String, String)]) -> StatusText {
    if failed.is_empty() {
        return StatusText {
            state: "success",
            description: match total {
                1 => "the flavor succeeded".to_owned(),
                n => format!("all {n} flavors succeeded"),
            },
        };
    }
    let names: Vec<String> = failed
        .iter()
        .map(|(f, s)| match s.as_str() {
            "FAILED" => f.clone(),
            other => format!("{f} ({})", other.to_lowercase().replace('_', " ")),
        })
        .collect();
    StatusText {
        state: "failure",
        description: format!(
            "{} of {total} flavors failed: {}",
            failed.len(),
            names.join(", ")
        ),
    }
}

/// The aggregate status of a run a newer run of its ref replaced.
pub fn superseded_status() -> StatusText {
    stopped_status(None)
}

/// The aggregate status of a run flavor-ci stopped: superseded by a newer run of its ref, or
/// for `reason` (a merge group removed from the queue).
pub fn stopped_status(reason: Option<&str>) -> StatusText {
    StatusText {
        state: "error",
        description: match reason {
            Some(r) => format!("stopped: {r}"),
            None => "stopped: a newer run of this ref replaced it".to_owned(),
        },
    }
}

/// The aggregate status while a run's builds run.
pub fn building_status(flavors: usize) -> StatusText {
    StatusText {
        state: "pending",
        description: match flavors {
            1 => "1 flavor building".to_owned(),
            n => format!("{n} flavors building"),
        },
    }
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
    let (skipped, seconds) = record.saved();
    if skipped > 0 {
        out.push_str(&format!(
            "{skipped} build{} skipped: identical inputs built green before, {}m{:02}s of build time saved\n",
            if skipped == 1 { "" } else { "s" },
            seconds / 60,
            seconds % 60
        ));
    }
    out
}
