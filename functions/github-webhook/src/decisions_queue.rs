//! The webhook's decisions for GitHub's merge queue, in process: a group builds what it
//! changes at its head commit and reports there, groups never supersede each other, a group
//! that leaves the queue unmerged is stopped, and the queue's branches never build.

use std::sync::Arc;

use flavor_ci::layout::{run_key, superseded_key};
use flavor_ci::runs::{RunRecord, RunTrigger, Superseded};
use serde_json::{Value, json};

use crate::decisions::{COMMIT, Example, answer, deps_with, push, signed};
use crate::ports::Deps;
use crate::ports::fake::Fake;

type D = Arc<Deps<Fake<Example>>>;

const BASE: &str = "a10867b14bb761a232cd80139fbd4c0d33264240";
const OTHER_HEAD: &str = "3333333333333333333333333333333333333333";

fn group_payload(action: &str, head: &str, base: &str, reason: Option<&str>) -> Value {
    let mut payload = json!({
        "action": action,
        "merge_group": {
            "head_sha": head,
            "head_ref": format!("refs/heads/gh-readonly-queue/main/pr-42-{base}"),
            "base_sha": base,
            "base_ref": "refs/heads/main",
            "head_commit": {"id": head, "message": "Merge pull request #41 from acme/a\n\nUpdate R (#42)"},
        },
        "repository": {"full_name": "acme/slc"},
        "sender": {"login": "dev"},
    });
    if let Some(r) = reason {
        payload["reason"] = json!(r);
    }
    payload
}

fn group(action: &str, head: &str, base: &str, reason: Option<&str>) -> Value {
    signed("merge_group", &group_payload(action, head, base, reason))
}

fn record(d: &D, batch: &str) -> RunRecord {
    serde_json::from_str(&d.store.text("specs", &run_key("root/", batch)).unwrap()).unwrap()
}

fn statuses(d: &D) -> Vec<(String, String, String)> {
    d.github
        .statuses
        .lock()
        .unwrap()
        .iter()
        .map(|(sha, s)| {
            (
                sha.clone(),
                s.state.as_str().to_owned(),
                s.description.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_group_builds_the_flavors_it_changes_at_its_head_and_reports_there() {
    let d = deps_with(&[], false);
    let (status, body) = answer(&d, group("checks_requested", COMMIT, BASE, None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["flavors"], json!(["r-4.4"]));
    assert_eq!(body["sourceVersion"], COMMIT);
    assert_eq!(body["project"], "ci");
    assert!(
        body["trigger"]
            .as_str()
            .unwrap()
            .contains("#41, #42 into main"),
        "{body}"
    );
    let r = record(&d, body["batchBuildId"].as_str().unwrap());
    assert_eq!(r.trigger, RunTrigger::MergeGroup);
    let g = r.merge_group.unwrap();
    assert_eq!((g.base_sha.as_str(), g.pull_requests), (BASE, vec![41, 42]));
    // A failed group is the queue's business: no notification unless the settings ask.
    assert_eq!(r.announce, Some(false));
    assert_eq!(
        statuses(&d),
        [(COMMIT.into(), "pending".into(), "1 flavor building".into())]
    );
}

#[tokio::test]
async fn a_group_that_changes_no_flavor_passes_at_once() {
    let d = deps_with(&[], false);
    let d = {
        let mut owned = Arc::try_unwrap(d).unwrap();
        owned.github.changed = vec!["docs/queue.md".into()];
        Arc::new(owned)
    };
    let (status, body) = answer(&d, group("checks_requested", COMMIT, BASE, None)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["aggregateStatus"]["state"], "success", "{body}");
    assert!(d.builds.started.lock().unwrap().is_empty());
    assert_eq!(statuses(&d)[0].0, COMMIT);
}

#[tokio::test]
async fn queued_groups_build_side_by_side_and_a_replay_builds_once() {
    let d = deps_with(&[], false);
    let (_, first) = answer(&d, group("checks_requested", COMMIT, BASE, None)).await;
    // The next group is queued behind the first: its base is the first group's head.
    let (_, second) = answer(&d, group("checks_requested", OTHER_HEAD, COMMIT, None)).await;
    assert_eq!(second["status"], "started", "{second}");
    assert_ne!(first["batchBuildId"], second["batchBuildId"]);
    assert!(
        d.builds.stopped.lock().unwrap().is_empty(),
        "no group supersedes another"
    );
    let r = record(&d, second["batchBuildId"].as_str().unwrap());
    assert_eq!(r.merge_group.unwrap().base_sha, COMMIT);
    // The first group's checks requested again, under another delivery id and with another
    // sender: the same group, one batch.
    let mut again = group_payload("checks_requested", COMMIT, BASE, None);
    again["sender"] = json!({"login": "queue-bot"});
    let (_, replay) = answer(&d, signed("merge_group", &again)).await;
    assert_eq!(replay["status"], "already handled", "{replay}");
    assert_eq!(d.builds.started.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_dequeued_group_is_stopped_and_a_merged_one_is_left_alone() {
    let d = deps_with(&[], false);
    let (_, started) = answer(&d, group("checks_requested", COMMIT, BASE, None)).await;
    let batch = started["batchBuildId"].as_str().unwrap().to_owned();
    let (status, merged) = answer(&d, group("destroyed", COMMIT, BASE, Some("merged"))).await;
    assert_eq!(status, 202, "{merged}");
    assert!(d.builds.stopped.lock().unwrap().is_empty());
    let (status, body) = answer(&d, group("destroyed", COMMIT, BASE, Some("dequeued"))).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("stopped")),
        "{body}"
    );
    assert_eq!(body["stopped"], json!([batch]));
    assert_eq!(body["mergeGroup"], COMMIT);
    assert_eq!(
        *d.builds.stopped.lock().unwrap(),
        std::slice::from_ref(&batch)
    );
    // The marker tells build-events the run ends cancelled, for this reason.
    let marker: Superseded = serde_json::from_str(
        &d.store
            .text("specs", &superseded_key("root/", &batch))
            .unwrap(),
    )
    .unwrap();
    assert!(marker.reason.unwrap().contains("dequeued"));
    // A group destroyed before anything started: nothing to stop.
    let (status, body) = answer(
        &d,
        group("destroyed", OTHER_HEAD, COMMIT, Some("invalidated")),
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn the_queue_branch_is_never_built_and_the_target_branch_can_be_the_base() {
    let d = deps_with(&[("BRANCH_PATTERNS", "**")], false);
    let queue = format!("refs/heads/gh-readonly-queue/main/pr-42-{BASE}");
    let (status, body) = answer(&d, push(&queue, &["flavors/base/x"], json!({}))).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("merge queue branch")
    );
    // merge-queue.compare: target-branch compares with the base branch's head (a stack that
    // deployed these settings: a fresh process reads them).
    let d = deps_with(&[], false);
    let settings = flavor_ci::settings::Settings::from_json(json!({
        "flavors": {"standard": {"depend-on": ["base"]}},
        "merge-queue": {"compare": "target-branch"},
        "notifications": {"merge-groups": true},
    }))
    .unwrap();
    d.store.objects.lock().unwrap().insert(
        ("specs".into(), "root/settings/deployed.json".into()),
        settings.to_canonical_json().into_bytes(),
    );
    let (_, body) = answer(&d, group("checks_requested", OTHER_HEAD, BASE, None)).await;
    let r = record(&d, body["batchBuildId"].as_str().unwrap());
    assert_eq!(r.merge_group.unwrap().base_sha, COMMIT, "main's head");
    assert_eq!(r.announce, Some(true));
}
