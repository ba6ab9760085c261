"""Real local servers for the function tests, all on 127.0.0.1 and free ports:

- moto (through tests/tools/moto_launcher.py) for S3 and CloudFormation;
- a TCP gateway in front of moto that can pass, stall or refuse connections, so a test can make
  S3 slow or unavailable for the function;
- an HTTP receiver that records what arrives at a ResponseURL and answers as a test scripts;
- `cargo lambda watch`, the Lambda runtime API emulator, running the real function binaries;
- a stand-in for GitHub's REST API (tests/tools/github_api.py) for the webhook.

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
from github_api import GitHubApi  # noqa: E402
from response_receiver import Receiver  # noqa: E402
from webhook_events import EXAMPLE_SECRET, add_example  # noqa: E402

VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"
FUNCTION = "buildspec-resource"
# The one repository the webhook under test builds; every test pushes its own commits to it.
WEBHOOK_REPOSITORY = "acme/slc"

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

    def __init__(self, port: int, proc: subprocess.Popen, log: Path, function: str = FUNCTION):
        self.port = port
        self.proc = proc
        self.log = log
        self.function = function

    def invoke(self, event, timeout: float = 120) -> tuple[int, bytes]:
        data = event if isinstance(event, bytes) else json.dumps(event).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/{self.function}/invocations",
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


def cli_generate(flavors, settings: dict, tmp: Path) -> Path:
    """Runs `flavor-ci generate` on a repository with these flavors and settings; returns the
    output directory."""
    repo = tmp / "repo"
    for name in flavors:
        (repo / "flavors" / name).mkdir(parents=True)
    (repo / "flavor-ci.yaml").write_text(json.dumps(settings))
    subprocess.run(
        ["cargo", "run", "--quiet", "--locked", "-p", "flavor-ci-cli", "--features", "aws", "--", "generate",
         "--repo", str(repo), "--out", str(tmp / "out")],
        cwd=ROOT, check=True,
    )
    return tmp / "out"


def codebuild_project(endpoint: str, name: str, role_name: str = "codebuild-ci") -> None:
    """Creates a CodeBuild project for acme/slc in moto, and its service role if missing."""
    iam = client("iam", endpoint)
    try:
        role = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client("codebuild", endpoint).create_project(
        name=name,
        source={"type": "GITHUB", "location": "https://github.com/acme/slc.git"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                     "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole=role,
    )


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


def start_watch(port: int, gateway: Gateway, log: Path, *extra: str,
                function: str = FUNCTION, features: str = "fault-injection",
                env: dict | None = None):
    env = {
        **os.environ,
        **AWS_ENV,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_ENDPOINT_URL": gateway.url,
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "RUST_BACKTRACE": "0",
        # The response receiver listens on 127.0.0.1; deployed functions answer only to
        # CloudFormation's response buckets.
        "FLAVOR_CI_LOCAL_RESPONSE_URLS": "loopback",
        # The sample events name stacks no CloudFormation knows, so Deletes cannot be confirmed
        # with it; the `watch_guarded` instance keeps the check and is tested against moto.
        "FLAVOR_CI_CONFIRM_DELETES": "off",
        **(env or {}),
    }
    feature_args = ["--features", features] if features else []
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "cargo", "lambda", "watch", "--ignore-changes", "--locked",
                "-A", "127.0.0.1", "-P", str(port),
                "-p", function, *feature_args, *extra,
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
    return Watch(port, proc, log, function)


@pytest.fixture(scope="session")
def watch(ports, gateway, tmp_path_factory):
    w = start_watch(
        ports["watch"], gateway, tmp_path_factory.mktemp("watch") / "watch.log",
        "--concurrency", "2",
    )
    yield w
    stop(w.proc)


@pytest.fixture(scope="session")
def watch_guarded(gateway, tmp_path_factory):
    """The function as deployed: every Delete is confirmed with CloudFormation (moto)."""
    w = start_watch(
        free_port(), gateway, tmp_path_factory.mktemp("watch-guarded") / "watch.log",
        env={"FLAVOR_CI_CONFIRM_DELETES": "on"},
    )
    yield w
    stop(w.proc)


@pytest.fixture(scope="session")
def watch_abort(gateway, tmp_path_factory):
    """The function built with `panic = "abort"` (profile panic-abort), in a target directory of
    its own: tests/run.sh builds it there beside the other tests."""
    w = start_watch(
        free_port(), gateway, tmp_path_factory.mktemp("watch-abort") / "watch.log",
        "--profile", "panic-abort",
        env={"CARGO_TARGET_DIR": str(ROOT / "target" / "abort")},
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


# -- the GitHub webhook ------------------------------------------------------------------------

WEBHOOK = "github-webhook"
WEBHOOK_SECRET = EXAMPLE_SECRET  # the events in events/ are signed with it
GITHUB_TOKEN = "ghs_flavorcitoken1"
WEBHOOK_BUCKET = "flavor-ci-webhook-specs"
WEBHOOK_ROOT = "flavor-ci/ci-0123456789ab/Buildspecs/"
WEBHOOK_SETTINGS = {
    "flavors": {"standard": {"depend-on": ["base"]}},
    "batch": {"max-builds": 600},
    "release": {"enabled": True, "release-id": "unset", "dry-run": False},
}


class Webhook:
    """The webhook function behind `cargo lambda watch`'s function URL path."""

    def __init__(self, watch: Watch, settings_key: str):
        self.watch = watch
        self.settings_key = settings_key

    def post(self, body: bytes, headers: dict, method: str = "POST", timeout: float = 60):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.watch.port}/lambda-url/{WEBHOOK}/",
            data=body if method != "GET" else None,
            method=method,
            headers=headers,
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")


@pytest.fixture(scope="session")
def github():
    api = GitHubApi(token=GITHUB_TOKEN)
    add_example(api)
    yield api
    api.close()


@pytest.fixture(scope="session")
def webhook(gateway, github, tmp_path_factory):
    sm = client("secretsmanager", gateway.url)
    sm.create_secret(Name="flavor-ci/webhook", SecretString=WEBHOOK_SECRET)
    sm.create_secret(Name="flavor-ci/github-token", SecretString=GITHUB_TOKEN + "\n")
    s3 = client("s3", gateway.url)
    s3.create_bucket(Bucket=WEBHOOK_BUCKET)
    s3.put_bucket_versioning(Bucket=WEBHOOK_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    settings_key = f"{WEBHOOK_ROOT}settings/deployed.json"
    s3.put_object(Bucket=WEBHOOK_BUCKET, Key=settings_key, Body=json.dumps(WEBHOOK_SETTINGS).encode())
    for name in ("ci", "release"):
        codebuild_project(gateway.url, name)
    w = start_watch(
        free_port(), gateway, tmp_path_factory.mktemp("webhook") / "watch.log",
        "--concurrency", "4",
        function=WEBHOOK, features="",
        env={
            "FLAVOR_CI_BUCKET": WEBHOOK_BUCKET,
            "FLAVOR_CI_ROOT": WEBHOOK_ROOT,
            "FLAVOR_CI_SETTINGS_KEY": settings_key,
            "WEBHOOK_SECRET_ID": "flavor-ci/webhook",
            "GITHUB_TOKEN_SECRET_ID": "flavor-ci/github-token",
            "GITHUB_API_URL": github.url,
            "CI_PROJECT": "ci",
            "RELEASE_PROJECT": "release",
            "GITHUB_REPOSITORY": WEBHOOK_REPOSITORY,
            "BRANCH_PATTERNS": "main, master, release/*",
            "TAG_PATTERNS": "v*",
            "IGNORED_PATHS": "docs, **/*.md",
            "STATUS_CONTEXT": "flavor-ci",
            # Short, so the rotation test sees a removed secret stop working.
            "SECRET_CACHE_SECONDS": "2",
            # The runtime at TRACE, where it would log every raw event: the logs must still hold
            # no signature and no body.
            "RUST_LOG": "info,lambda_runtime=trace",
        },
    )
    yield Webhook(w, settings_key)
    stop(w.proc)


# -- the build-events function -----------------------------------------------------------------

BUILD_EVENTS = "build-events"


def start_build_events(gateway, github, tmp_path_factory, topic: str, **extra: str):
    return start_watch(
        free_port(), gateway, tmp_path_factory.mktemp("build-events") / "watch.log",
        "--concurrency", "4",
        function=BUILD_EVENTS, features="",
        env={
            "FLAVOR_CI_BUCKET": WEBHOOK_BUCKET,
            "FLAVOR_CI_ROOT": WEBHOOK_ROOT,
            "GITHUB_TOKEN_SECRET_ID": "flavor-ci/github-token",
            "GITHUB_API_URL": github.url,
            "CI_PROJECT": "ci",
            "RELEASE_PROJECT": "release",
            "GITHUB_REPOSITORY": WEBHOOK_REPOSITORY,
            "STATUS_CONTEXT": "flavor-ci",
            "NOTIFICATION_TOPIC_ARN": topic,
            # The reconciler retries a report that did not go out at once, not after a minute.
            "REPORTING_GRACE_SECONDS": "0",
            **extra,
        },
    )


@pytest.fixture(scope="session")
def build_events(gateway, github, webhook, tmp_path_factory):
    """The build-events function beside the webhook: the same bucket, root, projects and token."""
    topic = client("sns", gateway.url).create_topic(Name="flavor-ci-failures")["TopicArn"]
    w = start_build_events(gateway, github, tmp_path_factory, topic)
    w.topic = topic
    yield w
    stop(w.proc)


@pytest.fixture(scope="session")
def build_events_failures_only(gateway, github, webhook, tmp_path_factory):
    """The same, deployed with FlavorStatuses=failures."""
    topic = client("sns", gateway.url).create_topic(Name="flavor-ci-failures")["TopicArn"]
    w = start_build_events(gateway, github, tmp_path_factory, topic, FLAVOR_STATUSES="failures")
    yield w
    stop(w.proc)
