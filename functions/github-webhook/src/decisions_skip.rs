//! The webhook's decisions about identical inputs, in process: a trusted run's keys go into
//! its record, a later run whose selected flavors have green records that CodeBuild confirms
//! builds only the rest (or nothing), and every way a record can fail to hold builds.

use std::sync::Arc;

use flavor_ci::inputs::ledger::{BuildFacts, GreenRecord};
use flavor_ci::layout::{green_key, run_key};
use flavor_ci::runs::RunRecord;
use flavor_ci_aws::undo::now_ms;
use serde_json::{Value, json};

use crate::decisions::{Example, answer, deps_with, push, signed};
use crate::ports::Deps;
use crate::ports::fake::Fake;

type D = Arc<Deps<Fake<Example>>>;

const HEAD: &str = "4444444444444444444444444444444444444444";
const BASE: &str = "a10867b14bb761a232cd80139fbd4c0d33264240";
const DAY: u64 = 86_400_000;

/// The example stack whose comparisons list `changed`, with `extra` settings merged in.
fn stack(changed: &[&str], message: Option<&str>) -> D {
    let mut d = deps_with(&[], false);
    let github = &mut Arc::get_mut(&mut d).unwrap().github;
    github.changed = changed.iter().map(|c| (*c).to_owned()).collect();
    github.message = message.map(str::to_owned);
    d
}

fn pull_request(user: &str, head: &str) -> Value {
    signed(
        "pull_request",
        &json!({
            "action": "synchronize",
            "number": 7,
            "pull_request": {
                "draft": false,
                "user": {"login": user},
                "head": {"ref": "feature", "sha": head, "repo": {"full_name": "acme/slc"}},
                "base": {"ref": "main", "sha": BASE, "repo": {"full_name": "acme/slc"}},
            },
            "repository": {"full_name": "acme/slc"},
            "sender": {"login": user},
        }),
    )
}

fn record(d: &D, batch: &str) -> RunRecord {
    serde_json::from_str(&d.store.text("specs", &run_key("root/", batch)).unwrap()).unwrap()
}

/// What build-events does when `run`'s builds succeed: each key recorded green, the build
/// known to CodeBuild as `status`, ended `age_ms` ago.
fn green(d: &D, run: &RunRecord, status: &str, age_ms: u64) {
    let ended = now_ms() - age_ms;
    for (flavor, key) in &run.inputs {
        let build = format!("ci:{flavor}-build");
        let record = GreenRecord {
            key: key.clone(),
            flavor: flavor.clone(),
            build_id: build.clone(),
            batch_id: run.batch_id.clone(),
            project: run.project.clone(),
            commit: run.commit.clone(),
            git_ref: run.git_ref.clone(),
            trigger: run.trigger,
            at: ended,
            seconds: Some(600),
        };
        d.store.objects.lock().unwrap().insert(
            ("specs".into(), green_key("root/", key)),
            serde_json::to_vec(&record).unwrap(),
        );
        d.builds.facts.lock().unwrap().push(BuildFacts {
            id: build,
            status: status.into(),
            project: run.project.clone(),
            commit: run.commit.clone(),
            ended_at: Some(ended),
            seconds: Some(600),
        });
    }
}

/// A push to main that builds every flavor (a shared path changed), recorded green.
async fn main_built_green(d: &D, status: &str, age_ms: u64) -> RunRecord {
    let (code, body) = answer(d, push("refs/heads/main", &["build.sh"], json!({}))).await;
    assert_eq!(code, 200, "{body}");
    let run = record(d, body["batchBuildId"].as_str().unwrap());
    assert!(run.trusted, "a push to the default branch is trusted");
    assert_eq!(run.inputs.len(), 4, "{:?}", run.inputs);
    green(d, &run, status, age_ms);
    run
}

fn started(d: &D) -> usize {
    d.builds.started.lock().unwrap().len()
}

#[tokio::test]
async fn a_pull_request_with_the_trees_main_built_green_builds_nothing_and_succeeds_with_the_evidence()
 {
    let d = stack(&["flavors/base/Dockerfile"], None);
    let main = main_built_green(&d, "SUCCEEDED", 2 * DAY).await;
    let (code, body) = answer(&d, pull_request("maintainer", HEAD)).await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("skipped")),
        "{body}"
    );
    assert_eq!(
        body["skipped"],
        json!({"base": "ci:base-build", "standard": "ci:standard-build"})
    );
    assert_eq!(started(&d), 1, "no batch beyond main's");
    let statuses: Vec<(String, String, String, String)> = d
        .github
        .statuses
        .lock()
        .unwrap()
        .iter()
        .filter(|(sha, _)| sha == HEAD)
        .map(|(_, s)| {
            (
                s.context.clone(),
                s.state.as_str().to_owned(),
                s.description.clone(),
                s.target_url.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert_eq!(
        (
            statuses[0].0.as_str(),
            statuses[0].1.as_str(),
            statuses[0].2.as_str()
        ),
        (
            "flavor-ci",
            "success",
            "2 flavors skipped: identical inputs built green"
        )
    );
    // Each skipped flavor's own status names the build that proved it, and links to it.
    let base = statuses.iter().find(|s| s.0 == "flavor-ci/base").unwrap();
    assert_eq!(base.1, "success");
    assert!(
        base.2
            .starts_with("identical inputs built green in ci:base-build at ")
            && base.2.ends_with(", 2 days ago"),
        "{base:?}"
    );
    assert!(base.3.contains("ci%3Abase-build"), "{base:?}");
    // CodeBuild was asked about exactly the two recorded builds, in one call.
    assert_eq!(
        d.builds.asked.lock().unwrap().clone(),
        [vec![
            "ci:base-build".to_owned(),
            "ci:standard-build".to_owned()
        ]]
    );
    // The run's record says what was skipped and what that saved.
    let skipped = record(&d, &format!("ci:skipped-{HEAD}"));
    assert_eq!(skipped.saved(), (2, 1200));
    assert_eq!(skipped.skipped["base"].commit, main.commit);
    assert!(skipped.finished.as_ref().is_some_and(|f| f.succeeded));
    assert!(skipped.trusted, "maintainer may write");
}

#[tokio::test]
async fn one_changed_flavor_builds_alone_and_the_rest_are_carried_as_green() {
    let d = stack(
        &["flavors/base/Dockerfile", "flavors/r-4.4/Dockerfile"],
        None,
    );
    main_built_green(&d, "SUCCEEDED", DAY).await;
    d.github
        .versions
        .lock()
        .unwrap()
        .insert("r-4.4".into(), "1".into());
    let (code, body) = answer(&d, pull_request("reader", HEAD)).await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("started")),
        "{body}"
    );
    assert_eq!(body["flavors"], json!(["r-4.4"]));
    assert_eq!(
        body["skipped"],
        json!({"base": "ci:base-build", "standard": "ci:standard-build"})
    );
    let run = record(&d, body["batchBuildId"].as_str().unwrap());
    assert_eq!(run.builds["base"].status, "SUCCEEDED");
    assert!(run.carried.contains("standard") && !run.carried.contains("r-4.4"));
    assert_eq!(run.inputs.keys().collect::<Vec<_>>(), ["r-4.4"]);
    assert!(
        !run.trusted,
        "a reader's pull request never writes the ledger"
    );
    let spec = d.builds.started.lock().unwrap()[1].buildspec.clone();
    let key = spec.trim_start_matches("arn:aws:s3:::specs/");
    let yaml = d.store.text("specs", key).unwrap();
    assert!(
        yaml.contains("FLAVOR: r-4.4") && !yaml.contains("FLAVOR: base"),
        "{yaml}"
    );
}

#[tokio::test]
async fn a_record_that_does_not_hold_is_built_over() {
    // Failed, unknown to CodeBuild, at another commit, too old: each builds.
    for (status, age, forge) in [
        ("FAILED", DAY, None),
        ("SUCCEEDED", DAY, Some("unknown")),
        ("SUCCEEDED", DAY, Some("commit")),
        ("SUCCEEDED", 15 * DAY, None),
    ] {
        let d = stack(&["flavors/base/Dockerfile"], None);
        main_built_green(&d, status, age).await;
        match forge {
            Some("unknown") => d.builds.facts.lock().unwrap().clear(),
            Some(_) => {
                for f in d.builds.facts.lock().unwrap().iter_mut() {
                    f.commit = "f".repeat(40);
                }
            }
            None => {}
        }
        let (code, body) = answer(&d, pull_request("maintainer", HEAD)).await;
        assert_eq!(
            (code, body["status"].as_str(), &body["flavors"]),
            (200, Some("started"), &json!(["base", "standard"])),
            "{status} {age} {forge:?}: {body}"
        );
        assert!(body.get("skipped").is_none(), "{body}");
    }
}

#[tokio::test]
async fn forced_runs_rebuild_trailers_schedules_and_skip_on_always_build() {
    // The commit message asks for a rebuild.
    let d = stack(
        &["flavors/base/Dockerfile"],
        Some("Bump\n\nflavor-ci: rebuild\n"),
    );
    main_built_green(&d, "SUCCEEDED", DAY).await;
    let (_, body) = answer(&d, pull_request("maintainer", HEAD)).await;
    assert_eq!(body["status"], "started", "{body}");
    // A schedule always builds.
    let d = stack(&[], None);
    main_built_green(&d, "SUCCEEDED", DAY).await;
    let run = json!({"flavorCiRun": {"trigger": "schedule", "id": "2026-12-03T02:00:00Z"}});
    let (_, body) = answer(&d, run).await;
    assert_eq!(
        (
            body["status"].as_str(),
            body["flavors"].as_array().map(Vec::len)
        ),
        (Some("started"), Some(4)),
        "{body}"
    );
    // A dispatch skips only when skip.on lists dispatches, and never with force.
    let d = stack(&[], None);
    main_built_green(&d, "SUCCEEDED", DAY).await;
    let dispatch = |id: &str, force: bool| json!({"flavorCiRun": {"trigger": "dispatch", "id": id, "flavors": ["base"], "force": force}});
    let (_, body) = answer(&d, dispatch("d1", false)).await;
    assert_eq!(
        body["status"], "started",
        "dispatches are not in skip.on by default: {body}"
    );
    let d = skip_on_dispatches();
    main_built_green(&d, "SUCCEEDED", DAY).await;
    let (_, body) = answer(&d, dispatch("d2", false)).await;
    assert_eq!(body["status"], "skipped", "{body}");
    let (_, body) = answer(&d, dispatch("d3", true)).await;
    assert_eq!(body["status"], "started", "{body}");
}

/// The example stack with `skip.on: [dispatches]`.
fn skip_on_dispatches() -> D {
    let d = stack(&[], None);
    let settings = flavor_ci::settings::Settings::from_json(json!({
        "flavors": {"standard": {"depend-on": ["base"]}},
        "batch": {"max-builds": 600},
        "release": {"enabled": true, "release-id": "unset", "dry-run": false},
        "skip": {"on": ["dispatches"]},
    }))
    .unwrap();
    d.store.objects.lock().unwrap().insert(
        ("specs".into(), "root/settings/deployed.json".into()),
        settings.to_canonical_json().into_bytes(),
    );
    d
}

#[tokio::test]
async fn a_forks_run_is_never_trusted_and_a_readers_is_not_either() {
    let d = stack(&["flavors/base/Dockerfile"], None);
    let fork = crate::decisions::sample("github-webhook-pull-request-fork-labeled.json");
    let (_, body) = answer(&d, fork).await;
    assert_eq!(body["status"], "started", "{body}");
    let run = record(&d, body["batchBuildId"].as_str().unwrap());
    assert!(!run.trusted && !run.inputs.is_empty(), "{run:?}");
    let (_, body) = answer(&d, pull_request("reader", HEAD)).await;
    assert!(!record(&d, body["batchBuildId"].as_str().unwrap()).trusted);
    let (_, body) = answer(&d, pull_request("owner", "5".repeat(40).as_str())).await;
    assert!(record(&d, body["batchBuildId"].as_str().unwrap()).trusted);
}

#[tokio::test]
async fn with_a_github_app_skipped_flavors_get_completed_check_runs_with_the_evidence() {
    let mut d = deps_with(&[], true);
    Arc::get_mut(&mut d).unwrap().github.changed = vec![
        "flavors/base/Dockerfile".into(),
        "flavors/r-4.4/Dockerfile".into(),
    ];
    main_built_green(&d, "SUCCEEDED", DAY).await;
    d.github
        .versions
        .lock()
        .unwrap()
        .insert("r-4.4".into(), "1".into());
    let (_, body) = answer(&d, pull_request("maintainer", HEAD)).await;
    assert_eq!(body["flavors"], json!(["r-4.4"]), "{body}");
    let checks = d.github.checks.lock().unwrap().clone();
    let named = |name: &str| {
        checks
            .iter()
            .find(|(_, c)| c.head_sha == HEAD && c.name == name)
            .map(|(_, c)| c.clone())
    };
    let base = named("flavor-ci / base").expect("no check run for base");
    assert_eq!(
        base.state,
        flavor_ci_aws::github::checks::CheckState::Completed("success")
    );
    let output = base.output.unwrap();
    assert_eq!(output.title, "skipped: identical inputs built green");
    assert!(
        output
            .summary
            .contains("identical inputs built green in [ci:base-build]("),
        "{}",
        output.summary
    );
    let r = named("flavor-ci / r-4.4").expect("no check run for r-4.4");
    assert_eq!(r.state, flavor_ci_aws::github::checks::CheckState::Queued);
    // The run record knows the skipped flavors' check runs, so nothing else writes them.
    let run = record(&d, body["batchBuildId"].as_str().unwrap());
    let ids = run.checks.unwrap().flavors;
    assert!(ids.contains_key("base") && ids.contains_key("standard") && ids.contains_key("r-4.4"));
}

#[tokio::test]
async fn a_pull_requests_newer_commit_that_needs_no_build_stops_its_older_batch() {
    let d = stack(&["flavors/base/Dockerfile"], None);
    main_built_green(&d, "SUCCEEDED", DAY).await;
    d.github
        .versions
        .lock()
        .unwrap()
        .insert("base".into(), "1".into());
    let (_, older) = answer(&d, pull_request("maintainer", &"6".repeat(40))).await;
    assert_eq!(older["status"], "started", "{older}");
    // The next commit goes back to main's base: nothing to build, and the older batch stops.
    d.github.versions.lock().unwrap().clear();
    let (_, newer) = answer(&d, pull_request("maintainer", HEAD)).await;
    assert_eq!(newer["status"], "skipped", "{newer}");
    assert_eq!(
        d.builds.stopped.lock().unwrap().clone(),
        [older["batchBuildId"].as_str().unwrap().to_owned()]
    );
}

#[tokio::test]
async fn a_record_read_before_is_read_again_once_it_changes() {
    let d = stack(&["flavors/base/Dockerfile"], None);
    let main = main_built_green(&d, "SUCCEEDED", DAY).await;
    let (_, first) = answer(&d, pull_request("maintainer", HEAD)).await;
    assert_eq!(first["status"], "skipped", "{first}");
    // The record of base now names a build CodeBuild does not know: this instance read the
    // old one before, and must not trust it from memory.
    let at = green_key("root/", &main.inputs["base"]);
    let mut record: Value = serde_json::from_str(&d.store.text("specs", &at).unwrap()).unwrap();
    record["buildId"] = json!("ci:no-such-build");
    d.store
        .objects
        .lock()
        .unwrap()
        .insert(("specs".into(), at), serde_json::to_vec(&record).unwrap());
    let (_, again) = answer(&d, pull_request("maintainer", &"7".repeat(40))).await;
    assert_eq!(again["status"], "started", "{again}");
    // standard's record still holds (its inputs include base's key, which did not change).
    assert_eq!(again["flavors"], json!(["base"]));
    assert_eq!(again["skipped"], json!({"standard": "ci:standard-build"}));
}
