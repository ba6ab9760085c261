//! `flavor-ci dispatch`: a run by hand, through the code path the nightly schedule takes: the
//! stack's webhook function is invoked directly with a run request (`flavor_ci::webhook::run`),
//! resolves the ref's head commit through GitHub and starts the batch build.

use std::io::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_lambda::primitives::Blob;
use flavor_ci::webhook::run::{RUN_KEY, RunRequest, Trigger};
use serde_json::{Value, json};

use super::{DispatchArgs, aws_error};

/// The webhook function's logical id in the template.
const WEBHOOK_FUNCTION: &str = "WebhookFunction";

/// Starts the run; the batch id and its console link on success, the function's answer as
/// the error otherwise.
pub(crate) async fn run(args: &DispatchArgs) -> Result<(), String> {
    let config = args.aws.load().await;
    let function = match (&args.function, &args.stack) {
        (Some(f), _) => f.clone(),
        (None, Some(stack)) => aws_sdk_cloudformation::Client::new(&config)
            .describe_stack_resource()
            .stack_name(stack)
            .logical_resource_id(WEBHOOK_FUNCTION)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot find the webhook function of stack {stack}: {}",
                    aws_error(&e)
                )
            })?
            .stack_resource_detail()
            .and_then(|d| d.physical_resource_id())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!("stack {stack} has no {WEBHOOK_FUNCTION}; is it a flavor-ci stack?")
            })?,
        (None, None) => return Err("name the stack (--stack) or the function (--function)".into()),
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let request = RunRequest {
        trigger: Trigger::Dispatch,
        id: format!("dispatch-{nanos:x}-{}", std::process::id()),
        git_ref: args.git_ref.clone(),
        flavors: args.flavors.clone(),
        release_id: args.release_id.clone(),
        force: args.force,
    };
    let payload = match &args.redeliver {
        // The webhook's retry of one kept delivery.
        Some(id) => json!({"flavorCiRetry": {"delivery": id}}).to_string(),
        None => json!({ RUN_KEY: request }).to_string(),
    };
    let out = aws_sdk_lambda::Client::new(&config)
        .invoke()
        .function_name(&function)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| format!("cannot invoke {function}: {}", aws_error(&e)))?;
    if let Some(error) = out.function_error() {
        let detail = out
            .payload()
            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
            .unwrap_or_default();
        return Err(format!("{function} failed ({error}): {detail}"));
    }
    let answer: Value = out
        .payload()
        .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
        .unwrap_or(Value::Null);
    let status = answer["statusCode"].as_u64().unwrap_or(0);
    let body: Value = answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let message = body["message"].as_str().unwrap_or("no message");
    let mut out = io::stdout().lock();
    match (status, body["status"].as_str()) {
        (200, Some("started")) => {
            let id = body["batchBuildId"].as_str().unwrap_or_default();
            let project = body["project"].as_str().unwrap_or_default();
            let region = config.region().map(ToString::to_string).unwrap_or_default();
            let _ = writeln!(
                out,
                "started batch {id} on {project} at commit {}",
                body["sourceVersion"].as_str().unwrap_or_default()
            );
            let _ = writeln!(out, "{message}");
            if let Some(flavors) = body["flavors"].as_array() {
                let names: Vec<&str> = flavors.iter().filter_map(Value::as_str).collect();
                let _ = writeln!(out, "flavors: {}", names.join(", "));
            }
            let _ = writeln!(
                out,
                "{}",
                flavor_ci::layout::console_batch_url(&region, project, id)
            );
            Ok(())
        }
        (200, Some("already handled")) => {
            let _ = writeln!(out, "{message}");
            Ok(())
        }
        (200, Some("swept")) => {
            let retried = &body["retried"];
            let list = |k: &str| {
                retried[k]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            for (word, key) in [
                ("handled", "handled"),
                ("still waiting", "waiting"),
                ("given up", "givenUp"),
            ] {
                let ids = list(key);
                if !ids.is_empty() {
                    let _ = writeln!(out, "{word}: {ids}");
                }
            }
            Ok(())
        }
        _ => Err(format!("{function} answered {status}: {message}")),
    }
}
