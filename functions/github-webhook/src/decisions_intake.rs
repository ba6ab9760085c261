//! The durable intake, in process: a delivery that fails on something transient is kept and
//! answered `accepted`, then built once the service recovers, exactly once however often it
//! was delivered; a lasting fault is recorded and ends the required status with its reason.

use std::sync::Arc;

use flavor_ci::layout::inbox_prefix;
use serde_json::{Value, json};

use crate::decisions::{COMMIT, Example, answer, deps_with, push};
use crate::intake::{Kept, State};
use crate::ports::Deps;
use crate::ports::fake::Fake;

type D = Arc<Deps<Fake<Example>>>;

fn kept(d: &D) -> Vec<(String, Kept)> {
    let prefix = inbox_prefix("root/");
    d.store
        .objects
        .lock()
        .unwrap()
        .iter()
        .filter(|((_, k), _)| k.starts_with(&prefix))
        .map(|((_, k), v)| (k.clone(), serde_json::from_slice(v).unwrap()))
        .collect()
}

fn statuses(d: &D) -> Vec<(String, String)> {
    d.github
        .statuses
        .lock()
        .unwrap()
        .iter()
        .map(|(_, s)| (s.state.as_str().to_owned(), s.description.clone()))
        .collect()
}

fn throttle(d: &D, on: bool) {
    *d.builds.throttled.lock().unwrap() = on;
}

/// Every key in the store but the settings and the kept copies: what a failed delivery must
/// not leave behind.
fn written(d: &D) -> Vec<String> {
    d.store
        .objects
        .lock()
        .unwrap()
        .keys()
        .map(|(_, k)| k.clone())
        .filter(|k| !k.contains("/settings/") && !k.contains("/inbox/"))
        .collect()
}

/// Makes every kept copy due now.
fn due_now(d: &D) {
    let mut objects = d.store.objects.lock().unwrap();
    for ((_, k), v) in objects.iter_mut() {
        if k.contains("/inbox/") {
            let mut kept: Kept = serde_json::from_slice(v).unwrap();
            kept.next_at = Some(0);
            kept.received_at = kept.received_at.saturating_sub(3 * 60 * 1000);
            *v = serde_json::to_vec(&kept).unwrap();
        }
    }
}

#[tokio::test]
async fn a_throttled_codebuild_delays_the_build_and_loses_nothing() {
    let d = deps_with(&[], false);
    throttle(&d, true);
    let delivery = push("refs/heads/main", &["flavors/base/x"], json!({}));
    // Delivered during the fault, twice (GitHub's redelivery, or a replay).
    for _ in 0..2 {
        let (status, body) = answer(&d, delivery.clone()).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("accepted")),
            "{body}"
        );
        assert_eq!(
            body["message"],
            "accepted: the build starts when CodeBuild recovers"
        );
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .contains("ThrottlingException")
        );
    }
    // Nothing half-written: no spec, no claim; one kept copy, waiting.
    assert_eq!(written(&d), Vec::<String>::new());
    let copies = kept(&d);
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].1.state, State::Retrying);
    assert_eq!(copies[0].1.commit.as_deref(), Some(COMMIT));
    assert_eq!(
        statuses(&d),
        [("pending".into(), "waiting for CodeBuild: retrying".into())]
    );
    // Not due yet: the schedule's pass leaves it.
    let (_, pass) = answer(&d, json!({"flavorCiSweep": {}})).await;
    assert_eq!(pass["retried"]["later"], 1, "{pass}");
    // Still throttled when it is due: it waits longer.
    due_now(&d);
    let (_, pass) = answer(&d, json!({"flavorCiSweep": {}})).await;
    assert_eq!(
        pass["retried"]["waiting"].as_array().unwrap().len(),
        1,
        "{pass}"
    );
    // The copy delivered twice, then the pass: three attempts.
    assert_eq!(kept(&d)[0].1.attempts, 3);
    // CodeBuild recovers: the next pass builds it, once.
    throttle(&d, false);
    due_now(&d);
    let (_, pass) = answer(&d, json!({"flavorCiSweep": {}})).await;
    assert_eq!(
        pass["retried"]["handled"].as_array().unwrap().len(),
        1,
        "{pass}"
    );
    assert_eq!(d.builds.started.lock().unwrap().len(), 1);
    assert!(kept(&d).is_empty(), "the copy is gone once handled");
    assert_eq!(statuses(&d).last().unwrap().1, "2 flavors building");
    // A later copy of the same body: already handled.
    let (status, again) = answer(&d, delivery).await;
    assert_eq!(
        (status, again["status"].as_str()),
        (200, Some("already handled"))
    );
    assert_eq!(d.builds.started.lock().unwrap().len(), 1);
    assert!(kept(&d).is_empty());
}

#[tokio::test]
async fn a_copy_whose_invocation_died_is_handled_again_and_one_can_be_asked_for_by_id() {
    let d = deps_with(&[], false);
    throttle(&d, true);
    let (_, body) = answer(&d, push("refs/heads/main", &["flavors/r-4.4/x"], json!({}))).await;
    assert_eq!(body["status"], "accepted");
    // As if the invocation had died after keeping it: `received`, minutes old.
    {
        let mut objects = d.store.objects.lock().unwrap();
        for ((_, k), v) in objects.iter_mut() {
            if k.contains("/inbox/") {
                let mut kept: Kept = serde_json::from_slice(v).unwrap();
                kept.state = State::Received;
                kept.received_at -= 3 * 60 * 1000;
                *v = serde_json::to_vec(&kept).unwrap();
            }
        }
    }
    throttle(&d, false);
    let (_, pass) = answer(&d, json!({"flavorCiSweep": {}})).await;
    assert_eq!(
        pass["retried"]["handled"].as_array().unwrap().len(),
        1,
        "{pass}"
    );
    assert_eq!(d.builds.started.lock().unwrap().len(), 1);
    // By id, whatever its state (`flavor-ci dispatch --redeliver`).
    throttle(&d, true);
    let (_, body) = answer(
        &d,
        push(
            "refs/heads/main",
            &["flavors/base/y"],
            json!({"after": "4".repeat(40)}),
        ),
    )
    .await;
    assert_eq!(body["status"], "accepted");
    let id = kept(&d)[0].1.delivery.clone();
    throttle(&d, false);
    let (status, one) = answer(&d, json!({"flavorCiRetry": {"delivery": id}})).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["retried"]["handled"], json!([id]));
    let (status, none) = answer(&d, json!({"flavorCiRetry": {"delivery": "nope"}})).await;
    assert_eq!(status, 202, "{none}");
}

#[tokio::test]
async fn a_lasting_fault_is_recorded_counted_and_ends_the_status() {
    let d = deps_with(&[], false);
    let d = {
        let mut owned = Arc::try_unwrap(d).unwrap();
        owned.builds.fail = Some("AccessDeniedException: not authorized to StartBuildBatch".into());
        Arc::new(owned)
    };
    let (status, body) = answer(&d, push("refs/heads/main", &["flavors/base/x"], json!({}))).await;
    assert_eq!(status, 502, "{body}");
    let copies = kept(&d);
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].1.state, State::Failed);
    assert!(
        copies[0]
            .1
            .reason
            .as_deref()
            .unwrap()
            .contains("AccessDenied")
    );
    let last: (String, String) = statuses(&d).last().unwrap().clone();
    assert_eq!(last.0, "error");
    assert!(
        last.1.starts_with("not built: CodeBuild did not start"),
        "{last:?}"
    );
    // Never retried on the schedule.
    due_now(&d);
    let (_, pass) = answer(&d, json!({"flavorCiSweep": {}})).await;
    assert_eq!(
        pass["retried"],
        json!({"handled": [], "waiting": [], "givenUp": [], "later": 0})
    );
    let _: Value = pass;
}

#[tokio::test]
async fn without_an_app_the_sweep_redelivers_through_the_repository_hook() {
    use std::sync::Mutex as StdMutex;
    let calls = Arc::new(StdMutex::new(Vec::<(String, Option<String>)>::new()));
    let seen = calls.clone();
    let now = flavor_ci_aws::undo::now_ms() / 1000;
    let url = flavor_ci_aws::github::local::serve(move |request| {
        seen.lock()
            .unwrap()
            .push((request.call.clone(), request.bearer.clone()));
        if request.call.starts_with("POST") {
            return ("202 Accepted", "{}".into());
        }
        let at = |ago: u64| {
            let t = now - ago;
            let (days, rest) = (t / 86_400, t % 86_400);
            let (y, m, d) = crate::decisions_app::civil(days);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                rest / 3600,
                rest / 60 % 60,
                rest % 60
            )
        };
        let list = json!([
            {"id": 12, "guid": "g2", "delivered_at": at(300), "status_code": 200, "event": "push"},
            {"id": 11, "guid": "g1", "delivered_at": at(600), "status_code": 502, "event": "push"},
        ]);
        ("200 OK", list.to_string())
    });
    let d = deps_with(&[], false);
    let d = {
        let mut owned = Arc::try_unwrap(d).unwrap();
        owned.repo_hook = Some(crate::repo_hook::RepoHook {
            client: flavor_ci_aws::github::local::client(&url),
            token: flavor_ci_aws::secrets::Cached::new(
                Arc::new(Example),
                "hook-token".into(),
                flavor_ci_aws::secrets::github_token,
                std::time::Duration::from_secs(60),
            ),
            recorded: tokio::sync::Mutex::new(None),
        });
        Arc::new(owned)
    };
    // Before any delivery named the hook, there is nothing to list.
    let (_, body) = answer(&d, json!({"flavorCiSweep": {}})).await;
    assert_eq!(body["listed"], 0, "{body}");
    // A delivery through the repository's hook names it.
    let mut event = push("refs/heads/main", &["flavors/base/x"], json!({}));
    event["headers"]["x-github-hook-id"] = json!("123");
    event["headers"]["x-github-hook-installation-target-type"] = json!("repository");
    let (status, _) = answer(&d, event).await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        let (_, body) = answer(&d, json!({"flavorCiSweep": {}})).await;
        assert_eq!(body["listed"], 2, "{body}");
    }
    let calls = calls.lock().unwrap().clone();
    let redelivered: Vec<&str> = calls
        .iter()
        .filter(|(c, _)| c.starts_with("POST"))
        .map(|(c, _)| c.as_str())
        .collect();
    assert_eq!(
        redelivered,
        ["POST /repos/acme/slc/hooks/123/deliveries/11/attempts"],
        "once, across runs"
    );
    assert!(
        calls
            .iter()
            .all(|(_, bearer)| bearer.as_deref() == Some("flavor-ci-example-secret"))
    );
}
