//! The one settings schema, read from a repository's `flavor-ci.yaml`, from CloudFormation
//! resource properties, or from the copy a deployed stack stored.
//!
//! Every scalar may arrive as a string (`"true"`, `"8"`): CloudFormation sends them that way,
//! and the YAML reader hands over source text so that `3.10` is never the float 3.1.
//! Unknown keys are rejected by name.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::codebuild::{
    COMPUTE_TYPES, ENVIRONMENT_TYPES, REPORT_FORMATS, SHELLS, on_failure_problem,
    secret_reference_problem, unknown_value, variable_name_problem,
};
use crate::flavors::{FlavorName, IdentifierStyle};
use crate::yaml::{self, Kind, Node};

/// The file `flavor-ci generate` reads from a repository's root.
pub const SETTINGS_FILE: &str = "flavor-ci.yaml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Settings {
    /// Where the flavor directories are, relative to the repository root.
    #[serde(deserialize_with = "lenient::text")]
    pub flavors_dir: String,
    /// Directory names under `flavors-dir` that are not flavors.
    #[serde(deserialize_with = "lenient::text_list")]
    pub exclude: Vec<String>,
    #[serde(deserialize_with = "lenient::mapping")]
    pub batch: BatchSettings,
    #[serde(deserialize_with = "lenient::mapping")]
    pub build: BuildSettings,
    /// Per-flavor overrides and dependencies, by flavor name.
    #[serde(deserialize_with = "lenient::mapping_of")]
    pub flavors: IndexMap<String, FlavorSettings>,
    #[serde(deserialize_with = "lenient::mapping")]
    pub ci: VariantSettings,
    #[serde(deserialize_with = "lenient::mapping")]
    pub release: ReleaseSettings,
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
    #[serde(deserialize_with = "lenient::flag")]
    pub fast_fail: bool,
    /// Let the batch succeed when a build fails (per flavor in `flavors.<name>`).
    #[serde(deserialize_with = "lenient::flag")]
    pub ignore_failure: bool,
    /// The project's maximum number of builds per batch.
    #[serde(deserialize_with = "lenient::count")]
    pub max_builds: u32,
    /// How flavor names become build identifiers; `exasol-ci-setup` keeps the identifiers of
    /// the tool this one replaces.
    #[serde(skip_serializing_if = "IdentifierStyle::is_standard")]
    pub identifier_style: IdentifierStyle,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            shape: BatchShape::BuildGraph,
            fast_fail: false,
            ignore_failure: false,
            max_builds: 100,
            identifier_style: IdentifierStyle::Standard,
        }
    }
}

/// Build settings shared by every flavor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BuildSettings {
    #[serde(deserialize_with = "lenient::text")]
    pub compute_type: String,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub image: Option<String>,
    #[serde(deserialize_with = "lenient::flag")]
    pub privileged_mode: bool,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub environment_type: Option<String>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub fleet: Option<String>,
    #[serde(deserialize_with = "lenient::text")]
    pub shell: String,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub run_as: Option<String>,
    #[serde(deserialize_with = "lenient::text_map")]
    pub variables: IndexMap<String, String>,
    #[serde(deserialize_with = "lenient::text_map")]
    pub parameter_store: IndexMap<String, String>,
    /// `NAME: secret-id:json-key[:version-stage[:version-id]]`, e.g. the Docker Hub secret.
    #[serde(deserialize_with = "lenient::text_map")]
    pub secrets_manager: IndexMap<String, String>,
    #[serde(deserialize_with = "lenient::text_list")]
    pub exported_variables: Vec<String>,
    #[serde(
        deserialize_with = "lenient::opt_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub git_credential_helper: Option<bool>,
    #[serde(deserialize_with = "lenient::text_map")]
    pub runtime_versions: IndexMap<String, String>,
    #[serde(deserialize_with = "lenient::mapping")]
    pub phases: PhaseSet,
    #[serde(
        deserialize_with = "lenient::opt_mapping",
        skip_serializing_if = "Option::is_none"
    )]
    pub artifacts: Option<ArtifactSettings>,
    #[serde(
        deserialize_with = "lenient::opt_mapping",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache: Option<CacheSettings>,
    #[serde(deserialize_with = "lenient::mapping_of")]
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
    #[serde(
        deserialize_with = "lenient::opt_mapping",
        skip_serializing_if = "Option::is_none"
    )]
    pub install: Option<PhaseSettings>,
    #[serde(
        alias = "pre_build",
        deserialize_with = "lenient::opt_mapping",
        skip_serializing_if = "Option::is_none"
    )]
    pub pre_build: Option<PhaseSettings>,
    #[serde(
        deserialize_with = "lenient::opt_mapping",
        skip_serializing_if = "Option::is_none"
    )]
    pub build: Option<PhaseSettings>,
    #[serde(
        alias = "post_build",
        deserialize_with = "lenient::opt_mapping",
        skip_serializing_if = "Option::is_none"
    )]
    pub post_build: Option<PhaseSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PhaseSettings {
    #[serde(deserialize_with = "lenient::text_list")]
    pub commands: Vec<String>,
    #[serde(
        deserialize_with = "lenient::text_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub finally: Vec<String>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub on_failure: Option<String>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub run_as: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ArtifactSettings {
    #[serde(deserialize_with = "lenient::text_list")]
    pub files: Vec<String>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<String>,
    #[serde(
        deserialize_with = "lenient::opt_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub discard_paths: Option<bool>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub base_directory: Option<String>,
    #[serde(
        deserialize_with = "lenient::text_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude_paths: Vec<String>,
    #[serde(
        deserialize_with = "lenient::opt_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_symlinks: Option<bool>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_prefix: Option<String>,
    #[serde(
        deserialize_with = "lenient::mapping_of",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub secondary_artifacts: IndexMap<String, ArtifactSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CacheSettings {
    #[serde(deserialize_with = "lenient::text_list")]
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ReportSettings {
    #[serde(deserialize_with = "lenient::text_list")]
    pub files: Vec<String>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub base_directory: Option<String>,
    #[serde(
        deserialize_with = "lenient::opt_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub discard_paths: Option<bool>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_format: Option<String>,
}

/// Overrides for one flavor's build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct FlavorSettings {
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub compute_type: Option<String>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub image: Option<String>,
    #[serde(
        deserialize_with = "lenient::opt_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub privileged_mode: Option<bool>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub environment_type: Option<String>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub fleet: Option<String>,
    #[serde(
        deserialize_with = "lenient::text_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub variables: IndexMap<String, String>,
    /// Flavors that must build before this one (build-graph only).
    #[serde(
        deserialize_with = "lenient::text_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub depend_on: Vec<String>,
    #[serde(
        deserialize_with = "lenient::opt_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub ignore_failure: Option<bool>,
}

/// What the CI variant adds to the shared build settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct VariantSettings {
    #[serde(deserialize_with = "lenient::text_map")]
    pub variables: IndexMap<String, String>,
    #[serde(deserialize_with = "lenient::mapping")]
    pub phases: PhaseSet,
    /// Replaces `build.artifacts` for this variant.
    #[serde(
        deserialize_with = "lenient::opt_mapping",
        skip_serializing_if = "Option::is_none"
    )]
    pub artifacts: Option<ArtifactSettings>,
    /// Where the tasks find a separate build buildspec (a repository path or an S3 ARN).
    /// Unset: the batch buildspec carries the phases itself and every task runs it.
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub build_buildspec: Option<String>,
}

/// The release variant: passes `RELEASE_ID` and `DRY_RUN` to every build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ReleaseSettings {
    #[serde(deserialize_with = "lenient::flag")]
    pub enabled: bool,
    #[serde(deserialize_with = "lenient::text")]
    pub release_id: String,
    #[serde(deserialize_with = "lenient::flag")]
    pub dry_run: bool,
    /// How `DRY_RUN` is written for each value of `dry-run`, e.g. `--dry-run` and
    /// `--no-dry-run` for a command that takes a flag.
    #[serde(
        deserialize_with = "lenient::mapping",
        skip_serializing_if = "DryRunValues::is_default"
    )]
    pub dry_run_values: DryRunValues,
    #[serde(deserialize_with = "lenient::text_map")]
    pub variables: IndexMap<String, String>,
    #[serde(deserialize_with = "lenient::mapping")]
    pub phases: PhaseSet,
    /// Replaces `build.artifacts` for this variant.
    #[serde(
        deserialize_with = "lenient::opt_mapping",
        skip_serializing_if = "Option::is_none"
    )]
    pub artifacts: Option<ArtifactSettings>,
    #[serde(
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
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
    #[serde(rename = "true", deserialize_with = "lenient::text")]
    pub when_true: String,
    #[serde(rename = "false", deserialize_with = "lenient::text")]
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

impl Settings {
    /// Reads settings from YAML text (a repository's `flavor-ci.yaml`).
    pub fn from_yaml(text: &str) -> Result<Self, SettingsError> {
        let located = |e: yaml::ReadError| {
            SettingsError(vec![SettingsProblem {
                path: String::new(),
                line: Some(e.line),
                message: e.message,
            }])
        };
        // An empty file, or one of comments only, is the defaults, as `---` and `{}` are.
        let Some(root) = yaml::read_optional(text).map_err(located)? else {
            return Ok(Self::default());
        };
        let json = root.to_json().map_err(located)?;
        Self::from_json(json).map_err(|SettingsError(problems)| {
            SettingsError(
                problems
                    .into_iter()
                    .map(|mut p| {
                        p.line = line_of(&root, &p.path);
                        p
                    })
                    .collect(),
            )
        })
    }

    /// Reads settings from JSON (CloudFormation properties, or the copy a stack stored).
    pub fn from_json(value: serde_json::Value) -> Result<Self, SettingsError> {
        let value = if value.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            value
        };
        let mut track = serde_path_to_error::Track::new();
        let read: Result<Settings, _> =
            lenient::mapping(serde_path_to_error::Deserializer::new(value, &mut track));
        let settings = read.map_err(|e| {
            let path = track.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let message = friendly(e.to_string());
            SettingsError(vec![SettingsProblem {
                message: if path.is_empty() {
                    format!("the settings {message}")
                } else {
                    message
                },
                path,
                line: None,
            }])
        })?;
        let problems = settings.check();
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError(problems))
        }
    }

    /// Canonical JSON of these settings; reading it back gives equal settings.
    pub fn to_canonical_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Checks values against CodeBuild's documented ranges. Flavor names are checked here;
    /// whether named flavors exist is checked when generating for a flavor set.
    pub fn check(&self) -> Vec<SettingsProblem> {
        let mut out = Vec::new();
        let mut bad = |path: String, message: String| {
            out.push(SettingsProblem {
                path,
                line: None,
                message,
            })
        };
        let one_of = unknown_value;
        if self.flavors_dir.trim().is_empty() {
            bad(
                "flavors-dir".into(),
                "must name a directory, e.g. `flavors`".into(),
            );
        } else if let Some(problem) = repository_path_problem(&self.flavors_dir) {
            bad("flavors-dir".into(), problem);
        }
        if self.batch.max_builds == 0 {
            bad("batch.max-builds".into(), "must be at least 1".into());
        }
        let b = &self.build;
        if let Some(m) = one_of(&b.compute_type, COMPUTE_TYPES, "compute type") {
            bad("build.compute-type".into(), m);
        }
        if let Some(m) = b
            .environment_type
            .as_deref()
            .and_then(|t| one_of(t, ENVIRONMENT_TYPES, "environment type"))
        {
            bad("build.environment-type".into(), m);
        }
        if let Some(m) = one_of(&b.shell, SHELLS, "shell") {
            bad("build.shell".into(), m);
        }
        if b.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
            bad(
                "build.image".into(),
                "is empty; name an image or leave the key out to use the project's".into(),
            );
        }
        let check_vars =
            |path: &str, vars: &IndexMap<String, String>, bad: &mut dyn FnMut(String, String)| {
                for name in vars.keys() {
                    if let Some(problem) = variable_name_problem(name) {
                        let at = if name.is_empty() {
                            path.to_owned()
                        } else {
                            format!("{path}.{name}")
                        };
                        bad(at, problem.into());
                    }
                }
            };
        check_vars("build.variables", &b.variables, &mut bad);
        check_vars("build.parameter-store", &b.parameter_store, &mut bad);
        check_vars("build.secrets-manager", &b.secrets_manager, &mut bad);
        check_vars("ci.variables", &self.ci.variables, &mut bad);
        check_vars("release.variables", &self.release.variables, &mut bad);
        for (name, reference) in &b.secrets_manager {
            if let Some(problem) = secret_reference_problem(reference) {
                bad(format!("build.secrets-manager.{name}"), problem.into());
            }
        }
        for (phase_path, set) in [
            ("build.phases", &b.phases),
            ("ci.phases", &self.ci.phases),
            ("release.phases", &self.release.phases),
        ] {
            for (name, phase) in [
                ("install", &set.install),
                ("pre-build", &set.pre_build),
                ("build", &set.build),
                ("post-build", &set.post_build),
            ] {
                let Some(phase) = phase else { continue };
                let path = format!("{phase_path}.{name}");
                if phase.commands.is_empty() {
                    bad(
                        format!("{path}.commands"),
                        "a phase needs at least one command; add one or remove the phase".into(),
                    );
                }
                if let Some(problem) = phase.on_failure.as_deref().and_then(on_failure_problem) {
                    bad(format!("{path}.on-failure"), problem);
                }
            }
        }
        for (name, report) in &b.reports {
            if report.files.is_empty() {
                bad(
                    format!("build.reports.{name}.files"),
                    "list the report files".into(),
                );
            }
            if let Some(m) = report
                .file_format
                .as_deref()
                .and_then(|f| one_of(f, REPORT_FORMATS, "report format"))
            {
                bad(format!("build.reports.{name}.file-format"), m);
            }
        }
        for (path, artifacts) in [
            ("build.artifacts", &b.artifacts),
            ("ci.artifacts", &self.ci.artifacts),
            ("release.artifacts", &self.release.artifacts),
        ] {
            if let Some(a) = artifacts
                && a.files.is_empty()
                && a.secondary_artifacts.is_empty()
            {
                bad(format!("{path}.files"), "list what to upload".into());
            }
        }
        for (name, flavor) in &self.flavors {
            let path = format!("flavors.{name}");
            if let Err(e) = FlavorName::new(name) {
                bad(path.clone(), e.to_string());
            }
            if let Some(m) = flavor
                .compute_type
                .as_deref()
                .and_then(|t| one_of(t, COMPUTE_TYPES, "compute type"))
            {
                bad(format!("{path}.compute-type"), m);
            }
            if let Some(m) = flavor
                .environment_type
                .as_deref()
                .and_then(|t| one_of(t, ENVIRONMENT_TYPES, "environment type"))
            {
                bad(format!("{path}.environment-type"), m);
            }
            check_vars(&format!("{path}.variables"), &flavor.variables, &mut bad);
            if !flavor.depend_on.is_empty() && self.batch.shape == BatchShape::BuildList {
                bad(format!("{path}.depend-on"), "dependencies need `batch.shape: build-graph`; change the shape or remove depend-on".into());
            }
        }
        out
    }
}

/// Why `path` is not a path inside the repository, relative to its root. Builds find the
/// flavors by this path in their clone of the repository, so it cannot leave it.
pub fn repository_path_problem(path: &str) -> Option<String> {
    let absolute = path.starts_with(['/', '\\'])
        || path.as_bytes().get(1) == Some(&b':') && path.as_bytes()[0].is_ascii_alphabetic();
    if absolute {
        return Some(format!(
            "`{path}` is absolute; write the directory relative to the repository's root, e.g. `flavors`"
        ));
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return Some(format!(
            "`{path}` leaves the repository through `..`; write a directory inside it, relative to its root"
        ));
    }
    None
}

/// Rewords serde's messages where ours say more.
fn friendly(message: String) -> String {
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return format!("unknown key {rest}");
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    if let Some((found, _)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.split_once(", expected a mapping"))
    {
        let found = match found {
            "sequence" => "a list",
            "map" => "a mapping",
            other => other,
        };
        return format!("must be a mapping (`key: value` entries), not {found}");
    }
    message
}

/// The line of the node at a serde path (`batch.max-builds`, `flavors.a.depend-on[0]`).
fn line_of(root: &Node, path: &str) -> Option<usize> {
    let mut node = root;
    let mut line = root.line;
    let mut rest = path;
    while !rest.is_empty() {
        let (segment, tail) = match rest.find(['.', '[']) {
            Some(0) if rest.starts_with('[') => {
                let end = rest.find(']')?;
                let i: usize = rest[1..end].parse().ok()?;
                let Kind::Seq(items) = &node.kind else {
                    return Some(line);
                };
                node = items.get(i)?;
                line = node.line;
                rest = rest[end + 1..].trim_start_matches('.');
                continue;
            }
            Some(i) => (&rest[..i], rest[i..].trim_start_matches('.')),
            None => (rest, ""),
        };
        let Kind::Map(entries) = &node.kind else {
            return Some(line);
        };
        let Some((key, value)) = entries.iter().find(|(k, _)| k.text() == Some(segment)) else {
            return Some(line);
        };
        line = key.line;
        node = value;
        rest = tail;
    }
    Some(line)
}

/// Deserializers that accept scalars as CloudFormation sends them: everything as a string.
mod lenient {
    use std::fmt;

    use indexmap::IndexMap;
    use serde::Deserialize;
    use std::marker::PhantomData;

    use serde::de::value::MapAccessDeserializer;
    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

    /// A scalar of any JSON type, kept as text.
    struct Text(String);

    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Text;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a single value (text, number or boolean)")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                    Ok(Text(v.to_owned()))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                    Ok(Text(v))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
            }
            d.deserialize_any(V)
        }
    }

    pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Option::<Text>::deserialize(d)?
            .map(|t| t.0)
            .ok_or_else(|| de::Error::custom("needs a value; remove the key to use the default"))
    }

    pub(super) fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
    }

    fn parse_flag<E: de::Error>(text: &str) -> Result<bool, E> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(true),
            "false" | "no" => Ok(false),
            _ => Err(E::custom(format!("expected true or false, found `{text}`"))),
        }
    }

    pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        parse_flag(&text(d)?)
    }

    pub(super) fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        opt_text(d)?.map(|t| parse_flag(&t)).transpose()
    }

    pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let t = text(d)?;
        t.trim()
            .parse::<u32>()
            .map_err(|_| de::Error::custom(format!("expected a whole number, found `{t}`")))
    }

    /// A value that must be written as a mapping (or left empty). Serde's derived readers
    /// also take a list and read it field by field, in order, which would let
    /// `batch: [build-list, true]` set fields without naming them, past the unknown-key check.
    struct Mapping<T>(Option<T>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Mapping<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
                type Value = Mapping<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a mapping (`key: value` entries)")
                }
                fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                    Ok(Mapping(None))
                }
                fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                    Ok(Mapping(None))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                    T::deserialize(MapAccessDeserializer::new(map)).map(|t| Mapping(Some(t)))
                }
            }
            d.deserialize_any(V(PhantomData))
        }
    }

    /// A section (`batch`, `build`, …): a mapping; empty means the defaults.
    pub(super) fn mapping<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Mapping::<T>::deserialize(d)?.0.unwrap_or_default())
    }

    /// An optional section (`artifacts`, a phase): a mapping; empty means unset.
    pub(super) fn opt_mapping<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Ok(Mapping::<T>::deserialize(d)?.0)
    }

    /// Named sections (`flavors.<name>`, `reports.<group>`): a mapping of mappings; an empty
    /// entry means the defaults.
    pub(super) fn mapping_of<'de, D, T>(d: D) -> Result<IndexMap<String, T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        let entries: IndexMap<String, Mapping<T>> = mapping(d)?;
        Ok(entries
            .into_iter()
            .map(|(k, v)| (k, v.0.unwrap_or_default()))
            .collect())
    }

    /// A list of values; a single value counts as a list of one; null as an empty list.
    pub(super) fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of values")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(vec![v.to_owned()])
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(vec![v.to_string()])
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(vec![v.to_string()])
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(vec![v.to_string()])
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(vec![v.to_string()])
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(Text(t)) = seq.next_element()? {
                    out.push(t);
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }

    /// A mapping of names to values; null counts as empty.
    pub(super) fn text_map<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<IndexMap<String, String>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IndexMap<String, String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to values")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(IndexMap::new())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(IndexMap::new())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<String>()? {
                    let value: Option<Text> = map.next_value()?;
                    let Some(Text(value)) = value else {
                        return Err(de::Error::custom(format!(
                            "`{key}` has no value; write \"\" for an empty one"
                        )));
                    };
                    out.insert(key, value);
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_empty_document_gives_the_defaults() {
        assert_eq!(Settings::from_yaml("{}\n").unwrap(), Settings::default());
        for empty in [
            "",
            "\n\n",
            "# only a comment\n  # and another\n",
            "---\n",
            "---\n...\n",
        ] {
            assert_eq!(
                Settings::from_yaml(empty).unwrap(),
                Settings::default(),
                "{empty:?}"
            );
        }
        assert_eq!(
            Settings::from_json(json!(null)).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn cloudformation_strings_are_accepted_for_numbers_and_booleans() {
        let s = Settings::from_json(json!({
            "batch": {"max-builds": "8", "fast-fail": "true"},
            "build": {"privileged-mode": "false"},
            "release": {"dry-run": "False"}
        }))
        .unwrap();
        assert_eq!(
            (
                s.batch.max_builds,
                s.batch.fast_fail,
                s.build.privileged_mode,
                s.release.dry_run
            ),
            (8, true, false, false)
        );
    }

    #[test]
    fn yaml_scalars_keep_their_source_text() {
        let s = Settings::from_yaml("build:\n  runtime-versions:\n    python: 3.10\n  variables:\n    HEX: 0x1F\n    ON: on\n").unwrap();
        assert_eq!(s.build.runtime_versions["python"], "3.10");
        assert_eq!(s.build.variables["HEX"], "0x1F");
        assert_eq!(s.build.variables["ON"], "on");
    }

    #[test]
    fn unknown_keys_are_rejected_by_name_with_their_line() {
        let err = Settings::from_yaml("batch:\n  fast-fail: true\n  compute-typ: X\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "line 3: batch.compute-typ: unknown key `compute-typ`, expected one of `shape`"
            ),
            "{text}"
        );
    }

    #[test]
    fn bad_values_name_the_key_and_what_was_expected() {
        let cases = [
            (
                json!({"batch": {"max-builds": "many"}}),
                "batch.max-builds: expected a whole number, found `many`",
            ),
            (
                json!({"batch": {"max-builds": "0"}}),
                "batch.max-builds: must be at least 1",
            ),
            (
                json!({"batch": {"fast-fail": "perhaps"}}),
                "batch.fast-fail: expected true or false",
            ),
            (
                json!({"batch": {"shape": "build-tree"}}),
                "batch.shape: unknown value `build-tree`",
            ),
            (
                json!({"build": {"compute-type": "HUGE"}}),
                "build.compute-type: unknown compute type `HUGE`",
            ),
            (
                json!({"build": {"environment-type": "LINUX"}}),
                "build.environment-type: unknown environment type",
            ),
            (
                json!({"build": {"shell": "zsh"}}),
                "build.shell: unknown shell `zsh`",
            ),
            (
                json!({"build": {"variables": {"CODEBUILD_X": "1"}}}),
                "build.variables.CODEBUILD_X: names starting with CODEBUILD_ are reserved",
            ),
            (
                json!({"build": {"variables": {"A": null}}}),
                "build.variables: `A` has no value",
            ),
            (
                json!({"build": {"secrets-manager": {"U": ":User"}}}),
                "build.secrets-manager.U: expected secret-id:json-key",
            ),
            (
                json!({"build": {"phases": {"build": {"commands": []}}}}),
                "build.phases.build.commands: a phase needs at least one command",
            ),
            (
                json!({"ci": {"phases": {"build": {"commands": ["x"], "on-failure": "SKIP"}}}}),
                "ci.phases.build.on-failure: unknown on-failure `SKIP`",
            ),
            (
                json!({"build": {"reports": {"r": {"files": ["a"], "file-format": "XML"}}}}),
                "build.reports.r.file-format: unknown report format",
            ),
            (
                json!({"build": {"artifacts": {"name": "x"}}}),
                "build.artifacts.files: list what to upload",
            ),
            (
                json!({"flavors": {"a/b": {}}}),
                "flavors.a/b: flavor name \"a/b\" is invalid",
            ),
            (
                json!({"flavors": {"a": {"compute-type": "BIG"}}}),
                "flavors.a.compute-type: unknown compute type `BIG`",
            ),
            (
                json!({"batch": {"shape": "build-list"}, "flavors": {"a": {"depend-on": ["b"]}}}),
                "flavors.a.depend-on: dependencies need `batch.shape: build-graph`",
            ),
            (
                json!({"flavors-dir": ""}),
                "flavors-dir: must name a directory",
            ),
            (
                json!({"flavors-dir": "/srv/flavors"}),
                "flavors-dir: `/srv/flavors` is absolute",
            ),
            (
                json!({"flavors-dir": "C:\\flavors"}),
                "flavors-dir: `C:\\flavors` is absolute",
            ),
            (
                json!({"flavors-dir": "vendor/../../flavors"}),
                "flavors-dir: `vendor/../../flavors` leaves the repository through `..`",
            ),
            (
                json!({"build": {"image": null, "compute-type": null}}),
                "build.compute-type: needs a value",
            ),
            (
                json!({"release": {"enabled": ["x"]}}),
                "release.enabled: invalid type: sequence",
            ),
        ];
        for (input, expected) in cases {
            let err = Settings::from_json(input.clone()).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{input}\nexpected {expected:?}\ngot {err}"
            );
        }
    }

    #[test]
    fn sections_must_be_mappings_never_lists_read_field_by_field() {
        let cases = [
            (
                json!(["flavors", ["x"]]),
                "the settings must be a mapping (`key: value` entries), not a list",
            ),
            (
                json!("flavors-dir: x"),
                "the settings must be a mapping (`key: value` entries), not string",
            ),
            (
                json!({"batch": ["build-list", true, true, 7]}),
                "batch: must be a mapping (`key: value` entries), not a list",
            ),
            (json!({"build": ["MEDIUM"]}), "build: must be a mapping"),
            (
                json!({"build": {"phases": [["x"]]}}),
                "build.phases: must be a mapping",
            ),
            (
                json!({"build": {"phases": {"build": [["make"]]}}}),
                "build.phases.build: must be a mapping",
            ),
            (
                json!({"build": {"artifacts": [["a"]]}}),
                "build.artifacts: must be a mapping",
            ),
            (
                json!({"build": {"cache": [["a"]]}}),
                "build.cache: must be a mapping",
            ),
            (
                json!({"build": {"reports": {"r": [["a"]]}}}),
                "build.reports.r: must be a mapping",
            ),
            (
                json!({"build": {"artifacts": {"files": ["a"], "secondary-artifacts": {"s": [["b"]]}}}}),
                "build.artifacts.secondary-artifacts.s: must be a mapping",
            ),
            (
                json!({"flavors": {"a": ["BUILD_GENERAL1_LARGE"]}}),
                "flavors.a: must be a mapping",
            ),
            (json!({"flavors": [["a"]]}), "flavors: must be a mapping"),
            (json!({"ci": [{}]}), "ci: must be a mapping"),
            (
                json!({"release": [true, "v1"]}),
                "release: must be a mapping",
            ),
        ];
        for (input, expected) in cases {
            let err = Settings::from_json(input.clone()).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{input}\nexpected {expected:?}\ngot {err}"
            );
        }
        let err = Settings::from_yaml("- flavors\n- [x]\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "line 1: the settings must be a mapping (`key: value` entries), not a list"
        );
        let err = Settings::from_yaml("batch: [build-list, true, true, 7]\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 1: batch: must be a mapping"), "{err}");
        // An entry left empty is the defaults, as a section left empty is.
        let s = Settings::from_yaml("flavors:\n  a:\nbuild:\n").unwrap();
        assert_eq!(s.flavors["a"], FlavorSettings::default());
        assert_eq!(s.build, BuildSettings::default());
    }

    #[test]
    fn canonical_json_round_trips() {
        let s = Settings::from_yaml(
            "build:\n  image: aws/codebuild/standard:7.0\n  secrets-manager:\n    DOCKER_USER: Dockerhub:User\n  phases:\n    pre_build:\n      commands: [docker login]\nflavors:\n  a:\n    depend-on: [b]\nrelease:\n  dry-run: false\n",
        )
        .unwrap();
        let json = s.to_canonical_json();
        let back = Settings::from_json(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.to_canonical_json(), json);
    }
}
