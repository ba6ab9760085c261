"""Lambda's runtime API reduced to what one function process uses, for the benchmarks: the
timestamps are taken where the function talks to it."""

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/functions"))
from conftest import AWS_ENV, stop  # noqa: E402


class RuntimeApi:
    """Lambda's runtime API, reduced to what one function process uses."""

    def __init__(self):
        self.events: "queue.Queue[tuple[str, bytes]]" = queue.Queue()
        self.first_next: float | None = None
        self.handed_out: dict[str, float] = {}
        self.done: "queue.Queue[tuple[str, float, bytes]]" = queue.Queue()
        self.last_response = b""
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
                    "arn:aws:lambda:us-east-1:123456789012:function:bench",
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
        self.last_response = body
        return at - self.handed_out[request_id]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start_function(api: RuntimeApi, binary: Path, extra_env: dict) -> subprocess.Popen:
    env = {
        **os.environ,
        **AWS_ENV,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": binary.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "WARN",
        # The benchmarks' response receivers listen on 127.0.0.1.
        "FLAVOR_CI_LOCAL_RESPONSE_URLS": "loopback",
        **extra_env,
    }
    return subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, start_new_session=True)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cold_starts(n: int, binary: Path, extra_env: dict) -> list[float]:
    """Process start → first request for work, in ms, over `n` starts."""
    times = []
    for _ in range(n):
        api = RuntimeApi()
        t0 = time.perf_counter()
        proc = start_function(api, binary, extra_env)
        while api.first_next is None:
            if proc.poll() is not None:
                raise RuntimeError(f"the function exited with {proc.returncode}")
            time.sleep(0.0002)
        times.append((api.first_next - t0) * 1000)
        stop(proc)
        api.close()
    return times


def start_moto(port: int, env: dict) -> subprocess.Popen:
    """moto on 127.0.0.1:`port` through the tests' launcher (it forwards custom resources)."""
    root = Path(__file__).resolve().parents[1]
    return subprocess.Popen(
        [sys.executable, str(root / "tests/tools/moto_launcher.py"), str(port)],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def create_ci_project(client, endpoint: str, role_name: str) -> None:
    """The CodeBuild project `ci` (GitHub source, no artifacts) and its service role in moto."""
    role = client("iam", endpoint).create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client("codebuild", endpoint).create_project(
        name="ci", source={"type": "GITHUB", "location": "https://github.com/acme/x.git"},
        artifacts={"type": "NO_ARTIFACTS"}, serviceRole=role,
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                     "computeType": "BUILD_GENERAL1_SMALL"},
    )
