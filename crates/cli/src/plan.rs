//! `flavor-ci plan`: which flavors a change builds, and why, decided by the selection the
//! webhook uses (`flavor_ci::selection`), on a local git checkout and without AWS.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flavor_ci::flavors::FlavorSet;
use flavor_ci::generate::{self, Role, Variant};
use flavor_ci::glob::Glob;
use flavor_ci::inputs::{InputKeys, KeyInput, input_keys};
use flavor_ci::selection::{self, Changes, LinkedFlavor, Selection};
use flavor_ci::settings::{MergeQueueCompare, Settings};
use flavor_ci::webhook::merge_group::MergeGroupEvent;
use flavor_ci::webhook::pull_request::{Decision, PullRequestEvent, decide};
use flavor_ci::webhook::push::{self, Push, Route, Routing};

mod checkout;
mod keys;

use checkout::{
    at_commit, commit_of, default_base, local_changes, local_links, subdirectory, submodules,
};

use crate::failure::Failure;
use crate::repo::{RepoArgs, discover, load_settings};

#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Compare against this revision [default: the merge base of HEAD and the default branch,
    /// as a pull request compares].
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// The commit to plan: its flavors, links and settings are read from git, as committed
    /// [default: the working tree, uncommitted and untracked files included].
    #[arg(long, value_name = "REV")]
    head: Option<String>,
    /// A push, pull_request or merge_group delivery's body (JSON): print what the webhook would
    /// do with it instead (a pull request's or group's commits must be in this checkout).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["base", "head"])]
    event: Option<PathBuf>,
    /// Decide pull requests as a stack that reports through a GitHub App does
    /// (CommitStatuses=github-app: forks wait for a click by default).
    #[arg(long, requires = "event")]
    github_app: bool,
    /// Write the batch buildspec the webhook would store into this directory.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: Option<PathBuf>,
    /// Branch globs that build on the CI project (the stack's BranchPatterns).
    #[arg(long, default_value = "main", value_name = "GLOBS")]
    branches: String,
    /// Tag globs that build on the release project (the stack's TagPatterns).
    #[arg(long, default_value = "v*", value_name = "GLOBS")]
    tags: String,
    /// Path globs whose changes start no build (the stack's IgnoredPaths).
    #[arg(long, default_value = "", value_name = "GLOBS")]
    ignore: String,
    /// The CodeBuild project the input keys are computed for (the stack's CI project)
    /// [default: the stack's, with --stack; else `ci`].
    #[arg(long, value_name = "NAME")]
    project: Option<String>,
    /// A deployed stack: says, for each selected flavor's input key, what its green ledger
    /// holds (checked with CodeBuild, as the webhook checks it).
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    #[command(flatten)]
    aws: crate::ops::AwsArgs,
}

fn globs(what: &str, text: &str) -> Result<Vec<Glob>, Failure> {
    Glob::list(text).map_err(|e| Failure::invalid(format!("--{what}: {e}")))
}

pub(crate) fn run(args: &PlanArgs) -> Result<ExitCode, Failure> {
    let repo = args.repo.repo.as_path();
    // The planned directory's path in its git repository ("" at the root).
    let mut prefix = String::new();
    if args.event.is_none()
        && let Some((path, top)) = subdirectory(repo)?
    {
        let _ = writeln!(
            io::stdout(),
            "planning {path} of the git repository {top}: changes outside it do not count"
        );
        prefix = path;
    }
    let (settings, flavors, links) = match (&args.event, &args.head) {
        (None, Some(head)) => at_commit(repo, &prefix, head, &args.repo)?,
        _ => {
            let (settings, _) = load_settings(&args.repo)?;
            let flavors = discover(&args.repo, &settings)?;
            let links = local_links(
                repo,
                &settings.flavors_dir,
                &flavors,
                &submodules(repo).unwrap_or_default(),
            );
            (settings, flavors, links)
        }
    };
    let ignored = globs("ignore", &args.ignore)?;
    let mut out = io::stdout().lock();

    let (variant, release_id, changes, planned) = match &args.event {
        Some(file) => {
            let body =
                std::fs::read(file).map_err(|e| Failure::io(file, "read the delivery body", &e))?;
            let value = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
            if value.get("merge_group").is_some() {
                match merge_group(repo, file, &body, &settings, &mut out)? {
                    Some((changes, head)) => (Variant::Ci, None, changes, Some(head)),
                    None => return Ok(ExitCode::SUCCESS),
                }
            } else if value.get("pull_request").is_some() {
                match pull_request(repo, file, &body, &settings, args.github_app, &mut out)? {
                    Some((changes, head)) => (Variant::Ci, None, changes, Some(head)),
                    None => return Ok(ExitCode::SUCCESS),
                }
            } else {
                let push = Push::from_json(&body)
                    .map_err(|e| Failure::invalid(format!("{}: {e}", file.display())))?;
                let routing = Routing {
                    branches: globs("branches", &args.branches)?,
                    tags: globs("tags", &args.tags)?,
                    release: if settings.release.enabled {
                        Ok(())
                    } else {
                        Err("the settings disable the release variant".into())
                    },
                };
                match push::route(&push, &routing) {
                    Route::Ignore { reason } => {
                        let _ = writeln!(out, "ignored: {reason}");
                        return Ok(ExitCode::SUCCESS);
                    }
                    Route::Ci { branch } => {
                        let _ = writeln!(
                            out,
                            "route: branch {branch} → the CI project, commit {}",
                            push.after
                        );
                        (Variant::Ci, None, push.changes(), Some(push.after.clone()))
                    }
                    Route::Release { tag } => {
                        let _ = writeln!(
                            out,
                            "route: tag {tag} → the release project, commit {}",
                            push.after
                        );
                        let head = Some(push.after.clone());
                        (Variant::Release, Some(tag), push.changes(), head)
                    }
                }
            }
        }
        None => {
            let base = match &args.base {
                Some(rev) => commit_of(repo, rev)?,
                None => default_base(repo)?,
            };
            let head_text = args.head.as_deref().unwrap_or("the working tree");
            let _ = writeln!(out, "comparing {head_text} with {base}");
            let changes = local_changes(repo, &base, args.head.as_deref())?;
            (Variant::Ci, None, changes, args.head.clone())
        }
    };

    let selection = selection::select(&changes, &settings, &flavors, &links, &ignored);
    print_selection(&mut out, &selection, &flavors);
    let planned = Planned {
        repo,
        prefix: &prefix,
        rev: planned.as_deref(),
        settings: &settings,
        flavors: &flavors,
        links: &links,
        ignored: &ignored,
        variant,
        release_id: release_id.as_deref(),
    };
    print_keys(&mut out, args, &planned, &selection)?;
    if let Some(dir) = &args.out {
        write_spec(
            dir,
            &settings,
            &flavors,
            &selection,
            variant,
            release_id.as_deref(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the webhook does with a pull_request delivery: its decision, and when it builds, the
/// changes between the pull request's base and head in this checkout (`None`: nothing to plan).
fn pull_request(
    repo: &Path,
    file: &Path,
    body: &[u8],
    settings: &Settings,
    app: bool,
    out: &mut impl io::Write,
) -> Result<Option<(Changes, String)>, Failure> {
    let event = PullRequestEvent::from_json(body)
        .map_err(|e| Failure::invalid(format!("{}: {e}", file.display())))?;
    let n = event.number;
    match decide(&event, &settings.pull_requests, app) {
        Decision::Ignore(reason)
        | Decision::AwaitApproval(reason)
        | Decision::AwaitClick(reason)
        | Decision::Refuse(reason) => {
            let _ = writeln!(out, "ignored: {reason}");
            Ok(None)
        }
        Decision::Stop => {
            let _ = writeln!(
                out,
                "pull request #{n} was closed: its running batches would be stopped"
            );
            Ok(None)
        }
        Decision::Build(why) => {
            let (base, head) = (&event.pull_request.base.sha, &event.pull_request.head.sha);
            let _ = writeln!(
                out,
                "route: pull request #{n} → the CI project, commit {head} ({why})"
            );
            for sha in [base, head] {
                commit_of(repo, sha).map_err(|_| {
                    Failure::invalid(format!(
                        "commit {sha} of pull request #{n} is not in {}; fetch it (git fetch origin pull/{n}/head and the base branch)",
                        repo.display()
                    ))
                })?;
            }
            local_changes(repo, base, Some(head)).map(|c| Some((c, head.clone())))
        }
    }
}

/// What the webhook does with a merge_group delivery: for `checks_requested`, the changes of
/// the group against its base (or the target branch's head, `merge-queue.compare`) in this
/// checkout; `None` when nothing is planned.
fn merge_group(
    repo: &Path,
    file: &Path,
    body: &[u8],
    settings: &Settings,
    out: &mut impl io::Write,
) -> Result<Option<(Changes, String)>, Failure> {
    let event = MergeGroupEvent::from_json(body)
        .map_err(|e| Failure::invalid(format!("{}: {e}", file.display())))?;
    let group = &event.merge_group;
    if event.action != "checks_requested" {
        let reason = event.reason.as_deref().unwrap_or("unknown");
        let _ = writeln!(
            out,
            "merge group {} {} ({reason}): {}",
            group.head_sha,
            event.action,
            if matches!(reason, "dequeued" | "invalidated") {
                "its running batch would be stopped"
            } else {
                "nothing to build or stop"
            }
        );
        return Ok(None);
    }
    let branch = group
        .base_ref
        .strip_prefix("refs/heads/")
        .unwrap_or(&group.base_ref);
    let base = match settings.merge_queue.compare {
        MergeQueueCompare::GroupBase => group.base_sha.clone(),
        MergeQueueCompare::TargetBranch => commit_of(repo, &format!("origin/{branch}"))
            .or_else(|_| commit_of(repo, branch))
            .map_err(|_| {
                Failure::invalid(format!(
                    "the merge group's target branch {branch} is not in {}; fetch it",
                    repo.display()
                ))
            })?,
    };
    let prs: Vec<String> = event
        .pull_requests()
        .iter()
        .map(|n| format!("#{n}"))
        .collect();
    let _ = writeln!(
        out,
        "route: merge group of {} into {branch} → the CI project, commit {} (compared with {base})",
        if prs.is_empty() {
            "unnamed pull requests".into()
        } else {
            prs.join(", ")
        },
        group.head_sha
    );
    for sha in [&base, &group.head_sha] {
        commit_of(repo, sha).map_err(|_| {
            Failure::invalid(format!(
                "commit {sha} of the merge group is not in {}; fetch it (git fetch origin {} and the target branch)",
                repo.display(),
                group.head_ref
            ))
        })?;
    }
    local_changes(repo, &base, Some(&group.head_sha)).map(|c| Some((c, group.head_sha.clone())))
}

/// What was planned, for its input keys.
struct Planned<'a> {
    repo: &'a Path,
    prefix: &'a str,
    /// The planned commit; `None`: the working tree.
    rev: Option<&'a str>,
    settings: &'a Settings,
    flavors: &'a FlavorSet,
    links: &'a [LinkedFlavor],
    ignored: &'a [Glob],
    variant: Variant,
    release_id: Option<&'a str>,
}

impl Planned<'_> {
    /// Every flavor's input key for `project`.
    fn keys(&self, project: &str) -> Result<InputKeys, String> {
        let root = keys::root_tree(self.repo, self.prefix, self.rev).map_err(|f| f.message)?;
        let trees = keys::read_trees(self.repo, &root, &self.settings.flavors_dir, self.links)
            .map_err(|f| f.message)?;
        input_keys(KeyInput {
            trees: &trees,
            settings: self.settings,
            flavors: self.flavors,
            links: self.links,
            ignored: self.ignored,
            project,
            variant: self.variant,
            release_id: self.release_id,
        })
        .map_err(|e| e.to_string())
    }
}

/// Prints each flavor's input key; with `--stack`, what the stack's ledger says of the
/// selected ones.
fn print_keys(
    out: &mut impl io::Write,
    args: &PlanArgs,
    planned: &Planned<'_>,
    selection: &Selection,
) -> Result<(), Failure> {
    let at = planned
        .rev
        .map_or_else(|| "the working tree".to_owned(), |r| format!("commit {r}"));
    let chosen: Vec<&str> = flavor_ci::batch::selected(selection, planned.flavors);
    let Some(stack) = &args.stack else {
        let project = args.project.as_deref().unwrap_or("ci");
        match planned.keys(project) {
            Ok(keys) => {
                let _ = writeln!(out, "input keys for project {project}, {at}:");
                let width = keys.keys.keys().map(String::len).max().unwrap_or(6);
                for (flavor, key) in &keys.keys {
                    let mark = if chosen.contains(&flavor.as_str()) {
                        "  selected"
                    } else {
                        ""
                    };
                    let _ = writeln!(out, "  {flavor:<width$}  {key}{mark}");
                }
            }
            Err(e) => {
                let _ = writeln!(out, "no input keys ({e}): every selected flavor builds");
            }
        }
        return Ok(());
    };
    let mut project_used = String::new();
    let lines = crate::ops::with_ledger(&args.aws, stack, planned.settings, |project| {
        project_used = project.to_owned();
        let keys = planned.keys(project).map_err(Failure::invalid)?;
        Ok(chosen
            .iter()
            .filter_map(|f| keys.get(f).map(|k| ((*f).to_owned(), k.to_owned())))
            .collect())
    })?;
    let skips = planned.settings.skip.on.is_empty();
    let _ = writeln!(
        out,
        "the green ledger of stack {stack} (project {project_used}, {at}){}:",
        if skips {
            "; skip.on is empty, so nothing is skipped"
        } else {
            ""
        }
    );
    let width = lines.iter().map(|(f, ..)| f.len()).max().unwrap_or(6);
    for (flavor, key, said) in lines {
        let _ = writeln!(out, "  {flavor:<width$}  {key}  {said}");
    }
    Ok(())
}

fn print_selection(out: &mut impl io::Write, selection: &Selection, flavors: &FlavorSet) {
    match selection {
        Selection::Nothing { reason } => {
            let _ = writeln!(out, "nothing to build: {reason}");
        }
        Selection::All { reason } => {
            let _ = writeln!(out, "builds all {} flavors: {reason}", flavors.len());
            for f in flavors {
                let _ = writeln!(out, "  {}", f.name);
            }
        }
        Selection::Some {
            flavors: chosen,
            reason,
            why,
        } => {
            let _ = writeln!(
                out,
                "builds {} of {} flavors: {reason}",
                chosen.len(),
                flavors.len()
            );
            for f in chosen {
                let _ = writeln!(out, "  {f}\t{}", why.get(f).map_or("", String::as_str));
            }
        }
    }
}

/// Writes the batch buildspec the webhook would store for this selection.
fn write_spec(
    dir: &Path,
    settings: &Settings,
    flavors: &FlavorSet,
    selection: &Selection,
    variant: Variant,
    release_id: Option<&str>,
) -> Result<(), Failure> {
    if matches!(selection, Selection::Nothing { .. }) {
        let _ = writeln!(io::stdout(), "nothing written: nothing builds");
        return Ok(());
    }
    let output = generate::generate(generate::Request {
        settings,
        flavors,
        only: selection.only(),
        release_id,
    })
    .map_err(Failure::invalid)?;
    let Some(doc) = output.document(variant, Role::Batch) else {
        return Err(Failure::invalid(
            "the settings produce no batch buildspec for this variant",
        ));
    };
    crate::outputs::write_all(
        &crate::outputs::RealFs,
        dir,
        &[(doc.file_name.as_str(), doc.yaml.as_bytes())],
        &[],
    )
    .map_err(|e| Failure::io(&e.path, e.action, &e.error))?;
    let _ = writeln!(
        io::stdout(),
        "wrote {} ({} bytes, sha256 {})",
        dir.join(&doc.file_name).display(),
        doc.yaml.len(),
        &doc.sha256()[..12]
    );
    Ok(())
}
