"""A flood against the webhook: 2,000 unsigned or badly signed requests and 200 valid, distinct
deliveries, all queued at once and served by several function processes (instances) of the
release binary, against moto (S3, Secrets Manager, CodeBuild) and the GitHub API stand-in.

Checks and prints, from one run:
- every valid delivery started exactly one batch (200 distinct batch ids, 200 batches in
  CodeBuild), every bad request was refused with 401;
- how many times Secrets Manager was read (GetSecretValue, counted by a proxy in front of moto):
  bounded by the instances, not by the requests;
- the handler time of refusals and of valid deliveries (event handed out → response).

Usage: .venv/bin/python benches/webhook_flood.py [--bad 2000] [--valid 200] [--instances 4]
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import queue
import random
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
sys.path.insert(0, str(ROOT / "tests/tools"))
sys.path.insert(0, str(ROOT / "benches"))
from conftest import AWS_ENV, client, free_port, stop, wait_for_port  # noqa: E402
from github_api import GitHubApi, flavor_files  # noqa: E402
from runtime_api import RuntimeApi, create_ci_project, start_function, start_moto  # noqa: E402

BINARY = ROOT / "target/release/github-webhook"
SECRET = "flood-secret"
BUCKET = "flood-webhook"
ROOT_PREFIX = "flavor-ci/flood-0123456789ab/Buildspecs/"


class CountingProxy:
    """Forwards every request to moto and counts Secrets Manager reads."""

    def __init__(self, upstream_port: int):
        self.reads = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("X-Amz-Target", "").endswith("GetSecretValue"):
                    with proxy.lock:
                        proxy.reads += 1
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ConcurrentRuntimeApi(RuntimeApi):
    """The runtime API with many events queued at once and answers collected by request id."""

    def submit(self, events: list[dict]) -> list[str]:
        ids = []
        for e in events:
            request_id = str(uuid.uuid4())
            ids.append(request_id)
            self.events.put((request_id, json.dumps(e).encode()))
        return ids

    def collect(self, n: int, timeout: float = 300) -> dict:
        out = {}
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(f"only {len(out)} of {n} answers arrived")
            request_id, at, body = self.done.get(timeout=left)
            out[request_id] = (at - self.handed_out[request_id], body)
        return out


def event(body: bytes, signature: dict) -> dict:
    return {
        "version": "2.0",
        "requestContext": {"http": {"method": "POST", "path": "/"}, "timeEpoch": 1795168800000},
        "headers": {
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": str(uuid.uuid4()),
            **signature,
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def sign(body: bytes, secret: str = SECRET) -> dict:
    return {"x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def bad_signature(body: bytes, i: int) -> dict:
    kind = i % 4
    if kind == 0:
        return {}  # unsigned
    if kind == 1:
        return sign(body, "not-the-secret")  # wrong secret: the expensive kind
    if kind == 2:
        return {"x-hub-signature-256": "sha256=" + "zz" * 32}  # malformed
    return {"x-hub-signature": "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()}


def p90(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10)[-1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bad", type=int, default=2000)
    parser.add_argument("--valid", type=int, default=200)
    parser.add_argument("--instances", type=int, default=4)
    args = parser.parse_args()

    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "-p", "github-webhook"],
                   cwd=ROOT, check=True)
    port = free_port()
    moto = start_moto(port, AWS_ENV)
    github = GitHubApi()
    procs = []
    try:
        wait_for_port(port, moto, "moto")
        endpoint = f"http://127.0.0.1:{port}"
        proxy = CountingProxy(port)
        s3 = client("s3", endpoint)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        settings_key = f"{ROOT_PREFIX}settings/flood.json"
        s3.put_object(Bucket=BUCKET, Key=settings_key, Body=b"{}")
        client("secretsmanager", endpoint).create_secret(Name="flood/webhook", SecretString=SECRET)
        create_ci_project(client, endpoint, "flood")
        repo = "acme/flood"
        commit, tree = github.add_commit(repo, flavor_files(20))
        env = {
            "AWS_ENDPOINT_URL": proxy.url,
            "FLAVOR_CI_BUCKET": BUCKET,
            "FLAVOR_CI_ROOT": ROOT_PREFIX,
            "FLAVOR_CI_SETTINGS_KEY": settings_key,
            "WEBHOOK_SECRET_ID": "flood/webhook",
            "GITHUB_API_URL": github.url,
            "GITHUB_REPOSITORY": repo,
            "CI_PROJECT": "ci",
        }

        def body() -> bytes:
            return json.dumps({
                "ref": "refs/heads/main", "before": "1" * 40, "after": commit,
                "created": False, "deleted": False, "forced": False,
                "commits": [{"id": commit, "modified": ["flavors/flavor-0001/Dockerfile"]}],
                "head_commit": {"id": commit, "tree_id": tree}, "repository": {"full_name": repo},
                "compare": f"https://github.com/{repo}/compare/{uuid.uuid4()}",
            }).encode()

        valid = [event(b, sign(b)) for b in (body() for _ in range(args.valid))]
        bad = []
        for i in range(args.bad):
            b = body()
            bad.append(event(b, bad_signature(b, i)))
        tagged = [("valid", e) for e in valid] + [("bad", e) for e in bad]
        random.Random(7).shuffle(tagged)

        api = ConcurrentRuntimeApi()
        procs = [start_function(api, BINARY, env) for _ in range(args.instances)]
        start = time.perf_counter()
        ids = api.submit([e for _, e in tagged])
        answers = api.collect(len(ids))
        wall = time.perf_counter() - start

        times = {"valid": [], "bad": []}
        statuses = {"valid": {}, "bad": {}}
        batch_ids = set()
        for (kind, _), request_id in zip(tagged, ids):
            took, raw = answers[request_id]
            response = json.loads(raw)
            status = response["statusCode"]
            statuses[kind][status] = statuses[kind].get(status, 0) + 1
            times[kind].append(took * 1000)
            if kind == "valid" and status == 200:
                batch_ids.add(json.loads(response["body"])["batchBuildId"])
        batches = len(client("codebuild", endpoint).list_build_batches_for_project(projectName="ci")["ids"])

        print(f"{args.bad} bad and {args.valid} valid requests, queued at once, {args.instances} instances, "
              f"{wall:.1f} s in all")
        print(f"valid: answers {statuses['valid']}; {len(batch_ids)} distinct batch ids; {batches} batches in CodeBuild")
        print(f"bad:   answers {statuses['bad']}")
        print(f"Secrets Manager GetSecretValue calls: {proxy.reads}")
        print(f"handler time, refusals: median {statistics.median(times['bad']):.3f} ms, "
              f"p90 {p90(times['bad']):.3f} ms")
        print(f"handler time, valid deliveries: median {statistics.median(times['valid']):.2f} ms, "
              f"p90 {p90(times['valid']):.2f} ms")
        ok = (statuses["valid"] == {200: args.valid} and len(batch_ids) == args.valid
              and batches == args.valid and statuses["bad"] == {401: args.bad}
              and proxy.reads <= 2 * args.instances)
        print("PASS" if ok else "FAIL",
              f"every valid delivery started once, every bad one refused, Secrets Manager read "
              f"at most twice per instance ({2 * args.instances})")
        proxy.close()
        api.close()
        return 0 if ok else 1
    finally:
        for p in procs:
            stop(p)
        github.close()
        stop(moto)


if __name__ == "__main__":
    sys.exit(main())
