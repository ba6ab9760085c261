//! What the function asks CodeBuild: the batch a build belongs to, and the builds of open
//! batches (for events that never arrived). A narrow trait, its CodeBuild implementation, and
//! an in-memory one for unit tests.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::error::ProvideErrorMetadata;
use aws_sdk_codebuild::types::Build;
use flavor_ci::runs::BuildState;
use flavor_ci::runs::checks::PhaseTiming;
use flavor_ci_aws::SdkClient;

/// One batch as CodeBuild describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchView {
    pub(crate) id: String,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `STOPPED`, …
    pub(crate) status: String,
    /// Each task's identifier and its current build.
    pub(crate) builds: Vec<(String, BuildState)>,
}

/// CodeBuild refused or failed: its code and message, and a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CodeBuildError(pub(crate) String);

fn refused<E, R>(e: &aws_sdk_codebuild::error::SdkError<E, R>, call: &str) -> CodeBuildError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    let hint = match e.code() {
        Some("AccessDeniedException") => {
            format!("; allow the function's role codebuild:{call} on the two projects")
        }
        _ => String::new(),
    };
    CodeBuildError(flavor_ci_aws::sdk_error_message(e, &hint))
}

pub(crate) trait Batches: Send + Sync + fmt::Debug + 'static {
    /// The id of the batch `build_id` ran in, `None` for a build outside any batch.
    fn batch_of(
        &self,
        build_id: &str,
    ) -> impl Future<Output = Result<Option<String>, CodeBuildError>> + Send;

    /// The batches among `ids` that CodeBuild knows, with their builds.
    fn describe(
        &self,
        ids: &[String],
        region: &str,
    ) -> impl Future<Output = Result<Vec<BatchView>, CodeBuildError>> + Send;

    /// One build's phases and where its log is, for its check run's summary.
    fn details(
        &self,
        build_id: &str,
    ) -> impl Future<Output = Result<Option<BuildDetails>, CodeBuildError>> + Send;
}

/// What a check run's summary shows of a build beyond its state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BuildDetails {
    pub(crate) phases: Vec<PhaseTiming>,
    /// The CloudWatch Logs group and stream of the build's log.
    pub(crate) log: Option<(String, String)>,
}

/// CodeBuild.
pub(crate) type CodeBuild = SdkClient<Client>;

/// `project:uuid` from a build or batch ARN (or the id itself).
pub(crate) fn short_id(arn_or_id: &str) -> &str {
    match arn_or_id.strip_prefix("arn:") {
        Some(rest) => rest
            .split_once(":build/")
            .or_else(|| rest.split_once(":build-batch/"))
            .map_or(arn_or_id, |(_, id)| id),
        None => arn_or_id,
    }
}

/// A build as `BatchGetBuilds` describes it.
fn state_of(build: &Build, region: &str, now: u64) -> BuildState {
    let ms = |t: Option<&aws_sdk_codebuild::primitives::DateTime>| {
        t.and_then(|t| u64::try_from(t.to_millis().ok()?).ok())
    };
    let id = build.id().unwrap_or_default().to_owned();
    let project = build.project_name().unwrap_or_default();
    let started_at = ms(build.start_time());
    let ended_at = ms(build.end_time());
    let failed_phase = build
        .phases()
        .iter()
        .find(|p| {
            p.phase_status()
                .is_some_and(|s| !matches!(s.as_str(), "SUCCEEDED" | "IN_PROGRESS"))
        })
        .and_then(|p| p.phase_type())
        .map(|t| t.as_str().to_owned());
    BuildState {
        page: Some(flavor_ci::layout::console_build_url(region, project, &id)),
        build_id: id,
        status: build
            .build_status()
            .map_or("IN_PROGRESS", |s| s.as_str())
            .to_owned(),
        phase: build.current_phase().map(str::to_owned),
        failed_phase,
        started_at,
        ended_at,
        seconds: started_at
            .zip(ended_at)
            .map(|(s, e)| e.saturating_sub(s) / 1000),
        compute_type: build
            .environment()
            .map(|e| e.compute_type().as_str().to_owned())
            .filter(|c| !c.is_empty()),
        logs: build.logs().and_then(|l| l.deep_link()).map(str::to_owned),
        reported_at: now,
    }
}

/// A build's phases as CodeBuild describes them (`BatchGetBuilds`).
fn details_of(build: &Build) -> BuildDetails {
    let phases = build
        .phases()
        .iter()
        .map(|p| PhaseTiming {
            name: p.phase_type().map_or("UNKNOWN", |t| t.as_str()).to_owned(),
            status: p.phase_status().map(|s| s.as_str().to_owned()),
            seconds: p.duration_in_seconds().and_then(|s| u64::try_from(s).ok()),
            message: p
                .contexts()
                .iter()
                .filter_map(|c| c.message())
                .find(|m| !m.is_empty())
                .map(str::to_owned),
        })
        .collect();
    let log = build
        .logs()
        .and_then(|l| Some((l.group_name()?.to_owned(), l.stream_name()?.to_owned())));
    BuildDetails { phases, log }
}

/// One build as `BatchGetBuilds` describes it, if CodeBuild knows it.
async fn one_build(codebuild: &CodeBuild, build_id: &str) -> Result<Option<Build>, CodeBuildError> {
    let out = codebuild
        .get()
        .await
        .batch_get_builds()
        .ids(build_id)
        .send()
        .await
        .map_err(|e| refused(&e, "BatchGetBuilds"))?;
    Ok(out.builds().first().cloned())
}

impl Batches for CodeBuild {
    async fn details(&self, build_id: &str) -> Result<Option<BuildDetails>, CodeBuildError> {
        Ok(one_build(self, build_id).await?.as_ref().map(details_of))
    }

    async fn batch_of(&self, build_id: &str) -> Result<Option<String>, CodeBuildError> {
        Ok(one_build(self, build_id)
            .await?
            .as_ref()
            .and_then(|b| b.build_batch_arn())
            .map(|arn| short_id(arn).to_owned()))
    }

    async fn describe(
        &self,
        ids: &[String],
        region: &str,
    ) -> Result<Vec<BatchView>, CodeBuildError> {
        let client = self.get().await;
        let now = flavor_ci_aws::undo::now_ms();
        let mut views = Vec::new();
        for chunk in ids.chunks(100) {
            let out = client
                .batch_get_build_batches()
                .set_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| refused(&e, "BatchGetBuildBatches"))?;
            // Each task's current build, described in full by one BatchGetBuilds per 100.
            let mut tasks: Vec<(String, usize, String)> = Vec::new();
            for batch in out.build_batches() {
                let index = views.len();
                views.push(BatchView {
                    id: batch.id().unwrap_or_default().to_owned(),
                    status: batch
                        .build_batch_status()
                        .map_or("IN_PROGRESS", |s| s.as_str())
                        .to_owned(),
                    builds: Vec::new(),
                });
                for group in batch.build_groups() {
                    if let (Some(identifier), Some(arn)) = (
                        group.identifier(),
                        group.current_build_summary().and_then(|s| s.arn()),
                    ) {
                        tasks.push((identifier.to_owned(), index, short_id(arn).to_owned()));
                    }
                }
            }
            let build_ids: Vec<String> = tasks.iter().map(|(_, _, b)| b.clone()).collect();
            let mut described: HashMap<String, BuildState> = HashMap::new();
            for ids in build_ids.chunks(100) {
                let out = client
                    .batch_get_builds()
                    .set_ids(Some(ids.to_vec()))
                    .send()
                    .await
                    .map_err(|e| refused(&e, "BatchGetBuilds"))?;
                for b in out.builds() {
                    let state = state_of(b, region, now);
                    described.insert(state.build_id.clone(), state);
                }
            }
            for (identifier, index, build_id) in tasks {
                if let Some(state) = described.remove(&build_id)
                    && let Some(view) = views.get_mut(index)
                {
                    view.builds.push((identifier, state));
                }
            }
        }
        Ok(views)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! Batches kept in memory, changed by the tests.

    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub(crate) struct FakeBatches {
        /// build id → batch id
        pub(crate) batch_of: Mutex<HashMap<String, String>>,
        /// build id → its phases and log
        pub(crate) details: Mutex<HashMap<String, BuildDetails>>,
        pub(crate) batches: Mutex<Vec<BatchView>>,
        pub(crate) calls: Mutex<Vec<String>>,
    }

    impl Batches for FakeBatches {
        async fn details(&self, build_id: &str) -> Result<Option<BuildDetails>, CodeBuildError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("BatchGetBuilds {build_id}"));
            Ok(self.details.lock().unwrap().get(build_id).cloned())
        }

        async fn batch_of(&self, build_id: &str) -> Result<Option<String>, CodeBuildError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("BatchGetBuilds {build_id}"));
            Ok(self.batch_of.lock().unwrap().get(build_id).cloned())
        }

        async fn describe(
            &self,
            ids: &[String],
            _region: &str,
        ) -> Result<Vec<BatchView>, CodeBuildError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("BatchGetBuildBatches {}", ids.join(",")));
            Ok(self
                .batches
                .lock()
                .unwrap()
                .iter()
                .filter(|b| ids.contains(&b.id))
                .cloned()
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_build_and_batch_arns() {
        assert_eq!(
            short_id("arn:aws:codebuild:us-east-1:123456789012:build/ci:0e8c"),
            "ci:0e8c"
        );
        assert_eq!(
            short_id("arn:aws:codebuild:us-east-1:123456789012:build-batch/ci:0e8c"),
            "ci:0e8c"
        );
        assert_eq!(short_id("ci:0e8c"), "ci:0e8c");
    }
}
