"""The GitHub webhook function, run for real behind `cargo lambda watch`'s function URL path,
against moto (S3, Secrets Manager, CodeBuild with batch calls) and a GitHub REST API stand-in."""

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import (
    GITHUB_TOKEN, ROOT, WEBHOOK_BUCKET, WEBHOOK_REPOSITORY, WEBHOOK_ROOT, WEBHOOK_SECRET,
    WEBHOOK_SETTINGS, cli_generate, client, codebuild_project,
)

ZERO = "0" * 40
FLAVORS = ["base", "python-3.10", "r-4.4", "standard"]
EXAMPLES = ROOT / "tests/.npm/node_modules/@octokit/webhooks-examples/api.github.com/index.json"


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(body: bytes, event: str = "push", delivery: str | None = None, secret=WEBHOOK_SECRET,
            content_type: str = "application/json") -> dict:
    h = {
        "Content-Type": content_type,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "42",
        "User-Agent": "GitHub-Hookshot/test",
    }
    if secret is not None:
        h["X-Hub-Signature-256"] = sign(body, secret)
    return h


@pytest.fixture(scope="module")
def aws(gateway):
    return {
        "url": gateway.url,
        "s3": client("s3", gateway.url),
        "codebuild": client("codebuild", gateway.url),
        "sm": client("secretsmanager", gateway.url),
    }


@pytest.fixture
def repo(github):
    """A fresh commit of the stack's repository in the GitHub stand-in, with the four flavors."""
    name = WEBHOOK_REPOSITORY
    files = {f"flavors/{f}/Dockerfile": f"FROM {f}\n" for f in FLAVORS}
    files["scripts/build.sh"] = "echo build\n"
    commit, tree = github.add_commit(name, files)
    return {"name": name, "commit": commit, "tree": tree, "files": files}


def push_payload(repo: dict, paths: list[str] | None = None, ref: str = "refs/heads/main",
                 commits: list | None = None, **extra) -> dict:
    if commits is None:
        commits = [{"id": repo["commit"], "tree_id": repo["tree"], "distinct": True,
                    "message": "change", "added": [], "removed": [], "modified": paths or []}]
    payload = {
        "ref": ref, "before": "1" * 40, "after": repo["commit"],
        "created": False, "deleted": False, "forced": False,
        "base_ref": None, "compare": "https://github.com/x",
        "commits": commits,
        "head_commit": {"id": repo["commit"], "tree_id": repo["tree"], "message": "change"},
        "repository": {"id": 1, "name": repo["name"].split("/")[1], "full_name": repo["name"]},
        "pusher": {"name": "dev"}, "sender": {"login": "dev"},
    }
    payload.update(extra)
    return payload


def state(aws) -> tuple[int, int]:
    """(objects under the webhook's prefix, batch builds started) — for 'nothing happened'.
    The kept deliveries (pushes/inbox/) are not counted: `kept` reads them."""
    s3, cb = aws["s3"], aws["codebuild"]
    listed = s3.list_object_versions(Bucket=WEBHOOK_BUCKET, Prefix=f"{WEBHOOK_ROOT}pushes/")
    inbox = f"{WEBHOOK_ROOT}pushes/inbox/"
    objects = sum(1 for v in listed.get("Versions", []) + listed.get("DeleteMarkers", [])
                  if not v["Key"].startswith(inbox))
    batches = sum(len(cb.list_build_batches_for_project(projectName=p)["ids"]) for p in ("ci", "release"))
    return objects, batches


def deliver(webhook, payload, **kw):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return webhook.post(body, headers(body, **kw))


def spec_of(aws, answer) -> str:
    bucket, _, key = answer["buildspec"].removeprefix("s3://").partition("/")
    return aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def batch(aws, batch_id):
    return aws["codebuild"].batch_get_build_batches(ids=[batch_id])["buildBatches"][0]


# -- a push that builds ----------------------------------------------------------------------


def test_a_push_under_one_flavor_builds_it_and_its_dependents(webhook, aws, repo):
    status, answer = deliver(webhook, push_payload(repo, ["flavors/base/Dockerfile"]))
    assert status == 200, answer
    assert answer["status"] == "started"
    assert answer["flavors"] == ["base", "standard"]
    assert "base" in answer["message"] and "depend on them (standard)" in answer["message"]
    assert answer["project"] == "ci" and answer["sourceVersion"] == repo["commit"]
    key = answer["buildspec"].removeprefix(f"s3://{WEBHOOK_BUCKET}/")
    assert key.startswith(f"{WEBHOOK_ROOT}pushes/specs/") and key.endswith("/ci-batch-buildspec.yaml")
    assert answer["buildspecArn"] == f"arn:aws:s3:::{WEBHOOK_BUCKET}/{key}"
    digest = key.split("/")[-2]
    spec = spec_of(aws, answer)
    assert hashlib.sha256(spec.encode()).hexdigest() == digest
    assert "build_base" in spec and "build_standard" in spec and "build_r_4_4" not in spec
    started = batch(aws, answer["batchBuildId"])
    assert started["projectName"] == "ci"
    assert started["sourceVersion"] == repo["commit"]
    assert started["source"]["buildspec"] == answer["buildspecArn"]
    tags = aws["s3"].get_object_tagging(Bucket=WEBHOOK_BUCKET, Key=key)["TagSet"]
    assert tags == [{"Key": "flavor-ci", "Value": "push-spec"}]


def test_every_commit_of_a_push_counts(webhook, repo):
    commits = [
        {"id": "a" * 40, "added": ["flavors/r-4.4/x"], "removed": [], "modified": []},
        {"id": repo["commit"], "added": [], "removed": ["flavors/python-3.10/y"], "modified": []},
    ]
    status, answer = deliver(webhook, push_payload(repo, commits=commits))
    assert status == 200, answer
    assert answer["flavors"] == ["python-3.10", "r-4.4"]


@pytest.mark.parametrize("shape, why", [
    ({"forced": True}, "forced push"),
    ({"created": True, "before": ZERO}, "new branch"),
    ({"commits": []}, "no commits"),
    ({"commits": [{"id": "b" * 40, "modified": ["flavors/base/x"]}] * 2048}, "may be incomplete"),
    ({"commits": [{"id": "b" * 40, "modified": ["scripts/build.sh", "flavors/base/x"]}]}, "scripts/build.sh changed"),
])
def test_pushes_whose_changes_are_unknown_or_shared_build_every_flavor(webhook, repo, shape, why):
    status, answer = deliver(webhook, push_payload(repo, **shape))
    assert status == 200, answer
    assert answer["flavors"] == FLAVORS
    assert why in answer["message"]


def test_the_all_flavors_spec_is_byte_identical_to_the_deploy_time_spec(webhook, aws, repo, tmp_path):
    status, answer = deliver(webhook, push_payload(repo, forced=True))
    assert status == 200, answer
    # The deploy-time spec: the CLI (the same generator as the buildspec resource, whose own
    # test compares the two) given the deployed settings and the same flavors.
    out = cli_generate(FLAVORS, WEBHOOK_SETTINGS, tmp_path)
    assert (out / "ci-batch-buildspec.yaml").read_text() == spec_of(aws, answer)


def test_a_tag_push_builds_the_release_variant_on_the_release_project(webhook, aws, repo):
    status, answer = deliver(webhook, push_payload(repo, ref="refs/tags/v2.1.0", created=True, before=ZERO))
    assert status == 200, answer
    assert answer["project"] == "release"
    assert answer["buildspec"].endswith("/release-batch-buildspec.yaml")
    spec = spec_of(aws, answer)
    assert "RELEASE_ID: v2.1.0\n" in spec, spec
    assert batch(aws, answer["batchBuildId"])["projectName"] == "release"


def test_symlinked_flavors_count_and_changes_under_their_targets_select_them(webhook, github):
    name = WEBHOOK_REPOSITORY
    commit, tree = github.add_commit(name, {
        "flavors/base/Dockerfile": "FROM x\n",
        "flavors/python-3.10": ("link", "../ext/slc/flavors/python-3.10"),
        "flavors/r-4.4": ("link", "../shared/r"),
        "flavors/notes": ("link", "../README"),
        "flavors/.hidden/x": "x",
        "shared/r/Dockerfile": "FROM r\n",
        "README": "x",
        "ext/slc": ("submodule", "c" * 40),
    })
    repo = {"name": name, "commit": commit, "tree": tree}
    status, answer = deliver(webhook, push_payload(repo, forced=True))
    assert status == 200, answer
    assert answer["flavors"] == ["base", "python-3.10", "r-4.4"]
    status, answer = deliver(webhook, push_payload(repo, ["shared/r/Dockerfile"]))
    assert answer["flavors"] == ["r-4.4"], answer
    status, answer = deliver(webhook, push_payload(repo, ["ext/slc"]))
    assert answer["flavors"] == ["python-3.10"], answer


def test_without_a_tree_id_the_commit_is_looked_up(webhook, github, repo):
    payload = push_payload(repo, ["flavors/r-4.4/x"])
    payload["head_commit"] = None
    before = len(github.requests)
    status, answer = deliver(webhook, payload)
    assert status == 200, answer
    assert any(f"/git/commits/{repo['commit']}" in p for p in github.requests[before:])


def test_a_form_encoded_delivery_is_verified_over_the_raw_form(webhook, repo):
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(push_payload(repo, ["flavors/r-4.4/x"]))}).encode()
    status, answer = webhook.post(body, headers(body, content_type="application/x-www-form-urlencoded"))
    assert status == 200, answer
    assert answer["flavors"] == ["r-4.4"]


def test_a_base64_function_url_event_is_decoded_before_verifying(webhook, repo):
    body = json.dumps(push_payload(repo, ["flavors/r-4.4/x"])).encode()
    event = {
        "version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "POST", "path": "/"}, "timeEpoch": 1795168800000},
        "headers": {k.lower(): v for k, v in headers(body).items()},
        "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
    }
    status, raw = webhook.watch.invoke(event)
    assert status == 200
    response = json.loads(raw)
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["flavors"] == ["r-4.4"]


# -- deliveries that build nothing -----------------------------------------------------------


# Deliveries that build nothing (a deleted branch, branches and tags no pattern matches, only
# ignored or removed paths, another repository), pings and other events: decided in process, in
# functions/github-webhook/src/decisions.rs and handler.rs.


# -- rejected deliveries: nothing is written or started --------------------------------------


def rejections(repo):
    good = json.dumps(push_payload(repo, ["flavors/base/x"])).encode()
    h = headers(good)
    without = lambda name: {k: v for k, v in h.items() if k != name}  # noqa: E731
    deep = "[" * 50_000 + "]" * 50_000
    deep_ignored = good.replace(b'"pusher":', b'"padding": ' + deep.encode() + b', "pusher":', 1)
    deep_read = good.replace(b'"commits": [', b'"commits": [' + deep.encode() + b", ", 1)
    deep_form = b"payload=" + urllib.parse.quote_plus(deep_ignored.decode()).encode()
    form_headers = headers(deep_form, content_type="application/x-www-form-urlencoded")
    return [
        ("missing signature", good, without("X-Hub-Signature-256"), "POST", 401, "missing"),
        ("SHA-1 only", good, {**without("X-Hub-Signature-256"),
                              "X-Hub-Signature": "sha1=" + hmac.new(WEBHOOK_SECRET.encode(), good, hashlib.sha1).hexdigest()},
         "POST", 401, "X-Hub-Signature (SHA-1) header came, which is not accepted"),
        ("no sha256= prefix", good, {**h, "X-Hub-Signature-256": h["X-Hub-Signature-256"][7:]}, "POST", 401, "prefix"),
        ("bad hex", good, {**h, "X-Hub-Signature-256": "sha256=" + "zz" * 32}, "POST", 401, "not hex"),
        ("wrong length", good, {**h, "X-Hub-Signature-256": "sha256=abcd"}, "POST", 401, "wrong length"),
        ("wrong secret", good, headers(good, secret="not-the-secret"), "POST", 401, "does not match"),
        ("altered body", good + b" ", h, "POST", 401, "does not match"),
        ("GET", b"", {}, "GET", 405, "POST"),
        ("text/plain", good, {**h, "Content-Type": "text/plain"}, "POST", 415, "content type"),
        ("no event header", good, without("X-GitHub-Event"), "POST", 400, "X-GitHub-Event"),
        ("no delivery header", good, without("X-GitHub-Delivery"), "POST", 400, "X-GitHub-Delivery"),
        ("bad JSON", b"{oops", headers(b"{oops"), "POST", 400, "not valid"),
        ("wrong field type", b'{"ref": 1}', headers(b'{"ref": 1}'), "POST", 400, "`ref`"),
        # Nesting past the bound: in a field the push reader skips, in one it reads, in a form.
        ("deep ignored field", deep_ignored, headers(deep_ignored), "POST", 400, "100 levels deep"),
        ("deep read field", deep_read, headers(deep_read), "POST", 400, "100 levels deep"),
        ("deep form payload", deep_form, form_headers, "POST", 400, "100 levels deep"),
    ]


def test_every_rejection_has_its_status_and_changes_nothing(webhook, aws, repo):
    before = state(aws)
    for name, body, h, method, expected, words in rejections(repo):
        status, answer = webhook.post(body, h, method=method)
        assert status == expected, (name, answer)
        assert words in answer["message"], (name, answer)
        assert "not-the-secret" not in json.dumps(answer) and WEBHOOK_SECRET not in json.dumps(answer)
    assert state(aws) == before


def test_an_oversize_body_is_413(webhook, aws, repo):
    before = state(aws)
    payload = push_payload(repo, ["flavors/base/x"])
    payload["padding"] = "x" * (6 * 1024 * 1024)
    body = json.dumps(payload).encode()
    event = {
        "version": "2.0", "requestContext": {"http": {"method": "POST"}, "timeEpoch": 1795168800000},
        "headers": {k.lower(): v for k, v in headers(body).items()},
        "body": body.decode(), "isBase64Encoded": False,
    }
    status, raw = webhook.watch.invoke(event)
    response = json.loads(raw)
    assert response["statusCode"] == 413, response
    assert state(aws) == before


def kept(aws) -> list[dict]:
    """The deliveries the webhook keeps for a retry."""
    s3 = aws["s3"]
    listed = s3.list_objects_v2(Bucket=WEBHOOK_BUCKET, Prefix=f"{WEBHOOK_ROOT}pushes/inbox/")
    return [json.loads(s3.get_object(Bucket=WEBHOOK_BUCKET, Key=o["Key"])["Body"].read())
            for o in listed.get("Contents", [])]


def forget_kept(aws) -> None:
    s3 = aws["s3"]
    listed = s3.list_object_versions(Bucket=WEBHOOK_BUCKET, Prefix=f"{WEBHOOK_ROOT}pushes/inbox/")
    for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        s3.delete_object(Bucket=WEBHOOK_BUCKET, Key=v["Key"], VersionId=v["VersionId"])


@pytest.mark.parametrize("failure, words", [
    ("rate-limit", "rate limit is exhausted"),
    ("429", "retry after 60 s"),
    ("500", "GitHub is unavailable"),
    ("stall", "no answer within"),
])
def test_github_api_failures_are_accepted_kept_and_leave_nothing_else(webhook, aws, github, repo, failure, words):
    before = state(aws)
    # Twice: the client tries a server error or a missing answer once more.
    github.failures[:] = [failure, failure]
    try:
        status, answer = deliver(webhook, push_payload(repo, ["flavors/base/x"]))
    finally:
        github.failures.clear()
    assert status == 202, answer
    assert answer["message"] == "accepted: the build starts when GitHub recovers", answer
    assert words in answer["reason"], answer
    assert state(aws) == before
    (copy,) = [k for k in kept(aws) if k["commit"] == repo["commit"]]
    assert copy["state"] == "retrying" and copy["service"] == "GitHub" and copy["attempts"] == 1
    assert github.latest_statuses(repo["commit"])["flavor-ci"]["description"] == "waiting for GitHub: retrying"
    forget_kept(aws)


def test_a_stalled_aws_is_answered_within_githubs_ten_seconds(webhook, aws, gateway, repo):
    import time

    gateway.set_mode("stall")
    try:
        start = time.monotonic()
        status, answer = deliver(webhook, push_payload(repo, ["flavors/base/x"]))
        elapsed = time.monotonic() - start
    finally:
        gateway.set_mode("pass")
    assert status == 503, answer
    assert "took longer than 8 s" in answer["message"] or "cannot" in answer["message"], answer
    assert elapsed < 9.5, elapsed


def test_an_unknown_commit_is_502(webhook, aws, repo):
    before = state(aws)
    payload = push_payload(repo, ["flavors/base/x"], after="e" * 40)
    payload["head_commit"] = None
    status, answer = deliver(webhook, payload)
    assert status == 502 and "does not exist or the token cannot read" in answer["message"], answer
    assert state(aws) == before


def test_repository_problems_are_422(webhook, aws, github):
    before = state(aws)
    name = WEBHOOK_REPOSITORY
    commit, tree = github.add_commit(name, {
        "flavors/base/Dockerfile": "x",
        "flavors/py": ("link", "../ext/missing"),
    })
    status, answer = deliver(webhook, push_payload({"name": name, "commit": commit, "tree": tree}, forced=True))
    assert status == 422, answer
    assert "flavor link flavors/py points to ../ext/missing, which does not exist" in answer["message"]
    commit, tree = github.add_commit(name, {"src/x": "x"})
    status, answer = deliver(webhook, push_payload({"name": name, "commit": commit, "tree": tree}, forced=True))
    assert status == 422 and "no flavors directory flavors" in answer["message"], answer
    assert state(aws) == before


def record_key(body: bytes, event: str = "push") -> str:
    """Where the webhook keeps the record of a delivery: keyed by the signed body."""
    digest = hashlib.sha256(event.encode() + b"\0" + body).hexdigest()
    return f"{WEBHOOK_ROOT}pushes/deliveries/{digest}.json"


def test_a_codebuild_failure_is_502_and_removes_what_was_written(webhook, aws, repo, gateway):
    cb = aws["codebuild"]
    # An earlier tag push stored the spec this one will need (content-addressed): another
    # batch may be using it, so the failed delivery must leave it in place.
    earlier = deliver(webhook, push_payload(repo, ref="refs/tags/v9", created=True, before=ZERO,
                                            compare="https://github.com/x/earlier"))
    assert earlier[0] == 200, earlier
    cb.delete_project(name="release")
    payload = push_payload(repo, ref="refs/tags/v9", created=True, before=ZERO)
    try:
        before = state(aws)
        status, answer = deliver(webhook, payload)
        assert status == 502, answer
        assert "CodeBuild did not start the batch build on release" in answer["message"]
        objects, batches = state(aws)
        # Removed again: versions are deleted, so nothing is left behind.
        assert (objects, batches) == before
        assert answer.get("buildspec") is None
        spec_bucket, _, spec_key = earlier[1]["buildspec"].removeprefix("s3://").partition("/")
        aws["s3"].head_object(Bucket=spec_bucket, Key=spec_key)  # the same spec, still there
    finally:
        # Later tests start release builds again.
        codebuild_project(gateway.url, "release")
    # A redelivery of the same body (GitHub's "Redeliver", a new delivery id) now builds.
    status, answer = deliver(webhook, payload)
    assert status == 200 and answer["status"] == "started", answer


def test_a_replayed_body_starts_nothing_whatever_its_delivery_id(webhook, aws, repo):
    """GitHub does not sign X-GitHub-Delivery: a captured body replayed under fresh ids is
    the same delivery."""
    body = json.dumps(push_payload(repo, ["flavors/standard/x"])).encode()
    status, first = webhook.post(body, headers(body))
    assert status == 200 and first["status"] == "started", first
    after_first = state(aws)
    for _ in range(3):
        status, again = webhook.post(body, headers(body, delivery=str(uuid.uuid4())))
        assert (status, again["status"]) == (200, "already handled"), again
        assert again["batchBuildId"] == first["batchBuildId"]
    assert state(aws) == after_first


def test_concurrent_copies_never_claim_a_build_that_did_not_start(webhook, aws, repo, gateway):
    """Copies of one delivery arriving together while the build cannot start: none answers
    `already handled`; each fails, or finds the delivery in progress and is accepted (kept, and
    handled again later)."""
    aws["codebuild"].delete_project(name="release")
    try:
        body = json.dumps(push_payload(repo, ref="refs/tags/v10", created=True, before=ZERO)).encode()
        results = []
        threads = [threading.Thread(target=lambda: results.append(webhook.post(body, headers(body))))
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(s for s, _ in results)
        assert set(statuses) <= {202, 502} and 502 in statuses, statuses
        assert not [a for _, a in results if a["status"] == "already handled"], results
    finally:
        codebuild_project(gateway.url, "release")
        forget_kept(aws)


# -- duplicates, rotation, tokens ------------------------------------------------------------


def test_a_redelivery_is_already_handled_and_starts_nothing(webhook, aws, repo):
    delivery = str(uuid.uuid4())
    payload = push_payload(repo, ["flavors/base/x"])
    status, first = deliver(webhook, payload, delivery=delivery)
    assert status == 200, first
    after_first = state(aws)
    status, again = deliver(webhook, payload, delivery=delivery)
    assert status == 200 and again["status"] == "already handled", again
    assert again["batchBuildId"] == first["batchBuildId"]
    assert state(aws) == after_first
    body = json.dumps(payload).encode()
    record = aws["s3"].get_object(Bucket=WEBHOOK_BUCKET, Key=record_key(body))
    saved = json.loads(record["Body"].read())
    assert (saved["state"], saved["delivery"]) == ("started", delivery)


def test_concurrent_duplicates_start_one_batch(webhook, aws, repo):
    delivery = str(uuid.uuid4())
    body = json.dumps(push_payload(repo, ["flavors/r-4.4/x"])).encode()
    h = headers(body, delivery=delivery)
    _, batches_before = state(aws)
    results = []
    threads = [threading.Thread(target=lambda: results.append(webhook.post(body, h))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted((s, a["status"]) for s, a in results)
    started = [a for s, a in results if a["status"] == "started"]
    assert len(started) == 1, statuses
    # The others found the build started, or still starting: then they are accepted and kept,
    # and handled again later (already handled, then).
    assert all((s, st) in {(200, "started"), (200, "already handled"), (202, "accepted")}
               for s, st in statuses), statuses
    assert state(aws)[1] == batches_before + 1
    forget_kept(aws)


def test_a_rotated_secret_keeps_both_secrets_valid_until_the_old_one_is_dropped(webhook, aws, repo):
    sm = aws["sm"]
    try:
        sm.put_secret_value(SecretId="flavor-ci/webhook", SecretString=json.dumps(["rotated-secret", WEBHOOK_SECRET]))
        import time
        # As the rotation steps say: GitHub gets the new secret after the function's secret
        # time-to-live (SECRET_CACHE_SECONDS); a wrong signature alone refreshes at most once a
        # minute, so it cannot be relied on.
        time.sleep(2.2)
        status, answer = deliver(webhook, push_payload(repo, ["flavors/base/x"]), secret="rotated-secret")
        assert status == 200, answer
        status, answer = deliver(webhook, push_payload(repo, ["flavors/r-4.4/x"]))
        assert status == 200, answer
        sm.put_secret_value(SecretId="flavor-ci/webhook", SecretString="rotated-secret")
        time.sleep(2.2)  # past the function's secret time-to-live (SECRET_CACHE_SECONDS)
        status, answer = deliver(webhook, push_payload(repo, ["flavors/base/x"]))
        assert status == 401, answer
    finally:
        sm.put_secret_value(SecretId="flavor-ci/webhook", SecretString=WEBHOOK_SECRET)
        import time
        time.sleep(2.2)  # past the secret time-to-live in every instance
    status, answer = deliver(webhook, push_payload(repo, ["flavors/base/x"]))
    assert status == 200, answer


def test_a_token_github_rejects_is_fetched_again(webhook, aws, github, repo):
    sm = aws["sm"]
    try:
        github.token = "ghs_rotatedtoken2"
        sm.put_secret_value(SecretId="flavor-ci/github-token", SecretString="ghs_rotatedtoken2")
        status, answer = deliver(webhook, push_payload(repo, ["flavors/base/x"]))
        assert status == 200, answer
    finally:
        github.token = GITHUB_TOKEN
        sm.put_secret_value(SecretId="flavor-ci/github-token", SecretString=GITHUB_TOKEN)


def test_logs_are_json_and_hold_no_secret(webhook):
    unsigned = b'{"zen": "x"}'
    status, _ = webhook.post(unsigned, {"Content-Type": "application/json", "X-GitHub-Event": "ping",
                                        "X-GitHub-Delivery": str(uuid.uuid4())})
    assert status == 401
    text = webhook.watch.log_text()
    assert WEBHOOK_SECRET not in text and GITHUB_TOKEN not in text and "rotated-secret" not in text
    # The runtime logs at TRACE here (it says it waits for events), yet no raw event is logged:
    # no signature header, no body.
    assert "Waiting for next event" in text
    assert "raw JSON event" not in text
    assert not re.search(r"sha256=[0-9a-f]{64}", text), "a signature reached the log"
    assert '"pusher"' not in text and '"head_commit"' not in text, "a body reached the log"
    lines = [l for l in text.splitlines() if '"delivery answered"' in l]
    assert lines and all(json.loads(l[l.index("{"):])["level"] for l in lines)
    # Refusals (the rejection tests sent many) are one short INFO line each, with no detail.
    refused = [json.loads(l[l.index("{"):]) for l in text.splitlines() if '"delivery refused"' in l]
    assert refused, "no refusal was logged"
    for r in refused:
        assert r["level"] == "INFO" and set(r["fields"]) == {"status", "message"}, r
    assert '"status":401' not in "".join(l for l in text.splitlines() if '"WARN"' in l)


# -- the sample events in events/ -----------------------------------------------------------


def test_the_sample_events_are_up_to_date():
    # What each one is answered is checked in process (functions/github-webhook/src/decisions.rs).
    subprocess.run([sys.executable, str(ROOT / "tests/tools/webhook_events.py"), "check"], check=True)


# -- GitHub's own example payloads -----------------------------------------------------------


def examples(name: str) -> list[dict]:
    if not EXAMPLES.exists():
        pytest.fail(f"{EXAMPLES} is missing: run tests/run.sh, which installs @octokit/webhooks-examples")
    return next(e["examples"] for e in json.loads(EXAMPLES.read_text()) if e["name"] == name)


def test_octokit_example_payloads(webhook, aws, github):
    for ping in examples("ping"):
        body = json.dumps(ping).encode()
        status, answer = webhook.post(body, headers(body, event="ping"))
        assert status == 200 and answer["status"] == "pong", answer
    outcomes = []
    for push in examples("push"):
        # Retargeted at the stack's repository: pushes to any other are ignored.
        push["repository"]["full_name"] = WEBHOOK_REPOSITORY
        if push["head_commit"] and not push["deleted"]:
            github.add_commit(
                push["repository"]["full_name"],
                {f"flavors/{f}/Dockerfile": "x" for f in FLAVORS},
                commit=push["after"], tree_alias=push["head_commit"]["tree_id"],
            )
        body = json.dumps(push).encode()
        status, answer = webhook.post(body, headers(body))
        outcomes.append((push["ref"], push["deleted"], status, answer.get("status")))
        if push["deleted"]:
            assert status == 202 and "was deleted" in answer["message"], answer
        elif push["ref"].startswith("refs/tags/"):
            assert status == 202 and "tag patterns" in answer["message"], answer
        else:
            assert status == 200 and answer["flavors"] == FLAVORS, answer
            assert "new branch" in answer["message"]
    assert any(o[2] == 200 for o in outcomes), outcomes


def test_octokit_merge_group_and_check_payloads(webhook, aws, github):
    """GitHub's published merge_group examples build the group's change at its head; its
    check_run and check_suite examples are read, and left to a stack with the App."""
    for group in examples("merge_group"):
        group["repository"]["full_name"] = WEBHOOK_REPOSITORY
        g = group["merge_group"]
        github.add_commit(WEBHOOK_REPOSITORY, {f"flavors/{f}/Dockerfile": str(uuid.uuid4()) for f in FLAVORS},
                          commit=g["head_sha"])
        github.compares[(WEBHOOK_REPOSITORY, g["base_sha"], g["head_sha"])] = ["flavors/base/Dockerfile"]
        body = json.dumps(group).encode()
        status, answer = webhook.post(body, headers(body, event="merge_group"))
        # GitHub's two examples share a head commit: the second is the same group.
        assert status == 200 and answer["status"] in ("started", "already handled"), answer
        assert answer["flavors"] == ["base", "standard"], answer
        assert answer.get("sourceVersion", g["head_sha"]) == g["head_sha"], answer
    for name in ("check_run", "check_suite"):
        for example in examples(name):
            example["repository"]["full_name"] = WEBHOOK_REPOSITORY
            body = json.dumps(example).encode()
            status, answer = webhook.post(body, headers(body, event=name))
            assert status == 202, (name, example["action"], answer)


# -- flavor-ci plan agrees with the webhook ----------------------------------------------------


def plan(*args: str) -> str:
    """`flavor-ci plan ARGS`, with the stack's patterns and ignored paths; its standard output."""
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--locked", "-p", "flavor-ci-cli", "--features", "aws", "--", "plan",
         "--branches", "main, master, release/*", "--tags", "v*", "--ignore", "docs, **/*.md", *args],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return out.stdout


def planned(text: str) -> tuple[list[str], dict]:
    """The flavors a plan builds, and why each (empty for every flavor or none)."""
    flavors, why = [], {}
    for line in text.splitlines():
        if line.startswith("input keys for project"):
            break
        if line.startswith("  "):
            name, _, because = line[2:].partition("\t")
            flavors.append(name)
            if because:
                why[name] = because
    return flavors, why


@pytest.mark.parametrize("changed", [
    ["flavors/base/Dockerfile"],
    ["shared/r/Dockerfile"],
    ["flavors/standard/Dockerfile", "docs/guide.md"],
    ["docs/guide.md", "flavors/base/README.md"],
    ["scripts/build.sh"],
])
def test_plan_chooses_what_the_webhook_chooses_on_the_same_change(webhook, github, tmp_path, changed):
    files = {
        "flavors/base/Dockerfile": "FROM base\n",
        "flavors/base/README.md": "base\n",
        "flavors/standard/Dockerfile": "FROM standard\n",
        "flavors/r-4.4": ("link", "../shared/r"),
        "shared/r/Dockerfile": "FROM r\n",
        "docs/guide.md": "guide\n",
        "scripts/build.sh": "echo build\n",
    }
    # The same repository twice: a git checkout for plan, commits in the GitHub stand-in for the
    # webhook. The second commit changes `changed`.
    local = tmp_path / "repo"

    def write(tree: dict):
        for path, content in tree.items():
            p = local / path
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, tuple):
                if not p.is_symlink():
                    p.symlink_to(content[1])
            else:
                p.write_text(content)

    def git(*args):
        subprocess.run(["git", "-C", str(local), "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
                       check=True, capture_output=True)

    local.mkdir()
    git("init", "-q", "-b", "main")
    write(files)
    (local / "flavor-ci.yaml").write_text(json.dumps(WEBHOOK_SETTINGS))
    git("add", "-A")
    git("commit", "-qm", "first")
    after = dict(files, **{path: f"changed {path}\n" for path in changed})
    write(after)
    git("add", "-A")
    git("commit", "-qm", "second")
    commit, tree = github.add_commit(WEBHOOK_REPOSITORY, after)
    payload = push_payload({"name": WEBHOOK_REPOSITORY, "commit": commit, "tree": tree}, changed)

    status, answer = deliver(webhook, payload)
    local_plan = plan("--repo", str(local), "--base", "HEAD~1", "--head", "HEAD")
    event = tmp_path / "push.json"
    event.write_text(json.dumps(payload))
    event_plan = plan("--repo", str(local), "--event", str(event))
    for text in (local_plan, event_plan):
        flavors, why = planned(text)
        if status == 202:
            assert answer["status"] == "ignored", answer
            assert f"nothing to build: {answer['message']}" in text, (answer, text)
        else:
            assert status == 200, answer
            assert flavors == answer["flavors"], (answer, text)
            assert why == answer.get("why", {}), (answer, text)
            assert answer["message"] in text, (answer, text)


# -- pull requests ----------------------------------------------------------------------------


def git_in(path: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(path), "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def pr_repo(github, tmp_path):
    """A real git repository in the GitHub stand-in: `main` with base, standard (depends on
    base) and r-4.4 (a link to shared/r); `topic` changes shared/r."""
    local = tmp_path / "pr-repo"
    (local / "flavors/base").mkdir(parents=True)
    (local / "flavors/standard").mkdir(parents=True)
    (local / "shared/r").mkdir(parents=True)
    (local / "flavors/base/Dockerfile").write_text("FROM base\n")
    (local / "flavors/standard/Dockerfile").write_text("FROM standard\n")
    (local / "shared/r/Dockerfile").write_text("FROM r\n")
    (local / "flavors/r-4.4").symlink_to("../shared/r")
    (local / "flavor-ci.yaml").write_text(json.dumps(WEBHOOK_SETTINGS))
    git_in(local, "init", "-q", "-b", "main")
    git_in(local, "add", "-A")
    git_in(local, "commit", "-qm", "first")
    base = git_in(local, "rev-parse", "HEAD")
    git_in(local, "switch", "-qc", "topic")
    (local / "shared/r/Dockerfile").write_text("FROM r:4.4\n")
    git_in(local, "commit", "-qam", "r 4.4")
    head = git_in(local, "rev-parse", "HEAD")
    github.add_git_repo(WEBHOOK_REPOSITORY, local)
    return {"path": local, "base": base, "head": head}


def pr_payload(r: dict, action: str = "opened", number: int = 7, draft: bool = False,
               head_repo: str | None = WEBHOOK_REPOSITORY, label: str | None = None) -> dict:
    return {
        "action": action, "number": number,
        "pull_request": {
            "number": number, "state": "open", "draft": draft, "title": "change r",
            "head": {"ref": "topic", "sha": r["head"],
                     "repo": {"full_name": head_repo} if head_repo else None},
            "base": {"ref": "main", "sha": r["base"], "repo": {"full_name": WEBHOOK_REPOSITORY}},
            "labels": [{"name": label}] if label else [],
        },
        "label": {"name": label} if label else None,
        "repository": {"id": 1, "full_name": WEBHOOK_REPOSITORY},
        "sender": {"login": "dev"},
    }


def deliver_pr(webhook, payload):
    body = json.dumps(payload).encode()
    return webhook.post(body, headers(body, event="pull_request"))


def test_a_pull_request_builds_its_head_commit_with_the_flavors_its_changes_select(webhook, aws, pr_repo):
    status, answer = deliver_pr(webhook, pr_payload(pr_repo))
    assert status == 200, answer
    assert answer["status"] == "started" and answer["pullRequest"] == 7
    assert answer["sourceVersion"] == pr_repo["head"]
    assert answer["flavors"] == ["r-4.4"]
    assert answer["why"] == {"r-4.4": "shared/r/Dockerfile changed, under shared/r where the flavor links"}
    assert answer["trigger"] == "pull request #7 was opened"
    started = batch(aws, answer["batchBuildId"])
    assert started["projectName"] == "ci" and started["sourceVersion"] == pr_repo["head"]
    # The same body again starts nothing; new commits (synchronize) build again.
    status, again = deliver_pr(webhook, pr_payload(pr_repo))
    assert status == 200 and again["status"] == "already handled", again
    status, sync = deliver_pr(webhook, pr_payload(pr_repo, action="synchronize"))
    assert status == 200 and sync["batchBuildId"] != answer["batchBuildId"], sync
    # flavor-ci plan agrees, on the checkout and on the delivery itself.
    flavors, why = planned(plan("--repo", str(pr_repo["path"]), "--base", "main", "--head", "HEAD"))
    assert (flavors, why) == (answer["flavors"], answer["why"])
    delivery = pr_repo["path"].parent / "pr.json"
    delivery.write_text(json.dumps(pr_payload(pr_repo)))
    text = plan("--repo", str(pr_repo["path"]), "--event", str(delivery))
    assert f"route: pull request #7 → the CI project, commit {pr_repo['head']}" in text, text
    assert planned(text) == (answer["flavors"], answer["why"]), text


# Drafts, other actions and fork approval are decided in process
# (functions/github-webhook/src/decisions.rs).


def test_when_github_cannot_list_every_change_every_flavor_builds_and_the_answer_says_why(webhook, github, pr_repo):
    github.compare_failure = (422, "Sorry, this diff is taking too long to generate.")
    try:
        status, answer = deliver_pr(webhook, pr_payload(pr_repo, number=8))
    finally:
        github.compare_failure = None
    assert status == 200, answer
    assert answer["flavors"] == ["base", "r-4.4", "standard"]
    assert "taking too long" in answer["message"] and "building every flavor" in answer["message"], answer
    # 300 changed files: GitHub's cap, so the list may be incomplete.
    local = pr_repo["path"]
    for i in range(300):
        (local / "flavors/base" / f"f{i:03d}").write_text("x\n")
    git_in(local, "add", "-A")
    git_in(local, "commit", "-qm", "many")
    head = git_in(local, "rev-parse", "HEAD")
    github.add_git_repo(WEBHOOK_REPOSITORY, local)
    status, answer = deliver_pr(webhook, pr_payload(dict(pr_repo, head=head), number=9))
    assert status == 200, answer
    assert answer["flavors"] == ["base", "r-4.4", "standard"]
    assert "at most 300 changed files" in answer["message"], answer


def test_octokit_pull_request_examples(webhook, github):
    """GitHub's example pull_request payloads, retargeted at the stack's repository: the build
    actions build every flavor (the stand-in cannot compare their commits, as if GitHub could
    not), closing stops, the others are answered with the reason."""
    github.compare_failure = (422, "Sorry, this diff is taking too long to generate.")
    try:
        for example in examples("pull_request"):
            example["repository"]["full_name"] = WEBHOOK_REPOSITORY
            pr = example["pull_request"]
            for side in ("head", "base"):
                if pr[side]["repo"]:
                    pr[side]["repo"]["full_name"] = WEBHOOK_REPOSITORY
            github.add_commit(WEBHOOK_REPOSITORY, {f"flavors/{f}/Dockerfile": "x" for f in FLAVORS},
                              commit=pr["head"]["sha"])
            status, answer = deliver_pr(webhook, example)
            action = example["action"]
            if action in ("opened", "reopened", "synchronize", "ready_for_review") and not pr["draft"]:
                assert status == 200, (action, answer)
                assert answer["flavors"] == FLAVORS and answer["sourceVersion"] == pr["head"]["sha"], answer
                assert answer["pullRequest"] == example["number"], answer
            elif action == "closed":
                # Closing stops what the earlier examples of that pull request started.
                assert status == 200 and answer["status"] == "stopped", (action, answer)
            else:
                assert status == 202 and answer["status"] == "ignored", (action, answer)
                assert f"#{example['number']}" in answer["message"], (action, answer)
    finally:
        github.compare_failure = None


def test_a_new_commit_stops_the_batches_it_supersedes_and_closing_stops_the_rest(webhook, aws, pr_repo):
    first = deliver_pr(webhook, pr_payload(pr_repo, number=11))[1]
    assert first["status"] == "started" and first["stopped"] == [], first
    second = deliver_pr(webhook, pr_payload(pr_repo, number=11, action="synchronize"))[1]
    assert second["stopped"] == [first["batchBuildId"]], second
    assert batch(aws, first["batchBuildId"])["buildBatchStatus"] == "STOPPED"
    assert batch(aws, second["batchBuildId"])["buildBatchStatus"] == "IN_PROGRESS"
    # Another pull request's batches are its own.
    other = deliver_pr(webhook, pr_payload(pr_repo, number=12))[1]
    assert other["stopped"] == [], other
    status, closed = deliver_pr(webhook, pr_payload(pr_repo, number=11, action="closed"))
    assert status == 200 and closed["status"] == "stopped" and closed["stopped"] == [second["batchBuildId"]], closed
    assert batch(aws, second["batchBuildId"])["buildBatchStatus"] == "STOPPED"
    assert batch(aws, other["batchBuildId"])["buildBatchStatus"] == "IN_PROGRESS"
    # Closing again finds nothing running; a batch that already finished is not an error.
    status, again = deliver_pr(webhook, pr_payload(pr_repo, number=12, action="reopened"))
    assert again["stopped"] == [other["batchBuildId"]], again
    aws["codebuild"].stop_build_batch(id=again["batchBuildId"])
    status, closed = deliver_pr(webhook, pr_payload(pr_repo, number=12, action="closed"))
    assert status == 200 and closed["stopped"] == [], closed
    assert again["batchBuildId"] in closed["notStopped"], closed


def test_pushes_to_a_branch_stop_its_earlier_batches_but_not_the_default_branch_or_tags(webhook, aws, github):
    def push_to(ref: str, path: str):
        commit, tree = github.add_commit(WEBHOOK_REPOSITORY, {f"flavors/{f}/Dockerfile": f"FROM {f}\n{path}" for f in FLAVORS})
        payload = push_payload({"name": WEBHOOK_REPOSITORY, "commit": commit, "tree": tree}, [path], ref=ref)
        payload["repository"]["default_branch"] = "main"
        status, answer = deliver(webhook, payload)
        assert status == 200, answer
        return answer

    a = push_to("refs/heads/release/1.x", "flavors/base/a")
    b = push_to("refs/heads/release/1.x", "flavors/base/b")
    assert b["stopped"] == [a["batchBuildId"]], b
    m1 = push_to("refs/heads/main", "flavors/base/c")
    m2 = push_to("refs/heads/main", "flavors/base/d")
    assert "stopped" not in m2 and batch(aws, m1["batchBuildId"])["buildBatchStatus"] == "IN_PROGRESS", m2


# -- runs without a change: the schedule and flavor-ci dispatch --------------------------------


def run_event(**run) -> dict:
    return {"flavorCiRun": {"trigger": "schedule", "id": str(uuid.uuid4()), **run}}


def invoke_run(webhook, event) -> tuple[int, dict]:
    code, raw = webhook.watch.invoke(event)
    assert code == 200, raw
    response = json.loads(raw)
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def heads(github, repo):
    """main and the tag v3.0 point at the `repo` commit; the default branch is main."""
    github.refs[(WEBHOOK_REPOSITORY, "heads/main")] = repo["commit"]
    github.refs[(WEBHOOK_REPOSITORY, "tags/v3.0")] = repo["commit"]
    github.default_branch = "main"
    return repo


def test_a_scheduled_run_builds_every_flavor_of_the_default_branch_head_once(webhook, aws, heads):
    event = run_event(id="2026-11-25T02:00:00Z")
    status, answer = invoke_run(webhook, event)
    assert status == 200, answer
    assert answer["flavors"] == FLAVORS and answer["sourceVersion"] == heads["commit"], answer
    assert answer["trigger"] == "schedule" and answer["message"] == "the scheduled run builds every flavor"
    assert batch(aws, answer["batchBuildId"])["projectName"] == "ci"
    # The scheduler retries an invocation it did not see finish: the same scheduled time starts nothing.
    status, again = invoke_run(webhook, event)
    assert status == 200 and again["status"] == "already handled", again


def test_a_dispatched_run_builds_what_it_names(webhook, aws, heads):
    status, answer = invoke_run(webhook, run_event(trigger="dispatch", gitRef="main", flavors=["base"]))
    assert status == 200, answer
    assert answer["flavors"] == ["base", "standard"], answer
    assert answer["why"] == {"base": "asked for by a dispatched run", "standard": "depends on base"}
    status, answer = invoke_run(webhook, run_event(trigger="dispatch", flavors=["nope"]))
    assert status == 202 and "no flavor is called nope" in answer["message"], answer
    status, answer = invoke_run(webhook, run_event(trigger="dispatch", gitRef="refs/tags/v3.0"))
    assert status == 200 and answer["project"] == "release", answer
    assert "RELEASE_ID: v3.0\n" in spec_of(aws, answer)
    status, answer = invoke_run(webhook, run_event(trigger="dispatch", gitRef="refs/heads/gone"))
    assert status == 502, answer
    status, answer = invoke_run(webhook, run_event(trigger="dispatch", gitRef="a..b"))
    assert status == 400 and "gitRef" in answer["message"], answer


def test_a_run_request_through_the_url_is_just_an_unsigned_request(webhook, aws, heads):
    before = state(aws)
    body = json.dumps(run_event()).encode()
    status, answer = webhook.post(body, headers(body, secret=None))
    assert status == 401, answer
    # Top-level in a function URL event (which only Lambda builds) it is ignored as well.
    event = {"version": "2.0", "requestContext": {"http": {"method": "POST"}, "timeEpoch": 1},
             "headers": {}, "body": "", "isBase64Encoded": False, **run_event()}
    status, answer = invoke_run(webhook, event)
    assert status == 401, answer
    assert state(aws) == before


def test_flavor_ci_dispatch_starts_a_run_through_the_function(webhook, aws, heads):
    env = dict(os.environ, **{k: v for k, v in __import__("conftest").AWS_ENV.items()},
               AWS_ENDPOINT_URL_LAMBDA=f"http://127.0.0.1:{webhook.watch.port}")
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--locked", "-p", "flavor-ci-cli", "--features", "aws", "--",
         "dispatch", "--function", webhook.watch.function, "--flavor", "r-4.4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "started batch ci:" in out.stdout and "flavors: r-4.4" in out.stdout, out.stdout
    assert "console.aws.amazon.com/codesuite/codebuild/projects/ci/batch/ci%3A" in out.stdout, out.stdout
    batch_id = re.search(r"started batch (\S+)", out.stdout).group(1)
    assert batch(aws, batch_id)["sourceVersion"] == heads["commit"]
    failed = subprocess.run(
        ["cargo", "run", "--quiet", "--locked", "-p", "flavor-ci-cli", "--features", "aws", "--",
         "dispatch", "--function", webhook.watch.function, "--flavor", "nope"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert failed.returncode == 1 and "no flavor is called nope" in failed.stderr, failed.stderr


# -- run records, flavor-ci status and retry ----------------------------------------------------


def finish_build(aws, build_id: str, status: str) -> None:
    """Ends one build in moto (the launcher's test-only `StopBuild` of `<id>#<status>`)."""
    aws["codebuild"].stop_build(id=f"{build_id}#{status}")


@pytest.fixture(scope="module")
def records_stack(aws):
    """A stack in moto with the outputs status and retry read."""
    cfn = client("cloudformation", aws["url"])
    template = {
        "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {"SpecsBucketName": {"Value": WEBHOOK_BUCKET}, "BuildspecsRoot": {"Value": WEBHOOK_ROOT}},
    }
    cfn.create_stack(StackName="records", TemplateBody=json.dumps(template))
    return "records"


def cli(aws_url: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **__import__("conftest").AWS_ENV, AWS_ENDPOINT_URL=aws_url)
    return subprocess.run(
        ["cargo", "run", "--quiet", "--locked", "-p", "flavor-ci-cli", "--features", "aws", "--", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_status_and_retry_follow_a_run_from_its_record(webhook, aws, pr_repo, records_stack):
    status, answer = deliver_pr(webhook, pr_payload(pr_repo, number=21))
    assert status == 200, answer
    batch_id = answer["batchBuildId"]
    key = f"{WEBHOOK_ROOT}runs/{urllib.parse.quote(batch_id, safe='')}.json"
    record = json.loads(aws["s3"].get_object(Bucket=WEBHOOK_BUCKET, Key=key)["Body"].read())
    assert record["commit"] == pr_repo["head"] and record["pullRequest"] == 21
    assert record["trigger"] == "pull-request" and [f["name"] for f in record["flavors"]] == ["r-4.4"]

    out = cli(aws["url"], "status", "--stack", records_stack, "--pr", "21")
    assert out.returncode == 4, out.stderr  # running
    assert f"batch {batch_id} on ci, commit {pr_repo['head']}" in out.stdout, out.stdout
    assert "r-4.4" in out.stdout and "IN_PROGRESS" in out.stdout and "1 of 1 flavors still running" in out.stdout
    out = cli(aws["url"], "retry", "--stack", records_stack, batch_id)
    assert out.returncode == 1 and "still running" in out.stderr, out.stderr

    builds = batch(aws, batch_id)["buildGroups"]
    finish_build(aws, builds[0]["currentBuildSummary"]["arn"].split("/", 1)[1], "FAILED")
    out = cli(aws["url"], "status", "--stack", records_stack, "--batch", batch_id, "--json")
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["overall"] == "failed" and report["flavors"][0]["status"] == "FAILED", report
    assert report["flavors"][0]["logs"].startswith("https://"), report

    out = cli(aws["url"], "retry", "--stack", records_stack, batch_id)
    assert out.returncode == 0, out.stderr
    assert f"retrying the failed builds of batch {batch_id}: r-4.4" in out.stdout
    assert batch(aws, batch_id)["buildBatchStatus"] == "IN_PROGRESS"
    out = cli(aws["url"], "status", "--stack", records_stack, "--commit", pr_repo["head"][:10])
    assert out.returncode == 4, (out.stdout, out.stderr)

    # A newer commit supersedes it: status says so, and retry refuses.
    newer = deliver_pr(webhook, pr_payload(pr_repo, number=21, action="synchronize"))[1]
    assert newer["stopped"] == [batch_id], newer
    out = cli(aws["url"], "status", "--stack", records_stack, "--batch", batch_id)
    assert f"stopped: superseded by {newer['batchBuildId']}" in out.stdout, out.stdout
    out = cli(aws["url"], "retry", "--stack", records_stack, batch_id)
    assert out.returncode == 1 and f"because {newer['batchBuildId']} replaced it" in out.stderr, out.stderr
    out = cli(aws["url"], "status", "--stack", records_stack, "--pr", "999")
    assert out.returncode == 1 and "no run matches" in out.stderr, out.stderr


def test_status_is_0_once_every_flavor_succeeded_and_retry_has_nothing_to_do(webhook, aws, pr_repo, records_stack):
    answer = deliver_pr(webhook, pr_payload(pr_repo, number=22))[1]
    batch_id = answer["batchBuildId"]
    for group in batch(aws, batch_id)["buildGroups"]:
        finish_build(aws, group["currentBuildSummary"]["arn"].split("/", 1)[1], "SUCCEEDED")
    assert batch(aws, batch_id)["buildBatchStatus"] == "SUCCEEDED"
    out = cli(aws["url"], "status", "--stack", records_stack, "--ref", "refs/pull/22/head")
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "all 1 flavors succeeded" in out.stdout, out.stdout
    out = cli(aws["url"], "retry", "--stack", records_stack, batch_id)
    assert out.returncode == 1 and "succeeded: nothing to retry" in out.stderr, out.stderr
