"""The GitHub App reporting mode against real local servers: the webhook and the build-events
function behind `cargo lambda watch`, moto (S3, Secrets Manager, CloudWatch Logs with a seeded
log), the CodeBuild stand-in, and a GitHub App stand-in that checks the JWT's signature against
the App's public key, issues installation tokens that expire, and refuses check runs GitHub
would refuse."""

import json
import threading
import time
import uuid

import pytest

from conftest import (
    WEBHOOK, WEBHOOK_BUCKET, WEBHOOK_REPOSITORY, WEBHOOK_SETTINGS, Webhook, client, free_port,
    start_build_events, start_watch, stop,
)
from github_api import App, GitHubApi
from test_build_events import Run, send
from test_github_webhook import FLAVORS, deliver, headers, push_payload

APP_ROOT = "flavor-ci/app-0123456789ab/Buildspecs/"
APP_KEY_SECRET = "flavor-ci/app-key"


@pytest.fixture(scope="module")
def app():
    return App(app_id=12345, installation=42)


@pytest.fixture(scope="module")
def app_github(app):
    api = GitHubApi(app=app)
    api.collaborators = {"maintainer": "maintain", "reader": "read"}
    yield api
    api.close()


def app_env(app_github) -> dict:
    return {
        "FLAVOR_CI_BUCKET": WEBHOOK_BUCKET,
        "FLAVOR_CI_ROOT": APP_ROOT,
        "GITHUB_API_URL": app_github.url,
        "GITHUB_APP_ID": "12345",
        "GITHUB_APP_KEY_SECRET_ID": APP_KEY_SECRET,
        "CI_PROJECT": "ci",
        "RELEASE_PROJECT": "release",
        "GITHUB_REPOSITORY": WEBHOOK_REPOSITORY,
        "STATUS_CONTEXT": "flavor-ci",
        # Every line flavor-ci's own code logs, at every level: none may hold the key, a JWT or
        # a token.
        "RUST_LOG": "info,lambda_runtime=trace,flavor_ci_aws=trace,github_webhook=trace,build_events=trace",
    }


@pytest.fixture(scope="module")
def app_webhook(gateway, app, app_github, webhook, tmp_path_factory):
    """The webhook of a stack with CommitStatuses=github-app (beside the statuses one: the same
    bucket and projects, its own root). Its key is stored as GitHub hands it out, PKCS#1."""
    client("secretsmanager", gateway.url).create_secret(Name=APP_KEY_SECRET, SecretString=app.pem)
    s3 = client("s3", gateway.url)
    settings_key = f"{APP_ROOT}settings/deployed.json"
    s3.put_object(Bucket=WEBHOOK_BUCKET, Key=settings_key, Body=json.dumps(WEBHOOK_SETTINGS).encode())
    w = start_watch(
        free_port(), gateway, tmp_path_factory.mktemp("app-webhook") / "watch.log",
        # One instance: the token counts below are one process's.
        "--concurrency", "1",
        function=WEBHOOK, features="",
        env={**app_env(app_github), "FLAVOR_CI_SETTINGS_KEY": settings_key,
             "WEBHOOK_SECRET_ID": "flavor-ci/webhook", "BRANCH_PATTERNS": "main",
             "TAG_PATTERNS": "v*", "IGNORED_PATHS": "docs, **/*.md"},
    )
    yield Webhook(w, settings_key)
    stop(w.proc)


@pytest.fixture(scope="module")
def app_events(gateway, app_github, app_webhook, tmp_path_factory):
    w = start_build_events(gateway, app_github, tmp_path_factory, "", **{
        k: v for k, v in app_env(app_github).items()}, GITHUB_TOKEN_SECRET_ID="", NOTIFICATION_TOPIC_ARN="")
    yield w
    stop(w.proc)


@pytest.fixture(scope="module")
def aws(gateway):
    return {"s3": client("s3", gateway.url), "codebuild": client("codebuild", gateway.url),
            "logs": client("logs", gateway.url)}


@pytest.fixture
def repo(app_github):
    files = {f"flavors/{f}/Dockerfile": f"FROM {f} {uuid.uuid4()}\n" for f in FLAVORS}
    commit, tree = app_github.add_commit(WEBHOOK_REPOSITORY, files)
    return {"name": WEBHOOK_REPOSITORY, "commit": commit, "tree": tree}


class AppRun(Run):
    def record(self) -> dict:
        key = f"{APP_ROOT}runs/{self.batch.replace(':', '%3A')}.json"
        return json.loads(self.aws["s3"].get_object(Bucket=WEBHOOK_BUCKET, Key=key)["Body"].read())


def push(app_webhook, aws, repo, paths) -> AppRun:
    payload = push_payload(repo, paths, installation={"id": 42})
    status, answer = deliver(app_webhook, payload)
    assert status == 200 and answer["status"] == "started", answer
    return AppRun(aws, answer)


def seed_log(aws, build: str) -> None:
    """The failed build's log in CloudWatch Logs: 300 lines, coloured, its error last."""
    group, stream = "/aws/codebuild/ci", build.split(":", 1)[1]
    logs = aws["logs"]
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    lines = [f"step {i}: \x1b[32mok\x1b[0m" for i in range(1, 300)]
    lines.append("\x1b[31merror: make image failed with exit status 2\x1b[0m")
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)])


def click(app_webhook, run_id: int, name: str, external_id: str, sha: str, sender: str,
          action: str = "requested_action", identifier: str | None = None):
    payload = {
        "action": action,
        "check_run": {"id": run_id, "name": name, "head_sha": sha, "external_id": external_id,
                      "status": "completed", "app": {"id": 12345}},
        "sender": {"login": sender},
        "repository": {"id": 1, "full_name": WEBHOOK_REPOSITORY},
        "installation": {"id": 42},
    }
    if identifier:
        payload["requested_action"] = {"identifier": identifier}
    body = json.dumps(payload).encode()
    return app_webhook.post(body, headers(body, event="check_run"))


def writes_of(app_github, run_id: int) -> list[dict]:
    return [b for _, i, b in app_github.check_run_writes if i == run_id]


def test_check_runs_follow_a_push_and_a_failed_flavor_shows_its_log(app_webhook, app_events, aws, app, app_github,
                                                                    repo):
    run = push(app_webhook, aws, repo, ["flavors/base/Dockerfile"])
    assert run.answer["aggregateStatus"]["state"] == "in_progress", run.answer
    checks = app_github.latest_checks(run.commit)
    assert {n: c["status"] for n, c in checks.items()} == {
        "flavor-ci": "in_progress", "flavor-ci / base": "queued", "flavor-ci / standard": "queued"}
    assert checks["flavor-ci"]["external_id"] == run.batch
    # The App authenticated with a JWT GitHub accepts, for the installation the delivery named
    # (not looked up), and asked for a token for this one repository with what the webhook
    # needs, nothing more.
    assert app.jwts_accepted == 1 and not app.jwts_refused
    assert f"GET /repos/{WEBHOOK_REPOSITORY}/installation" not in app_github.requests
    webhook_token = next(t for t in app.tokens.values() if t["permissions"].get("contents"))
    assert webhook_token["repositories"] == ["slc"]
    assert webhook_token["permissions"] == {"checks": "write", "contents": "read",
                                            "pull_requests": "read", "metadata": "read"}
    for flavor in run.builds:
        send(app_events, run.event(flavor, "IN_PROGRESS"))
    seed_log(aws, run.builds["base"])
    run.end("base", "FAILED")
    send(app_events, run.event("base", "FAILED", minute=3))
    run.end("standard", "SUCCEEDED")
    last = send(app_events, run.event("standard", "SUCCEEDED", minute=4))
    assert last["finished"]["state"] == "failure", last
    checks = app_github.latest_checks(run.commit)
    base = checks["flavor-ci / base"]
    assert (base["status"], base["conclusion"]) == ("completed", "failure")
    summary = base["output"]["summary"]
    assert "| BUILD | FAILED | 1m35s |" in summary, summary
    assert "Error while executing command: make image" in summary, summary
    assert "error: make image failed with exit status 2" in summary, summary
    assert "step 201:" in summary and "step 200:" not in summary, "the last 100 lines"
    assert "\x1b" not in summary
    aggregate = checks["flavor-ci"]
    assert (aggregate["conclusion"], aggregate["output"]["title"]) == ("failure", "1 of 2 flavors failed: base")
    assert aggregate["actions"] == [{"label": "Re-run failed", "description": "Build the failed flavors again",
                                     "identifier": "rerun-failed"}]
    assert "| base | failure |" in aggregate["output"]["summary"]
    # At most three writes per flavor: created, started, completed.
    for name in ("flavor-ci / base", "flavor-ci / standard"):
        assert [w.get("status") for w in writes_of(app_github, checks[name]["id"])] == \
            ["queued", "in_progress", "completed"], name
    # build-events has no delivery: it looked the installation up.
    assert f"GET /repos/{WEBHOOK_REPOSITORY}/installation" in app_github.requests
    events_token = next(t for t in app.tokens.values() if "contents" not in t["permissions"])
    assert events_token["permissions"] == {"checks": "write", "metadata": "read"}
    # No key, JWT or token in either function's log, at TRACE.
    key_line = app.pem.splitlines()[1]
    for log in (app_webhook.watch.log_text(), app_events.log_text()):
        assert key_line not in log
        assert not any(t in log for t in app.tokens)
        assert "eyJhbGciOiJSUzI1NiIs" not in log


def test_rerun_failed_clicked_twice_retries_the_batch_once(app_webhook, app_events, aws, app_github, repo):
    run = push(app_webhook, aws, repo, ["flavors/r-4.4/Dockerfile"])
    run.end("r-4.4", "FAILED")
    send(app_events, run.event("r-4.4", "FAILED", minute=2))
    aggregate = app_github.latest_checks(run.commit)["flavor-ci"]
    assert aggregate["conclusion"] == "failure"
    old = app_github.latest_checks(run.commit)["flavor-ci / r-4.4"]["id"]
    answers = []

    def press():
        answers.append(click(app_webhook, aggregate["id"], "flavor-ci", run.batch, run.commit, "dev",
                             identifier="rerun-failed"))

    threads = [threading.Thread(target=press) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    words = sorted(a[1]["status"] for a in answers)
    assert words == ["ignored", "retried"], answers
    # CodeBuild retried once: one new build of the failed flavor, in the same batch.
    retried = AppRun(aws, run.answer)
    assert retried.builds["r-4.4"] != run.builds["r-4.4"]
    batches = aws["codebuild"].list_build_batches_for_project(projectName="ci")["ids"]
    assert batches.count(run.batch) == 1
    # The new attempt's check runs replace the old ones.
    checks = app_github.latest_checks(run.commit)
    assert checks["flavor-ci / r-4.4"]["id"] != old and checks["flavor-ci / r-4.4"]["status"] == "queued"
    assert checks["flavor-ci"]["status"] == "in_progress"
    event = retried.event("r-4.4", "SUCCEEDED", minute=9)
    event["detail"]["additional-information"]["build-start-time"] = "Nov 23, 2026 10:09:00 AM"
    retried.end("r-4.4", "SUCCEEDED")
    assert send(app_events, event)["finished"]["state"] == "success"
    checks = app_github.latest_checks(run.commit)
    assert checks["flavor-ci"]["conclusion"] == "success"
    assert checks["flavor-ci / r-4.4"]["conclusion"] == "success"


def test_a_forks_commit_builds_only_after_a_writer_clicks(app_webhook, aws, app_github, repo):
    base, head = repo["commit"], repo["commit"]
    fork = {
        "action": "opened", "number": 9,
        "pull_request": {"number": 9, "state": "open", "draft": False,
                         "head": {"ref": "topic", "sha": head, "repo": {"full_name": "mallory/slc"}},
                         "base": {"ref": "main", "sha": base, "repo": {"full_name": WEBHOOK_REPOSITORY}},
                         "labels": []},
        "repository": {"id": 1, "full_name": WEBHOOK_REPOSITORY},
        "sender": {"login": "mallory"}, "installation": {"id": 42},
    }
    app_github.compares[(WEBHOOK_REPOSITORY, base, head)] = ["flavors/base/Dockerfile"]
    body = json.dumps(fork).encode()
    status, answer = app_webhook.post(body, headers(body, event="pull_request"))
    assert status == 202 and answer["aggregateStatus"]["state"] == "action_required", answer
    asked = app_github.latest_checks(head)["flavor-ci"]
    assert asked["actions"][0]["identifier"] == "build-commit"
    before = len(aws["codebuild"].list_build_batches_for_project(projectName="ci")["ids"])
    for stranger in ("reader", "mallory"):
        status, answer = click(app_webhook, asked["id"], "flavor-ci", "fork#9", head, stranger,
                               identifier="build-commit")
        assert status == 202 and "write access" in answer["message"], answer
    assert len(aws["codebuild"].list_build_batches_for_project(projectName="ci")["ids"]) == before
    status, answer = click(app_webhook, asked["id"], "flavor-ci", "fork#9", head, "maintainer",
                           identifier="build-commit")
    assert status == 200 and answer["sourceVersion"] == head, answer
    assert answer["flavors"] == ["base", "standard"]


def test_tokens_are_replaced_once_after_a_401_and_before_they_expire(app_webhook, aws, app, app_github, repo):
    issued = len(app.tokens)
    # GitHub revokes the token the webhook holds: its first call answers 401, and one new token
    # is fetched. This one expires 5 minutes and 2 seconds from now: it is used for 2 seconds.
    app.token_life = 302
    app.revoke_all()
    push(app_webhook, aws, repo, ["flavors/base/Dockerfile"])
    first = len(app.tokens)
    assert first == issued + 1, (issued, first)
    time.sleep(2.5)
    files = {f"flavors/{f}/Dockerfile": f"FROM {f} {uuid.uuid4()}\n" for f in FLAVORS}
    commit, tree = app_github.add_commit(WEBHOOK_REPOSITORY, files)
    push(app_webhook, aws, {"name": WEBHOOK_REPOSITORY, "commit": commit, "tree": tree}, ["flavors/base/Dockerfile"])
    assert len(app.tokens) == first + 1
    # Revoked again: again one new token, and the push builds.
    app.token_life = 3600
    app.revoke_all()
    commit, tree = app_github.add_commit(WEBHOOK_REPOSITORY, {**files, "flavors/base/x": str(uuid.uuid4())})
    push(app_webhook, aws, {"name": WEBHOOK_REPOSITORY, "commit": commit, "tree": tree}, ["flavors/base/x"])
    assert len(app.tokens) == first + 2


def test_a_refused_check_run_names_the_permission_and_never_fails_the_build(app_webhook, app_events, aws,
                                                                           app_github, repo):
    run = push(app_webhook, aws, repo, ["flavors/python-3.10/Dockerfile"])
    app_github.check_failures = [403]
    answer = send(app_events, run.event("python-3.10", "IN_PROGRESS"))
    assert answer["status"] == "IN_PROGRESS" and "posted" not in answer, answer
    assert "Checks: Read and write" in app_events.log_text()
    app_github.check_failures = []
    run.end("python-3.10", "SUCCEEDED")
    assert send(app_events, run.event("python-3.10", "SUCCEEDED", minute=2))["finished"]["state"] == "success"
    assert app_github.latest_checks(run.commit)["flavor-ci"]["conclusion"] == "success"


def test_the_sweep_redelivers_each_failed_delivery_once_across_runs(app_webhook, app, app_github):
    """GitHub's deliveries API lists some of the App's deliveries as failed: the schedule's sweep
    asks for each of this repository's once, however often it runs, and leaves the rest."""
    now = time.time()

    def at(ago: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - ago))

    repo_id = app_github.repository_id
    app.hook_deliveries = [  # newest first, as GitHub lists them
        {"id": 9, "guid": "young", "delivered_at": at(5), "status_code": 0, "event": "push", "repository_id": repo_id},
        {"id": 8, "guid": "timeout", "delivered_at": at(300), "status_code": 0, "event": "push",
         "repository_id": repo_id},
        {"id": 7, "guid": "healed", "delivered_at": at(400), "status_code": 200, "event": "push",
         "repository_id": repo_id},
        {"id": 6, "guid": "other-repo", "delivered_at": at(500), "status_code": 502, "event": "push",
         "repository_id": 42},
        {"id": 5, "guid": "healed", "delivered_at": at(600), "status_code": 503, "event": "push",
         "repository_id": repo_id},
        {"id": 4, "guid": "throttled", "delivered_at": at(700), "status_code": 429, "event": "pull_request",
         "repository_id": repo_id},
    ] + [  # older pages: a refusal of two days ago, and one older than GitHub redelivers
        {"id": 3, "guid": "old", "delivered_at": at(2 * 86400), "status_code": 500, "event": "push",
         "repository_id": repo_id},
        {"id": 2, "guid": "too-old", "delivered_at": at(4 * 86400), "status_code": 500, "event": "push",
         "repository_id": repo_id},
    ]
    sweep = {"flavorCiSweep": {}}
    code, raw = app_webhook.watch.invoke(sweep)
    answer = json.loads(json.loads(raw)["body"])
    assert code == 200 and answer["status"] == "swept", raw
    assert answer["redelivered"] == ["old", "throttled", "timeout"], answer
    assert sorted(app.redelivered) == [3, 4, 8]
    for _ in range(2):
        code, raw = app_webhook.watch.invoke(sweep)
        assert json.loads(json.loads(raw)["body"])["redelivered"] == [], raw
    assert sorted(app.redelivered) == [3, 4, 8]
