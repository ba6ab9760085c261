#!/usr/bin/env python3
"""Creates what the functions expect in a local moto at 127.0.0.1:PORT, if it is not there yet:
the specs bucket with a settings object, the webhook secret, a role and the `ci` and `release`
CodeBuild projects for acme/slc. Safe to run again. Then `batches` lists the batch builds
started so far, to see that a delivery started one.

Usage: .venv/bin/python scripts/local-aws.py setup [PORT]
       .venv/bin/python scripts/local-aws.py batches [PORT]
"""

import sys

import boto3

BUCKET = "flavor-ci-specs-example"
SETTINGS_KEY = "flavor-ci/example/settings/s.json"
SECRET = "flavor-ci/webhook"
SECRET_VALUE = "flavor-ci-example-secret"


def clients(port: int):
    kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
              aws_access_key_id="x", aws_secret_access_key="x")
    return {name: boto3.client(name, **kw) for name in ("s3", "secretsmanager", "iam", "codebuild")}


def setup(c) -> None:
    if BUCKET not in [b["Name"] for b in c["s3"].list_buckets()["Buckets"]]:
        c["s3"].create_bucket(Bucket=BUCKET)
    c["s3"].put_object(Bucket=BUCKET, Key=SETTINGS_KEY, Body=b"{}")
    if not c["secretsmanager"].list_secrets(Filters=[{"Key": "name", "Values": [SECRET]}])["SecretList"]:
        c["secretsmanager"].create_secret(Name=SECRET, SecretString=SECRET_VALUE)
    try:
        role = c["iam"].get_role(RoleName="cb")["Role"]["Arn"]
    except c["iam"].exceptions.NoSuchEntityException:
        role = c["iam"].create_role(RoleName="cb", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    existing = set(c["codebuild"].list_projects()["projects"])
    for name in ("ci", "release"):
        if name not in existing:
            c["codebuild"].create_project(
                name=name, serviceRole=role, artifacts={"type": "NO_ARTIFACTS"},
                source={"type": "GITHUB", "location": "https://github.com/acme/slc.git"},
                environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                             "computeType": "BUILD_GENERAL1_SMALL"})
    print(f"ready: s3://{BUCKET}, secret {SECRET}, projects ci and release")


def batches(c) -> None:
    for project in ("ci", "release"):
        ids = c["codebuild"].list_build_batches_for_project(projectName=project)["ids"]
        for batch in c["codebuild"].batch_get_build_batches(ids=ids)["buildBatches"] if ids else []:
            print(f"{project}: {batch['id']} at {batch.get('sourceVersion', '?')}")
        if not ids:
            print(f"{project}: no batch started")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("setup", "batches"):
        sys.exit(__doc__)
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 5000
    {"setup": setup, "batches": batches}[sys.argv[1]](clients(port))
