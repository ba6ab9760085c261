//! Starting the batch build: a narrow trait over `StartBuildBatch`, its CodeBuild
//! implementation, and a recording one for unit tests.

use std::fmt;
use std::sync::Arc;

use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::error::ProvideErrorMetadata;
use flavor_ci_aws::{FromSdk, LazySdk};

/// One batch build to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchRequest {
    pub(crate) project: String,
    /// The pushed commit.
    pub(crate) source_version: String,
    /// `arn:aws:s3:::bucket/key` of the batch buildspec.
    pub(crate) buildspec: String,
    /// The delivery id: a retry within CodeBuild's five minutes starts nothing new.
    pub(crate) idempotency_token: String,
}

/// Why a batch did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StartError {
    /// CodeBuild refused or failed: its code and message, and a hint.
    #[error("{0}")]
    Refused(String),
    #[error("CodeBuild answered without a batch build id")]
    NoBatchId,
}

pub(crate) trait Builds: Send + Sync + fmt::Debug + 'static {
    /// Starts the batch; returns its id.
    fn start_batch(
        &self,
        request: &BatchRequest,
    ) -> impl Future<Output = Result<String, StartError>> + Send;
}

#[derive(Debug, Clone)]
pub(crate) struct CodeBuild {
    client: Arc<FromSdk<Client>>,
}

impl CodeBuild {
    /// The client is built on first use.
    pub(crate) fn on_first_use(sdk: Arc<LazySdk>) -> Self {
        Self {
            client: Arc::new(FromSdk::on_first_use(sdk, Client::new)),
        }
    }
}

impl Builds for CodeBuild {
    async fn start_batch(&self, request: &BatchRequest) -> Result<String, StartError> {
        let out = self
            .client
            .get()
            .await
            .start_build_batch()
            .project_name(&request.project)
            .source_version(&request.source_version)
            .buildspec_override(&request.buildspec)
            .idempotency_token(&request.idempotency_token)
            .send()
            .await
            .map_err(|e| {
                let hint = match e.code() {
                    Some("ResourceNotFoundException") => {
                        "; create the project or correct the function's project setting"
                    }
                    Some("AccessDeniedException") => {
                        "; allow the function's role codebuild:StartBuildBatch on the project"
                    }
                    Some("InvalidInputException") => {
                        "; check that the project has a batch configuration (BuildBatchConfig)"
                    }
                    _ => "",
                };
                StartError::Refused(flavor_ci_aws::sdk_error_message(&e, hint))
            })?;
        out.build_batch()
            .and_then(|b| b.id())
            .map(str::to_owned)
            .ok_or(StartError::NoBatchId)
    }
}

#[cfg(test)]
pub(crate) mod recording {
    use std::sync::Mutex;

    use super::*;

    /// Records every request; fails when `fail` is set.
    #[derive(Debug, Default)]
    pub(crate) struct Recording {
        pub(crate) started: Mutex<Vec<BatchRequest>>,
        pub(crate) fail: Option<String>,
    }

    impl Builds for Recording {
        async fn start_batch(&self, request: &BatchRequest) -> Result<String, StartError> {
            if let Some(e) = &self.fail {
                return Err(StartError::Refused(e.clone()));
            }
            let mut started = self.started.lock().unwrap();
            started.push(request.clone());
            Ok(format!("{}:batch-{}", request.project, started.len()))
        }
    }
}
