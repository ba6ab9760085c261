//! A run requested without a change: the nightly schedule and `flavor-ci dispatch`. Both invoke
//! the webhook function directly (never through its URL) with `{"flavorCiRun": {…}}`; only
//! principals allowed `lambda:InvokeFunction` on it can send one, so it carries no signature.

use serde::{Deserialize, Serialize};

/// The key a run request sits under in the invocation's event.
pub const RUN_KEY: &str = "flavorCiRun";

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Dispatch,
}

/// One requested run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    pub trigger: Trigger,
    /// What identifies this request, so that a retried invocation starts nothing new: the
    /// scheduled time of a scheduled run, a fresh id for each dispatch.
    pub id: String,
    /// `refs/heads/<branch>`, `refs/tags/<tag>`, or a branch name; default: the repository's
    /// default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// Build only these flavors (and those that depend on them); default: every flavor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flavors: Vec<String>,
    /// `RELEASE_ID` for a run of a tag; default: the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_id: Option<String>,
    /// Build even the flavors whose identical inputs already built green.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// Why a run request cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("the run request's `{path}` is not valid: {message}")]
    Field { path: String, message: String },
    #[error(
        "the run request's `id` is empty; give each request its own id (the schedule sends its scheduled time)"
    )]
    NoId,
    #[error("the run request's `gitRef` {0:?} is not a branch or tag name")]
    BadRef(String),
}

impl RunRequest {
    /// Reads the request from the value under [`RUN_KEY`].
    pub fn from_value(value: serde_json::Value) -> Result<Self, RunError> {
        let run: Self = serde_path_to_error::deserialize(value).map_err(|e| RunError::Field {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        if run.id.trim().is_empty() {
            return Err(RunError::NoId);
        }
        if let Some(r) = &run.git_ref
            && !valid_ref(r)
        {
            return Err(RunError::BadRef(r.clone()));
        }
        Ok(run)
    }

    /// The full ref: a bare name is a branch.
    pub fn full_ref(&self, default_branch: &str) -> String {
        match &self.git_ref {
            None => format!("refs/heads/{default_branch}"),
            Some(r) if r.starts_with("refs/") => r.clone(),
            Some(branch) => format!("refs/heads/{branch}"),
        }
    }
}

/// A ref git would accept, in the forms a run takes (no `..`, no control characters, no
/// spaces or `~^:?*[\`, no leading or trailing `/`).
fn valid_ref(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && !r.starts_with('/')
        && !r.ends_with('/')
        && !r.ends_with(".lock")
        && !r.contains("..")
        && !r.contains("//")
        && !r.contains("@{")
        && r.chars().all(|c| {
            !c.is_control() && !matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_read_with_defaults_and_name_what_is_wrong() {
        let r =
            RunRequest::from_value(json!({"trigger": "schedule", "id": "2026-11-24T02:00:00Z"}))
                .unwrap();
        assert_eq!(r.full_ref("main"), "refs/heads/main");
        assert!(r.flavors.is_empty() && r.release_id.is_none());
        let r = RunRequest::from_value(
            json!({"trigger": "dispatch", "id": "x", "gitRef": "release/1.x", "flavors": ["base"]}),
        )
        .unwrap();
        assert_eq!(r.full_ref("main"), "refs/heads/release/1.x");
        let e = RunRequest::from_value(json!({"trigger": "cron", "id": "x"})).unwrap_err();
        assert!(e.to_string().contains("`trigger`"), "{e}");
        let e = RunRequest::from_value(json!({"trigger": "dispatch", "id": "x", "ref": "main"}))
            .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        assert_eq!(
            RunRequest::from_value(json!({"trigger": "dispatch", "id": " "})).unwrap_err(),
            RunError::NoId
        );
        for bad in [
            "a..b",
            "/x",
            "x/",
            "a b",
            "x~1",
            "a:b",
            "",
            "refs/heads/x.lock",
        ] {
            let e =
                RunRequest::from_value(json!({"trigger": "dispatch", "id": "x", "gitRef": bad}));
            assert!(matches!(e, Err(RunError::BadRef(_))), "{bad}: {e:?}");
        }
    }
}
