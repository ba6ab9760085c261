//! `flavor-ci health`: is this environment ready to deploy and run flavor-ci?

use std::io::{self, Write as _};

use aws_sdk_cloudformation::types::StackStatus;
use aws_sdk_s3::error::ProvideErrorMetadata;

use super::{HealthArgs, aws_error};

/// The outcome of one check.
struct Check {
    name: String,
    ok: bool,
    detail: String,
    fix: String,
}

fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        detail: detail.into(),
        fix: String::new(),
    }
}

fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: false,
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
        let mark = if c.ok { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "{mark}  {}: {}", c.name, c.detail);
        if !c.ok {
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
    let sts = aws_sdk_sts::Client::new(&config);
    match sts.get_caller_identity().send().await {
        Ok(id) => report(pass(
            "credentials",
            format!(
                "account {} as {}",
                id.account().unwrap_or("?"),
                id.arn().unwrap_or("?")
            ),
        )),
        Err(e) => {
            let message = aws_error(&e);
            let fix = if message.starts_with("cannot reach AWS")
                || message.starts_with("AWS did not answer")
            {
                "check the network, the region and AWS_ENDPOINT_URL"
            } else {
                "configure credentials: aws configure, AWS_PROFILE/--profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            };
            report(fail("credentials", message, fix));
            return false;
        }
    }

    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let mut secret_ids = args.secrets.clone();
    if let Some(stack) = &args.stack {
        let cfn = aws_sdk_cloudformation::Client::new(&config);
        match cfn.describe_stacks().stack_name(stack).send().await {
            Err(e) => report(fail(
                format!("stack {stack}"),
                aws_error(&e),
                "deploy it (sam build && sam deploy --guided) or name the right stack and region",
            )),
            Ok(out) => {
                let s = out.stacks().first();
                let status = s.and_then(|s| s.stack_status()).cloned();
                let good = matches!(
                    status,
                    Some(StackStatus::CreateComplete | StackStatus::UpdateComplete)
                );
                let shown = status.as_ref().map_or("unknown", |s| s.as_str());
                if good {
                    report(pass(format!("stack {stack}"), shown));
                } else {
                    report(fail(
                        format!("stack {stack}"),
                        format!("status {shown}"),
                        "look at the stack's events (aws cloudformation describe-stack-events) and deploy again",
                    ));
                }
                let output = |key: &str| {
                    s.into_iter()
                        .flat_map(|s| s.outputs())
                        .find(|o| o.output_key() == Some(key))
                        .and_then(|o| o.output_value())
                        .map(str::to_owned)
                };
                if let Some(bucket) = output("SpecsBucketName") {
                    report(check_bucket(&config, &bucket).await);
                } else {
                    report(fail(
                        "bucket",
                        "the stack has no SpecsBucketName output",
                        "deploy flavor-ci's template.yaml to this stack",
                    ));
                }
                let projects: Vec<String> = ["CiProjectName", "ReleaseProjectName"]
                    .iter()
                    .filter_map(|k| output(k))
                    .collect();
                if projects.is_empty() {
                    report(fail(
                        "projects",
                        "the stack has no CiProjectName output",
                        "deploy flavor-ci's template.yaml to this stack",
                    ));
                } else {
                    for c in check_projects(&config, &projects).await {
                        report(c);
                    }
                }
                if let Some(arn) = output("WebhookSecretArn") {
                    secret_ids.insert(0, arn);
                }
            }
        }
    }
    for id in &secret_ids {
        report(check_secret(&secrets, id).await);
    }
    checks.iter().all(|ok| *ok)
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
