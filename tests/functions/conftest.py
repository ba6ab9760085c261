"""Real local servers for the function tests, all on 127.0.0.1 and free ports:

- moto (through tests/tools/moto_launcher.py) for S3 and CloudFormation;
- a TCP gateway in front of moto that can pass, stall or refuse connections, so a test can make
  S3 slow or unavailable for the function;
- an HTTP receiver that records what arrives at a ResponseURL and answers as a test scripts;
- `cargo lambda watch`, the Lambda runtime API emulator, running the real function binary.

Every process started here is stopped at the end of the session.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/tools"))
from response_receiver import Receiver  # noqa: E402

VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"
FUNCTION = "buildspec-resource"
AWS_ENV = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Gateway:
    """A TCP forwarder to moto whose mode a test switches: pass, stall or refuse."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.mode = "pass"
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.live: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        with self.lock:
            self.mode = mode
            for s in list(self.live):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.live.clear()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                mode = self.mode
                if mode == "refuse":
                    client.close()
                    continue
                self.live.add(client)
            if mode == "pass":
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                except OSError:
                    client.close()
                    continue
                with self.lock:
                    self.live.add(upstream)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
            # stall: keep the connection open and never answer

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.set_mode("refuse")
        self.sock.close()


class Watch:
    """`cargo lambda watch` running the function; `invoke` posts one event and waits."""

    def __init__(self, port: int, proc: subprocess.Popen, log: Path):
        self.port = port
        self.proc = proc
        self.log = log

    def invoke(self, event, timeout: float = 120) -> tuple[int, bytes]:
        data = event if isinstance(event, bytes) else json.dumps(event).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/{FUNCTION}/invocations",
            data=data,
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def ports():
    return {"moto": free_port(), "watch": free_port()}


@pytest.fixture(scope="session")
def moto(ports, tmp_path_factory):
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {
        **os.environ,
        **AWS_ENV,
        "LAMBDA_FORWARD_URL": f"http://127.0.0.1:{ports['watch']}/2015-03-31/functions/{{name}}/invocations",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/tools/moto_launcher.py"), str(ports["moto"])],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(ports["moto"], proc, "moto")
        yield f"http://127.0.0.1:{ports['moto']}"
    finally:
        stop(proc)


def client(service: str, endpoint: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


@pytest.fixture(scope="session")
def s3(moto):
    return client("s3", moto)


@pytest.fixture(scope="session")
def gateway(ports, moto):
    g = Gateway(ports["moto"])
    yield g
    g.close()


@pytest.fixture(autouse=True)
def gateway_passes(request):
    """Every test starts with S3 reachable."""
    if "gateway" in request.fixturenames:
        request.getfixturevalue("gateway").set_mode("pass")
    yield


@pytest.fixture(scope="session")
def receiver():
    r = Receiver()
    yield r
    r.close()


def start_watch(port: int, gateway: Gateway, log: Path, *extra: str):
    env = {
        **os.environ,
        **AWS_ENV,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_ENDPOINT_URL": gateway.url,
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "RUST_BACKTRACE": "0",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "cargo", "lambda", "watch", "--ignore-changes", "--locked",
                "-A", "127.0.0.1", "-P", str(port),
                "-p", FUNCTION, "--features", "fault-injection", *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, proc, "cargo lambda watch")
    except Exception:
        stop(proc)
        raise
    return Watch(port, proc, log)


@pytest.fixture(scope="session")
def watch(ports, gateway, tmp_path_factory):
    w = start_watch(
        ports["watch"], gateway, tmp_path_factory.mktemp("watch") / "watch.log",
        "--concurrency", "2",
    )
    yield w
    stop(w.proc)


@pytest.fixture(scope="session")
def watch_abort(gateway, tmp_path_factory):
    """The function built with `panic = "abort"` (profile panic-abort)."""
    w = start_watch(
        free_port(), gateway, tmp_path_factory.mktemp("watch-abort") / "watch.log",
        "--profile", "panic-abort",
    )
    yield w
    stop(w.proc)


@pytest.fixture
def bucket(s3):
    """A fresh versioned bucket per test."""
    name = f"specs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name
