//! The repository a local command reads: its settings and its flavors on disk.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use flavor_ci::flavors::{self, FlavorSet};
use flavor_ci::settings::{SETTINGS_FILE, Settings};

use crate::failure::{EXIT_INVALID, EXIT_IO, Failure};

#[derive(Debug, clap::Args)]
pub(crate) struct RepoArgs {
    /// The repository root.
    #[arg(long, short = 'r', default_value = ".", value_name = "DIR")]
    pub(crate) repo: PathBuf,
    /// Settings file [default: <repo>/flavor-ci.yaml if present, else built-in defaults].
    #[arg(long, short = 's', value_name = "FILE")]
    pub(crate) settings: Option<PathBuf>,
    /// The directory holding one directory per flavor [default: <repo>/<flavors-dir setting>].
    #[arg(long, value_name = "DIR")]
    pub(crate) flavors_dir: Option<PathBuf>,
}

pub(crate) fn load_settings(args: &RepoArgs) -> Result<(Settings, Option<PathBuf>), Failure> {
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

pub(crate) fn discover(args: &RepoArgs, settings: &Settings) -> Result<FlavorSet, Failure> {
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
