"""Reads template.yaml and source-credentials.yaml and holds them to the least-privilege rules:
no wildcard actions, no `*` resource where a resource can be named, every function's policy
names this stack's own bucket prefix, secrets and projects."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# Actions that support no resource-level permissions, so `*` is their only resource.
UNSCOPABLE = {
    "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs",
}


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def load(name: str) -> dict:
    return yaml.load((ROOT / name).read_text(), Loader=CfnLoader)


@pytest.fixture(scope="module")
def template():
    return load("template.yaml")


def roles(template):
    return {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}


def branches(value):
    """Both sides of an Fn::If, or the value itself."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, a, b = value["Fn::If"]
        return branches(a) + branches(b)
    return [value]


def statements(role):
    for policy in role["Properties"].get("Policies", []):
        for p in branches(policy):
            if p == {"Ref": "AWS::NoValue"}:
                continue
            for st in p["PolicyDocument"]["Statement"]:
                yield p["PolicyName"], st


def as_list(v):
    return v if isinstance(v, list) else [v]


def resources(st):
    out = []
    for r in as_list(st["Resource"]):
        for b in branches(r):
            out.extend(as_list(b))
    return out


def text(resource) -> str:
    """A resource as text: a literal, or the string inside Fn::Sub, or the Ref/GetAtt target."""
    if isinstance(resource, str):
        return resource
    if "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    if "Ref" in resource:
        return "${" + resource["Ref"] + "}"
    if "Fn::GetAtt" in resource:
        return "${" + ".".join(resource["Fn::GetAtt"]) + "}"
    raise AssertionError(f"unexpected resource form {resource}")


def test_no_role_grants_a_wildcard_action(template):
    for name, role in roles(template).items():
        for policy, st in statements(role):
            for action in as_list(st["Action"]):
                assert "*" not in action, (name, policy, action)


def test_no_star_resource_where_a_resource_can_be_named(template):
    for name, role in roles(template).items():
        for policy, st in statements(role):
            for r in resources(st):
                if text(r) == "*":
                    assert set(as_list(st["Action"])) <= UNSCOPABLE, (name, policy, st)


def test_every_resource_is_this_stacks_own(template):
    """Every resource names something of this stack: its bucket, logs, secrets, projects or functions."""
    own = re.compile(r"\$\{(SpecsBucket|\w+Logs|WebhookSecret|GitHubTokenSecretName|DockerHubSecretName|CiProject|ReleaseProject|ProjectName|WebhookFunction|BuildEventsFailures|NotificationTopicArn|AWS::Partition)")
    for name, role in roles(template).items():
        for policy, st in statements(role):
            for r in resources(st):
                t = text(r)
                if t == "*":
                    continue
                assert own.search(t), (name, policy, t)


def test_functions_touch_only_their_bucket_prefix(template):
    for name in ("BuildspecResourceRole", "WebhookRole"):
        for policy, st in statements(template["Resources"][name]):
            s3_actions = [a for a in as_list(st["Action"]) if a.startswith("s3:")]
            if not s3_actions:
                continue
            for r in resources(st):
                t = text(r)
                if any(a.startswith("s3:List") for a in s3_actions):
                    assert t == "${SpecsBucket.Arn}", (name, t)
                    assert st["Condition"]["StringLike"]["s3:prefix"] == {"Fn::Sub": "${SpecsPrefix}*"}
                else:
                    assert t == "${SpecsBucket.Arn}/${SpecsPrefix}*", (name, t)


def test_the_webhook_may_only_start_batches_of_the_two_projects_stop_ci_ones_and_read_its_secrets(template):
    allowed = {
        "codebuild:StartBuildBatch": {"${CiProject.Arn}", "${ReleaseProject.Arn}"},
        # Superseded batches run on the CI project; release batches are never stopped.
        "codebuild:StopBuildBatch": {"${CiProject.Arn}"},
        # "Re-run failed" in the Checks tab.
        "codebuild:RetryBuildBatch": {"${CiProject.Arn}", "${ReleaseProject.Arn}"},
        # A green record is confirmed with CodeBuild; only CI runs skip.
        "codebuild:BatchGetBuilds": {"${CiProject.Arn}"},
        "secretsmanager:GetSecretValue": {
            "${WebhookSecret}",
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${GitHubTokenSecretName}-??????",
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${GitHubAppKeySecretName}-??????",
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${WebhookHookTokenSecretName}-??????",
        },
    }
    for policy, st in statements(template["Resources"]["WebhookRole"]):
        for action in as_list(st["Action"]):
            if action in allowed:
                assert {text(r) for r in resources(st)} <= allowed[action], (policy, st)
            else:
                assert action.split(":")[0] in ("s3", "logs"), (policy, action)


def test_the_batch_role_only_runs_builds_of_its_projects(template):
    for _, st in statements(template["Resources"]["BatchRole"]):
        assert set(as_list(st["Action"])) == {"codebuild:StartBuild", "codebuild:StopBuild", "codebuild:RetryBuild"}
        for r in resources(st):
            assert text(r).startswith("arn:${AWS::Partition}:codebuild:${AWS::Region}:${AWS::AccountId}:project/${ProjectName}")


def test_functions_use_their_own_roles_not_sam_generated_ones(template):
    functions = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == {"BuildspecResourceFunction", "WebhookFunction", "BuildEventsFunction"}
    for name, f in functions.items():
        props = f["Properties"]
        assert "Role" in props and "Policies" not in props, name
        assert props["Runtime"] == "provided.al2023" and f["Metadata"]["BuildMethod"] == "rust-cargolambda"
        assert props["LoggingConfig"]["LogFormat"] == "JSON"


def test_the_custom_resource_gives_up_in_minutes_not_an_hour(template):
    timeout = template["Resources"]["Buildspecs"]["Properties"]["ServiceTimeout"]
    assert 60 <= int(timeout) <= 900


def test_secrets_are_never_plaintext_parameters(template):
    for name, p in template["Parameters"].items():
        lowered = name.lower()
        if "token" in lowered or "secret" in lowered or "password" in lowered:
            assert name.endswith("SecretName"), name
    creds = load("source-credentials.yaml")
    token = creds["Resources"]["GitHubSourceCredential"]["Properties"]["Token"]
    assert token["Fn::Sub"].startswith("{{resolve:secretsmanager:")


def test_only_the_webhook_and_its_administrators_read_the_webhook_secret(template):
    policy = template["Resources"]["WebhookSecretPolicy"]["Properties"]
    assert policy["SecretId"] == {"Ref": "WebhookSecret"} and policy["BlockPublicPolicy"] is True
    (st,) = policy["ResourcePolicy"]["Statement"]
    assert (st["Effect"], st["Action"], st["Principal"]) == ("Deny", "secretsmanager:GetSecretValue", "*")
    allowed = st["Condition"]["ArnNotLike"]["aws:PrincipalArn"]["Fn::Split"][1]["Fn::Join"][1]
    assert allowed[0] == {"Fn::GetAtt": ["WebhookRole", "Arn"]}
    assert allowed[1] == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    assert allowed[2] == {"Fn::Join": [",", {"Ref": "AdministratorArns"}]}


def test_log_groups_can_outlive_the_stack(template):
    groups = [r for r in template["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 4
    for g in groups:
        assert g["DeletionPolicy"] == {"Fn::If": ["KeepLogs", "Retain", "Delete"]}


def webhook_s3_statements(template):
    yield from statements(template["Resources"]["WebhookRole"])
    for st in template["Resources"]["WebhookSpecsPolicy"]["Properties"]["PolicyDocument"]["Statement"]:
        yield "WebhookSpecsPolicy", st


def test_the_webhook_lists_only_its_kept_deliveries_and_the_green_ledger(template):
    """Without s3:ListBucket a read of an absent key is 403, not 404: the webhook never
    depends on one, and it claims before it reads. It may list the kept deliveries, for the
    retry pass, and the green ledger, to find records of identical inputs."""
    for policy, st in webhook_s3_statements(template):
        if any(a.startswith("s3:List") for a in as_list(st["Action"])):
            assert set(as_list(st["Action"])) == {"s3:ListBucket", "s3:ListBucketVersions"}, st
            assert st["Condition"]["StringLike"]["s3:prefix"] == [
                {"Fn::Sub": "${Buildspecs.Root}pushes/inbox/*"},
                {"Fn::Sub": "${Buildspecs.Root}green/*"}], st


def test_only_build_events_writes_the_green_ledger(template):
    """A green record lets a later run skip a build: the webhook reads the ledger, never
    writes it, and the bucket refuses every other writer."""
    for _, st in webhook_s3_statements(template):
        if any(text(r).endswith("green/*") for r in resources(st)):
            assert as_list(st["Action"]) == ["s3:GetObject"], st
    writes = [st for _, st in statements({"Properties": {"Policies": [
        {"PolicyName": "runs", "PolicyDocument": template["Resources"]["BuildEventsSpecsPolicy"]["Properties"]["PolicyDocument"]}]}})
        if any(text(r).endswith("green/*") for r in resources(st))]
    assert [as_list(st["Action"]) for st in writes] == [["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"]]
    bucket = template["Resources"]["SpecsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [st for st in bucket if st.get("Sid") == "GreenLedgerWriter"]
    assert (deny["Effect"], deny["Action"], text(deny["Resource"])) == ("Deny", "s3:PutObject", "${SpecsBucket.Arn}/*green/*")
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["BuildEventsRole", "Arn"]}}}


def test_the_webhook_writes_only_under_pushes_and_runs_and_reads_the_settings(template):
    """It can neither overwrite nor delete the deploy-time specs and settings; under runs/ it
    writes run records and the markers of superseded runs, and reads run records back for the
    Checks tab's buttons, but removes nothing."""
    policy = template["Resources"]["WebhookSpecsPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "WebhookRole"}]
    assert template["Resources"]["WebhookFunction"]["DependsOn"] == "WebhookSpecsPolicy"
    for _, st in webhook_s3_statements(template):
        actions = [a for a in as_list(st["Action"]) if a.startswith("s3:") and not a.startswith("s3:List")]
        if not actions:
            continue
        (where,) = [text(r) for r in resources(st)]
        if actions == ["s3:GetObject"]:
            assert where in ("${SpecsBucket.Arn}/${Buildspecs.Root}settings/*",
                             "${SpecsBucket.Arn}/${Buildspecs.Root}pushes/*",
                             "${SpecsBucket.Arn}/${Buildspecs.Root}green/*"), where
        elif where == "${SpecsBucket.Arn}/${Buildspecs.Root}runs/*":
            assert actions == ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"], (actions, where)
        else:
            assert where == "${SpecsBucket.Arn}/${Buildspecs.Root}pushes/*", (actions, where)
        assert "s3:DeleteObject" not in actions, "the bucket is versioned: removals are by version"


def test_delivery_records_outlive_a_yearly_secret_rotation(template):
    rules = template["Resources"]["SpecsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (records,) = [r for r in rules if r["Id"] == "expire-delivery-records"]
    assert records["ExpirationInDays"] >= 366


def test_the_public_url_is_throttled_and_watched(template):
    r = template["Resources"]
    assert r["WebhookFunction"]["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "WebhookReservedConcurrency"}
    assert template["Parameters"]["WebhookReservedConcurrency"]["Default"] <= 10
    throttles = r["WebhookThrottlesAlarm"]["Properties"]
    assert (throttles["Namespace"], throttles["MetricName"]) == ("AWS/Lambda", "Throttles")
    assert throttles["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "WebhookFunction"}}]
    metric = r["WebhookUnauthorizedMetric"]["Properties"]
    assert metric["LogGroupName"] == {"Ref": "WebhookLogs"} and "401" in metric["FilterPattern"]
    unauthorized = r["WebhookUnauthorizedAlarm"]["Properties"]
    assert unauthorized["MetricName"] == metric["MetricTransformations"][0]["MetricName"]
    for alarm in (throttles, unauthorized):
        assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for project in ("CiProject", "ReleaseProject"):
        props = r[project]["Properties"]
        assert "ConcurrentBuildLimit" in props
        assert "ComputeTypesAllowed" in props["BuildBatchConfig"]["Restrictions"]
        assert props["Environment"]["PrivilegedMode"] == {"Fn::If": ["PrivilegedBuilds", True, False]}
    assert template["Conditions"]["PrivilegedBuilds"] == {"Fn::Equals": [{"Ref": "PrivilegedMode"}, "true"]}


def test_the_bucket_is_locked_down(template):
    props = template["Resources"]["SpecsBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]
    rules = {r["Id"] for r in props["LifecycleConfiguration"]["Rules"]}
    assert {"expire-push-specs", "expire-delivery-records", "expire-superseded-versions"} <= rules
    policy = template["Resources"]["SpecsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in policy)


BUILD_ROLES = {
    # role: (its project, the variant whose specs it reads, its report groups)
    "CiBuildRole": ("CiProject", "ci-*", "${ProjectName}-*"),
    "ReleaseBuildRole": ("ReleaseProject", "release-*", "${ProjectName}-release-*"),
}


def test_each_build_role_reads_only_its_variants_specs_and_writes_only_its_reports(template):
    r = template["Resources"]
    assert "BuildRole" not in r, "one role per project"
    for role, (project, specs, reports) in BUILD_ROLES.items():
        assert r[project]["Properties"]["ServiceRole"] == {"Fn::GetAtt": [role, "Arn"]}
        for policy, st in statements(r[role]):
            for action in as_list(st["Action"]):
                service = action.split(":")[0]
                if service == "codebuild":
                    for res in resources(st):
                        assert text(res) == f"arn:${{AWS::Partition}}:codebuild:${{AWS::Region}}:${{AWS::AccountId}}:report-group/{reports}", (role, res)
                elif service == "s3":
                    assert action in ("s3:GetObject", "s3:GetObjectVersion"), (role, action)
                    assert sorted(text(x) for x in resources(st)) == sorted([
                        f"${{SpecsBucket.Arn}}/${{Buildspecs.Root}}specs/*/{specs}",
                        f"${{SpecsBucket.Arn}}/${{Buildspecs.Root}}pushes/specs/*/{specs}",
                    ]), (role, st)
                elif service == "logs":
                    assert [text(x) for x in resources(st)] == ["${BuildLogs.Arn}"], (role, st)
                else:
                    assert service in ("secretsmanager", "ec2"), (role, action)
                if action == "ec2:CreateNetworkInterfacePermission":
                    assert "ec2:Subnet" in st["Condition"]["ArnLike"], (role, st)
    assert r["ReleaseBuildRole"]["Condition"] == "CreateRelease"


def test_trust_policies_name_this_account(template):
    for name, role in roles(template).items():
        for st in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, name
            if name in BUILD_ROLES:
                assert "aws:SourceArn" in st["Condition"]["ArnLike"], name


def test_the_batch_role_names_the_release_project_only_when_there_is_one(template):
    for policy, st in statements(template["Resources"]["BatchRole"]):
        assert st["Resource"]["Fn::If"][0] == "CreateRelease", st
        with_release, without = st["Resource"]["Fn::If"][1:]
        assert len(with_release) == 2 and len(without) == 1


def test_the_stack_never_sets_the_local_test_switches(template):
    for name, resource in template["Resources"].items():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        assert "FLAVOR_CI_LOCAL_RESPONSE_URLS" not in variables, name
        assert "FLAVOR_CI_CONFIRM_DELETES" not in variables, name


def test_the_resource_may_ask_cloudformation_about_its_own_stack_only(template):
    found = [st for _, st in statements(template["Resources"]["BuildspecResourceRole"])
             if "cloudformation:DescribeStackResource" in as_list(st["Action"])]
    assert len(found) == 1
    assert as_list(found[0]["Action"]) == ["cloudformation:DescribeStackResource"]
    assert [text(r) for r in resources(found[0])] == [
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${AWS::StackName}/*"]


def test_the_schedules_may_only_invoke_the_webhook_function(template):
    role = template["Resources"]["NightlyScheduleRole"]
    assert "Condition" not in role, "the delivery pass runs on every stack"
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    assert all(s["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"} for s in trust)
    for _, st in statements(role):
        assert as_list(st["Action"]) == ["lambda:InvokeFunction"]
        assert resources(st) == [{"Fn::GetAtt": ["WebhookFunction", "Arn"]}]
    target = template["Resources"]["NightlyBuilds"]["Properties"]["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["WebhookFunction", "Arn"]}
    run = json.loads(target["Input"])["flavorCiRun"]
    assert run == {"trigger": "schedule", "id": "<aws.scheduler.scheduled-time>"}
    sweep = template["Resources"]["DeliverySweep"]
    assert "Condition" not in sweep
    target = sweep["Properties"]["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["WebhookFunction", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["NightlyScheduleRole", "Arn"]}
    assert json.loads(target["Input"]) == {"flavorCiSweep": {}}


def test_build_events_come_from_the_two_projects_and_failures_are_kept(template):
    f = template["Resources"]["BuildEventsFunction"]["Properties"]
    rule = f["Events"]["BuildStateChange"]
    assert rule["Type"] == "EventBridgeRule"
    pattern = rule["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.codebuild"]
    assert pattern["detail-type"] == ["CodeBuild Build State Change"]
    assert pattern["detail"]["project-name"] == {"Fn::If": [
        "CreateRelease", [{"Ref": "CiProject"}, {"Ref": "ReleaseProject"}], [{"Ref": "CiProject"}]]}
    assert rule["Properties"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["BuildEventsFailures", "Arn"]}
    assert f["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["BuildEventsFailures", "Arn"]}
    schedule = f["Events"]["Reconcile"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(10 minutes)"
    assert json.loads(schedule["Input"]) == {"flavorCiReconcile": {}}


def test_build_events_may_only_read_batches_and_keep_run_records(template):
    allowed = {"codebuild:BatchGetBuilds", "codebuild:BatchGetBuildBatches", "sqs:SendMessage",
               "secretsmanager:GetSecretValue", "sns:Publish", "logs:CreateLogStream", "logs:PutLogEvents",
               "logs:GetLogEvents"}
    for _, st in statements(template["Resources"]["BuildEventsRole"]):
        assert set(as_list(st["Action"])) <= allowed, st["Action"]
        # A failed flavor's log tail: the builds' log group, nothing else.
        if "logs:GetLogEvents" in as_list(st["Action"]):
            assert st["Resource"] == {"Fn::GetAtt": ["BuildLogs", "Arn"]}, st
    for _, st in statements(template["Resources"]["BuildEventsSpecsPolicy"]):
        for r in resources(st):
            t = text(r)
            if t == "${SpecsBucket.Arn}":
                assert st["Condition"]["StringLike"]["s3:prefix"] == {"Fn::Sub": "${Buildspecs.Root}runs/open/*"}
            else:
                assert t.startswith("${SpecsBucket.Arn}/${Buildspecs.Root}runs/"), t


def test_codebuild_reports_statuses_only_when_flavor_ci_does_not(template):
    for name in ("CiProject", "ReleaseProject"):
        report = template["Resources"][name]["Properties"]["Source"]["ReportBuildStatus"]
        assert report == {"Fn::If": ["CodeBuildStatuses", True, False]}
    for name in ("WebhookFunction", "BuildEventsFunction"):
        env = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert env["STATUS_CONTEXT"] == {"Fn::If": ["ReportsItself", {"Ref": "StatusContext"}, {"Ref": "AWS::NoValue"}]}
        assert env["GITHUB_APP_ID"] == {"Fn::If": ["AppChecks", {"Ref": "GitHubAppId"}, {"Ref": "AWS::NoValue"}]}
