//! What handling a request came to, as types: a batch started, nothing to build and why, a
//! build waiting and why, batches stopped, a ping answered, or a refusal and why. The HTTP
//! status and body of every answer are chosen here, in [`Outcome::answer`], and nowhere else.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub(crate) use crate::fault::Fault;
use crate::http::Reply;

/// The result of one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// A batch started.
    Started(Box<Started>),
    /// An earlier copy of the same body started its batch; nothing new was started.
    AlreadyHandled(Handled),
    /// Nothing to build, and why (an event flavor-ci does not act on, a change that affects
    /// no flavor, a pull request that is closed or a draft).
    Nothing {
        reason: String,
        context: Context,
        /// The aggregate reported on the commit, when one was.
        aggregate: Option<Aggregate>,
    },
    /// Every flavor the change selects already built green with identical inputs: nothing
    /// started, and the aggregate succeeded on that evidence.
    Skipped {
        reason: String,
        context: Context,
        aggregate: Option<Aggregate>,
        /// Each skipped flavor, with the build that proved it.
        skipped: BTreeMap<String, String>,
    },
    /// A build waits for someone, and why (a fork's commit awaits a maintainer's label).
    Waiting {
        reason: String,
        context: Context,
        aggregate: Option<Aggregate>,
    },
    /// A pull request closed, or a merge group left the queue: its running batches were
    /// stopped.
    Stopped {
        message: String,
        /// The pull request, or the merge group's head commit.
        about: Stopped,
        stopped: Stopping,
    },
    /// A ping: the webhook is set up.
    Pong { hook_id: Option<Value> },
    /// Kept after a transient failure: handled again when the service recovers.
    Accepted {
        message: String,
        /// What failed.
        reason: String,
        /// When it is tried again (milliseconds since the epoch).
        retry_at: u64,
    },
    /// The sweep asked GitHub to redeliver the failed deliveries it found.
    Swept {
        /// The kept deliveries handled again.
        retries: crate::intake::Pass,
        /// Delivery attempts listed.
        listed: usize,
        /// Deliveries of this repository none of whose attempts succeeded.
        failed: usize,
        /// The guids asked for again now.
        redelivered: Vec<String>,
        /// Failed deliveries asked for again by an earlier sweep.
        already: usize,
        errors: Vec<String>,
    },
    /// A finished batch's failed builds run again (`RetryBuildBatch`), after a click.
    Retried {
        message: String,
        batch_build_id: String,
        flavors: Vec<String>,
        aggregate: Option<Aggregate>,
    },
    /// Refused, or failed: nothing was started, and the message says why and what to do.
    Refused(Refusal),
}

/// The fields that say which pull request or run an answer is about.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Context {
    pub(crate) pull_request: Option<u64>,
    pub(crate) head_ref: Option<String>,
    pub(crate) base_ref: Option<String>,
    /// What started a build (`opened`, `synchronize`, `schedule`, `dispatch`).
    pub(crate) trigger: Option<String>,
    /// A run's id (schedule, dispatch).
    pub(crate) run: Option<String>,
}

impl Context {
    pub(crate) fn pull_request(n: u64) -> Self {
        Self {
            pull_request: Some(n),
            ..Self::default()
        }
    }

    fn write(&self, body: &mut Map<String, Value>) {
        if let Some(n) = self.pull_request {
            body.insert("pullRequest".into(), json!(n));
        }
        for (key, value) in [
            ("headRef", &self.head_ref),
            ("baseRef", &self.base_ref),
            ("trigger", &self.trigger),
            ("run", &self.run),
        ] {
            if let Some(v) = value {
                body.insert(key.into(), json!(v));
            }
        }
    }
}

/// The aggregate status reported on a commit with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Aggregate {
    pub(crate) context: String,
    pub(crate) state: &'static str,
    pub(crate) description: String,
    /// Whether GitHub took it.
    pub(crate) posted: bool,
}

/// What a stop was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stopped {
    PullRequest(u64),
    /// The group's head commit.
    MergeGroup(String),
}

/// The batches a new batch (or a closed pull request) stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stopping {
    Done {
        stopped: Vec<String>,
        /// Batches CodeBuild did not stop, with why.
        not_stopped: Vec<(String, String)>,
    },
    /// The running batches could not be looked up; the text says why.
    Failed(String),
}

/// A started batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Started {
    /// Why these flavors build.
    pub(crate) reason: String,
    pub(crate) aggregate: Option<Aggregate>,
    /// What superseding did, when the batch supersedes earlier ones.
    pub(crate) superseded: Option<Stopping>,
    /// For each flavor, the path or rule that selected it (when not every flavor builds).
    pub(crate) why: Option<BTreeMap<String, String>>,
    pub(crate) batch_build_id: String,
    pub(crate) project: String,
    pub(crate) source_version: String,
    pub(crate) buildspec: String,
    pub(crate) buildspec_arn: String,
    pub(crate) flavors: Vec<String>,
    pub(crate) context: Context,
    /// The selected flavors left out: identical inputs built green in these builds.
    pub(crate) skipped: BTreeMap<String, String>,
}

/// What an earlier copy of a body started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handled {
    pub(crate) batch_build_id: Option<String>,
    pub(crate) project: String,
    pub(crate) buildspec: String,
    pub(crate) flavors: Vec<String>,
}

/// A refusal: its fault, the message for the caller, and details for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) fault: Fault,
    pub(crate) message: String,
    /// What went wrong in detail, for the log only: answers to callers not yet
    /// authenticated carry no ARNs, account ids, environment values or AWS error text.
    pub(crate) detail: Option<String>,
}

impl Refusal {
    pub(crate) fn new(fault: Fault, message: impl Into<String>) -> Self {
        Self {
            fault,
            message: message.into(),
            detail: None,
        }
    }

    /// A refusal whose `detail` goes to the log and whose answer says only `public`.
    pub(crate) fn withheld(fault: Fault, public: &str, detail: impl Into<String>) -> Self {
        Self {
            fault,
            message: format!("{public}; the function's log has the details"),
            detail: Some(detail.into()),
        }
    }
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        Outcome::Refused(r)
    }
}

impl From<crate::github::ApiError> for Refusal {
    fn from(e: crate::github::ApiError) -> Self {
        Refusal::new(e.fault, e.message)
    }
}

impl Aggregate {
    fn to_json(&self) -> Value {
        json!({
            "context": self.context,
            "state": self.state,
            "description": self.description,
            "posted": self.posted,
        })
    }
}

impl Stopping {
    fn write(&self, body: &mut Map<String, Value>) {
        match self {
            Stopping::Done {
                stopped,
                not_stopped,
            } => {
                body.insert("stopped".into(), json!(stopped));
                if !not_stopped.is_empty() {
                    let listed: Map<String, Value> = not_stopped
                        .iter()
                        .map(|(id, why)| (id.clone(), Value::from(why.as_str())))
                        .collect();
                    body.insert("notStopped".into(), listed.into());
                }
            }
            Stopping::Failed(why) => {
                body.insert("notStopped".into(), json!(why));
            }
        }
    }
}

/// `{"status": word, "message": message}`, the start of every answer.
fn body(word: &str, message: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("status".into(), json!(word));
    body.insert("message".into(), json!(message));
    body
}

impl Outcome {
    /// Nothing to build, for `reason`, with nothing more to say.
    pub(crate) fn nothing(reason: impl Into<String>) -> Self {
        Outcome::Nothing {
            reason: reason.into(),
            context: Context::default(),
            aggregate: None,
        }
    }

    /// The HTTP answer: status and body.
    pub(crate) fn answer(self) -> Reply {
        let (status, body, detail) = match self {
            Outcome::Started(started) => (200, started.body(), None),
            Outcome::AlreadyHandled(handled) => {
                let mut b = body(
                    "already handled",
                    "this delivery was handled before; nothing new was started",
                );
                if let Some(id) = handled.batch_build_id {
                    b.insert("batchBuildId".into(), json!(id));
                }
                b.insert("project".into(), json!(handled.project));
                b.insert("buildspec".into(), json!(handled.buildspec));
                b.insert("flavors".into(), json!(handled.flavors));
                (200, b, None)
            }
            Outcome::Nothing {
                reason,
                context,
                aggregate,
            }
            | Outcome::Waiting {
                reason,
                context,
                aggregate,
            } => {
                let mut b = body("ignored", &reason);
                context.write(&mut b);
                if let Some(a) = aggregate {
                    b.insert("aggregateStatus".into(), a.to_json());
                }
                (202, b, None)
            }
            Outcome::Skipped {
                reason,
                context,
                aggregate,
                skipped,
            } => {
                let mut b = body("skipped", &reason);
                context.write(&mut b);
                if let Some(a) = aggregate {
                    b.insert("aggregateStatus".into(), a.to_json());
                }
                b.insert("skipped".into(), json!(skipped));
                (200, b, None)
            }
            Outcome::Stopped {
                message,
                about,
                stopped,
            } => {
                let mut b = body("stopped", &message);
                match about {
                    Stopped::PullRequest(n) => b.insert("pullRequest".into(), json!(n)),
                    Stopped::MergeGroup(sha) => b.insert("mergeGroup".into(), json!(sha)),
                };
                stopped.write(&mut b);
                (200, b, None)
            }
            Outcome::Pong { hook_id } => {
                let mut b = body(
                    "pong",
                    "the webhook is set up; flavor-ci starts builds on push and pull_request events",
                );
                if let Some(id) = hook_id {
                    b.insert("hookId".into(), id);
                }
                (200, b, None)
            }
            Outcome::Accepted {
                message,
                reason,
                retry_at,
            } => {
                let mut b = body("accepted", &message);
                b.insert("reason".into(), json!(reason));
                b.insert("retryAt".into(), json!(retry_at));
                (202, b, None)
            }
            Outcome::Swept {
                retries,
                listed,
                failed,
                redelivered,
                already,
                errors,
            } => {
                let mut b = body(
                    "swept",
                    &format!(
                        "{} of {failed} failed deliveries redelivered ({already} asked for before)",
                        redelivered.len()
                    ),
                );
                b.insert(
                    "retried".into(),
                    json!({"handled": retries.handled, "waiting": retries.waiting,
                           "givenUp": retries.given_up, "later": retries.later}),
                );
                b.insert("listed".into(), json!(listed));
                b.insert("redelivered".into(), json!(redelivered));
                if !errors.is_empty() {
                    b.insert("errors".into(), json!(errors));
                }
                (200, b, None)
            }
            Outcome::Retried {
                message,
                batch_build_id,
                flavors,
                aggregate,
            } => {
                let mut b = body("retried", &message);
                if let Some(a) = aggregate {
                    b.insert("aggregateStatus".into(), a.to_json());
                }
                b.insert("batchBuildId".into(), json!(batch_build_id));
                b.insert("flavors".into(), json!(flavors));
                (200, b, None)
            }
            Outcome::Refused(r) => (r.fault.status(), body("error", &r.message), r.detail),
        };
        Reply {
            status,
            body: body.into(),
            detail,
        }
    }
}

impl Started {
    fn body(&self) -> Map<String, Value> {
        let mut b = body("started", &self.reason);
        if let Some(a) = &self.aggregate {
            b.insert("aggregateStatus".into(), a.to_json());
        }
        if let Some(s) = &self.superseded {
            s.write(&mut b);
        }
        if let Some(why) = &self.why {
            b.insert("why".into(), json!(why));
        }
        b.insert("batchBuildId".into(), json!(self.batch_build_id));
        b.insert("project".into(), json!(self.project));
        b.insert("sourceVersion".into(), json!(self.source_version));
        b.insert("buildspec".into(), json!(self.buildspec));
        b.insert("buildspecArn".into(), json!(self.buildspec_arn));
        b.insert("flavors".into(), json!(self.flavors));
        if !self.skipped.is_empty() {
            b.insert("skipped".into(), json!(self.skipped));
        }
        self.context.write(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_their_fields_in_the_documented_order() {
        let started = Outcome::Started(Box::new(Started {
            reason: "flavors/a changed".into(),
            aggregate: Some(Aggregate {
                context: "flavor-ci".into(),
                state: "pending",
                description: "building 1 flavor".into(),
                posted: true,
            }),
            superseded: Some(Stopping::Done {
                stopped: vec!["ci:0".into()],
                not_stopped: vec![("ci:9".into(), "gone".into())],
            }),
            why: Some(BTreeMap::from([("a".into(), "flavors/a/x".into())])),
            batch_build_id: "ci:1".into(),
            project: "ci".into(),
            source_version: "c".into(),
            buildspec: "s3://b/k".into(),
            buildspec_arn: "arn:aws:s3:::b/k".into(),
            flavors: vec!["a".into()],
            context: Context {
                pull_request: Some(7),
                head_ref: Some("topic".into()),
                base_ref: Some("main".into()),
                trigger: Some("opened".into()),
                run: None,
            },
            skipped: BTreeMap::new(),
        }));
        let reply = started.answer();
        assert_eq!(reply.status, 200);
        let keys: Vec<&str> = reply
            .body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "status",
                "message",
                "aggregateStatus",
                "stopped",
                "notStopped",
                "why",
                "batchBuildId",
                "project",
                "sourceVersion",
                "buildspec",
                "buildspecArn",
                "flavors",
                "pullRequest",
                "headRef",
                "baseRef",
                "trigger"
            ]
        );
        let waiting = Outcome::Waiting {
            reason: "a fork".into(),
            context: Context::pull_request(3),
            aggregate: None,
        }
        .answer();
        assert_eq!(
            (waiting.status, waiting.body.to_string()),
            (
                202,
                r#"{"status":"ignored","message":"a fork","pullRequest":3}"#.to_owned()
            )
        );
        let refused =
            Outcome::Refused(Refusal::withheld(Fault::Misconfigured, "broken", "why")).answer();
        assert_eq!(refused.status, 500);
        assert_eq!(
            refused.body["message"],
            "broken; the function's log has the details"
        );
        assert_eq!(refused.detail.as_deref(), Some("why"));
    }
}
