//! The one settings schema, read from a repository's `flavor-ci.yaml`, from CloudFormation
//! resource properties, or from the copy a deployed stack stored.
//!
//! Every scalar may arrive as a string (`"true"`, `"8"`): CloudFormation sends them that way,
//! and the YAML reader hands over source text so that `3.10` is never the float 3.1.
//! Unknown keys are rejected by name.
//!
//! This module holds the schema, in plain types; `reading` reads and checks it, through
//! `lenient`, the deserializer that gives each field what its type asks for (every scalar as
//! text, a flag, a count or a list of one) and keeps sections mappings.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::flavors::IdentifierStyle;

mod lenient;
mod reading;
#[cfg(test)]
mod tests;

pub use reading::repository_path_problem;

/// The file `flavor-ci generate` reads from a repository's root.
pub const SETTINGS_FILE: &str = "flavor-ci.yaml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Settings {
    /// Where the flavor directories are, relative to the repository root.
    pub flavors_dir: String,
    /// Directory names under `flavors-dir` that are not flavors.
    pub exclude: Vec<String>,
    pub batch: BatchSettings,
    pub build: BuildSettings,
    /// Per-flavor overrides and dependencies, by flavor name.
    pub flavors: IndexMap<String, FlavorSettings>,
    pub ci: VariantSettings,
    pub release: ReleaseSettings,
    /// Which pull requests the webhook builds. Left out of the stored form while it is the
    /// default, so settings written before it existed keep their key.
    #[serde(skip_serializing_if = "PullRequestSettings::is_default")]
    pub pull_requests: PullRequestSettings,
    /// How merge groups (GitHub's merge queue) are planned. Left out while it is the default.
    #[serde(skip_serializing_if = "MergeQueueSettings::is_default")]
    pub merge_queue: MergeQueueSettings,
    /// Which failures are announced besides the default branch's, tags' and schedules'.
    #[serde(skip_serializing_if = "NotificationSettings::is_default")]
    pub notifications: NotificationSettings,
    /// When a flavor whose exact inputs already built green is skipped. Left out while it is
    /// the default.
    #[serde(skip_serializing_if = "SkipSettings::is_default")]
    pub skip: SkipSettings,
}

/// The triggers whose runs may skip flavors that already built green. Schedules and releases
/// always build: their purpose is a fresh build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipTrigger {
    PullRequests,
    MergeGroups,
    Pushes,
    Dispatches,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SkipSettings {
    /// How old a green build may be and still stand for identical inputs.
    pub max_age: MaxAge,
    /// The triggers that may skip; empty: none.
    pub on: Vec<SkipTrigger>,
}

impl Default for SkipSettings {
    fn default() -> Self {
        Self {
            max_age: MaxAge(14 * 86_400),
            on: vec![
                SkipTrigger::PullRequests,
                SkipTrigger::MergeGroups,
                SkipTrigger::Pushes,
            ],
        }
    }
}

impl SkipSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub fn allows(&self, trigger: SkipTrigger) -> bool {
        self.on.contains(&trigger)
    }
}

impl<'de> Deserialize<'de> for SkipTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.as_str() {
            "pull-requests" => SkipTrigger::PullRequests,
            "merge-groups" => SkipTrigger::MergeGroups,
            "pushes" => SkipTrigger::Pushes,
            "dispatches" => SkipTrigger::Dispatches,
            "schedules" | "releases" | "tags" => {
                return Err(serde::de::Error::custom(format!(
                    "{text} always build: their purpose is a fresh build; skip.on takes pull-requests, merge-groups, pushes, dispatches"
                )));
            }
            other => {
                return Err(serde::de::Error::custom(format!(
                    "{other:?} is not a trigger; skip.on takes pull-requests, merge-groups, pushes, dispatches"
                )));
            }
        })
    }
}

/// A duration in seconds, written as days or hours (`14d`, `36h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge(pub u64);

impl std::fmt::Display for MaxAge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_multiple_of(86_400) {
            write!(f, "{}d", self.0 / 86_400)
        } else if self.0.is_multiple_of(3600) {
            write!(f, "{}h", self.0 / 3600)
        } else {
            write!(f, "{}s", self.0)
        }
    }
}

impl std::str::FromStr for MaxAge {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{text:?} is not a duration: write days or hours, like `14d` or `36h` (at most 365d)"
            )
        };
        let t = text.trim();
        let (digits, unit) = t.split_at(t.len().saturating_sub(1));
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "d" => n.checked_mul(86_400),
            "h" => n.checked_mul(3600),
            _ => None,
        }
        .ok_or_else(bad)?;
        if seconds == 0 || seconds > 365 * 86_400 {
            return Err(bad());
        }
        Ok(MaxAge(seconds))
    }
}

impl Serialize for MaxAge {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MaxAge {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a merge group's change is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeQueueCompare {
    /// `merge_group.base_sha...head_sha`: what this group adds to the groups queued ahead of it.
    #[default]
    GroupBase,
    /// The target branch's head: everything since the last merge.
    TargetBranch,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MergeQueueSettings {
    pub compare: MergeQueueCompare,
}

impl MergeQueueSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct NotificationSettings {
    /// Announce failed merge groups too (by default they are the queue's business: the pull
    /// request leaves the queue, and the default branch never failed).
    pub merge_groups: bool,
}

impl NotificationSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Whether pull requests from forks are built. Such a build runs the fork's code with the
/// project's role, its secrets and its network access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForkPolicy {
    /// Only after a maintainer adds the fork label; each new commit needs the label again.
    /// The default when the stack posts commit statuses.
    #[default]
    Label,
    /// Only after someone with write access clicks "Build this commit" on the required check;
    /// each new commit needs a new click. The default when the stack reports through a GitHub
    /// App (check runs), the only mode with buttons.
    Approve,
    /// Every pull request from a fork, like any other.
    Always,
    /// None.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PullRequestSettings {
    /// Build draft pull requests too (by default they build once marked ready for review).
    pub build_drafts: bool,
    /// `None`: the reporting mode's default (`approve` with the GitHub App, `label` otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forks: Option<ForkPolicy>,
    /// The label that allows one commit of a pull request from a fork to build.
    pub fork_label: String,
}

impl Default for PullRequestSettings {
    fn default() -> Self {
        Self {
            build_drafts: false,
            forks: None,
            fork_label: "safe to build".into(),
        }
    }
}

impl PullRequestSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The fork policy in force: the one set, else the reporting mode's default.
    pub fn fork_policy(&self, app: bool) -> ForkPolicy {
        self.forks.unwrap_or(if app {
            ForkPolicy::Approve
        } else {
            ForkPolicy::Label
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            flavors_dir: "flavors".into(),
            exclude: vec!["__pycache__".into()],
            batch: BatchSettings::default(),
            build: BuildSettings::default(),
            flavors: IndexMap::new(),
            ci: VariantSettings::default(),
            release: ReleaseSettings::default(),
            pull_requests: PullRequestSettings::default(),
            merge_queue: MergeQueueSettings::default(),
            skip: SkipSettings::default(),
            notifications: NotificationSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchShape {
    #[default]
    BuildGraph,
    BuildList,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BatchSettings {
    pub shape: BatchShape,
    pub fast_fail: bool,
    /// Let the batch succeed when a build fails (per flavor in `flavors.<name>`).
    pub ignore_failure: bool,
    /// The project's maximum number of builds per batch.
    pub max_builds: u32,
    /// How flavor names become build identifiers; `exasol-ci-setup` keeps the identifiers of
    /// the tool this one replaces.
    #[serde(skip_serializing_if = "IdentifierStyle::is_standard")]
    pub identifier_style: IdentifierStyle,
    /// Which batches the webhook stops when a newer commit of the same pull request or branch
    /// starts one. Release (tag) batches are never stopped.
    #[serde(skip_serializing_if = "StopSuperseded::is_default")]
    pub stop_superseded: StopSuperseded,
}

/// Which superseded batches are stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopSuperseded {
    /// Pull requests' and every branch's but the default branch's.
    #[default]
    ExceptDefaultBranch,
    /// Pull requests' and every branch's.
    AllBranches,
    /// None.
    None,
}

impl StopSuperseded {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            shape: BatchShape::BuildGraph,
            fast_fail: false,
            ignore_failure: false,
            max_builds: 100,
            identifier_style: IdentifierStyle::Standard,
            stop_superseded: StopSuperseded::default(),
        }
    }
}

/// Build settings shared by every flavor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BuildSettings {
    pub compute_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub privileged_mode: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
    pub shell: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    pub variables: IndexMap<String, String>,
    pub parameter_store: IndexMap<String, String>,
    /// `NAME: secret-id:json-key[:version-stage[:version-id]]`, e.g. the Docker Hub secret.
    pub secrets_manager: IndexMap<String, String>,
    pub exported_variables: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_credential_helper: Option<bool>,
    pub runtime_versions: IndexMap<String, String>,
    pub phases: PhaseSet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSettings>,
    pub reports: IndexMap<String, ReportSettings>,
}

impl Default for BuildSettings {
    fn default() -> Self {
        Self {
            compute_type: "BUILD_GENERAL1_MEDIUM".into(),
            image: None,
            privileged_mode: true,
            environment_type: None,
            fleet: None,
            shell: "bash".into(),
            run_as: None,
            variables: IndexMap::new(),
            parameter_store: IndexMap::new(),
            secrets_manager: IndexMap::new(),
            exported_variables: Vec::new(),
            git_credential_helper: None,
            runtime_versions: IndexMap::new(),
            phases: PhaseSet::default(),
            artifacts: None,
            cache: None,
            reports: IndexMap::new(),
        }
    }
}

/// Commands per phase; a variant's phase replaces the shared phase of the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PhaseSet {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install: Option<PhaseSettings>,
    #[serde(alias = "pre_build", skip_serializing_if = "Option::is_none")]
    pub pre_build: Option<PhaseSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<PhaseSettings>,
    #[serde(alias = "post_build", skip_serializing_if = "Option::is_none")]
    pub post_build: Option<PhaseSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PhaseSettings {
    pub commands: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ArtifactSettings {
    pub files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discard_paths: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_directory: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_symlinks: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_prefix: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub secondary_artifacts: IndexMap<String, ArtifactSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CacheSettings {
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ReportSettings {
    pub files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discard_paths: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_format: Option<String>,
}

/// Overrides for one flavor's build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct FlavorSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub variables: IndexMap<String, String>,
    /// Flavors that must build before this one (build-graph only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depend_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_failure: Option<bool>,
}

/// What the CI variant adds to the shared build settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct VariantSettings {
    pub variables: IndexMap<String, String>,
    pub phases: PhaseSet,
    /// Replaces `build.artifacts` for this variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactSettings>,
    /// Where the tasks find a separate build buildspec (a repository path or an S3 ARN).
    /// Unset: the batch buildspec carries the phases itself and every task runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_buildspec: Option<String>,
}

/// The release variant: passes `RELEASE_ID` and `DRY_RUN` to every build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ReleaseSettings {
    pub enabled: bool,
    pub release_id: String,
    pub dry_run: bool,
    /// How `DRY_RUN` is written for each value of `dry-run`, e.g. `--dry-run` and
    /// `--no-dry-run` for a command that takes a flag.
    #[serde(skip_serializing_if = "DryRunValues::is_default")]
    pub dry_run_values: DryRunValues,
    pub variables: IndexMap<String, String>,
    pub phases: PhaseSet,
    /// Replaces `build.artifacts` for this variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_buildspec: Option<String>,
}

impl Default for ReleaseSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            release_id: String::new(),
            dry_run: true,
            dry_run_values: DryRunValues::default(),
            variables: IndexMap::new(),
            phases: PhaseSet::default(),
            artifacts: None,
            build_buildspec: None,
        }
    }
}

/// The text `DRY_RUN` gets for `release.dry-run: true` and `false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DryRunValues {
    #[serde(rename = "true")]
    pub when_true: String,
    #[serde(rename = "false")]
    pub when_false: String,
}

impl Default for DryRunValues {
    fn default() -> Self {
        Self {
            when_true: "true".into(),
            when_false: "false".into(),
        }
    }
}

impl DryRunValues {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl ReleaseSettings {
    /// The value release builds get as `DRY_RUN`.
    pub fn dry_run_text(&self) -> &str {
        if self.dry_run {
            &self.dry_run_values.when_true
        } else {
            &self.dry_run_values.when_false
        }
    }
}

/// One problem with the settings, located by key path and (for files) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for SettingsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        // Keys and names come from the user: invisible characters are shown escaped.
        let message = crate::text::shown(&self.message);
        if self.path.is_empty() {
            write!(f, "{message}")
        } else {
            write!(f, "{}: {message}", crate::text::shown(&self.path))
        }
    }
}

/// Every problem found in a settings document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SettingsError(pub Vec<SettingsProblem>);

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::write_lines(f, &self.0)
    }
}
