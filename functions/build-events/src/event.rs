//! Reading a CodeBuild "Build State Change" event (aws_lambda_events' type) into what the
//! run record needs.

use aws_lambda_events::event::codebuild::CodeBuildEvent;
use flavor_ci::runs::{BuildState, is_final};
use serde_json::Value;

use crate::codebuild::short_id;

/// One build's state, as the event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) project: String,
    /// `project:uuid`
    pub(crate) build_id: String,
    /// The batch, when the event names it.
    pub(crate) batch_id: Option<String>,
    /// The build's `FLAVOR` variable.
    pub(crate) flavor: Option<String>,
    pub(crate) state: BuildState,
}

/// Why an event cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EventError {
    #[error("the event is not a CodeBuild Build State Change event: {0}")]
    Shape(String),
    #[error("the event names no {0}")]
    Missing(&'static str),
}

/// Reads `event` (already known to be a Build State Change).
pub(crate) fn read(event: Value) -> Result<Report, EventError> {
    // Some events name their batch; aws_lambda_events keeps no field for it.
    let batch_id = event
        .pointer("/detail/additional-information/build-batch-arn")
        .and_then(Value::as_str)
        .map(|arn| short_id(arn).to_owned());
    let e: CodeBuildEvent = serde_path_to_error::deserialize(event)
        .map_err(|e| EventError::Shape(format!("at {}: {}", e.path(), e.inner())))?;
    let detail = &e.detail;
    let info = &detail.additional_information;
    let project = detail
        .project_name
        .clone()
        .ok_or(EventError::Missing("project-name"))?;
    let build_id = short_id(
        detail
            .build_id
            .as_deref()
            .ok_or(EventError::Missing("build-id"))?,
    )
    .to_owned();
    let status = detail
        .build_status
        .clone()
        .ok_or(EventError::Missing("build-status"))?;
    let reported_at = ms(e.time.timestamp_millis());
    let started_at = ms(info.build_start_time.timestamp_millis());
    let ended_at = is_final(&status).then(|| {
        info.phases
            .iter()
            .filter_map(|p| p.end_time.map(|t| ms(t.timestamp_millis())))
            .max()
            .unwrap_or(reported_at)
            .max(started_at)
    });
    let failed_phase = info
        .phases
        .iter()
        .find(|p| {
            p.phase_status
                .as_deref()
                .is_some_and(|s| !matches!(s, "SUCCEEDED" | "IN_PROGRESS"))
        })
        .map(|p| p.phase_type.clone());
    let flavor = info
        .environment
        .environment_variables
        .iter()
        .find(|v| v.name.as_deref() == Some("FLAVOR"))
        .and_then(|v| v.value.clone());
    let region = e.region.as_deref().unwrap_or("us-east-1");
    Ok(Report {
        state: BuildState {
            page: Some(flavor_ci::layout::console_build_url(
                region, &project, &build_id,
            )),
            build_id: build_id.clone(),
            status,
            phase: detail.current_phase.clone(),
            failed_phase,
            started_at: Some(started_at),
            ended_at,
            seconds: ended_at.map(|end| end.saturating_sub(started_at) / 1000),
            compute_type: info.environment.compute_type.clone(),
            logs: info.logs.deep_link.clone(),
            reported_at,
        },
        project,
        build_id,
        batch_id,
        flavor,
    })
}

fn ms(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event(status: &str, phase: &str, flavor: &str) -> Value {
        serde_json::json!({
            "version": "0", "id": "e1", "detail-type": "CodeBuild Build State Change",
            "source": "aws.codebuild", "account": "123456789012",
            "time": "2026-11-23T10:02:05Z", "region": "eu-west-1",
            "resources": ["arn:aws:codebuild:eu-west-1:123456789012:build/ci:b1"],
            "detail": {
                "build-status": status, "project-name": "ci",
                "build-id": "arn:aws:codebuild:eu-west-1:123456789012:build/ci:b1",
                "current-phase": phase, "current-phase-context": "[]", "version": "1",
                "additional-information": {
                    "artifact": {}, "timeout-in-minutes": 60, "build-complete": status != "IN_PROGRESS",
                    "initiator": "ci", "build-start-time": "Nov 23, 2026 10:00:00 AM",
                    "source": {"type": "GITHUB"}, "source-version": "abc",
                    "logs": {"deep-link": "https://logs/b1"},
                    "environment": {"image": "img", "privileged-mode": false,
                        "compute-type": "BUILD_GENERAL1_SMALL", "type": "LINUX_CONTAINER",
                        "environment-variables": [{"name": "FLAVOR", "type": "PLAINTEXT", "value": flavor}]},
                    "phases": [
                        {"phase-context": [], "start-time": "Nov 23, 2026 10:00:00 AM",
                         "end-time": "Nov 23, 2026 10:00:30 AM", "duration-in-seconds": 30,
                         "phase-type": "PROVISIONING", "phase-status": "SUCCEEDED"},
                        {"phase-context": ["exit status 2"], "start-time": "Nov 23, 2026 10:00:30 AM",
                         "end-time": "Nov 23, 2026 10:02:00 AM", "duration-in-seconds": 90,
                         "phase-type": "BUILD", "phase-status": if status == "FAILED" { "FAILED" } else { "SUCCEEDED" }},
                    ]
                }
            }
        })
    }

    #[test]
    fn an_ended_build_reads_with_its_flavor_duration_and_failed_phase() {
        let r = read(event("FAILED", "COMPLETED", "base")).unwrap();
        assert_eq!(r.build_id, "ci:b1");
        assert_eq!(r.flavor.as_deref(), Some("base"));
        assert_eq!(r.batch_id, None);
        assert_eq!(r.state.failed_phase.as_deref(), Some("BUILD"));
        assert_eq!(r.state.seconds, Some(120));
        assert_eq!(
            r.state.compute_type.as_deref(),
            Some("BUILD_GENERAL1_SMALL")
        );
        assert_eq!(
            r.state.page.as_deref(),
            Some(
                "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/ci/build/ci%3Ab1?region=eu-west-1"
            )
        );
        let running = read(event("IN_PROGRESS", "BUILD", "base")).unwrap();
        assert_eq!(running.state.ended_at, None);
        assert_eq!(running.state.seconds, None);
    }

    #[test]
    fn the_sample_events_read_with_their_flavor_and_state() {
        let samples = [
            (
                include_str!("../../../events/build-events-in-progress.json"),
                "IN_PROGRESS",
                None,
            ),
            (
                include_str!("../../../events/build-events-succeeded.json"),
                "SUCCEEDED",
                None,
            ),
            (
                include_str!("../../../events/build-events-failed.json"),
                "FAILED",
                Some("BUILD"),
            ),
            (
                include_str!("../../../events/build-events-fault.json"),
                "FAULT",
                Some("BUILD"),
            ),
            (
                include_str!("../../../events/build-events-timed-out.json"),
                "TIMED_OUT",
                Some("BUILD"),
            ),
            (
                include_str!("../../../events/build-events-stopped.json"),
                "STOPPED",
                Some("BUILD"),
            ),
        ];
        for (text, status, failed) in samples {
            let r = read(serde_json::from_str(text).unwrap()).unwrap();
            assert_eq!(r.flavor.as_deref(), Some("python-3.10"));
            assert_eq!(r.state.status, status);
            assert_eq!(r.state.failed_phase.as_deref(), failed, "{status}");
            assert_eq!(
                r.state.seconds.is_some(),
                status != "IN_PROGRESS",
                "{status}"
            );
        }
    }

    #[test]
    fn a_batch_named_in_the_event_is_used_and_bad_events_say_where() {
        let mut e = event("SUCCEEDED", "COMPLETED", "base");
        e["detail"]["additional-information"]["build-batch-arn"] =
            "arn:aws:codebuild:eu-west-1:123456789012:build-batch/ci:x".into();
        assert_eq!(read(e).unwrap().batch_id.as_deref(), Some("ci:x"));
        let mut bad = event("SUCCEEDED", "COMPLETED", "base");
        bad["detail"]["additional-information"]["build-start-time"] = "yesterday".into();
        let message = read(bad).unwrap_err().to_string();
        assert!(message.contains("build-start-time"), "{message}");
    }
}
