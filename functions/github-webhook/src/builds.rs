//! Starting the batch build: a narrow trait over `StartBuildBatch`, its CodeBuild
//! implementation, and a recording one for unit tests.

use std::fmt;

use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::error::ProvideErrorMetadata;
use flavor_ci::inputs::ledger::BuildFacts;
use flavor_ci_aws::SdkClient;

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
    /// `false` while flavor-ci posts the commit statuses itself: CodeBuild then reports none,
    /// so a commit never shows two checks that could disagree. `None`: the project decides.
    pub(crate) report_status: Option<bool>,
}

/// Why CodeBuild did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CodeBuildError {
    /// CodeBuild refused or failed: its code and message, and a hint.
    #[error("{0}")]
    Refused(String),
    /// CodeBuild throttled the call, failed on its side, or did not answer: trying again
    /// later helps.
    #[error("{0}")]
    Unavailable(String),
    #[error("CodeBuild answered without a batch build id")]
    NoBatchId,
}

fn refused<E, R>(e: &aws_sdk_codebuild::error::SdkError<E, R>, what: &str) -> CodeBuildError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    let hint = match e.code() {
        Some("ResourceNotFoundException") => {
            "; create the project or correct the function's project setting"
        }
        Some("AccessDeniedException") => match what {
            "stop" => "; allow the function's role codebuild:StopBuildBatch on the project",
            "retry" => "; allow the function's role codebuild:RetryBuildBatch on the project",
            "facts" => "; allow the function's role codebuild:BatchGetBuilds on the project",
            _ => "; allow the function's role codebuild:StartBuildBatch on the project",
        },
        Some("InvalidInputException") if what == "start" => {
            "; check that the project has a batch configuration (BuildBatchConfig)"
        }
        _ => "",
    };
    let message = flavor_ci_aws::sdk_error_message(e, hint);
    let transient = match e.code() {
        Some(code) => matches!(
            code,
            "ThrottlingException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "InternalFailure"
                | "InternalServerError"
                | "RequestTimeout"
        ),
        // No answer at all: a timeout or a connection that failed.
        None => true,
    };
    if transient {
        CodeBuildError::Unavailable(message)
    } else {
        CodeBuildError::Refused(message)
    }
}

pub(crate) trait Builds: Send + Sync + fmt::Debug + 'static {
    /// Starts the batch; returns its id.
    fn start_batch(
        &self,
        request: &BatchRequest,
    ) -> impl Future<Output = Result<String, CodeBuildError>> + Send;

    /// Stops a batch that is still running.
    fn stop_batch(&self, id: &str) -> impl Future<Output = Result<(), CodeBuildError>> + Send;

    /// Runs the failed builds of an ended batch again (`RetryBuildBatch`,
    /// `RETRY_FAILED_BUILDS`). `Ok(false)` when CodeBuild will not retry it (the batch did not
    /// fail, or has been retried as often as it allows).
    fn retry_batch(
        &self,
        id: &str,
        idempotency_token: &str,
    ) -> impl Future<Output = Result<bool, CodeBuildError>> + Send;

    /// What CodeBuild says about these builds (`BatchGetBuilds`, 100 ids a call); a build it
    /// does not know is left out.
    fn build_facts(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<BuildFacts>, CodeBuildError>> + Send;
}

/// CodeBuild.
pub(crate) type CodeBuild = SdkClient<Client>;

impl Builds for CodeBuild {
    async fn start_batch(&self, request: &BatchRequest) -> Result<String, CodeBuildError> {
        let out = self
            .get()
            .await
            .start_build_batch()
            .project_name(&request.project)
            .source_version(&request.source_version)
            .buildspec_override(&request.buildspec)
            .idempotency_token(&request.idempotency_token)
            .set_report_build_batch_status_override(request.report_status)
            .send()
            .await
            .map_err(|e| refused(&e, "start"))?;
        out.build_batch()
            .and_then(|b| b.id())
            .map(str::to_owned)
            .ok_or(CodeBuildError::NoBatchId)
    }

    async fn stop_batch(&self, id: &str) -> Result<(), CodeBuildError> {
        self.get()
            .await
            .stop_build_batch()
            .id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| refused(&e, "stop"))
    }

    async fn retry_batch(&self, id: &str, idempotency_token: &str) -> Result<bool, CodeBuildError> {
        let sent = self
            .get()
            .await
            .retry_build_batch()
            .id(id)
            .idempotency_token(idempotency_token)
            .retry_type(aws_sdk_codebuild::types::RetryBuildBatchType::RetryFailedBuilds)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("InvalidInputException") => Ok(false),
            Err(e) => Err(refused(&e, "retry")),
        }
    }

    async fn build_facts(&self, ids: &[String]) -> Result<Vec<BuildFacts>, CodeBuildError> {
        let client = self.get().await;
        let mut facts = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let out = client
                .batch_get_builds()
                .set_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| refused(&e, "facts"))?;
            for b in out.builds() {
                let ms = |t: Option<&aws_sdk_codebuild::primitives::DateTime>| {
                    t.and_then(|t| u64::try_from(t.to_millis().ok()?).ok())
                };
                facts.push(BuildFacts::new(
                    b.id(),
                    b.build_status().map(|s| s.as_str()),
                    b.project_name(),
                    b.resolved_source_version().or(b.source_version()),
                    ms(b.start_time()),
                    ms(b.end_time()),
                ));
            }
        }
        Ok(facts)
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
        pub(crate) stopped: Mutex<Vec<String>>,
        /// The batches retried, with their tokens; a batch in `unretryable` is refused.
        pub(crate) retried: Mutex<Vec<(String, String)>>,
        pub(crate) unretryable: Vec<String>,
        pub(crate) fail: Option<String>,
        /// While set, every start is throttled (a transient failure).
        pub(crate) throttled: Mutex<bool>,
        /// The builds `build_facts` knows.
        pub(crate) facts: Mutex<Vec<BuildFacts>>,
        /// The ids `build_facts` was asked about, call by call.
        pub(crate) asked: Mutex<Vec<Vec<String>>>,
    }

    impl Builds for Recording {
        async fn start_batch(&self, request: &BatchRequest) -> Result<String, CodeBuildError> {
            if let Some(e) = &self.fail {
                return Err(CodeBuildError::Refused(e.clone()));
            }
            if *self.throttled.lock().unwrap() {
                return Err(CodeBuildError::Unavailable(
                    "ThrottlingException: Rate exceeded".into(),
                ));
            }
            let mut started = self.started.lock().unwrap();
            started.push(request.clone());
            Ok(format!("{}:batch-{}", request.project, started.len()))
        }

        async fn stop_batch(&self, id: &str) -> Result<(), CodeBuildError> {
            self.stopped.lock().unwrap().push(id.to_owned());
            Ok(())
        }

        async fn retry_batch(&self, id: &str, token: &str) -> Result<bool, CodeBuildError> {
            if self.unretryable.iter().any(|u| u == id) {
                return Ok(false);
            }
            let mut retried = self.retried.lock().unwrap();
            // CodeBuild's idempotency: the same token retries once.
            if !retried.iter().any(|(_, t)| t == token) {
                retried.push((id.to_owned(), token.to_owned()));
            }
            Ok(true)
        }

        async fn build_facts(&self, ids: &[String]) -> Result<Vec<BuildFacts>, CodeBuildError> {
            self.asked.lock().unwrap().push(ids.to_vec());
            let facts = self.facts.lock().unwrap();
            Ok(facts
                .iter()
                .filter(|f| ids.contains(&f.id))
                .cloned()
                .collect())
        }
    }
}
