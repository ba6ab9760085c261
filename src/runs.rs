//! Run records: what the webhook writes when it starts a batch (`runs/<batch id>.json`, see
//! [`crate::layout::run_key`]), and how a run's state reads once CodeBuild reports its builds.
//! `flavor-ci status` and `flavor-ci retry` read them.

use std::collections::BTreeMap;

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
    /// `owner/name`: where the commit statuses go.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub repository: String,
    /// Whether `ref` is the repository's default branch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_branch: bool,
    /// Each flavor's build as CodeBuild last reported it, by flavor name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub builds: BTreeMap<String, BuildState>,
    /// The run's outcome, once every flavor's build has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Finished>,
}

/// One flavor's build as CodeBuild reported it (a Build State Change event, or the batch as
/// `BatchGetBuildBatches` and `BatchGetBuilds` describe it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildState {
    pub build_id: String,
    /// CodeBuild's build status: `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `FAULT`, `TIMED_OUT`,
    /// `STOPPED`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The phase that failed, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_type: Option<String>,
    /// The build's logs (CloudWatch deep link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// The build's console page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// When CodeBuild reported this state (milliseconds since the epoch): orders reports of
    /// one build that arrive out of order.
    pub reported_at: u64,
}

/// A run's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finished {
    pub succeeded: bool,
    /// The flavors whose builds did not succeed, with their status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<(String, String)>,
    pub at: u64,
    /// Whether the aggregate status went out (or none is posted); the reconciler tries again
    /// while it has not.
    pub status_posted: bool,
    /// Whether the failure notification went out (or none is due).
    pub announced: bool,
    /// Stopped because a newer run of its ref replaced it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub superseded: bool,
}

impl Finished {
    pub fn reported(&self) -> bool {
        self.status_posted && self.announced
    }
}

/// What applying a build's state to a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The record changed; `reopened` when a newer attempt (a retry) reopened a finished run.
    Changed { reopened: bool },
    /// Nothing to change: the same state again, or one older than the recorded one.
    Stale(&'static str),
    /// The build is not one of this run's flavors.
    UnknownFlavor,
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Some builds have not ended (or not been reported yet).
    Open { ended: usize, total: usize },
    /// Every flavor's build ended.
    Ended {
        succeeded: bool,
        failed: Vec<(String, String)>,
    },
}

/// Whether a CodeBuild build status is an end state.
pub fn is_final(status: &str) -> bool {
    matches!(
        status,
        "SUCCEEDED" | "FAILED" | "FAULT" | "TIMED_OUT" | "STOPPED" | NO_RESULT
    )
}

/// The state recorded for a flavor whose batch ended without a result for it: the batch failed
/// or was stopped before the flavor's build ran, or CodeBuild no longer describes the build.
pub const NO_RESULT: &str = "NO_RESULT";

/// How far a build has come: queued, running, ended.
fn rank(status: &str) -> u8 {
    match status {
        s if is_final(s) => 2,
        "IN_PROGRESS" => 1,
        _ => 0,
    }
}

impl RunRecord {
    /// The flavor a build belongs to: its `FLAVOR` variable when that names a flavor of this
    /// run, else its batch task identifier.
    pub fn flavor_of(&self, variable: Option<&str>, identifier: Option<&str>) -> Option<String> {
        let by_name = variable.and_then(|v| self.flavors.iter().find(|f| f.name == v));
        let by_identifier =
            identifier.and_then(|i| self.flavors.iter().find(|f| f.identifier == i));
        by_name.or(by_identifier).map(|f| f.name.clone())
    }

    /// Records `state` for `flavor` unless the record already holds the same or a later
    /// state: an ended build never goes back to running, and a report about an earlier
    /// attempt never replaces a later attempt (a retry).
    pub fn apply(&mut self, flavor: &str, state: BuildState) -> Applied {
        if !self.flavors.iter().any(|f| f.name == flavor) {
            return Applied::UnknownFlavor;
        }
        let reopened = match self.builds.get(flavor) {
            None => false,
            Some(old) if *old == state => return Applied::Stale("the same state again"),
            // The build's own result, late, replaces the placeholder its batch's end left.
            Some(old)
                if old.status == NO_RESULT
                    && is_final(&state.status)
                    && state.status != NO_RESULT =>
            {
                self.finished.is_some()
            }
            Some(old) if old.build_id == state.build_id => {
                if is_final(&old.status) {
                    return Applied::Stale("the build already ended");
                }
                match rank(&state.status).cmp(&rank(&old.status)) {
                    std::cmp::Ordering::Less => {
                        return Applied::Stale("older than the recorded state");
                    }
                    std::cmp::Ordering::Equal if state.reported_at < old.reported_at => {
                        return Applied::Stale("older than the recorded state");
                    }
                    // Still running in the same phase: nothing a reader would see changed.
                    std::cmp::Ordering::Equal
                        if state.status == old.status && state.phase == old.phase =>
                    {
                        return Applied::Stale("no news: the same status and phase");
                    }
                    _ => false,
                }
            }
            Some(old) => {
                // Another build of the same flavor: a retry is the later one.
                let start = |b: &BuildState| b.started_at.unwrap_or(b.reported_at);
                if start(&state) <= start(old) {
                    return Applied::Stale("a report about an earlier attempt");
                }
                self.finished.is_some()
            }
        };
        if reopened {
            self.finished = None;
        }
        self.builds.insert(flavor.to_owned(), state);
        Applied::Changed { reopened }
    }

    /// Whether every flavor's build ended, and how.
    pub fn progress(&self) -> Progress {
        let ended: Vec<(&str, &str)> = self
            .flavors
            .iter()
            .filter_map(|f| {
                self.builds
                    .get(&f.name)
                    .filter(|b| is_final(&b.status))
                    .map(|b| (f.name.as_str(), b.status.as_str()))
            })
            .collect();
        if ended.len() < self.flavors.len() {
            return Progress::Open {
                ended: ended.len(),
                total: self.flavors.len(),
            };
        }
        let failed: Vec<(String, String)> = ended
            .iter()
            .filter(|(_, s)| *s != "SUCCEEDED")
            .map(|(f, s)| ((*f).to_owned(), (*s).to_owned()))
            .collect();
        Progress::Ended {
            succeeded: failed.is_empty(),
            failed,
        }
    }

    /// Once the batch has ended (`batch_status` is not `IN_PROGRESS`), every flavor still
    /// without an ended build is recorded as [`NO_RESULT`], so the run ends too and its
    /// aggregate status never waits for builds that will not come. Returns those flavors.
    pub fn settle(&mut self, batch_status: &str, at: u64) -> Vec<String> {
        if batch_status == "IN_PROGRESS" {
            return Vec::new();
        }
        let open: Vec<String> = self
            .flavors
            .iter()
            .filter(|f| {
                !self
                    .builds
                    .get(&f.name)
                    .is_some_and(|b| is_final(&b.status))
            })
            .map(|f| f.name.clone())
            .collect();
        for flavor in &open {
            let previous = self.builds.remove(flavor);
            self.builds.insert(
                flavor.clone(),
                BuildState {
                    build_id: previous.map(|b| b.build_id).unwrap_or_default(),
                    status: NO_RESULT.to_owned(),
                    phase: None,
                    failed_phase: None,
                    started_at: None,
                    ended_at: Some(at),
                    seconds: None,
                    compute_type: None,
                    logs: None,
                    page: None,
                    reported_at: at,
                },
            );
        }
        open
    }

    /// Whether a failure of this run is announced on the notification topic: runs of the
    /// default branch, of tags and scheduled runs; pull requests have their statuses.
    pub fn announces_failure(&self) -> bool {
        self.pull_request.is_none()
            && (self.default_branch
                || self.git_ref.starts_with("refs/tags/")
                || self.trigger == RunTrigger::Schedule)
    }
}

/// A commit status: GitHub's state (`pending`, `success`, `failure`, `error`) and a
/// description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusText {
    pub state: &'static str,
    pub description: String,
}

fn duration(seconds: u64) -> String {
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
    StatusText {
        state: "error",
        description: "stopped: a newer run of this ref replaced it".to_owned(),
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
            repository: String::new(),
            default_branch: false,
            builds: BTreeMap::new(),
            finished: None,
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

    fn run(flavors: &[&str]) -> RunRecord {
        RunRecord {
            batch_id: "ci:1".into(),
            project: "ci".into(),
            commit: "abc".into(),
            git_ref: "refs/heads/main".into(),
            pull_request: None,
            trigger: RunTrigger::Push,
            flavors: flavors
                .iter()
                .map(|f| RunFlavor {
                    name: (*f).into(),
                    identifier: f.replace('.', "_"),
                })
                .collect(),
            started_at: 0,
            buildspec: String::new(),
            repository: "acme/slc".into(),
            default_branch: true,
            builds: BTreeMap::new(),
            finished: None,
        }
    }

    fn build(id: &str, status: &str, started: u64, reported: u64) -> BuildState {
        BuildState {
            build_id: id.into(),
            status: status.into(),
            phase: None,
            failed_phase: None,
            started_at: Some(started),
            ended_at: None,
            seconds: None,
            compute_type: None,
            logs: None,
            page: None,
            reported_at: reported,
        }
    }

    #[test]
    fn builds_map_to_flavors_by_variable_then_identifier() {
        let r = run(&["base", "r-4.4"]);
        assert_eq!(r.flavor_of(Some("base"), None).as_deref(), Some("base"));
        assert_eq!(r.flavor_of(None, Some("r-4_4")).as_deref(), Some("r-4.4"));
        assert_eq!(
            r.flavor_of(Some("other"), Some("base")).as_deref(),
            Some("base")
        );
        assert_eq!(r.flavor_of(Some("other"), None), None);
    }

    #[test]
    fn an_ended_build_never_goes_back_and_duplicates_change_nothing() {
        let mut r = run(&["base"]);
        assert_eq!(
            r.apply("base", build("b1", "IN_PROGRESS", 10, 10)),
            Applied::Changed { reopened: false }
        );
        assert_eq!(
            r.apply("base", build("b1", "IN_PROGRESS", 10, 10)),
            Applied::Stale("the same state again")
        );
        // A later report of the same phase (the reconciler's view) is no news.
        assert_eq!(
            r.apply("base", build("b1", "IN_PROGRESS", 10, 20)),
            Applied::Stale("no news: the same status and phase")
        );
        let mut next_phase = build("b1", "IN_PROGRESS", 10, 30);
        next_phase.phase = Some("POST_BUILD".into());
        assert!(matches!(
            r.apply("base", next_phase),
            Applied::Changed { .. }
        ));
        assert!(matches!(
            r.apply("base", build("b1", "SUCCEEDED", 10, 50)),
            Applied::Changed { .. }
        ));
        // The in-progress report arriving late, even with a later time, changes nothing.
        assert_eq!(
            r.apply("base", build("b1", "IN_PROGRESS", 10, 60)),
            Applied::Stale("the build already ended")
        );
        assert_eq!(
            r.apply("base", build("b1", "FAILED", 10, 70)),
            Applied::Stale("the build already ended")
        );
        assert_eq!(r.builds["base"].status, "SUCCEEDED");
        assert_eq!(
            r.apply("nope", build("x", "FAILED", 1, 1)),
            Applied::UnknownFlavor
        );
    }

    #[test]
    fn a_retry_replaces_the_earlier_attempt_and_reopens_the_run() {
        let mut r = run(&["base", "py"]);
        r.apply("base", build("b1", "FAILED", 10, 50));
        r.apply("py", build("p1", "SUCCEEDED", 10, 40));
        let Progress::Ended { succeeded, failed } = r.progress() else {
            panic!("both ended");
        };
        assert!(!succeeded);
        assert_eq!(failed, [("base".to_owned(), "FAILED".to_owned())]);
        r.finished = Some(Finished {
            succeeded,
            failed,
            at: 60,
            status_posted: true,
            announced: true,
            superseded: false,
        });
        assert_eq!(
            r.apply("base", build("b2", "IN_PROGRESS", 100, 100)),
            Applied::Changed { reopened: true }
        );
        assert!(r.finished.is_none());
        assert_eq!(r.progress(), Progress::Open { ended: 1, total: 2 });
        // A late report about the first attempt loses against the retry.
        assert_eq!(
            r.apply("base", build("b1", "FAILED", 10, 200)),
            Applied::Stale("a report about an earlier attempt")
        );
        r.apply("base", build("b2", "SUCCEEDED", 100, 300));
        assert_eq!(
            r.progress(),
            Progress::Ended {
                succeeded: true,
                failed: vec![]
            }
        );
    }

    #[test]
    fn statuses_name_the_phase_the_duration_and_the_failed_flavors() {
        let mut b = build("b1", "FAILED", 0, 0);
        b.failed_phase = Some("BUILD".into());
        b.seconds = Some(125);
        assert_eq!(
            flavor_status(&b),
            StatusText {
                state: "failure",
                description: "failed in BUILD after 2m05s".into()
            }
        );
        b.status = "SUCCEEDED".into();
        assert_eq!(flavor_status(&b).description, "succeeded in 2m05s");
        b.status = "IN_PROGRESS".into();
        b.phase = Some("PROVISIONING".into());
        assert_eq!(flavor_status(&b).state, "pending");
        b.seconds = Some(3 * 3600 + 60);
        b.status = "TIMED_OUT".into();
        b.phase = Some("BUILD".into());
        assert_eq!(
            flavor_status(&b).description,
            "timed out in BUILD after 3h01m"
        );
        let agg = aggregate_status(
            3,
            &[
                ("base".into(), "FAILED".into()),
                ("py".into(), "TIMED_OUT".into()),
            ],
        );
        assert_eq!(agg.state, "failure");
        assert_eq!(
            agg.description,
            "2 of 3 flavors failed: base, py (timed out)"
        );
        assert_eq!(
            aggregate_status(3, &[]).description,
            "all 3 flavors succeeded"
        );
        assert_eq!(building_status(4).description, "4 flavors building");
    }

    #[test]
    fn a_batch_that_ended_settles_the_flavors_without_a_result() {
        let mut r = run(&["base", "py", "r"]);
        r.apply("base", build("b1", "SUCCEEDED", 1, 2));
        r.apply("py", build("p1", "IN_PROGRESS", 1, 2));
        assert!(r.settle("IN_PROGRESS", 9).is_empty());
        assert_eq!(r.settle("FAILED", 9), ["py", "r"]);
        assert_eq!(r.builds["py"].build_id, "p1");
        assert_eq!(flavor_status(&r.builds["r"]).state, "error");
        let Progress::Ended { succeeded, failed } = r.progress() else {
            panic!("the run ended with its batch");
        };
        assert!(!succeeded);
        assert_eq!(failed.len(), 2);
        assert_eq!(
            aggregate_status(3, &failed).description,
            "2 of 3 flavors failed: py (no result), r (no result)"
        );
        // The build's own result, arriving late, replaces the placeholder.
        assert!(matches!(
            r.apply("py", build("p1", "SUCCEEDED", 1, 30)),
            Applied::Changed { reopened: false }
        ));
        assert_eq!(r.builds["py"].status, "SUCCEEDED");
        // A retry's build still replaces the settled state.
        assert!(matches!(
            r.apply("r", build("r2", "IN_PROGRESS", 20, 20)),
            Applied::Changed { .. }
        ));
    }

    #[test]
    fn failures_are_announced_for_the_default_branch_tags_and_schedules_only() {
        let mut r = run(&["base"]);
        assert!(r.announces_failure());
        r.default_branch = false;
        assert!(!r.announces_failure());
        r.git_ref = "refs/tags/v1".into();
        assert!(r.announces_failure());
        r.git_ref = "refs/heads/x".into();
        r.trigger = RunTrigger::Schedule;
        assert!(r.announces_failure());
        r.pull_request = Some(3);
        assert!(!r.announces_failure());
    }

    #[test]
    fn records_written_before_builds_were_tracked_still_read() {
        let old = r#"{"batchId":"ci:1","project":"ci","commit":"abc","ref":"refs/heads/main","trigger":"push","flavors":[],"startedAt":1,"buildspec":"s3://b/k"}"#;
        let r: RunRecord = serde_json::from_str(old).unwrap();
        assert!(r.builds.is_empty() && r.finished.is_none() && r.repository.is_empty());
    }
}
