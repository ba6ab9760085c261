//! `flavor-ci`: generate and validate CodeBuild batch buildspecs for multi-flavor repositories.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flavor_ci::flavors::{self, FlavorSet};
use flavor_ci::generate::{self, Output, Request};
use flavor_ci::settings::{SETTINGS_FILE, Settings};
use flavor_ci::validate::{self, Limits, Severity};

mod ops;
mod outputs;
mod plan;

/// Exit status: the input (flavors, settings or a buildspec) has problems.
const EXIT_INVALID: u8 = 1;
/// Exit status: the command line asks for something this build cannot do.
#[cfg(not(feature = "aws"))]
const EXIT_USAGE: u8 = 2;
/// Exit status: a file could not be read or written.
const EXIT_IO: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "flavor-ci",
    version,
    about = "Generate and validate AWS CodeBuild batch buildspecs for repositories with one directory per flavor, and check and deploy what runs them",
    after_help = "Exit status: 0 success, 1 invalid input or a failed check or deployment, 2 usage error, 3 a file could not be read or written.\nThe AWS commands use the standard AWS environment: AWS_PROFILE, AWS_REGION, credentials, AWS_ENDPOINT_URL."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find the repository's flavors and write the CI and release buildspecs into a directory.
    Generate(GenerateArgs),
    /// Check buildspec files against the buildspec 0.2 schema and CodeBuild's batch rules, and
    /// CloudFormation templates through CloudFormation's ValidateTemplate plus a check of the
    /// settings and flavors their Custom::Buildspecs resources carry.
    Validate(ValidateArgs),
    /// List the repository's flavors with their build identifiers.
    Flavors(RepoArgs),
    /// Show which flavors a change builds and why, as the webhook decides: the working tree (or
    /// --head) against the merge base with the default branch (or --base), or a push delivery
    /// (--event); --out writes the batch buildspec the webhook would store.
    Plan(plan::PlanArgs),
    /// Check region, credentials, secrets, and a deployed stack's bucket and projects; prints
    /// PASS or FAIL with the fix per check.
    Health(ops::HealthArgs),
    /// Create or update the once-per-account stack of the GitHub source credential and follow
    /// its events.
    DeploySourceCredentials(ops::DeployArgs),
    /// Start a run by hand, as the nightly schedule does: the stack's webhook function builds
    /// the head of a branch or tag (every flavor, or the ones named); prints the batch id and
    /// its console link.
    Dispatch(ops::DispatchArgs),
    /// Show a run of a deployed stack: each flavor's build status, duration and log link, and a
    /// summary; exit 0 when all succeeded, 1 when any failed, 4 while any is running.
    Status(ops::StatusArgs),
    /// Run the failed builds of a failed batch again (RetryBuildBatch, failed builds only);
    /// refuses, saying why, a batch that is running, succeeded or was stopped.
    Retry(ops::RetryArgs),
}

#[derive(Debug, clap::Args)]
struct RepoArgs {
    /// The repository root.
    #[arg(long, short = 'r', default_value = ".", value_name = "DIR")]
    repo: PathBuf,
    /// Settings file [default: <repo>/flavor-ci.yaml if present, else built-in defaults].
    #[arg(long, short = 's', value_name = "FILE")]
    settings: Option<PathBuf>,
    /// The directory holding one directory per flavor [default: <repo>/<flavors-dir setting>].
    #[arg(long, value_name = "DIR")]
    flavors_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
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
struct ValidateArgs {
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

/// A failure to report: its message and exit status.
struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    fn invalid(message: impl ToString) -> Self {
        Self {
            status: EXIT_INVALID,
            message: message.to_string(),
        }
    }
    #[cfg(not(feature = "aws"))]
    fn usage(message: impl ToString) -> Self {
        Self {
            status: EXIT_USAGE,
            message: message.to_string(),
        }
    }
    fn io(path: &Path, action: &str, e: &io::Error) -> Self {
        Self {
            status: EXIT_IO,
            message: format!("cannot {action} {}: {e}", path.display()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => run_generate(&args),
        Command::Validate(args) => run_validate(&args),
        Command::Flavors(args) => run_flavors(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Health(args) => run_health(args),
        Command::DeploySourceCredentials(args) => run_deploy(args),
        Command::Dispatch(args) => run_dispatch(args),
        Command::Status(args) => run_status(args),
        Command::Retry(args) => run_retry(args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(io::stderr(), "error: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}

#[cfg(feature = "aws")]
fn run_health(args: ops::HealthArgs) -> Result<ExitCode, Failure> {
    with_runtime(|| async move {
        if ops::health::run(&args).await {
            Ok(ExitCode::SUCCESS)
        } else {
            Ok(ExitCode::from(EXIT_INVALID))
        }
    })
}

#[cfg(feature = "aws")]
fn run_deploy(args: ops::DeployArgs) -> Result<ExitCode, Failure> {
    with_runtime(|| async move {
        ops::deploy::run(&args)
            .await
            .map(|()| ExitCode::SUCCESS)
            .map_err(Failure::invalid)
    })
}

#[cfg(feature = "aws")]
fn run_dispatch(args: ops::DispatchArgs) -> Result<ExitCode, Failure> {
    with_runtime(|| async move {
        ops::dispatch::run(&args)
            .await
            .map(|()| ExitCode::SUCCESS)
            .map_err(Failure::invalid)
    })
}

#[cfg(feature = "aws")]
fn run_status(args: ops::StatusArgs) -> Result<ExitCode, Failure> {
    with_runtime(|| async move { ops::runs::status(&args).await.map_err(Failure::invalid) })
}

#[cfg(feature = "aws")]
fn run_retry(args: ops::RetryArgs) -> Result<ExitCode, Failure> {
    with_runtime(|| async move {
        ops::runs::retry(&args)
            .await
            .map(|()| ExitCode::SUCCESS)
            .map_err(Failure::invalid)
    })
}

#[cfg(not(feature = "aws"))]
fn run_status(_: ops::StatusArgs) -> Result<ExitCode, Failure> {
    Err(Failure::usage(ops::without_aws("status")))
}

#[cfg(not(feature = "aws"))]
fn run_retry(_: ops::RetryArgs) -> Result<ExitCode, Failure> {
    Err(Failure::usage(ops::without_aws("retry")))
}

#[cfg(not(feature = "aws"))]
fn run_dispatch(_: ops::DispatchArgs) -> Result<ExitCode, Failure> {
    Err(Failure::usage(ops::without_aws("dispatch")))
}

#[cfg(not(feature = "aws"))]
fn run_health(_: ops::HealthArgs) -> Result<ExitCode, Failure> {
    Err(Failure::usage(ops::without_aws("health")))
}

#[cfg(not(feature = "aws"))]
fn run_deploy(_: ops::DeployArgs) -> Result<ExitCode, Failure> {
    Err(Failure::usage(ops::without_aws(
        "deploy-source-credentials",
    )))
}

/// Runs an async command on a runtime of its own.
#[cfg(feature = "aws")]
fn with_runtime<F, Fut>(command: F) -> Result<ExitCode, Failure>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<ExitCode, Failure>>,
{
    let runtime = ops::runtime().map_err(|e| Failure {
        status: EXIT_IO,
        message: format!("cannot start the async runtime: {e}"),
    })?;
    runtime.block_on(command())
}

/// Checks the templates: CloudFormation's ValidateTemplate unless `--offline`, then the
/// `Custom::Buildspecs` resources. Returns whether all passed.
#[cfg(feature = "aws")]
fn check_templates(
    args: &ValidateArgs,
    templates: &[ops::templates::TemplateFile],
) -> Result<bool, Failure> {
    let parameters = args.parameters.iter().cloned().collect();
    let passed = with_runtime(|| async move {
        let cfn = if args.offline {
            None
        } else {
            match ops::validate::client(&args.aws).await {
                Some(c) => Some(c),
                None => return Ok(ExitCode::from(EXIT_INVALID)),
            }
        };
        let mut ok = true;
        for t in templates {
            if let Some(cfn) = &cfn {
                ok &= ops::validate::one(cfn, t).await;
            }
            ok &= ops::templates::check(t, &parameters);
        }
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_INVALID)
        })
    })?;
    Ok(passed == ExitCode::SUCCESS)
}

#[cfg(not(feature = "aws"))]
fn check_templates(
    args: &ValidateArgs,
    templates: &[ops::templates::TemplateFile],
) -> Result<bool, Failure> {
    if !args.offline {
        return Err(Failure::usage(format!(
            "{}; or pass --offline to check the templates' Custom::Buildspecs resources without CloudFormation",
            ops::without_aws("validate")
        )));
    }
    let parameters = args.parameters.iter().cloned().collect();
    // Every template is checked and reported, also after one fails.
    let mut ok = true;
    for t in templates {
        ok &= ops::templates::check(t, &parameters);
    }
    Ok(ok)
}

fn load_settings(args: &RepoArgs) -> Result<(Settings, Option<PathBuf>), Failure> {
    let (mut settings, path) = read_settings(args)?;
    apply_flavors_dir(args, &mut settings)?;
    Ok((settings, path))
}

fn read_settings(args: &RepoArgs) -> Result<(Settings, Option<PathBuf>), Failure> {
    let (path, required) = match &args.settings {
        Some(p) => (p.clone(), true),
        None => (args.repo.join(SETTINGS_FILE), false),
    };
    match fs::read_to_string(&path) {
        Ok(text) => Settings::from_yaml(&text)
            .map(|s| (s, Some(path.clone())))
            .map_err(|e| Failure::invalid(format!("{} has problems:\n{e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => {
            Ok((Settings::default(), None))
        }
        Err(e) => Err(Failure::io(&path, "read settings file", &e)),
    }
}

/// Applies `--flavors-dir` to the settings: one value, relative to the repository's root, used
/// for discovery and in the builds alike.
fn apply_flavors_dir(args: &RepoArgs, settings: &mut Settings) -> Result<(), Failure> {
    let Some(dir) = &args.flavors_dir else {
        return Ok(());
    };
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::io(Path::new("."), "read the current directory", &e))?;
    let repo = flavors::lexical_absolute(&args.repo, &cwd);
    let abs = flavors::lexical_absolute(dir, &cwd);
    let Ok(relative) = abs.strip_prefix(&repo) else {
        return Err(Failure::invalid(format!(
            "--flavors-dir {} is outside the repository {}; the builds find the flavors by their path in the repository, so point it at a directory inside it",
            dir.display(),
            args.repo.display()
        )));
    };
    let text: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    settings.flavors_dir = if text.is_empty() {
        ".".into()
    } else {
        text.join("/")
    };
    Ok(())
}

fn discover(args: &RepoArgs, settings: &Settings) -> Result<FlavorSet, Failure> {
    let dir = args.repo.join(&settings.flavors_dir);
    let found =
        FlavorSet::discover_on_disk(&dir, &settings.exclude, settings.batch.identifier_style)
            .map_err(flavor_failure)?;
    let leaving = flavors::links_leaving(found.links, &args.repo);
    if leaving.is_empty() {
        Ok(found.set)
    } else {
        Err(Failure::invalid(flavors::FlavorErrors(leaving)))
    }
}

/// Problems with the flavors are invalid input; a directory that cannot be read is I/O.
fn flavor_failure(errors: flavors::FlavorErrors) -> Failure {
    let io = errors
        .0
        .iter()
        .all(|e| matches!(e, flavors::FlavorError::Io { .. }));
    Failure {
        status: if io { EXIT_IO } else { EXIT_INVALID },
        message: errors.to_string(),
    }
}

fn run_flavors(args: &RepoArgs) -> Result<ExitCode, Failure> {
    let (settings, _) = load_settings(args)?;
    let flavors = discover(args, &settings)?;
    let mut out = io::stdout().lock();
    for f in &flavors {
        let _ = writeln!(out, "{}\t{}", f.name, f.identifier);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_generate(args: &GenerateArgs) -> Result<ExitCode, Failure> {
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

fn run_validate(args: &ValidateArgs) -> Result<ExitCode, Failure> {
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
    if !templates.is_empty() && !check_templates(args, &templates)? {
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
