//! CodeBuild Build State Change events of flavor-ci's batches: each build's state goes into
//! its run record, a commit status per flavor and, once the batch ends, the aggregate status
//! and a failure notification. A schedule reconciles runs whose events were lost.

use std::sync::Arc;
use std::time::Duration;

use flavor_ci_aws::github::app::{self, Credentials, SecretApp};
use flavor_ci_aws::github::checks::CheckRuns;
use flavor_ci_aws::github::{GitHubClient, Timing};
use flavor_ci_aws::github_status::StatusPoster;

/// One post may take 4 s, both attempts together 9 s.
const TIMING: Timing = Timing {
    attempt: Duration::from_secs(4),
    total: Duration::from_secs(9),
};
use flavor_ci_aws::SdkClient;
use flavor_ci_aws::secrets::{self, Cached};
use lambda_runtime::tracing::error;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

mod codebuild;
mod config;
mod deps;
mod event;
mod handler;
mod logs;
mod notify;
mod track;

use config::Config;
use deps::Deps;

/// The AWS services the function talks to.
#[derive(Debug)]
struct Aws;

impl deps::Ports for Aws {
    type Store = flavor_ci_aws::store::S3Store;
    type Batches = codebuild::CodeBuild;
    type Secrets = flavor_ci_aws::secrets::SecretsManager;
    type Notifier = notify::Sns;
    type Logs = logs::CloudWatchLogs;
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    flavor_ci_aws::logging::init();
    // Built on first use: the cold start reaches its first request for work without loading
    // the SDK configuration.
    let sdk = flavor_ci_aws::LazySdk::new(Duration::from_secs(3));
    let config = Config::from_env();
    if let Err(e) = &config {
        error!(problem = %e, "the function is misconfigured");
    }
    let api = config.as_ref().map_or("", |c| c.github_api.as_str());
    let client = GitHubClient::new(
        flavor_ci_aws::LazyHttpsClient::new(Duration::from_secs(2), true),
        api,
        TIMING,
    );
    let github = match &config {
        Ok(c) => credentials(c, &client, sdk.clone()),
        Err(_) => Credentials::None,
    };
    let deps: Arc<Deps<Aws>> = Arc::new(Deps {
        store: flavor_ci_aws::store::s3(sdk.clone()),
        batches: SdkClient::on_first_use(sdk.clone(), aws_sdk_codebuild::Client::new),
        github,
        poster: StatusPoster::new(client.clone()),
        checks: CheckRuns::new(client),
        notifier: SdkClient::on_first_use(sdk.clone(), aws_sdk_sns::Client::new),
        logs: SdkClient::on_first_use(sdk.clone(), aws_sdk_cloudwatchlogs::Client::new),
        region: sdk.region(),
        config,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        handler::handle(deps.clone(), event)
    }))
    .await
}

/// How the function writes to GitHub: as the App when one is configured (check runs, with a
/// token for the repository that may write checks and nothing else), else with the token
/// secret (statuses), else not at all.
fn credentials(
    c: &Config,
    client: &GitHubClient,
    sdk: Arc<flavor_ci_aws::LazySdk>,
) -> Credentials<flavor_ci_aws::secrets::SecretsManager> {
    if c.status_context.is_none() {
        return Credentials::None;
    }
    let source = Arc::new(flavor_ci_aws::secrets::secrets_manager(sdk));
    if let Some(a) = &c.app {
        let key = Cached::new(source, a.key_secret.clone(), app::app_key, c.secret_ttl);
        return Credentials::App(Box::new(SecretApp::new(
            client.clone(),
            a.id.clone(),
            key,
            c.repository.clone(),
            &[("checks", "write"), ("metadata", "read")],
        )));
    }
    match &c.github_token_secret {
        Some(id) => Credentials::Token(Cached::new(
            source,
            id.clone(),
            secrets::github_token,
            c.secret_ttl,
        )),
        None => Credentials::None,
    }
}
