//! One batch, planned: which flavors a change builds and why, the batch buildspec that builds
//! exactly them, and the flavors the run record lists. Pure: every trigger (push, pull
//! request, schedule, dispatch) plans here, and the webhook only does the I/O the plan names.

use std::collections::BTreeMap;

use crate::flavors::FlavorSet;
use crate::generate::{self, Document, GenerateError, Role, Variant};
use crate::glob::Glob;
use crate::runs::Skipped;
use crate::runs::{BuildState, RunFlavor, RunRecord, RunTrigger};
use crate::selection::{self, Changes, LinkedFlavor, Selection};
use crate::settings::Settings;

/// What a batch is planned from.
#[derive(Debug, Clone, Copy)]
pub struct BatchInput<'a> {
    pub settings: &'a Settings,
    /// The flavors at the commit, and those reached through links.
    pub flavors: &'a FlavorSet,
    pub links: &'a [LinkedFlavor],
    pub changes: &'a Changes,
    /// Paths whose changes build nothing.
    pub ignored: &'a [Glob],
    pub variant: Variant,
    /// The release id a tag passes on (release runs only).
    pub release_id: Option<&'a str>,
}

/// The plan for one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No flavor is affected; the reason says why (the required check still succeeds).
    Nothing {
        reason: String,
    },
    Build(Box<BatchPlan>),
    /// Every flavor the change selects already built green with identical inputs: nothing to
    /// start, and the required check succeeds on that evidence.
    Skipped(SkippedPlan),
}

/// A selection whose every flavor is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPlan {
    pub selection: Selection,
    /// Each flavor, with the evidence.
    pub skipped: BTreeMap<String, Skipped>,
    /// The same flavors with their build identifiers, for the run record.
    pub flavors: Vec<RunFlavor>,
}

/// A batch to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// The flavors chosen and why.
    pub selection: Selection,
    /// The batch buildspec.
    pub document: Document,
    /// The flavors the batch builds, sorted.
    pub selected: Vec<String>,
    /// The same flavors with their build identifiers, for the run record.
    pub flavors: Vec<RunFlavor>,
    /// The selected flavors left out because identical inputs already built green.
    pub skipped: BTreeMap<String, Skipped>,
    /// The same flavors with their build identifiers.
    pub skipped_flavors: Vec<RunFlavor>,
}

impl RunRecord {
    /// Adds the flavors skipped on green evidence: reported as succeeded with the build that
    /// proved them, carried (not in this batch), with the evidence as why.
    pub fn with_skipped(
        mut self,
        skipped: &BTreeMap<String, Skipped>,
        flavors: &[RunFlavor],
    ) -> Self {
        for flavor in flavors {
            let Some(s) = skipped.get(&flavor.name) else {
                continue;
            };
            let name = flavor.name.clone();
            self.flavors.push(flavor.clone());
            self.builds.insert(
                name.clone(),
                BuildState {
                    build_id: s.build_id.clone(),
                    status: "SUCCEEDED".into(),
                    phase: Some("COMPLETED".into()),
                    failed_phase: None,
                    started_at: s.seconds.map(|secs| s.built_at.saturating_sub(secs * 1000)),
                    ended_at: Some(s.built_at),
                    seconds: s.seconds,
                    compute_type: None,
                    logs: None,
                    page: None,
                    reported_at: s.built_at,
                },
            );
            self.why.insert(
                name.clone(),
                format!(
                    "skipped: identical inputs built green in {} at {}",
                    s.build_id, s.commit
                ),
            );
            self.carried.insert(name.clone());
            self.skipped.insert(name, s.clone());
        }
        self
    }
}

/// Why no batch can be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The settings and flavors do not make a valid buildspec.
    #[error("{0}")]
    Generate(#[from] GenerateError),
    /// The settings have no such variant (cannot happen with validated settings).
    #[error("the settings produced no {0} batch buildspec")]
    NoDocument(&'static str),
}

/// Chooses the flavors `input.changes` build and generates their batch buildspec.
pub fn plan(input: BatchInput<'_>) -> Result<Plan, PlanError> {
    plan_with(input, select(input), BTreeMap::new())
}

/// The flavors `input.changes` select, and why.
pub fn select(input: BatchInput<'_>) -> Selection {
    selection::select(
        input.changes,
        input.settings,
        input.flavors,
        input.links,
        input.ignored,
    )
}

/// The selected flavors, in the flavor list's order.
pub fn selected<'a>(selection: &'a Selection, flavors: &'a FlavorSet) -> Vec<&'a str> {
    match selection {
        Selection::All { .. } => flavors.names().collect(),
        Selection::Some { flavors, .. } => flavors.iter().map(String::as_str).collect(),
        Selection::Nothing { .. } => Vec::new(),
    }
}

/// Plans `selection` without the flavors in `skipped` (identical inputs built green).
pub fn plan_with(
    input: BatchInput<'_>,
    selection: Selection,
    skipped: BTreeMap<String, Skipped>,
) -> Result<Plan, PlanError> {
    let building: Vec<String>;
    let only = match &selection {
        Selection::Nothing { reason } => {
            return Ok(Plan::Nothing {
                reason: reason.clone(),
            });
        }
        _ if !skipped.is_empty() => {
            building = selected(&selection, input.flavors)
                .into_iter()
                .filter(|f| !skipped.contains_key(*f))
                .map(str::to_owned)
                .collect();
            if building.is_empty() {
                let flavors = run_flavors(input.flavors, skipped.keys());
                return Ok(Plan::Skipped(SkippedPlan {
                    selection,
                    skipped,
                    flavors,
                }));
            }
            Some(building.as_slice())
        }
        Selection::All { .. } => None,
        Selection::Some { flavors, .. } => Some(flavors.as_slice()),
    };
    let output = generate::generate(generate::Request {
        settings: input.settings,
        flavors: input.flavors,
        only,
        release_id: input.release_id,
    })?;
    let selected = output.selected;
    let document = output
        .documents
        .into_iter()
        .find(|d| d.variant == input.variant && d.role == Role::Batch)
        .ok_or(PlanError::NoDocument(input.variant.name()))?;
    let flavors = run_flavors(input.flavors, &selected);
    let skipped_flavors = run_flavors(input.flavors, skipped.keys());
    Ok(Plan::Build(Box::new(BatchPlan {
        selection,
        document,
        selected,
        flavors,
        skipped,
        skipped_flavors,
    })))
}

/// The flavors `names` with their build identifiers, for a run record.
fn run_flavors<'a>(
    flavors: &FlavorSet,
    names: impl IntoIterator<Item = &'a String>,
) -> Vec<RunFlavor> {
    names
        .into_iter()
        .filter_map(|name| flavors.get(name))
        .map(|f| RunFlavor {
            name: f.name.as_str().to_owned(),
            identifier: f.identifier.clone(),
        })
        .collect()
}

/// The id of the record of a run that started no batch because every flavor was skipped.
pub fn skipped_run_id(project: &str, commit: &str) -> String {
    format!("{project}:skipped-{commit}")
}

/// Where and why a planned batch runs: what its run record says besides the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    pub project: String,
    pub commit: String,
    pub git_ref: String,
    pub pull_request: Option<u64>,
    pub trigger: RunTrigger,
    /// `owner/name`: where the results go.
    pub repository: String,
    /// Whether `git_ref` is the repository's default branch.
    pub default_branch: bool,
}

impl RunContext {
    /// A record of this run with `flavors`, chosen by `selection`, and nothing reported yet.
    fn record(
        &self,
        batch_id: &str,
        buildspec: &str,
        started_at: u64,
        selection: &Selection,
        flavors: Vec<RunFlavor>,
    ) -> RunRecord {
        RunRecord {
            batch_id: batch_id.to_owned(),
            project: self.project.clone(),
            commit: self.commit.clone(),
            git_ref: self.git_ref.clone(),
            pull_request: self.pull_request,
            trigger: self.trigger,
            flavors,
            started_at,
            buildspec: buildspec.to_owned(),
            repository: self.repository.clone(),
            default_branch: self.default_branch,
            builds: Default::default(),
            finished: None,
            reason: selection.reason().to_owned(),
            why: match selection {
                Selection::Some { why, .. } => why.clone(),
                _ => Default::default(),
            },
            checks: None,
            carried: Default::default(),
            merge_group: None,
            announce: None,
            inputs: Default::default(),
            trusted: false,
            skipped: Default::default(),
        }
    }
}

impl BatchPlan {
    /// The run record of this plan once CodeBuild started it as `batch_id`.
    pub fn run_record(
        &self,
        context: &RunContext,
        batch_id: &str,
        buildspec: &str,
        started_at: u64,
    ) -> RunRecord {
        context
            .record(
                batch_id,
                buildspec,
                started_at,
                &self.selection,
                self.flavors.clone(),
            )
            .with_skipped(&self.skipped, &self.skipped_flavors)
    }
}

impl SkippedPlan {
    /// The record of this run (`<project>:skipped-<commit>`, see [`skipped_run_id`]): finished
    /// and reported at `at`, every flavor succeeded on its evidence.
    pub fn run_record(&self, context: &RunContext, at: u64) -> RunRecord {
        let batch_id = skipped_run_id(&context.project, &context.commit);
        let mut run = context
            .record(&batch_id, "", at, &self.selection, Vec::new())
            .with_skipped(&self.skipped, &self.flavors);
        run.finished = Some(crate::runs::Finished {
            succeeded: true,
            failed: Vec::new(),
            at,
            status_posted: true,
            announced: true,
            superseded: false,
            stopped_for: None,
        });
        run
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn flavors(names: &[&str]) -> FlavorSet {
        FlavorSet::from_names(names.iter().copied()).unwrap()
    }

    fn input<'a>(
        settings: &'a Settings,
        set: &'a FlavorSet,
        changes: &'a Changes,
    ) -> BatchInput<'a> {
        BatchInput {
            settings,
            flavors: set,
            links: &[],
            changes,
            ignored: &[],
            variant: Variant::Ci,
            release_id: None,
        }
    }

    #[test]
    fn a_change_to_one_flavor_plans_a_batch_of_that_flavor_with_its_record() {
        let settings = Settings::default();
        let set = flavors(&["a", "b"]);
        let changes = Changes::Paths(BTreeSet::from(["flavors/b/Dockerfile".to_owned()]));
        let Plan::Build(plan) = plan(input(&settings, &set, &changes)).unwrap() else {
            panic!("nothing planned");
        };
        assert_eq!(plan.selected, ["b"]);
        assert_eq!(plan.flavors[0].name, "b");
        assert!(
            plan.document.yaml.contains("FLAVOR: b\n"),
            "{}",
            plan.document.yaml
        );
        assert!(!plan.document.yaml.contains("FLAVOR: a\n"));
        let context = RunContext {
            project: "ci".into(),
            commit: "c".repeat(40),
            git_ref: "refs/heads/main".into(),
            pull_request: None,
            trigger: RunTrigger::Push,
            repository: "acme/slc".into(),
            default_branch: true,
        };
        let record = plan.run_record(&context, "ci:1", "s3://b/k", 7);
        assert_eq!(
            (
                record.batch_id.as_str(),
                record.started_at,
                record.flavors.len()
            ),
            ("ci:1", 7, 1)
        );
        assert!(record.default_branch && record.finished.is_none());
    }

    #[test]
    fn no_change_plans_nothing_with_the_reason() {
        let settings = Settings::default();
        let set = flavors(&["a"]);
        let changes = Changes::Paths(BTreeSet::new());
        assert_eq!(
            plan(input(&settings, &set, &changes)).unwrap(),
            Plan::Nothing {
                reason: "no file changed".into()
            }
        );
    }
}
