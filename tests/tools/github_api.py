"""A local stand-in for the GitHub REST API's git database: commits, trees and blobs, with
GitHub's shapes, object ids computed as git computes them, token checks, and scripted failures
(rate limits, server errors, stalls).

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_sha(kind: str, data: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()


class GitHubApi:
    def __init__(self, token: str | None = None, port: int = 0):
        self.token = token
        self.objects: dict[str, dict] = {}  # sha -> {"kind": ..., ...}
        self.commits: dict[tuple[str, str], str] = {}  # (repo, commit) -> tree
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

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, headers, body = api.post(self.path, self.headers.get("Authorization"), raw)
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

    def post(self, path: str, authorization: str | None, raw: bytes):
        """POST /repos/{owner}/{repo}/statuses/{sha}, as GitHub answers it."""
        parts = path.split("?")[0].strip("/").split("/")
        if len(parts) != 5 or parts[0] != "repos" or parts[3] != "statuses":
            return 404, {}, {"message": "Not Found"}
        if self.token is not None and authorization != f"Bearer {self.token}":
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
        if self.token is not None and auth != f"Bearer {self.token}":
            return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        parts = path.split("?")[0].strip("/").split("/")
        not_found = (404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        if len(parts) == 3 and parts[0] == "repos":
            headers = {} if self.token_scopes is None else {"x-oauth-scopes": self.token_scopes}
            return 200, headers, {
                "full_name": f"{parts[1]}/{parts[2]}", "private": True, "default_branch": self.default_branch,
                "permissions": {"admin": False, "maintain": False, "push": self.token_can_push,
                                "triage": False, "pull": True},
            }
        if len(parts) >= 7 and parts[0] == "repos" and parts[3] == "git" and parts[4] == "ref":
            name = "/".join(parts[5:])
            sha = self.refs.get((f"{parts[1]}/{parts[2]}", name))
            if sha is None:
                return not_found
            return 200, {}, {"ref": f"refs/{name}", "object": {"type": "commit", "sha": sha}}
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
                "message": "commit", "parents": [],
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

