//! GitHub commit statuses (`POST /repos/{owner}/{repo}/statuses/{sha}`): what the webhook and
//! the build-events function post. A post is tried twice at most (GitHub unavailable, rate
//! limited, or not answering); what still fails is returned for the caller to log, since a
//! status never decides whether a build runs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Method, Request};
use serde::Serialize;
use tokio::time::timeout;

use crate::LazyHttpsClient;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// The pause before the second attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(300);
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

/// Posts commit statuses to a GitHub (or GitHub Enterprise Server) REST API.
#[derive(Debug, Clone)]
pub struct StatusPoster {
    client: LazyHttpsClient,
    base: Arc<str>,
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

enum Attempt {
    Done,
    /// Worth one more try: a server error, a rate limit, no answer.
    Again(PostError),
    Final(PostError),
}

impl StatusPoster {
    pub fn new(client: LazyHttpsClient, base: &str) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').into(),
        }
    }

    /// Posts `status` on `sha` in `repo` (`owner/name`); a second attempt follows a server
    /// error, a rate limit or a missing answer.
    pub async fn post(
        &self,
        repo: &str,
        sha: &str,
        status: &CommitStatus,
        token: &str,
    ) -> Result<(), PostError> {
        let mut status = status.clone();
        status.description = description(&status.description);
        let body = serde_json::to_vec(&status).map_err(|e| PostError {
            status: 0,
            message: format!("cannot encode the status: {e}"),
            retried: false,
        })?;
        let url = format!("{}/repos/{repo}/statuses/{sha}", self.base);
        match self.attempt(&url, &body, token).await {
            Attempt::Done => Ok(()),
            Attempt::Final(e) => Err(e),
            Attempt::Again(_) => {
                tokio::time::sleep(RETRY_PAUSE).await;
                match self.attempt(&url, &body, token).await {
                    Attempt::Done => Ok(()),
                    Attempt::Again(e) | Attempt::Final(e) => Err(PostError { retried: true, ..e }),
                }
            }
        }
    }

    /// Posts with the token in `token`, fetched again once if GitHub rejects it (a rotated
    /// token).
    pub async fn post_with<K: crate::secrets::SecretSource>(
        &self,
        token: &crate::secrets::Cached<K, String>,
        repo: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), PostError> {
        let unreadable = |e: crate::secrets::SecretError| PostError {
            status: 0,
            message: format!("the GitHub token cannot be read: {e}"),
            retried: false,
        };
        let value = token.get().await.map_err(unreadable)?;
        match self.post(repo, sha, status, &value).await {
            Err(e) if e.status == 401 => match token.refresh(&value).await {
                Ok(Some(fresh)) => self.post(repo, sha, status, &fresh).await,
                _ => Err(e),
            },
            other => other,
        }
    }

    async fn attempt(&self, url: &str, body: &[u8], token: &str) -> Attempt {
        let fail = |status: u16, message: String| PostError {
            status,
            message,
            retried: false,
        };
        let Ok(mut auth) = HeaderValue::try_from(format!("Bearer {token}")) else {
            return Attempt::Final(fail(
                0,
                "the GitHub token holds characters a header cannot carry; store the token alone"
                    .into(),
            ));
        };
        auth.set_sensitive(true);
        let request = match Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(ACCEPT, "application/vnd.github+json")
            .header(CONTENT_TYPE, "application/json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(USER_AGENT, "flavor-ci")
            .header(AUTHORIZATION, auth)
            .body(Full::new(Bytes::copy_from_slice(body)))
        {
            Ok(r) => r,
            Err(e) => return Attempt::Final(fail(0, format!("cannot build POST {url}: {e}"))),
        };
        let client = match self.client.get() {
            Ok(c) => c,
            Err(e) => return Attempt::Final(fail(0, format!("POST {url} cannot be sent: {e}"))),
        };
        let response = match timeout(REQUEST_TIMEOUT, client.request(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Attempt::Again(fail(
                    0,
                    format!(
                        "POST {url} failed: {e}; check GITHUB_API_URL and the network path to GitHub"
                    ),
                ));
            }
            Err(_) => {
                return Attempt::Again(fail(
                    0,
                    format!(
                        "POST {url} got no answer within {} s",
                        REQUEST_TIMEOUT.as_secs()
                    ),
                ));
            }
        };
        let code = response.status().as_u16();
        let rate_limited = response
            .headers()
            .get("x-ratelimit-remaining")
            .is_some_and(|v| v.as_bytes() == b"0")
            || response.headers().contains_key("retry-after");
        if (200..300).contains(&code) {
            return Attempt::Done;
        }
        let text = match Limited::new(response.into_body(), 64 << 10).collect().await {
            Ok(b) => github_message(&b.to_bytes()),
            Err(_) => String::new(),
        };
        let said = if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        };
        let e = |hint: &str| fail(code, format!("POST {url} answered {code}{said}{hint}"));
        match code {
            429 => Attempt::Again(e("; GitHub is rate limiting the token")),
            403 if rate_limited => Attempt::Again(e("; GitHub is rate limiting the token")),
            500..=599 => Attempt::Again(e("; GitHub is unavailable")),
            401 => Attempt::Final(e(
                "; GitHub rejected the token: store a valid token in the GitHub token secret",
            )),
            403 | 404 => Attempt::Final(e(
                "; the token cannot write commit statuses on this repository: give it the permission `Commit statuses: Read and write` (fine-grained) or the `repo:status` scope (classic)",
            )),
            _ => Attempt::Final(e("")),
        }
    }
}

/// GitHub's `message` from an error body, or the start of the body.
fn github_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
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
