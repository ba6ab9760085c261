"""Starts moto's server on 127.0.0.1 with what flavor-ci's tests need and moto lacks.

- CloudFormation custom resources: moto hands the Create event to its Lambda backend, which
  needs Docker. Here the event is forwarded to a real function behind `cargo lambda watch`
  (LAMBDA_FORWARD_URL), and moto's response endpoint is announced on 127.0.0.1, so the
  function's answer completes the stack.
- CloudFormation dynamic references to Secrets Manager: a stack whose resource reads a secret
  that does not exist fails the way CloudFormation fails it (the resource CREATE_FAILED with the
  reason, then ROLLBACK_COMPLETE) instead of being created with the reference unresolved.
- CodeBuild batch builds: each batch gets a build per task of its buildspec, at the batch's
  source version (`BatchGetBuilds` serves them; `StopBuild` with the id `<build id>#<status>` ends one with that status, a
  test-only convention, and the batch ends with its last build);
  `RetryBuildBatch` (failed builds again, or all); `StopBuildBatch` (an in-progress batch becomes
  STOPPED; any other is an error, as when a batch has finished); `StartBuildBatch` (with its idempotency token and a check that an S3
  `buildspecOverride` exists), `BatchGetBuildBatches` and `ListBuildBatchesForProject`.

Usage: python moto_launcher.py PORT
"""

import json
import os
import sys
import urllib.request


def main() -> None:
    port = sys.argv[1]
    os.environ["MOTO_PORT"] = port

    from moto import settings
    from moto.awslambda import models as lambda_models
    from moto.server import main as server_main

    settings.moto_server_host = lambda: "http://127.0.0.1"

    forward = os.environ.get("LAMBDA_FORWARD_URL")

    def invoke(self, body, request_headers, response_headers):
        if not forward:
            raise RuntimeError("LAMBDA_FORWARD_URL is not set; no function to invoke")
        data = body if isinstance(body, bytes) else str(body).encode()
        url = forward.format(name=self.function_name)
        req = urllib.request.Request(url, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.read().decode()

    lambda_models.LambdaFunction.invoke = invoke
    add_batch_builds()
    add_secret_references()
    server_main(["-H", "127.0.0.1", "-p", port])


def add_secret_references() -> None:
    import re

    from moto.cloudformation.models import Event, Stack
    from moto.secretsmanager.models import secretsmanager_backends

    reference = re.compile(r"\{\{resolve:secretsmanager:([^:}]+)")
    original = Stack.create_resources

    def create_resources(self):
        secrets = secretsmanager_backends[self.account_id][self.region_name]
        for logical_id, resource in (self.template_dict.get("Resources") or {}).items():
            text = json.dumps(resource.get("Properties") or {})
            text = re.sub(r"\$\{([\w:]+)\}", lambda m: str(self.parameters.get(m.group(1), m.group(0))), text)
            for name in reference.findall(text):
                if secrets._is_valid_identifier(name):
                    continue
                self.status = "CREATE_IN_PROGRESS"
                for status, reason in (
                    ("CREATE_IN_PROGRESS", None),
                    ("CREATE_FAILED", "Secrets Manager can't find the specified secret."),
                ):
                    self.events.append(Event(
                        stack_id=self.stack_id, stack_name=self.name, logical_resource_id=logical_id,
                        physical_resource_id="", resource_type=resource.get("Type", ""),
                        resource_status=status, resource_status_reason=reason, resource_properties=None,
                    ))
                self._add_stack_event(
                    "ROLLBACK_IN_PROGRESS",
                    resource_status_reason=f"The following resource(s) failed to create: [{logical_id}]. Rollback requested by user.",
                )
                self._add_stack_event("ROLLBACK_COMPLETE")
                self.status = "ROLLBACK_COMPLETE"
                return
        original(self)

    Stack.create_resources = create_resources


def add_batch_builds() -> None:
    """CodeBuild's batch calls, kept per backend, as far as flavor-ci uses them."""
    import threading
    import time
    import uuid

    from moto.codebuild.exceptions import InvalidInputException, ResourceNotFoundException
    from moto.codebuild.responses import CodeBuildResponse
    from moto.core.responses import ActionResult
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    lock = threading.Lock()

    def batches(self):
        backend = self.codebuild_backend
        if not hasattr(backend, "flavor_ci_batches"):
            backend.flavor_ci_batches = {}
            backend.flavor_ci_tokens = {}
            backend.flavor_ci_builds = {}
        return backend

    def identifiers(spec: bytes) -> list[str]:
        """The task identifiers of a batch buildspec's build-graph or build-list."""
        import yaml

        try:
            # libyaml's loader when PyYAML has it: the pure-Python one takes ~170 ms for a
            # 500-flavor buildspec, which the webhook benchmark would count as the function's.
            doc = yaml.load(spec, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
            tasks = doc.get("batch", {}).get("build-graph") or doc.get("batch", {}).get("build-list") or []
            return [t["identifier"] for t in tasks if isinstance(t, dict) and "identifier" in t]
        except Exception:
            return []

    def new_build(backend, project: str, identifier: str, now: float, batch_arn: str,
                  source: str = "") -> dict:
        build_id = f"{project}:{uuid.uuid4()}"
        build = {"id": build_id, "arn": f"arn:aws:codebuild:us-east-1:123456789012:build/{build_id}",
                 "projectName": project, "buildStatus": "IN_PROGRESS", "startTime": now,
                 "sourceVersion": source, "resolvedSourceVersion": source,
                 "currentPhase": "BUILD", "identifier": identifier, "buildBatchArn": batch_arn,
                 "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                                 "computeType": "BUILD_GENERAL1_SMALL"},
                 "logs": {"deepLink": f"https://console.aws.amazon.com/cloudwatch/logs/{build_id}",
                          "groupName": f"/aws/codebuild/{project}", "streamName": build_id.split(":", 1)[1]}}
        backend.flavor_ci_builds[build_id] = build
        return build

    def settle(batch: dict, builds: dict) -> None:
        """A batch ends when its builds have: SUCCEEDED when all did, else FAILED."""
        states = [builds[g["currentBuildSummary"]["arn"].split("/", 1)[1]]["buildStatus"]
                  for g in batch["buildGroups"]]
        if batch["buildBatchStatus"] == "IN_PROGRESS" and states and "IN_PROGRESS" not in states:
            batch["buildBatchStatus"] = "SUCCEEDED" if all(s == "SUCCEEDED" for s in states) else "FAILED"
            batch["endTime"] = time.time()

    def start_build_batch(self):
        name = self._get_param("projectName")
        backend = batches(self)
        partition = get_partition(self.region)
        if name not in backend.codebuild_projects:
            raise ResourceNotFoundException(
                f"Project cannot be found: arn:{partition}:codebuild:{self.region}:{self.current_account}:project/{name}"
            )
        spec = self._get_param("buildspecOverride")
        prefix = f"arn:{partition}:s3:::"
        found = None
        if spec and spec.startswith(prefix):
            bucket, _, key = spec[len(prefix):].partition("/")
            s3 = s3_backends[self.current_account][partition]
            try:
                found = s3.get_object(bucket, key)
            except Exception:
                found = None
            if found is None:
                raise InvalidInputException(f"Invalid buildspec override: {spec} does not exist")
        token = self._get_param("idempotencyToken")
        with lock:
            now = time.time()
            if token and token in backend.flavor_ci_tokens:
                batch_id, at = backend.flavor_ci_tokens[token]
                if now - at < 300:
                    return ActionResult({"buildBatch": backend.flavor_ci_batches[batch_id]})
            batch_id = f"{name}:{uuid.uuid4()}"
            batch_arn = f"arn:{partition}:codebuild:{self.region}:{self.current_account}:build-batch/{batch_id}"
            groups = []
            for identifier in identifiers(found.value if found is not None else b""):
                build = new_build(backend, name, identifier, now, batch_arn,
                                  self._get_param("sourceVersion") or "")
                groups.append({"identifier": identifier, "currentBuildSummary": {
                    "arn": build["arn"], "buildStatus": "IN_PROGRESS", "requestedOn": now}})
            batch = {
                "id": batch_id,
                "arn": batch_arn,
                "projectName": name,
                "sourceVersion": self._get_param("sourceVersion"),
                "buildBatchStatus": "IN_PROGRESS",
                "startTime": now,
                # The batch's shape has no override field; its source carries the spec used.
                "source": {"type": "GITHUB", "buildspec": spec},
                "buildGroups": groups,
            }
            backend.flavor_ci_batches[batch_id] = batch
            if token:
                backend.flavor_ci_tokens[token] = (batch_id, now)
        return ActionResult({"buildBatch": batch})

    def batch_get_build_batches(self):
        backend = batches(self)
        ids = self._get_param("ids") or []
        found = [backend.flavor_ci_batches[i] for i in ids if i in backend.flavor_ci_batches]
        missing = [i for i in ids if i not in backend.flavor_ci_batches]
        return ActionResult({"buildBatches": found, "buildBatchesNotFound": missing})

    def list_build_batches_for_project(self):
        backend = batches(self)
        name = self._get_param("projectName")
        ids = [b["id"] for b in backend.flavor_ci_batches.values() if b["projectName"] == name]
        return ActionResult({"ids": ids})

    def stop_build_batch(self):
        backend = batches(self)
        batch_id = self._get_param("id")
        with lock:
            batch = backend.flavor_ci_batches.get(batch_id)
            if batch is None:
                raise ResourceNotFoundException(f"Build batch {batch_id} does not exist")
            if batch["buildBatchStatus"] != "IN_PROGRESS":
                raise InvalidInputException(f"Build batch {batch_id} is not in progress")
            batch["buildBatchStatus"] = "STOPPED"
        return ActionResult({"buildBatch": batch})

    def batch_get_builds(self):
        backend = batches(self)
        ids = self._get_param("ids") or []
        found = [backend.flavor_ci_builds[i] for i in ids if i in backend.flavor_ci_builds]
        missing = [i for i in ids if i not in backend.flavor_ci_builds]
        return ActionResult({"builds": found, "buildsNotFound": missing})

    original_stop_build = CodeBuildResponse.stop_build

    def stop_build(self):
        """StopBuild on a batch's build stops it; `id` = "<build id>#<status>[#<end time>]" is
        test-only: it ends the build with that status (SUCCEEDED, FAILED, …), at that time (epoch
        seconds; default now). The batch ends with its last."""
        backend = batches(self)
        build_id, _, status = self._get_param("id").partition("#")
        if build_id not in backend.flavor_ci_builds:
            return original_stop_build(self)
        with lock:
            build = backend.flavor_ci_builds[build_id]
            status, _, ended = status.partition("#")
            status = status or "STOPPED"
            build.update(buildStatus=status, endTime=float(ended) if ended else time.time(),
                         currentPhase="COMPLETED")
            if status not in ("SUCCEEDED", "STOPPED"):
                build["phases"] = [
                    {"phaseType": "INSTALL", "phaseStatus": "SUCCEEDED", "durationInSeconds": 4},
                    {"phaseType": "BUILD", "phaseStatus": status, "durationInSeconds": 95,
                     "contexts": [{"statusCode": "COMMAND_EXECUTION_ERROR",
                                   "message": "Error while executing command: make image. Reason: exit status 2"}]},
                ]
            for batch in backend.flavor_ci_batches.values():
                for g in batch["buildGroups"]:
                    if g["currentBuildSummary"]["arn"] == build["arn"]:
                        g["currentBuildSummary"]["buildStatus"] = status
                        settle(batch, backend.flavor_ci_builds)
        return ActionResult({"build": build})

    def retry_build_batch(self):
        backend = batches(self)
        batch_id, kind = self._get_param("id"), self._get_param("retryType")
        with lock:
            batch = backend.flavor_ci_batches.get(batch_id)
            if batch is None:
                raise ResourceNotFoundException(f"Build batch {batch_id} does not exist")
            if batch["buildBatchStatus"] == "IN_PROGRESS":
                raise InvalidInputException(f"Build batch {batch_id} is in progress")
            now = time.time()
            for g in batch["buildGroups"]:
                old = backend.flavor_ci_builds[g["currentBuildSummary"]["arn"].split("/", 1)[1]]
                if kind == "RETRY_ALL_BUILDS" or old["buildStatus"] != "SUCCEEDED":
                    build = new_build(backend, batch["projectName"], g["identifier"], now, batch["arn"],
                                      batch.get("sourceVersion") or "")
                    g["currentBuildSummary"] = {"arn": build["arn"], "buildStatus": "IN_PROGRESS", "requestedOn": now}
            batch["buildBatchStatus"] = "IN_PROGRESS"
            batch.pop("endTime", None)
        return ActionResult({"buildBatch": batch})

    CodeBuildResponse.batch_get_builds = batch_get_builds
    CodeBuildResponse.stop_build = stop_build
    CodeBuildResponse.retry_build_batch = retry_build_batch
    CodeBuildResponse.start_build_batch = start_build_batch
    CodeBuildResponse.stop_build_batch = stop_build_batch
    CodeBuildResponse.batch_get_build_batches = batch_get_build_batches
    CodeBuildResponse.list_build_batches_for_project = list_build_batches_for_project


if __name__ == "__main__":
    main()
