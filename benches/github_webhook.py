"""Benchmarks the github-webhook function's release binary against local servers: moto (S3,
Secrets Manager, CodeBuild with batch calls) and the GitHub REST API stand-in.

Prints, from one run:
- the stripped release binary's size;
- cold start: process start → first request for work, over many starts;
- a push end to end (verify → flavors at the commit → generate → S3 → StartBuildBatch), for a
  repository of 5, 50 and 500 flavors, building every flavor (a forced push) and building one
  changed flavor; each delivery has its own body, so each starts a batch;
- a 6 MB delivery (an event flavor-ci ignores after verifying it) against a small one: the
  extra time is verifying and reading the larger body;
- the process's peak RSS (VmHWM);
- a merge group that changes no flavor: delivery to the answer, the success status posted on
  the group's head (what GitHub's merge queue waits for).

The aggregate status is posted for each delivery, as a stack with CommitStatuses=flavor-ci does.

Usage: .venv/bin/python benches/github_webhook.py [--starts 40] [--pushes 40]
"""

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/functions"))
sys.path.insert(0, str(ROOT / "tests/tools"))
sys.path.insert(0, str(ROOT / "benches"))
from conftest import AWS_ENV, client, free_port, stop, wait_for_port  # noqa: E402
from github_api import GitHubApi, flavor_files  # noqa: E402
from runtime_api import RuntimeApi, cold_starts, create_ci_project, peak_rss_mb, start_function, start_moto  # noqa: E402

BINARY = ROOT / "target/release/github-webhook"
FLOOR = ROOT / "target/release/examples/hello_runtime"
SECRET = "bench-secret"
BUCKET = "bench-webhook"
ROOT_PREFIX = "flavor-ci/bench-0123456789ab/Buildspecs/"
REPOSITORY = "acme/bench"


def event(body: bytes, event_name: str = "push") -> dict:
    return {
        "version": "2.0",
        "requestContext": {"http": {"method": "POST", "path": "/"}, "timeEpoch": 1795168800000},
        "headers": {
            "content-type": "application/json",
            "x-github-event": event_name,
            "x-github-delivery": str(uuid.uuid4()),
            "x-hub-signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def push(repo: str, commit: str, tree: str, paths: list[str] | None) -> bytes:
    """A push delivery. Each call gives a distinct body (GitHub's payloads differ at least in
    their commit ids and times): the webhook identifies deliveries by their signed body, so a
    repeated body would be `already handled`."""
    commits = [{"id": commit, "added": [], "removed": [], "modified": paths or []}]
    return json.dumps({
        "ref": "refs/heads/main", "before": "1" * 40, "after": commit,
        "created": False, "deleted": False, "forced": paths is None, "commits": commits,
        "head_commit": {"id": commit, "tree_id": tree}, "repository": {"full_name": repo},
        "compare": f"https://github.com/{repo}/compare/{uuid.uuid4()}",
    }).encode()


def pull_request(repo: str, base: str, head: str, number: int = 1) -> bytes:
    """A `synchronize` delivery of pull request `number` (distinct bodies, as in `push`)."""
    return json.dumps({
        "action": "synchronize", "number": number,
        "pull_request": {"number": number, "draft": False, "title": str(uuid.uuid4()),
                         "head": {"ref": "topic", "sha": head, "repo": {"full_name": repo}},
                         "base": {"ref": "main", "sha": base, "repo": {"full_name": repo}}},
        "repository": {"full_name": repo},
    }).encode()


def timed(api: RuntimeApi, body, n: int, event_name: str = "push", expect: int = 200) -> list[float]:
    """`body` is the bytes of every delivery, or a function that makes each one."""
    times = []
    for _ in range(n):
        one = body() if callable(body) else body
        times.append(api.invoke(event(one, event_name)) * 1000)
        status = json.loads(api.last_response)["statusCode"]
        if status != expect:
            raise SystemExit(f"expected {expect}, got {api.last_response[:400]!r}")
    return times


def merge_group(repo: str, head: str, tree: str, base: str) -> bytes:
    return json.dumps({
        "action": "checks_requested",
        "merge_group": {"head_sha": head, "head_ref": f"refs/heads/gh-readonly-queue/main/pr-9-{base}",
                        "base_sha": base, "base_ref": "refs/heads/main",
                        "head_commit": {"id": head, "tree_id": tree, "message": "Docs (#9)"}},
        "repository": {"full_name": repo}, "sender": {"login": "dev"},
    }).encode()


def merge_groups(api: RuntimeApi, proc, github: GitHubApi, n: int) -> None:
    """A merge group that changes no flavor, 500 flavors at its head: the delivery handed out →
    the response, which comes after the success status is posted on the group's head (the one
    thing the queue waits for)."""
    commit, tree = github.add_commit(REPOSITORY, {**flavor_files(500), "docs/x.md": "x"})
    bases = [f"{i:040x}" for i in range(1, n + 2)]
    for base in bases:
        github.compares[(REPOSITORY, base, commit)] = ["docs/x.md"]
    queue = iter(bases)

    def body():
        return merge_group(REPOSITORY, commit, tree, next(queue))
    first = timed(api, body, 1, "merge_group", 202)[0]
    warm = timed(api, body, n, "merge_group", 202)
    posted = json.loads(json.loads(api.last_response)["body"]).get("aggregateStatus", {}).get("posted")
    print(f"\nmerge group changing no flavor (500 at its head), delivery to answer with the success "
          f"status {'posted' if posted else 'NOT posted'}: first {first:.2f} ms, "
          f"median {statistics.median(warm):.2f} ms, p90 {p90(warm):.2f} ms")


def intake_cost(github: GitHubApi, env: dict, n: int) -> None:
    """What keeping each delivery costs: the S3 calls a push makes under pushes/inbox/, counted
    by a proxy in front of moto (a second process of the same binary), and the time of that
    PUT (If-None-Match) and DELETE (by version) against the same moto, timed alone."""
    sys.path.insert(0, str(ROOT / "tests/tools"))
    from fault_proxy import FaultProxy

    proxy = FaultProxy(env["AWS_ENDPOINT_URL"])
    api = RuntimeApi()
    proc = start_function(api, BINARY, {**env, "AWS_ENDPOINT_URL": proxy.url})
    try:
        commit, tree = github.add_commit(REPOSITORY, flavor_files(50))
        timed(api, lambda: push(REPOSITORY, commit, tree, ["flavors/flavor-0001/Dockerfile"]), 1)
        proxy.seen.clear()
        timed(api, lambda: push(REPOSITORY, commit, tree, ["flavors/flavor-0001/Dockerfile"]), n)
        # The kept copy's PUT names its key; its removal is a DeleteObjects (by version), which
        # nothing else in a push that builds makes.
        from collections import Counter
        calls = [op.split(" ")[0] for op in proxy.seen
                 if "/pushes/inbox/" in op or op.startswith("S3.DeleteObjects")]
        per = {op: count / n for op, count in Counter(calls).items()}
        s3 = client("s3", env["AWS_ENDPOINT_URL"])
        body = b"x" * 2200  # a small push's kept copy
        times = []
        for i in range(n):
            key = f"{ROOT_PREFIX}pushes/inbox/bench-{i}.json"
            t0 = time.perf_counter()
            out = s3.put_object(Bucket=BUCKET, Key=key, Body=body, IfNoneMatch="*")
            s3.delete_object(Bucket=BUCKET, Key=key, VersionId=out.get("VersionId", "null"))
            times.append((time.perf_counter() - t0) * 1000)
        print(f"\ndurable intake, per push delivery: S3 calls under pushes/inbox/ {per} "
              f"(the PUT is the one write before acting; the DELETE removes it once handled); "
              f"that pair against the same moto: median {statistics.median(times):.2f} ms, p90 {p90(times):.2f} ms")
    finally:
        stop(proc)
        api.close()
        proxy.close()


def p90(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10)[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=40)
    parser.add_argument("--pushes", type=int, default=40)
    args = parser.parse_args()

    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "-p", "github-webhook",
                    "--bins", "--examples"], cwd=ROOT, check=True)
    size_mb = BINARY.stat().st_size / 1e6

    port = free_port()
    moto = start_moto(port, AWS_ENV)
    github = GitHubApi()
    try:
        wait_for_port(port, moto, "moto")
        endpoint = f"http://127.0.0.1:{port}"
        s3 = client("s3", endpoint)
        s3.create_bucket(Bucket=BUCKET)
        # Versioned, as the stack's bucket is.
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        settings_key = f"{ROOT_PREFIX}settings/bench.json"
        s3.put_object(Bucket=BUCKET, Key=settings_key, Body=b'{"batch": {"max-builds": 1000}}')
        client("secretsmanager", endpoint).create_secret(Name="bench/webhook", SecretString=SECRET)
        create_ci_project(client, endpoint, "bench")
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "FLAVOR_CI_BUCKET": BUCKET,
            "FLAVOR_CI_ROOT": ROOT_PREFIX,
            "FLAVOR_CI_SETTINGS_KEY": settings_key,
            "WEBHOOK_SECRET_ID": "bench/webhook",
            "GITHUB_API_URL": github.url,
            "GITHUB_REPOSITORY": REPOSITORY,
            "CI_PROJECT": "ci",
            "IGNORED_PATHS": "docs",
            # The aggregate status is posted (with a token the stand-in accepts).
            "STATUS_CONTEXT": "flavor-ci",
            "GITHUB_TOKEN_SECRET_ID": "bench/token",
        }
        client("secretsmanager", endpoint).create_secret(Name="bench/token", SecretString="ghs_bench")

        floor = cold_starts(args.starts, FLOOR, env)
        starts = cold_starts(args.starts, BINARY, env)
        print(f"release binary (stripped): {size_mb:.2f} MB  (target < 12 MB)")
        print(f"cold start to first /next: median {statistics.median(starts):.2f} ms, "
              f"p90 {p90(starts):.2f} ms over {len(starts)} starts  (target < 25 ms)")
        print(f"  floor (an echo function on the same runtime): median {statistics.median(floor):.2f} ms; "
              f"ratio {statistics.median(starts) / statistics.median(floor):.2f}  (target <= 2)")

        api = RuntimeApi()
        proc = start_function(api, BINARY, env)
        try:
            print(f"\npush end to end ({args.pushes} deliveries each, one process):")
            print(f"{'flavors':>8} {'building':>9} {'first':>9} {'median':>9} {'p90':>9}")
            for count in (5, 50, 500):
                repo = REPOSITORY  # each size is its own commit of the one repository
                commit, tree = github.add_commit(repo, flavor_files(count))
                for label, paths in (("all", None), ("one", ["flavors/flavor-0001/Dockerfile"])):
                    def body(paths=paths):
                        return push(repo, commit, tree, paths)
                    first = timed(api, body, 1)[0]
                    warm = timed(api, body, args.pushes)
                    print(f"{count:>8} {label:>9} {first:>7.2f}ms {statistics.median(warm):>7.2f}ms {p90(warm):>7.2f}ms")
            # Pull requests: the head commit's flavors, GitHub's comparison (one changed flavor),
            # the spec, the claim, StartBuildBatch, and the superseded batch stopped.
            commit, tree = github.add_commit(REPOSITORY, flavor_files(500))
            base = "b" * 40
            github.compares[(REPOSITORY, base, commit)] = ["flavors/flavor-0001/Dockerfile"]

            def pr_body():
                return pull_request(REPOSITORY, base, commit)
            first = timed(api, pr_body, 1, "pull_request")[0]
            warm = timed(api, pr_body, args.pushes, "pull_request")
            print(f"\npull request end to end, 500 flavors, one changed, the previous batch stopped: "
                  f"first {first:.2f} ms, median {statistics.median(warm):.2f} ms, p90 {p90(warm):.2f} ms "
                  "(target: median < 100 ms)")
            small = json.dumps({"action": "opened", "padding": ""}).encode()
            large = json.dumps({"action": "opened", "padding": "x" * (6 * 1024 * 1024 - 200)}).encode()
            t_small = timed(api, small, args.pushes, "issues", 202)
            t_large = timed(api, large, args.pushes, "issues", 202)
            extra = statistics.median(t_large) - statistics.median(t_small)
            print(f"\n{len(large) / 2**20:.2f} MiB delivery: median {statistics.median(t_large):.2f} ms, "
                  f"small delivery {statistics.median(t_small):.2f} ms; the large body adds {extra:.2f} ms "
                  "(reading the event, decoding and verifying)")
            print(f"peak RSS (VmHWM): {peak_rss_mb(proc.pid):.1f} MB")
            merge_groups(api, proc, github, args.pushes)
            intake_cost(github, env, args.pushes)
            print("\ntargets: 500 flavors end to end median < 100 ms; verifying 6 MB < 30 ms "
                  "(cargo bench --bench signature measures verification alone)")
        finally:
            stop(proc)
            api.close()
    finally:
        github.close()
        stop(moto)


if __name__ == "__main__":
    main()
