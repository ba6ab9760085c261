"""No push lost: the webhook behind `cargo lambda watch`, talking to moto and a GitHub stand-in
through fault-injecting proxies. In each scenario pushes are delivered during a fault, each
twice; once the fault clears, the schedule's pass (invoked directly) builds each commit once,
with exactly its flavors, and nothing is left half-written."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (
    WEBHOOK, WEBHOOK_BUCKET, WEBHOOK_REPOSITORY, WEBHOOK_SETTINGS, Webhook, client, free_port, start_watch, stop,
)
from fault_proxy import FaultProxy, Rule
from github_api import GitHubApi
from test_github_webhook import cli, deliver, push_payload

ROOT = "flavor-ci/lost-0123456789ab/Buildspecs/"
TOKEN = "ghs_lostpushes"
# Flavors no other depends on: a push touching one builds exactly that one.
LEAVES = ["python-3.10", "r-4.4"]


@pytest.fixture(scope="module")
def world(gateway, webhook, tmp_path_factory):
    """The stack's webhook with every call to AWS and GitHub through a fault proxy."""
    github = GitHubApi(token=TOKEN)
    aws_proxy = FaultProxy(gateway.url)
    github_proxy = FaultProxy(github.url)
    sm = client("secretsmanager", gateway.url)
    sm.create_secret(Name="flavor-ci/lost-token", SecretString=TOKEN)
    s3 = client("s3", gateway.url)
    settings_key = f"{ROOT}settings/deployed.json"
    s3.put_object(Bucket=WEBHOOK_BUCKET, Key=settings_key, Body=json.dumps(WEBHOOK_SETTINGS).encode())
    w = start_watch(
        free_port(), gateway, tmp_path_factory.mktemp("lost") / "watch.log",
        "--concurrency", "8",
        function=WEBHOOK, features="",
        env={
            "AWS_ENDPOINT_URL": aws_proxy.url,
            "FLAVOR_CI_BUCKET": WEBHOOK_BUCKET,
            "FLAVOR_CI_ROOT": ROOT,
            "FLAVOR_CI_SETTINGS_KEY": settings_key,
            "WEBHOOK_SECRET_ID": "flavor-ci/webhook",
            "GITHUB_TOKEN_SECRET_ID": "flavor-ci/lost-token",
            "GITHUB_API_URL": github_proxy.url,
            "CI_PROJECT": "ci",
            "GITHUB_REPOSITORY": WEBHOOK_REPOSITORY,
            "BRANCH_PATTERNS": "main",
            "IGNORED_PATHS": "docs",
            "STATUS_CONTEXT": "flavor-ci",
            # Kept deliveries are due again at once: the test runs the schedule's pass itself.
            "RETRY_FIRST_WAIT_SECONDS": "0",
            # The SDK's own retries (with their backoff) only slow a fault that lasts down.
            "AWS_MAX_ATTEMPTS": "1",
        },
    )
    hook = Webhook(w, settings_key)
    world = {"hook": hook, "github": github, "aws": aws_proxy, "gh": github_proxy, "s3": s3,
             "codebuild": client("codebuild", gateway.url), "url": gateway.url}
    # A first delivery warms the caches (the webhook secret, the token, the settings).
    status, answer = deliver(hook, push_payload(commit(world, "r-4.4"), ["docs/warm"]))
    assert status == 202, answer
    yield world
    stop(w.proc)
    aws_proxy.close()
    github_proxy.close()
    github.close()


def commit(world, flavor: str) -> dict:
    files = {f"flavors/{f}/Dockerfile": f"FROM {f} {uuid.uuid4() if f == flavor else ''}\n"
             for f in ["base", "python-3.10", "r-4.4", "standard"]}
    sha, tree = world["github"].add_commit(WEBHOOK_REPOSITORY, files)
    return {"name": WEBHOOK_REPOSITORY, "commit": sha, "tree": tree}


def batches(world) -> set[str]:
    return set(world["codebuild"].list_build_batches_for_project(projectName="ci")["ids"])


def kept(world) -> list[dict]:
    s3 = world["s3"]
    listed = s3.list_objects_v2(Bucket=WEBHOOK_BUCKET, Prefix=f"{ROOT}pushes/inbox/")
    return [json.loads(s3.get_object(Bucket=WEBHOOK_BUCKET, Key=o["Key"])["Body"].read())
            for o in listed.get("Contents", [])]


def sweep(world) -> dict:
    code, raw = world["hook"].watch.invoke({"flavorCiSweep": {}})
    assert code == 200, raw
    return json.loads(json.loads(raw)["body"])


def run_scenario(world, rule: Rule | None, pushes: int = 20, expect_kept: bool = True):
    """Delivers `pushes` distinct pushes, each twice, during the fault; clears it; runs the
    schedule's pass until nothing is kept; checks every commit built once with its flavor."""
    planned = []
    for i in range(pushes):
        flavor = LEAVES[i % 2]
        repo = commit(world, flavor)
        planned.append((repo, flavor))
    before = batches(world)
    if rule:
        world["aws" if rule.operation.startswith(("CodeBuild", "S3", "SecretsManager")) else "gh"].add(rule)
    payloads = [push_payload(repo, [f"flavors/{flavor}/Dockerfile"]) for repo, flavor in planned]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: deliver(world["hook"], p), payloads + payloads))
    world["aws"].clear()
    world["gh"].clear()
    words = {a.get("status") for _, a in answers}
    if expect_kept:
        assert "accepted" in words, answers[:3]
        assert {s for s, _ in answers} <= {200, 202}, [a for s, a in answers if s not in (200, 202)][:3]
        waiting = {k["commit"] for k in kept(world) if k["state"] == "retrying"}
        assert waiting, "the failed deliveries are kept"
        latest = world["github"].latest_statuses
        some = next(iter(waiting))
        assert latest(some)["flavor-ci"]["description"].startswith("waiting for "), latest(some)
    cleared = time.perf_counter()
    for _ in range(6):
        if not [k for k in kept(world) if k["commit"] in {r["commit"] for r, _ in planned}]:
            break
        sweep(world)
    elapsed = time.perf_counter() - cleared
    new = batches(world) - before
    built = world["codebuild"].batch_get_build_batches(ids=sorted(new))["buildBatches"]
    by_commit: dict[str, list] = {}
    for b in built:
        by_commit.setdefault(b["sourceVersion"], []).append(b)
    for repo, flavor in planned:
        runs = by_commit.get(repo["commit"], [])
        assert len(runs) == 1, (repo["commit"], len(runs))
        key = f"{ROOT}runs/{runs[0]['id'].replace(':', '%3A')}.json"
        record = json.loads(world["s3"].get_object(Bucket=WEBHOOK_BUCKET, Key=key)["Body"].read())
        assert [f["name"] for f in record["flavors"]] == [flavor], record["flavors"]
        status = world["github"].latest_statuses(repo["commit"])["flavor-ci"]
        assert status["description"] == "1 flavor building", status
    assert len(new) == pushes, (len(new), pushes)
    # Nothing half-written: nothing kept, and every claim names its started batch.
    assert [k for k in kept(world) if k["commit"] in by_commit] == []
    s3 = world["s3"]
    listed = s3.list_objects_v2(Bucket=WEBHOOK_BUCKET, Prefix=f"{ROOT}pushes/deliveries/")
    used = set()
    for o in listed.get("Contents", []):
        record = json.loads(s3.get_object(Bucket=WEBHOOK_BUCKET, Key=o["Key"])["Body"].read())
        used.add(record.get("buildspec"))
        if record.get("after") in by_commit:
            assert record.get("state") == "started" and record.get("batchBuildId"), record
    # No spec without a batch: each stored spec is one a started delivery built with.
    specs = s3.list_objects_v2(Bucket=WEBHOOK_BUCKET, Prefix=f"{ROOT}pushes/specs/")
    for o in specs.get("Contents", []):
        assert f"s3://{WEBHOOK_BUCKET}/{o['Key']}" in used, o["Key"]
    return elapsed


SCENARIOS = {
    "CodeBuild throttles every StartBuildBatch": Rule(
        "CodeBuild.StartBuildBatch", status=400, aws_error="ThrottlingException"),
    "S3 answers 503 SlowDown to the spec writes": Rule(
        r"S3\.PutObject .*/pushes/specs/", status=503, aws_error="SlowDown"),
    "GitHub answers 502 on the trees API": Rule(r"GET /repos/.*/git/trees/", status=502),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_pushes_during_a_fault_are_built_once_it_clears(world, name):
    rule = SCENARIOS[name]
    elapsed = run_scenario(world, rule)
    print(f"{name}: fault cleared to every batch started: {elapsed * 1000:.0f} ms")


def test_secrets_manager_unreachable_does_not_stop_a_warm_function(world):
    """The webhook secret and the token are cached: with Secrets Manager unreachable, pushes
    build as ever (an expired value is used while a fresh one cannot be read)."""
    run_scenario(world, Rule(r"SecretsManager\.", drop=True), pushes=20, expect_kept=False)


def test_a_delivery_that_outlasts_the_functions_time_is_kept_and_built_later(world):
    """GitHub's trees API answers after 9 s: the webhook's 8 s run out, the delivery is kept
    (not lost as a timeout), and built when the pass runs."""
    elapsed = run_scenario(world, Rule(r"GET /repos/.*/git/trees/", status=0, delay=9), pushes=4)
    print(f"the function's time ran out: fault cleared to every batch started: {elapsed * 1000:.0f} ms")


def test_a_lasting_fault_is_given_up_once_with_its_reason(world):
    repo = commit(world, "r-4.4")
    world["aws"].add(Rule("CodeBuild.StartBuildBatch", status=400, aws_error="AccessDeniedException"))
    try:
        status, answer = deliver(world["hook"], push_payload(repo, ["flavors/r-4.4/Dockerfile"]))
        again = deliver(world["hook"], push_payload(repo, ["flavors/r-4.4/Dockerfile"]))
    finally:
        world["aws"].clear()
    assert status == 502 and again[0] == 502, (answer, again)
    (record,) = [k for k in kept(world) if k["commit"] == repo["commit"]]
    assert record["state"] == "failed" and "AccessDeniedException" in record["reason"], record
    status = world["github"].latest_statuses(repo["commit"])["flavor-ci"]
    assert status["state"] == "error" and status["description"].startswith("not built: CodeBuild"), status
    log = world["hook"].watch.log_text()
    counted = [line for line in log.splitlines() if '"given_up":1' in line and record["delivery"] in line]
    assert len(counted) == 1, "one log line for the metric, however often it is delivered"
    # Listed by the operator's command, with its reason.
    out = cli(world["url"], "status", "--stack", stack(world), "--deliveries")
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert f"commit {repo['commit']}  failed" in out.stdout, out.stdout
    assert "AccessDeniedException" in out.stdout


def stack(world) -> str:
    name = "lost-records"
    cfn = client("cloudformation", world["url"])
    try:
        cfn.describe_stacks(StackName=name)
    except cfn.exceptions.ClientError:
        template = {
            "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {"SpecsBucketName": {"Value": WEBHOOK_BUCKET}, "BuildspecsRoot": {"Value": ROOT}},
        }
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


def test_the_operator_sees_kept_deliveries_and_can_redeliver_one(world):
    repo = commit(world, "python-3.10")
    world["gh"].add(Rule(r"GET /repos/.*/git/trees/", status=502))
    try:
        status, answer = deliver(world["hook"], push_payload(repo, ["flavors/python-3.10/Dockerfile"]))
    finally:
        world["gh"].clear()
    assert status == 202, answer
    out = cli(world["url"], "status", "--stack", stack(world), "--deliveries")
    assert out.returncode in (1, 4), (out.stdout, out.stderr)
    assert f"commit {repo['commit']}  retrying" in out.stdout and "(GitHub)" in out.stdout, out.stdout
    (record,) = [k for k in kept(world) if k["commit"] == repo["commit"]]
    function = world["hook"].watch
    code, raw = function.invoke({"flavorCiRetry": {"delivery": record["delivery"]}})
    body = json.loads(json.loads(raw)["body"])
    assert body["retried"]["handled"] == [record["delivery"]], body
    assert not [k for k in kept(world) if k["commit"] == repo["commit"]]
