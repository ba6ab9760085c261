//! The green ledger: one record per input key that built green in a trusted run
//! (`green/<key>`, see [`crate::layout::green_key`]), written create-only by the build-events
//! function, and the rules for trusting one before a flavor is skipped on its word.

use serde::{Deserialize, Serialize};

use crate::runs::RunTrigger;
pub use crate::runs::{Skipped, ago};

/// A flavor whose inputs built green: where and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GreenRecord {
    pub key: String,
    pub flavor: String,
    /// The CodeBuild build (`project:uuid`) that succeeded.
    pub build_id: String,
    pub batch_id: String,
    pub project: String,
    pub commit: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub trigger: RunTrigger,
    /// When the build ended (milliseconds since the epoch).
    pub at: u64,
    /// How long the build took, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

/// What CodeBuild says about a recorded build (`BatchGetBuilds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFacts {
    pub id: String,
    pub status: String,
    pub project: String,
    /// The commit the build checked out (`resolvedSourceVersion`, else `sourceVersion`).
    pub commit: String,
    /// Milliseconds since the epoch.
    pub ended_at: Option<u64>,
    pub seconds: Option<u64>,
}

impl BuildFacts {
    /// From the fields of `BatchGetBuilds`' build: the commit is the resolved source version,
    /// else the one asked for; times are milliseconds since the epoch.
    pub fn new(
        id: Option<&str>,
        status: Option<&str>,
        project: Option<&str>,
        commit: Option<&str>,
        started_at: Option<u64>,
        ended_at: Option<u64>,
    ) -> Self {
        Self {
            id: id.unwrap_or_default().to_owned(),
            status: status.unwrap_or_default().to_owned(),
            project: project.unwrap_or_default().to_owned(),
            commit: commit.unwrap_or_default().to_owned(),
            ended_at,
            seconds: started_at
                .zip(ended_at)
                .map(|(s, e)| e.saturating_sub(s) / 1000),
        }
    }
}

/// Why a record is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Distrust {
    #[error("the record is not a green record: {0}")]
    Unreadable(String),
    #[error("the record names key {found}, not {wanted}")]
    OtherKey { wanted: String, found: String },
    #[error("the record is for project {found}, not {wanted}")]
    OtherProject { wanted: String, found: String },
    #[error("CodeBuild has no build {0}")]
    NoBuild(String),
    #[error("CodeBuild says build {build} is {status}, not SUCCEEDED")]
    NotGreen { build: String, status: String },
    #[error("build {build} ran on project {project}, not the recorded {recorded}")]
    WrongProject {
        build: String,
        project: String,
        recorded: String,
    },
    #[error("build {build} ran at commit {commit}, not the recorded {recorded}")]
    WrongCommit {
        build: String,
        commit: String,
        recorded: String,
    },
    #[error("build {build} ended {age}, longer ago than skip.max-age ({max})")]
    TooOld {
        build: String,
        age: String,
        max: String,
    },
}

/// Checks `record` (read at key `key`) against CodeBuild's `facts` about its build: it must
/// exist, have succeeded, and have run at the recorded commit on the recorded project, which
/// is the project this run builds on, no longer than `max_age_seconds` ago.
pub fn trust(
    key: &str,
    project: &str,
    record: &GreenRecord,
    facts: Option<&BuildFacts>,
    now_ms: u64,
    max_age_seconds: u64,
) -> Result<Skipped, Distrust> {
    if record.key != key {
        return Err(Distrust::OtherKey {
            wanted: key.into(),
            found: record.key.clone(),
        });
    }
    if record.project != project {
        return Err(Distrust::OtherProject {
            wanted: project.into(),
            found: record.project.clone(),
        });
    }
    let facts = facts.ok_or_else(|| Distrust::NoBuild(record.build_id.clone()))?;
    if facts.status != "SUCCEEDED" {
        return Err(Distrust::NotGreen {
            build: facts.id.clone(),
            status: facts.status.clone(),
        });
    }
    if facts.project != record.project {
        return Err(Distrust::WrongProject {
            build: facts.id.clone(),
            project: facts.project.clone(),
            recorded: record.project.clone(),
        });
    }
    if !facts.commit.eq_ignore_ascii_case(&record.commit) {
        return Err(Distrust::WrongCommit {
            build: facts.id.clone(),
            commit: facts.commit.clone(),
            recorded: record.commit.clone(),
        });
    }
    // CodeBuild's end time, not the record's: the record cannot make a build younger.
    let ended = facts.ended_at.unwrap_or(0);
    let age = now_ms.saturating_sub(ended) / 1000;
    if age > max_age_seconds {
        return Err(Distrust::TooOld {
            build: facts.id.clone(),
            age: ago(age),
            max: crate::settings::MaxAge(max_age_seconds).to_string(),
        });
    }
    Ok(Skipped {
        key: key.to_owned(),
        build_id: facts.id.clone(),
        batch_id: record.batch_id.clone(),
        commit: record.commit.clone(),
        git_ref: record.git_ref.clone(),
        built_at: ended,
        seconds: facts.seconds.or(record.seconds),
    })
}

/// Whether a run's successes may be written to the ledger: pushes to the default branch, tags,
/// schedules, dispatches, merge groups, and pull requests from the repository itself whose
/// author may write to it. Forks never.
pub fn trusted(trigger: RunTrigger, git_ref: &str, default_branch: bool, writer: bool) -> bool {
    match trigger {
        RunTrigger::Push => default_branch || git_ref.starts_with("refs/tags/"),
        RunTrigger::Schedule | RunTrigger::Dispatch | RunTrigger::MergeGroup => true,
        RunTrigger::PullRequest => writer,
    }
}
