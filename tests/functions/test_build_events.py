"""The build-events function against real local servers: batches started by the webhook in
moto, CodeBuild's Build State Change events sent through `cargo lambda watch`, and the commit
statuses the GitHub stand-in records."""

import json
import time
import uuid

import pytest

from conftest import ROOT, WEBHOOK_BUCKET, WEBHOOK_REPOSITORY, WEBHOOK_ROOT, client
from test_github_webhook import FLAVORS, deliver, deliver_pr, pr_payload, pr_repo, push_payload  # noqa: F401


@pytest.fixture(scope="module")
def aws(gateway):
    return {
        "s3": client("s3", gateway.url),
        "codebuild": client("codebuild", gateway.url),
        "sns": client("sns", gateway.url),
        "sqs": client("sqs", gateway.url),
    }


@pytest.fixture
def repo(github):
    files = {f"flavors/{f}/Dockerfile": f"FROM {f} {uuid.uuid4()}\n" for f in FLAVORS}
    commit, tree = github.add_commit(WEBHOOK_REPOSITORY, files)
    return {"name": WEBHOOK_REPOSITORY, "commit": commit, "tree": tree}


@pytest.fixture
def inbox(aws, build_events):
    """An SQS queue subscribed to the notification topic: what SNS delivered."""
    url = aws["sqs"].create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["sns"].subscribe(TopicArn=build_events.topic, Protocol="sqs", Endpoint=arn)

    def messages():
        got = aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    return messages


class Run:
    """A batch the webhook started, with its builds by flavor."""

    def __init__(self, aws, answer):
        self.aws = aws
        self.answer = answer
        self.batch = answer["batchBuildId"]
        self.commit = answer["sourceVersion"]
        record = self.record()
        by_identifier = {f["identifier"]: f["name"] for f in record["flavors"]}
        groups = aws["codebuild"].batch_get_build_batches(ids=[self.batch])["buildBatches"][0]["buildGroups"]
        self.builds = {by_identifier[g["identifier"]]: g["currentBuildSummary"]["arn"].split("/", 1)[1]
                       for g in groups}

    def record(self) -> dict:
        key = f"{WEBHOOK_ROOT}runs/{self.batch.replace(':', '%3A')}.json"
        return json.loads(self.aws["s3"].get_object(Bucket=WEBHOOK_BUCKET, Key=key)["Body"].read())

    def is_open(self) -> bool:
        key = f"{WEBHOOK_ROOT}runs/open/{self.batch.replace(':', '%3A')}.json"
        listed = self.aws["s3"].list_objects_v2(Bucket=WEBHOOK_BUCKET, Prefix=key)
        return listed.get("KeyCount", 0) > 0

    def end(self, flavor: str, status: str) -> None:
        """Ends the flavor's build in CodeBuild (moto) with `status`."""
        self.aws["codebuild"].stop_build(id=f"{self.builds[flavor]}#{status}")

    def event(self, flavor: str, status: str, minute: int = 1, with_flavor: bool = True) -> dict:
        build = self.builds[flavor]
        variables = [{"name": "FLAVOR", "type": "PLAINTEXT", "value": flavor}] if with_flavor else []
        phases = [{"phase-context": [], "start-time": "Nov 23, 2026 10:00:00 AM",
                   "end-time": f"Nov 23, 2026 10:{minute:02d}:00 AM", "duration-in-seconds": minute * 60,
                   "phase-type": "BUILD", "phase-status": status}] if status != "IN_PROGRESS" else []
        return build_state_change(build, status, variables, phases, minute)


def build_state_change(build: str, status: str, variables: list, phases: list, minute: int = 1,
                       project: str | None = None) -> dict:
    project = project or build.split(":")[0]
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild", "account": "123456789012",
        "time": f"2026-11-23T10:{minute:02d}:00Z", "region": "us-east-1",
        "resources": [f"arn:aws:codebuild:us-east-1:123456789012:build/{build}"],
        "detail": {
            "build-status": status, "project-name": project,
            "build-id": f"arn:aws:codebuild:us-east-1:123456789012:build/{build}",
            "current-phase": "BUILD" if status == "IN_PROGRESS" else "COMPLETED",
            "current-phase-context": "[]", "version": "1",
            "additional-information": {
                "artifact": {}, "timeout-in-minutes": 60, "build-complete": status != "IN_PROGRESS",
                "initiator": "codebuild", "build-start-time": "Nov 23, 2026 10:00:00 AM",
                "source": {"type": "GITHUB", "location": "https://github.com/acme/slc.git"},
                "source-version": "main",
                "logs": {"group-name": "/aws/codebuild/ci", "stream-name": build.split(":")[1],
                         "deep-link": f"https://console.aws.amazon.com/cloudwatch/home#logs/{build}"},
                "environment": {"image": "aws/codebuild/standard:7.0", "privileged-mode": False,
                                "compute-type": "BUILD_GENERAL1_SMALL", "type": "LINUX_CONTAINER",
                                "environment-variables": variables},
                "phases": phases,
            },
        },
    }


def send(build_events, event) -> dict:
    code, raw = build_events.invoke(event)
    assert code == 200, raw
    return json.loads(raw)


def start(webhook, aws, repo, paths, **extra) -> Run:
    payload = push_payload(repo, paths, **extra)
    payload["repository"]["default_branch"] = "main"
    status, answer = deliver(webhook, payload)
    assert status == 200 and answer["status"] == "started", answer
    return Run(aws, answer)


def test_each_flavor_gets_a_status_and_the_batch_one_aggregate(webhook, build_events, aws, github, repo):
    run = start(webhook, aws, repo, ["flavors/base/Dockerfile"])
    assert sorted(run.builds) == ["base", "standard"]
    # The webhook posted the aggregate status when it started the batch.
    assert run.answer["aggregateStatus"] == {"context": "flavor-ci", "state": "pending",
                                             "description": "2 flavors building", "posted": True}
    latest = github.latest_statuses(run.commit)
    assert latest["flavor-ci"]["state"] == "pending"
    assert latest["flavor-ci"]["target_url"].endswith(f"/batch/{run.batch.replace(':', '%3A')}?region=us-east-1")
    assert run.is_open()
    for flavor in run.builds:
        answer = send(build_events, run.event(flavor, "IN_PROGRESS"))
        assert answer["posted"] == "pending", answer
    latest = github.latest_statuses(run.commit)
    assert latest["flavor-ci/base"]["description"] == "building (BUILD)"
    # One post per change.
    assert [s["state"] for s in github.statuses if s["sha"] == run.commit and s["context"] == "flavor-ci/base"] \
        == ["pending"]
    for minute, flavor in enumerate(sorted(run.builds), start=2):
        run.end(flavor, "SUCCEEDED")
        last = send(build_events, run.event(flavor, "SUCCEEDED", minute=minute))
    assert last["finished"] == {"succeeded": True, "state": "success", "description": "all 2 flavors succeeded",
                                "statusPosted": True, "announced": True}, last
    latest = github.latest_statuses(run.commit)
    assert latest["flavor-ci"]["state"] == "success"
    assert latest["flavor-ci/base"]["state"] == "success"
    assert latest["flavor-ci/base"]["description"] == "succeeded in 2m00s"
    assert "/build/ci%3A" in latest["flavor-ci/base"]["target_url"]
    record = run.record()
    base = record["builds"]["base"]
    assert (base["status"], base["seconds"], base["computeType"]) == ("SUCCEEDED", 120, "BUILD_GENERAL1_SMALL")
    assert base["logs"].startswith("https://console.aws.amazon.com/cloudwatch/")
    assert record["finished"]["succeeded"] and record["defaultBranch"] and record["repository"] == WEBHOOK_REPOSITORY
    assert not run.is_open()


def test_a_failure_names_the_failed_flavor_and_is_announced_once(webhook, build_events, aws, github, repo, inbox):
    run = start(webhook, aws, repo, ["flavors/base/Dockerfile"])
    run.end("base", "FAILED")
    send(build_events, run.event("base", "FAILED", minute=3))
    run.end("standard", "SUCCEEDED")
    last = send(build_events, run.event("standard", "SUCCEEDED", minute=4))
    assert last["finished"]["state"] == "failure"
    assert last["finished"]["description"] == "1 of 2 flavors failed: base"
    latest = github.latest_statuses(run.commit)
    assert latest["flavor-ci"]["state"] == "failure"
    assert latest["flavor-ci/base"]["state"] == "failure"
    assert latest["flavor-ci/base"]["description"] == "failed in BUILD after 3m00s"
    # The same last event again: nothing more is posted or announced.
    posted = len(github.statuses)
    again = send(build_events, run.event("standard", "SUCCEEDED", minute=4))
    assert again["unchanged"] == "the same state again"
    assert len(github.statuses) == posted
    messages = inbox()
    assert len(messages) == 1, messages
    assert messages[0]["Subject"] == "flavor-ci: 1 of 2 flavors failed on main (acme/slc)"
    assert "base: failed in BUILD after 3m00s" in messages[0]["Message"]
    assert run.builds["base"] in messages[0]["Message"]


def test_failures_of_other_branches_are_not_announced(webhook, build_events, aws, github, repo, inbox):
    run = start(webhook, aws, repo, ["flavors/r-4.4/Dockerfile"], ref="refs/heads/release/1.x")
    run.end("r-4.4", "FAILED")
    last = send(build_events, run.event("r-4.4", "FAILED"))
    assert last["finished"]["state"] == "failure" and last["finished"]["announced"] is True
    assert inbox() == []


def test_duplicated_and_reordered_events_never_flip_a_status_back(webhook, build_events, aws, github, repo):
    run = start(webhook, aws, repo, ["flavors/r-4.4/Dockerfile"])
    run.end("r-4.4", "SUCCEEDED")
    send(build_events, run.event("r-4.4", "SUCCEEDED", minute=5))
    late = send(build_events, run.event("r-4.4", "IN_PROGRESS", minute=1))
    assert late["unchanged"] == "the build already ended"
    dup = send(build_events, run.event("r-4.4", "SUCCEEDED", minute=5))
    assert dup["unchanged"] == "the same state again"
    latest = github.latest_statuses(run.commit)
    assert latest["flavor-ci/r-4.4"]["state"] == "success"
    assert latest["flavor-ci"]["state"] == "success"
    assert run.record()["builds"]["r-4.4"]["status"] == "SUCCEEDED"


def test_concurrent_events_of_one_batch_lose_no_update(webhook, build_events, aws, github, repo):
    from concurrent.futures import ThreadPoolExecutor

    run = start(webhook, aws, repo, ["scripts/build.sh"])  # a shared path: every flavor builds
    assert sorted(run.builds) == sorted(FLAVORS)
    # The batch is still running in CodeBuild: only the events' own updates meet in the record.
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda f: send(build_events, run.event(f, "SUCCEEDED", minute=2)), run.builds))
    assert all(a.get("status") == "SUCCEEDED" for a in answers), answers
    record = run.record()
    assert {f: b["status"] for f, b in record["builds"].items()} == {f: "SUCCEEDED" for f in FLAVORS}
    assert record["finished"]["succeeded"]
    aggregate = [s for s in github.statuses if s["sha"] == run.commit and s["context"] == "flavor-ci"]
    assert [s["state"] for s in aggregate] == ["pending", "success"], aggregate


def test_a_lost_event_is_filled_in_from_codebuild_when_the_batch_ends(webhook, build_events, aws, github, repo):
    run = start(webhook, aws, repo, ["flavors/base/Dockerfile"])
    run.end("base", "SUCCEEDED")
    run.end("standard", "SUCCEEDED")
    # standard's events never arrive; base's final one finds the batch ended.
    last = send(build_events, run.event("base", "SUCCEEDED", minute=2))
    assert last["finished"]["state"] == "success", last
    assert run.record()["builds"]["standard"]["status"] == "SUCCEEDED"
    assert github.latest_statuses(run.commit)["flavor-ci/standard"]["state"] == "success"
    assert not run.is_open()


def test_the_reconciler_finishes_a_batch_whose_final_events_never_arrived(webhook, build_events, aws, github, repo):
    run = start(webhook, aws, repo, ["flavors/python-3.10/Dockerfile"])
    send(build_events, run.event("python-3.10", "IN_PROGRESS"))
    posted = len(github.statuses)
    quiet = send(build_events, {"flavorCiReconcile": {}})
    assert quiet["open"] >= 1 and run.batch not in quiet["finished"]
    # A batch still running, with nothing new, costs GitHub nothing.
    assert len(github.statuses) == posted
    run.end("python-3.10", "TIMED_OUT")
    done = send(build_events, {"flavorCiReconcile": {}})
    assert run.batch in done["finished"], done
    latest = github.latest_statuses(run.commit)
    assert latest["flavor-ci"]["state"] == "failure"
    assert latest["flavor-ci"]["description"] == "1 of 1 flavors failed: python-3.10 (timed out)"
    assert latest["flavor-ci/python-3.10"]["state"] == "failure"
    assert not run.is_open()
    assert run.batch not in send(build_events, {"flavorCiReconcile": {}}).get("finished", [])


def test_status_posts_answered_5xx_are_retried_and_403_never_fails_the_pipeline(
        webhook, build_events, aws, github, repo):
    run = start(webhook, aws, repo, ["flavors/base/Dockerfile"])
    github.status_failures = [502]
    answer = send(build_events, run.event("base", "IN_PROGRESS"))
    assert answer["posted"] == "pending", answer
    github.status_failures = [403, 403, 403]
    run.end("base", "SUCCEEDED")
    answer = send(build_events, run.event("base", "SUCCEEDED", minute=2))
    assert "posted" not in answer and answer["status"] == "SUCCEEDED", answer
    assert run.record()["builds"]["base"]["status"] == "SUCCEEDED"
    assert "Commit statuses: Read and write" in build_events.log_text()
    # The aggregate cannot be posted either: the run stays open, and the reconciler posts it
    # once GitHub accepts it again.
    github.status_failures = [403, 403]
    run.end("standard", "SUCCEEDED")
    last = send(build_events, run.event("standard", "SUCCEEDED", minute=3))
    assert last["finished"]["statusPosted"] is False, last
    assert run.is_open()
    github.status_failures = []
    send(build_events, {"flavorCiReconcile": {}})
    assert github.latest_statuses(run.commit)["flavor-ci"]["state"] == "success"
    assert run.record()["finished"]["statusPosted"] is True
    assert not run.is_open()


def test_a_retried_batch_reopens_its_run(webhook, build_events, aws, github, repo):
    run = start(webhook, aws, repo, ["flavors/r-4.4/Dockerfile"])
    run.end("r-4.4", "FAILED")
    assert send(build_events, run.event("r-4.4", "FAILED"))["finished"]["state"] == "failure"
    aws["codebuild"].retry_build_batch(id=run.batch, retryType="RETRY_FAILED_BUILDS")
    retried = Run(aws, run.answer)
    assert retried.builds["r-4.4"] != run.builds["r-4.4"]
    event = retried.event("r-4.4", "IN_PROGRESS", minute=9)
    event["detail"]["additional-information"]["build-start-time"] = "Nov 23, 2026 10:09:00 AM"
    send(build_events, event)
    assert run.record().get("finished") is None and run.is_open()
    retried.end("r-4.4", "SUCCEEDED")
    event = retried.event("r-4.4", "SUCCEEDED", minute=12)
    event["detail"]["additional-information"]["build-start-time"] = "Nov 23, 2026 10:09:00 AM"
    assert send(build_events, event)["finished"]["state"] == "success"
    # The first attempt's events, late, change nothing.
    assert send(build_events, run.event("r-4.4", "FAILED"))["unchanged"] == "a report about an earlier attempt"
    assert github.latest_statuses(run.commit)["flavor-ci/r-4.4"]["state"] == "success"


def test_builds_flavor_ci_did_not_start_are_ignored(build_events, aws):
    other = send(build_events, build_state_change("other:1", "SUCCEEDED", [], [], project="other"))
    assert "not one of this stack's projects" in other["ignored"]
    single = aws["codebuild"].start_build(projectName="ci")["build"]["id"]
    alone = send(build_events, build_state_change(single, "SUCCEEDED", [], []))
    assert alone["ignored"] == "the build is not part of a batch build"


def test_events_it_cannot_read_are_errors_that_name_the_problem(build_events):
    event = build_state_change("ci:x", "SUCCEEDED", [], [])
    event["detail"]["additional-information"]["build-start-time"] = "yesterday"
    code, raw = build_events.invoke(event)
    assert code != 200 and b"build-start-time" in raw, raw
    code, raw = build_events.invoke({"detail-type": "Scheduled Event"})
    assert code != 200 and b"check the EventBridge rule" in raw, raw


def test_without_a_flavor_variable_the_task_identifier_names_the_flavor(webhook, build_events, aws, github, repo):
    run = start(webhook, aws, repo, ["flavors/r-4.4/Dockerfile"])
    answer = send(build_events, run.event("r-4.4", "IN_PROGRESS", with_flavor=False))
    assert answer["flavor"] == "r-4.4", answer


def test_nothing_to_build_is_a_success_so_a_required_check_never_waits(webhook, github, repo):
    payload = push_payload(repo, ["docs/index.md"])
    status, answer = deliver(webhook, payload)
    assert status == 202, answer
    assert answer["aggregateStatus"]["state"] == "success", answer
    latest = github.latest_statuses(repo["commit"])
    assert latest["flavor-ci"]["description"].startswith("no flavor affected")


def test_a_fork_waiting_for_its_label_shows_how_to_allow_it(webhook, github, pr_repo):
    status, answer = deliver_pr(webhook, pr_payload(pr_repo, head_repo="mallory/slc"))
    assert status == 202, answer
    latest = github.latest_statuses(pr_repo["head"])
    assert latest["flavor-ci"]["state"] == "pending"
    assert "adds the label `safe to build`" in latest["flavor-ci"]["description"]


def test_the_sample_events_are_read(build_events):
    names = sorted(p.name for p in (ROOT / "events").glob("build-events-*.json") if "reconcile" not in p.name)
    assert len(names) == 6, names
    for name in names:
        answer = send(build_events, json.loads((ROOT / "events" / name).read_text()))
        # Their builds are not in this moto: read, then ignored as not flavor-ci's.
        assert "ignored" in answer, (name, answer)
    assert "open" in send(build_events, json.loads((ROOT / "events/build-events-reconcile.json").read_text()))


def test_a_superseded_run_says_so_instead_of_failing(webhook, build_events, aws, github, repo, inbox):
    old = start(webhook, aws, repo, ["flavors/r-4.4/Dockerfile"], ref="refs/heads/release/2.x")
    newer = dict(repo, commit=github.add_commit(WEBHOOK_REPOSITORY, {"flavors/r-4.4/Dockerfile": "x"})[0])
    new = start(webhook, aws, newer, ["flavors/r-4.4/Dockerfile"], ref="refs/heads/release/2.x")
    assert new.answer["stopped"] == [old.batch], new.answer
    old.end("r-4.4", "STOPPED")
    last = send(build_events, old.event("r-4.4", "STOPPED"))
    assert last["finished"]["state"] == "error", last
    latest = github.latest_statuses(old.commit)
    assert latest["flavor-ci"]["description"] == "stopped: a newer run of this ref replaced it"
    assert latest["flavor-ci/r-4.4"]["description"].startswith("stopped")
    assert old.record()["finished"]["superseded"] is True
    assert inbox() == []


def test_release_runs_report_beside_the_required_check_not_over_it(webhook, build_events, aws, github, repo):
    payload = push_payload(repo, ["flavors/base/Dockerfile"], ref="refs/tags/v9.9.9")
    status, answer = deliver(webhook, payload)
    assert status == 200 and answer["project"] == "release", answer
    assert answer["aggregateStatus"]["context"] == "flavor-ci/release"
    run = Run(aws, answer)
    run.end("base", "SUCCEEDED")
    send(build_events, run.event("base", "SUCCEEDED"))
    latest = github.latest_statuses(run.commit)
    assert latest["flavor-ci/release/base"]["state"] == "success"
    assert "flavor-ci" not in latest and "flavor-ci/base" not in latest


def test_large_stacks_can_post_only_the_failed_flavors(webhook, build_events_failures_only, aws, github, repo):
    run = start(webhook, aws, repo, ["flavors/base/Dockerfile"])
    for flavor in run.builds:
        send(build_events_failures_only, run.event(flavor, "IN_PROGRESS"))
    run.end("base", "FAILED")
    send(build_events_failures_only, run.event("base", "FAILED", minute=2))
    run.end("standard", "SUCCEEDED")
    last = send(build_events_failures_only, run.event("standard", "SUCCEEDED", minute=3))
    assert last["finished"]["state"] == "failure"
    posted = [(s["context"], s["state"]) for s in github.statuses if s["sha"] == run.commit]
    assert posted == [("flavor-ci", "pending"), ("flavor-ci/base", "failure"), ("flavor-ci", "failure")], posted
