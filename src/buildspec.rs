//! A typed model of CodeBuild buildspec version 0.2, rendered to YAML deterministically.
//!
//! Ordered maps are `Vec<(String, T)>`: the order given is the order written. The batch
//! tasks, one per flavor, borrow their strings from the settings and the flavors they are made
//! from (`Text`), so a batch of hundreds of flavors copies none of them.

use std::borrow::Cow;

use crate::yaml::{self, Value};

/// Text a batch task borrows where it can.
pub type Text<'a> = Cow<'a, str>;

/// A buildspec document (`version: 0.2`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buildspec<'a> {
    pub run_as: Option<String>,
    pub env: Option<Env>,
    pub proxy: Option<Proxy>,
    pub batch: Option<Batch<'a>>,
    pub phases: Phases,
    pub reports: Vec<(String, Report)>,
    pub artifacts: Option<Artifacts>,
    pub cache: Option<Cache>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    pub shell: Option<String>,
    pub variables: Vec<(String, String)>,
    pub parameter_store: Vec<(String, String)>,
    pub exported_variables: Vec<String>,
    pub secrets_manager: Vec<(String, String)>,
    pub git_credential_helper: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxy {
    pub upload_artifacts: Option<bool>,
    pub logs: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<'a> {
    pub fast_fail: Option<bool>,
    pub builds: BatchBuilds<'a>,
}

/// The one kind of batch a buildspec holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchBuilds<'a> {
    Graph(Vec<BatchTask<'a>>),
    List(Vec<BatchTask<'a>>),
    Matrix(Box<BuildMatrix<'a>>),
    Fanout(BuildFanout),
}

impl BatchBuilds<'_> {
    /// The key this kind is written under.
    pub fn key(&self) -> &'static str {
        match self {
            BatchBuilds::Graph(_) => "build-graph",
            BatchBuilds::List(_) => "build-list",
            BatchBuilds::Matrix(_) => "build-matrix",
            BatchBuilds::Fanout(_) => "build-fanout",
        }
    }
}

/// One entry of a `build-graph` or `build-list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchTask<'a> {
    pub identifier: Text<'a>,
    pub buildspec: Option<Text<'a>>,
    pub depend_on: Vec<Text<'a>>,
    pub env: Option<TaskEnv<'a>>,
    pub ignore_failure: Option<bool>,
    pub debug_session: Option<bool>,
}

/// Build environment overrides of one batch task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskEnv<'a> {
    pub compute_type: Option<Text<'a>>,
    pub fleet: Option<Text<'a>>,
    pub image: Option<Text<'a>>,
    pub privileged_mode: Option<bool>,
    pub environment_type: Option<Text<'a>>,
    pub variables: Vec<(Text<'a>, Text<'a>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildMatrix<'a> {
    pub static_ignore_failure: Option<bool>,
    pub static_env: Option<TaskEnv<'a>>,
    pub dynamic_buildspec: Vec<String>,
    pub dynamic_compute_type: Vec<String>,
    pub dynamic_image: Vec<String>,
    pub dynamic_variables: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildFanout {
    pub parallelism: u32,
    pub ignore_failure: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phases {
    pub install: Option<Phase>,
    pub pre_build: Option<Phase>,
    pub build: Option<Phase>,
    pub post_build: Option<Phase>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phase {
    pub run_as: Option<String>,
    pub on_failure: Option<String>,
    /// Only valid in the install phase.
    pub runtime_versions: Vec<(String, String)>,
    pub commands: Vec<String>,
    pub finally: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub files: Vec<String>,
    pub base_directory: Option<String>,
    pub discard_paths: Option<bool>,
    pub file_format: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Artifacts {
    pub files: Vec<String>,
    pub name: Option<String>,
    pub discard_paths: Option<bool>,
    pub base_directory: Option<String>,
    pub exclude_paths: Vec<String>,
    pub enable_symlinks: Option<bool>,
    pub s3_prefix: Option<String>,
    /// Only valid on the primary artifacts.
    pub secondary_artifacts: Vec<(String, Artifacts)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cache {
    pub paths: Vec<String>,
}

/// Builds a mapping, skipping absent entries.
#[derive(Default)]
struct MapBuilder<'a>(Vec<(Cow<'a, str>, Value<'a>)>);

impl<'a> MapBuilder<'a> {
    /// A builder with room for exactly `n` entries: for the mappings written once per flavor,
    /// whose entries are counted up front.
    fn exactly(n: usize) -> Self {
        MapBuilder(Vec::with_capacity(n))
    }

    fn put(mut self, key: &'static str, value: Option<Value<'a>>) -> Self {
        if let Some(v) = value {
            // Room for the entries of most mappings of a buildspec at the first one, so a
            // mapping is allocated once; one that stays empty is not allocated at all.
            if self.0.capacity() == 0 {
                self.0.reserve_exact(6);
            }
            self.0.push((Cow::Borrowed(key), v));
        }
        self
    }
    fn text(self, key: &'static str, value: Option<&'a str>) -> Self {
        self.put(key, value.map(Value::str))
    }
    fn bool(self, key: &'static str, value: Option<bool>) -> Self {
        self.put(key, value.map(Value::Bool))
    }
    /// Booleans the buildspec reference spells `yes` / `no`.
    fn yes_no(self, key: &'static str, value: Option<bool>) -> Self {
        self.put(key, value.map(|b| Value::Raw(if b { "yes" } else { "no" })))
    }
    fn list<S: AsRef<str>>(self, key: &'static str, items: &'a [S]) -> Self {
        self.put(
            key,
            (!items.is_empty()).then(|| Value::strs(items.iter().map(AsRef::as_ref))),
        )
    }
    fn pairs<S: AsRef<str>>(self, key: &'static str, pairs: &'a [(S, S)]) -> Self {
        self.put(key, (!pairs.is_empty()).then(|| string_map(pairs)))
    }
    fn done(self) -> Value<'a> {
        Value::Map(self.0)
    }
    fn done_if_any(self) -> Option<Value<'a>> {
        (!self.0.is_empty()).then_some(Value::Map(self.0))
    }
}

fn string_map<S: AsRef<str>>(pairs: &[(S, S)]) -> Value<'_> {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Cow::Borrowed(k.as_ref()), Value::str(v.as_ref())))
            .collect(),
    )
}

impl Buildspec<'_> {
    /// The document as a YAML value tree.
    pub fn to_value(&self) -> Value<'_> {
        MapBuilder::default()
            .put("version", Some(Value::Raw("0.2")))
            .text("run-as", self.run_as.as_deref())
            .put("env", self.env.as_ref().and_then(Env::to_value))
            .put(
                "proxy",
                self.proxy.as_ref().and_then(|p| {
                    MapBuilder::default()
                        .yes_no("upload-artifacts", p.upload_artifacts)
                        .yes_no("logs", p.logs)
                        .done_if_any()
                }),
            )
            .put("batch", self.batch.as_ref().map(Batch::to_value))
            .put("phases", self.phases.to_value())
            .put(
                "reports",
                (!self.reports.is_empty()).then(|| {
                    Value::Map(
                        self.reports
                            .iter()
                            .map(|(k, r)| (Cow::Borrowed(k.as_str()), r.to_value()))
                            .collect(),
                    )
                }),
            )
            .put(
                "artifacts",
                self.artifacts.as_ref().map(|a| a.to_value(true)),
            )
            .put(
                "cache",
                self.cache
                    .as_ref()
                    .map(|c| MapBuilder::default().list("paths", &c.paths).done()),
            )
            .done()
    }

    /// The document as YAML text; the same model always gives the same bytes.
    pub fn to_yaml(&self) -> String {
        yaml::emit(&self.to_value())
    }
}

impl Env {
    fn to_value(&self) -> Option<Value<'_>> {
        MapBuilder::default()
            .text("shell", self.shell.as_deref())
            .pairs("variables", &self.variables)
            .pairs("parameter-store", &self.parameter_store)
            .list("exported-variables", &self.exported_variables)
            .pairs("secrets-manager", &self.secrets_manager)
            .yes_no("git-credential-helper", self.git_credential_helper)
            .done_if_any()
    }
}

impl Batch<'_> {
    fn to_value(&self) -> Value<'_> {
        let builds = match &self.builds {
            BatchBuilds::Graph(tasks) | BatchBuilds::List(tasks) => {
                Value::Seq(tasks.iter().map(BatchTask::to_value).collect())
            }
            BatchBuilds::Matrix(m) => m.to_value(),
            BatchBuilds::Fanout(f) => MapBuilder::default()
                .put("parallelism", Some(Value::Int(u64::from(f.parallelism))))
                .bool("ignore-failure", f.ignore_failure)
                .done(),
        };
        MapBuilder::default()
            .bool("fast-fail", self.fast_fail)
            .put(self.builds.key(), Some(builds))
            .done()
    }
}

impl BatchTask<'_> {
    pub(crate) fn to_value(&self) -> Value<'_> {
        let entries = 1
            + usize::from(self.buildspec.is_some())
            + usize::from(!self.depend_on.is_empty())
            + usize::from(self.env.as_ref().is_some_and(|e| e.entries() > 0))
            + usize::from(self.ignore_failure.is_some())
            + usize::from(self.debug_session.is_some());
        MapBuilder::exactly(entries)
            .put("identifier", Some(Value::str(self.identifier.as_ref())))
            .text("buildspec", self.buildspec.as_deref())
            .list("depend-on", &self.depend_on)
            .put("env", self.env.as_ref().and_then(TaskEnv::to_value))
            .bool("ignore-failure", self.ignore_failure)
            .bool("debug-session", self.debug_session)
            .done()
    }
}

impl TaskEnv<'_> {
    /// How many entries [`TaskEnv::to_value`] writes.
    fn entries(&self) -> usize {
        usize::from(self.compute_type.is_some())
            + usize::from(self.fleet.is_some())
            + usize::from(self.image.is_some())
            + usize::from(self.privileged_mode.is_some())
            + usize::from(self.environment_type.is_some())
            + usize::from(!self.variables.is_empty())
    }

    fn to_value(&self) -> Option<Value<'_>> {
        MapBuilder::exactly(self.entries())
            .text("compute-type", self.compute_type.as_deref())
            .text("fleet", self.fleet.as_deref())
            .text("image", self.image.as_deref())
            .bool("privileged-mode", self.privileged_mode)
            .text("type", self.environment_type.as_deref())
            .pairs("variables", &self.variables)
            .done_if_any()
    }
}

impl BuildMatrix<'_> {
    fn to_value(&self) -> Value<'_> {
        let variables = (!self.dynamic_variables.is_empty()).then(|| {
            Value::Map(
                self.dynamic_variables
                    .iter()
                    .map(|(k, vs)| {
                        (
                            Cow::Borrowed(k.as_str()),
                            Value::strs(vs.iter().map(String::as_str)),
                        )
                    })
                    .collect(),
            )
        });
        let dynamic_env = MapBuilder::default()
            .list("compute-type", &self.dynamic_compute_type)
            .list("image", &self.dynamic_image)
            .put("variables", variables)
            .done_if_any();
        MapBuilder::default()
            .put(
                "static",
                MapBuilder::default()
                    .bool("ignore-failure", self.static_ignore_failure)
                    .put("env", self.static_env.as_ref().and_then(TaskEnv::to_value))
                    .done_if_any(),
            )
            .put(
                "dynamic",
                MapBuilder::default()
                    .list("buildspec", &self.dynamic_buildspec)
                    .put("env", dynamic_env)
                    .done_if_any(),
            )
            .done()
    }
}

impl Phases {
    fn to_value(&self) -> Option<Value<'_>> {
        MapBuilder::default()
            .put("install", self.install.as_ref().map(Phase::to_value))
            .put("pre_build", self.pre_build.as_ref().map(Phase::to_value))
            .put("build", self.build.as_ref().map(Phase::to_value))
            .put("post_build", self.post_build.as_ref().map(Phase::to_value))
            .done_if_any()
    }
}

impl Phase {
    fn to_value(&self) -> Value<'_> {
        MapBuilder::default()
            .text("run-as", self.run_as.as_deref())
            .text("on-failure", self.on_failure.as_deref())
            .pairs("runtime-versions", &self.runtime_versions)
            .list("commands", &self.commands)
            .list("finally", &self.finally)
            .done()
    }
}

impl Report {
    fn to_value(&self) -> Value<'_> {
        MapBuilder::default()
            .list("files", &self.files)
            .text("base-directory", self.base_directory.as_deref())
            .yes_no("discard-paths", self.discard_paths)
            .text("file-format", self.file_format.as_deref())
            .done()
    }
}

impl Artifacts {
    fn to_value(&self, primary: bool) -> Value<'_> {
        let secondary = (primary && !self.secondary_artifacts.is_empty()).then(|| {
            Value::Map(
                self.secondary_artifacts
                    .iter()
                    .map(|(k, a)| (Cow::Borrowed(k.as_str()), a.to_value(false)))
                    .collect(),
            )
        });
        MapBuilder::default()
            .list("files", &self.files)
            .text("name", self.name.as_deref())
            .yes_no("discard-paths", self.discard_paths)
            .text("base-directory", self.base_directory.as_deref())
            .list("exclude-paths", &self.exclude_paths)
            .yes_no("enable-symlinks", self.enable_symlinks)
            .text("s3-prefix", self.s3_prefix.as_deref())
            .put("secondary-artifacts", secondary)
            .done()
    }
}
