"""GitHub's merge queue against real local servers: `merge_group` deliveries (the shape of
GitHub's published example) through the webhook behind `cargo lambda watch`, batches in the
CodeBuild stand-in, build events through the build-events function, and the required status
on each group's head commit in the GitHub stand-in."""

import json
import statistics
import time
import uuid

import pytest

from conftest import WEBHOOK_BUCKET, WEBHOOK_REPOSITORY, WEBHOOK_ROOT, client
from test_build_events import Run, send
from test_github_webhook import FLAVORS, cli, deliver, headers, push_payload


@pytest.fixture(scope="module")
def aws(gateway):
    return {"url": gateway.url, "s3": client("s3", gateway.url), "codebuild": client("codebuild", gateway.url)}


@pytest.fixture(scope="module")
def stack(aws):
    """A stack in moto with the outputs `flavor-ci status` reads."""
    template = {
        "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {"SpecsBucketName": {"Value": WEBHOOK_BUCKET}, "BuildspecsRoot": {"Value": WEBHOOK_ROOT}},
    }
    client("cloudformation", aws["url"]).create_stack(StackName="queue-records", TemplateBody=json.dumps(template))
    return "queue-records"


def commit(github, changed: str | None = None) -> tuple[str, str]:
    """A new commit of the repository with the four flavors (one of them changed)."""
    files = {f"flavors/{f}/Dockerfile": f"FROM {f} {uuid.uuid4() if f == changed else ''}\n" for f in FLAVORS}
    files["docs/queue.md"] = str(uuid.uuid4())
    return github.add_commit(WEBHOOK_REPOSITORY, files)


def group(action: str, head: str, tree: str, base: str, pr: int, reason: str | None = None) -> dict:
    payload = {
        "action": action,
        "merge_group": {
            "head_sha": head,
            "head_ref": f"refs/heads/gh-readonly-queue/main/pr-{pr}-{base}",
            "base_sha": base,
            "base_ref": "refs/heads/main",
            "head_commit": {"id": head, "tree_id": tree, "message": f"Change things (#{pr})",
                            "timestamp": "2026-12-03T10:00:00Z",
                            "author": {"name": "Dev", "email": "dev@example.com"},
                            "committer": {"name": "GitHub", "email": "noreply@github.com"}},
        },
        "repository": {"id": 1, "name": "slc", "full_name": WEBHOOK_REPOSITORY},
        "sender": {"login": "dev"},
    }
    if reason:
        payload["reason"] = reason
    return payload


def deliver_group(webhook, payload):
    body = json.dumps(payload).encode()
    return webhook.post(body, headers(body, event="merge_group"))


def queued(github, changed_flavor: str | None, paths: list[str], base: str | None = None) -> dict:
    """A group ready to be tested: its head commit, and the change GitHub compares."""
    base = base or commit(github)[0]
    head, tree = commit(github, changed_flavor)
    github.compares[(WEBHOOK_REPOSITORY, base, head)] = paths
    return {"head": head, "tree": tree, "base": base}


def test_a_group_builds_the_flavor_it_changes_and_reports_on_its_head(webhook, build_events, aws, github):
    g = queued(github, "r-4.4", ["flavors/r-4.4/Dockerfile"])
    status, answer = deliver_group(webhook, group("checks_requested", g["head"], g["tree"], g["base"], 7))
    assert status == 200 and answer["status"] == "started", answer
    assert answer["flavors"] == ["r-4.4"] and answer["sourceVersion"] == g["head"]
    run = Run(aws, answer)
    record = run.record()
    assert record["trigger"] == "merge-group"
    assert record["mergeGroup"] == {"baseSha": g["base"], "baseRef": "refs/heads/main", "pullRequests": [7]}
    assert github.latest_statuses(g["head"])["flavor-ci"]["state"] == "pending"
    run.end("r-4.4", "SUCCEEDED")
    assert send(build_events, run.event("r-4.4", "SUCCEEDED", minute=3))["finished"]["state"] == "success"
    assert github.latest_statuses(g["head"])["flavor-ci"]["state"] == "success"
    # Merged after success: nothing to stop.
    status, answer = deliver_group(webhook, group("destroyed", g["head"], g["tree"], g["base"], 7, "merged"))
    assert status == 202 and "nothing to stop" in answer["message"], answer


def test_a_group_that_changes_no_flavor_passes_at_once(webhook, github):
    times = []
    for _ in range(10):
        g = queued(github, None, ["docs/queue.md"])
        payload = group("checks_requested", g["head"], g["tree"], g["base"], 8)
        start = time.perf_counter()
        status, answer = deliver_group(webhook, payload)
        times.append((time.perf_counter() - start) * 1000)
        assert status == 202 and answer["aggregateStatus"]["state"] == "success", answer
        assert github.latest_statuses(g["head"])["flavor-ci"]["description"].startswith("no flavor affected")
    # What the queue waits for: the delivery answered with the status posted (not a target).
    print(f"no-op group, delivery to reported status: median {statistics.median(times):.1f} ms, "
          f"max {max(times):.1f} ms over {len(times)}")


def test_queued_groups_build_side_by_side_and_a_replay_builds_once(webhook, aws, github):
    first = queued(github, "base", ["flavors/base/Dockerfile"])
    # The next group is tested on top of the first: its base is the first group's head.
    second = queued(github, "python-3.10", ["flavors/python-3.10/Dockerfile"], base=first["head"])
    _, a = deliver_group(webhook, group("checks_requested", first["head"], first["tree"], first["base"], 10))
    _, b = deliver_group(webhook, group("checks_requested", second["head"], second["tree"], second["base"], 11))
    assert a["flavors"] == ["base", "standard"] and b["flavors"] == ["python-3.10"], (a, b)
    batches = aws["codebuild"].batch_get_build_batches(ids=[a["batchBuildId"], b["batchBuildId"]])["buildBatches"]
    assert [x["buildBatchStatus"] for x in batches] == ["IN_PROGRESS", "IN_PROGRESS"], "neither stopped"
    # GitHub sends the first group's event again under a new delivery id: one batch.
    status, again = deliver_group(webhook, group("checks_requested", first["head"], first["tree"], first["base"], 10))
    assert status == 200 and again["status"] == "already handled", again
    assert again["batchBuildId"] == a["batchBuildId"]


def test_a_dequeued_group_is_stopped_and_ends_cancelled_without_a_notification(webhook, build_events, aws, github,
                                                                                 stack):
    g = queued(github, "standard", ["flavors/standard/Dockerfile"])
    _, answer = deliver_group(webhook, group("checks_requested", g["head"], g["tree"], g["base"], 12))
    run = Run(aws, answer)
    status, stopped = deliver_group(webhook, group("destroyed", g["head"], g["tree"], g["base"], 12, "dequeued"))
    assert status == 200 and stopped["stopped"] == [run.batch], stopped
    batch = aws["codebuild"].batch_get_build_batches(ids=[run.batch])["buildBatches"][0]
    assert batch["buildBatchStatus"] == "STOPPED"
    run.end("standard", "STOPPED")
    last = send(build_events, run.event("standard", "STOPPED", minute=2))
    assert last["finished"]["description"] == "stopped: the merge queue dequeued the group", last
    assert last["finished"]["announced"] is True  # nothing to announce
    latest = github.latest_statuses(g["head"])["flavor-ci"]
    assert (latest["state"], latest["description"]) == ("error", "stopped: the merge queue dequeued the group")
    out = cli(aws["url"], "status", "--stack", stack, "--merge-group", g["head"][:12])
    assert f"merge group into main of #12 (compared with {g['base']})" in out.stdout, (out.stdout, out.stderr)
    assert "stopped: the merge queue dequeued the group" in out.stdout, out.stdout


def test_a_push_to_the_queue_branch_builds_nothing(webhook, aws, github):
    head, tree = commit(github, "base")
    payload = push_payload({"name": WEBHOOK_REPOSITORY, "commit": head, "tree": tree}, ["flavors/base/Dockerfile"],
                           ref=f"refs/heads/gh-readonly-queue/main/pr-13-{'1' * 40}")
    status, answer = deliver(webhook, payload)
    assert status == 202 and "merge queue branch" in answer["message"], answer
