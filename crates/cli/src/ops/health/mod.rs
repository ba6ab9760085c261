//! `flavor-ci health`: is this environment ready to deploy and run flavor-ci?

use std::io::{self, Write as _};

use aws_sdk_cloudformation::types::StackStatus;
use aws_sdk_s3::error::ProvideErrorMetadata;

use flavor_ci_aws::github::{Call, CallError, GitHubClient, Timing, Token};

use super::{HealthArgs, aws_error};

mod app;

/// The outcome of one check.
struct Check {
    name: String,
    ok: bool,
    /// Passed, but with something the operator should change.
    warn: bool,
    detail: String,
    fix: String,
}

fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        warn: true,
        detail: detail.into(),
        fix: fix.into(),
    }
}

fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        warn: false,
        detail: detail.into(),
        fix: String::new(),
    }
}

fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: false,
        warn: false,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// Runs the checks; returns whether all passed.
pub(crate) async fn run(args: &HealthArgs) -> bool {
    let config = args.aws.load().await;
    let mut checks = Vec::new();
    let mut report = |c: Check| {
        let mut out = io::stdout().lock();
        let mark = match (c.ok, c.warn) {
            (true, false) => "PASS",
            (true, true) => "WARN",
            (false, _) => "FAIL",
        };
        let _ = writeln!(out, "{mark}  {}: {}", c.name, c.detail);
        if !c.ok || c.warn {
            let _ = writeln!(out, "      fix: {}", c.fix);
        }
        checks.push(c.ok);
    };

    match config.region() {
        Some(r) => report(pass("region", r.to_string())),
        None => {
            report(fail(
                "region",
                "no region is configured",
                "set AWS_REGION, pass --region, or give the profile a region (aws configure)",
            ));
            return false;
        }
    }
    let credentials = check_credentials(&config).await;
    let known = credentials.ok;
    report(credentials);
    if !known {
        return false;
    }
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let mut secret_ids = args.secrets.clone();
    if let Some(stack) = &args.stack {
        for c in check_stack(&config, &secrets, args, stack, &mut secret_ids).await {
            report(c);
        }
    }
    for id in &secret_ids {
        report(check_secret(&secrets, id).await);
    }
    checks.iter().all(|ok| *ok)
}

/// Whose credentials these are (STS GetCallerIdentity).
async fn check_credentials(config: &aws_config::SdkConfig) -> Check {
    let sts = aws_sdk_sts::Client::new(config);
    match sts.get_caller_identity().send().await {
        Ok(id) => pass(
            "credentials",
            format!(
                "account {} as {}",
                id.account().unwrap_or("?"),
                id.arn().unwrap_or("?")
            ),
        ),
        Err(e) => {
            let message = aws_error(&e);
            let fix = if message.starts_with("cannot reach AWS")
                || message.starts_with("AWS did not answer")
            {
                "check the network, the region and AWS_ENDPOINT_URL"
            } else {
                "configure credentials: aws configure, AWS_PROFILE/--profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            };
            fail("credentials", message, fix)
        }
    }
}

/// A deployed stack: its status, bucket, projects and GitHub token. The webhook secret it
/// names joins `secret_ids`.
async fn check_stack(
    config: &aws_config::SdkConfig,
    secrets: &aws_sdk_secretsmanager::Client,
    args: &HealthArgs,
    stack: &str,
    secret_ids: &mut Vec<String>,
) -> Vec<Check> {
    let cfn = aws_sdk_cloudformation::Client::new(config);
    let out = match cfn.describe_stacks().stack_name(stack).send().await {
        Ok(out) => out,
        Err(e) => {
            return vec![fail(
                format!("stack {stack}"),
                aws_error(&e),
                "deploy it (sam build && sam deploy --guided) or name the right stack and region",
            )];
        }
    };
    let mut checks = Vec::new();
    let s = out.stacks().first();
    let status = s.and_then(|s| s.stack_status()).cloned();
    let good = matches!(
        status,
        Some(StackStatus::CreateComplete | StackStatus::UpdateComplete)
    );
    let shown = status.as_ref().map_or("unknown", |s| s.as_str());
    checks.push(if good {
        pass(format!("stack {stack}"), shown)
    } else {
        fail(
            format!("stack {stack}"),
            format!("status {shown}"),
            "look at the stack's events (aws cloudformation describe-stack-events) and deploy again",
        )
    });
    let output = |key: &str| {
        s.into_iter()
            .flat_map(|s| s.outputs())
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .map(str::to_owned)
    };
    checks.push(match output("SpecsBucketName") {
        Some(bucket) => check_bucket(config, &bucket).await,
        None => fail(
            "bucket",
            "the stack has no SpecsBucketName output",
            "deploy flavor-ci's template.yaml to this stack",
        ),
    });
    let projects: Vec<String> = ["CiProjectName", "ReleaseProjectName"]
        .iter()
        .filter_map(|k| output(k))
        .collect();
    if projects.is_empty() {
        checks.push(fail(
            "projects",
            "the stack has no CiProjectName output",
            "deploy flavor-ci's template.yaml to this stack",
        ));
    } else {
        checks.extend(check_projects(config, &projects).await);
    }
    if let Some(arn) = output("WebhookSecretArn") {
        secret_ids.insert(0, arn);
    }
    let parameter = |key: &str| {
        s.into_iter()
            .flat_map(|s| s.parameters())
            .find(|p| p.parameter_key() == Some(key))
            .and_then(|p| p.parameter_value())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let app = parameter("CommitStatuses").as_deref() == Some("github-app");
    if let (true, Some(id), Some(key), Some(repo)) = (
        app,
        parameter("GitHubAppId"),
        parameter("GitHubAppKeySecretName"),
        parameter("GitHubRepository"),
    ) {
        checks.extend(app::check_app(secrets, &args.github_api_url, &repo, &id, &key).await);
    }
    if let (Some(token), Some(repo)) = (
        parameter("GitHubTokenSecretName"),
        parameter("GitHubRepository"),
    ) {
        // flavor-ci posts the commit statuses unless the stack leaves them to CodeBuild or to
        // nobody.
        let posts = parameter("CommitStatuses").is_none_or(|v| v == "flavor-ci");
        checks
            .extend(check_github_token(secrets, &args.github_api_url, &repo, &token, posts).await);
    }
    checks
}

async fn check_bucket(config: &aws_config::SdkConfig, bucket: &str) -> Check {
    let s3 = flavor_ci_aws::s3_client(config);
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => pass(format!("bucket {bucket}"), "exists and is reachable"),
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let (detail, fix) = match status {
                Some(404) => (
                    "does not exist".to_string(),
                    "deploy the stack again; the bucket was deleted outside CloudFormation",
                ),
                Some(403) => (
                    "access denied".to_string(),
                    "use credentials that may s3:ListBucket on it",
                ),
                _ => (aws_error(&e), "check the network and the region"),
            };
            fail(format!("bucket {bucket}"), detail, fix)
        }
    }
}

async fn check_projects(config: &aws_config::SdkConfig, names: &[String]) -> Vec<Check> {
    let codebuild = aws_sdk_codebuild::Client::new(config);
    match codebuild
        .batch_get_projects()
        .set_names(Some(names.to_vec()))
        .send()
        .await
    {
        Err(e) => vec![fail(
            "projects",
            aws_error(&e),
            "use credentials that may codebuild:BatchGetProjects",
        )],
        Ok(out) => names
            .iter()
            .map(|n| {
                let found = out.projects().iter().any(|p| p.name() == Some(n.as_str()));
                if !found {
                    fail(
                        format!("project {n}"),
                        "does not exist",
                        "deploy the stack again; the project was deleted outside CloudFormation",
                    )
                } else {
                    pass(format!("project {n}"), "exists")
                }
            })
            .collect(),
    }
}

async fn check_secret(secrets: &aws_sdk_secretsmanager::Client, id: &str) -> Check {
    let name = format!("secret {id}");
    match secrets.get_secret_value().secret_id(id).send().await {
        Ok(out) if out.secret_string().is_some_and(|s| !s.trim().is_empty()) => {
            pass(name, "exists and is readable")
        }
        Ok(_) => fail(
            name,
            "has no text value",
            "store the value as text: aws secretsmanager put-secret-value --secret-string …",
        ),
        Err(e) => {
            let fix = match e.code() {
                Some("ResourceNotFoundException") => {
                    "create it: aws secretsmanager create-secret --name … --secret-string …"
                }
                Some("AccessDeniedException") => {
                    "use credentials that may secretsmanager:GetSecretValue on it (for a stack's webhook secret: a principal in the stack's AdministratorArns parameter)"
                }
                Some("DecryptionFailure") => "allow kms:Decrypt on the secret's key",
                _ => "check the name, the region and the network",
            };
            fail(name, aws_error(&e), fix)
        }
    }
}

/// The webhook's GitHub token, read once: that it only reads the repository, and, when the
/// stack posts commit statuses (`statuses`), that it may write them.
async fn check_github_token(
    secrets: &aws_sdk_secretsmanager::Client,
    api: &str,
    repo: &str,
    secret_id: &str,
    statuses: bool,
) -> Vec<Check> {
    let name = format!("webhook token ({secret_id}) on {repo}");
    let token = match secrets.get_secret_value().secret_id(secret_id).send().await {
        Ok(out) => out.secret_string().unwrap_or_default().trim().to_owned(),
        Err(e) => {
            return vec![fail(
                name,
                aws_error(&e),
                "use credentials that may secretsmanager:GetSecretValue on it",
            )];
        }
    };
    let client = GitHubClient::new(
        flavor_ci_aws::LazyHttpsClient::new(std::time::Duration::from_secs(5), false),
        api,
        TIMING,
    );
    let token = Token(std::sync::Arc::new(token));
    let mut checks = vec![check_webhook_token(&client, repo, &token, name).await];
    if statuses {
        let name = format!("status token ({secret_id}) on {repo}");
        checks.push(check_status_token(&client, repo, &token, name).await);
    }
    checks
}

/// A probe may take 15 s, both attempts together 20 s.
const TIMING: Timing = Timing {
    attempt: std::time::Duration::from_secs(15),
    total: std::time::Duration::from_secs(20),
};

/// What a probe that got no answer says.
fn unanswered(name: String, e: &CallError) -> Check {
    match e {
        CallError::TokenHeader | CallError::Build(..) => fail(
            name,
            "the token or the URL cannot be sent",
            "check --github-api-url and the token",
        ),
        CallError::Client(..) => fail(
            name,
            format!("no HTTPS client: {e}"),
            "check the system's root certificates",
        ),
        CallError::Body(..) => fail(name, e.to_string(), "try again"),
        _ => fail(
            name,
            e.to_string(),
            "check --github-api-url and the network",
        ),
    }
}

/// The token may write commit statuses. The probe posts a status GitHub must refuse (an unknown
/// state, on no commit): a token with the permission gets past the permission check and is
/// refused as invalid (422); one without is refused as not allowed (403, or 404). Nothing is
/// written either way.
async fn check_status_token(
    client: &GitHubClient,
    repo: &str,
    token: &Token,
    name: String,
) -> Check {
    let path = format!("/repos/{repo}/statuses/{}", "0".repeat(40));
    let body = br#"{"state":"flavor-ci-health-probe","context":"flavor-ci/health"}"#;
    let call = Call::post(&path, body, "Commit statuses: Read and write");
    let fix = "give the token the permission `Commit statuses: Read and write` on this repository (fine-grained) or the `repo:status` scope (classic), or deploy with CommitStatuses=none";
    match client.send(token, &call).await {
        Ok(answer) => match answer.status {
            422 => pass(name, "may write commit statuses"),
            401 => fail(
                name,
                "GitHub rejects the token (401)",
                "renew the token and store it in the secret",
            ),
            403 | 404 => fail(
                name,
                format!("GitHub refuses it commit statuses ({})", answer.status),
                fix,
            ),
            other => warn(
                name,
                format!(
                    "the probe {} answered {other}; GitHub may be unavailable",
                    answer.call
                ),
                "run health again later",
            ),
        },
        Err(e) => unanswered(name, &e),
    }
}

/// The webhook's GitHub token only reads: a token that can write the repository's contents is
/// more than its job needs. GitHub reports a classic token's scopes in `X-OAuth-Scopes`; for any
/// token, a repository's `permissions.push` says whether requests made with it may push.
async fn check_webhook_token(
    client: &GitHubClient,
    repo: &str,
    token: &Token,
    name: String,
) -> Check {
    let path = format!("/repos/{repo}");
    let answer = match client
        .send(token, &Call::get(&path, "Contents: read"))
        .await
    {
        Ok(answer) => answer,
        Err(e) => return unanswered(name, &e),
    };
    let (status, url) = (answer.status, client.url(&path));
    let scopes = answer.header("x-oauth-scopes").map(str::to_owned);
    let body = answer.body;
    if status == 401 {
        return fail(
            name,
            "GitHub rejects the token (401)",
            "renew the token and store it in the secret",
        );
    }
    if !(200..300).contains(&status) {
        return fail(
            name,
            format!("GET {url} answered {status}"),
            "give the token access to the repository (Contents: read-only)",
        );
    }
    let readonly_fix = "create a fine-grained token with Contents read-only (and Commit statuses read and write) on this repository, and store it in the secret";
    if let Some(scopes) = &scopes {
        let writes = scopes
            .split(',')
            .map(str::trim)
            .find(|s| matches!(*s, "repo" | "public_repo"));
        if let Some(scope) = writes {
            return warn(
                name,
                format!(
                    "a classic token with scope `{scope}`: it can write the repository's contents, which the webhook never does"
                ),
                readonly_fix,
            );
        }
    }
    let push = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/permissions/push")
                .and_then(serde_json::Value::as_bool)
        });
    match push {
        Some(true) => warn(
            name,
            "GitHub reports push access for requests made with this token: it can write the repository's contents, which the webhook never does",
            readonly_fix,
        ),
        _ => pass(name, "reads the repository and cannot write its contents"),
    }
}
