//! The deliveries a GitHub App receives about its check runs: a click on a requested action
//! ("Re-run failed", "Build this commit"), "Re-run" on one check run, "Re-run all" on the
//! suite. Read strictly where flavor-ci acts on a field, leniently elsewhere.

use serde::Deserialize;

pub use super::push::{Installation, User};
use super::push::{Repository, is_object_id};

/// The App a check run or suite belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct App {
    pub id: u64,
}

/// `check_run`: `requested_action` or `rerequested` (others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRunEvent {
    pub action: String,
    pub check_run: CheckRun,
    #[serde(default)]
    pub requested_action: Option<RequestedAction>,
    pub sender: User,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<Installation>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    #[serde(default)]
    pub external_id: Option<String>,
    pub app: App,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestedAction {
    pub identifier: String,
}

/// `check_suite`: `rerequested` (others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct CheckSuiteEvent {
    pub action: String,
    pub check_suite: CheckSuite,
    pub sender: User,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<Installation>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckSuite {
    pub id: u64,
    pub head_sha: String,
    pub app: App,
}

/// Why a delivery cannot be read: the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {event} delivery cannot be read at `{path}`: {message}")]
pub struct CheckEventError {
    pub event: &'static str,
    pub path: String,
    pub message: String,
}

fn read<T: serde::de::DeserializeOwned>(
    event: &'static str,
    body: &[u8],
    sha: impl Fn(&T) -> (&str, &'static str),
) -> Result<T, CheckEventError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| CheckEventError {
        event,
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    let (commit, path) = sha(&value);
    if !is_object_id(commit) {
        return Err(CheckEventError {
            event,
            path: path.into(),
            message: format!("`{commit}` is not a commit id"),
        });
    }
    Ok(value)
}

impl CheckRunEvent {
    pub fn from_json(body: &[u8]) -> Result<Self, CheckEventError> {
        read("check_run", body, |e: &Self| {
            (e.check_run.head_sha.as_str(), "check_run.head_sha")
        })
    }
}

impl CheckSuiteEvent {
    pub fn from_json(body: &[u8]) -> Result<Self, CheckEventError> {
        read("check_suite", body, |e: &Self| {
            (e.check_suite.head_sha.as_str(), "check_suite.head_sha")
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn clicks_and_reruns_are_read_with_what_identifies_them() {
        let body = json!({
            "action": "requested_action",
            "check_run": {"id": 4, "name": "flavor-ci", "head_sha": "a".repeat(40),
                          "external_id": "ci:b1", "app": {"id": 12345}, "status": "completed"},
            "requested_action": {"identifier": "rerun-failed"},
            "sender": {"login": "octocat"},
            "repository": {"full_name": "acme/slc"},
            "installation": {"id": 42},
        });
        let e = CheckRunEvent::from_json(body.to_string().as_bytes()).unwrap();
        assert_eq!(e.requested_action.unwrap().identifier, "rerun-failed");
        assert_eq!(
            (e.check_run.app.id, e.installation.unwrap().id),
            (12345, 42)
        );
        let bad = json!({"action": "rerequested",
            "check_suite": {"id": 1, "head_sha": "main", "app": {"id": 1}},
            "sender": {"login": "o"}, "repository": {"full_name": "acme/slc"}});
        let err = CheckSuiteEvent::from_json(bad.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("check_suite.head_sha"), "{err}");
        let err = CheckRunEvent::from_json(b"{\"action\": \"rerequested\"}").unwrap_err();
        assert!(err.to_string().contains("check_run"), "{err}");
    }
}
