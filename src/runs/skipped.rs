//! A flavor a run reports green without building it: identical inputs built green before
//! (see `flavor_ci::inputs`), with the evidence.

use serde::{Deserialize, Serialize};

/// A flavor skipped on a record that held: what the run reports for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub key: String,
    pub build_id: String,
    pub batch_id: String,
    pub commit: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// When the green build ended (milliseconds since the epoch).
    pub built_at: u64,
    /// The build's duration: the build time this skip saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

impl Skipped {
    /// "identical inputs built green in <build> at <commit>, 2 days ago".
    pub fn evidence(&self, now_ms: u64, link: &str) -> String {
        format!(
            "identical inputs built green in {link} at {}, {}",
            short(&self.commit),
            ago(now_ms.saturating_sub(self.built_at) / 1000)
        )
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// "2 days ago", "5 hours ago", "just now".
pub fn ago(seconds: u64) -> String {
    let (n, unit) = match seconds {
        s if s < 60 => return "just now".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}
