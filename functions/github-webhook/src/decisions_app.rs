//! The webhook's decisions when the stack reports through a GitHub App, in process: check runs
//! instead of statuses, the buttons of the Checks tab, and forks waiting for a click.

use std::sync::Arc;

use flavor_ci::layout::run_key;
use flavor_ci::runs::{Finished, RunRecord};
use flavor_ci_aws::github::checks::{CheckRun, CheckState};
use serde_json::{Value, json};

use crate::decisions::{COMMIT, Example, answer, deps_with, pull_request, push, signed};
use crate::ports::Deps;
use crate::ports::fake::Fake;

type D = Arc<Deps<Fake<Example>>>;

fn app() -> D {
    deps_with(&[], true)
}

fn checks(d: &D) -> Vec<(u64, CheckRun)> {
    d.github.checks.lock().unwrap().clone()
}

fn record(d: &D, batch: &str) -> RunRecord {
    let text = d.store.text("specs", &run_key("root/", batch)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn put_record(d: &D, r: &RunRecord) {
    d.store.objects.lock().unwrap().insert(
        ("specs".into(), run_key("root/", &r.batch_id)),
        serde_json::to_vec(r).unwrap(),
    );
}

/// A `check_run` delivery about check run `id` of App 12345.
fn check_run(
    action: &str,
    id: u64,
    name: &str,
    external_id: &str,
    clicked: Option<&str>,
    sender: &str,
) -> Value {
    let mut payload = json!({
        "action": action,
        "check_run": {"id": id, "name": name, "head_sha": COMMIT, "external_id": external_id,
                      "status": "completed", "app": {"id": 12345}},
        "sender": {"login": sender},
        "repository": {"full_name": "acme/slc"},
        "installation": {"id": 42},
    });
    if let Some(c) = clicked {
        payload["requested_action"] = json!({"identifier": c});
    }
    signed("check_run", &payload)
}

/// A push that builds base and standard; the batch id.
async fn pushed(d: &D) -> String {
    let (status, body) = answer(d, push("refs/heads/main", &["flavors/base/x"], json!({}))).await;
    assert_eq!(status, 200, "{body}");
    body["batchBuildId"].as_str().unwrap().to_owned()
}

/// The run of `batch` as ended: `standard` failed, `base` succeeded.
fn failed(d: &D, batch: &str) {
    let mut r = record(d, batch);
    for (flavor, status) in [("base", "SUCCEEDED"), ("standard", "FAILED")] {
        r.builds.insert(
            flavor.into(),
            flavor_ci::runs::BuildState {
                build_id: format!("ci:{flavor}-1"),
                status: status.into(),
                phase: None,
                failed_phase: None,
                started_at: Some(1),
                ended_at: Some(2),
                seconds: Some(1),
                compute_type: None,
                logs: None,
                page: None,
                reported_at: 2,
            },
        );
    }
    r.finished = Some(Finished {
        succeeded: false,
        failed: vec![("standard".into(), "FAILED".into())],
        at: 3,
        status_posted: true,
        announced: true,
        superseded: false,
        stopped_for: None,
    });
    put_record(d, &r);
}

#[tokio::test]
async fn a_started_batch_opens_its_check_runs_and_records_their_ids() {
    let d = app();
    let batch = pushed(&d).await;
    let written = checks(&d);
    let names: Vec<(&str, CheckState)> = written
        .iter()
        .map(|(_, r)| (r.name.as_str(), r.state))
        .collect();
    assert_eq!(
        names,
        [
            ("flavor-ci", CheckState::InProgress),
            ("flavor-ci / base", CheckState::Queued),
            ("flavor-ci / standard", CheckState::Queued),
        ]
    );
    let aggregate = &written[0].1;
    assert_eq!(aggregate.external_id.as_deref(), Some(batch.as_str()));
    let summary = &aggregate.output.as_ref().unwrap().summary;
    assert!(summary.contains("| standard | in progress |"), "{summary}");
    assert!(summary.contains("depends on base"), "{summary}");
    assert!(
        aggregate
            .details_url
            .as_deref()
            .unwrap()
            .contains("codebuild")
    );
    let ids = record(&d, &batch).checks.unwrap();
    assert_eq!(ids.aggregate, Some(written[0].0));
    assert_eq!(ids.flavors["standard"], written[2].0);
    // No commit statuses in this mode.
    assert!(d.github.statuses.lock().unwrap().is_empty());
}

#[tokio::test]
async fn nothing_affected_passes_the_required_check_at_once() {
    let d = app();
    let (_, body) = answer(&d, push("refs/heads/main", &["docs/index.md"], json!({}))).await;
    assert_eq!(body["aggregateStatus"]["state"], "success", "{body}");
    let written = checks(&d);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].1.state, CheckState::Completed("success"));
    assert!(
        written[0]
            .1
            .output
            .as_ref()
            .unwrap()
            .summary
            .contains("only ignored paths"),
        "{:?}",
        written[0].1
    );
}

#[tokio::test]
async fn a_forks_commit_builds_after_a_writer_clicks_and_never_for_a_stranger() {
    let d = app();
    let (status, body) = answer(&d, pull_request("opened", false, Some("mallory/slc"), None)).await;
    assert_eq!(status, 202, "{body}");
    let asked = checks(&d).pop().unwrap().1;
    assert_eq!(asked.state, CheckState::Completed("action_required"));
    assert_eq!(asked.actions[0].identifier, "build-commit");
    assert_eq!(asked.external_id.as_deref(), Some("fork#7"));
    // Someone without write access clicks: nothing.
    let click = |sender| {
        check_run(
            "requested_action",
            9,
            "flavor-ci",
            "fork#7",
            Some("build-commit"),
            sender,
        )
    };
    for stranger in ["reader", "mallory"] {
        let (status, body) = answer(&d, click(stranger)).await;
        assert_eq!(status, 202, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("write access"),
            "{body}"
        );
    }
    assert!(d.builds.started.lock().unwrap().is_empty());
    // A maintainer clicks (twice): the fork's commit builds once.
    let (status, body) = answer(&d, click("maintainer")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sourceVersion"], COMMIT);
    assert_eq!(body["flavors"], json!(["r-4.4"]));
    assert!(
        body["trigger"]
            .as_str()
            .unwrap()
            .contains("@maintainer approved"),
        "{body}"
    );
    let (_, again) = answer(&d, click("maintainer")).await;
    assert_eq!(again["status"], "already handled", "{again}");
    assert_eq!(d.builds.started.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn forks_never_fail_the_required_check() {
    let d = deps_with(&[], true);
    // The deployed settings say forks: never.
    let settings = flavor_ci::settings::Settings::from_json(json!({
        "flavors": {"standard": {"depend-on": ["base"]}},
        "pull-requests": {"forks": "never"},
    }))
    .unwrap();
    d.store.objects.lock().unwrap().insert(
        ("specs".into(), "root/settings/deployed.json".into()),
        settings.to_canonical_json().into_bytes(),
    );
    let (status, body) = answer(&d, pull_request("opened", false, Some("mallory/slc"), None)).await;
    assert_eq!(status, 202, "{body}");
    let written = checks(&d);
    assert_eq!(written[0].1.state, CheckState::Completed("failure"));
    assert_eq!(
        written[0].1.output.as_ref().unwrap().title,
        "pull requests from forks are not built here"
    );
}

#[tokio::test]
async fn rerun_failed_retries_the_batch_once_and_opens_new_check_runs() {
    let d = app();
    let batch = pushed(&d).await;
    failed(&d, &batch);
    let before = record(&d, &batch).checks.unwrap();
    let click = check_run(
        "requested_action",
        77,
        "flavor-ci",
        &batch,
        Some("rerun-failed"),
        "dev",
    );
    let (status, body) = answer(&d, click.clone()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("retried")),
        "{body}"
    );
    assert_eq!(body["flavors"], json!(["standard"]));
    let (_, again) = answer(&d, click).await;
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("acted on already"),
        "{again}"
    );
    assert_eq!(d.builds.retried.lock().unwrap().len(), 1);
    assert!(d.builds.started.lock().unwrap().len() == 1, "no new batch");
    // New check runs for the aggregate and the failed flavor; base keeps its own.
    let after = record(&d, &batch).checks.unwrap();
    assert_ne!(after.aggregate, before.aggregate);
    assert_ne!(after.flavors["standard"], before.flavors["standard"]);
    assert_eq!(after.flavors["base"], before.flavors["base"]);
}

#[tokio::test]
async fn rerun_failed_builds_a_new_batch_when_codebuild_will_not_retry() {
    let d = deps_with(&[], true);
    let batch = pushed(&d).await;
    failed(&d, &batch);
    // CodeBuild refuses this batch's retry (in the stand-in, by name).
    let d = {
        let mut owned = Arc::try_unwrap(d).unwrap();
        owned.builds.unretryable.push(batch.clone());
        Arc::new(owned)
    };
    let click = check_run(
        "requested_action",
        78,
        "flavor-ci",
        &batch,
        Some("rerun-failed"),
        "dev",
    );
    let (status, body) = answer(&d, click).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["flavors"], json!(["standard"]));
    let new = record(&d, body["batchBuildId"].as_str().unwrap());
    // base's result is carried: the new aggregate speaks for the whole commit.
    assert!(new.carried.contains("base"));
    assert_eq!(new.builds["base"].status, "SUCCEEDED");
    assert_eq!(new.flavors.len(), 2);
}

#[tokio::test]
async fn rerun_of_one_flavor_builds_it_alone_and_rerun_all_the_whole_selection() {
    let d = app();
    let batch = pushed(&d).await;
    failed(&d, &batch);
    let one = check_run(
        "rerequested",
        80,
        "flavor-ci / standard",
        &format!("{batch}#standard"),
        None,
        "dev",
    );
    let (status, body) = answer(&d, one.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["flavors"], json!(["standard"]));
    let (_, again) = answer(&d, one).await;
    assert_eq!(again["status"], "already handled", "{again}");
    assert_eq!(d.builds.started.lock().unwrap().len(), 2);
    // "Re-run all" on the suite: the newest run of the commit, every flavor of it.
    let suite = signed(
        "check_suite",
        &json!({
            "action": "rerequested",
            "check_suite": {"id": 5, "head_sha": COMMIT, "app": {"id": 12345}},
            "sender": {"login": "dev"},
            "repository": {"full_name": "acme/slc"},
        }),
    );
    let (status, body) = answer(&d, suite).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["flavors"], json!(["base", "standard"]));
    assert_eq!(d.builds.started.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn another_apps_check_runs_and_other_actions_are_left_alone() {
    let d = app();
    let mut other = check_run("rerequested", 1, "lint", "x", None, "dev");
    let body: Value = serde_json::from_str(other["body"].as_str().unwrap()).unwrap();
    let mut body = body;
    body["check_run"]["app"]["id"] = json!(999);
    other = signed("check_run", &body);
    let (status, answer_body) = answer(&d, other).await;
    assert_eq!(status, 202, "{answer_body}");
    assert!(
        answer_body["message"]
            .as_str()
            .unwrap()
            .contains("another GitHub App")
    );
    let (status, _) = answer(&d, check_run("created", 2, "flavor-ci", "x", None, "dev")).await;
    assert_eq!(status, 202);
    // Without the App, check run events are ignored.
    let plain = deps_with(&[], false);
    let (status, body) = answer(
        &plain,
        check_run("rerequested", 3, "flavor-ci", "x", None, "dev"),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert!(d.builds.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_sweep_redelivers_each_failed_delivery_once_across_runs() {
    use crate::github::HookDelivery;
    let d = deps_with(&[], true);
    let now = flavor_ci_aws::undo::now_ms() / 1000;
    let at = |ago: u64| {
        // GitHub's time format, `ago` seconds before now.
        let t = now - ago;
        let (days, rest) = (t / 86_400, t % 86_400);
        let (y, m, day) = civil(days);
        format!(
            "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
    };
    let one = |id, guid: &str, ago, code| HookDelivery {
        id,
        guid: guid.into(),
        delivered_at: at(ago),
        status_code: code,
        event: "push".into(),
        repository_id: Some(7),
    };
    let d = {
        let mut owned = Arc::try_unwrap(d).unwrap();
        owned.github.deliveries = vec![
            one(1, "ok", 600, 200),
            one(2, "lost", 900, 0),
            one(3, "refused", 1200, 503),
            one(4, "refused", 300, 502),
        ];
        Arc::new(owned)
    };
    let sweep = json!({"flavorCiSweep": {}});
    let (status, body) = answer(&d, sweep.clone()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("swept")),
        "{body}"
    );
    assert_eq!(body["redelivered"], json!(["lost", "refused"]));
    assert_eq!(*d.github.redelivered.lock().unwrap(), [2, 4]);
    // The next run asks for nothing again.
    let (_, again) = answer(&d, sweep).await;
    assert_eq!(again["redelivered"], json!([]), "{again}");
    assert_eq!(d.github.redelivered.lock().unwrap().len(), 2);
    // Without the App there is nothing to list; kept deliveries are still retried.
    let (status, body) = answer(&deps_with(&[], false), json!({"flavorCiSweep": {}})).await;
    assert_eq!((status, &body["listed"]), (200, &json!(0)), "{body}");
}

/// A civil date from days since the epoch.
pub(crate) fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}
