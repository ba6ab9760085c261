//! One CloudFormation request: read the envelope leniently, do the work within the time the
//! invocation has, and answer exactly once.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::cloudformation::CloudFormationCustomResourceRequest;
use bytes::Bytes;
use flavor_ci::custom_resource::{self, PhysicalId, RequestType, Response, Status};
use flavor_ci::nesting::{BoundedJson, TooDeep};
use indexmap::IndexMap;
use lambda_runtime::tracing::{error, info, warn};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

use crate::inflight;
use crate::respond::{Delivery, Responder, ResponseUrl};
use flavor_ci_aws::store::{ObjectStore, Put, Written};
use flavor_ci_aws::undo::{UndoLog, Undone, now_ms};

/// What the handler works with; built once per process.
#[derive(Debug)]
pub(crate) struct Deps<S> {
    pub(crate) store: S,
    pub(crate) responder: Responder,
    /// Confirms a Delete with CloudFormation before anything is removed.
    pub(crate) guard: crate::guard::Guard,
}

/// The request fields the answer needs, read without trusting the event's shape.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) request_type: Option<RequestType>,
    pub(crate) raw_request_type: String,
    pub(crate) stack_id: String,
    pub(crate) request_id: String,
    pub(crate) logical_id: String,
    pub(crate) physical_id: Option<String>,
}

fn text(event: &Value, field: &str) -> Option<String> {
    event.get(field).and_then(Value::as_str).map(String::from)
}

impl Envelope {
    pub(crate) fn read(event: &Value) -> Self {
        let raw_request_type = text(event, "RequestType").unwrap_or_default();
        Self {
            request_type: RequestType::parse(&raw_request_type),
            raw_request_type,
            stack_id: text(event, "StackId").unwrap_or_default(),
            request_id: text(event, "RequestId").unwrap_or_default(),
            logical_id: text(event, "LogicalResourceId").unwrap_or_default(),
            physical_id: text(event, "PhysicalResourceId").filter(|id| !id.is_empty()),
        }
    }

    /// The id to answer with when the request fails: a failed Create gets the marker, anything
    /// else keeps the id it came with, so a failure never turns into a replacement.
    fn failure_id(&self) -> String {
        match (self.request_type, &self.physical_id) {
            (Some(RequestType::Create), _) | (_, None) => {
                PhysicalId::failed_create(&self.request_id)
            }
            (_, Some(id)) => id.clone(),
        }
    }

    fn missing_fields(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.stack_id.is_empty() {
            missing.push("StackId");
        }
        if self.request_id.is_empty() {
            missing.push("RequestId");
        }
        if self.logical_id.is_empty() {
            missing.push("LogicalResourceId");
        }
        missing
    }

    fn response(&self, outcome: Outcome) -> Response {
        Response {
            status: outcome.status,
            reason: outcome.reason,
            physical_id: outcome.physical_id,
            stack_id: self.stack_id.clone(),
            request_id: self.request_id.clone(),
            logical_id: self.logical_id.clone(),
            data: outcome.data,
        }
    }
}

/// What the work decided.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    pub(crate) reason: String,
    pub(crate) physical_id: String,
    pub(crate) data: IndexMap<String, String>,
}

impl Outcome {
    fn failed(physical_id: String, reason: impl Into<String>) -> Self {
        Self {
            status: Status::Failed,
            reason: reason.into(),
            physical_id,
            data: IndexMap::new(),
        }
    }
}

/// How the invocation's time is shared between the work and the answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// The work must be done by then, or the answer is FAILED.
    pub(crate) work_until: Instant,
    /// The last moment a PUT attempt may still be running.
    pub(crate) answer_until: Instant,
}

impl Budget {
    /// The time until the earlier of the invocation's deadline and the stack's `ServiceTimeout`
    /// (counted from now), of which a quarter (at least 1 s, at most 15 s) is left for the answer.
    ///
    /// Lambda's deadline is in Unix milliseconds. A value too small to be one (local emulators
    /// such as `cargo lambda watch` send the function timeout, 600000) is read as milliseconds
    /// from now.
    pub(crate) fn new(deadline_ms: u64, service_timeout: Option<Duration>) -> Self {
        const YEAR_2001_MS: u64 = 978_307_200_000;
        let now_ms = now_ms();
        let lambda = if deadline_ms < YEAR_2001_MS {
            Duration::from_millis(deadline_ms)
        } else {
            Duration::from_millis(deadline_ms.saturating_sub(now_ms))
        };
        let total = match service_timeout {
            Some(t) => t.min(lambda),
            None => lambda,
        };
        let total = if total.is_zero() {
            warn!(
                deadline_ms,
                "the invocation has no time left by its deadline; assuming 10 s"
            );
            Duration::from_secs(10)
        } else {
            total
        };
        let reserve = (total / 4).clamp(Duration::from_secs(1), Duration::from_secs(15));
        let now = Instant::now();
        Self {
            work_until: now + total.saturating_sub(reserve),
            answer_until: now + total.saturating_sub(Duration::from_millis(200).min(total / 10)),
        }
    }
}

/// Handles one invocation. Returns an error only when no answer could be delivered for a
/// reason a later retry may not have (network or 5xx), so that Lambda's retry can try again.
pub(crate) async fn handle<S: ObjectStore>(
    deps: Arc<Deps<S>>,
    event: LambdaEvent<BoundedJson>,
) -> Result<(), Error> {
    let (payload, context) = event.into_parts();
    let service_timeout = payload
        .value
        .get("ResourceProperties")
        .and_then(custom_resource::service_timeout);
    let budget = Budget::new(context.deadline, service_timeout);
    handle_with_budget(deps, payload, budget).await
}

pub(crate) async fn handle_with_budget<S: ObjectStore>(
    deps: Arc<Deps<S>>,
    payload: BoundedJson,
    budget: Budget,
) -> Result<(), Error> {
    let BoundedJson {
        value: payload,
        too_deep,
    } = payload;
    let envelope = Envelope::read(&payload);
    let raw_url = text(&payload, "ResponseURL");
    let Some(url) = raw_url.as_deref().and_then(ResponseUrl::parse) else {
        error!(
            present = raw_url.is_some(),
            stack_id = %envelope.stack_id,
            logical_id = %envelope.logical_id,
            "the event has no usable ResponseURL; nothing can be answered, so nothing is done"
        );
        return Ok(());
    };
    info!(
        request_type = %envelope.raw_request_type,
        stack_id = %envelope.stack_id,
        logical_id = %envelope.logical_id,
        request_id = %envelope.request_id,
        physical_id = envelope.physical_id.as_deref().unwrap_or(""),
        url = %url,
        "request received"
    );

    inflight::arm(inflight::Armed {
        url: url.clone(),
        response: envelope.response(Outcome::failed(envelope.failure_id(), "")),
        answer_until: budget.answer_until.into_std(),
    });

    let written = Arc::new(UndoLog::default());
    let work = tokio::spawn(work(
        deps.clone(),
        envelope.clone(),
        payload,
        too_deep,
        written.clone(),
    ));
    let abort = work.abort_handle();
    let (outcome, timed_out) = match timeout_at(budget.work_until, work).await {
        Ok(Ok(outcome)) => (outcome, false),
        Ok(Err(e)) if e.is_panic() => {
            if !inflight::is_armed() {
                // The panic hook has answered FAILED already.
                return Ok(());
            }
            (
                Outcome::failed(
                    envelope.failure_id(),
                    "internal error in the buildspec resource function (a panic); see its log for details and report it",
                ),
                false,
            )
        }
        Ok(Err(e)) => (
            Outcome::failed(
                envelope.failure_id(),
                format!("the work was cancelled: {e}"),
            ),
            false,
        ),
        Err(_) => {
            abort.abort();
            warn!("the work did not finish in the time kept for it; answering FAILED");
            (
                Outcome::failed(
                    envelope.failure_id(),
                    "did not finish within the function's time limit (S3 did not answer in time); check that S3 is reachable from the function and raise the function's Timeout if the flavor list is very large, then retry the stack operation",
                ),
                true,
            )
        }
    };

    let Some(armed) = inflight::disarm() else {
        return Ok(());
    };
    let delivered = answer(&deps, &armed, &envelope, outcome, &budget).await;
    if timed_out {
        cleanup(&*deps, &written).await;
    }
    delivered
}

/// Sends CloudFormation the answer for `outcome`: an error only when it could not be
/// delivered (Lambda then retries the event).
async fn answer<S: ObjectStore>(
    deps: &Deps<S>,
    armed: &inflight::Armed,
    envelope: &Envelope,
    outcome: Outcome,
    budget: &Budget,
) -> Result<(), Error> {
    let response = envelope.response(outcome);
    info!(
        status = ?response.status,
        physical_id = %response.physical_id,
        reason = %response.reason,
        data_keys = response.data.len(),
        "answering"
    );
    let body = Bytes::from(response.to_body());
    let delivery = deps
        .responder
        .send(&armed.url, body, budget.answer_until)
        .await;
    match delivery {
        Delivery::Delivered { .. } => Ok(()),
        Delivery::Rejected { status, attempts } => {
            error!(status, attempts, url = %armed.url, "CloudFormation's response URL rejected the answer");
            Ok(())
        }
        Delivery::GaveUp {
            last_error,
            attempts,
        } => {
            error!(attempts, error = %last_error, url = %armed.url, "the answer could not be delivered");
            Err(format!(
                "the answer could not be delivered after {attempts} attempts: {last_error}"
            )
            .into())
        }
    }
}

/// Removes what a failed request created, so a failure leaves no half-written state.
async fn cleanup<S: ObjectStore>(deps: &Deps<S>, written: &UndoLog) {
    match written.undo(&deps.store, Duration::from_secs(5)).await {
        Undone::Nothing => {}
        Undone::Removed(count) => info!(count, "removed the objects of the failed request"),
        Undone::Failed(e) => {
            warn!(error = %e, "could not remove the objects of the failed request")
        }
        Undone::TimedOut => warn!("gave up removing the objects of the failed request"),
    }
}

async fn work<S: ObjectStore>(
    deps: Arc<Deps<S>>,
    envelope: Envelope,
    payload: Value,
    too_deep: Option<TooDeep>,
    written: Arc<UndoLog>,
) -> Outcome {
    let failure_id = envelope.failure_id();
    let Some(request_type) = envelope.request_type else {
        return Outcome::failed(
            failure_id,
            format!(
                "RequestType is {:?}; CloudFormation sends Create, Update or Delete, so this event did not come from CloudFormation",
                envelope.raw_request_type
            ),
        );
    };
    let missing = envelope.missing_fields();
    if !missing.is_empty() {
        return Outcome::failed(
            failure_id,
            format!(
                "the request lacks {}; it did not come from CloudFormation",
                missing.join(", ")
            ),
        );
    }
    // A Delete needs no properties, and must not fail for them: the rollback of a Create that
    // failed on these very properties sends them again.
    if let Some(deep) = too_deep
        && request_type != RequestType::Delete
    {
        return Outcome::failed(failure_id, deep.to_string());
    }
    // Then the request as `aws_lambda_events` types it: CloudFormation always sends every
    // field, so an event without one is answered FAILED, with the field.
    let request: CloudFormationCustomResourceRequest = match serde_path_to_error::deserialize(
        payload,
    ) {
        Ok(request) => request,
        Err(e) => {
            return Outcome::failed(
                failure_id,
                format!(
                    "the request is not a CloudFormation custom resource request (`{}`: {}); it did not come from CloudFormation",
                    e.path(),
                    e.inner()
                ),
            );
        }
    };
    #[allow(unused_mut)]
    let mut properties = match request {
        CloudFormationCustomResourceRequest::Create(r) => r.resource_properties,
        CloudFormationCustomResourceRequest::Update(r) => r.resource_properties,
        CloudFormationCustomResourceRequest::Delete(r) => r.resource_properties,
        _ => Value::Null,
    };
    #[cfg(feature = "fault-injection")]
    crate::fault::inject(&mut properties).await;
    match request_type {
        RequestType::Delete => delete(&*deps, &envelope).await,
        RequestType::Create | RequestType::Update => {
            store(&*deps, &envelope, &properties, &written).await
        }
    }
}

async fn delete<S: ObjectStore>(deps: &Deps<S>, envelope: &Envelope) -> Outcome {
    let id = envelope.physical_id.clone().unwrap_or_default();
    let answer = |status, reason: String| Outcome {
        status,
        reason,
        physical_id: if id.is_empty() {
            envelope.failure_id()
        } else {
            id.clone()
        },
        data: IndexMap::new(),
    };
    match PhysicalId::parse(&id, &envelope.stack_id, &envelope.logical_id) {
        PhysicalId::FailedCreate => answer(
            Status::Success,
            "nothing to delete: the Create of this resource had failed".into(),
        ),
        PhysicalId::Foreign => {
            info!(physical_id = %id, "not an id this resource produced; acknowledging without touching S3");
            answer(
                Status::Success,
                "nothing to delete: the physical id was not produced by this resource".into(),
            )
        }
        PhysicalId::Stored { bucket, root } => {
            if let Err(reason) = deps
                .guard
                .confirm_delete(&envelope.stack_id, &envelope.logical_id, &id)
                .await
            {
                warn!(physical_id = %id, reason = %reason, "refusing a Delete CloudFormation did not confirm");
                return answer(Status::Failed, reason);
            }
            match deps.store.delete_under(&bucket, &root).await {
                Ok(count) => {
                    info!(count, bucket = %bucket, root = %root, "deleted");
                    answer(
                        Status::Success,
                        format!("deleted {count} object versions under s3://{bucket}/{root}"),
                    )
                }
                Err(e) => answer(Status::Failed, e.to_string()),
            }
        }
    }
}

async fn store<S: ObjectStore>(
    deps: &Deps<S>,
    envelope: &Envelope,
    properties: &Value,
    written: &UndoLog,
) -> Outcome {
    let plan = match custom_resource::plan(properties, &envelope.stack_id, &envelope.logical_id) {
        Ok(plan) => plan,
        Err(e) => return Outcome::failed(envelope.failure_id(), e.to_string()),
    };
    let tentative = envelope.response(Outcome {
        status: Status::Success,
        reason: String::new(),
        physical_id: plan.physical_id.clone(),
        data: plan.data.clone(),
    });
    if let Some(size) = tentative.data_overflow() {
        return Outcome::failed(
            envelope.failure_id(),
            format!(
                "the response Data would be {size} bytes and not fit CloudFormation's 4096-byte response; shorten Prefix (its keys repeat in Data), the stack name or the logical id"
            ),
        );
    }
    let mut created = 0;
    for object in &plan.objects {
        match deps
            .store
            .put_if_absent(
                &plan.bucket,
                &object.key,
                object.body.as_bytes(),
                object.content_type,
                "",
            )
            .await
        {
            Ok(Put::Created { version }) => {
                created += 1;
                written.record(
                    &plan.bucket,
                    Written {
                        key: object.key.clone(),
                        version,
                    },
                );
            }
            Ok(Put::Existed) => {}
            Err(e) => {
                cleanup(deps, written).await;
                return Outcome::failed(envelope.failure_id(), e.to_string());
            }
        }
    }
    written.keep();
    info!(
        bucket = %plan.bucket,
        root = %plan.root,
        objects = plan.objects.len(),
        created,
        "stored"
    );
    let mut reason = format!(
        "stored {} objects ({created} new) under s3://{}/{}",
        plan.objects.len(),
        plan.bucket,
        plan.root
    );
    for w in &plan.warnings {
        reason.push_str("; warning: ");
        reason.push_str(w);
    }
    Outcome {
        status: Status::Success,
        reason,
        physical_id: plan.physical_id,
        data: plan.data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flavor_ci_aws::store::memory::MemoryStore;
    use serde_json::json;

    const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/ci/11111111-2222-3333-4444-555555555555";

    fn event(request_type: &str, physical_id: Option<&str>) -> Value {
        let mut e = json!({
            "RequestType": request_type,
            "ResponseURL": "http://127.0.0.1:9/response?sig=x",
            "StackId": STACK,
            "RequestId": "req-1",
            "LogicalResourceId": "Buildspecs",
            "ResourceType": "Custom::FlavorCiBuildspecs",
            "ResourceProperties": {"Bucket": "specs", "Flavors": ["a", "b"]}
        });
        if let Some(id) = physical_id {
            e["PhysicalResourceId"] = json!(id);
        }
        if request_type == "Update" {
            e["OldResourceProperties"] = e["ResourceProperties"].clone();
        }
        e
    }

    fn deps(store: MemoryStore) -> Arc<Deps<MemoryStore>> {
        Arc::new(Deps {
            store,
            responder: Responder::new().unwrap(),
            guard: crate::guard::Guard::Off,
        })
    }

    async fn run(deps: &Arc<Deps<MemoryStore>>, payload: Value) -> Outcome {
        let text = serde_json::to_vec(&payload).unwrap();
        run_text(deps, &text).await
    }

    /// Reads the event as the runtime does, from its bytes.
    async fn run_text(deps: &Arc<Deps<MemoryStore>>, text: &[u8]) -> Outcome {
        let read: BoundedJson = serde_json::from_slice(text).unwrap();
        let envelope = Envelope::read(&read.value);
        work(
            deps.clone(),
            envelope,
            read.value,
            read.too_deep,
            Arc::new(UndoLog::default()),
        )
        .await
    }

    /// `event` with `Settings.build.variables` nested `levels` lists deep, as text: serde_json
    /// alone would refuse it past 128 levels and leave CloudFormation without an answer.
    fn deep_event(request_type: &str, physical_id: Option<&str>, levels: usize) -> Vec<u8> {
        let mut e = event(request_type, physical_id);
        e["ResourceProperties"]["Settings"] = json!({"build": {"variables": "DEEP"}});
        let text = serde_json::to_string(&e).unwrap();
        let deep = format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        text.replace("\"DEEP\"", &deep).into_bytes()
    }

    #[tokio::test]
    async fn properties_nested_too_deeply_fail_with_the_place_and_delete_still_works() {
        let deps = deps(MemoryStore::default());
        for levels in [120, 129, 100_000] {
            let failed = run_text(&deps, &deep_event("Create", None, levels)).await;
            assert_eq!(failed.status, Status::Failed);
            assert!(
                failed.reason.starts_with(
                    "`ResourceProperties.Settings.build.variables[0][0]…` nests lists or objects more than 100 levels deep"
                ),
                "{}",
                failed.reason
            );
            assert!(deps.store.objects.lock().unwrap().is_empty());
        }
        let created = run(&deps, event("Create", None)).await;
        assert_eq!(created.status, Status::Success, "{}", created.reason);
        let updated = run_text(
            &deps,
            &deep_event("Update", Some(&created.physical_id), 100_000),
        )
        .await;
        assert_eq!(updated.status, Status::Failed);
        assert_eq!(updated.physical_id, created.physical_id);
        let deleted = run_text(
            &deps,
            &deep_event("Delete", Some(&created.physical_id), 100_000),
        )
        .await;
        assert_eq!(deleted.status, Status::Success, "{}", deleted.reason);
        assert!(deps.store.objects.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_delete_cloudformation_does_not_confirm_removes_nothing() {
        let deps = deps(MemoryStore::default());
        let created = run(&deps, event("Create", None)).await;
        assert_eq!(created.status, Status::Success, "{}", created.reason);
        let id = created.physical_id.clone();
        let guarded = |reports| {
            Arc::new(Deps {
                store: MemoryStore {
                    objects: std::sync::Mutex::new(deps.store.objects.lock().unwrap().clone()),
                    ..MemoryStore::default()
                },
                responder: Responder::new().unwrap(),
                guard: crate::guard::Guard::Reports(reports),
            })
        };
        // The resource is live under this id: a forged Delete.
        let forged = guarded(Ok(("CREATE_COMPLETE".into(), Some(id.clone()))));
        let refused = run(&forged, event("Delete", Some(&id))).await;
        assert_eq!(refused.status, Status::Failed);
        assert!(
            refused.reason.contains("nothing was removed"),
            "{}",
            refused.reason
        );
        assert_eq!(forged.store.objects.lock().unwrap().len(), 3);
        // CloudFormation cannot be asked: nothing is removed either.
        let unknown = guarded(Err("cannot confirm with CloudFormation".into()));
        let refused = run(&unknown, event("Delete", Some(&id))).await;
        assert_eq!(refused.status, Status::Failed);
        assert_eq!(unknown.store.objects.lock().unwrap().len(), 3);
        // The stack is deleting it: removed.
        let deleting = guarded(Ok(("DELETE_IN_PROGRESS".into(), Some(id.clone()))));
        let deleted = run(&deleting, event("Delete", Some(&id))).await;
        assert_eq!(deleted.status, Status::Success, "{}", deleted.reason);
        assert!(deleting.store.objects.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn create_then_delete_leaves_the_bucket_as_it_was() {
        let deps = deps(MemoryStore::default());
        let created = run(&deps, event("Create", None)).await;
        assert_eq!(created.status, Status::Success, "{}", created.reason);
        assert_eq!(deps.store.objects.lock().unwrap().len(), 3);
        let again = run(&deps, event("Create", None)).await;
        assert_eq!(again.physical_id, created.physical_id);
        assert!(again.reason.contains("(0 new)"), "{}", again.reason);
        let deleted = run(&deps, event("Delete", Some(&created.physical_id))).await;
        assert_eq!(deleted.status, Status::Success);
        assert!(deps.store.objects.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn failed_create_answers_the_marker_and_its_delete_touches_nothing() {
        let deps = deps(MemoryStore::default());
        let mut bad = event("Create", None);
        bad["ResourceProperties"]["Flavors"] = json!([]);
        let failed = run(&deps, bad).await;
        assert_eq!(failed.status, Status::Failed);
        assert!(failed.reason.contains("Flavors"), "{}", failed.reason);
        assert!(failed.physical_id.contains("create-failed"));
        let other = deps
            .store
            .objects
            .lock()
            .unwrap()
            .insert(("specs".into(), "flavor-ci/keep".into()), "x".into());
        assert!(other.is_none());
        let deleted = run(&deps, event("Delete", Some(&failed.physical_id))).await;
        assert_eq!(deleted.status, Status::Success);
        assert_eq!(deps.store.objects.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn failed_update_keeps_the_old_id() {
        let deps = deps(MemoryStore {
            fail_puts: true,
            ..Default::default()
        });
        let out = run(&deps, event("Update", Some("flavor-ci:v1:s3://specs/old/"))).await;
        assert_eq!(out.status, Status::Failed);
        assert_eq!(out.physical_id, "flavor-ci:v1:s3://specs/old/");
        assert!(out.reason.contains("PutObject"), "{}", out.reason);
    }

    #[tokio::test]
    async fn unknown_request_types_fail_with_a_reason() {
        let deps = deps(MemoryStore::default());
        let out = run(&deps, event("Upsert", None)).await;
        assert_eq!(out.status, Status::Failed);
        assert!(out.reason.contains("Upsert"));
    }

    #[test]
    fn budget_leaves_time_for_the_answer() {
        let now_ms = now_ms();
        for b in [
            Budget::new(now_ms + 4000, None),
            Budget::new(4000, None),
            Budget::new(now_ms + 900_000, Some(Duration::from_secs(4))),
        ] {
            let now = Instant::now();
            let work = b.work_until - now;
            assert!(work <= Duration::from_millis(3000) && work > Duration::from_millis(2500));
            assert!(b.answer_until > b.work_until);
            assert!(b.answer_until - now <= Duration::from_millis(4000));
        }
    }

    mod fuzz {
        //! Arbitrary events into the handler's reading and work: never a panic, always an
        //! outcome to answer with. Cases follow PROPTEST_CASES (benches/fuzz.sh runs many).
        use proptest::prelude::*;

        use super::*;

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                "\\PC{0,40}".prop_map(Value::from),
                Just(json!("Create")),
                Just(json!("Delete")),
                Just(json!("specs")),
                Just(json!("a,b")),
                Just(json!("build:\n  compute-type: X\n")),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                    proptest::collection::vec(
                        (
                            prop_oneof![
                                proptest::sample::select(
                                    &[
                                        "RequestType",
                                        "ResponseURL",
                                        "StackId",
                                        "RequestId",
                                        "LogicalResourceId",
                                        "PhysicalResourceId",
                                        "ResourceProperties",
                                        "Bucket",
                                        "Prefix",
                                        "Flavors",
                                        "Settings",
                                        "ServiceTimeout",
                                        "batch",
                                        "build",
                                        "flavors",
                                        "release",
                                        "max-builds",
                                    ][..]
                                )
                                .prop_map(str::to_owned),
                                "[a-z-]{0,10}",
                            ],
                            inner
                        ),
                        0..6
                    )
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
                ]
            })
        }

        /// Events shaped like CloudFormation's, with arbitrary parts.
        fn shaped_event() -> impl Strategy<Value = Value> {
            (json(), json(), any::<u8>(), any::<bool>()).prop_map(|(props, other, kind, id)| {
                let mut e = super::event(
                    ["Create", "Update", "Delete", "Other"][usize::from(kind % 4)],
                    id.then_some("flavor-ci:v1:s3://specs/x/"),
                );
                match kind % 3 {
                    0 => e["ResourceProperties"] = props,
                    1 => e["ResourceProperties"]["Settings"] = props,
                    _ => {
                        e[["StackId", "RequestId", "LogicalResourceId"]
                            [usize::from(kind % 7 % 3)]] = other
                    }
                }
                e
            })
        }

        proptest! {
            #[test]
            fn every_event_is_read_and_worked_to_an_outcome(e in shaped_event()) {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let outcome = runtime.block_on(run(&deps(MemoryStore::default()), e));
                prop_assert!(!outcome.physical_id.is_empty());
                if outcome.status == Status::Failed {
                    prop_assert!(!outcome.reason.is_empty());
                }
            }

            #[test]
            fn any_bytes_are_read_or_refused_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                if let Ok(read) = serde_json::from_slice::<BoundedJson>(&bytes) {
                    let _ = Envelope::read(&read.value);
                }
            }
        }
    }
}
