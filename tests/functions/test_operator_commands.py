"""The operator commands of the `flavor-ci` command line (health, validate of templates,
deploy-source-credentials) against moto, run as the real binary with the standard AWS
environment."""

import os
import subprocess
import uuid

import pytest

from conftest import AWS_ENV, ROOT, client, codebuild_project

CLI = ROOT / "target/debug/flavor-ci"


@pytest.fixture(scope="module", autouse=True)
def built():
    subprocess.run(["cargo", "build", "--locked", "--quiet", "-p", "flavor-ci-cli", "--features", "aws"], cwd=ROOT, check=True)


def run(*args, endpoint: str | None = None, env: dict | None = None, drop=()):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update({
        **AWS_ENV,
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    })
    if endpoint:
        base["AWS_ENDPOINT_URL"] = endpoint
    base.update(env or {})
    for k in drop:
        base.pop(k, None)
    p = subprocess.run([str(CLI), *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("command", ["health", "validate", "deploy-source-credentials"])
def test_every_command_has_help_naming_the_aws_options(command):
    code, out = run(command, "--help")
    assert code == 0, out
    assert "--region" in out and "--profile" in out


def test_health_without_a_region_says_how_to_set_one():
    code, out = run("health", drop=("AWS_REGION", "AWS_DEFAULT_REGION"))
    assert code == 1
    assert "FAIL  region: no region is configured" in out
    assert "fix: set AWS_REGION, pass --region" in out


def test_health_without_credentials_says_how_to_configure_them(moto):
    code, out = run("health", endpoint=moto, drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    assert code == 1
    assert "FAIL  credentials: no AWS credentials" in out
    assert "fix: configure credentials" in out


def test_health_of_unreachable_aws_names_the_endpoint_setting():
    code, out = run("health", endpoint="http://127.0.0.1:9")
    assert code == 1 and "cannot reach AWS" in out and "AWS_ENDPOINT_URL" in out, out


def test_health_checks_a_deployed_stack_and_named_secrets(moto):
    sm, cb, cfn = client("secretsmanager", moto), client("codebuild", moto), client("cloudformation", moto)
    stack = f"flavor-ci-health-{uuid.uuid4().hex[:6]}"
    project = f"{stack}-ci"
    webhook = sm.create_secret(Name=f"{stack}/webhook", SecretString="s3cr3t")["ARN"]
    cfn.create_stack(StackName=stack, TemplateBody=f"""
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  SpecsBucket: {{Type: AWS::S3::Bucket}}
Outputs:
  SpecsBucketName: {{Value: !Ref SpecsBucket}}
  CiProjectName: {{Value: {project}}}
  WebhookSecretArn: {{Value: "{webhook}"}}
""")
    codebuild_project(moto, project, role_name=f"{stack}-build")
    code, out = run("health", "--stack", stack, endpoint=moto)
    assert code == 0, out
    for line in ("PASS  region: us-east-1", "PASS  credentials: account", f"PASS  stack {stack}: CREATE_COMPLETE",
                 "PASS  bucket ", f"PASS  project {project}: exists", f"PASS  secret {webhook}: exists and is readable"):
        assert line in out, (line, out)
    assert "s3cr3t" not in out

    cb.delete_project(name=project)
    code, out = run("health", "--stack", stack, "--secret", "flavor-ci/no-such-token", endpoint=moto)
    assert code == 1
    assert f"FAIL  project {project}: does not exist" in out
    assert "FAIL  secret flavor-ci/no-such-token: ResourceNotFoundException" in out
    assert "fix: create it: aws secretsmanager create-secret" in out

    code, out = run("health", "--stack", "no-such-stack", endpoint=moto)
    assert code == 1 and "FAIL  stack no-such-stack" in out and "fix: deploy it" in out, out


def test_validate_checks_templates_through_the_api_and_their_buildspec_settings(moto):
    code, out = run("validate", "template.yaml", "source-credentials.yaml",
                    "--parameter", "Flavors=base,python-3.10", endpoint=moto)
    assert code == 0, out
    assert "PASS  template.yaml: ValidateTemplate" in out
    assert "PASS  template.yaml: Buildspecs: 2 flavors" in out
    assert "PASS  source-credentials.yaml: ValidateTemplate" in out

    code, out = run("validate", "template.yaml", "--offline", "--parameter", "Flavors=a,b",
                    "--parameter", 'Settings={"batch": {"max-builds": 1}}',
                    drop=("AWS_REGION", "AWS_DEFAULT_REGION"))
    assert code == 1
    assert "ValidateTemplate" not in out
    assert "FAIL  template.yaml: Buildspecs:" in out and "max-builds" in out, out

    code, out = run("validate", "template.yaml", "--offline")
    assert code == 0 and "SKIP  template.yaml: Buildspecs: Flavors refers to Flavors, which has no default" in out, out


def test_validate_reports_what_cloudformation_rejects(moto, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text('AWSTemplateFormatVersion: "2010-09-09"\nResources:\n  X: {Type: AWS::S3::Bucket, Properties: !GetAtt}\n')
    code, out = run("validate", str(broken), endpoint=moto)
    assert code == 1, out
    assert "FAIL" in out


def test_deploy_source_credentials_prints_events_fails_clearly_and_then_deploys(moto):
    sm = client("secretsmanager", moto)
    stack = f"flavor-ci-creds-{uuid.uuid4().hex[:6]}"
    secret = f"{stack}/github-token"
    args = ("deploy-source-credentials", "--stack-name", stack, "--token-secret", secret, "--poll", "0.2")

    code, out = run(*args, endpoint=moto)
    assert code == 1, out
    assert f"stack {stack}: create started" in out
    assert "GitHubSourceCredential  CREATE_FAILED  Secrets Manager can't find the specified secret." in out
    assert f"stack {stack} ended ROLLBACK_COMPLETE; what failed:" in out

    sm.create_secret(Name=secret, SecretString="ghp_exampletoken")
    code, out = run(*args, endpoint=moto)
    assert code == 0, out
    assert "ROLLBACK_COMPLETE after a failed create: deleting it first" in out
    assert f"stack {stack}: CREATE_COMPLETE" in out
    assert "ghp_exampletoken" not in out

    code, out = run(*args, endpoint=moto)
    assert code == 0, out
    assert f"stack {stack} is up to date: nothing changed, nothing deployed" in out

    other = f"{stack}/other-token"
    sm.create_secret(Name=other, SecretString="ghp_other")
    code, out = run("deploy-source-credentials", "--stack-name", stack, "--token-secret", other, "--poll", "0.2",
                    endpoint=moto)
    assert code == 0, out
    assert f"stack {stack}: update started" in out and f"stack {stack}: UPDATE_COMPLETE" in out


def test_health_warns_when_the_webhook_token_can_write_contents(moto):
    """The webhook only reads the repository; health says so when its token could write."""
    import sys
    sys.path.insert(0, str(ROOT / "tests/tools"))
    from github_api import GitHubApi

    sm, cfn = client("secretsmanager", moto), client("cloudformation", moto)
    stack = f"flavor-ci-token-{uuid.uuid4().hex[:6]}"
    sm.create_secret(Name=f"{stack}/webhook-token", SecretString="ghp_webhooktoken")
    cfn.create_stack(StackName=stack, Parameters=[
        {"ParameterKey": "GitHubTokenSecretName", "ParameterValue": f"{stack}/webhook-token"},
        {"ParameterKey": "GitHubRepository", "ParameterValue": "acme/slc"},
    ], TemplateBody="""
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  GitHubTokenSecretName: {Type: String}
  GitHubRepository: {Type: String}
Resources:
  SpecsBucket: {Type: AWS::S3::Bucket}
Outputs:
  SpecsBucketName: {Value: !Ref SpecsBucket}
""")
    github = GitHubApi(token="ghp_webhooktoken")
    try:
        check = f"webhook token ({stack}/webhook-token) on acme/slc"
        args = ("health", "--stack", stack, "--github-api-url", github.url)
        # A fine-grained token that only reads.
        code, out = run(*args, endpoint=moto)
        assert f"PASS  {check}: reads the repository and cannot write its contents" in out, out
        # A classic token with the repo scope.
        github.token_scopes = "repo, workflow"
        code, out = run(*args, endpoint=moto)
        assert f"WARN  {check}: a classic token with scope `repo`" in out, out
        assert "fix: create a fine-grained token with Contents read-only" in out, out
        # A fine-grained token (no scopes header) whose requests may push.
        github.token_scopes, github.token_can_push = None, True
        code, out = run(*args, endpoint=moto)
        assert f"WARN  {check}: GitHub reports push access" in out, out
        assert "ghp_webhooktoken" not in out
        # The token may write commit statuses: the probe is refused as invalid, never written.
        statuses = f"status token ({stack}/webhook-token) on acme/slc"
        assert f"PASS  {statuses}: may write commit statuses" in out, out
        assert github.statuses == []
        github.status_failures = [403]
        code, out = run(*args, endpoint=moto)
        assert code != 0 and f"FAIL  {statuses}: GitHub refuses it commit statuses (403)" in out, out
        assert "Commit statuses: Read and write" in out, out
    finally:
        github.close()


def test_health_checks_the_github_app_key_installation_and_permissions(moto):
    from github_api import App, GitHubApi

    app = App(app_id=4242)
    github = GitHubApi(app=app)
    try:
        sm, cfn = client("secretsmanager", moto), client("cloudformation", moto)
        stack = f"flavor-ci-app-{uuid.uuid4().hex[:6]}"
        key = f"{stack}/app-key"
        sm.create_secret(Name=key, SecretString=app.pem)
        cfn.create_stack(StackName=stack, TemplateBody="""
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  CommitStatuses: {Type: String}
  GitHubAppId: {Type: String}
  GitHubAppKeySecretName: {Type: String}
  GitHubRepository: {Type: String}
Resources:
  SpecsBucket: {Type: AWS::S3::Bucket}
""", Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in {
            "CommitStatuses": "github-app", "GitHubAppId": "4242", "GitHubAppKeySecretName": key,
            "GitHubRepository": "acme/slc"}.items()])
        health = ("health", "--stack", stack, "--github-api-url", github.url)
        code, out = run(*health, endpoint=moto)
        assert "PASS  GitHub App 4242: key: GitHub accepts the App's JWT signed with the key" in out, out
        assert "PASS  GitHub App 4242: installation on acme/slc: installed with the permissions" in out, out
        assert "BEGIN RSA" not in out and "eyJhbGciOiJSUzI1NiIs" not in out
        # The App lost a permission and an event: each is named, with where to grant it.
        del app.permissions["checks"]
        app.events.remove("check_suite")
        code, out = run(*health, endpoint=moto)
        assert code == 1
        assert "lacks checks: write, the check_suite event" in out, out
        assert "fix: grant them in the App's settings" in out
        # Another App's key: GitHub refuses the JWT, and health says what to check.
        sm.put_secret_value(SecretId=key, SecretString=App(app_id=4242).pem)
        code, out = run(*health, endpoint=moto)
        assert code == 1
        assert "FAIL  GitHub App 4242: key: GitHub refuses the App's JWT (401" in out, out
        assert "fix: check GitHubAppId, and that the key is one of the App's current private keys" in out
        sm.put_secret_value(SecretId=key, SecretString="ghp_not_a_key")
        code, out = run(*health, endpoint=moto)
        assert "the App's private key is not a PEM block" in out and "ghp_not_a_key" not in out, out
    finally:
        github.close()
