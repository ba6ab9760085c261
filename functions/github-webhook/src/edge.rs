//! The edge: what the function is invoked with, turned into a typed [`Delivery`]. Pure; the one
//! I/O step on the way, checking the signature against the webhook secret, is
//! [`crate::verify`], and only a [`Verified`] request is read as a delivery.
//!
//! ```text
//! invocation ─read─▶ Incoming::Run(Delivery)            (schedule, dispatch: direct invoke)
//!                  └▶ Incoming::Http(HttpRequest) ─verify─▶ Verified ─delivery─▶ Delivery
//! ```

use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine;
use flavor_ci::webhook::checks::{CheckRunEvent, CheckSuiteEvent};
use flavor_ci::webhook::merge_group::MergeGroupEvent;
use flavor_ci::webhook::pull_request::PullRequestEvent;
use flavor_ci::webhook::push::Push;
use flavor_ci::webhook::run::{RUN_KEY, RunRequest, Trigger};
use flavor_ci::webhook::signature;
use serde_json::Value;

use crate::outcome::{Fault, Refusal};

/// Lambda's synchronous payload limit.
pub(crate) const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// One delivery, read and (for webhook deliveries) verified.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// The `X-GitHub-Delivery` id, or a run's id.
    pub(crate) id: String,
    pub(crate) event: Event,
}

/// What a delivery is about.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Push(Box<Signed<Push>>),
    PullRequest(Box<Signed<PullRequestEvent>>),
    Ping {
        hook_id: Option<Value>,
    },
    /// The nightly schedule.
    Schedule(RunRequest),
    /// `flavor-ci dispatch`.
    Dispatch(RunRequest),
    /// The schedule's pass over kept and failed deliveries.
    Sweep,
    /// `flavor-ci dispatch --redeliver`: one kept delivery handled again now.
    Retry(String),
    /// A click on a check run's button, or "Re-run" on one (GitHub App deliveries).
    CheckRun(Box<CheckRunEvent>),
    /// "Re-run all" on a commit's check suite (GitHub App deliveries).
    CheckSuite(Box<CheckSuiteEvent>),
    /// A merge group of GitHub's merge queue wants its checks, or is gone.
    MergeGroup(Box<MergeGroupEvent>),
    /// An event flavor-ci does not act on, by name.
    Other(String),
}

impl Event {
    /// The commit the required aggregate is reported on, when the event names one.
    pub(crate) fn commit(&self) -> Option<String> {
        match self {
            Event::Push(s) => Some(s.payload.after.clone()),
            Event::PullRequest(s) => Some(s.payload.pull_request.head.sha.clone()),
            Event::MergeGroup(e) => Some(e.merge_group.head_sha.clone()),
            Event::CheckRun(e) => Some(e.check_run.head_sha.clone()),
            Event::CheckSuite(e) => Some(e.check_suite.head_sha.clone()),
            _ => None,
        }
    }

    /// The App installation the delivery came through, when it names one.
    pub(crate) fn installation(&self) -> Option<u64> {
        match self {
            Event::Push(s) => s.payload.installation.map(|i| i.id),
            Event::PullRequest(s) => s.payload.installation.map(|i| i.id),
            Event::CheckRun(e) => e.installation.map(|i| i.id),
            Event::CheckSuite(e) => e.installation.map(|i| i.id),
            Event::MergeGroup(e) => e.installation.map(|i| i.id),
            _ => None,
        }
    }
}

/// A payload with what identifies its body: a hash of the event name and the verified bytes
/// (never the unsigned delivery id), so a redelivered body is handled once.
#[derive(Debug, Clone)]
pub(crate) struct Signed<T> {
    pub(crate) key: String,
    pub(crate) payload: T,
}

/// What the function was invoked with.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A run, by direct invocation: only principals allowed `lambda:InvokeFunction` can make
    /// one, so it needs no signature.
    Run(Delivery),
    /// A function URL request, not yet verified.
    Http(HttpRequest),
}

/// A function URL request: its method, headers and decoded body.
#[derive(Debug)]
pub(crate) struct HttpRequest {
    pub(crate) method: String,
    headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl HttpRequest {
    /// A kept delivery, as it was received (its signature was verified then).
    pub(crate) fn kept(event: &str, delivery: &str, content_type: &str, body: Vec<u8>) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-github-event", event),
            ("x-github-delivery", delivery),
            ("content-type", content_type),
        ] {
            if let Ok(v) = value.parse() {
                headers.insert(name, v);
            }
        }
        Self {
            method: "POST".into(),
            headers,
            body,
        }
    }

    /// A header's value, when it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request whose signature matched the webhook secret; only [`crate::verify`] makes one.
#[derive(Debug)]
pub(crate) struct Verified(pub(crate) HttpRequest);

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::new(Fault::BadRequest, message)
}

/// Reads an invocation: a run, or a POST through the function URL. Until the signature is
/// verified the caller is anyone on the internet: refusals say nothing about the account.
pub(crate) fn read(event: Value) -> Result<Incoming, Refusal> {
    // A request through the URL always has requestContext.
    if event.get("requestContext").is_none()
        && let Some(id) = event
            .get(crate::sweep::RETRY_KEY)
            .and_then(|r| r.get("delivery"))
            .and_then(Value::as_str)
    {
        return Ok(Incoming::Run(Delivery {
            id: id.to_owned(),
            event: Event::Retry(id.to_owned()),
        }));
    }
    if event.get("requestContext").is_none() && event.get(crate::sweep::SWEEP_KEY).is_some() {
        return Ok(Incoming::Run(Delivery {
            id: "sweep".into(),
            event: Event::Sweep,
        }));
    }
    if event.get("requestContext").is_none()
        && let Some(run) = event.get(RUN_KEY)
    {
        let run = RunRequest::from_value(run.clone()).map_err(|e| bad(e.to_string()))?;
        let id = run.id.clone();
        let event = match run.trigger {
            Trigger::Schedule => Event::Schedule(run),
            Trigger::Dispatch => Event::Dispatch(run),
        };
        return Ok(Incoming::Run(Delivery { id, event }));
    }
    let request = read_request(event)?;
    if request.method != "POST" {
        return Err(Refusal::new(
            Fault::Method,
            format!(
                "{} is not accepted; GitHub delivers webhooks with POST",
                request.method
            ),
        ));
    }
    Ok(Incoming::Http(request))
}

/// Reads the event leniently first (anything without an HTTP method is not a request at all,
/// and is told so plainly), then as the function URL request type, then decodes the body.
fn read_request(event: Value) -> Result<HttpRequest, Refusal> {
    if event
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(bad(
            "the event is not a function URL request (no requestContext.http.method); invoke the function through its URL",
        ));
    }
    let request: LambdaFunctionUrlRequest =
        serde_path_to_error::deserialize(event).map_err(|e| {
            bad(format!(
                "the event is not a function URL request (`{}`: {}); invoke the function through its URL",
                e.path(),
                e.inner()
            ))
        })?;
    let method = request
        .request_context
        .http
        .method
        .unwrap_or_default()
        .to_ascii_uppercase();
    let text = request.body.unwrap_or_default();
    let too_large = |n: usize| {
        Refusal::new(
            Fault::TooLarge,
            format!(
                "the body is {n} bytes; Lambda accepts at most {MAX_BODY_BYTES}. Trim the push (fewer commits per push) or build it by hand"
            ),
        )
    };
    let body = if request.is_base64_encoded {
        if text.len() / 4 * 3 > MAX_BODY_BYTES + 3 {
            return Err(too_large(text.len() / 4 * 3));
        }
        base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map_err(|e| {
                bad(format!(
                    "the body is marked base64 but does not decode: {e}"
                ))
            })?
    } else {
        text.into_bytes()
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large(body.len()));
    }
    Ok(HttpRequest {
        method,
        headers: request.headers,
        body,
    })
}

/// Reads a verified request as a delivery: its content type, event name, delivery id and
/// payload.
pub(crate) fn delivery(verified: Verified) -> Result<Delivery, Refusal> {
    let request = verified.0;
    let form = match media_type(&request).as_str() {
        "application/json" => false,
        "application/x-www-form-urlencoded" => true,
        other => {
            let shown = if other.is_empty() { "missing" } else { other };
            return Err(Refusal::new(
                Fault::MediaType,
                format!(
                    "the content type is {shown}; set the webhook's content type to application/json (or application/x-www-form-urlencoded)"
                ),
            ));
        }
    };
    let missing = |name: &str| {
        bad(format!(
            "the {name} header is missing; GitHub always sends it, so this did not come from GitHub's webhook"
        ))
    };
    // Owned: the body is moved out of the request below.
    let name = request
        .header("x-github-event")
        .ok_or_else(|| missing("X-GitHub-Event"))?
        .to_owned();
    let id = request
        .header("x-github-delivery")
        .ok_or_else(|| missing("X-GitHub-Delivery"))?
        .to_owned();
    if id.is_empty()
        || id.len() > 100
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad(
            "the X-GitHub-Delivery header is not a delivery id (a GUID)",
        ));
    }
    // Only deliveries that may start a build need the key, and hashing a 6 MB body takes
    // milliseconds.
    let key = matches!(name.as_str(), "push" | "pull_request")
        .then(|| signature::delivery_key(&name, &request.body));
    let payload = if form {
        form_urlencoded::parse(&request.body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned().into_bytes())
            .ok_or_else(|| bad("the form body has no `payload` field"))?
    } else {
        request.body
    };
    let event = match (name.as_str(), key) {
        ("ping", _) => {
            // Read by serde_json, bounded at 128 levels.
            let ping: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
            Event::Ping {
                hook_id: ping.get("hook_id").cloned(),
            }
        }
        ("push", Some(key)) => {
            check_depth(&payload)?;
            let payload = Push::from_json(&payload).map_err(|e| bad(e.to_string()))?;
            Event::Push(Box::new(Signed { key, payload }))
        }
        ("pull_request", Some(key)) => {
            check_depth(&payload)?;
            let payload = PullRequestEvent::from_json(&payload).map_err(|e| bad(e.to_string()))?;
            Event::PullRequest(Box::new(Signed { key, payload }))
        }
        ("check_run", _) => {
            check_depth(&payload)?;
            let e = CheckRunEvent::from_json(&payload).map_err(|e| bad(e.to_string()))?;
            Event::CheckRun(Box::new(e))
        }
        ("merge_group", _) => {
            check_depth(&payload)?;
            let e = MergeGroupEvent::from_json(&payload).map_err(|e| bad(e.to_string()))?;
            Event::MergeGroup(Box::new(e))
        }
        ("check_suite", _) => {
            check_depth(&payload)?;
            let e = CheckSuiteEvent::from_json(&payload).map_err(|e| bad(e.to_string()))?;
            Event::CheckSuite(Box::new(e))
        }
        (other, _) => Event::Other(other.to_owned()),
    };
    Ok(Delivery { id, event })
}

/// The media type of the body, lower case, without parameters.
fn media_type(request: &HttpRequest) -> String {
    request
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Typed reading skips unknown fields without walking them, so the depth of a body that is
/// read is checked first.
fn check_depth(payload: &[u8]) -> Result<(), Refusal> {
    flavor_ci::nesting::check_text(payload).map_err(|e| bad(format!("the delivery body: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(headers: Value, body: &str) -> Value {
        json!({
            "version": "2.0",
            "requestContext": {"http": {"method": "post"}, "timeEpoch": 1795168800000_i64},
            "headers": headers,
            "body": body,
            "isBase64Encoded": false,
        })
    }

    fn read_delivery(headers: Value, body: &str) -> Result<Delivery, Refusal> {
        match read(request(headers, body))? {
            Incoming::Http(r) => delivery(Verified(r)),
            Incoming::Run(_) => panic!("read as a run"),
        }
    }

    #[test]
    fn runs_are_read_without_a_signature_and_requests_with_one() {
        let run = json!({"flavorCiRun": {"trigger": "schedule", "id": "nightly-1"}});
        let Ok(Incoming::Run(d)) = read(run) else {
            panic!("not a run");
        };
        assert_eq!(d.id, "nightly-1");
        assert!(matches!(d.event, Event::Schedule(_)));
        // A URL request that carries a run key is still a URL request.
        let mut disguised = request(json!({}), "");
        disguised["flavorCiRun"] = json!({"trigger": "dispatch", "id": "x"});
        assert!(matches!(read(disguised), Ok(Incoming::Http(_))));
    }

    #[test]
    fn deliveries_are_typed_by_event_name_and_keyed_by_their_body() {
        let headers = |event: &str| {
            json!({"content-type": "application/json; charset=utf-8", "x-github-event": event,
                   "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"})
        };
        let ping = read_delivery(headers("ping"), r#"{"hook_id": 7}"#).unwrap();
        assert!(matches!(ping.event, Event::Ping { hook_id: Some(id) } if id == 7));
        let body = include_str!("../../../events/github-webhook-push.json");
        let event: Value = serde_json::from_str(body).unwrap();
        let push_body = event["body"].as_str().unwrap();
        let push = read_delivery(headers("push"), push_body).unwrap();
        let Event::Push(signed) = push.event else {
            panic!("not a push");
        };
        assert_eq!(
            signed.key,
            signature::delivery_key("push", push_body.as_bytes())
        );
        let other = read_delivery(headers("issues"), "{}").unwrap();
        assert!(matches!(other.event, Event::Other(name) if name == "issues"));
        let refused = read_delivery(headers("push"), "{}").unwrap_err();
        assert_eq!(refused.fault, Fault::BadRequest);
    }
}
