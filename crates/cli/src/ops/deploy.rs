//! `flavor-ci deploy-source-credentials`: creates or updates the once-per-account stack of the
//! GitHub source credential, shows its events as they happen, and says when nothing changed.

use std::collections::HashSet;
use std::io::{self, Write as _};
use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{Parameter, StackEvent, StackStatus};
use tokio::time::{Instant, sleep};

use super::{DeployArgs, aws_error};

/// The template, built in so the command works from any directory.
const SOURCE_CREDENTIALS: &str = include_str!("../../../../source-credentials.yaml");

fn say(line: &str) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// Deploys; returns an error message when the deployment failed.
pub(crate) async fn run(args: &DeployArgs) -> Result<(), String> {
    let body = match &args.template {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?
        }
        None => SOURCE_CREDENTIALS.to_owned(),
    };
    let config = args.aws.load().await;
    if config.region().is_none() {
        return Err("no region is configured: set AWS_REGION or pass --region".into());
    }
    let cfn = Client::new(&config);
    let name = args.stack_name.as_str();
    let parameter = Parameter::builder()
        .parameter_key("GitHubTokenSecretName")
        .parameter_value(&args.token_secret)
        .build();

    let existing = match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => out.stacks().first().and_then(|s| s.stack_status()).cloned(),
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => None,
        Err(e) => return Err(format!("cannot look up stack {name}: {}", aws_error(&e))),
    };
    if existing == Some(StackStatus::RollbackComplete) {
        say(&format!(
            "stack {name} is ROLLBACK_COMPLETE after a failed create: deleting it first"
        ));
        cfn.delete_stack()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| format!("cannot delete stack {name}: {}", aws_error(&e)))?;
        wait_deleted(&cfn, name, args).await?;
    }
    let updating = existing.is_some() && existing != Some(StackStatus::RollbackComplete);
    let started = if updating {
        match cfn
            .update_stack()
            .stack_name(name)
            .template_body(&body)
            .parameters(parameter)
            .send()
            .await
        {
            Ok(_) => "update",
            Err(e)
                if e.message()
                    .is_some_and(|m| m.contains("No updates are to be performed")) =>
            {
                say(&format!(
                    "stack {name} is up to date: nothing changed, nothing deployed"
                ));
                return Ok(());
            }
            Err(e) => return Err(format!("cannot update stack {name}: {}", aws_error(&e))),
        }
    } else {
        cfn.create_stack()
            .stack_name(name)
            .template_body(&body)
            .parameters(parameter)
            .send()
            .await
            .map_err(|e| format!("cannot create stack {name}: {}", aws_error(&e)))?;
        "create"
    };
    say(&format!("stack {name}: {started} started"));
    wait(&cfn, name, args).await
}

fn describe(e: &StackEvent) -> String {
    let when = e.timestamp().map(|t| t.to_string()).unwrap_or_default();
    let reason = e
        .resource_status_reason()
        .map(|r| format!("  {r}"))
        .unwrap_or_default();
    format!(
        "{when}  {}  {}{reason}",
        e.logical_resource_id().unwrap_or("?"),
        e.resource_status().map_or("?", |s| s.as_str()),
    )
}

/// Prints events not seen before, oldest first; returns them.
async fn new_events(
    cfn: &Client,
    name: &str,
    seen: &mut HashSet<String>,
) -> Result<Vec<StackEvent>, String> {
    let out = cfn
        .describe_stack_events()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| format!("cannot read the events of stack {name}: {}", aws_error(&e)))?;
    let mut fresh: Vec<StackEvent> = out
        .stack_events()
        .iter()
        .filter(|e| e.event_id().is_some_and(|id| seen.insert(id.to_owned())))
        .cloned()
        .collect();
    fresh.reverse();
    for e in &fresh {
        say(&format!("  {}", describe(e)));
    }
    Ok(fresh)
}

async fn wait(cfn: &Client, name: &str, args: &DeployArgs) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    loop {
        all.extend(new_events(cfn, name, &mut seen).await?);
        let status = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| format!("cannot read stack {name}: {}", aws_error(&e)))?
            .stacks()
            .first()
            .and_then(|s| s.stack_status())
            .cloned();
        let shown = status.as_ref().map_or("unknown", |s| s.as_str()).to_owned();
        if shown.ends_with("_IN_PROGRESS") {
            if Instant::now() >= deadline {
                return Err(format!(
                    "stack {name} is still {shown} after {} s; it keeps going, look at its events later",
                    args.timeout
                ));
            }
            sleep(Duration::from_secs_f64(args.poll.max(0.1))).await;
            continue;
        }
        all.extend(new_events(cfn, name, &mut seen).await?);
        if matches!(
            status,
            Some(StackStatus::CreateComplete | StackStatus::UpdateComplete)
        ) {
            say(&format!("stack {name}: {shown}"));
            return Ok(());
        }
        let failed: Vec<String> = all
            .iter()
            .filter(|e| {
                e.resource_status()
                    .is_some_and(|s| s.as_str().ends_with("_FAILED"))
            })
            .map(describe)
            .collect();
        let mut message = format!("stack {name} ended {shown}");
        if failed.is_empty() {
            message.push_str("; no resource reported a failure, see the stack's events");
        } else {
            message.push_str("; what failed:");
            for f in failed {
                message.push_str("\n  ");
                message.push_str(&f);
            }
        }
        return Err(message);
    }
}

async fn wait_deleted(cfn: &Client, name: &str, args: &DeployArgs) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    loop {
        match cfn.describe_stacks().stack_name(name).send().await {
            Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => return Ok(()),
            Err(e) => return Err(format!("cannot read stack {name}: {}", aws_error(&e))),
            Ok(out) => {
                let status = out.stacks().first().and_then(|s| s.stack_status()).cloned();
                match status {
                    Some(StackStatus::DeleteComplete) | None => return Ok(()),
                    Some(StackStatus::DeleteFailed) => {
                        return Err(format!(
                            "stack {name} could not be deleted; delete it by hand"
                        ));
                    }
                    _ if Instant::now() >= deadline => {
                        return Err(format!(
                            "stack {name} was not deleted within {} s",
                            args.timeout
                        ));
                    }
                    _ => sleep(Duration::from_secs_f64(args.poll.max(0.1))).await,
                }
            }
        }
    }
}
