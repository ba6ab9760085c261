"""Benchmarks what skipping identical inputs adds to a push, with the github-webhook release
binary against local servers: moto (S3, Secrets Manager, CodeBuild with batch calls) and the
GitHub REST API stand-in. 500 flavors, a push that selects every one of them.

Side by side in one run, one process each, the same deliveries:
- `off`: the deployed settings' `skip.on` is empty: keys are computed (for the run record), the
  ledger is not looked at;
- `empty ledger`: keys, and one listing of the ledger that finds nothing: the batch starts;
- `all green`: every key has a record whose build CodeBuild confirms: 500 reads, 5
  BatchGetBuilds calls, nothing started;
- with `--before REV`: the webhook binary built from REV (before input keys existed), the same
  push: today's push handling without keys.

Prints each mode's median and p90, the difference to the baseline, and the GitHub API requests
per delivery (the stand-in counts them).

Usage: .venv/bin/python benches/skipping.py [--pushes 30] [--before REV]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/functions"))
sys.path.insert(0, str(ROOT / "tests/tools"))
sys.path.insert(0, str(ROOT / "benches"))
from conftest import AWS_ENV, client, free_port, stop, wait_for_port  # noqa: E402
from github_api import GitHubApi, flavor_files  # noqa: E402
from github_webhook import BINARY, BUCKET, REPOSITORY, ROOT_PREFIX, SECRET, p90, push, timed  # noqa: E402
from runtime_api import RuntimeApi, create_ci_project, start_function, start_moto  # noqa: E402

FLAVORS = 500


def build_before(rev: str) -> Path:
    """The webhook's release binary at `rev`, built in a worktree with its own target."""
    work = Path(tempfile.gettempdir()) / f"flavor-ci-before-{rev[:12]}"
    if not work.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(work), rev], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "-p", "github-webhook"],
                   cwd=work, check=True, env={**__import__("os").environ, "CARGO_TARGET_DIR": str(ROOT / "target/before")})
    return ROOT / "target/before/release/github-webhook"


def settings(s3, key: str, skip_on: list[str] | None) -> None:
    body = {"batch": {"max-builds": 1000}}
    if skip_on is not None:
        body["skip"] = {"on": skip_on}
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--before", help="a revision before input keys: today's push handling")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "-p", "github-webhook"],
                   cwd=ROOT, check=True)
    before = build_before(args.before) if args.before else None

    port = free_port()
    moto = start_moto(port, AWS_ENV)
    github = GitHubApi()
    procs = []
    try:
        wait_for_port(port, moto, "moto")
        endpoint = f"http://127.0.0.1:{port}"
        s3 = client("s3", endpoint)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sm = client("secretsmanager", endpoint)
        sm.create_secret(Name="bench/webhook", SecretString=SECRET)
        sm.create_secret(Name="bench/token", SecretString="ghs_bench")
        create_ci_project(client, endpoint, "bench")
        codebuild = client("codebuild", endpoint)
        base = {
            "AWS_ENDPOINT_URL": endpoint, "FLAVOR_CI_BUCKET": BUCKET, "WEBHOOK_SECRET_ID": "bench/webhook",
            "GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPOSITORY, "CI_PROJECT": "ci",
            "IGNORED_PATHS": "docs", "STATUS_CONTEXT": "flavor-ci", "GITHUB_TOKEN_SECRET_ID": "bench/token",
            # What a stack of 500 flavors deploys with (docs/results.md): no success status per
            # flavor, so none per skipped flavor either.
            "FLAVOR_STATUSES": "failures",
        }
        commit, tree = github.add_commit(REPOSITORY, {**flavor_files(FLAVORS), "build.sh": "make\n"})

        def function(name: str, skip_on, binary=BINARY):
            """A process of `binary` with its own root (so its own ledger) and settings."""
            root = f"{ROOT_PREFIX}{name}/"
            key = f"{root}settings/bench.json"
            settings(s3, key, skip_on)
            api = RuntimeApi()
            proc = start_function(api, binary, {**base, "FLAVOR_CI_ROOT": root, "FLAVOR_CI_SETTINGS_KEY": key})
            procs.append((proc, api))
            return api, root

        def body():
            return push(REPOSITORY, commit, tree, ["build.sh"])

        modes = {}
        off, _ = function("off", [])
        modes["skip.on: [] (keys only)"] = (off, "started")
        empty, _ = function("empty", None)
        modes["empty ledger"] = (empty, "started")
        # All green: the run's builds end SUCCEEDED in CodeBuild, and their records are written
        # as build-events writes them.
        green, root = function("green", None)
        timed(green, body, 1)
        answer = json.loads(json.loads(green.last_response)["body"])
        batch = codebuild.batch_get_build_batches(ids=[answer["batchBuildId"]])["buildBatches"][0]
        record_key = f"{root}runs/{answer['batchBuildId'].replace(':', '%3A')}.json"
        record = json.loads(s3.get_object(Bucket=BUCKET, Key=record_key)["Body"].read())
        by_identifier = {f["identifier"]: f["name"] for f in record["flavors"]}
        for g in batch["buildGroups"]:
            build = g["currentBuildSummary"]["arn"].split("/", 1)[1]
            codebuild.stop_build(id=f"{build}#SUCCEEDED")
            flavor = by_identifier[g["identifier"]]
            key = record["inputs"][flavor]
            s3.put_object(Bucket=BUCKET, Key=f"{root}green/{key}", Body=json.dumps({
                "key": key, "flavor": flavor, "buildId": build, "batchId": answer["batchBuildId"],
                "project": "ci", "commit": commit, "ref": "refs/heads/main", "trigger": "push",
                "at": 0, "seconds": 600}).encode())
        modes["all green (500 skipped)"] = (green, "skipped")
        if before:
            old, _ = function("before", None, before)
            modes[f"before keys ({args.before[:12]})"] = (old, "started")
        # The first push of each process, then the modes in turn, one delivery each, so the
        # machine's drift falls on all of them alike.
        firsts = {label: timed(api, body, 1)[0] for label, (api, _) in modes.items()}
        times = {label: [] for label in modes}
        requests = {label: 0 for label in modes}
        for _ in range(args.pushes):
            for label, (api, expect) in modes.items():
                start = len(github.requests)
                times[label].extend(timed(api, body, 1))
                requests[label] += len(github.requests) - start
                answer = json.loads(json.loads(api.last_response)["body"])
                if answer["status"] != expect:
                    raise SystemExit(f"{label}: expected {expect}: {answer}")
        results = {label: (times[label], requests[label] / args.pushes, firsts[label]) for label in modes}
        # What the 500 record reads cost against this moto alone, from Python, 32 at a time
        # (as the webhook reads them).
        from concurrent.futures import ThreadPoolExecutor
        keys = [f"{root}green/{k}" for k in record["inputs"].values()]
        reads = []
        for _ in range(3):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(32) as pool:
                list(pool.map(lambda k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read(), keys))
            reads.append((time.perf_counter() - t0) * 1000)

        baseline_label = next((k for k in results if k.startswith("before")), "skip.on: [] (keys only)")
        baseline = statistics.median(results[baseline_label][0])
        print(f"push selecting all {FLAVORS} flavors, {args.pushes} deliveries per mode taken in turn, one process "
              "each (first: the process's first such push; the all-green one reads every record):")
        print(f"{'mode':<34} {'first':>9} {'median':>9} {'p90':>9} {'vs baseline':>12} {'GitHub requests':>16}")
        for label, (times, requests, first) in results.items():
            median = statistics.median(times)
            print(f"{label:<34} {first:>7.2f}ms {median:>7.2f}ms {p90(times):>7.2f}ms {median - baseline:>+10.2f}ms "
                  f"{requests:>16.1f}")
        print(f"(baseline: {baseline_label}; target: keys and look-ups add < 50 ms and no GitHub request)")
        print(f"the 500 green records read from Python against the same moto, 32 at a time: "
              f"median {statistics.median(reads):.0f} ms")
    finally:
        for proc, api in procs:
            stop(proc)
            api.close()
        github.close()
        stop(moto)


if __name__ == "__main__":
    main()
