"""Benchmarks the buildspec-resource function's release binary against local moto.

Prints, from one run:
- the stripped release binary's size;
- cold start: process start → first request for work (`GET …/invocation/next`), over many starts;
- Create handler time for 5, 50 and 500 flavors: from handing the event to the function until
  its invocation response, which includes the S3 writes and the response PUT; the first Create
  of a process (clients and connections are set up) is reported apart from the warm median;
- the process's peak RSS (VmHWM) after those Creates, and the S3 objects one Create writes.

A minimal runtime API (next / response / error) is served here so that the timestamps are
taken where the function talks to it.

Usage: .venv/bin/python benches/buildspec_resource.py [--starts 40] [--creates 40]
"""

import argparse
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/functions"))
from conftest import AWS_ENV, Receiver, client, free_port, stop, wait_for_port  # noqa: E402

BINARY = ROOT / "target/release/buildspec-resource"


class RuntimeApi:
    """Lambda's runtime API, reduced to what one function process uses."""

    def __init__(self):
        self.events: "queue.Queue[tuple[str, bytes]]" = queue.Queue()
        self.first_next: float | None = None
        self.handed_out: dict[str, float] = {}
        self.done: "queue.Queue[tuple[str, float, bytes]]" = queue.Queue()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Headers and body go out as separate writes; without this, Nagle's algorithm
                # and the client's delayed ACK hold the body back ~40 ms on a kept-alive connection.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self):
                if api.first_next is None:
                    api.first_next = time.perf_counter()
                request_id, body = api.events.get()
                api.handed_out[request_id] = time.perf_counter()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                deadline = int(time.time() * 1000) + 300_000
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:buildspec-resource",
                )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                at = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                parts = self.path.strip("/").split("/")
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if len(parts) >= 5 and parts[2] == "invocation":
                    api.done.put((parts[3], at, body))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event: dict, timeout: float = 60) -> float:
        request_id = str(uuid.uuid4())
        self.events.put((request_id, json.dumps(event).encode()))
        got_id, at, body = self.done.get(timeout=timeout)
        assert got_id == request_id, (got_id, request_id)
        return at - self.handed_out[request_id]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start_function(api: RuntimeApi, endpoint: str) -> subprocess.Popen:
    env = {
        **os.environ,
        **AWS_ENV,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "buildspec-resource",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "WARN",
        "AWS_ENDPOINT_URL": endpoint,
    }
    return subprocess.Popen([str(BINARY)], env=env, stdout=subprocess.DEVNULL, start_new_session=True)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cold_starts(n: int, endpoint: str) -> list[float]:
    times = []
    for _ in range(n):
        api = RuntimeApi()
        t0 = time.perf_counter()
        proc = start_function(api, endpoint)
        while api.first_next is None:
            if proc.poll() is not None:
                raise RuntimeError(f"the function exited with {proc.returncode}")
            time.sleep(0.0002)
        times.append((api.first_next - t0) * 1000)
        stop(proc)
        api.close()
    return times


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

        starts = cold_starts(args.starts, endpoint)
        print(f"release binary (stripped): {size_mb:.2f} MB  (target < 12 MB)")
        print(
            f"cold start to first /next: median {statistics.median(starts):.2f} ms, "
            f"p90 {statistics.quantiles(starts, n=10)[-1]:.2f} ms over {len(starts)} starts  (target < 25 ms)"
        )

        print(f"\nCreate handler time ({args.creates} Creates per size, one process per size):")
        print(f"{'flavors':>8} {'first':>9} {'median':>9} {'p90':>9} {'peak RSS':>10} {'S3 objects':>11}")
        for flavors in (5, 50, 500):
            bucket = f"bench-{uuid.uuid4().hex[:10]}"
            s3.create_bucket(Bucket=bucket)
            api = RuntimeApi()
            proc = start_function(api, endpoint)
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
