"""The sample events of the GitHub webhook in events/ (function URL requests, and the direct
invocation the nightly schedule makes), and the example repository they refer to.

    python tests/tools/webhook_events.py write        # (re)writes events/github-webhook-*.json
    python tests/tools/webhook_events.py check        # fails when events/ is out of date
    python tests/tools/webhook_events.py serve PORT   # a GitHub API stand-in serving acme/slc

Every event is signed with EXAMPLE_SECRET, the webhook secret to store for local runs.
"""

import hashlib
import hmac
import json
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from github_api import GitHubApi  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SECRET = "flavor-ci-example-secret"
EXAMPLE_REPO = "acme/slc"
EXAMPLE_COMMIT = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
BEFORE = "a10867b14bb761a232cd80139fbd4c0d33264240"
ZERO = "0" * 40
EXAMPLE_FILES = {
    "flavors/base/Dockerfile": "FROM ubuntu:24.04\n",
    "flavors/python-3.10/Dockerfile": "FROM base\n",
    "flavors/r-4.4/Dockerfile": "FROM base\n",
    "flavors/standard/Dockerfile": "FROM base\n",
    "scripts/build.sh": "#!/bin/sh\n",
}


def add_example(api: GitHubApi) -> str:
    """Adds the example commit to `api`, and the pull request's comparison (BEFORE...the
    example commit changes flavors/r-4.4/Dockerfile); returns its root tree id."""
    api.compares[(EXAMPLE_REPO, BEFORE, EXAMPLE_COMMIT)] = ["flavors/r-4.4/Dockerfile"]
    api.refs[(EXAMPLE_REPO, "heads/main")] = EXAMPLE_COMMIT
    return api.add_commit(EXAMPLE_REPO, EXAMPLE_FILES, commit=EXAMPLE_COMMIT)[1]


def example_tree() -> str:
    api = GitHubApi()
    try:
        return add_example(api)
    finally:
        api.close()


def push(tree: str, ref: str, modified: list[str], **extra) -> dict:
    commit = {
        "id": EXAMPLE_COMMIT, "tree_id": tree, "distinct": True, "message": "Update the base image",
        "timestamp": "2026-11-20T10:00:00Z", "url": f"https://github.com/{EXAMPLE_REPO}/commit/{EXAMPLE_COMMIT}",
        "author": {"name": "Dev", "email": "dev@example.com", "username": "dev"},
        "committer": {"name": "Dev", "email": "dev@example.com", "username": "dev"},
        "added": [], "removed": [], "modified": modified,
    }
    payload = {
        "ref": ref, "before": BEFORE, "after": EXAMPLE_COMMIT,
        "repository": {"id": 1296269, "name": "slc", "full_name": EXAMPLE_REPO, "private": False,
                       "owner": {"login": "acme"}, "default_branch": "main"},
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev", "id": 1},
        "created": False, "deleted": False, "forced": False, "base_ref": None,
        "compare": f"https://github.com/{EXAMPLE_REPO}/compare/{BEFORE[:12]}...{EXAMPLE_COMMIT[:12]}",
        "commits": [commit], "head_commit": commit,
    }
    payload.update(extra)
    return payload


def pull_request(action: str, draft: bool = False, fork: str | None = None,
                 label: str | None = None) -> dict:
    """A pull_request delivery of pull request #42 (head: the example commit; base: BEFORE)."""
    head_repo = {"id": 7, "name": "slc", "full_name": fork or EXAMPLE_REPO, "fork": bool(fork)}
    base_repo = {"id": 1296269, "name": "slc", "full_name": EXAMPLE_REPO, "private": False,
                 "owner": {"login": "acme"}, "default_branch": "main"}
    pr = {
        "url": f"https://api.github.com/repos/{EXAMPLE_REPO}/pulls/42", "number": 42,
        "state": "closed" if action == "closed" else "open", "title": "Update R to 4.4",
        "user": {"login": "dev"}, "draft": draft, "merged": False,
        "labels": [{"name": label}] if label else [],
        "head": {"label": f"{(fork or EXAMPLE_REPO).split('/')[0]}:r-4.4", "ref": "r-4.4",
                 "sha": EXAMPLE_COMMIT, "repo": head_repo},
        "base": {"label": "acme:main", "ref": "main", "sha": BEFORE, "repo": base_repo},
    }
    payload = {"action": action, "number": 42, "pull_request": pr, "repository": base_repo,
               "sender": {"login": "maintainer" if label else "dev", "id": 2}}
    if label:
        payload["label"] = {"name": label}
    return payload


QUEUE_REF = f"refs/heads/gh-readonly-queue/main/pr-42-{BEFORE}"


def merge_group(action: str, tree: str, reason: str | None = None) -> dict:
    """A merge_group delivery (the shape of GitHub's published example) of the group holding
    pull request #42: head the example commit, base BEFORE."""
    payload = {
        "action": action,
        "merge_group": {
            "head_sha": EXAMPLE_COMMIT, "head_ref": QUEUE_REF, "base_sha": BEFORE, "base_ref": "refs/heads/main",
            "head_commit": {
                "id": EXAMPLE_COMMIT, "tree_id": tree, "message": "Update R to 4.4 (#42)",
                "timestamp": "2026-11-20T10:00:00Z",
                "author": {"name": "Dev", "email": "dev@example.com"},
                "committer": {"name": "GitHub", "email": "noreply@github.com"},
            },
        },
        "repository": {"id": 1296269, "name": "slc", "full_name": EXAMPLE_REPO, "private": False,
                       "owner": {"login": "acme"}, "default_branch": "main"},
        "sender": {"login": "dev", "id": 2},
        "installation": {"id": 2311213, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMjMxMTIxMw=="},
    }
    if reason:
        payload["reason"] = reason
    return payload


def event(name: str, delivery: str, body: str, content_type: str = "application/json",
          secret: str = EXAMPLE_SECRET) -> dict:
    signature = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": content_type,
            "content-length": str(len(body.encode())),
            "host": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
            "user-agent": "GitHub-Hookshot/4d63832",
            "x-github-delivery": delivery,
            "x-github-event": name,
            "x-github-hook-id": "123456789",
            "x-github-hook-installation-target-id": "1296269",
            "x-github-hook-installation-target-type": "repository",
            "x-hub-signature-256": signature,
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz012345",
            "domainName": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "140.82.115.1", "userAgent": "GitHub-Hookshot/4d63832"},
            "requestId": delivery,
            "routeKey": "$default",
            "stage": "$default",
            "time": "20/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795168800000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def events() -> dict[str, dict]:
    tree = example_tree()
    j = lambda v: json.dumps(v, separators=(",", ":"))  # noqa: E731
    ping = {"zen": "Design for failure.", "hook_id": 123456789,
            "hook": {"type": "Repository", "id": 123456789, "events": ["push"], "active": True,
                     "config": {"content_type": "json", "insecure_ssl": "0"}},
            "repository": {"full_name": EXAMPLE_REPO}, "sender": {"login": "dev"}}
    base = j(push(tree, "refs/heads/main", ["flavors/base/Dockerfile"]))
    return {
        "github-webhook-push.json": event("push", "0b3c6a1e-0000-4000-8000-000000000001", base),
        "github-webhook-tag.json": event("push", "0b3c6a1e-0000-4000-8000-000000000002", j(
            push(tree, "refs/tags/v1.0.0", [], before=ZERO, created=True, commits=[]))),
        "github-webhook-branch-deleted.json": event("push", "0b3c6a1e-0000-4000-8000-000000000003", j(
            push(tree, "refs/heads/feature/old", [], after=ZERO, deleted=True, commits=[], head_commit=None))),
        "github-webhook-ping.json": event("ping", "0b3c6a1e-0000-4000-8000-000000000004", j(ping)),
        "github-webhook-bad-signature.json": event(
            "push", "0b3c6a1e-0000-4000-8000-000000000005", base, secret="not-the-webhook-secret"),
        "github-webhook-form.json": event(
            "push", "0b3c6a1e-0000-4000-8000-000000000006",
            urlencode({"payload": j(push(tree, "refs/heads/main", ["flavors/r-4.4/Dockerfile"]))}),
            content_type="application/x-www-form-urlencoded"),
        "github-webhook-pull-request-opened.json": event(
            "pull_request", "0b3c6a1e-0000-4000-8000-000000000007", j(pull_request("opened"))),
        "github-webhook-pull-request-synchronize.json": event(
            "pull_request", "0b3c6a1e-0000-4000-8000-000000000008", j(pull_request("synchronize"))),
        "github-webhook-pull-request-draft.json": event(
            "pull_request", "0b3c6a1e-0000-4000-8000-000000000009", j(pull_request("opened", draft=True))),
        "github-webhook-pull-request-fork.json": event(
            "pull_request", "0b3c6a1e-0000-4000-8000-00000000000a",
            j(pull_request("opened", fork="contributor/slc"))),
        "github-webhook-pull-request-fork-labeled.json": event(
            "pull_request", "0b3c6a1e-0000-4000-8000-00000000000b",
            j(pull_request("labeled", fork="contributor/slc", label="safe to build"))),
        "github-webhook-pull-request-closed.json": event(
            "pull_request", "0b3c6a1e-0000-4000-8000-00000000000c", j(pull_request("closed"))),
        "github-webhook-merge-group.json": event(
            "merge_group", "0b3c6a1e-0000-4000-8000-00000000000d", j(merge_group("checks_requested", tree))),
        "github-webhook-merge-group-dequeued.json": event(
            "merge_group", "0b3c6a1e-0000-4000-8000-00000000000e", j(merge_group("destroyed", tree, "dequeued"))),
        "github-webhook-merge-queue-branch.json": event("push", "0b3c6a1e-0000-4000-8000-00000000000f", j(
            push(tree, QUEUE_REF, ["flavors/r-4.4/Dockerfile"], before=ZERO, created=True))),
        # What the nightly schedule sends: a direct invocation, not a function URL request.
        "github-webhook-schedule.json": {"flavorCiRun": {"trigger": "schedule", "id": "2026-11-24T02:00:00Z"}},
    }


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in ("write", "check"):
        stale = []
        for name, value in events().items():
            path = ROOT / "events" / name
            text = json.dumps(value, indent=2) + "\n"
            if command == "write":
                path.write_text(text)
            elif not path.exists() or path.read_text() != text:
                stale.append(name)
        if stale:
            sys.exit(f"out of date: {', '.join(stale)}; run python tests/tools/webhook_events.py write")
    elif command == "serve" and len(sys.argv) == 3:
        api = GitHubApi(port=int(sys.argv[2]))
        add_example(api)
        print(f"GitHub API stand-in serving {EXAMPLE_REPO}@{EXAMPLE_COMMIT} at {api.url}", flush=True)
        threading.Event().wait()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
