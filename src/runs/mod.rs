//! Run records: what the webhook writes when it starts a batch (`runs/<batch id>.json`, see
//! [`crate::layout::run_key`]), and how a run's state reads once CodeBuild reports its builds.
//! `flavor-ci status` and `flavor-ci retry` read them.
//!
//! This module holds the record's model; `progress` how builds' states change a run, and
//! `texts` what a run's state reads as (statuses, the table `flavor-ci status` prints).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod checks;
mod progress;
mod skipped;
mod texts;

pub use progress::{Applied, NO_RESULT, Progress, is_final};
pub use skipped::{Skipped, ago};
pub use texts::{
    FlavorState, Overall, StatusText, aggregate_status, building_status, duration, flavor_status,
    overall, stopped_status, superseded_status, table,
};

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
    /// A merge group of GitHub's merge queue (`merge_group` `checks_requested`).
    MergeGroup,
}

/// The merge group a run builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeGroupRun {
    /// The commit the group's change is compared with (`base_sha`, or the target branch's head).
    pub base_sha: String,
    /// `refs/heads/main`.
    pub base_ref: String,
    /// The pull requests the group holds, as far as its head commit names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_requests: Vec<u64>,
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
    /// Why the run builds what it builds (the plan's reason).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Why each flavor was chosen, when the plan chose some (a changed path, a rule).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub why: BTreeMap<String, String>,
    /// The run's check runs, when the stack reports through a GitHub App.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<CheckIds>,
    /// Flavors this run did not build but reports: a re-run of some flavors of an earlier run
    /// keeps the others' results, so its aggregate speaks for the whole commit.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub carried: std::collections::BTreeSet<String>,
    /// The merge group, for a run of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_group: Option<MergeGroupRun>,
    /// Whether a failure is announced, when the settings decided it at the start (merge
    /// groups); otherwise the run's kind decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<bool>,
    /// The input key of each flavor this run builds: a green build of a trusted run is
    /// recorded in the green ledger under it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// Whether the run's green builds may be recorded in the ledger (see
    /// `flavor_ci::inputs::ledger::trusted`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trusted: bool,
    /// Flavors the run reports green without building them: identical inputs built green
    /// before, with the evidence.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, Skipped>,
}

/// The ids of a run's check runs on GitHub: the aggregate, and each flavor's that was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckIds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flavors: BTreeMap<String, u64>,
}

impl RunRecord {
    /// Takes over the flavors of `earlier` that this run does not build: their results, why
    /// they built and their check runs.
    pub fn carry_from(&mut self, earlier: &RunRecord) {
        for flavor in &earlier.flavors {
            let name = &flavor.name;
            if self.flavors.iter().any(|f| &f.name == name) {
                continue;
            }
            self.flavors.push(flavor.clone());
            if let Some(build) = earlier.builds.get(name) {
                self.builds.insert(name.clone(), build.clone());
            }
            self.why.insert(name.clone(), earlier.why(name).to_owned());
            if let Some(id) = earlier.checks.as_ref().and_then(|c| c.flavors.get(name)) {
                self.checks
                    .get_or_insert_with(Default::default)
                    .flavors
                    .insert(name.clone(), *id);
            }
            self.carried.insert(name.clone());
        }
    }

    /// The builds skipped and the build seconds they saved.
    pub fn saved(&self) -> (usize, u64) {
        (
            self.skipped.len(),
            self.skipped.values().filter_map(|s| s.seconds).sum(),
        )
    }

    /// Why `flavor` was built: its own reason, else the run's.
    pub fn why(&self, flavor: &str) -> &str {
        self.why
            .get(flavor)
            .map_or(self.reason.as_str(), String::as_str)
    }
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
    /// Stopped because a newer run of its ref replaced it, or for `stopped_for`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub superseded: bool,
    /// Why flavor-ci stopped it, when not for a newer run (a merge group left the queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_for: Option<String>,
}

impl Finished {
    pub fn reported(&self) -> bool {
        self.status_posted && self.announced
    }
}

/// A marker the webhook leaves when it stops a run because a newer one replaced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Superseded {
    pub by: String,
    pub at: u64,
    /// Why it was stopped, when not for a newer run of its ref (a merge group left the queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
            reason: String::new(),
            why: Default::default(),
            checks: None,
            carried: Default::default(),
            merge_group: None,
            announce: None,
            inputs: Default::default(),
            trusted: false,
            skipped: Default::default(),
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
            reason: String::new(),
            why: Default::default(),
            checks: None,
            carried: Default::default(),
            merge_group: None,
            announce: None,
            inputs: Default::default(),
            trusted: false,
            skipped: Default::default(),
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
            stopped_for: None,
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
