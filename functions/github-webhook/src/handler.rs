//! One invocation, as named steps from the request to the answer:
//!
//! ```text
//! edge::read ─▶ verify ─▶ edge::delivery ─▶ route ─▶ push | pull | run ─▶ batch ─▶ Outcome
//!                                                                   Outcome::answer ─▶ HTTP
//! ```

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlResponse;
use flavor_ci_aws::undo::UndoLog;
use lambda_runtime::tracing::{error, info, warn};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use tokio::time::timeout;

use crate::batch::cleanup;
use crate::edge::{self, Delivery, Event, Incoming};
use crate::github::Repository;
use crate::outcome::{Fault, Outcome, Refusal};
use crate::ports::{Deps, Job, Ports};
use crate::verify::verify;

/// GitHub gives up after 10 s; every answer leaves well before that.
const BUDGET: Duration = Duration::from_secs(8);
/// Settling a kept delivery's copy after the handling.
const SETTLE_BUDGET: Duration = Duration::from_millis(1500);

/// The Lambda entry point: always answers with an HTTP response.
pub(crate) async fn handle<P: Ports>(
    deps: Arc<Deps<P>>,
    event: LambdaEvent<Value>,
) -> Result<LambdaFunctionUrlResponse, Error> {
    let (payload, context) = event.into_parts();
    let written = UndoLog::default();
    let held = std::sync::Mutex::new(None);
    let outcome = match timeout(BUDGET, process(&deps, payload, &written, &held)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            cleanup(&deps.store, &written).await;
            Refusal::new(
                Fault::Unavailable,
                format!(
                    "the delivery took longer than {} s (GitHub, S3 or CodeBuild is slow); nothing was started; redeliver it",
                    BUDGET.as_secs()
                ),
            )
            .into()
        }
    };
    // A kept delivery's copy is settled within GitHub's 10 s: removed, or kept for a retry.
    let held = held.lock().ok().and_then(|mut h| h.take());
    let outcome = match (&deps.config, held) {
        (Ok(config), Some(held)) => {
            let job = Job {
                deps: &deps,
                config,
                written: &written,
            };
            match timeout(
                SETTLE_BUDGET,
                crate::intake::settle(job, Some(held), outcome.clone()),
            )
            .await
            {
                Ok(settled) => settled,
                Err(_) => outcome,
            }
        }
        _ => outcome,
    };
    let mut reply = outcome.answer();
    if reply.detail.is_some() {
        reply.body["requestId"] = context.request_id.into();
    }
    let message = reply.body["message"].as_str().unwrap_or_default();
    // Refusals (401, 405, 413, 415, 400; the caller sees why) are one short INFO line, so a
    // flood of them costs little and says little.
    if matches!(reply.status, 400 | 401 | 405 | 413 | 415) {
        info!(status = reply.status, "delivery refused");
    } else if let Some(detail) = &reply.detail {
        error!(status = reply.status, detail = %detail, "delivery failed");
    } else if reply.status >= 400 {
        warn!(status = reply.status, detail = message, "delivery rejected");
    } else {
        info!(status = reply.status, detail = message, "delivery answered");
    }
    Ok(reply.to_response())
}

/// From the invocation to its outcome.
async fn process<P: Ports>(
    deps: &Deps<P>,
    event: Value,
    written: &UndoLog,
    held: &std::sync::Mutex<Option<crate::intake::Held>>,
) -> Outcome {
    let config = match &deps.config {
        Ok(config) => config,
        Err(e) => {
            return Refusal::withheld(
                Fault::Misconfigured,
                "the function is misconfigured",
                format!("the function is misconfigured: {e}"),
            )
            .into();
        }
    };
    let job = Job {
        deps,
        config,
        written,
    };
    match receive(job, event, held).await {
        Ok(delivery) => route(job, delivery).await,
        Err(refusal) => refusal.into(),
    }
}

/// The invocation as a delivery: a run as it is, a request once its signature is verified;
/// a verified delivery that may start a build is kept first ([`crate::intake`]).
async fn receive<P: Ports>(
    job: Job<'_, P>,
    event: Value,
    held: &std::sync::Mutex<Option<crate::intake::Held>>,
) -> Result<Delivery, Refusal> {
    match edge::read(event)? {
        Incoming::Run(delivery) => Ok(delivery),
        Incoming::Http(request) => {
            let verified = verify(job.deps, request).await?;
            if let Some(hook) = &job.deps.repo_hook
                && verified.0.header("x-github-hook-installation-target-type") == Some("repository")
                && let Some(id) = verified
                    .0
                    .header("x-github-hook-id")
                    .and_then(|h| h.parse().ok())
            {
                let config = job.config;
                crate::repo_hook::record_hook_id(
                    hook,
                    &job.deps.store,
                    &config.bucket,
                    &config.root,
                    id,
                )
                .await;
            }
            let raw = crate::intake::Raw::of(&verified);
            let delivery = edge::delivery(verified)?;
            if let Some(raw) = raw {
                let kept = crate::intake::keep(job, raw, delivery.event.commit()).await;
                if let Ok(mut slot) = held.lock() {
                    *slot = kept;
                }
            }
            Ok(delivery)
        }
    }
}

/// Each event to its adapter.
pub(crate) async fn route<P: Ports>(job: Job<'_, P>, delivery: Delivery) -> Outcome {
    let Delivery { id, event } = delivery;
    if let Some(installation) = event.installation() {
        job.deps.github.installation(installation).await;
    }
    match event {
        Event::Ping { hook_id } => Outcome::Pong { hook_id },
        Event::Push(signed) => crate::push::on_push(job, &id, *signed).await,
        Event::PullRequest(signed) => crate::pull::on_pull_request(job, &id, *signed).await,
        Event::Schedule(run) | Event::Dispatch(run) => crate::run::on_run(job, run).await,
        Event::CheckRun(e) => crate::buttons::on_check_run(job, &id, *e).await,
        Event::CheckSuite(e) => crate::buttons::on_check_suite(job, &id, *e).await,
        Event::MergeGroup(e) => crate::merge_group::on_merge_group(job, &id, *e).await,
        Event::Sweep => crate::sweep::sweep(job).await,
        Event::Retry(id) => crate::sweep::retry_one(job, &id).await,
        Event::Other(name) => Outcome::nothing(format!(
            "flavor-ci acts on push and pull_request events; this {name} event was ignored"
        )),
    }
}

#[cfg(test)]
mod tests {
    use flavor_ci_aws::store::memory::MemoryStore;
    use lambda_runtime::Context;

    use super::*;
    use crate::builds::recording::Recording;
    use crate::config::Config;
    use crate::edge::MAX_BODY_BYTES;
    use crate::ports::fake::Fake;
    use crate::secrets::Cached;
    use crate::secrets::SecretSource;
    use base64::Engine;
    use flavor_ci::settings::Settings;
    use flavor_ci::webhook::signature;
    use serde_json::json;
    use tokio::sync::Mutex;

    const SECRET: &str = "s3cr3t";
    const AFTER: &str = "2222222222222222222222222222222222222222";

    #[derive(Debug)]
    struct Fixed(&'static str);

    impl SecretSource for Fixed {
        async fn fetch(&self, _id: &str) -> Result<String, crate::secrets::SecretProblem> {
            Ok(self.0.into())
        }
    }

    /// Secrets Manager refusing, with the kind of text AWS answers with.
    #[derive(Debug)]
    struct Refusing;

    impl SecretSource for Refusing {
        async fn fetch(&self, _id: &str) -> Result<String, crate::secrets::SecretProblem> {
            Err(crate::secrets::SecretProblem::Fetch("AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/x is not authorized to perform secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook-AbCdEf".into()))
        }
    }

    fn deps() -> Arc<Deps<Fake<Fixed>>> {
        deps_with(Fixed(SECRET))
    }

    fn deps_with<K: SecretSource>(source: K) -> Arc<Deps<Fake<K>>> {
        let vars = [
            ("FLAVOR_CI_BUCKET", "specs"),
            ("FLAVOR_CI_ROOT", "root/"),
            ("FLAVOR_CI_SETTINGS_KEY", "root/settings/x.json"),
            ("WEBHOOK_SECRET_ID", "webhook"),
            ("CI_PROJECT", "ci"),
            ("GITHUB_API_URL", "http://127.0.0.1:9"),
            ("GITHUB_REPOSITORY", "acme/slc"),
        ];
        let config = Config::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        });
        let store = MemoryStore::default();
        store.objects.lock().unwrap().insert(
            ("specs".into(), "root/settings/x.json".into()),
            Settings::default().to_canonical_json().into_bytes(),
        );
        Arc::new(Deps {
            config,
            store,
            builds: Recording::default(),
            webhook_secrets: Cached::new(
                Arc::new(source),
                "webhook".into(),
                crate::secrets::webhook_secrets,
                Duration::from_secs(300),
            ),
            github: crate::github::stand_in::StandIn::default(),
            region: flavor_ci_aws::FromSdk::Ready("us-east-1".into()),
            settings: Mutex::new(None),
            repo_hook: None,
        })
    }

    fn event(method: &str, headers: Value, body: &str) -> Value {
        json!({
            "version": "2.0",
            "requestContext": {"http": {"method": method}, "timeEpoch": 1795168800000_i64},
            "headers": headers,
            "body": body,
            "isBase64Encoded": false,
        })
    }

    fn signed(event_name: &str, content_type: &str, body: &str) -> Value {
        event(
            "POST",
            json!({
                "content-type": content_type,
                "x-github-event": event_name,
                "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                "x-hub-signature-256": signature::sign(SECRET.as_bytes(), body.as_bytes()),
            }),
            body,
        )
    }

    async fn call<K: SecretSource>(deps: &Arc<Deps<Fake<K>>>, payload: Value) -> (u16, Value) {
        let response = handle(deps.clone(), LambdaEvent::new(payload, Context::default()))
            .await
            .unwrap();
        let response = serde_json::to_value(response).unwrap();
        let status = u16::try_from(response["statusCode"].as_u64().unwrap()).unwrap();
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        (status, body)
    }

    #[tokio::test]
    async fn unauthenticated_callers_learn_nothing_about_the_account() {
        let d = deps_with(Refusing);
        let (status, body) = call(&d, signed("push", "application/json", "{}")).await;
        assert_eq!(status, 503, "{body}");
        let text = body.to_string();
        for secret in ["arn:", "123456789012", "AccessDenied", "webhook-AbCdEf"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("cannot verify the delivery right now"),
            "{text}"
        );
        assert!(body.get("requestId").is_some(), "{text}");
        // A misconfigured function names no environment value either.
        let mut broken = deps_with(Fixed(SECRET));
        Arc::get_mut(&mut broken).unwrap().config = Err(crate::config::ConfigError(vec![
            "FLAVOR_CI_ROOT \"secret-bucket/private\" must end with `/`".into(),
        ]));
        let (status, body) = call(&broken, signed("push", "application/json", "{}")).await;
        assert_eq!(status, 500);
        let text = body.to_string();
        assert!(
            !text.contains("FLAVOR_CI_ROOT") && !text.contains("secret-bucket"),
            "{text}"
        );
        assert!(text.contains("misconfigured"), "{text}");
    }

    #[tokio::test]
    async fn requests_are_checked_in_order_and_each_rejection_names_the_fix() {
        let d = deps();
        let (status, body) = call(&d, event("GET", json!({}), "")).await;
        assert_eq!(status, 405, "{body}");
        let (status, body) = call(&d, event("POST", json!({"x-github-event": "push"}), "{}")).await;
        assert_eq!(status, 401);
        assert!(
            body["message"].as_str().unwrap().contains("missing"),
            "{body}"
        );
        let (status, _) = call(&d, signed("push", "text/plain", "{}")).await;
        assert_eq!(status, 415);
        let mut no_event = signed("push", "application/json", "{}");
        no_event["headers"]
            .as_object_mut()
            .unwrap()
            .remove("x-github-event");
        let (status, body) = call(&d, no_event).await;
        assert_eq!(status, 400);
        assert!(
            body["message"].as_str().unwrap().contains("X-GitHub-Event"),
            "{body}"
        );
        let (status, body) = call(&d, signed("push", "application/json", "{not json")).await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = call(&d, json!({"hello": "world"})).await;
        assert_eq!(status, 400);
        assert!(d.builds.started.lock().unwrap().is_empty());
        assert_eq!(d.store.objects.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn pings_pong_other_events_and_deleted_branches_are_ignored() {
        let d = deps();
        let (status, body) = call(
            &d,
            signed("ping", "application/json", r#"{"zen":"x","hook_id":7}"#),
        )
        .await;
        assert_eq!((status, body["status"].as_str()), (200, Some("pong")));
        assert_eq!(body["hookId"], 7);
        let (status, body) = call(&d, signed("issues", "application/json", "{}")).await;
        assert_eq!(status, 202);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("issues event was ignored")
        );
        let deletion = json!({
            "ref": "refs/heads/gone", "before": AFTER, "after": "0000000000000000000000000000000000000000",
            "deleted": true, "commits": [], "head_commit": null, "repository": {"full_name": "acme/slc"}
        })
        .to_string();
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &deletion)
            .finish();
        let (status, body) = call(
            &d,
            signed("push", "application/x-www-form-urlencoded", &form),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("was deleted"),
            "{body}"
        );
        assert!(d.builds.started.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn base64_bodies_are_verified_after_decoding_and_oversize_ones_rejected() {
        let d = deps();
        let body = r#"{"zen":"x"}"#;
        let mut e = signed("ping", "application/json", body);
        e["body"] = base64::engine::general_purpose::STANDARD
            .encode(body)
            .into();
        e["isBase64Encoded"] = true.into();
        assert_eq!(call(&d, e).await.0, 200);
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert_eq!(
            call(&d, signed("push", "application/json", &big)).await.0,
            413
        );
    }

    mod fuzz {
        //! Arbitrary requests into the handler: never a panic, always an HTTP answer. The
        //! number of cases follows PROPTEST_CASES (the test command runs the default 256;
        //! benches/fuzz.sh runs many more).
        use base64::Engine;
        use proptest::prelude::*;

        use super::*;

        const NAMES: &[&str] = &[
            "content-type",
            "x-github-event",
            "x-github-delivery",
            "x-hub-signature-256",
            "x-hub-signature",
            "Content-Type",
            "X-GitHub-Event",
        ];

        fn header() -> impl Strategy<Value = (String, Value)> {
            let name = prop_oneof![
                proptest::sample::select(NAMES).prop_map(str::to_owned),
                "[a-zA-Z-]{0,20}",
            ];
            let value = prop_oneof![
                Just(json!("application/json")),
                Just(json!("application/x-www-form-urlencoded")),
                Just(json!("push")),
                Just(json!("ping")),
                Just(json!("pull_request")),
                Just(json!("72d3162e-cc78-11e3-81ab-4c9367dc0958")),
                "\\PC{0,80}".prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                Just(Value::Null),
            ];
            (name, value)
        }

        fn body() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..512),
                "\\PC{0,300}".prop_map(String::into_bytes),
                Just(br#"{"ref":"refs/heads/main","after":"2222222222222222222222222222222222222222","repository":{"full_name":"acme/slc"},"commits":[{"id":"x","added":["flavors/a/b"]}]}"#.to_vec()),
                Just(b"payload=%7B%22zen%22%3A1%7D".to_vec()),
                Just(br#"{"action":"opened","number":3,"pull_request":{"draft":false,"head":{"ref":"t","sha":"2222222222222222222222222222222222222222","repo":{"full_name":"mallory/slc"}},"base":{"ref":"main","sha":"1111111111111111111111111111111111111111","repo":{"full_name":"acme/slc"}}},"repository":{"full_name":"acme/slc"}}"#.to_vec()),
                Just(br#"{"action":"closed","number":3,"pull_request":{"head":{"ref":"t","sha":"x","repo":null},"base":{"ref":"main","sha":"y","repo":null}},"repository":{"full_name":"acme/slc"}}"#.to_vec()),
                Just(format!("{}1{}", "[".repeat(500), "]".repeat(500)).into_bytes()),
            ]
        }

        fn request() -> impl Strategy<Value = Value> {
            (
                prop_oneof![
                    Just("POST".to_owned()),
                    Just("GET".to_owned()),
                    Just("post".to_owned()),
                    "[A-Z]{0,8}",
                ],
                proptest::collection::vec(header(), 0..8),
                body(),
                any::<bool>(),
                any::<bool>(),
                any::<u8>(),
            )
                .prop_map(|(method, headers, body, base64, sign, shape)| {
                    let mut h = serde_json::Map::new();
                    for (k, v) in headers {
                        h.insert(k, v);
                    }
                    if sign {
                        h.insert(
                            "x-hub-signature-256".into(),
                            json!(signature::sign(SECRET.as_bytes(), &body)),
                        );
                    }
                    let text = if base64 {
                        base64::engine::general_purpose::STANDARD.encode(&body)
                    } else {
                        String::from_utf8_lossy(&body).into_owned()
                    };
                    match shape % 10 {
                        // Not a function URL event at all.
                        0 => json!({"hello": text}),
                        1 => json!([method, text]),
                        // A run request, well or badly formed.
                        2 => json!({"flavorCiRun": {"trigger": "dispatch", "id": text, "gitRef": method}}),
                        3 => json!({"flavorCiRun": text}),
                        _ => json!({
                            "version": "2.0",
                            "requestContext": {"http": {"method": method}, "timeEpoch": 1795168800000_i64},
                            "headers": h,
                            "body": text,
                            "isBase64Encoded": base64,
                        }),
                    }
                })
        }

        proptest! {
            #[test]
            fn every_request_gets_an_http_answer(event in request()) {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let d = deps();
                let response = runtime
                    .block_on(handle(d, LambdaEvent::new(event, Context::default())))
                    .unwrap();
                let response = serde_json::to_value(response).unwrap();
                let status = response["statusCode"].as_u64().unwrap();
                prop_assert!((200..600).contains(&status), "{response}");
                let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
                prop_assert!(body["message"].is_string(), "{body}");
            }
        }
    }
}
