//! How a run moves: builds' states applied to the record (only forward: an ended build never
//! goes back to running), and where the run stands.

use super::{BuildState, RunRecord, RunTrigger};

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
    /// default branch, of tags and scheduled runs; pull requests have their statuses, and merge
    /// groups only with `notifications.merge-groups` (decided when the run started).
    pub fn announces_failure(&self) -> bool {
        if let Some(announce) = self.announce {
            return announce;
        }
        self.pull_request.is_none()
            && (self.default_branch
                || self.git_ref.starts_with("refs/tags/")
                || self.trigger == RunTrigger::Schedule)
    }
}
