//! The durable intake: no verified delivery is lost to a service's bad minute.
//!
//! Once a delivery that may start a build is verified, its body and the headers that matter
//! are kept in S3 (`pushes/inbox/<body key>.json`, one write) before anything acts on it. Then:
//!
//! - handled (started, already handled, nothing to build, waiting, stopped): the kept copy is
//!   removed again (one delete of the version written);
//! - failed on something transient (a service unavailable, throttling, 5xx, a timeout, a rate
//!   limit, the function's own time): the copy says when to try again, the answer is `202
//!   accepted: the build starts when <service> recovers`, and the required aggregate says
//!   `waiting for <service>: retrying`;
//! - failed on something lasting (a bad setting, a permission, a commit GitHub does not
//!   know): the copy records the reason, one log line counts it (the `DeliveriesGivenUp`
//!   metric and its alarm), and the aggregate ends as `error` with the reason.
//!
//! The stack's schedule runs [`retry`] every 10 minutes: each kept delivery that is due is
//! handled again, exactly as when it arrived (its claim by body hash and one batch per body
//! hold), with capped backoff for six hours, after which it is given up like a lasting fault.
//! A copy still `received` minutes after it arrived belongs to an invocation that died (its
//! deadline, a crash) and is handled again too.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flavor_ci::layout::{DELIVERY_TAG, inbox_key, inbox_prefix};
use flavor_ci::runs::StatusText;
use flavor_ci::webhook::signature;
use flavor_ci_aws::github::checks::CheckState;
use flavor_ci_aws::store::{ObjectStore, Put, Written};
use flavor_ci_aws::undo::{UndoLog, now_ms};
use lambda_runtime::tracing::{info, warn};
use serde::{Deserialize, Serialize};

use crate::edge::{self, HttpRequest, Verified};
use crate::outcome::{Outcome, Refusal};
use crate::ports::{Job, Ports};
use crate::report::{Verdict, post_aggregate};

/// The events that may start a build, and so are kept.
const KEPT_EVENTS: [&str; 5] = [
    "push",
    "pull_request",
    "merge_group",
    "check_run",
    "check_suite",
];
/// A copy still `received` this long after it arrived belongs to an invocation that died.
const ABANDONED_AFTER_MS: u64 = 2 * 60 * 1000;
/// How long transient faults are retried before the delivery is given up.
pub(crate) const GIVE_UP_AFTER_MS: u64 = 6 * 3600 * 1000;
/// The longest wait between attempts (the first is `RETRY_FIRST_WAIT_SECONDS`, 5 minutes,
/// doubled for each further one).
const MAX_WAIT_MS: u64 = 60 * 60 * 1000;
/// A retry pass starts no new delivery after this much of its time, and gives each at most
/// [`ATTEMPT_BUDGET`]: together within the invocation's 8 s.
const PASS_BUDGET: Duration = Duration::from_secs(3);
const ATTEMPT_BUDGET: Duration = Duration::from_millis(4500);
/// GitHub's limit on a status description.
const MAX_DESCRIPTION: usize = 140;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum State {
    /// Kept, being handled (or its invocation died).
    Received,
    /// Failed on something transient; tried again at `nextAt`.
    Retrying,
    /// Given up: a lasting fault, or transient ones for six hours.
    Failed,
}

/// A kept delivery, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Kept {
    pub(crate) delivery: String,
    pub(crate) event: String,
    pub(crate) content_type: String,
    /// The body as received, base64.
    pub(crate) body: String,
    pub(crate) received_at: u64,
    pub(crate) state: State,
    #[serde(default)]
    pub(crate) attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) next_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// The service that failed, for the answer and the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) service: Option<String>,
    /// The commit the required aggregate is reported on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) commit: Option<String>,
}

/// A kept delivery being handled: where it is, the version this invocation wrote (removed
/// again when it is handled), and what it holds.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    key: String,
    written: Option<Written>,
    kept: Kept,
}

/// The service a refusal names, for "waiting for <service>".
pub(crate) fn service_of(message: &str) -> &'static str {
    if message.contains("CodeBuild") {
        "CodeBuild"
    } else if message.contains("GitHub") {
        "GitHub"
    } else if message.contains("secret") {
        "Secrets Manager"
    } else if message.contains("S3") || message.contains("s3://") {
        "S3"
    } else {
        "AWS"
    }
}

/// How long to wait before attempt `attempts + 1`, the first wait being `first_ms`.
fn wait_ms(first_ms: u64, attempts: u32) -> u64 {
    first_ms
        .saturating_mul(1 << attempts.saturating_sub(1).min(10))
        .min(MAX_WAIT_MS)
}

/// What a delivery's copy needs from its request, read before the request becomes a delivery.
#[derive(Debug)]
pub(crate) struct Raw {
    event: String,
    delivery: String,
    content_type: String,
    body: Vec<u8>,
}

impl Raw {
    /// The copy to keep of `request`, when its event may start a build.
    pub(crate) fn of(request: &Verified) -> Option<Self> {
        let r = &request.0;
        let event = r.header("x-github-event")?;
        KEPT_EVENTS.contains(&event).then(|| Self {
            event: event.to_owned(),
            delivery: r.header("x-github-delivery").unwrap_or_default().to_owned(),
            content_type: r.header("content-type").unwrap_or_default().to_owned(),
            body: r.body.clone(),
        })
    }
}

/// Keeps `raw` before it is acted on; `None` (logged) when it cannot be kept: the delivery is
/// then handled as before, and a transient failure answers 5xx for GitHub to record.
pub(crate) async fn keep<P: Ports>(
    job: Job<'_, P>,
    raw: Raw,
    commit: Option<String>,
) -> Option<Held> {
    let key = inbox_key(
        &job.config.root,
        &signature::delivery_key(&raw.event, &raw.body),
    );
    let kept = Kept {
        delivery: raw.delivery,
        event: raw.event,
        content_type: raw.content_type,
        body: STANDARD.encode(&raw.body),
        received_at: now_ms(),
        state: State::Received,
        attempts: 0,
        next_at: None,
        reason: None,
        service: None,
        commit,
    };
    let text = serde_json::to_vec(&kept).unwrap_or_default();
    let (store, bucket) = (&job.deps.store, &job.config.bucket);
    match store
        .put_if_absent(bucket, &key, &text, "application/json", DELIVERY_TAG)
        .await
    {
        Ok(Put::Created { version }) => Some(Held {
            written: Some(Written {
                key: key.clone(),
                version,
            }),
            key,
            kept,
        }),
        // The same body is kept already (a copy waiting for a retry): this copy continues
        // it, with its attempts.
        Ok(Put::Existed) => {
            let earlier = store
                .get(bucket, &key)
                .await
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<Kept>(&b).ok())
                .unwrap_or(kept);
            Some(Held {
                key,
                written: None,
                kept: earlier,
            })
        }
        Err(e) => {
            warn!(error = %e, delivery = %kept.delivery, "the delivery was not kept; it is handled without a retry");
            None
        }
    }
}

/// What a handled delivery's copy becomes, and what GitHub is told.
pub(crate) async fn settle<P: Ports>(
    job: Job<'_, P>,
    held: Option<Held>,
    outcome: Outcome,
) -> Outcome {
    let Some(held) = held else {
        return outcome;
    };
    match outcome {
        Outcome::Refused(refusal) if refusal.fault.is_transient() => {
            later(job, held, refusal).await
        }
        Outcome::Refused(refusal) => {
            give_up(job, held, &refusal.message).await;
            Outcome::Refused(refusal)
        }
        done => {
            forget(job, &held).await;
            done
        }
    }
}

/// Removes a handled delivery's copy: the version this invocation wrote, or every version of
/// one handled again.
async fn forget<P: Ports>(job: Job<'_, P>, held: &Held) {
    let (store, bucket) = (&job.deps.store, &job.config.bucket);
    let removed = match &held.written {
        // Only this invocation wrote it: that one version.
        Some(w) => store.delete_written(bucket, std::slice::from_ref(w)).await,
        None => store.delete_under(bucket, &held.key).await.map(|_| ()),
    };
    if let Err(e) = removed {
        // The retry pass finds it, handles it again (already handled) and removes it.
        warn!(error = %e, key = %held.key, "a handled delivery's copy was not removed");
    }
}

/// A transient failure: the copy says when to try again; GitHub hears `accepted`.
async fn later<P: Ports>(job: Job<'_, P>, held: Held, refusal: Refusal) -> Outcome {
    let now = now_ms();
    let mut kept = held.kept.clone();
    kept.attempts += 1;
    let service = service_of(&refusal.message);
    // Written again below: the version this invocation wrote is no longer the only one.
    let held = Held {
        written: None,
        ..held
    };
    if now.saturating_sub(kept.received_at) > GIVE_UP_AFTER_MS {
        let reason = format!(
            "gave up after {} attempts in {} hours: {}",
            kept.attempts,
            GIVE_UP_AFTER_MS / 3_600_000,
            refusal.message
        );
        give_up(job, Held { kept, ..held }, &reason).await;
        return Outcome::Refused(refusal);
    }
    let first = u64::try_from(job.config.retry_wait.as_millis()).unwrap_or(u64::MAX);
    let next_at = now + wait_ms(first, kept.attempts);
    kept.state = State::Retrying;
    kept.next_at = Some(next_at);
    kept.reason = Some(
        refusal
            .detail
            .clone()
            .unwrap_or_else(|| refusal.message.clone()),
    );
    kept.service = Some(service.to_owned());
    if let Err(e) = store_kept(job, &held.key, &kept).await {
        // The copy stays `received`: the retry pass still finds it.
        warn!(error = %e, key = %held.key, "the delivery's retry was not recorded");
    }
    if kept.attempts == 1 {
        let text = StatusText {
            state: "pending",
            description: format!("waiting for {service}: retrying"),
        };
        report(job, &kept, text, CheckState::Queued, &refusal.message).await;
    }
    info!(delivery = %kept.delivery, attempts = kept.attempts, service, next_at, reason = %refusal.message, "delivery kept for a retry");
    Outcome::Accepted {
        message: format!("accepted: the build starts when {service} recovers"),
        reason: refusal.message,
        retry_at: next_at,
    }
}

/// A lasting fault: the copy records it, one log line counts it, and the aggregate ends.
async fn give_up<P: Ports>(job: Job<'_, P>, held: Held, reason: &str) {
    let mut kept = held.kept;
    if kept.state == State::Failed && kept.reason.as_deref() == Some(reason) {
        // The same body given up again (a redelivery): recorded and reported already.
        return;
    }
    kept.state = State::Failed;
    kept.next_at = None;
    kept.reason = Some(reason.to_owned());
    if let Err(e) = store_kept(job, &held.key, &kept).await {
        warn!(error = %e, key = %held.key, "the given-up delivery was not recorded");
    }
    // Counted by the stack's metric filter (DeliveriesGivenUp) and alarmed.
    warn!(given_up = 1, delivery = %kept.delivery, event = %kept.event, reason, "delivery given up");
    let description: String = format!("not built: {reason}")
        .chars()
        .take(MAX_DESCRIPTION)
        .collect();
    let text = StatusText {
        state: "error",
        description,
    };
    report(job, &kept, text, CheckState::Completed("failure"), reason).await;
}

async fn report<P: Ports>(
    job: Job<'_, P>,
    kept: &Kept,
    text: StatusText,
    check: CheckState,
    reason: &str,
) {
    let Some(commit) = &kept.commit else {
        return;
    };
    let verdict = Verdict {
        text,
        check,
        ..Verdict::waiting(String::new(), reason)
    };
    post_aggregate(job, commit, false, verdict).await;
}

async fn store_kept<P: Ports>(
    job: Job<'_, P>,
    key: &str,
    kept: &Kept,
) -> Result<(), flavor_ci_aws::store::StoreError> {
    let text = serde_json::to_vec(kept).unwrap_or_default();
    job.deps
        .store
        .put(
            &job.config.bucket,
            key,
            &text,
            "application/json",
            DELIVERY_TAG,
        )
        .await
        .map(|_| ())
}

/// What a retry pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Kept deliveries handled again and done (started, already handled, nothing to build).
    pub(crate) handled: Vec<String>,
    /// Handled again and still failing on something transient.
    pub(crate) waiting: Vec<String>,
    /// Given up.
    pub(crate) given_up: Vec<String>,
    /// Not due yet, or left for the next pass.
    pub(crate) later: usize,
}

/// Handles the kept deliveries that are due again (or only the one whose delivery id or key is
/// `only`, whatever its state).
pub(crate) async fn retry<P: Ports>(job: Job<'_, P>, only: Option<&str>) -> Result<Pass, Refusal> {
    let (store, config) = (&job.deps.store, job.config);
    let prefix = inbox_prefix(&config.root);
    let keys = store
        .list_keys(&config.bucket, &prefix, 1000)
        .await
        .map_err(|e| Refusal::new(crate::fault::Fault::Unavailable, e.to_string()))?;
    let began = Instant::now();
    let mut pass = Pass::default();
    let now = now_ms();
    for key in keys {
        if began.elapsed() > PASS_BUDGET {
            pass.later += 1;
            continue;
        }
        let Ok(Some(bytes)) = store.get(&config.bucket, &key).await else {
            continue;
        };
        let Ok(kept) = serde_json::from_slice::<Kept>(&bytes) else {
            warn!(key, "a kept delivery is not readable; it is left as it is");
            continue;
        };
        let wanted = match only {
            Some(id) => key.contains(id) || kept.delivery == id,
            None => match kept.state {
                State::Received => now.saturating_sub(kept.received_at) > ABANDONED_AFTER_MS,
                State::Retrying => kept.next_at.is_none_or(|at| at <= now),
                State::Failed => false,
            },
        };
        if !wanted {
            pass.later += usize::from(kept.state != State::Failed);
            continue;
        }
        let id = kept.delivery.clone();
        let outcome = again(job, key, kept).await;
        match outcome {
            Outcome::Accepted { .. } => pass.waiting.push(id),
            Outcome::Refused(_) => pass.given_up.push(id),
            _ => pass.handled.push(id),
        }
    }
    Ok(pass)
}

/// Handles a kept delivery again, as when it arrived.
async fn again<P: Ports>(job: Job<'_, P>, key: String, kept: Kept) -> Outcome {
    let body = match STANDARD.decode(&kept.body) {
        Ok(b) => b,
        Err(_) => {
            let held = Held {
                key,
                written: None,
                kept,
            };
            give_up(job, held, "the kept body is not base64").await;
            return Outcome::nothing("a kept delivery could not be read");
        }
    };
    let request = HttpRequest::kept(&kept.event, &kept.delivery, &kept.content_type, body);
    let held = Held {
        key,
        written: None,
        kept,
    };
    let written = UndoLog::default();
    let one = Job {
        written: &written,
        ..job
    };
    let outcome = match edge::delivery(Verified(request)) {
        Ok(delivery) => {
            let budget = ATTEMPT_BUDGET;
            // Boxed: handling routes back here for a sweep.
            let handled = Box::pin(crate::handler::route(one, delivery));
            match tokio::time::timeout(budget, handled).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    crate::batch::cleanup(&job.deps.store, &written).await;
                    Refusal::new(
                        crate::fault::Fault::Unavailable,
                        "handling the kept delivery again took longer than 4.5 s",
                    )
                    .into()
                }
            }
        }
        Err(refusal) => refusal.into(),
    };
    settle(one, Some(held), outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_an_hour_and_services_are_named() {
        let waits: Vec<u64> = (1..=6).map(|a| wait_ms(300_000, a) / 60_000).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(
            service_of("CodeBuild did not start the batch build on ci: ThrottlingException"),
            "CodeBuild"
        );
        assert_eq!(service_of("GitHub answered 502 for GET /repos"), "GitHub");
        assert_eq!(
            service_of("S3 PutObject on s3://b/k failed: SlowDown"),
            "S3"
        );
        assert_eq!(
            service_of("cannot read the secret flavor-ci/token: timeout"),
            "Secrets Manager"
        );
    }
}
