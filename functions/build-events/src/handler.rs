//! What arrives: a Build State Change event from EventBridge, or the reconcile schedule's
//! `{"flavorCiReconcile": {}}`. An error hands the event back to Lambda, which retries it and
//! then sends it to the function's on-failure destination.

use std::sync::Arc;

use lambda_runtime::tracing::error;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

use crate::deps::{Deps, Ports};
use crate::{event, track};

const BUILD_STATE_CHANGE: &str = "CodeBuild Build State Change";

pub(crate) async fn handle<P: Ports>(
    deps: Arc<Deps<P>>,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let result = process(&deps, event.payload).await;
    if let Err(e) = &result {
        error!(error = %e, "the event was not handled");
    }
    result.map_err(Error::from)
}

async fn process<P: Ports>(deps: &Deps<P>, payload: Value) -> Result<Value, String> {
    let config = deps
        .config
        .as_ref()
        .map_err(|e| format!("the function is misconfigured: {e}"))?;
    let default_region = || async { deps.region.get().await.clone() };
    if payload.get("flavorCiReconcile").is_some() {
        let region = default_region().await;
        return track::reconcile(deps, config, &region)
            .await
            .map_err(|e| e.to_string());
    }
    match payload.get("detail-type").and_then(Value::as_str) {
        Some(BUILD_STATE_CHANGE) => {
            let region = match payload.get("region").and_then(Value::as_str) {
                Some(r) => r.to_owned(),
                None => default_region().await,
            };
            let report = event::read(payload).map_err(|e| e.to_string())?;
            track::on_report(deps, config, report, &region)
                .await
                .map_err(|e| e.to_string())
        }
        Some(other) => Err(format!(
            "events of type {other:?} are not handled: the function takes {BUILD_STATE_CHANGE:?} events and {{\"flavorCiReconcile\": {{}}}}; check the EventBridge rule's pattern"
        )),
        None => Err("the event is neither a CodeBuild Build State Change nor {\"flavorCiReconcile\": {}}; check what invokes the function".into()),
    }
}

#[cfg(test)]
mod tests {
    use flavor_ci::layout::{open_run_key, run_key};
    use flavor_ci::runs::{RunFlavor, RunRecord, RunTrigger};
    use flavor_ci_aws::github_status::StatusPoster;
    use flavor_ci_aws::secrets::{SecretProblem, SecretSource};
    use flavor_ci_aws::store::memory::MemoryStore;
    use serde_json::json;

    use super::*;
    use crate::codebuild::BatchView;
    use crate::codebuild::fake::FakeBatches;
    use crate::config::Config;
    use crate::notify::fake::Recorded;
    use crate::track::state;

    /// Every secret holds the same token.
    #[derive(Debug)]
    struct NoSecrets;

    impl SecretSource for NoSecrets {
        async fn fetch(&self, _id: &str) -> Result<String, SecretProblem> {
            Ok("ghs_test".into())
        }
    }

    #[derive(Debug)]
    struct Fakes;

    impl Ports for Fakes {
        type Store = MemoryStore;
        type Batches = FakeBatches;
        type Secrets = NoSecrets;
        type Notifier = Recorded;
        type Logs = crate::logs::fake::Kept;
    }

    type TestDeps = Deps<Fakes>;

    fn nowhere() -> flavor_ci_aws::github::GitHubClient {
        flavor_ci_aws::github::GitHubClient::new(
            flavor_ci_aws::LazyHttpsClient::new(std::time::Duration::from_secs(1), false),
            "http://127.0.0.1:9",
            flavor_ci_aws::github::Timing {
                attempt: std::time::Duration::from_secs(1),
                total: std::time::Duration::from_secs(1),
            },
        )
    }

    fn deps() -> Arc<TestDeps> {
        deps_with(&[], None)
    }

    /// With `vars` added to the environment, writing to the GitHub at `github` (with a token).
    fn deps_with(vars: &[(&str, &str)], github: Option<&str>) -> Arc<TestDeps> {
        let config = Config::from_lookup(|name| {
            let base = match name {
                "FLAVOR_CI_BUCKET" => Some("specs"),
                "FLAVOR_CI_ROOT" => Some("r/"),
                "CI_PROJECT" => Some("ci"),
                "GITHUB_REPOSITORY" => Some("acme/slc"),
                "NOTIFICATION_TOPIC_ARN" => Some("arn:aws:sns:eu-west-1:1:t"),
                _ => None,
            };
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .or(base)
                .map(str::to_owned)
        });
        let client = github.map_or_else(nowhere, flavor_ci_aws::github::local::client);
        let credentials = match github {
            Some(_) => {
                flavor_ci_aws::github::app::Credentials::Token(flavor_ci_aws::secrets::Cached::new(
                    Arc::new(NoSecrets),
                    "token".into(),
                    flavor_ci_aws::secrets::github_token,
                    std::time::Duration::from_secs(60),
                ))
            }
            None => flavor_ci_aws::github::app::Credentials::None,
        };
        let deps: Arc<TestDeps> = Arc::new(Deps {
            config,
            store: MemoryStore::default(),
            batches: FakeBatches::default(),
            github: credentials,
            poster: StatusPoster::new(client.clone()),
            checks: flavor_ci_aws::github::checks::CheckRuns::new(client),
            notifier: Recorded::default(),
            logs: Default::default(),
            region: flavor_ci_aws::FromSdk::Ready("eu-west-1".into()),
        });
        let record = RunRecord {
            batch_id: "ci:batch".into(),
            project: "ci".into(),
            commit: "abc".into(),
            git_ref: "refs/heads/main".into(),
            pull_request: None,
            trigger: RunTrigger::Push,
            flavors: ["base", "py"]
                .iter()
                .map(|f| RunFlavor {
                    name: (*f).into(),
                    identifier: format!("{f}_task"),
                })
                .collect(),
            started_at: flavor_ci_aws::undo::now_ms(),
            buildspec: String::new(),
            repository: "acme/slc".into(),
            default_branch: true,
            builds: Default::default(),
            finished: None,
            reason: String::new(),
            why: Default::default(),
            checks: None,
            carried: Default::default(),
            merge_group: None,
            announce: None,
            inputs: Default::default(),
            trusted: false,
            skipped: Default::default(),
        };
        deps.store.objects.lock().unwrap().insert(
            ("specs".into(), run_key("r/", "ci:batch")),
            serde_json::to_vec(&record).unwrap(),
        );
        deps.store.objects.lock().unwrap().insert(
            ("specs".into(), open_run_key("r/", "ci:batch")),
            b"{}".to_vec(),
        );
        for (build, flavor) in [("ci:b1", "base"), ("ci:p1", "py")] {
            let _ = flavor;
            deps.batches
                .batch_of
                .lock()
                .unwrap()
                .insert(build.into(), "ci:batch".into());
        }
        deps
    }

    fn event(build: &str, flavor: &str, status: &str, minute: u32) -> Value {
        json!({
            "version": "0", "id": "e", "detail-type": "CodeBuild Build State Change",
            "source": "aws.codebuild", "account": "123456789012",
            "time": format!("2026-11-23T10:{minute:02}:00Z"), "region": "eu-west-1",
            "resources": [],
            "detail": {
                "build-status": status, "project-name": "ci",
                "build-id": format!("arn:aws:codebuild:eu-west-1:123456789012:build/{build}"),
                "current-phase": if status == "IN_PROGRESS" { "BUILD" } else { "COMPLETED" },
                "current-phase-context": "[]", "version": "1",
                "additional-information": {
                    "artifact": {}, "timeout-in-minutes": 60, "build-complete": status != "IN_PROGRESS",
                    "initiator": "ci", "build-start-time": "Nov 23, 2026 10:00:00 AM",
                    "source": {}, "logs": {}, "phases": [],
                    "environment": {"privileged-mode": false, "environment-variables":
                        [{"name": "FLAVOR", "type": "PLAINTEXT", "value": flavor}]},
                }
            }
        })
    }

    async fn send(deps: &Arc<TestDeps>, payload: Value) -> Result<Value, String> {
        process(deps, payload).await
    }

    fn record(deps: &TestDeps) -> RunRecord {
        serde_json::from_str(
            &deps
                .store
                .text("specs", &run_key("r/", "ci:batch"))
                .unwrap(),
        )
        .unwrap()
    }

    fn is_open(deps: &TestDeps) -> bool {
        deps.store
            .text("specs", &open_run_key("r/", "ci:batch"))
            .is_some()
    }

    /// Makes the run trusted (or not), with input keys for both flavors and `py` carried.
    fn with_inputs(deps: &TestDeps, trusted: bool, carried: &[&str]) {
        let mut run = record(deps);
        run.trusted = trusted;
        run.inputs = [("base", "s-kbase"), ("py", "s-kpy")]
            .iter()
            .map(|(f, k)| ((*f).to_owned(), (*k).to_owned()))
            .collect();
        run.carried = carried.iter().map(|f| (*f).to_owned()).collect();
        deps.store.objects.lock().unwrap().insert(
            ("specs".into(), run_key("r/", "ci:batch")),
            serde_json::to_vec(&run).unwrap(),
        );
    }

    fn green(deps: &TestDeps, key: &str) -> Option<Value> {
        deps.store
            .text("specs", &flavor_ci::layout::green_key("r/", key))
            .map(|t| serde_json::from_str(&t).unwrap())
    }

    #[tokio::test]
    async fn a_trusted_green_build_is_recorded_once_under_its_key_and_nothing_else_is() {
        let deps = deps();
        with_inputs(&deps, true, &[]);
        send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        let written = green(&deps, "s-kbase").expect("no green record");
        assert_eq!(
            (
                &written["buildId"],
                &written["commit"],
                &written["project"],
                &written["ref"]
            ),
            (
                &json!("ci:b1"),
                &json!("abc"),
                &json!("ci"),
                &json!("refs/heads/main")
            )
        );
        // The same event again leaves the record; a record of a build that ended later stays,
        // one that ended earlier (or names no green build) is replaced.
        let mut newer = written.clone();
        newer["buildId"] = json!("ci:later");
        newer["at"] = json!(u64::MAX);
        for (there, kept) in [(newer.clone(), true), (json!({"first": true}), false)] {
            deps.store.objects.lock().unwrap().insert(
                (
                    "specs".into(),
                    flavor_ci::layout::green_key("r/", "s-kbase"),
                ),
                serde_json::to_vec(&there).unwrap(),
            );
            let mut run = record(&deps);
            run.builds.remove("base");
            deps.store.objects.lock().unwrap().insert(
                ("specs".into(), run_key("r/", "ci:batch")),
                serde_json::to_vec(&run).unwrap(),
            );
            send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
                .await
                .unwrap();
            let now = green(&deps, "s-kbase").unwrap();
            assert_eq!(now == there, kept, "{now} over {there}");
            if !kept {
                assert_eq!(now["buildId"], "ci:b1");
            }
        }
        // A failure earns nothing.
        send(&deps, event("ci:p1", "py", "FAILED", 6))
            .await
            .unwrap();
        assert_eq!(green(&deps, "s-kpy"), None);
    }

    #[tokio::test]
    async fn an_untrusted_run_or_a_carried_flavor_writes_no_green_record() {
        let deps = deps();
        with_inputs(&deps, false, &[]);
        send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        assert_eq!(green(&deps, "s-kbase"), None);
        let deps = self::deps();
        with_inputs(&deps, true, &["base"]);
        send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        assert_eq!(green(&deps, "s-kbase"), None);
    }

    #[tokio::test]
    async fn duplicated_and_reordered_events_never_flip_an_ended_build_back() {
        let deps = deps();
        send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        let late = send(&deps, event("ci:b1", "base", "IN_PROGRESS", 1))
            .await
            .unwrap();
        assert_eq!(late["unchanged"], "the build already ended");
        let again = send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        assert_eq!(again["unchanged"], "the same state again");
        assert_eq!(record(&deps).builds["base"].status, "SUCCEEDED");
        assert!(record(&deps).finished.is_none());
        assert!(is_open(&deps));
    }

    #[tokio::test]
    async fn the_last_event_finishes_the_run_and_announces_a_failure_once() {
        let deps = deps();
        send(&deps, event("ci:b1", "base", "FAILED", 5))
            .await
            .unwrap();
        let last = send(&deps, event("ci:p1", "py", "SUCCEEDED", 6))
            .await
            .unwrap();
        assert_eq!(last["finished"]["state"], "failure");
        assert_eq!(
            last["finished"]["description"],
            "1 of 2 flavors failed: base"
        );
        let finished = record(&deps).finished.unwrap();
        assert!(!finished.succeeded && finished.reported());
        assert!(!is_open(&deps));
        // The same last event again changes nothing and announces nothing more.
        send(&deps, event("ci:p1", "py", "SUCCEEDED", 6))
            .await
            .unwrap();
        let messages = deps.notifier.messages.lock().unwrap().clone();
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].1.contains("1 of 2 flavors failed on main"),
            "{:?}",
            messages[0]
        );
        assert!(messages[0].2.contains("base: failed"), "{}", messages[0].2);
    }

    #[tokio::test]
    async fn a_lost_event_is_filled_in_from_codebuild_when_the_batch_ends() {
        let deps = deps();
        deps.batches.batches.lock().unwrap().push(BatchView {
            id: "ci:batch".into(),
            status: "SUCCEEDED".into(),
            builds: vec![
                ("base_task".into(), state("ci:b1", "SUCCEEDED", 1, 2)),
                ("py_task".into(), state("ci:p1", "SUCCEEDED", 1, 2)),
            ],
        });
        // py's events never arrive.
        let answer = send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        assert_eq!(answer["finished"]["state"], "success");
        assert_eq!(record(&deps).builds["py"].status, "SUCCEEDED");
        assert!(deps.notifier.messages.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_reconciler_finishes_a_run_whose_last_event_never_arrived() {
        let deps = deps();
        send(&deps, event("ci:b1", "base", "IN_PROGRESS", 1))
            .await
            .unwrap();
        let idle = send(&deps, json!({"flavorCiReconcile": {}})).await.unwrap();
        assert_eq!(idle["open"], 1);
        assert!(is_open(&deps));
        deps.batches.batches.lock().unwrap().push(BatchView {
            id: "ci:batch".into(),
            status: "FAILED".into(),
            builds: vec![
                ("base_task".into(), state("ci:b1", "FAILED", 1, 2)),
                ("py_task".into(), state("ci:p1", "SUCCEEDED", 1, 2)),
            ],
        });
        let done = send(&deps, json!({"flavorCiReconcile": {}})).await.unwrap();
        assert_eq!(done["finished"], json!(["ci:batch"]));
        assert!(!is_open(&deps));
        assert_eq!(record(&deps).finished.unwrap().failed.len(), 1);
        let none = send(&deps, json!({"flavorCiReconcile": {}})).await.unwrap();
        assert_eq!(none, json!({"open": 0}));
    }

    #[tokio::test]
    async fn a_batch_that_ended_before_its_builds_ran_still_finishes_its_run() {
        let deps = deps();
        // The batch failed before any build started (a source it could not download, say):
        // no build event will ever come.
        deps.batches.batches.lock().unwrap().push(BatchView {
            id: "ci:batch".into(),
            status: "FAILED".into(),
            builds: vec![],
        });
        let done = send(&deps, json!({"flavorCiReconcile": {}})).await.unwrap();
        assert_eq!(done["finished"], json!(["ci:batch"]));
        let r = record(&deps);
        assert_eq!(r.builds["base"].status, flavor_ci::runs::NO_RESULT);
        let finished = r.finished.unwrap();
        assert!(!finished.succeeded && finished.failed.len() == 2);
        assert!(!is_open(&deps));
        assert_eq!(deps.notifier.messages.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn other_builds_are_ignored_and_unknown_events_are_errors() {
        let deps = deps();
        let mut other = event("x:1", "base", "SUCCEEDED", 1);
        other["detail"]["project-name"] = "x".into();
        assert!(
            send(&deps, other).await.unwrap()["ignored"]
                .as_str()
                .unwrap()
                .contains("not one of this stack's projects")
        );
        let single = send(&deps, event("ci:single", "base", "SUCCEEDED", 1))
            .await
            .unwrap();
        assert_eq!(single["ignored"], "the build is not part of a batch build");
        let e = send(
            &deps,
            json!({"detail-type": "CodeBuild Build Phase Change"}),
        )
        .await
        .unwrap_err();
        assert!(e.contains("check the EventBridge rule"), "{e}");
        let mut bad = event("ci:b1", "base", "SUCCEEDED", 1);
        bad["detail"]["additional-information"]["build-start-time"] = json!(5);
        assert!(
            send(&deps, bad)
                .await
                .unwrap_err()
                .contains("build-start-time")
        );
    }

    /// GitHub's check-run endpoints on a local port: each request's call and body recorded,
    /// a created check run answered with a new id.
    /// Each request GitHub received: its call and JSON body.
    type Seen = Arc<std::sync::Mutex<Vec<(String, Value)>>>;

    fn checks_server() -> (String, Seen) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = seen.clone();
        let url = flavor_ci_aws::github::local::serve(move |request| {
            let body = serde_json::from_slice(&request.body).unwrap_or_default();
            let mut seen = kept.lock().unwrap();
            seen.push((request.call.clone(), body));
            let id = 500 + seen.len();
            ("201 Created", format!("{{\"id\":{id}}}"))
        });
        (url, seen)
    }

    fn app_deps(url: &str, flavor_checks: &str) -> Arc<TestDeps> {
        let deps = deps_with(
            &[
                ("STATUS_CONTEXT", "flavor-ci"),
                ("GITHUB_APP_ID", "12345"),
                ("GITHUB_APP_KEY_SECRET_ID", "key"),
                ("FLAVOR_CHECKS", flavor_checks),
            ],
            Some(url),
        );
        // The webhook created the aggregate and base's check run when the batch started.
        let mut r = record(&deps);
        // With `FlavorChecks: failures` the webhook creates no flavor's check run.
        let created = if flavor_checks == "all" {
            [("base".to_owned(), 101)].into()
        } else {
            Default::default()
        };
        r.checks = Some(flavor_ci::runs::CheckIds {
            aggregate: Some(100),
            flavors: created,
        });
        r.why = [("py".to_owned(), "flavors/py/Dockerfile changed".to_owned())].into();
        deps.store.objects.lock().unwrap().insert(
            ("specs".into(), run_key("r/", "ci:batch")),
            serde_json::to_vec(&r).unwrap(),
        );
        let mut log: String = (1..=300).map(|i| format!("step {i}\n")).collect();
        log.push_str("\u{1b}[31merror: the image does not build\u{1b}[0m\n");
        deps.logs
            .logs
            .lock()
            .unwrap()
            .insert(("/cb/ci".into(), "p1".into()), log);
        deps.batches.details.lock().unwrap().insert(
            "ci:p1".into(),
            crate::codebuild::BuildDetails {
                phases: vec![flavor_ci::runs::checks::PhaseTiming {
                    name: "BUILD".into(),
                    status: Some("FAILED".into()),
                    seconds: Some(42),
                    message: Some("COMMAND_EXECUTION_ERROR: Error while executing command: make. Reason: exit status 2".into()),
                }],
                log: Some(("/cb/ci".into(), "p1".into())),
            },
        );
        deps
    }

    #[tokio::test]
    async fn check_runs_follow_the_builds_and_a_failure_shows_its_log_and_a_rerun_button() {
        let (url, seen) = checks_server();
        let deps = app_deps(&url, "all");
        send(&deps, event("ci:b1", "base", "IN_PROGRESS", 1))
            .await
            .unwrap();
        send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        // A duplicate changes nothing on GitHub.
        send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        let mut failed = event("ci:p1", "py", "FAILED", 6);
        failed["detail"]["additional-information"]["phases"] = json!([
            {"phase-type": "BUILD", "phase-status": "FAILED", "duration-in-seconds": 42,
             "start-time": "Nov 23, 2026 10:05:00 AM", "end-time": "Nov 23, 2026 10:05:42 AM",
             "phase-context": []}
        ]);
        let last = send(&deps, failed).await.unwrap();
        assert_eq!(last["finished"]["state"], "failure");
        let seen = seen.lock().unwrap().clone();
        let calls: Vec<&str> = seen.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            calls,
            [
                "PATCH /repos/acme/slc/check-runs/101",
                "PATCH /repos/acme/slc/check-runs/101",
                // py's check run was never created: it is, completed at once.
                "POST /repos/acme/slc/check-runs",
                "PATCH /repos/acme/slc/check-runs/100",
            ]
        );
        assert_eq!(seen[0].1["status"], "in_progress");
        assert_eq!(
            (&seen[1].1["status"], &seen[1].1["conclusion"]),
            (&json!("completed"), &json!("success"))
        );
        let py = &seen[2].1;
        assert_eq!(py["name"], "flavor-ci / py");
        assert_eq!(py["conclusion"], "failure");
        assert_eq!(py["external_id"], "ci:batch#py");
        let summary = py["output"]["summary"].as_str().unwrap();
        assert!(
            summary.contains("**BUILD failed:** COMMAND_EXECUTION_ERROR"),
            "{summary}"
        );
        assert!(
            summary.contains("error: the image does not build"),
            "{summary}"
        );
        assert!(
            !summary.contains('\u{1b}') && !summary.contains("step 200\n"),
            "{summary}"
        );
        assert!(summary.contains("step 300"), "{summary}");
        let aggregate = &seen[3].1;
        assert_eq!(aggregate["name"], "flavor-ci");
        assert_eq!(aggregate["conclusion"], "failure");
        assert_eq!(aggregate["output"]["title"], "1 of 2 flavors failed: py");
        assert_eq!(aggregate["actions"][0]["identifier"], "rerun-failed");
        let table = aggregate["output"]["summary"].as_str().unwrap();
        assert!(table.contains("| py | failure |"), "{table}");
        assert!(table.contains("flavors/py/Dockerfile changed"), "{table}");
        // py's id is kept for later writes, and the run is reported and closed.
        let r = record(&deps);
        assert_eq!(r.checks.unwrap().flavors["py"], 503);
        assert!(r.finished.unwrap().reported());
        assert!(!is_open(&deps));
    }

    #[tokio::test]
    async fn with_flavor_checks_failures_only_failed_flavors_get_a_check_run() {
        let (url, seen) = checks_server();
        let deps = app_deps(&url, "failures");
        send(&deps, event("ci:b1", "base", "IN_PROGRESS", 1))
            .await
            .unwrap();
        send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        send(&deps, event("ci:p1", "py", "TIMED_OUT", 6))
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        let calls: Vec<&str> = seen.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            calls,
            [
                "POST /repos/acme/slc/check-runs",
                "PATCH /repos/acme/slc/check-runs/100",
            ]
        );
        assert_eq!(seen[0].1["conclusion"], "timed_out");
        assert_eq!(seen[1].1["conclusion"], "timed_out");
    }

    #[tokio::test]
    async fn reordered_duplicated_and_lost_events_end_the_check_runs_the_same_way() {
        let (url, seen) = checks_server();
        let deps = app_deps(&url, "all");
        // base's end arrives before its start, twice; py's events are lost, and CodeBuild's
        // view fills them in once the batch has ended.
        deps.batches.batches.lock().unwrap().push(BatchView {
            id: "ci:batch".into(),
            status: "SUCCEEDED".into(),
            builds: vec![
                ("base_task".into(), state("ci:b1", "SUCCEEDED", 1, 2)),
                ("py_task".into(), state("ci:p1", "SUCCEEDED", 1, 2)),
            ],
        });
        send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        send(&deps, event("ci:b1", "base", "IN_PROGRESS", 1))
            .await
            .unwrap();
        send(&deps, event("ci:b1", "base", "SUCCEEDED", 5))
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        let writes: Vec<(&str, &Value, &Value)> = seen
            .iter()
            .map(|(c, b)| (c.as_str(), &b["name"], &b["conclusion"]))
            .collect();
        assert_eq!(
            writes,
            [
                (
                    "PATCH /repos/acme/slc/check-runs/101",
                    &json!("flavor-ci / base"),
                    &json!("success")
                ),
                (
                    "POST /repos/acme/slc/check-runs",
                    &json!("flavor-ci / py"),
                    &json!("success")
                ),
                (
                    "PATCH /repos/acme/slc/check-runs/100",
                    &json!("flavor-ci"),
                    &json!("success")
                ),
            ]
        );
        assert!(!is_open(&deps));
    }

    #[tokio::test]
    async fn a_dequeued_merge_group_ends_cancelled_with_its_reason_and_no_notification() {
        let (url, seen) = checks_server();
        let deps = app_deps(&url, "all");
        let mut r = record(&deps);
        r.trigger = RunTrigger::MergeGroup;
        r.announce = Some(false);
        deps.store.objects.lock().unwrap().insert(
            ("specs".into(), run_key("r/", "ci:batch")),
            serde_json::to_vec(&r).unwrap(),
        );
        let marker = flavor_ci::runs::Superseded {
            by: "merge group abc".into(),
            at: 1,
            reason: Some("the merge queue dequeued the group".into()),
        };
        deps.store.objects.lock().unwrap().insert(
            (
                "specs".into(),
                flavor_ci::layout::superseded_key("r/", "ci:batch"),
            ),
            serde_json::to_vec(&marker).unwrap(),
        );
        send(&deps, event("ci:b1", "base", "STOPPED", 2))
            .await
            .unwrap();
        let last = send(&deps, event("ci:p1", "py", "STOPPED", 3))
            .await
            .unwrap();
        assert_eq!(
            last["finished"]["description"],
            "stopped: the merge queue dequeued the group"
        );
        let finished = record(&deps).finished.unwrap();
        assert!(finished.superseded && finished.reported());
        assert!(deps.notifier.messages.lock().unwrap().is_empty());
        let seen = seen.lock().unwrap().clone();
        let aggregate = seen.last().unwrap();
        assert_eq!(aggregate.1["conclusion"], "cancelled");
        assert!(
            aggregate.1.get("actions").is_none(),
            "no re-run of a dequeued group"
        );
    }
}
