//! The GitHub webhook behind a Lambda function URL: a verified push refreshes the batch
//! buildspec in S3 and starts the CodeBuild batch build for the pushed commit.

use std::sync::Arc;
use std::time::Duration;

use flavor_ci_aws::SdkClient;
use lambda_runtime::tracing::error;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tokio::sync::Mutex;

mod batch;
mod builds;
mod buttons;
mod config;
#[cfg(test)]
mod decisions;
#[cfg(test)]
mod decisions_app;
#[cfg(test)]
mod decisions_intake;
#[cfg(test)]
mod decisions_queue;
#[cfg(test)]
mod decisions_skip;
mod edge;
mod fault;
mod github;
mod handler;
mod http;
mod intake;
mod merge_group;
mod outcome;
mod ports;
mod pull;
mod push;
mod record;
mod repo_hook;
mod report;
mod run;
mod skip;
mod superseded;
mod sweep;
mod verify;
use flavor_ci_aws::secrets;

use builds::CodeBuild;
use config::Config;
use flavor_ci_aws::github::GitHubClient;
use flavor_ci_aws::github::app::{self, Credentials, SecretApp};
use github::GitHub;
use ports::{Deps, Ports};
use secrets::{Cached, SecretsManager};

/// The AWS services the function talks to.
#[derive(Debug)]
struct Aws;

impl Ports for Aws {
    type Store = flavor_ci_aws::store::S3Store;
    type Builds = CodeBuild;
    type Secrets = SecretsManager;
    type GitHub = GitHub<Credentials<SecretsManager>>;
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    flavor_ci_aws::logging::init();
    // Built on first use: the cold start reaches its first request for work without loading
    // the SDK configuration (and the root certificates with it).
    let sdk = flavor_ci_aws::LazySdk::new(Duration::from_secs(3));
    let config = Config::from_env();
    if let Err(e) = &config {
        // Every request answers 500 with this message until the configuration is fixed.
        error!(problem = %e, "the function is misconfigured");
    }
    let secrets = Arc::new(flavor_ci_aws::secrets::secrets_manager(sdk.clone()));
    let (secret_id, api, ttl) = match &config {
        Ok(c) => (c.webhook_secret.clone(), c.github_api.clone(), c.secret_ttl),
        Err(_) => (String::new(), String::new(), Duration::ZERO),
    };
    // Built on the first request to GitHub, not during the cold start.
    let https = flavor_ci_aws::LazyHttpsClient::new(Duration::from_secs(2), true);
    let client = GitHubClient::new(https, &api, github::TIMING);
    let credentials = match &config {
        Ok(c) => credentials(c, &client, secrets.clone()),
        Err(_) => Credentials::None,
    };
    let deps: Arc<Deps<Aws>> = Arc::new(Deps {
        store: flavor_ci_aws::store::s3(sdk.clone()),
        builds: SdkClient::on_first_use(sdk.clone(), aws_sdk_codebuild::Client::new),
        webhook_secrets: Cached::new(secrets.clone(), secret_id, secrets::webhook_secrets, ttl)
            .refreshed_at_most_every(secrets::WEBHOOK_SECRET_REFRESH),
        repo_hook: config.as_ref().ok().and_then(|c| {
            let id = c.hook_token_secret.clone()?;
            Some(repo_hook::RepoHook {
                client: client.clone(),
                token: Cached::new(secrets.clone(), id, secrets::github_token, ttl),
                recorded: Mutex::new(None),
            })
        }),
        github: GitHub::new(client, credentials),
        region: sdk.region(),
        settings: Mutex::new(None),
        config,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        handler::handle(deps.clone(), event)
    }))
    .await
}

/// How the webhook reads GitHub and reports: as the App's installation on the repository (a
/// token that may read contents and pull requests and write check runs, nothing more), or with
/// the token secret, or anonymously.
fn credentials(
    c: &Config,
    client: &GitHubClient,
    secrets: Arc<SecretsManager>,
) -> Credentials<SecretsManager> {
    if let Some(a) = &c.app {
        let key = Cached::new(secrets, a.key_secret.clone(), app::app_key, c.secret_ttl);
        return Credentials::App(Box::new(SecretApp::new(
            client.clone(),
            a.id.clone(),
            key,
            c.repository.clone(),
            &[
                ("checks", "write"),
                ("contents", "read"),
                ("pull_requests", "read"),
                ("metadata", "read"),
            ],
        )));
    }
    match &c.github_token_secret {
        Some(id) => Credentials::Token(Cached::new(
            secrets,
            id.clone(),
            secrets::github_token,
            c.secret_ttl,
        )),
        None => Credentials::None,
    }
}
