//! GitHub check runs (`POST /repos/{repo}/check-runs`, `PATCH /repos/{repo}/check-runs/{id}`)
//! through the one GitHub client. A check run is checked against GitHub's rules before it is
//! sent: a conclusion only with `completed` (the type allows no other), a summary and a text of
//! at most 65,535 characters, at most three actions with labels of at most 20 characters,
//! descriptions of at most 40 and identifiers of at most 20.

use serde::Serialize;

use super::{Auth, Call, CallError, GitHubClient};

/// GitHub's limit on a summary or a text, in characters.
pub const MAX_OUTPUT_CHARS: usize = 65_535;
/// GitHub's limits on requested actions.
pub const MAX_ACTIONS: usize = 3;
pub const MAX_ACTION_LABEL: usize = 20;
pub const MAX_ACTION_DESCRIPTION: usize = 40;
pub const MAX_ACTION_IDENTIFIER: usize = 20;

/// What a check run needs of the token.
const PERMISSION: &str = "Checks: Read and write";

/// Where a check run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Queued,
    InProgress,
    /// Ended, with GitHub's name of its conclusion (`success`, `failure`, `timed_out`,
    /// `cancelled`, `action_required`).
    Completed(&'static str),
}

/// The output: a title, a markdown summary, and more text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Output {
    pub title: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A button on the check run; a click sends a `check_run` `requested_action` delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub label: String,
    pub description: String,
    pub identifier: String,
}

/// A check run to create, or the fields of one to update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    /// `flavor-ci`, `flavor-ci / base`.
    pub name: String,
    pub head_sha: String,
    pub state: CheckState,
    /// What the run is about on our side (the batch, the build).
    pub external_id: Option<String>,
    /// Where to read more (the build's page).
    pub details_url: Option<String>,
    pub output: Option<Output>,
    pub actions: Vec<Action>,
}

/// Why a check run was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// It breaks one of GitHub's rules; nothing was sent.
    #[error("the check run `{name}` {problem}")]
    Invalid { name: String, problem: String },
    #[error("{0}")]
    Call(#[from] CallError),
    /// GitHub refused it: its status and message.
    #[error("{call} answered {status}: {message}")]
    Refused {
        call: String,
        status: u16,
        message: String,
    },
}

#[derive(Serialize)]
struct Body<'a> {
    name: &'a str,
    head_sha: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conclusion: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a Output>,
    #[serde(skip_serializing_if = "<[Action]>::is_empty")]
    actions: &'a [Action],
}

impl CheckRun {
    /// Checks the run against GitHub's rules.
    pub fn validate(&self) -> Result<(), CheckError> {
        let invalid = |problem: String| CheckError::Invalid {
            name: self.name.clone(),
            problem,
        };
        if self.name.trim().is_empty() {
            return Err(invalid("has no name".into()));
        }
        if let Some(o) = &self.output {
            for (what, text) in [("summary", Some(&o.summary)), ("text", o.text.as_ref())] {
                let n = text.map_or(0, |t| t.chars().count());
                if n > MAX_OUTPUT_CHARS {
                    return Err(invalid(format!(
                        "has a {what} of {n} characters; GitHub takes at most {MAX_OUTPUT_CHARS}"
                    )));
                }
            }
        }
        if self.actions.len() > MAX_ACTIONS {
            return Err(invalid(format!(
                "has {} actions; GitHub takes at most {MAX_ACTIONS}",
                self.actions.len()
            )));
        }
        for a in &self.actions {
            for (what, text, max) in [
                ("label", &a.label, MAX_ACTION_LABEL),
                ("description", &a.description, MAX_ACTION_DESCRIPTION),
                ("identifier", &a.identifier, MAX_ACTION_IDENTIFIER),
            ] {
                let n = text.chars().count();
                if n == 0 || n > max {
                    return Err(invalid(format!(
                        "has an action {what} `{text}` of {n} characters; GitHub takes 1 to {max}"
                    )));
                }
            }
        }
        Ok(())
    }

    fn body(&self) -> Body<'_> {
        let (status, conclusion) = match self.state {
            CheckState::Queued => ("queued", None),
            CheckState::InProgress => ("in_progress", None),
            CheckState::Completed(c) => ("completed", Some(c)),
        };
        Body {
            name: &self.name,
            head_sha: &self.head_sha,
            status,
            conclusion,
            external_id: self.external_id.as_deref(),
            details_url: self.details_url.as_deref(),
            output: self.output.as_ref(),
            actions: &self.actions,
        }
    }
}

/// Writes check runs.
#[derive(Debug, Clone)]
pub struct CheckRuns {
    client: GitHubClient,
}

impl CheckRuns {
    pub fn new(client: GitHubClient) -> Self {
        Self { client }
    }

    /// Creates `run` on `repo` (`owner/name`); returns its id.
    pub async fn create(
        &self,
        auth: &impl Auth,
        repo: &str,
        run: &CheckRun,
    ) -> Result<u64, CheckError> {
        #[derive(serde::Deserialize)]
        struct Created {
            id: u64,
        }
        let path = format!("/repos/{repo}/check-runs");
        let answer = self
            .send(auth, Call::post(&path, b"", PERMISSION), run)
            .await?;
        serde_json::from_slice::<Created>(&answer.body)
            .map(|c| c.id)
            .map_err(|e| CheckError::Refused {
                call: answer.call,
                status: answer.status,
                message: format!("the answer is not the expected JSON: {e}"),
            })
    }

    /// Updates check run `id` of `repo` to `run`.
    pub async fn update(
        &self,
        auth: &impl Auth,
        repo: &str,
        id: u64,
        run: &CheckRun,
    ) -> Result<(), CheckError> {
        let path = format!("/repos/{repo}/check-runs/{id}");
        let call = Call {
            method: hyper::Method::PATCH,
            ..Call::post(&path, b"", PERMISSION)
        };
        self.send(auth, call, run).await.map(|_| ())
    }

    async fn send(
        &self,
        auth: &impl Auth,
        call: Call<'_>,
        run: &CheckRun,
    ) -> Result<super::Answer, CheckError> {
        run.validate()?;
        let body = serde_json::to_vec(&run.body()).map_err(|e| CheckError::Invalid {
            name: run.name.clone(),
            problem: format!("cannot be encoded: {e}"),
        })?;
        let call = Call {
            body: Some(&body),
            ..call
        };
        let answer = self.client.send(auth, &call).await?;
        if answer.is_success() {
            Ok(answer)
        } else {
            Err(CheckError::Refused {
                message: answer.message(),
                call: answer.call,
                status: answer.status,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: CheckState) -> CheckRun {
        CheckRun {
            name: "flavor-ci / base".into(),
            head_sha: "c".repeat(40),
            state,
            external_id: Some("ci:batch".into()),
            details_url: None,
            output: None,
            actions: Vec::new(),
        }
    }

    #[test]
    fn a_conclusion_is_sent_only_with_completed() {
        let queued = serde_json::to_value(run(CheckState::Queued).body()).unwrap();
        assert_eq!(queued["status"], "queued");
        assert!(queued.get("conclusion").is_none() && queued.get("actions").is_none());
        let done = serde_json::to_value(run(CheckState::Completed("failure")).body()).unwrap();
        assert_eq!(
            (&done["status"], &done["conclusion"]),
            (&"completed".into(), &"failure".into())
        );
        assert_eq!(done["external_id"], "ci:batch");
    }

    #[test]
    fn githubs_limits_are_checked_before_anything_is_sent() {
        let mut r = run(CheckState::Completed("failure"));
        r.output = Some(Output {
            title: "1 of 3 flavors failed".into(),
            summary: "x".repeat(MAX_OUTPUT_CHARS + 1),
            text: None,
        });
        let err = r.validate().unwrap_err().to_string();
        assert!(err.contains("summary of 65536 characters"), "{err}");
        let mut r = run(CheckState::Completed("failure"));
        let action = |label: &str| Action {
            label: label.into(),
            description: "Build the failed flavors again".into(),
            identifier: "rerun-failed".into(),
        };
        r.actions = vec![action("Re-run failed")];
        assert!(r.validate().is_ok());
        r.actions = vec![action("Re-run every failed flavor now")];
        assert!(
            r.validate()
                .unwrap_err()
                .to_string()
                .contains("action label")
        );
        r.actions = vec![action("a"), action("b"), action("c"), action("d")];
        assert!(r.validate().unwrap_err().to_string().contains("4 actions"));
    }

    /// GitHub answering every request with `status` and `{"id": 7}`; each request's call and
    /// body come out of the receiver.
    fn stand_in(
        status: &'static str,
    ) -> (
        String,
        std::sync::mpsc::Receiver<(String, serde_json::Value)>,
    ) {
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let url = super::super::local::serve(move |request| {
            let body = serde_json::from_slice(&request.body).unwrap_or_default();
            let _ = tx.lock().unwrap().send((request.call.clone(), body));
            (
                status,
                r#"{"id":7,"message":"Validation Failed"}"#.to_owned(),
            )
        });
        (url, rx)
    }

    fn client(url: &str) -> CheckRuns {
        CheckRuns::new(super::super::local::client(url))
    }

    #[tokio::test]
    async fn check_runs_are_created_and_updated_through_the_client() {
        let (url, requests) = stand_in("201 Created");
        let checks = client(&url);
        let token = super::super::Token(std::sync::Arc::new("ghs_x".into()));
        let id = checks
            .create(&token, "acme/slc", &run(CheckState::Queued))
            .await
            .unwrap();
        assert_eq!(id, 7);
        let (call, body) = requests.recv().unwrap();
        assert_eq!(call, "POST /repos/acme/slc/check-runs");
        assert_eq!(
            (&body["name"], &body["status"]),
            (&"flavor-ci / base".into(), &"queued".into())
        );
        checks
            .update(
                &token,
                "acme/slc",
                id,
                &run(CheckState::Completed("success")),
            )
            .await
            .unwrap();
        let (call, body) = requests.recv().unwrap();
        assert_eq!(call, "PATCH /repos/acme/slc/check-runs/7");
        assert_eq!(body["conclusion"], "success");
    }

    #[tokio::test]
    async fn a_refusal_names_the_call_and_githubs_message() {
        let (url, _requests) = stand_in("422 Unprocessable Entity");
        let err = client(&url)
            .create(
                &super::super::Token(std::sync::Arc::new("ghs_x".into())),
                "acme/slc",
                &run(CheckState::Queued),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("POST") && err.contains("answered 422: Validation Failed"),
            "{err}"
        );
    }
}
