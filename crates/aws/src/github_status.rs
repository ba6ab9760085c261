//! GitHub commit statuses (`POST /repos/{owner}/{repo}/statuses/{sha}`): what the webhook and
//! the build-events function post, through the one GitHub client (which tries a post twice at
//! most: GitHub unavailable, rate limited, or not answering). What still fails is returned for
//! the caller to log, since a status never decides whether a build runs.

use serde::Serialize;

use crate::github::{Auth, Call, CallError, GitHubClient};
/// GitHub cuts descriptions longer than this.
pub const MAX_DESCRIPTION: usize = 140;

/// A commit status state, as GitHub names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    /// The state GitHub names `name`; anything else is `pending`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "success" => StatusState::Success,
            "failure" => StatusState::Failure,
            "error" => StatusState::Error,
            _ => StatusState::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// One status for one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitStatus {
    pub state: StatusState,
    pub context: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
}

/// Why a status was not posted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PostError {
    /// GitHub's HTTP status, or 0 when it did not answer.
    pub status: u16,
    pub message: String,
    /// Whether the second attempt was made.
    pub retried: bool,
}

/// Posts commit statuses.
#[derive(Debug, Clone)]
pub struct StatusPoster {
    client: GitHubClient,
}

/// `text` cut to GitHub's 140 characters, ending with `…` when cut.
pub fn description(text: &str) -> String {
    if text.chars().count() <= MAX_DESCRIPTION {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MAX_DESCRIPTION - 1).collect();
    out.push('…');
    out
}

/// What a post needs of the token.
const PERMISSION: &str = "Commit statuses: Read and write";

impl StatusPoster {
    pub fn new(client: GitHubClient) -> Self {
        Self { client }
    }

    /// Posts `status` on `sha` in `repo` (`owner/name`), authenticated by `auth` (a rejected
    /// token is fetched again once).
    pub async fn post(
        &self,
        auth: &impl Auth,
        repo: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), PostError> {
        let fail = |status: u16, message: String, retried: bool| PostError {
            status,
            message,
            retried,
        };
        let mut status = status.clone();
        status.description = description(&status.description);
        let body = serde_json::to_vec(&status)
            .map_err(|e| fail(0, format!("cannot encode the status: {e}"), false))?;
        let path = format!("/repos/{repo}/statuses/{sha}");
        let answer = match self
            .client
            .send(auth, &Call::post(&path, &body, PERMISSION))
            .await
        {
            Ok(answer) => answer,
            Err(CallError::Auth(e)) => {
                return Err(fail(
                    0,
                    format!("the GitHub token cannot be read: {e}"),
                    false,
                ));
            }
            Err(e @ CallError::Transport(..)) => {
                return Err(fail(
                    0,
                    format!("{e}; check GITHUB_API_URL and the network path to GitHub"),
                    true,
                ));
            }
            Err(e) => return Err(fail(0, e.to_string(), matches!(e, CallError::Timeout(..)))),
        };
        if answer.is_success() {
            return Ok(());
        }
        let code = answer.status;
        let text = answer.message();
        let said = if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        };
        let hint = match code {
            _ if answer.rate_limited() => "; GitHub is rate limiting the token",
            500..=599 => "; GitHub is unavailable",
            401 => "; GitHub rejected the token: store a valid token in the GitHub token secret",
            403 | 404 => {
                "; the token cannot write commit statuses on this repository: give it the permission `Commit statuses: Read and write` (fine-grained) or the `repo:status` scope (classic)"
            }
            _ => "",
        };
        Err(fail(
            code,
            format!("{} answered {code}{said}{hint}", answer.call),
            answer.retried,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_cut_to_140_characters_on_a_character_boundary() {
        assert_eq!(description("short"), "short");
        let long = "ä".repeat(200);
        let cut = description(&long);
        assert_eq!(cut.chars().count(), 140);
        assert!(cut.ends_with('…'));
        let exact = "x".repeat(140);
        assert_eq!(description(&exact), exact);
    }

    #[test]
    fn statuses_encode_as_github_expects() {
        let s = CommitStatus {
            state: StatusState::Failure,
            context: "flavor-ci/base".into(),
            description: "failed".into(),
            target_url: None,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"state":"failure","context":"flavor-ci/base","description":"failed"}"#
        );
    }
}
