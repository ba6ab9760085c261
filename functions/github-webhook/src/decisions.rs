//! The webhook's decisions, in process: every sample event in `events/` through the handler,
//! against the in-memory store, a recording CodeBuild and a GitHub stand-in holding the example
//! repository the events describe (`tests/tools/webhook_events.py` writes both).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flavor_ci::settings::Settings;
use flavor_ci::webhook::signature;
use flavor_ci_aws::secrets::{Cached, SecretProblem, SecretSource};
use flavor_ci_aws::store::memory::MemoryStore;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::builds::recording::Recording;
use crate::config::Config;
use crate::github::stand_in::StandIn;
use crate::handler::handle;
use crate::ports::Deps;
use crate::ports::fake::Fake;

/// The secret the sample events are signed with.
pub(crate) const SECRET: &str = "flavor-ci-example-secret";
pub(crate) const COMMIT: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
const SETTINGS_KEY: &str = "root/settings/deployed.json";

#[derive(Debug)]
pub(crate) struct Example;

impl SecretSource for Example {
    async fn fetch(&self, _id: &str) -> Result<String, SecretProblem> {
        Ok(SECRET.into())
    }
}

/// The stack the sample events are written for (the function tests' environment).
fn deps() -> Arc<Deps<Fake<Example>>> {
    deps_with(&[], false)
}

/// The same stack with `extra` in its environment; with `app`, reporting through a GitHub App
/// (id 12345) whose writers are `maintainer` and `owner`.
pub(crate) fn deps_with(
    extra: &[(&'static str, &'static str)],
    app: bool,
) -> Arc<Deps<Fake<Example>>> {
    let mut vars: HashMap<&str, &str> = HashMap::from([
        ("FLAVOR_CI_BUCKET", "specs"),
        ("FLAVOR_CI_ROOT", "root/"),
        ("FLAVOR_CI_SETTINGS_KEY", SETTINGS_KEY),
        ("WEBHOOK_SECRET_ID", "webhook"),
        ("CI_PROJECT", "ci"),
        ("RELEASE_PROJECT", "release"),
        ("GITHUB_REPOSITORY", "acme/slc"),
        ("BRANCH_PATTERNS", "main, master, release/*"),
        ("TAG_PATTERNS", "v*"),
        ("IGNORED_PATHS", "docs, **/*.md"),
        ("STATUS_CONTEXT", "flavor-ci"),
        ("GITHUB_TOKEN_SECRET_ID", "token"),
    ]);
    if app {
        vars.remove("GITHUB_TOKEN_SECRET_ID");
        vars.insert("GITHUB_APP_ID", "12345");
        vars.insert("GITHUB_APP_KEY_SECRET_ID", "app-key");
    }
    vars.extend(extra.iter().copied());
    let config = Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned()));
    let settings = Settings::from_json(json!({
        "flavors": {"standard": {"depend-on": ["base"]}},
        "batch": {"max-builds": 600},
        "release": {"enabled": true, "release-id": "unset", "dry-run": false},
    }))
    .unwrap();
    let store = MemoryStore::default();
    store.objects.lock().unwrap().insert(
        ("specs".into(), SETTINGS_KEY.into()),
        settings.to_canonical_json().into_bytes(),
    );
    let github = StandIn {
        flavors: ["base", "python-3.10", "r-4.4", "standard"]
            .map(str::to_owned)
            .to_vec(),
        changed: vec!["flavors/r-4.4/Dockerfile".into()],
        default_branch: "main".into(),
        refs: HashMap::from([("refs/heads/main".into(), COMMIT.into())]),
        token: !app,
        statuses: Default::default(),
        app,
        checks: Default::default(),
        permissions: HashMap::from([
            ("maintainer".into(), "maintain".into()),
            ("owner".into(), "admin".into()),
            ("reader".into(), "read".into()),
        ]),
        deliveries: Vec::new(),
        redelivered: Default::default(),
        versions: Default::default(),
        message: None,
    };
    Arc::new(Deps {
        config,
        store,
        builds: Recording::default(),
        webhook_secrets: Cached::new(
            Arc::new(Example),
            "webhook".into(),
            flavor_ci_aws::secrets::webhook_secrets,
            Duration::from_secs(300),
        ),
        github,
        region: flavor_ci_aws::FromSdk::Ready("us-east-1".into()),
        settings: Mutex::new(None),
        repo_hook: None,
    })
}

/// The answer to one event: status and body.
pub(crate) async fn answer(deps: &Arc<Deps<Fake<Example>>>, event: Value) -> (u16, Value) {
    let response = handle(deps.clone(), LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let response = serde_json::to_value(response).unwrap();
    let status = u16::try_from(response["statusCode"].as_u64().unwrap()).unwrap();
    let body = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (status, body)
}

pub(crate) fn sample(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The statuses posted so far: (commit, state, description).
fn statuses(deps: &Deps<Fake<Example>>) -> Vec<(String, &'static str, String)> {
    deps.github
        .statuses
        .lock()
        .unwrap()
        .iter()
        .map(|(sha, s)| (sha.clone(), s.state.as_str(), s.description.clone()))
        .collect()
}

#[tokio::test]
async fn the_sample_events_answer_as_documented() {
    let expected = [
        ("github-webhook-push.json", 200, "started"),
        ("github-webhook-tag.json", 200, "started"),
        ("github-webhook-branch-deleted.json", 202, "ignored"),
        ("github-webhook-ping.json", 200, "pong"),
        ("github-webhook-bad-signature.json", 401, "error"),
        ("github-webhook-form.json", 200, "started"),
        ("github-webhook-pull-request-opened.json", 200, "started"),
        (
            "github-webhook-pull-request-synchronize.json",
            200,
            "started",
        ),
        ("github-webhook-pull-request-draft.json", 202, "ignored"),
        ("github-webhook-pull-request-fork.json", 202, "ignored"),
        (
            "github-webhook-pull-request-fork-labeled.json",
            200,
            "started",
        ),
        ("github-webhook-pull-request-closed.json", 200, "stopped"),
        ("github-webhook-schedule.json", 200, "started"),
        ("github-webhook-merge-group.json", 200, "started"),
        ("github-webhook-merge-group-dequeued.json", 202, "ignored"),
        ("github-webhook-merge-queue-branch.json", 202, "ignored"),
    ];
    for (name, status, word) in expected {
        let (code, body) = answer(&deps(), sample(name)).await;
        assert_eq!(
            (code, body["status"].as_str()),
            (status, Some(word)),
            "{name}: {body}"
        );
    }
    // Every sample event is covered.
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("github-webhook-"))
        .collect();
    names.sort();
    let mut covered: Vec<&str> = expected.iter().map(|(n, ..)| *n).collect();
    covered.sort();
    assert_eq!(names, covered);
}

#[tokio::test]
async fn a_push_builds_the_flavor_it_changes_and_its_dependents_at_the_pushed_commit() {
    let d = deps();
    let (status, body) = answer(&d, sample("github-webhook-push.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["flavors"], json!(["base", "standard"]));
    assert_eq!(body["why"]["standard"], "depends on base");
    let started = d.builds.started.lock().unwrap().clone();
    assert_eq!(started.len(), 1);
    let request = &started[0];
    assert_eq!(
        (request.project.as_str(), request.source_version.as_str()),
        ("ci", COMMIT)
    );
    // The spec CodeBuild is pointed at is the one stored, and the run is recorded and open.
    assert_eq!(
        request.buildspec,
        format!(
            "arn:aws:s3:::{}",
            body["buildspec"]
                .as_str()
                .unwrap()
                .trim_start_matches("s3://")
        )
    );
    assert_eq!(request.report_status, Some(false));
    let keys: Vec<String> = d
        .store
        .objects
        .lock()
        .unwrap()
        .keys()
        .map(|(_, k)| k.clone())
        .collect();
    for prefix in [
        "root/pushes/specs/",
        "root/pushes/deliveries/",
        "root/runs/",
        "root/runs/open/",
    ] {
        assert!(
            keys.iter().any(|k| k.starts_with(prefix)),
            "{prefix} in {keys:?}"
        );
    }
    assert_eq!(
        statuses(&d),
        [(
            COMMIT.to_owned(),
            "pending",
            "2 flavors building".to_owned()
        )]
    );
    // The same body again is handled once.
    let (status, again) = answer(&d, sample("github-webhook-push.json")).await;
    assert_eq!(
        (status, again["status"].as_str()),
        (200, Some("already handled"))
    );
    assert_eq!(again["batchBuildId"], body["batchBuildId"]);
    assert_eq!(d.builds.started.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_tag_builds_the_release_variant_and_a_schedule_every_flavor_of_the_default_branch() {
    let d = deps();
    let (_, tag) = answer(&d, sample("github-webhook-tag.json")).await;
    assert_eq!(tag["project"], "release");
    assert_eq!(tag["flavors"].as_array().unwrap().len(), 4, "{tag}");
    let (_, nightly) = answer(&d, sample("github-webhook-schedule.json")).await;
    assert_eq!(
        (
            &nightly["project"],
            &nightly["sourceVersion"],
            &nightly["trigger"]
        ),
        (&json!("ci"), &json!(COMMIT), &json!("schedule"))
    );
    assert_eq!(nightly["message"], "the scheduled run builds every flavor");
    // The release reports under its own context; the nightly under the required one.
    let contexts: Vec<String> = d
        .github
        .statuses
        .lock()
        .unwrap()
        .iter()
        .map(|(_, s)| s.context.clone())
        .collect();
    assert_eq!(contexts, ["flavor-ci/release", "flavor-ci"]);
}

#[tokio::test]
async fn pull_requests_build_what_their_comparison_changes_forks_wait_and_closing_stops() {
    let d = deps();
    let (_, opened) = answer(&d, sample("github-webhook-pull-request-opened.json")).await;
    assert_eq!(opened["flavors"], json!(["r-4.4"]), "{opened}");
    assert_eq!(opened["pullRequest"], 42);
    let (_, fork) = answer(&d, sample("github-webhook-pull-request-fork.json")).await;
    assert!(
        fork["message"]
            .as_str()
            .unwrap()
            .contains("contributor/slc"),
        "{fork}"
    );
    assert_eq!(fork["aggregateStatus"]["state"], "pending");
    let waiting = statuses(&d).pop().unwrap();
    assert!(waiting.2.contains("`safe to build`"), "{waiting:?}");
    let (_, closed) = answer(&d, sample("github-webhook-pull-request-closed.json")).await;
    assert_eq!(
        closed["stopped"],
        json!([opened["batchBuildId"]]),
        "{closed}"
    );
    assert_eq!(
        *d.builds.stopped.lock().unwrap(),
        [opened["batchBuildId"].as_str().unwrap()]
    );
}

pub(crate) fn push(reference: &str, files: &[&str], extra: Value) -> Value {
    let mut payload = json!({
        "ref": reference, "before": "a10867b14bb761a232cd80139fbd4c0d33264240", "after": COMMIT,
        "created": false, "deleted": false, "forced": false,
        "repository": {"full_name": "acme/slc", "default_branch": "main"},
        "commits": [{"id": COMMIT, "added": [], "removed": [], "modified": files}],
        "head_commit": {"id": COMMIT, "tree_id": "b".repeat(40)},
    });
    for (k, v) in extra.as_object().unwrap() {
        payload[k] = v.clone();
    }
    signed("push", &payload)
}

/// A function URL request delivering `payload` as GitHub event `event`, signed with the
/// example secret.
pub(crate) fn signed(event: &str, payload: &Value) -> Value {
    let body = payload.to_string();
    json!({
        "version": "2.0",
        "requestContext": {"http": {"method": "POST"}, "timeEpoch": 1795168800000_i64},
        "headers": {
            "content-type": "application/json",
            "x-github-event": event,
            "x-github-delivery": "0b3c6a1e-0000-4000-8000-0000000000ff",
            "x-hub-signature-256": signature::sign(SECRET.as_bytes(), body.as_bytes()),
        },
        "body": body,
        "isBase64Encoded": false,
    })
}

#[tokio::test]
async fn pushes_that_need_no_build_are_acknowledged_with_the_reason() {
    let cases = [
        (
            push("refs/heads/feature/x", &["flavors/base/x"], json!({})),
            "matches none of the branch patterns (main, master, release/*)",
        ),
        (
            push("refs/tags/nightly", &[], json!({})),
            "matches none of the tag patterns (v*)",
        ),
        (
            push(
                "refs/heads/main",
                &["docs/index.md", "flavors/base/NOTES.md"],
                json!({}),
            ),
            "only ignored paths",
        ),
        (
            push(
                "refs/heads/main",
                &[],
                json!({"commits": [{"id": "d".repeat(40), "removed": ["flavors/gone/Dockerfile"]}]}),
            ),
            "removed flavors",
        ),
        (
            push(
                "refs/heads/main",
                &["flavors/base/x"],
                json!({"repository": {"full_name": "someone/else"}}),
            ),
            "this stack builds acme/slc",
        ),
    ];
    for (event, why) in cases {
        let d = deps();
        let (status, body) = answer(&d, event).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("ignored")),
            "{body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(why),
            "{why}: {body}"
        );
        assert!(d.builds.started.lock().unwrap().is_empty());
        // Only the settings: nothing written.
        assert_eq!(d.store.objects.lock().unwrap().len(), 1);
    }
    // Nothing affected on a built branch: the required check succeeds at once.
    let d = deps();
    let (_, body) = answer(&d, push("refs/heads/main", &["docs/index.md"], json!({}))).await;
    assert_eq!(body["aggregateStatus"]["state"], "success", "{body}");
    assert_eq!(statuses(&d)[0].1, "success");
}

#[tokio::test]
async fn a_dispatch_builds_what_it_names_with_its_dependents_once_per_request() {
    let d = deps();
    let dispatch =
        json!({"flavorCiRun": {"trigger": "dispatch", "id": "by-hand-1", "flavors": ["base"]}});
    let (status, body) = answer(&d, dispatch.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["flavors"], json!(["base", "standard"]));
    assert_eq!(
        (&body["trigger"], &body["run"], &body["sourceVersion"]),
        (&json!("dispatch"), &json!("by-hand-1"), &json!(COMMIT))
    );
    // The same request again (a retried invocation) starts nothing new.
    let (_, again) = answer(&d, dispatch).await;
    assert_eq!(again["status"], "already handled", "{again}");
    assert_eq!(d.builds.started.lock().unwrap().len(), 1);
    // A flavor that does not exist builds nothing, and says which there are.
    let (status, body) = answer(
        &deps(),
        json!({"flavorCiRun": {"trigger": "dispatch", "id": "by-hand-2", "flavors": ["nope"]}}),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("ignored")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("nope"), "{body}");
}

/// A `pull_request` delivery of pull request #7 (head `topic` at the example commit).
pub(crate) fn pull_request(
    action: &str,
    draft: bool,
    head_repo: Option<&str>,
    label: Option<&str>,
) -> Value {
    let payload = json!({
        "action": action, "number": 7,
        "pull_request": {
            "number": 7, "state": "open", "draft": draft, "title": "change r",
            "head": {"ref": "topic", "sha": COMMIT,
                     "repo": head_repo.map(|r| json!({"full_name": r}))},
            "base": {"ref": "main", "sha": "a10867b14bb761a232cd80139fbd4c0d33264240",
                     "repo": {"full_name": "acme/slc"}},
            "labels": label.map_or_else(Vec::new, |l| vec![json!({"name": l})]),
        },
        "label": label.map(|l| json!({"name": l})),
        "repository": {"id": 1, "full_name": "acme/slc"},
        "sender": {"login": "dev"},
    });
    signed("pull_request", &payload)
}

#[tokio::test]
async fn drafts_wait_for_review_and_other_actions_start_nothing() {
    let d = deps();
    let (status, body) = answer(&d, pull_request("opened", true, Some("acme/slc"), None)).await;
    let message = body["message"].as_str().unwrap();
    assert!(
        status == 202 && message.contains("draft") && message.contains("build-drafts"),
        "{body}"
    );
    for action in ["edited", "assigned", "unlabeled"] {
        let (status, body) = answer(&d, pull_request(action, false, Some("acme/slc"), None)).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("ignored")),
            "{body}"
        );
    }
    assert!(d.builds.started.lock().unwrap().is_empty());
    assert_eq!(d.store.objects.lock().unwrap().len(), 1);
    let (status, body) = answer(
        &d,
        pull_request("ready_for_review", false, Some("acme/slc"), None),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["trigger"],
        "pull request #7 was marked ready for review"
    );
}

#[tokio::test]
async fn a_pull_request_from_a_fork_builds_only_when_a_maintainer_labels_it() {
    let d = deps();
    for action in ["opened", "synchronize"] {
        let (status, body) =
            answer(&d, pull_request(action, false, Some("mallory/slc"), None)).await;
        let message = body["message"].as_str().unwrap();
        assert!(
            status == 202 && message.contains("mallory/slc") && message.contains("`safe to build`"),
            "{body}"
        );
    }
    let (status, body) = answer(
        &d,
        pull_request("labeled", false, Some("mallory/slc"), Some("bug")),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = answer(&d, pull_request("opened", false, None, None)).await;
    assert!(
        status == 202 && body["message"].as_str().unwrap().contains("deleted fork"),
        "{body}"
    );
    assert!(d.builds.started.lock().unwrap().is_empty());
    let (status, body) = answer(
        &d,
        pull_request("labeled", false, Some("mallory/slc"), Some("safe to build")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["sourceVersion"], &body["flavors"]),
        (&json!(COMMIT), &json!(["r-4.4"]))
    );
    assert!(
        body["trigger"]
            .as_str()
            .unwrap()
            .contains("labeled pull request #7 from mallory/slc"),
        "{body}"
    );
}
