//! Settings + flavors → the batch buildspec and the build buildspec it references, for the CI
//! and the release variant, each validated before it is returned.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::FastMap;
use crate::buildspec::{
    Artifacts, Batch, BatchBuilds, BatchTask, Buildspec, Cache, Env, Phase, Phases, Report,
    TaskEnv, Text,
};
use crate::flavors::{Flavor, FlavorSet};
use crate::settings::{
    ArtifactSettings, BatchShape, FlavorSettings, PhaseSet, PhaseSettings, Settings, SettingsError,
    SettingsProblem,
};
use crate::text::{self, shown};
use crate::validate::{self, Limits, Problem, Severity};
use crate::yaml;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    Ci,
    Release,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Ci => "ci",
            Variant::Release => "release",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Holds `batch:`; the document a project or `StartBuildBatch` points at.
    Batch,
    /// Holds the phases the batch tasks run, when they live in a separate document.
    Build,
}

/// One generated buildspec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub variant: Variant,
    pub role: Role,
    /// A stable file name, e.g. `ci-batch-buildspec.yaml`.
    pub file_name: String,
    pub yaml: String,
}

impl Document {
    /// Hex SHA-256 of the YAML bytes.
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(self.yaml.as_bytes()))
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub settings: &'a Settings,
    pub flavors: &'a FlavorSet,
    /// Build only these flavors (names); `None` builds all.
    pub only: Option<&'a [String]>,
    /// Overrides `release.release-id` (a webhook passes the pushed tag).
    pub release_id: Option<&'a str>,
}

/// The generated documents: build buildspecs before the batch buildspecs that reference them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub documents: Vec<Document>,
    /// The flavors the batch builds, sorted.
    pub selected: Vec<String>,
    /// Findings that do not stop generation (e.g. an override for a flavor that is gone).
    pub warnings: Vec<String>,
    /// Variants whose builds got the placeholder phase (they only list the flavor's
    /// directory) because the settings give them no commands.
    pub without_commands: Vec<Variant>,
}

impl Output {
    /// The document of a variant and role.
    pub fn document(&self, variant: Variant, role: Role) -> Option<&Document> {
        self.documents
            .iter()
            .find(|d| d.variant == variant && d.role == role)
    }

    /// A plain statement that some builds do nothing yet, with what to write.
    pub fn without_commands_notice(&self) -> Option<String> {
        let first = self.without_commands.first()?;
        let names: Vec<&str> = self.without_commands.iter().map(|v| v.name()).collect();
        Some(format!(
            "the {} builds do nothing yet: no build commands are set, so each only lists its flavor's directory. Write the commands that build a flavor under `build.phases` (or `{}.phases`) in flavor-ci.yaml; see docs/settings.md",
            names.join(" and "),
            first.name(),
        ))
    }

    /// Hex SHA-256 over every document's name and bytes: changes whenever any output changes.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for d in &self.documents {
            h.update(d.file_name.as_bytes());
            h.update([0]);
            h.update((d.yaml.len() as u64).to_be_bytes());
            h.update(d.yaml.as_bytes());
        }
        hex(&h.finalize())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error("{0}")]
    Selection(String),
    #[error("generated {file} is not a valid buildspec:\n{}", list(problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Batch => "batch",
            Role::Build => "build",
        })
    }
}

/// Flavors to rebuild when `changed` changed: those flavors plus every flavor that depends on
/// them, directly or through others (per `flavors.<name>.depend-on`). Unknown names are kept
/// out. Sorted.
pub fn with_dependents(
    settings: &Settings,
    flavors: &FlavorSet,
    changed: &[String],
) -> Vec<String> {
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, over) in &settings.flavors {
        for dep in &over.depend_on {
            dependents
                .entry(dep.as_str())
                .or_default()
                .push(name.as_str());
        }
    }
    let mut out: BTreeSet<String> = BTreeSet::new();
    let mut queue: Vec<&str> = changed
        .iter()
        .map(String::as_str)
        .filter(|n| flavors.get(n).is_some())
        .collect();
    while let Some(name) = queue.pop() {
        if out.insert(name.to_owned()) {
            for &d in dependents.get(name).map(Vec::as_slice).unwrap_or(&[]) {
                if flavors.get(d).is_some() {
                    queue.push(d);
                }
            }
        }
    }
    out.into_iter().collect()
}

fn settings_error(path: String, message: String) -> SettingsProblem {
    SettingsProblem {
        path,
        line: None,
        message,
    }
}

/// Checks what settings say about flavors against the actual flavor set.
fn check_against_flavors(
    settings: &Settings,
    flavors: &FlavorSet,
) -> Result<Vec<String>, GenerateError> {
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    let mut edges: FastMap<&str, Vec<&str>> = FastMap::default();
    for (name, over) in &settings.flavors {
        if flavors.get(name).is_none() {
            let name = shown(name);
            warnings.push(format!(
                "flavors.{name}: there is no flavor `{name}`; its settings are unused (remove them)"
            ));
            continue;
        }
        for (i, dep) in over.depend_on.iter().enumerate() {
            if flavors.get(dep).is_none() {
                problems.push(settings_error(
                    format!("flavors.{name}.depend-on[{i}]"),
                    format!("there is no flavor `{dep}`; name an existing flavor"),
                ));
            } else {
                edges.entry(name.as_str()).or_default().push(dep.as_str());
            }
        }
    }
    let order: Vec<&str> = settings.flavors.keys().map(String::as_str).collect();
    if let Some(cycle) = validate::find_cycle(&order, &edges) {
        problems.push(settings_error(
            format!("flavors.{}.depend-on", cycle[0]),
            format!(
                "dependency cycle: {}; remove one of these depend-on entries",
                cycle.join(" → ")
            ),
        ));
    }
    if problems.is_empty() {
        Ok(warnings)
    } else {
        Err(SettingsError(problems).into())
    }
}

/// Up to this many flavors, an unknown name's error lists them all.
const LIST_ALL_UP_TO: usize = 20;

fn select<'f>(
    flavors: &'f FlavorSet,
    only: Option<&[String]>,
) -> Result<Vec<&'f Flavor>, GenerateError> {
    let Some(only) = only else {
        return Ok(flavors.iter().collect());
    };
    let unknown: Vec<&str> = only
        .iter()
        .map(String::as_str)
        .filter(|n| flavors.get(n).is_none())
        .collect();
    if !unknown.is_empty() {
        let names = unknown
            .iter()
            .map(|n| shown(n).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        // A short list is shown whole; a long one gives the closest names and where to look.
        if flavors.len() <= LIST_ALL_UP_TO {
            return Err(GenerateError::Selection(format!(
                "no such flavor(s): {names}; choose from: {}",
                flavors.names().collect::<Vec<_>>().join(", ")
            )));
        }
        let hints: Vec<String> = unknown
            .iter()
            .filter_map(|n| {
                let near = text::closest(n, flavors.names(), 3);
                (!near.is_empty())
                    .then(|| format!("for `{}` did you mean {}?", shown(n), near.join(", ")))
            })
            .collect();
        let mut message = format!("no such flavor(s): {names}");
        if !hints.is_empty() {
            message.push_str("; ");
            message.push_str(&hints.join("; "));
        }
        message.push_str(&format!(
            "; `flavor-ci flavors` lists all {}",
            flavors.len()
        ));
        return Err(GenerateError::Selection(message));
    }
    if only.is_empty() {
        return Err(GenerateError::Selection(
            "the selection is empty: name at least one flavor".into(),
        ));
    }
    let wanted: BTreeSet<&str> = only.iter().map(String::as_str).collect();
    Ok(flavors
        .iter()
        .filter(|f| wanted.contains(f.name.as_str()))
        .collect())
}

/// Generates every document the settings ask for.
pub fn generate(request: Request<'_>) -> Result<Output, GenerateError> {
    let settings = request.settings;
    // Identifiers follow the settings whichever style the caller listed the flavors in.
    let restyled;
    let flavors = if request.flavors.style() == settings.batch.identifier_style {
        request.flavors
    } else {
        restyled = request
            .flavors
            .in_style(settings.batch.identifier_style)
            .map_err(|e| GenerateError::Selection(e.to_string()))?;
        &restyled
    };
    let mut warnings = check_against_flavors(settings, flavors)?;
    let selected = select(flavors, request.only)?;
    let max = settings.batch.max_builds;
    if selected.len() > max as usize {
        return Err(SettingsError(vec![settings_error(
            "batch.max-builds".into(),
            format!(
                "{} flavors would build but the project allows at most {max} builds per batch; raise batch.max-builds (and the project's maximum builds per batch) or build fewer flavors",
                selected.len()
            ),
        )])
        .into());
    }
    let mut variants = vec![Variant::Ci];
    if settings.release.enabled {
        variants.push(Variant::Release);
    }
    let without_commands: Vec<Variant> = variants
        .iter()
        .copied()
        .filter(|v| !has_phases(settings, *v))
        .collect();
    let mut documents = Vec::with_capacity(4);
    // The variants share most strings (flavor names, identifiers): each rendering is read
    // back once.
    let mut read_back = yaml::ReadBack::default();
    for variant in variants {
        let (docs, more) = render_variant(
            settings,
            variant,
            &selected,
            request.release_id,
            &mut read_back,
        )?;
        documents.extend(docs);
        warnings.extend(more);
    }
    Ok(Output {
        documents,
        selected: selected
            .iter()
            .map(|f| f.name.as_str().to_owned())
            .collect(),
        warnings,
        without_commands,
    })
}

/// What a variant's build of each flavor is made of, as text: the document without its batch
/// tasks (phases, variables, artifacts: the same for every flavor), and each flavor's batch
/// task (image, compute, environment), rendered as if every flavor were building, so a task's
/// text does not depend on which others build with it. The input keys hash these.
pub fn task_texts(
    settings: &Settings,
    flavors: &FlavorSet,
    variant: Variant,
    release_id: Option<&str>,
) -> (String, Vec<(String, String)>) {
    let all: Vec<&Flavor> = flavors.iter().collect();
    let mut shared = String::new();
    let mut tasks = Vec::with_capacity(all.len());
    for (_, spec) in variant_documents(settings, variant, &all, release_id) {
        if let Some(batch) = &spec.batch
            && let BatchBuilds::Graph(list) | BatchBuilds::List(list) = &batch.builds
        {
            for (flavor, task) in all.iter().zip(list) {
                tasks.push((
                    flavor.name.as_str().to_owned(),
                    yaml::emit(&task.to_value()),
                ));
            }
        }
        let without_batch = Buildspec {
            batch: None,
            ..spec
        };
        shared.push_str(&without_batch.to_yaml());
    }
    (shared, tasks)
}

/// A variant's documents and the warnings validating them gave.
type Rendered = (Vec<Document>, Vec<String>);

/// Writes and validates one variant's documents.
fn render_variant(
    settings: &Settings,
    variant: Variant,
    selected: &[&Flavor],
    release_id: Option<&str>,
    read_back: &mut yaml::ReadBack,
) -> Result<Rendered, GenerateError> {
    let limits = Limits {
        max_builds: Some(settings.batch.max_builds),
    };
    let mut documents = Vec::with_capacity(2);
    let mut warnings = Vec::new();
    for (role, spec) in variant_documents(settings, variant, selected, release_id) {
        let file_name = format!("{}-{role}-buildspec.yaml", variant.name());
        // The exact text is what gets validated: `emit_read` gives the tree that text reads
        // as, its renderings read back by the YAML reader.
        let value = spec.to_value();
        let (yaml, problems) = match yaml::emit_read_with(&value, read_back) {
            Ok((yaml, tree)) => {
                let problems = validate::validate_document(&tree, yaml.chars().count(), limits);
                (yaml, problems)
            }
            Err(e) => (String::new(), vec![validate::not_yaml(&e)]),
        };
        if validate::has_errors(&problems) {
            return Err(GenerateError::Invalid {
                file: file_name,
                problems,
            });
        }
        warnings.extend(
            problems
                .iter()
                .filter(|p| p.severity == Severity::Warning)
                .map(|p| format!("{file_name}: {}", p.message)),
        );
        documents.push(Document {
            variant,
            role,
            file_name,
            yaml,
        });
    }
    Ok((documents, warnings))
}

/// Whether a variant has commands of its own or shared ones (otherwise it gets a placeholder
/// build phase).
fn has_phases(settings: &Settings, variant: Variant) -> bool {
    let own = match variant {
        Variant::Ci => &settings.ci.phases,
        Variant::Release => &settings.release.phases,
    };
    [own, &settings.build.phases].iter().any(|p| {
        p.install.is_some() || p.pre_build.is_some() || p.build.is_some() || p.post_build.is_some()
    })
}

/// The (role, document) pairs of one variant, build document first.
fn variant_documents<'a>(
    settings: &'a Settings,
    variant: Variant,
    selected: &[&'a Flavor],
    release_id: Option<&'a str>,
) -> Vec<(Role, Buildspec<'a>)> {
    let (variables, phases, artifacts, location) = match variant {
        Variant::Ci => (
            &settings.ci.variables,
            &settings.ci.phases,
            &settings.ci.artifacts,
            settings.ci.build_buildspec.as_deref(),
        ),
        Variant::Release => (
            &settings.release.variables,
            &settings.release.phases,
            &settings.release.artifacts,
            settings.release.build_buildspec.as_deref(),
        ),
    };
    let mut task_variables: Vec<(Text<'a>, Text<'a>)> = Vec::new();
    if variant == Variant::Release {
        let id = release_id.unwrap_or(&settings.release.release_id);
        task_variables.push(("RELEASE_ID".into(), id.into()));
        task_variables.push(("DRY_RUN".into(), settings.release.dry_run_text().into()));
    }
    let tasks = selected
        .iter()
        .map(|f| task(settings, f, selected, &task_variables, location))
        .collect();
    let batch = Batch {
        fast_fail: Some(settings.batch.fast_fail),
        builds: match settings.batch.shape {
            BatchShape::BuildGraph => BatchBuilds::Graph(tasks),
            BatchShape::BuildList => BatchBuilds::List(tasks),
        },
    };
    let build = build_spec(settings, variables, phases, artifacts.as_ref());
    if location.is_some() {
        let batch_only = Buildspec {
            batch: Some(batch),
            ..Buildspec::default()
        };
        vec![(Role::Build, build), (Role::Batch, batch_only)]
    } else {
        vec![(
            Role::Batch,
            Buildspec {
                batch: Some(batch),
                ..build
            },
        )]
    }
}

fn task<'a>(
    settings: &'a Settings,
    flavor: &'a Flavor,
    selected: &[&'a Flavor],
    extra: &[(Text<'a>, Text<'a>)],
    buildspec: Option<&'a str>,
) -> BatchTask<'a> {
    let shared = &settings.build;
    let over = settings.flavors.get(flavor.name.as_str());
    // The flavor's own setting, else the shared one.
    let either = |own: fn(&FlavorSettings) -> Option<&String>, shared: Option<&'a String>| {
        over.and_then(own)
            .or(shared)
            .map(|s| Text::Borrowed(s.as_str()))
    };
    let mut variables = Vec::with_capacity(1 + extra.len());
    variables.push((
        Text::Borrowed("FLAVOR"),
        Text::Borrowed(flavor.name.as_str()),
    ));
    variables.extend(extra.iter().cloned());
    if let Some(over) = over {
        merge(&mut variables, &over.variables);
    }
    let depend_on = match over {
        // Dependencies outside the selection are not rebuilt; their last results stand.
        Some(over) if settings.batch.shape == BatchShape::BuildGraph => over
            .depend_on
            .iter()
            .filter_map(|d| selected.iter().find(|f| f.name.as_str() == d))
            .map(|f| Text::Borrowed(f.identifier.as_str()))
            .collect(),
        _ => Vec::new(),
    };
    let ignore_failure = over
        .and_then(|o| o.ignore_failure)
        .unwrap_or(settings.batch.ignore_failure);
    BatchTask {
        identifier: Text::Borrowed(&flavor.identifier),
        buildspec: buildspec.map(Text::Borrowed),
        depend_on,
        env: Some(TaskEnv {
            compute_type: either(|o| o.compute_type.as_ref(), Some(&shared.compute_type)),
            fleet: either(|o| o.fleet.as_ref(), shared.fleet.as_ref()),
            image: either(|o| o.image.as_ref(), shared.image.as_ref()),
            privileged_mode: Some(
                over.and_then(|o| o.privileged_mode)
                    .unwrap_or(shared.privileged_mode),
            ),
            environment_type: either(
                |o| o.environment_type.as_ref(),
                shared.environment_type.as_ref(),
            ),
            variables,
        }),
        ignore_failure: ignore_failure.then_some(true),
        debug_session: None,
    }
}

/// Sets each of `extra` in `base`, replacing a value of the same name in place. `T` is an
/// owned `String` or text borrowed from `extra` (a task's variables).
fn merge<'a, T: From<&'a str> + AsRef<str>>(
    base: &mut Vec<(T, T)>,
    extra: &'a IndexMap<String, String>,
) {
    for (k, v) in extra {
        match base.iter_mut().find(|(name, _)| name.as_ref() == k) {
            Some(slot) => slot.1 = T::from(v),
            None => base.push((T::from(k), T::from(v))),
        }
    }
}

fn pairs(map: &IndexMap<String, String>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn phase(settings: &PhaseSettings, runtime_versions: &IndexMap<String, String>) -> Phase {
    Phase {
        run_as: settings.run_as.clone(),
        on_failure: settings.on_failure.clone(),
        runtime_versions: pairs(runtime_versions),
        commands: settings.commands.clone(),
        finally: settings.finally.clone(),
    }
}

/// Single-quotes a word for POSIX shells.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn build_spec(
    settings: &Settings,
    variant_variables: &IndexMap<String, String>,
    variant_phases: &PhaseSet,
    variant_artifacts: Option<&ArtifactSettings>,
) -> Buildspec<'static> {
    let b = &settings.build;
    let pick =
        |v: &Option<PhaseSettings>, s: &Option<PhaseSettings>| v.clone().or_else(|| s.clone());
    let mut install = pick(&variant_phases.install, &b.phases.install);
    let pre_build = pick(&variant_phases.pre_build, &b.phases.pre_build);
    let mut build = pick(&variant_phases.build, &b.phases.build);
    let post_build = pick(&variant_phases.post_build, &b.phases.post_build);
    if install.is_none() && pre_build.is_none() && build.is_none() && post_build.is_none() {
        build = Some(PhaseSettings {
            commands: vec![
                "echo \"Building flavor ${FLAVOR}\"".into(),
                format!("ls -la {}/\"${{FLAVOR}}\"", sh_quote(&settings.flavors_dir)),
            ],
            ..PhaseSettings::default()
        });
    }
    // runtime-versions belong to the install phase; give it one when only versions are set.
    if install.is_none() && !b.runtime_versions.is_empty() {
        install = Some(PhaseSettings::default());
    }
    let mut variables = pairs(&b.variables);
    merge(&mut variables, variant_variables);
    let no_versions = IndexMap::new();
    let env = Env {
        shell: Some(b.shell.clone()),
        variables,
        parameter_store: pairs(&b.parameter_store),
        exported_variables: b.exported_variables.clone(),
        secrets_manager: pairs(&b.secrets_manager),
        git_credential_helper: b.git_credential_helper,
    };
    Buildspec {
        run_as: b.run_as.clone(),
        env: Some(env),
        proxy: None,
        batch: None,
        phases: Phases {
            install: install.as_ref().map(|p| phase(p, &b.runtime_versions)),
            pre_build: pre_build.as_ref().map(|p| phase(p, &no_versions)),
            build: build.as_ref().map(|p| phase(p, &no_versions)),
            post_build: post_build.as_ref().map(|p| phase(p, &no_versions)),
        },
        reports: b
            .reports
            .iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    Report {
                        files: r.files.clone(),
                        base_directory: r.base_directory.clone(),
                        discard_paths: r.discard_paths,
                        file_format: r.file_format.clone(),
                    },
                )
            })
            .collect(),
        artifacts: variant_artifacts.or(b.artifacts.as_ref()).map(artifacts),
        cache: b.cache.as_ref().map(|c| Cache {
            paths: c.paths.clone(),
        }),
    }
}

fn artifacts(a: &ArtifactSettings) -> Artifacts {
    Artifacts {
        files: a.files.clone(),
        name: a.name.clone(),
        discard_paths: a.discard_paths,
        base_directory: a.base_directory.clone(),
        exclude_paths: a.exclude_paths.clone(),
        enable_symlinks: a.enable_symlinks,
        s3_prefix: a.s3_prefix.clone(),
        secondary_artifacts: a
            .secondary_artifacts
            .iter()
            .map(|(k, v)| (k.clone(), artifacts(v)))
            .collect(),
    }
}
