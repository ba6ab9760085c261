"""The buildspec-resource function end to end: the real binary behind `cargo lambda watch`, S3 in
moto, and a local receiver in place of CloudFormation's response URL."""

import copy
import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, cli_generate, client

EVENTS = ROOT / "events"


def event(
    name: str, receiver, bucket: str, answers=None, physical_id=None, **properties
) -> tuple[dict, str]:
    """A sample event from events/, aimed at `bucket` and a fresh response URL."""
    e = json.loads((EVENTS / f"buildspec-resource-{name}.json").read_text())
    url, path = receiver.new_url(answers)
    e["ResponseURL"] = url
    if physical_id is not None:
        e["PhysicalResourceId"] = physical_id
    for props in ("ResourceProperties", "OldResourceProperties"):
        if props in e:
            e[props]["Bucket"] = bucket
    for key, value in properties.items():
        if value is None:
            e["ResourceProperties"].pop(key, None)
        else:
            e["ResourceProperties"][key] = value
    return e, path


def answer(watch, receiver, e: dict, path: str) -> dict:
    """Invokes the function and returns the one response that arrived."""
    status, _ = watch.invoke(e)
    assert status == 200
    got = receiver.received(path)
    delivered = [r for r in got if r["answer"] == 200]
    assert len(delivered) == 1, got
    return json.loads(delivered[0]["raw"])


def keys(s3, bucket: str) -> list[str]:
    out = s3.list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in out.get("Contents", []))


def versions(s3, bucket: str) -> int:
    out = s3.list_object_versions(Bucket=bucket)
    return len(out.get("Versions", [])) + len(out.get("DeleteMarkers", []))


# --- the protocol ------------------------------------------------------------------------------


def test_create_stores_specs_and_answers_with_data(watch, receiver, s3, bucket):
    e, path = event("create", receiver, bucket)
    r = answer(watch, receiver, e, path)
    assert r["Status"] == "SUCCESS", r
    assert r["StackId"] == e["StackId"]
    assert r["RequestId"] == e["RequestId"]
    assert r["LogicalResourceId"] == "Buildspecs"
    assert r["PhysicalResourceId"].startswith(f"flavor-ci:v1:s3://{bucket}/flavor-ci/")
    data = r["Data"]
    assert data["FlavorCount"] == "3"
    assert data["CiBatchBuildspecArn"] == f"arn:aws:s3:::{bucket}/{data['CiBatchBuildspecKey']}"
    assert data["ReleaseBatchBuildspecArn"].endswith("/release-batch-buildspec.yaml")
    stored = keys(s3, bucket)
    assert data["CiBatchBuildspecKey"] in stored
    assert data["SettingsKey"] in stored
    assert len(stored) == 3  # settings, CI batch, release batch: not one per flavor

    spec = s3.get_object(Bucket=bucket, Key=data["CiBatchBuildspecKey"])["Body"].read()
    doc = yaml.safe_load(spec)
    ids = [t["identifier"] for t in doc["batch"]["build-graph"]]
    assert "build_test_Exasol_8_cuda_ml" in ids
    # The key carries the content hash.
    import hashlib

    assert hashlib.sha256(spec).hexdigest() in data["CiBatchBuildspecKey"]


def test_the_response_put_follows_the_protocol(watch, receiver, bucket):
    e, path = event("create", receiver, bucket)
    answer(watch, receiver, e, path)
    (put,) = receiver.received(path)
    assert put["headers"]["content-type"] == ""
    assert int(put["headers"]["content-length"]) == len(put["raw"])
    assert len(put["raw"]) <= 4096
    assert put["query"].startswith("X-Amz-Signature=")


def test_stored_settings_regenerate_the_same_buildspecs(watch, receiver, s3, bucket, tmp_path):
    e, path = event("create", receiver, bucket)
    data = answer(watch, receiver, e, path)["Data"]
    settings = json.loads(s3.get_object(Bucket=bucket, Key=data["SettingsKey"])["Body"].read())
    # The CLI, given the stored settings and the same flavors, writes the same bytes.
    out = cli_generate(e["ResourceProperties"]["Flavors"], settings, tmp_path)
    local = (out / "ci-batch-buildspec.yaml").read_bytes()
    stored = s3.get_object(Bucket=bucket, Key=data["CiBatchBuildspecKey"])["Body"].read()
    assert local == stored


def test_update_keeps_the_id_and_changes_the_spec_key(watch, receiver, s3, bucket):
    c, cpath = event("create", receiver, bucket)
    created = answer(watch, receiver, c, cpath)
    u, upath = event("update", receiver, bucket, physical_id=created["PhysicalResourceId"])
    updated = answer(watch, receiver, u, upath)
    assert updated["Status"] == "SUCCESS", updated
    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert updated["Data"]["FlavorCount"] == "4"
    assert updated["Data"]["CiBatchBuildspecKey"] != created["Data"]["CiBatchBuildspecKey"]
    # The old spec stays for builds that are still running.
    stored = keys(s3, bucket)
    assert created["Data"]["CiBatchBuildspecKey"] in stored
    assert updated["Data"]["CiBatchBuildspecKey"] in stored


def test_a_new_prefix_is_a_replacement_and_the_old_delete_cleans_only_the_old(
    watch, receiver, s3, bucket
):
    c, cpath = event("create", receiver, bucket)
    old = answer(watch, receiver, c, cpath)
    u, upath = event("update", receiver, bucket, Prefix="moved/specs/", physical_id=old["PhysicalResourceId"])
    new = answer(watch, receiver, u, upath)
    assert new["Status"] == "SUCCESS", new
    assert new["PhysicalResourceId"] != old["PhysicalResourceId"]
    assert new["Data"]["CiBatchBuildspecKey"].startswith("moved/specs/")

    d, dpath = event("delete", receiver, bucket, physical_id=old["PhysicalResourceId"])
    deleted = answer(watch, receiver, d, dpath)
    assert deleted["Status"] == "SUCCESS", deleted
    assert deleted["PhysicalResourceId"] == old["PhysicalResourceId"]
    left = keys(s3, bucket)
    assert left and all(k.startswith("moved/specs/") for k in left)


def test_an_invalid_update_fails_and_keeps_the_old_id(watch, receiver, s3, bucket):
    c, cpath = event("create", receiver, bucket)
    created = answer(watch, receiver, c, cpath)
    before = keys(s3, bucket)
    u, upath = event("update", receiver, bucket, Flavors=["ok", "bad/name"], physical_id=created["PhysicalResourceId"])
    r = answer(watch, receiver, u, upath)
    assert r["Status"] == "FAILED"
    assert r["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert "Flavors" in r["Reason"]
    assert keys(s3, bucket) == before


def test_delete_with_s3_unavailable_fails_with_a_reason(watch, receiver, gateway, s3, bucket):
    c, cpath = event("create", receiver, bucket)
    created = answer(watch, receiver, c, cpath)
    gateway.set_mode("refuse")
    d, dpath = event("delete", receiver, bucket, physical_id=created["PhysicalResourceId"])
    r = answer(watch, receiver, d, dpath)
    assert r["Status"] == "FAILED"
    assert "ListObjectVersions" in r["Reason"], r["Reason"]
    gateway.set_mode("pass")
    assert len(keys(s3, bucket)) == 3


def test_delete_removes_every_version_it_wrote_and_nothing_else(watch, receiver, s3, bucket):
    s3.put_object(Bucket=bucket, Key="flavor-ci/someone-else.txt", Body=b"keep")
    c, cpath = event("create", receiver, bucket)
    created = answer(watch, receiver, c, cpath)
    d, dpath = event("delete", receiver, bucket, physical_id=created["PhysicalResourceId"])
    r = answer(watch, receiver, d, dpath)
    assert r["Status"] == "SUCCESS", r
    assert keys(s3, bucket) == ["flavor-ci/someone-else.txt"]
    assert versions(s3, bucket) == 1
    # Deleting again (objects already gone) is fine.
    d2, d2path = event("delete", receiver, bucket, physical_id=created["PhysicalResourceId"])
    assert answer(watch, receiver, d2, d2path)["Status"] == "SUCCESS"


def test_delete_after_failed_create_is_acknowledged_without_touching_s3(
    watch, receiver, s3, bucket
):
    c, cpath = event("create-invalid", receiver, bucket)
    failed = answer(watch, receiver, c, cpath)
    assert failed["Status"] == "FAILED"
    assert failed["PhysicalResourceId"] == f"flavor-ci:v1:create-failed:{c['RequestId']}"
    assert keys(s3, bucket) == []
    s3.put_object(Bucket=bucket, Key="flavor-ci/other.txt", Body=b"x")
    d, dpath = event("delete", receiver, bucket, physical_id=failed["PhysicalResourceId"])
    r = answer(watch, receiver, d, dpath)
    assert r["Status"] == "SUCCESS"
    assert r["PhysicalResourceId"] == failed["PhysicalResourceId"]
    assert keys(s3, bucket) == ["flavor-ci/other.txt"]


@pytest.mark.parametrize(
    "physical_id",
    [
        "Buildspecs-1X2Y3Z4W5V6U",  # made up by CloudFormation
        "flavor-ci:v1:s3://{bucket}/flavor-ci/other-stack-0123456789ab/Buildspecs/",
        "flavor-ci:v1:s3://{bucket}/",
    ],
)
def test_delete_of_an_id_this_resource_never_produced_touches_nothing(
    watch, receiver, s3, bucket, physical_id
):
    s3.put_object(Bucket=bucket, Key="flavor-ci/other-stack-0123456789ab/Buildspecs/x", Body=b"x")
    d, dpath = event("delete", receiver, bucket, physical_id=physical_id.format(bucket=bucket))
    r = answer(watch, receiver, d, dpath)
    assert r["Status"] == "SUCCESS", r
    assert r["PhysicalResourceId"] == d["PhysicalResourceId"]
    assert keys(s3, bucket) == ["flavor-ci/other-stack-0123456789ab/Buildspecs/x"]


def test_duplicate_deliveries_are_harmless(watch, receiver, s3, bucket):
    e, path = event("create", receiver, bucket)
    first = answer(watch, receiver, e, path)
    before = versions(s3, bucket)
    e2 = copy.deepcopy(e)
    url, path2 = receiver.new_url()
    e2["ResponseURL"] = url
    second = answer(watch, receiver, e2, path2)
    assert second["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert second["Data"] == first["Data"]
    assert "(0 new)" in second["Reason"]
    assert versions(s3, bucket) == before  # nothing rewritten


def test_concurrent_duplicates_agree(watch, receiver, s3, bucket):
    e, path = event("create", receiver, bucket)
    results = []
    threads = [threading.Thread(target=lambda: results.append(watch.invoke(e))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [json.loads(r["raw"]) for r in receiver.received(path)]
    assert len(got) == 2
    assert all(g["Status"] == "SUCCESS" for g in got), got
    assert got[0]["Data"] == got[1]["Data"]
    assert versions(s3, bucket) == 3


# --- invalid input -----------------------------------------------------------------------------

INVALID = [
    ({"Bucket": None}, "Bucket: is required"),
    ({"Bucket": "Not_A_Bucket"}, "Bucket: `Not_A_Bucket` is not a valid bucket name"),
    ({"Bucket": ["a"]}, "Bucket: must be a string"),
    ({"Prefix": "/abs/"}, "Prefix: must not start with `/`"),
    ({"Prefix": "a//b"}, "Prefix: must not contain empty"),
    ({"Prefix": "p" * 600}, "Prefix: is 600 bytes"),
    ({"Flavors": None}, "Flavors: is required"),
    ({"Flavors": []}, "Flavors: the flavor list is empty"),
    ({"Flavors": ["ok", "../up"]}, "Flavors: "),
    ({"Flavors": ["a.b", "a_b"]}, "both map to build identifier"),
    ({"Flavors": {"a": 1}}, "Flavors: is an object"),
    ({"Flavours": ["a"]}, "Flavours: unknown property; did you mean Flavors?"),
    ({"Settings": {"batch": {"max-builds": "lots"}}}, "Settings.batch.max-builds"),
    ({"Settings": {"build": {"compute-type": "HUGE"}}}, "Settings.build.compute-type"),
    ({"Settings": {"bogus": "1"}}, "Settings"),
    ({"Settings": {"batch": {"max-builds": "2"}}}, "Settings.batch.max-builds: 3 flavors"),
    ({"Settings": "batch: [unclosed"}, "Settings"),
    ({"Settings": "17"}, "Settings"),
    ({"Settings": ["x"]}, "Settings: must be an object"),
]


@pytest.mark.parametrize("change,expected", INVALID, ids=[r[1][:40] for r in INVALID])
def test_invalid_properties_fail_with_a_reason_naming_the_property(
    watch, receiver, s3, bucket, change, expected
):
    e, path = event("create", receiver, bucket, **change)
    r = answer(watch, receiver, e, path)
    assert r["Status"] == "FAILED", r
    assert expected in r["Reason"], r["Reason"]
    assert r["PhysicalResourceId"].startswith("flavor-ci:v1:create-failed:")
    assert keys(s3, bucket) == []


def test_properties_that_are_not_an_object_fail(watch, receiver, bucket):
    e, path = event("create", receiver, bucket)
    e["ResourceProperties"] = "Bucket=x"
    r = answer(watch, receiver, e, path)
    assert r["Status"] == "FAILED"
    assert "Properties" in r["Reason"]


def test_a_malformed_event_with_a_response_url_is_answered(watch, receiver, bucket):
    e, path = event("create", receiver, bucket)
    del e["RequestType"]
    e["RequestId"] = 42  # not a string: typed parsing would reject the whole event
    r = answer(watch, receiver, e, path)
    assert r["Status"] == "FAILED"
    assert "RequestType" in r["Reason"]


@pytest.mark.parametrize("form", ["list", "object", "yaml-block", "yaml-flow"])
def test_settings_nested_too_deeply_fail_with_a_reason_and_the_function_lives_on(
    watch, receiver, s3, bucket, form
):
    """Thousands of levels of nesting, as JSON properties or as YAML text: FAILED naming the
    depth, nothing written, and the next request is served by the same process."""
    e, path = event("create", receiver, bucket)
    levels = 50_000
    e["ResourceProperties"]["Settings"] = "DEEP"
    deep = {
        "list": "[" * levels + "1" + "]" * levels,
        "object": '{"k":' * levels + "1" + "}" * levels,
        "yaml-block": json.dumps("build:\n  variables:\n    " + "- " * levels + "x\n"),
        "yaml-flow": json.dumps("build: " + "[" * levels + "]" * levels + "\n"),
    }[form]
    text = json.dumps(e).replace('"DEEP"', deep, 1)
    status, _ = watch.invoke(text.encode())
    assert status == 200
    got = [r for r in receiver.received(path) if r["answer"] == 200]
    assert len(got) == 1, got
    r = json.loads(got[0]["raw"])
    assert r["Status"] == "FAILED"
    assert "more than 100 levels deep" in r["Reason"], r["Reason"]
    assert keys(s3, bucket) == []
    ok, ok_path = event("create", receiver, bucket)
    assert answer(watch, receiver, ok, ok_path)["Status"] == "SUCCESS"


def test_an_event_without_a_usable_response_url_sends_nothing(watch, receiver):
    before = len(receiver.requests)
    for payload in [b"[]", b'"text"', json.dumps({"RequestType": "Create", "ResponseURL": "ftp://x/y"}).encode()]:
        status, _ = watch.invoke(payload)
        assert status == 200
    assert len(receiver.requests) == before


def test_data_that_cannot_fit_fails_before_writing(watch, receiver, s3, bucket):
    long_prefix = "/".join(["p" * 60] * 8) + "/"
    e, path = event("create", receiver, bucket, Prefix=long_prefix)
    r = answer(watch, receiver, e, path)
    assert r["Status"] == "FAILED", r
    assert "4096" in r["Reason"] and "Prefix" in r["Reason"]
    assert "Data" not in r
    assert keys(s3, bucket) == []


# --- failures around the function ------------------------------------------------------------


def test_s3_unavailable_fails_with_a_reason(watch, receiver, gateway, bucket):
    gateway.set_mode("refuse")
    e, path = event("create", receiver, bucket)
    r = answer(watch, receiver, e, path)
    assert r["Status"] == "FAILED"
    assert "S3 PutObject" in r["Reason"] and "reachable" in r["Reason"], r["Reason"]


def test_a_deadline_shorter_than_the_work_is_answered_before_it(watch, receiver, gateway, s3, bucket):
    gateway.set_mode("stall")
    e, path = event("create", receiver, bucket, ServiceTimeout="3")
    start = time.monotonic()
    r = answer(watch, receiver, e, path)
    took = receiver.received(path)[0]["at"] - start
    assert r["Status"] == "FAILED"
    assert "time limit" in r["Reason"]
    assert took < 3.0, took
    gateway.set_mode("pass")
    assert keys(s3, bucket) == []


def test_a_panic_still_answers_failed_and_the_function_lives_on(watch, receiver, bucket):
    e, path = event("create", receiver, bucket, FaultInjection="panic")
    r = answer(watch, receiver, e, path)
    assert r["Status"] == "FAILED"
    assert "internal error" in r["Reason"] and "injected fault" in r["Reason"]
    assert r["PhysicalResourceId"].startswith("flavor-ci:v1:create-failed:")
    e2, path2 = event("create", receiver, bucket)
    assert answer(watch, receiver, e2, path2)["Status"] == "SUCCESS"


def test_a_panic_answers_failed_even_when_panics_abort(watch_abort, receiver, bucket):
    e, path = event("create", receiver, bucket, FaultInjection="panic")
    # The process aborts after answering; the emulator never completes the invocation (Lambda
    # would report the runtime's exit), so only the answer is awaited.
    def invoke():
        try:
            watch_abort.invoke(e, timeout=60)
        except OSError:
            pass

    threading.Thread(target=invoke, daemon=True).start()
    got = receiver.wait_for(path, timeout=120)
    time.sleep(0.5)
    got = receiver.received(path)
    assert len(got) == 1, got
    r = json.loads(got[0]["raw"])
    assert r["Status"] == "FAILED"
    assert "injected fault" in r["Reason"]
    assert r["PhysicalResourceId"].startswith("flavor-ci:v1:create-failed:")


def test_response_url_failing_then_recovering_delivers_once(watch, receiver, bucket):
    e, path = event("create", receiver, bucket, answers=[500, "drop", 503])
    r = answer(watch, receiver, e, path)
    assert r["Status"] == "SUCCESS"
    got = receiver.received(path)
    assert [g["answer"] for g in got] == [500, "drop", 503, 200]
    assert len({g["raw"] for g in got}) == 1


def test_response_url_failing_for_good_gives_up_and_reports_an_error(watch, receiver, bucket):
    e, path = event("create", receiver, bucket, answers=[500] * 20)
    status, body = watch.invoke(e)
    got = receiver.received(path)
    assert 1 < len(got) <= 6
    assert all(g["answer"] == 500 for g in got)
    assert b"could not be delivered" in body or status != 200


def test_a_4xx_from_the_response_url_is_not_retried(watch, receiver, bucket):
    e, path = event("create", receiver, bucket, answers=[403])
    watch.invoke(e)
    assert [g["answer"] for g in receiver.received(path)] == [403]


def test_logs_are_json_and_never_hold_the_signature(watch, receiver, bucket):
    e, path = event("create", receiver, bucket)
    answer(watch, receiver, e, path)
    log = watch.log_text()
    signatures = [r["query"] for r in receiver.requests]
    for query in signatures:
        secret = query.split("X-Amz-Signature=")[1].split("&")[0]
        assert secret not in log
    lines = [json.loads(l) for l in log.splitlines() if l.startswith("{")]
    messages = [l.get("fields", {}).get("message") for l in lines]
    assert "response delivered" in messages
    assert "answering" in messages


# --- CloudFormation itself (moto) --------------------------------------------------------------

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  SpecsBucket:
    Type: AWS::S3::Bucket
  Buildspecs:
    Type: Custom::Buildspecs
    Properties:
      ServiceToken: !Sub "arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:function:buildspec-resource"
      ServiceTimeout: 120
      Bucket: !Ref SpecsBucket
      Flavors: [alpha, beta-2, "gamma.3"]
      Settings:
        batch: {max-builds: 10, fast-fail: true}
Outputs:
  CiSpec:
    Value: !GetAtt Buildspecs.CiBatchBuildspecArn
  Count:
    Value: !GetAtt Buildspecs.FlavorCount
  Bucket:
    Value: !Ref SpecsBucket
"""


def moto_stack(moto, name: str) -> dict:
    """A stack in moto whose Buildspecs resource this function created (moto forwards the
    custom resource's events to the `watch` instance)."""
    iam = client("iam", moto)
    try:
        role = iam.get_role(RoleName="buildspec-resource-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(
            RoleName="buildspec-resource-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
    lam = client("lambda", moto)
    try:
        lam.get_function(FunctionName="buildspec-resource")
    except lam.exceptions.ResourceNotFoundException:
        lam.create_function(
            FunctionName="buildspec-resource", Runtime="provided.al2023", Role=role,
            Handler="bootstrap", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
    cfn = client("cloudformation", moto)
    stack_id = cfn.create_stack(StackName=name, TemplateBody=TEMPLATE)["StackId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_IN_PROGRESS":
            break
        time.sleep(0.2)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return stack


def test_a_delete_cloudformation_does_not_confirm_removes_nothing(watch, watch_guarded, s3, bucket, receiver):
    """Anyone who may invoke the function could send a Delete with a stack's ids. As deployed,
    the function asks CloudFormation first (here moto, which knows no such stack): nothing is
    removed and the answer is FAILED with the reason. (Moto does not keep the physical ids
    custom resources answer with, so the confirming answers are unit-tested.)"""
    e, path = event("create", receiver, bucket)
    created = answer(watch, receiver, e, path)
    assert created["Status"] == "SUCCESS", created
    before = keys(s3, bucket)
    assert len(before) == 3
    d, path = event("delete", receiver, bucket, physical_id=created["PhysicalResourceId"])
    r = answer(watch_guarded, receiver, d, path)
    assert r["Status"] == "FAILED", r
    assert "cannot confirm with CloudFormation" in r["Reason"] and "nothing was removed" in r["Reason"], r
    assert r["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert keys(s3, bucket) == before
    # The same Delete where the check is off (as the other tests run) removes the objects.
    d, path = event("delete", receiver, bucket, physical_id=created["PhysicalResourceId"])
    assert answer(watch, receiver, d, path)["Status"] == "SUCCESS"
    assert keys(s3, bucket) == []


def test_moto_cloudformation_stack_completes_with_the_functions_answer(watch, moto, s3):
    stack = moto_stack(moto, "flavor-ci-e2e")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["Count"] == "3"
    bucket = outputs["Bucket"]
    assert outputs["CiSpec"].startswith(f"arn:aws:s3:::{bucket}/flavor-ci/flavor-ci-e2e-")
    key = outputs["CiSpec"].split(f"arn:aws:s3:::{bucket}/", 1)[1]
    spec = yaml.safe_load(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert spec["batch"]["fast-fail"] is True
