"""A local stand-in for the GitHub REST API's git database: commits, trees and blobs, with
GitHub's shapes, object ids computed as git computes them, token checks, and scripted failures
(rate limits, server errors, stalls). With an `App`, it checks what GitHub checks of a GitHub
App: the JWT (RS256 signature against the App's public key, `iss`, `exp - iat` at most ten
minutes), installation tokens that expire, and check runs within GitHub's rules.

    api = GitHubApi(token="t"); commit, tree = api.add_commit("acme/slc", {
        "flavors/base/Dockerfile": "FROM x",
        "flavors/py": ("link", "../ext/py"),
        "ext": ("submodule", "aaaa..."),
    })
"""

import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_sha(kind: str, data: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()


MAX_OUTPUT = 65535
CHECK_STATUSES = ("queued", "in_progress", "completed")
CONCLUSIONS = ("success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required")


class App:
    """A GitHub App installed on repositories: its id, its key pair, tokens it issued."""

    def __init__(self, app_id: int = 12345, installation: int = 42, token_life: int = 3600):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.id = app_id
        self.installation = installation
        self.token_life = token_life
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = key.public_key()
        # What GitHub hands out: PKCS#1 PEM.
        self.pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()).decode()
        self.pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()).decode()
        self.tokens: dict[str, dict] = {}  # token -> {"expires": epoch, "permissions", "repositories"}
        self.jwts_accepted = 0
        self.jwts_refused: list[str] = []
        self.events = ["push", "pull_request", "check_run", "check_suite", "merge_group"]
        # The App's webhook deliveries, newest first, as GET /app/hook/deliveries lists them, and
        # the ids POST .../attempts was asked for.
        self.hook_deliveries: list[dict] = []
        self.redelivered: list[int] = []
        self.permissions = {"checks": "write", "contents": "read", "pull_requests": "read", "metadata": "read"}

    def verify_jwt(self, token: str) -> str | None:
        """None when GitHub would accept `token` as this App's JWT; else why not."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(part: str) -> bytes:
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        try:
            header, claims, signature = token.split(".")
            head = json.loads(b64(header))
            body = json.loads(b64(claims))
            self.public_key.verify(b64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return "A JSON web token could not be decoded"
        now = time.time()
        if head.get("alg") != "RS256":
            return "'alg' must be RS256"
        if str(body.get("iss")) != str(self.id):
            return "'Issuer' claim ('iss') must be an Integer"
        iat, exp = body.get("iat"), body.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        if exp < now or iat > now + 60:
            return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
        return None

    def issue(self, body: dict) -> dict:
        token = f"ghs_{uuid.uuid4().hex}{uuid.uuid4().hex}"
        expires = time.time() + self.token_life
        self.tokens[token] = {"expires": expires, "permissions": body.get("permissions"),
                              "repositories": body.get("repositories")}
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        return {"token": token, "expires_at": at, "permissions": body.get("permissions") or self.permissions,
                "repository_selection": "selected"}

    def token_ok(self, authorization: str | None) -> bool:
        token = (authorization or "").removeprefix("Bearer ")
        issued = self.tokens.get(token)
        return issued is not None and issued["expires"] > time.time()

    def revoke_all(self) -> None:
        """Every token issued so far stops working (as when GitHub revokes them)."""
        for t in self.tokens.values():
            t["expires"] = 0


def _query(path: str) -> dict:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(path.partition("?")[2]))


def check_run_problem(body: dict, creating: bool) -> str | None:
    """Why GitHub would answer 422 to this check run, or None."""
    if creating and (not body.get("name") or not body.get("head_sha")):
        return "name and head_sha are required"
    status = body.get("status")
    conclusion = body.get("conclusion")
    if status is not None and status not in CHECK_STATUSES:
        return f"status {status!r} is not included in the list"
    if conclusion is not None and conclusion not in CONCLUSIONS:
        return f"conclusion {conclusion!r} is not included in the list"
    if conclusion is not None and status not in (None, "completed"):
        return "conclusion can be set only with status completed"
    if status == "completed" and conclusion is None:
        return "conclusion is required when status is completed"
    output = body.get("output") or {}
    for field in ("summary", "text"):
        if len(output.get(field) or "") > MAX_OUTPUT:
            return f"output.{field} is too long (maximum is {MAX_OUTPUT} characters)"
    if len(output.get("annotations") or []) > 50:
        return "only 50 annotations are allowed per request"
    actions = body.get("actions") or []
    if len(actions) > 3:
        return "only 3 actions are allowed"
    for a in actions:
        for field, limit in (("label", 20), ("description", 40), ("identifier", 20)):
            if not a.get(field) or len(a[field]) > limit:
                return f"actions.{field} is too long (maximum is {limit} characters)"
    return None


class GitHubApi:
    def __init__(self, token: str | None = None, port: int = 0, app: App | None = None):
        self.token = token
        self.app = app
        # Check runs by id, each with its writes in order: [{"method", ...body}].
        self.check_runs: dict[int, dict] = {}
        self.check_run_writes: list[tuple[str, int, dict]] = []
        # Scripted answers for the next check-run writes: 403, 500, ...
        self.check_failures: list[int] = []
        # Each user's permission on the repository.
        self.collaborators: dict[str, str] = {}
        self.objects: dict[str, dict] = {}  # sha -> {"kind": ..., ...}
        self.commits: dict[tuple[str, str], str] = {}  # (repo, commit) -> tree
        self.messages: dict[tuple[str, str], str] = {}  # (repo, commit) -> message
        self.requests: list[str] = []
        self.failures: list[str] = []  # consumed one per request: rate-limit, 429, 500, stall
        # What GET /repos/{owner}/{repo} reports about the token: a classic token's scopes
        # (X-OAuth-Scopes; None for a fine-grained one) and whether it may push.
        self.token_scopes: str | None = None
        self.token_can_push = False
        # Real git repositories the compare API is answered from: repo -> checkout path.
        self.git_repos: dict[str, str] = {}
        # GitHub lists at most this many changed files in a comparison.
        self.compare_file_cap = 300
        # A scripted answer for the next comparisons: (status, message), e.g. a diff too large.
        self.compare_failure: tuple[int, str] | None = None
        # Comparisons given as lists of changed files: (repo, base, head) -> paths.
        self.compares: dict[tuple[str, str, str], list[str]] = {}
        # Refs for GET /repos/{repo}/git/ref/{ref}: (repo, "heads/main") -> commit id.
        self.refs: dict[tuple[str, str], str] = {}
        self.default_branch = "main"
        # The numeric id GET /repos/{owner}/{repo} answers (deliveries name repositories by it).
        self.repository_id = 1296269
        # Commit statuses posted: {"repo", "sha", "state", "context", "description", "target_url"}.
        self.statuses: list[dict] = []
        # Scripted answers for the next status posts, consumed one per post: 500, 403, 429, ...
        self.status_failures: list[int] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args):
                pass

            def do_GET(self):
                status, headers, body = api.answer(self.path, self.headers.get("Authorization"))
                if status == 0:
                    time.sleep(30)
                    return
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_PATCH(self):
                self.do_POST("PATCH")

            def do_POST(self, method: str = "POST"):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, headers, body = api.post(self.path, self.headers.get("Authorization"), raw, method)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def authorized(self, authorization: str | None) -> bool:
        """Whether a repository call may be made with this Authorization header."""
        if self.app is not None:
            return self.app.token_ok(authorization)
        return self.token is None or authorization == f"Bearer {self.token}"

    def hook_call(self, method: str, parts: list, query: dict):
        """GET /app/hook/deliveries (pages of per_page, the next one in a Link header) and
        POST /app/hook/deliveries/{id}/attempts."""
        app = self.app
        if method == "POST" and len(parts) == 5 and parts[4] == "attempts":
            delivery = int(parts[3])
            if not any(d["id"] == delivery for d in app.hook_deliveries):
                return 404, {}, {"message": "Not Found"}
            app.redelivered.append(delivery)
            return 202, {}, {}
        if method != "GET" or len(parts) != 3:
            return 404, {}, {"message": "Not Found"}
        per_page = int(query.get("per_page", "30"))
        start = int(query.get("cursor", "0"))
        page = app.hook_deliveries[start:start + per_page]
        headers = {}
        if start + per_page < len(app.hook_deliveries):
            headers["Link"] = (f'<{self.url}/app/hook/deliveries?per_page={per_page}&cursor={start + per_page}>; '
                               f'rel="next"')
        return 200, headers, page

    def app_call(self, method: str, parts: list, authorization: str | None, raw: bytes, query: dict | None = None):
        """The App's own endpoints, authenticated with its JWT; None for other paths."""
        app = self.app
        jwt_path = (parts[:1] == ["app"]) or (len(parts) == 4 and parts[0] == "repos" and parts[3] == "installation")
        if app is None or not jwt_path:
            return None
        with self.lock:
            self.requests.append(f"{method} /{'/'.join(parts)}")
        problem = app.verify_jwt((authorization or "").removeprefix("Bearer "))
        if problem:
            app.jwts_refused.append(problem)
            return 401, {}, {"message": problem, "documentation_url": "https://docs.github.com/rest"}
        app.jwts_accepted += 1
        if parts == ["app"]:
            return 200, {}, {"id": app.id, "slug": "flavor-ci-test", "name": "flavor-ci (test)",
                             "permissions": app.permissions, "events": app.events}
        if parts[:3] == ["app", "hook", "deliveries"]:
            return self.hook_call(method, parts, query or {})
        if parts[0] == "repos":
            return 200, {}, {"id": app.installation, "app_id": app.id, "permissions": app.permissions,
                             "events": app.events, "repository_selection": "selected"}
        if parts[:2] != ["app", "installations"] or parts[-1] != "access_tokens" or method != "POST":
            return 404, {}, {"message": "Not Found"}
        if parts[2] != str(app.installation):
            return 404, {}, {"message": "Not Found"}
        body = json.loads(raw or b"{}")
        return 201, {}, app.issue(body)

    def check_run(self, method: str, parts: list, authorization: str | None, raw: bytes):
        """POST /repos/{o}/{r}/check-runs and PATCH /repos/{o}/{r}/check-runs/{id}."""
        if self.app is None:
            return 403, {}, {"message": "You must authenticate via a GitHub App."}
        if not self.app.token_ok(authorization):
            return 401, {}, {"message": "Bad credentials"}
        with self.lock:
            failure = self.check_failures.pop(0) if self.check_failures else None
        if failure == 403:
            return 403, {}, {"message": "Resource not accessible by integration"}
        if failure is not None:
            return failure, {}, {"message": "Server Error"}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {}, {"message": "Problems parsing JSON"}
        creating = method == "POST"
        problem = check_run_problem(body, creating)
        if problem:
            return 422, {}, {"message": "Invalid request.", "errors": [problem]}
        with self.lock:
            if creating:
                run_id = len(self.check_runs) + 1
                self.check_runs[run_id] = {"id": run_id, "repo": f"{parts[1]}/{parts[2]}", **body}
            else:
                run_id = int(parts[4])
                if run_id not in self.check_runs:
                    return 404, {}, {"message": "Not Found"}
                self.check_runs[run_id].update(body)
            self.check_run_writes.append((method, run_id, body))
            return (201 if creating else 200), {}, dict(self.check_runs[run_id])

    def latest_checks(self, sha: str) -> dict:
        """The newest check run per name on `sha`, as the Checks tab shows them."""
        with self.lock:
            latest = {}
            for run_id in sorted(self.check_runs):
                run = self.check_runs[run_id]
                if run["head_sha"] == sha:
                    latest[run["name"]] = run
            return latest

    def post(self, path: str, authorization: str | None, raw: bytes, method: str = "POST"):
        """POST /repos/{owner}/{repo}/statuses/{sha}, check runs and the App's calls, as GitHub
        answers them."""
        parts = path.split("?")[0].strip("/").split("/")
        app = self.app_call(method, parts, authorization, raw, _query(path))
        if app is not None:
            return app
        if len(parts) in (4, 5) and parts[0] == "repos" and parts[3] == "check-runs":
            with self.lock:
                self.requests.append(f"{method} {path}")
            return self.check_run(method, parts, authorization, raw)
        if len(parts) != 5 or parts[0] != "repos" or parts[3] != "statuses":
            return 404, {}, {"message": "Not Found"}
        if not self.authorized(authorization):
            return 401, {}, {"message": "Bad credentials"}
        with self.lock:
            failure = self.status_failures.pop(0) if self.status_failures else None
        if failure == 403:
            return 403, {}, {"message": "Resource not accessible by personal access token"}
        if failure == 429:
            return 429, {"Retry-After": "1"}, {"message": "API rate limit exceeded"}
        if failure is not None:
            return failure, {}, {"message": "Server Error"}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {}, {"message": "Problems parsing JSON"}
        if body.get("state") not in ("pending", "success", "failure", "error"):
            return 422, {}, {"message": "Validation Failed"}
        if len(body.get("description") or "") > 140:
            return 422, {}, {"message": "description is too long (maximum is 140 characters)"}
        entry = {"repo": f"{parts[1]}/{parts[2]}", "sha": parts[4], **body}
        with self.lock:
            self.statuses.append(entry)
        return 201, {}, {"id": len(self.statuses), **body}

    def latest_statuses(self, sha: str) -> dict:
        """The newest status per context on `sha`, as GitHub shows a commit's checks."""
        with self.lock:
            latest = {}
            for s in self.statuses:
                if s["sha"] == sha:
                    latest[s["context"]] = s
            return latest

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -- content ---------------------------------------------------------------------------

    def _blob(self, data: bytes) -> str:
        sha = git_sha("blob", data)
        self.objects[sha] = {"kind": "blob", "data": data}
        return sha

    def _tree(self, node: dict) -> str:
        entries = []
        raw = b""
        for name in sorted(node):
            value = node[name]
            if isinstance(value, dict):
                mode, kind, sha = "040000", "tree", self._tree(value)
            elif isinstance(value, tuple) and value[0] == "link":
                mode, kind, sha = "120000", "blob", self._blob(value[1].encode())
            elif isinstance(value, tuple) and value[0] == "submodule":
                mode, kind, sha = "160000", "commit", value[1]
            else:
                data = value.encode() if isinstance(value, str) else value
                mode, kind, sha = "100644", "blob", self._blob(data)
            entries.append({"path": name, "mode": mode, "type": kind, "sha": sha})
            raw += f"{mode.lstrip('0')} {name}\0".encode() + bytes.fromhex(sha)
        sha = git_sha("tree", raw)
        self.objects[sha] = {"kind": "tree", "entries": entries}
        return sha

    def add_commit(self, repo: str, files: dict, commit: str | None = None,
                   tree_alias: str | None = None) -> tuple[str, str]:
        """Stores a commit whose tree holds `files` (path -> text | ("link", target) |
        ("submodule", sha)); returns (commit id, tree id). `tree_alias` also serves the root
        tree under that id (for recorded payloads that name their own tree)."""
        root: dict = {}
        for path, value in files.items():
            node = root
            *dirs, leaf = path.split("/")
            for d in dirs:
                node = node.setdefault(d, {})
            node[leaf] = value
        with self.lock:
            tree = self._tree(root)
            commit = commit or git_sha("commit", f"tree {tree}\n{time.time_ns()}".encode())
            self.commits[(repo, commit)] = tree
            if tree_alias:
                self.objects[tree_alias] = self.objects[tree]
        return commit, tree

    def add_git_repo(self, repo: str, path) -> None:
        """Answers the compare API for `repo` from the git repository at `path`; its commits are
        served as trees and blobs too (every commit reachable from any ref)."""
        import subprocess

        self.git_repos[repo] = str(path)
        shas = subprocess.run(["git", "-C", str(path), "rev-list", "--all"], check=True,
                              capture_output=True, text=True).stdout.split()
        for sha in shas:
            self.add_commit(repo, _files_at(str(path), sha), commit=sha)
            self.messages[(repo, sha)] = subprocess.run(
                ["git", "-C", str(path), "log", "-1", "--format=%B", sha], check=True,
                capture_output=True, text=True).stdout

    def _compare(self, repo: str, spec: str):
        import subprocess

        if self.compare_failure is not None:
            status, message = self.compare_failure
            return status, {}, {"message": message, "documentation_url": "https://docs.github.com/rest"}
        path = self.git_repos.get(repo)
        base, sep, head = spec.partition("...")
        listed = self.compares.get((repo, base, head))
        if listed is not None:
            return 200, {}, {"status": "ahead", "ahead_by": 1, "behind_by": 0, "total_commits": 1,
                             "commits": [], "files": [{"filename": f, "status": "modified"}
                                                      for f in listed[: self.compare_file_cap]]}
        if path is None or not sep:
            return 404, {}, {"message": "Not Found"}
        out = subprocess.run(["git", "-C", path, "diff", "--name-status", "-z", "-M", f"{base}...{head}"],
                             capture_output=True)
        if out.returncode != 0:
            return 404, {}, {"message": "No common ancestor between the commits."}
        fields = [f.decode() for f in out.stdout.split(b"\0") if f]
        files, i = [], 0
        while i < len(fields):
            status = fields[i]
            if status.startswith("R"):
                files.append({"filename": fields[i + 2], "previous_filename": fields[i + 1], "status": "renamed"})
                i += 3
            else:
                kind = {"A": "added", "D": "removed"}.get(status[0], "modified")
                files.append({"filename": fields[i + 1], "status": kind})
                i += 2
        count = subprocess.run(["git", "-C", path, "rev-list", "--count", f"{base}..{head}"],
                               capture_output=True, text=True).stdout.strip() or "0"
        return 200, {}, {
            "status": "ahead", "ahead_by": int(count), "behind_by": 0, "total_commits": int(count),
            "commits": [], "files": files[: self.compare_file_cap],
        }

    # -- answers ---------------------------------------------------------------------------

    def answer(self, path: str, auth: str | None):
        parts = path.split("?")[0].strip("/").split("/")
        app = self.app_call("GET", parts, auth, b"", _query(path))
        if app is not None:
            return app
        with self.lock:
            self.requests.append(path)
            failure = self.failures.pop(0) if self.failures else None
        if failure == "stall":
            return 0, {}, None
        if failure == "rate-limit":
            reset = int(time.time()) + 600
            return 403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}, {
                "message": "API rate limit exceeded for installation ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            }
        if failure == "429":
            return 429, {"retry-after": "60"}, {"message": "You have exceeded a secondary rate limit."}
        if failure == "500":
            return 500, {}, {"message": "Server Error"}
        if not self.authorized(auth):
            return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        not_found = (404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        if len(parts) == 3 and parts[0] == "repos":
            headers = {} if self.token_scopes is None else {"x-oauth-scopes": self.token_scopes}
            return 200, headers, {
                "id": self.repository_id, "full_name": f"{parts[1]}/{parts[2]}", "private": True, "default_branch": self.default_branch,
                "permissions": {"admin": False, "maintain": False, "push": self.token_can_push,
                                "triage": False, "pull": True},
            }
        if len(parts) >= 7 and parts[0] == "repos" and parts[3] == "git" and parts[4] == "ref":
            name = "/".join(parts[5:])
            sha = self.refs.get((f"{parts[1]}/{parts[2]}", name))
            if sha is None:
                return not_found
            return 200, {}, {"ref": f"refs/{name}", "object": {"type": "commit", "sha": sha}}
        if len(parts) == 6 and parts[0] == "repos" and parts[3] == "collaborators" and parts[5] == "permission":
            permission = self.collaborators.get(parts[4])
            if permission is None:
                return 404, {}, {"message": f"{parts[4]} is not a user"}
            return 200, {}, {"permission": permission, "user": {"login": parts[4]}}
        if len(parts) == 5 and parts[0] == "repos" and parts[3] == "compare":
            return self._compare(f"{parts[1]}/{parts[2]}", parts[4])
        if len(parts) != 6 or parts[0] != "repos" or parts[3] != "git":
            return not_found
        repo, kind, sha = f"{parts[1]}/{parts[2]}", parts[4], parts[5]
        base = f"{self.url}/repos/{repo}/git"
        if kind == "commits":
            tree = self.commits.get((repo, sha))
            if tree is None:
                return not_found
            return 200, {}, {
                "sha": sha, "url": f"{base}/commits/{sha}",
                "tree": {"sha": tree, "url": f"{base}/trees/{tree}"},
                "message": self.messages.get((repo, sha), "commit"), "parents": [],
            }
        obj = self.objects.get(sha)
        if kind == "trees" and obj and obj["kind"] == "tree":
            return 200, {}, {
                "sha": sha, "url": f"{base}/trees/{sha}", "truncated": False,
                "tree": [{**e, "url": f"{base}/{'trees' if e['type'] == 'tree' else 'blobs'}/{e['sha']}"}
                         for e in obj["entries"]],
            }
        if kind == "blobs" and obj and obj["kind"] == "blob":
            encoded = base64.encodebytes(obj["data"]).decode()
            return 200, {}, {
                "sha": sha, "node_id": "B_x", "size": len(obj["data"]),
                "url": f"{base}/blobs/{sha}", "content": encoded, "encoding": "base64",
            }
        return not_found


def _files_at(path: str, sha: str) -> dict:
    """The files of commit `sha` in the git repository at `path`, as add_commit takes them."""
    import subprocess

    listing = subprocess.run(["git", "-C", path, "ls-tree", "-r", "-z", sha], check=True,
                             capture_output=True).stdout
    files = {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, name = entry.split(b"\t", 1)
        mode, _, obj = meta.decode().split()
        data = subprocess.run(["git", "-C", path, "cat-file", "-p", obj], capture_output=True).stdout \
            if mode != "160000" else b""
        if mode == "120000":
            files[name.decode()] = ("link", data.decode())
        elif mode == "160000":
            files[name.decode()] = ("submodule", obj)
        else:
            files[name.decode()] = data.decode(errors="replace")
    return files


def flavor_files(count: int, prefix: str = "flavor") -> dict:
    return {f"flavors/{prefix}-{i:04d}/Dockerfile": f"FROM base-{i}\n" for i in range(count)}

