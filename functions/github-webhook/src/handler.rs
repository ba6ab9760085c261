//! One function-URL request: verify, route, choose flavors, generate, store, start.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlResponse;
use flavor_ci::webhook::signature::{self, SignatureError};
use flavor_ci_aws::store::ObjectStore;
use flavor_ci_aws::undo::UndoLog;
use lambda_runtime::tracing::{error, info, warn};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use tokio::time::timeout;

use crate::builds::Builds;
use crate::deps::{Deps, cleanup};
use crate::http::{HttpRequest, Reply, read_request};
use crate::secrets::SecretSource;

/// GitHub gives up after 10 s; every answer leaves well before that.
const BUDGET: Duration = Duration::from_secs(8);

/// The Lambda entry point: always answers with an HTTP response.
pub(crate) async fn handle<S, B, K>(
    deps: Arc<Deps<S, B, K>>,
    event: LambdaEvent<Value>,
) -> Result<LambdaFunctionUrlResponse, Error>
where
    S: ObjectStore,
    B: Builds,
    K: SecretSource,
{
    let (payload, context) = event.into_parts();
    let written = Arc::new(UndoLog::default());
    let reply = match timeout(BUDGET, process(&deps, payload, &written)).await {
        Ok(reply) => reply,
        Err(_) => {
            cleanup(&deps.store, &written).await;
            Reply::error(
                503,
                format!(
                    "the delivery took longer than {} s (GitHub, S3 or CodeBuild is slow); nothing was started; redeliver it",
                    BUDGET.as_secs()
                ),
            )
        }
    };
    let mut reply = reply;
    if reply.detail.is_some() {
        reply = reply.with("requestId", context.request_id);
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

async fn process<S, B, K>(deps: &Deps<S, B, K>, event: Value, progress: &UndoLog) -> Reply
where
    S: ObjectStore,
    B: Builds,
    K: SecretSource,
{
    match receive(deps, event, progress).await {
        Ok(r) | Err(r) => r,
    }
}

async fn receive<S, B, K>(
    deps: &Deps<S, B, K>,
    event: Value,
    progress: &UndoLog,
) -> Result<Reply, Reply>
where
    S: ObjectStore,
    B: Builds,
    K: SecretSource,
{
    let config = deps.config.as_ref().map_err(|e| {
        Reply::withheld(
            500,
            "the function is misconfigured",
            format!("the function is misconfigured: {e}"),
        )
    })?;
    // A run (schedule, dispatch) comes as a direct invocation, which only principals allowed
    // lambda:InvokeFunction can make; a request through the URL always has requestContext.
    if event.get("requestContext").is_none()
        && let Some(run) = event.get(flavor_ci::webhook::run::RUN_KEY)
    {
        return crate::run::on_run(deps, config, run.clone(), progress).await;
    }
    // Until the signature is verified the caller is anyone on the internet: failures say
    // nothing about the account.
    let request = read_request(event)?;
    if request.method != "POST" {
        return Err(Reply::error(
            405,
            format!(
                "{} is not accepted; GitHub delivers webhooks with POST",
                request.method
            ),
        ));
    }
    verify(deps, &request).await?;

    let media_type = request
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let form = match media_type.as_str() {
        "application/json" => false,
        "application/x-www-form-urlencoded" => true,
        other => {
            let shown = if other.is_empty() { "missing" } else { other };
            return Err(Reply::error(
                415,
                format!(
                    "the content type is {shown}; set the webhook's content type to application/json (or application/x-www-form-urlencoded)"
                ),
            ));
        }
    };
    let missing = |name: &str| {
        Reply::error(
            400,
            format!(
                "the {name} header is missing; GitHub always sends it, so this did not come from GitHub's webhook"
            ),
        )
    };
    // Owned: the body is moved out of the request below.
    let event_name = request
        .header("x-github-event")
        .ok_or_else(|| missing("X-GitHub-Event"))?
        .to_owned();
    let delivery = request
        .header("x-github-delivery")
        .ok_or_else(|| missing("X-GitHub-Delivery"))?
        .to_owned();
    if delivery.is_empty()
        || delivery.len() > 100
        || !delivery
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Reply::error(
            400,
            "the X-GitHub-Delivery header is not a delivery id (a GUID)",
        ));
    }
    // What identifies this delivery: the signed body, never the unsigned delivery id. Only
    // deliveries that may start a build need it, and hashing a 6 MB body takes milliseconds.
    let key = matches!(event_name.as_str(), "push" | "pull_request")
        .then(|| signature::delivery_key(&event_name, &request.body));
    let payload = if form {
        form_urlencoded::parse(&request.body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned().into_bytes())
            .ok_or_else(|| Reply::error(400, "the form body has no `payload` field"))?
    } else {
        request.body
    };
    // Typed reading skips unknown fields without walking them, so the depth of a body that is
    // read is checked first (a ping is read by serde_json, bounded at 128 levels; other events
    // are not read at all).
    if key.is_some()
        && let Err(e) = flavor_ci::nesting::check_text(&payload)
    {
        return Err(Reply::error(400, format!("the delivery body: {e}")));
    }

    match event_name.as_str() {
        "ping" => {
            let ping: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
            let mut reply = Reply::new(
                200,
                "pong",
                "the webhook is set up; flavor-ci starts builds on push and pull_request events",
            );
            if let Some(id) = ping.get("hook_id") {
                reply = reply.with("hookId", id.clone());
            }
            Ok(reply)
        }
        "push" => {
            let key = key.unwrap_or_default();
            crate::push::on_push(deps, config, &delivery, &key, &payload, progress).await
        }
        "pull_request" => {
            let key = key.unwrap_or_default();
            crate::pull::on_pull_request(deps, config, &delivery, &key, &payload, progress).await
        }
        other => Ok(Reply::new(
            202,
            "ignored",
            format!(
                "flavor-ci acts on push and pull_request events; this {other} event was ignored"
            ),
        )),
    }
}

/// Checks the signature against the cached secrets, and once more against a fresh copy.
async fn verify<S, B, K: SecretSource>(
    deps: &Deps<S, B, K>,
    request: &HttpRequest,
) -> Result<(), Reply> {
    let header = request.header("x-hub-signature-256");
    let unauthorized = |e: SignatureError| Reply::error(401, e.to_string());
    // A missing or malformed header is rejected before any secret is read.
    let missing = if request.header("x-hub-signature").is_some() {
        SignatureError::OnlySha1
    } else {
        SignatureError::Missing
    };
    signature::parse(header.ok_or(missing).map_err(unauthorized)?).map_err(unauthorized)?;
    let unavailable = |e: crate::secrets::SecretError| {
        Reply::withheld(
            503,
            "cannot verify the delivery right now; redeliver it later",
            format!("cannot verify the delivery: {e}"),
        )
    };
    let secrets = deps.webhook_secrets.get().await.map_err(unavailable)?;
    match signature::verify(&secrets, &request.body, header) {
        Ok(_) => Ok(()),
        Err(SignatureError::Mismatch) => {
            match deps
                .webhook_secrets
                .refresh(&secrets)
                .await
                .map_err(unavailable)?
            {
                Some(fresh) => signature::verify(&fresh, &request.body, header)
                    .map(|_| ())
                    .map_err(unauthorized),
                None => Err(unauthorized(SignatureError::Mismatch)),
            }
        }
        Err(e) => Err(unauthorized(e)),
    }
}

#[cfg(test)]
mod tests {
    use flavor_ci_aws::store::memory::MemoryStore;
    use lambda_runtime::Context;

    use super::*;
    use crate::builds::recording::Recording;
    use crate::config::Config;
    use crate::github::GitHub;
    use crate::http::MAX_BODY_BYTES;
    use crate::secrets::Cached;
    use base64::Engine;
    use flavor_ci::settings::Settings;
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

    fn deps() -> Arc<Deps<MemoryStore, Recording, Fixed>> {
        deps_with(Fixed(SECRET))
    }

    fn deps_with<K: SecretSource>(source: K) -> Arc<Deps<MemoryStore, Recording, K>> {
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
            github_token: None,
            github: GitHub::new(
                flavor_ci_aws::LazyHttpsClient::new(Duration::from_secs(1), false),
                "http://127.0.0.1:9",
            ),
            statuses: flavor_ci_aws::github_status::StatusPoster::new(
                flavor_ci_aws::LazyHttpsClient::new(Duration::from_secs(1), false),
                "http://127.0.0.1:9",
            ),
            region: flavor_ci_aws::FromSdk::Ready("us-east-1".into()),
            settings: Mutex::new(None),
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

    async fn call<K: SecretSource>(
        deps: &Arc<Deps<MemoryStore, Recording, K>>,
        payload: Value,
    ) -> (u16, Value) {
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
