//! The end of a build's log, read from CloudWatch Logs for a failed flavor's check run.

use std::fmt;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use flavor_ci_aws::SdkClient;

pub(crate) trait Logs: Send + Sync + fmt::Debug + 'static {
    /// The last `lines` events of `stream` in `group`, oldest first, one per line.
    fn tail(
        &self,
        group: &str,
        stream: &str,
        lines: usize,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// CloudWatch Logs.
pub(crate) type CloudWatchLogs = SdkClient<Client>;

impl Logs for CloudWatchLogs {
    async fn tail(&self, group: &str, stream: &str, lines: usize) -> Result<String, String> {
        // From the end: one request gives the last `lines` events.
        let out = self
            .get()
            .await
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(false)
            .limit(i32::try_from(lines).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| {
                let hint = match e.code() {
                    Some("AccessDeniedException") => {
                        "; allow the function's role logs:GetLogEvents on the projects' log groups"
                    }
                    Some("ResourceNotFoundException") => {
                        "; the log is gone (its retention ended) or was never written"
                    }
                    _ => "",
                };
                flavor_ci_aws::sdk_error_message(&e, hint)
            })?;
        let mut text = String::new();
        for event in out.events() {
            if let Some(message) = event.message() {
                text.push_str(message.trim_end_matches(['\n', '\r']));
                text.push('\n');
            }
        }
        Ok(text)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Logs in memory: group and stream → the log's text.
    #[derive(Debug, Default)]
    pub(crate) struct Kept {
        pub(crate) logs: Mutex<HashMap<(String, String), String>>,
    }

    impl Logs for Kept {
        async fn tail(&self, group: &str, stream: &str, lines: usize) -> Result<String, String> {
            let logs = self.logs.lock().unwrap();
            let log = logs
                .get(&(group.to_owned(), stream.to_owned()))
                .ok_or_else(|| format!("no log {group}/{stream}"))?;
            let all: Vec<&str> = log.lines().collect();
            Ok(all[all.len().saturating_sub(lines)..].join("\n"))
        }
    }
}
