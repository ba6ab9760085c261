//! The GitHub App of a stack that reports with check runs: its key is a key, GitHub accepts
//! the App's JWT signed with it (`GET /app`: the key is the App's), and the App is installed on
//! the repository with the permissions and events flavor-ci needs.

use std::sync::Arc;

use flavor_ci_aws::github::app::{AppJwt, AppKey};
use flavor_ci_aws::github::{Call, GitHubClient};
use serde_json::Value;

use super::{Check, TIMING, fail, pass, unanswered};
use crate::ops::aws_error;

/// What the App must be allowed, as GitHub names it.
const PERMISSIONS: [(&str, &str); 4] = [
    ("checks", "write"),
    ("contents", "read"),
    ("pull_requests", "read"),
    ("metadata", "read"),
];
/// The events the App must be subscribed to.
const EVENTS: [&str; 4] = ["push", "pull_request", "check_run", "check_suite"];

/// The App `app_id` with its key in `key_secret`, on `repo`.
pub(super) async fn check_app(
    secrets: &aws_sdk_secretsmanager::Client,
    api: &str,
    repo: &str,
    app_id: &str,
    key_secret: &str,
) -> Vec<Check> {
    let name = format!("GitHub App {app_id}");
    let pem = match secrets
        .get_secret_value()
        .secret_id(key_secret)
        .send()
        .await
    {
        Ok(out) => out.secret_string().unwrap_or_default().to_owned(),
        Err(e) => {
            return vec![fail(
                format!("{name}: key ({key_secret})"),
                aws_error(&e),
                "store the App's private key (.pem) in the secret, and use credentials that may secretsmanager:GetSecretValue on it",
            )];
        }
    };
    let key = match AppKey::from_pem(&pem) {
        Ok(k) => Arc::new(k),
        Err(e) => {
            return vec![fail(
                format!("{name}: key ({key_secret})"),
                e.to_string(),
                "store the .pem file GitHub gave you, unchanged",
            )];
        }
    };
    let client = GitHubClient::new(
        flavor_ci_aws::LazyHttpsClient::new(std::time::Duration::from_secs(5), false),
        api,
        TIMING,
    );
    let jwt = AppJwt::new(app_id, key);
    let mut checks = Vec::new();
    let call = Call::get("/app", "the App's own JWT");
    match client.send(&jwt, &call).await {
        Ok(a) if a.is_success() => {
            let me: Value = serde_json::from_slice(&a.body).unwrap_or_default();
            let id = me["id"].as_u64().map(|i| i.to_string()).unwrap_or_default();
            let slug = me["slug"].as_str().unwrap_or_default();
            checks.push(if id == app_id {
                pass(
                    format!("{name}: key"),
                    format!("GitHub accepts the App's JWT signed with the key (App `{slug}`)"),
                )
            } else {
                fail(
                    format!("{name}: key"),
                    format!("GitHub says the key signs for App {id:?}, not App {app_id}"),
                    "set GitHubAppId to the App the key belongs to, or store that App's key",
                )
            });
        }
        Ok(a) => {
            return vec![fail(
                format!("{name}: key"),
                format!(
                    "GitHub refuses the App's JWT ({}: {})",
                    a.status,
                    a.message()
                ),
                "check GitHubAppId, and that the key is one of the App's current private keys (the App's settings, Private keys); generate a new one if in doubt",
            )];
        }
        Err(e) => return vec![unanswered(format!("{name}: key"), &e)],
    }
    checks.push(check_installation(&client, &jwt, repo, &name).await);
    checks
}

/// The App is installed on `repo`, may do what flavor-ci asks, and hears the events it acts on.
async fn check_installation(client: &GitHubClient, jwt: &AppJwt, repo: &str, name: &str) -> Check {
    let name = format!("{name}: installation on {repo}");
    let path = format!("/repos/{repo}/installation");
    let call = Call::get(&path, "the App's own JWT");
    let answer = match client.send(jwt, &call).await {
        Ok(a) => a,
        Err(e) => return unanswered(name, &e),
    };
    if answer.status == 404 {
        return fail(
            name,
            "the App is not installed on the repository",
            format!("install it: the App's settings, Install App, choose {repo}"),
        );
    }
    if !answer.is_success() {
        return fail(
            name,
            format!("GitHub answered {}: {}", answer.status, answer.message()),
            "run health again later",
        );
    }
    let granted: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let events: Vec<&str> = granted["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let missing: Vec<String> = PERMISSIONS
        .iter()
        .filter(|(k, v)| {
            let has = granted["permissions"][*k].as_str();
            !(has == Some(v) || (*v == "read" && has == Some("write")))
        })
        .map(|(k, v)| format!("{k}: {v}"))
        .chain(
            EVENTS
                .iter()
                .filter(|e| !events.contains(e))
                .map(|e| format!("the {e} event")),
        )
        .collect();
    if missing.is_empty() {
        pass(
            name,
            "installed with the permissions and events flavor-ci needs",
        )
    } else {
        fail(
            name,
            format!("the installation lacks {}", missing.join(", ")),
            "grant them in the App's settings (Permissions & events; the manifest in docs/github-app-manifest.json lists them), then accept the new permissions on the installation",
        )
    }
}
