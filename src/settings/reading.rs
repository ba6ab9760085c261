//! Reading settings from YAML or JSON, and checking them against CodeBuild's vocabulary.

use indexmap::IndexMap;

use crate::codebuild::{
    COMPUTE_TYPES, ENVIRONMENT_TYPES, REPORT_FORMATS, SHELLS, on_failure_problem,
    secret_reference_problem, unknown_value, variable_name_problem,
};
use crate::flavors::FlavorName;
use crate::yaml::{self, Kind, Node};

use super::*;

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
        let read = Settings::deserialize(serde_path_to_error::Deserializer::new(
            lenient::Lenient::root(value),
            &mut track,
        ));
        let settings = read.map_err(|e| {
            let path = track.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let message = friendly(e.to_string());
            let path = lenient::problem_path(path, &message);
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
        if self.flavors_dir.trim().is_empty() {
            bad(
                "flavors-dir".into(),
                "must name a directory, e.g. `flavors`".into(),
            );
        } else if let Some(problem) = repository_path_problem(&self.flavors_dir) {
            bad("flavors-dir".into(), problem);
        }
        let label = self.pull_requests.fork_label.trim();
        if label.is_empty() || label.chars().count() > 50 {
            bad(
                "pull-requests.fork-label".into(),
                "must name a GitHub label (1 to 50 characters), e.g. `safe to build`".into(),
            );
        }
        if self.batch.max_builds == 0 {
            bad("batch.max-builds".into(), "must be at least 1".into());
        }
        self.check_build(&mut bad);
        self.check_phases_and_outputs(&mut bad);
        self.check_flavors(&mut bad);
        out
    }

    /// The `build` section: compute, environment, shell, image and variables.
    fn check_build(&self, bad: &mut dyn FnMut(String, String)) {
        let one_of = unknown_value;
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
        check_variables("build.variables", &b.variables, bad);
        check_variables("build.parameter-store", &b.parameter_store, bad);
        check_variables("build.secrets-manager", &b.secrets_manager, bad);
        check_variables("ci.variables", &self.ci.variables, bad);
        check_variables("release.variables", &self.release.variables, bad);
        for (name, reference) in &b.secrets_manager {
            if let Some(problem) = secret_reference_problem(reference) {
                bad(format!("build.secrets-manager.{name}"), problem.into());
            }
        }
    }

    /// Every phase (build, CI, release), report and artifact section.
    fn check_phases_and_outputs(&self, bad: &mut dyn FnMut(String, String)) {
        let one_of = unknown_value;
        let b = &self.build;
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
    }

    /// Each flavor's overrides.
    fn check_flavors(&self, bad: &mut dyn FnMut(String, String)) {
        let one_of = unknown_value;
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
            check_variables(&format!("{path}.variables"), &flavor.variables, bad);
            if !flavor.depend_on.is_empty() && self.batch.shape == BatchShape::BuildList {
                bad(format!("{path}.depend-on"), "dependencies need `batch.shape: build-graph`; change the shape or remove depend-on".into());
            }
        }
    }
}

/// Reports every variable of `vars` (at `path`) whose name CodeBuild refuses.
fn check_variables(
    path: &str,
    vars: &IndexMap<String, String>,
    bad: &mut dyn FnMut(String, String),
) {
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
    let mut line = root.line as usize;
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
                line = node.line as usize;
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
        line = key.line as usize;
        node = value;
        rest = tail;
    }
    Some(line)
}
