//! The local commands: `generate`, `validate` and `flavors`, which need no AWS account (only
//! `validate`'s CloudFormation check of templates calls AWS).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flavor_ci::generate::{self, Output, Request};
use flavor_ci::settings::SETTINGS_FILE;
use flavor_ci::validate::{self, Limits, Severity};

use crate::failure::{EXIT_INVALID, EXIT_IO, Failure};
use crate::repo::{RepoArgs, discover, load_settings};
use crate::{ops, outputs};

#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Where to write the buildspecs; created if missing.
    #[arg(long, short = 'o', default_value = "buildspecs", value_name = "DIR")]
    out: PathBuf,
    /// Build only this flavor (repeat for more); default: all flavors.
    #[arg(long = "flavor", short = 'f', value_name = "NAME")]
    only: Vec<String>,
    /// Release id passed to release builds as RELEASE_ID [default: release.release-id].
    #[arg(long, value_name = "ID")]
    release_id: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Buildspec files and CloudFormation templates to check (told apart by content).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The project's maximum builds per batch; larger batches are errors.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_builds: Option<u32>,
    /// A template parameter's value for the settings check (repeat); others use their Default.
    #[arg(long = "parameter", value_name = "KEY=VALUE", value_parser = parse_parameter)]
    parameters: Vec<(String, String)>,
    /// Skip CloudFormation's ValidateTemplate (no AWS needed); the settings check still runs.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    aws: ops::AwsArgs,
}

fn parse_parameter(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

pub(crate) fn run_flavors(args: &RepoArgs) -> Result<ExitCode, Failure> {
    let (settings, _) = load_settings(args)?;
    let flavors = discover(args, &settings)?;
    let mut out = io::stdout().lock();
    for f in &flavors {
        let _ = writeln!(out, "{}\t{}", f.name, f.identifier);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_generate(args: &GenerateArgs) -> Result<ExitCode, Failure> {
    let (settings, settings_path) = load_settings(&args.repo)?;
    let flavors = discover(&args.repo, &settings)?;
    let output = generate::generate(Request {
        settings: &settings,
        flavors: &flavors,
        only: (!args.only.is_empty()).then_some(args.only.as_slice()),
        release_id: args.release_id.as_deref(),
    })
    .map_err(Failure::invalid)?;
    let removed = write_all(&args.out, &output)?;

    let mut out = io::stdout().lock();
    match &settings_path {
        Some(p) => {
            let _ = writeln!(out, "settings: {}", p.display());
        }
        None => {
            let _ = writeln!(
                out,
                "settings: built-in defaults (no {SETTINGS_FILE} in {})",
                args.repo.repo.display()
            );
        }
    }
    let _ = writeln!(
        out,
        "flavors: {} of {} ({})",
        output.selected.len(),
        flavors.len(),
        output.selected.join(", ")
    );
    for d in &output.documents {
        let _ = writeln!(
            out,
            "wrote {} ({} bytes, sha256 {})",
            args.out.join(&d.file_name).display(),
            d.yaml.len(),
            &d.sha256()[..12]
        );
    }
    for path in removed {
        let _ = writeln!(out, "removed stale {}", path.display());
    }
    let mut err = io::stderr().lock();
    for w in &output.warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    if let Some(notice) = output.without_commands_notice() {
        let _ = writeln!(err, "warning: {notice}");
    }
    Ok(ExitCode::SUCCESS)
}

/// File names this tool writes; any of them not written by this run is stale.
const KNOWN_FILES: &[&str] = &[
    "ci-batch-buildspec.yaml",
    "ci-build-buildspec.yaml",
    "release-batch-buildspec.yaml",
    "release-build-buildspec.yaml",
];

/// Writes every document all or none (see `outputs`); removes earlier outputs this run no
/// longer produces, in the same step.
fn write_all(dir: &Path, output: &Output) -> Result<Vec<PathBuf>, Failure> {
    let files: Vec<(&str, &[u8])> = output
        .documents
        .iter()
        .map(|d| (d.file_name.as_str(), d.yaml.as_bytes()))
        .collect();
    let stale: Vec<&str> = KNOWN_FILES
        .iter()
        .copied()
        .filter(|name| !output.documents.iter().any(|d| d.file_name == *name))
        .collect();
    let written = outputs::write_all(&outputs::RealFs, dir, &files, &stale)
        .map_err(|e| Failure::io(&e.path, e.action, &e.error))?;
    for (path, e) in &written.leftovers {
        let _ = writeln!(
            io::stderr(),
            "warning: cannot remove the backup {}: {e}; delete it by hand",
            path.display()
        );
    }
    Ok(written.removed)
}

pub(crate) fn run_validate(args: &ValidateArgs) -> Result<ExitCode, Failure> {
    let limits = Limits {
        max_builds: args.max_builds,
    };
    let mut out = io::stdout().lock();
    let (mut errors, mut warnings, mut unreadable) = (0usize, 0usize, 0usize);
    let mut templates = Vec::new();
    for file in &args.files {
        let text = match fs::read(file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(_) => {
                    let _ = writeln!(
                        out,
                        "{}: error: not UTF-8 text; save the buildspec as UTF-8",
                        file.display()
                    );
                    errors += 1;
                    continue;
                }
            },
            Err(e) => {
                let _ = writeln!(out, "{}: error: cannot read: {e}", file.display());
                unreadable += 1;
                continue;
            }
        };
        if let Ok(value) = flavor_ci::template::read(&text)
            && flavor_ci::template::is_template(&value)
        {
            templates.push(ops::templates::TemplateFile {
                path: file.display().to_string(),
                text,
                value,
            });
            continue;
        }
        let problems = validate::validate_text(&text, limits);
        if problems.is_empty() {
            let _ = writeln!(out, "{}: ok", file.display());
        }
        for p in &problems {
            match p.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            let level = if p.severity == Severity::Error {
                "error"
            } else {
                "warning"
            };
            let at = if p.path.is_empty() {
                "(document)"
            } else {
                p.path.as_str()
            };
            let _ = writeln!(
                out,
                "{}:{}: {level}: {at}: {}",
                file.display(),
                p.line,
                p.message
            );
        }
    }
    let buildspecs = args.files.len() - templates.len();
    if buildspecs > 0 || templates.is_empty() {
        let _ = writeln!(
            out,
            "{buildspecs} file(s): {errors} error(s), {warnings} warning(s)"
        );
    }
    drop(out);
    if !templates.is_empty()
        && !ops::check_templates(&args.aws, args.offline, &args.parameters, &templates)?
    {
        errors += 1;
    }
    Ok(if unreadable > 0 {
        ExitCode::from(EXIT_IO)
    } else if errors > 0 {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    })
}
