"""Skipping identical inputs against real local servers: a real git repository served by the
GitHub stand-in, the webhook behind `cargo lambda watch`, batches in the CodeBuild stand-in
(moto), build events through the build-events function, and the green ledger in moto's S3.

A pull request builds green; its merge group and the push of the merged commit, with the same
trees, build nothing and succeed with the evidence; one changed flavor builds alone; a fork's
green build is never evidence; a forged or expired record is built over."""

import json
import time
import uuid

import pytest

from conftest import WEBHOOK_BUCKET, WEBHOOK_REPOSITORY, WEBHOOK_ROOT, WEBHOOK_SETTINGS, client
from test_build_events import Run, send
from test_github_webhook import FLAVORS, cli, git_in, headers, plan


@pytest.fixture(scope="module")
def aws(gateway):
    return {"url": gateway.url, "s3": client("s3", gateway.url), "codebuild": client("codebuild", gateway.url)}


@pytest.fixture(scope="module")
def stack(aws):
    """A stack in moto with the outputs `status`, `ledger` and `plan --stack` read."""
    template = {
        "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {"SpecsBucketName": {"Value": WEBHOOK_BUCKET}, "BuildspecsRoot": {"Value": WEBHOOK_ROOT},
                    "CiProjectName": {"Value": "ci"}},
    }
    client("cloudformation", aws["url"]).create_stack(StackName="skip-records", TemplateBody=json.dumps(template))
    return "skip-records"


@pytest.fixture
def repo(github, tmp_path):
    """A real git repository: `main` with the four flavors (content unique to the test, so no
    other test's record matches), `topic` changing r-4.4, and `merged`: main after the merge
    queue merged topic (the same tree as topic)."""
    local = tmp_path / "skip-repo"
    token = uuid.uuid4().hex
    for f in FLAVORS:
        (local / "flavors" / f).mkdir(parents=True)
        (local / "flavors" / f / "Dockerfile").write_text(f"FROM {f} {token}\n")
    (local / "build.sh").write_text(f"make {token}\n")
    (local / "flavor-ci.yaml").write_text(json.dumps(WEBHOOK_SETTINGS))
    git_in(local, "init", "-q", "-b", "main")
    git_in(local, "add", "-A")
    git_in(local, "commit", "-qm", "first")
    base = git_in(local, "rev-parse", "HEAD")
    git_in(local, "switch", "-qc", "topic")
    (local / "flavors/r-4.4/Dockerfile").write_text(f"FROM r:4.4 {token}\n")
    git_in(local, "commit", "-qam", "r 4.4")
    head = git_in(local, "rev-parse", "HEAD")
    git_in(local, "switch", "-q", "main")
    git_in(local, "merge", "-q", "--no-ff", "-m", "Merge pull request #21 from acme/topic", "topic")
    merged = git_in(local, "rev-parse", "HEAD")
    github.add_git_repo(WEBHOOK_REPOSITORY, local)
    github.collaborators.update({"maintainer": "write", "visitor": "read"})
    return {"path": local, "base": base, "head": head, "merged": merged, "token": token}


def pr(r: dict, number: int, head: str, author: str = "maintainer", fork: bool = False) -> dict:
    return {
        "action": "labeled" if fork else "synchronize", "number": number,
        "pull_request": {
            "number": number, "state": "open", "draft": False, "title": "change", "user": {"login": author},
            "head": {"ref": "topic", "sha": head,
                     "repo": {"full_name": "mallory/slc" if fork else WEBHOOK_REPOSITORY}},
            "base": {"ref": "main", "sha": r["base"], "repo": {"full_name": WEBHOOK_REPOSITORY}},
            "labels": [{"name": "safe to build"}] if fork else [],
        },
        "label": {"name": "safe to build"} if fork else None,
        "repository": {"id": 1, "full_name": WEBHOOK_REPOSITORY},
        "sender": {"login": author},
    }


def post(webhook, event: str, payload: dict):
    body = json.dumps(payload).encode()
    return webhook.post(body, headers(body, event=event))


def group(r: dict) -> dict:
    return {
        "action": "checks_requested",
        "merge_group": {
            "head_sha": r["merged"], "head_ref": f"refs/heads/gh-readonly-queue/main/pr-21-{r['base']}",
            "base_sha": r["base"], "base_ref": "refs/heads/main",
            "head_commit": {"id": r["merged"], "message": "Merge pull request #21 from acme/topic"},
        },
        "repository": {"id": 1, "full_name": WEBHOOK_REPOSITORY},
        "sender": {"login": "maintainer"},
    }


def merged_push(r: dict) -> dict:
    return {
        "ref": "refs/heads/main", "before": r["base"], "after": r["merged"],
        "repository": {"full_name": WEBHOOK_REPOSITORY, "default_branch": "main"},
        "commits": [{"id": r["merged"], "message": "Merge pull request #21", "added": [], "removed": [],
                     "modified": ["flavors/r-4.4/Dockerfile"]}],
        "head_commit": {"id": r["merged"], "message": "Merge pull request #21"},
    }


def build_green(build_events, aws, answer, ended: float | None = None) -> Run:
    """Ends every build of the run SUCCEEDED (at `ended`) and tells build-events."""
    run = Run(aws, answer)
    for flavor, build in run.builds.items():
        suffix = f"#{ended}" if ended is not None else ""
        aws["codebuild"].stop_build(id=f"{build}#SUCCEEDED{suffix}")
        send(build_events, run.event(flavor, "SUCCEEDED"))
    return run


def green_record(aws, key: str) -> dict | None:
    try:
        got = aws["s3"].get_object(Bucket=WEBHOOK_BUCKET, Key=f"{WEBHOOK_ROOT}green/{key}")
    except aws["s3"].exceptions.NoSuchKey:
        return None
    return json.loads(got["Body"].read())


def batches(aws) -> int:
    return len(aws["codebuild"].list_build_batches_for_project(projectName="ci")["ids"])


def test_a_merged_pull_request_builds_its_inputs_once(webhook, build_events, aws, github, repo, stack):
    status, answer = post(webhook, "pull_request", pr(repo, 21, repo["head"]))
    assert status == 200 and answer["status"] == "started" and answer["flavors"] == ["r-4.4"], answer
    run = build_green(build_events, aws, answer)
    record = run.record()
    assert record["trusted"] is True, record
    key = record["inputs"]["r-4.4"]
    # flavor-ci plan computes the same key from the local repository.
    planned = plan("--repo", str(repo["path"]), "--base", repo["base"], "--head", repo["head"])
    assert f"{key}  selected" in planned, planned
    green = green_record(aws, key)
    assert green is not None and green["buildId"] == run.builds["r-4.4"] and green["commit"] == repo["head"], green

    # The merge group: same trees, nothing built, success with the evidence.
    before = batches(aws)
    status, answer = post(webhook, "merge_group", group(repo))
    assert status == 200 and answer["status"] == "skipped", answer
    assert answer["skipped"] == {"r-4.4": run.builds["r-4.4"]}
    assert batches(aws) == before
    latest = github.latest_statuses(repo["merged"])["flavor-ci"]
    assert (latest["state"], latest["description"]) == ("success", "1 flavor skipped: identical inputs built green")
    # The push of the merged commit to main: the same.
    status, answer = post(webhook, "push", merged_push(repo))
    assert status == 200 and answer["status"] == "skipped", answer
    assert batches(aws) == before

    # Seen everywhere: status, the ledger, plan --stack.
    shown = cli(aws["url"], "status", "--stack", stack, "--commit", repo["merged"])
    assert shown.returncode == 0, shown.stderr
    assert "1 build skipped: identical inputs built green before" in shown.stdout, shown.stdout
    assert f"skipped: green in {run.builds['r-4.4']}" in shown.stdout, shown.stdout
    listed = cli(aws["url"], "ledger", "--stack", stack, "--flavor", "r-4.4")
    assert listed.returncode == 0 and key in listed.stdout and run.builds["r-4.4"] in listed.stdout, listed
    said = cli(aws["url"], "plan", "--repo", str(repo["path"]), "--base", repo["base"], "--head", repo["head"],
               "--ignore", "docs, **/*.md", "--stack", stack)
    assert said.returncode == 0, said.stderr
    assert f"{key}  skipped: identical inputs built green in {run.builds['r-4.4']}" in said.stdout, said.stdout

    # An operator who distrusts the record forgets it: the next selection builds.
    forgot = cli(aws["url"], "ledger", "--stack", stack, "--forget", key)
    assert forgot.returncode == 0 and f"forgot {key}" in forgot.stdout, forgot
    status, answer = post(webhook, "pull_request", pr(repo, 23, repo["head"]))
    assert answer["status"] == "started" and answer["flavors"] == ["r-4.4"], answer


def test_one_changed_flavor_builds_alone_beside_its_green_twin(webhook, build_events, aws, github, repo):
    status, answer = post(webhook, "pull_request", pr(repo, 31, repo["head"]))
    build_green(build_events, aws, answer)
    # topic2 changes python-3.10 on top of topic: r-4.4's inputs are unchanged.
    git_in(repo["path"], "switch", "-qc", "topic2", "topic")
    (repo["path"] / "flavors/python-3.10/Dockerfile").write_text(f"FROM python:3.12 {repo['token']}\n")
    git_in(repo["path"], "commit", "-qam", "python 3.12")
    head2 = git_in(repo["path"], "rev-parse", "HEAD")
    github.add_git_repo(WEBHOOK_REPOSITORY, repo["path"])
    status, answer = post(webhook, "pull_request", pr(repo, 32, head2))
    assert status == 200 and answer["status"] == "started", answer
    assert answer["flavors"] == ["python-3.10"]
    assert list(answer["skipped"]) == ["r-4.4"]
    record = Run(aws, answer).record()
    assert record["builds"]["r-4.4"]["status"] == "SUCCEEDED" and "r-4.4" in record["carried"]


def test_a_green_fork_pull_request_never_makes_a_skip(webhook, build_events, aws, github, repo):
    status, answer = post(webhook, "pull_request", pr(repo, 41, repo["head"], author="mallory", fork=True))
    assert status == 200 and answer["status"] == "started", answer
    run = build_green(build_events, aws, answer)
    record = run.record()
    assert record.get("trusted", False) is False, record
    assert green_record(aws, record["inputs"]["r-4.4"]) is None
    # A reader's pull request from the repository itself is not trusted either.
    status, answer = post(webhook, "pull_request", pr(repo, 42, repo["head"], author="visitor"))
    assert answer["status"] == "started", answer
    build_green(build_events, aws, answer)
    assert green_record(aws, record["inputs"]["r-4.4"]) is None
    status, answer = post(webhook, "pull_request", pr(repo, 43, repo["head"]))
    assert answer["status"] == "started" and "skipped" not in answer, answer


def test_a_forged_or_expired_record_is_built_over(webhook, build_events, aws, github, repo):
    # A run whose r-4.4 build failed gives a real build id that did not succeed.
    status, answer = post(webhook, "pull_request", pr(repo, 51, repo["head"]))
    failed = Run(aws, answer)
    aws["codebuild"].stop_build(id=f"{failed.builds['r-4.4']}#FAILED")
    key = failed.record()["inputs"]["r-4.4"]
    s3 = aws["s3"]

    def forge(build_id: str) -> None:
        forged = {"key": key, "flavor": "r-4.4", "buildId": build_id, "batchId": failed.batch, "project": "ci",
                  "commit": repo["head"], "ref": "refs/pull/51/head", "trigger": "pull-request",
                  "at": int(time.time() * 1000), "seconds": 600}
        s3.put_object(Bucket=WEBHOOK_BUCKET, Key=f"{WEBHOOK_ROOT}green/{key}", Body=json.dumps(forged))

    for number, build in [(52, failed.builds["r-4.4"]), (53, f"ci:{uuid.uuid4()}")]:
        forge(build)
        status, answer = post(webhook, "pull_request", pr(repo, number, repo["head"]))
        assert status == 200 and answer["status"] == "started" and "skipped" not in answer, (build, answer)
    s3.delete_object(Bucket=WEBHOOK_BUCKET, Key=f"{WEBHOOK_ROOT}green/{key}")

    # A real green build that ended longer ago than skip.max-age (14 days) is built over.
    status, answer = post(webhook, "pull_request", pr(repo, 54, repo["head"]))
    build_green(build_events, aws, answer, ended=time.time() - 15 * 86400)
    assert green_record(aws, key) is not None
    status, answer = post(webhook, "pull_request", pr(repo, 55, repo["head"]))
    assert answer["status"] == "started" and "skipped" not in answer, answer
