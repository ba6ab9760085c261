"""Benchmarks the buildspec-resource function's release binary against local moto.

Prints, from one run:
- the stripped release binary's size;
- cold start: process start → first request for work (`GET …/invocation/next`), over many starts;
- Create handler time for 5, 50 and 500 flavors: from handing the event to the function until
  its invocation response, which includes the S3 writes and the response PUT; the first Create
  of a process (clients and connections are set up) is reported apart from the warm median;
- the process's peak RSS (VmHWM) after those Creates, and the S3 objects one Create writes.

A minimal runtime API (benches/runtime_api.py) is served so that the timestamps are taken where
the function talks to it.

Usage: .venv/bin/python benches/buildspec_resource.py [--starts 40] [--creates 40]
"""

import argparse
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/functions"))
sys.path.insert(0, str(ROOT / "benches"))
from conftest import AWS_ENV, Receiver, client, free_port, stop, wait_for_port  # noqa: E402
from runtime_api import RuntimeApi, cold_starts, peak_rss_mb, start_function  # noqa: E402

BINARY = ROOT / "target/release/buildspec-resource"
FLOOR = ROOT / "target/release/examples/hello_runtime"


def create_event(receiver: Receiver, bucket: str, flavors: int) -> dict:
    url, _ = receiver.new_url()
    return {
        "RequestType": "Create",
        "ResponseURL": url,
        "StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/bench/{uuid.uuid4()}",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "Buildspecs",
        "ResourceType": "Custom::Buildspecs",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:buildspec-resource",
            "Bucket": bucket,
            "Flavors": [f"flavor-{i:04d}-python-3.{i % 13}" for i in range(flavors)],
            "Settings": {
                "batch": {"max-builds": "1000"},
                "build": {"compute-type": "BUILD_GENERAL1_MEDIUM", "privileged-mode": "true"},
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=40)
    parser.add_argument("--creates", type=int, default=40)
    args = parser.parse_args()

    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--quiet", "-p", "buildspec-resource"],
        cwd=ROOT,
        check=True,
    )
    # The floor: an echo function on the same runtime (functions/github-webhook/examples).
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--quiet", "-p", "github-webhook",
         "--example", "hello_runtime"],
        cwd=ROOT,
        check=True,
    )
    size_mb = BINARY.stat().st_size / 1e6

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/tools/moto_launcher.py"), str(port)],
        env={**os.environ, **AWS_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    receiver = Receiver()
    try:
        wait_for_port(port, moto, "moto")
        endpoint = f"http://127.0.0.1:{port}"
        s3 = client("s3", endpoint)

        floor = cold_starts(args.starts, FLOOR, {"AWS_ENDPOINT_URL": endpoint})
        starts = cold_starts(args.starts, BINARY, {"AWS_ENDPOINT_URL": endpoint})
        print(f"release binary (stripped): {size_mb:.2f} MB  (target < 12 MB)")
        print(
            f"cold start to first /next: median {statistics.median(starts):.2f} ms, "
            f"p90 {statistics.quantiles(starts, n=10)[-1]:.2f} ms over {len(starts)} starts  (target < 25 ms)"
        )
        print(
            f"  floor (an echo function on the same runtime): median {statistics.median(floor):.2f} ms; "
            f"ratio {statistics.median(starts) / statistics.median(floor):.2f}  (target <= 2)"
        )

        print(f"\nCreate handler time ({args.creates} Creates per size, one process per size):")
        print(f"{'flavors':>8} {'first':>9} {'median':>9} {'p90':>9} {'peak RSS':>10} {'S3 objects':>11}")
        for flavors in (5, 50, 500):
            bucket = f"bench-{uuid.uuid4().hex[:10]}"
            s3.create_bucket(Bucket=bucket)
            api = RuntimeApi()
            proc = start_function(api, BINARY, {"AWS_ENDPOINT_URL": endpoint})
            try:
                first = api.invoke(create_event(receiver, bucket, flavors)) * 1000
                objects = s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
                warm = [
                    api.invoke(create_event(receiver, bucket, flavors)) * 1000
                    for _ in range(args.creates)
                ]
                rss = peak_rss_mb(proc.pid)
            finally:
                stop(proc)
                api.close()
            print(
                f"{flavors:>8} {first:>7.2f}ms {statistics.median(warm):>7.2f}ms "
                f"{statistics.quantiles(warm, n=10)[-1]:>7.2f}ms {rss:>8.1f}MB {objects:>11}"
            )
        print("\ntargets for 500 flavors: median < 50 ms, peak RSS < 40 MB, S3 writes not growing with flavors")
        bad = [r for r in receiver.requests if b'"SUCCESS"' not in r["raw"]]
        if bad:
            raise SystemExit(f"{len(bad)} Creates did not succeed: {bad[0]['raw'][:300]!r}")
    finally:
        receiver.close()
        stop(moto)


if __name__ == "__main__":
    main()
