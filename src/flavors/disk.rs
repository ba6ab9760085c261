//! Flavors on the local disk: discovery of a flavors directory (directories, and links to
//! directories, each resolved once), and the check that no flavor link leaves the repository.

use std::io;
use std::path::{Path, PathBuf};

use super::{FlavorError, FlavorErrors, FlavorName, FlavorSet, IdentifierStyle, is_candidate};
use crate::FastMap;

/// What [`FlavorSet::discover_on_disk`] found: the set, and the flavors that are links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub set: FlavorSet,
    pub links: Vec<FlavorLink>,
}

/// A flavor that is a link: where it stands, what it points at, and where that leads when
/// discovery could tell on the way (otherwise the leaving check resolves it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlavorLink {
    pub path: PathBuf,
    pub target: PathBuf,
    pub(super) resolved: Option<PathBuf>,
}

impl FlavorSet {
    /// Finds the flavors in `dir`: every immediate subdirectory, or symlink to a directory,
    /// whose name does not start with `.` and is not in `exclude`.
    pub fn discover(
        dir: &Path,
        exclude: &[String],
        style: IdentifierStyle,
    ) -> Result<Self, FlavorErrors> {
        Self::discover_on_disk(dir, exclude, style).map(|found| found.set)
    }

    /// [`FlavorSet::discover`], also giving the flavors' entries that are links, so that
    /// [`links_leaving`] checks them without listing the directory again.
    pub fn discover_on_disk(
        dir: &Path,
        exclude: &[String],
        style: IdentifierStyle,
    ) -> Result<Discovered, FlavorErrors> {
        let io_error = |path: &Path, e: io::Error| FlavorError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        };
        check_directory(dir)?;
        let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
        let mut names = Vec::new();
        let mut links = Vec::new();
        let mut errors = Vec::new();
        let mut resolver = LinkResolver::default();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            // The entry's path is made only where it is needed: for links and for errors.
            let path = || entry.path();
            let raw_name = entry.file_name();
            // A name that is not UTF-8 matters only if the entry would be a flavor; hidden and
            // excluded names are skipped whatever their bytes.
            let lossy = raw_name.to_string_lossy();
            if !is_candidate(&lossy, exclude) {
                continue;
            }
            let name = raw_name.to_str().map(str::to_owned);
            let file_type = entry.file_type().map_err(|e| io_error(&path(), e))?;
            let link_path = file_type.is_symlink().then(path);
            let mut link = None;
            let is_flavor = if file_type.is_dir() {
                true
            } else if let Some(path) = link_path {
                match follow(&mut resolver, path) {
                    Ok((is_dir, found)) => {
                        link = Some(found);
                        is_dir
                    }
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                }
            } else {
                false
            };
            if is_flavor {
                match name.as_deref().map(FlavorName::new) {
                    Some(Ok(n)) => {
                        names.push(n);
                        links.extend(link);
                    }
                    Some(Err(e)) => errors.push(e),
                    None => errors.push(FlavorError::NonUtf8Name { path: path() }),
                }
            }
        }
        if names.is_empty() && errors.is_empty() {
            errors.push(FlavorError::NoFlavors {
                path: dir.to_owned(),
            });
        }
        let set = Self::build(names, errors, style)?;
        Ok(Discovered { set, links })
    }
}

/// Checks that the flavors directory `dir` is one, naming a broken link to it with the fix.
fn check_directory(dir: &Path) -> Result<(), FlavorErrors> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A link to nothing (often into a submodule that is not checked out) is named as
            // such, with the fix.
            if let Ok(target) = std::fs::read_link(dir) {
                return Err(FlavorError::BrokenDirectoryLink {
                    path: dir.to_owned(),
                    target,
                }
                .into());
            }
            return Err(FlavorError::MissingDirectory {
                path: dir.to_owned(),
            }
            .into());
        }
        Err(e) => {
            return Err(FlavorError::Io {
                path: dir.to_owned(),
                message: e.to_string(),
            }
            .into());
        }
    };
    if !meta.is_dir() {
        return Err(FlavorError::NotADirectory {
            path: dir.to_owned(),
        }
        .into());
    }
    Ok(())
}

/// Follows the link at `path` once: its target resolved from its (cached) directory says where
/// it leads and, by that place's type, whether it is a flavor (a directory). When that way is
/// unsure, the system follows it.
fn follow(resolver: &mut LinkResolver, path: PathBuf) -> Result<(bool, FlavorLink), FlavorError> {
    let target = std::fs::read_link(&path).ok();
    let quick = target.as_ref().and_then(|t| resolver.quick(&path, t));
    let is_dir = match &quick {
        Some((_, meta)) => Ok(meta.is_dir()),
        None => std::fs::metadata(&path).map(|m| m.is_dir()),
    };
    match is_dir {
        Ok(is_dir) => Ok((
            is_dir,
            FlavorLink {
                target: target.unwrap_or_default(),
                resolved: quick.map(|(resolved, _)| resolved),
                path,
            },
        )),
        Err(e) => {
            let reason = if e.kind() == io::ErrorKind::NotFound {
                "does not exist".to_owned()
            } else {
                format!("cannot be followed ({e})")
            };
            Err(FlavorError::BrokenLink {
                path,
                target: target.unwrap_or_default(),
                reason,
            })
        }
    }
}

/// The flavor links [`FlavorSet::discover_on_disk`] found that resolve outside `root` (the
/// repository): what a clone of the repository would not hold. The webhook refuses such links
/// at a pushed commit; this is the same rule on a checkout.
pub fn links_leaving(mut links: Vec<FlavorLink>, root: &Path) -> Vec<FlavorError> {
    if links.is_empty() {
        return Vec::new();
    }
    let Ok(root) = std::fs::canonicalize(root) else {
        return Vec::new();
    };
    // All in one directory: their paths order as their names do, byte by byte.
    links.sort_by(|a, b| a.path.as_os_str().cmp(b.path.as_os_str()));
    let mut out = Vec::new();
    for link in links {
        // Where discovery could not tell, the system resolves the link.
        let resolved = link
            .resolved
            .or_else(|| std::fs::canonicalize(&link.path).ok());
        match resolved {
            Some(resolved) if !resolved.starts_with(&root) => {
                out.push(FlavorError::LinkLeavesRepository {
                    path: link.path,
                    target: link.target,
                    root: root.clone(),
                });
            }
            _ => {}
        }
    }
    out
}

/// Resolves links as `canonicalize` does, reusing the resolved directories that hold their
/// targets: flavors linked from one vendored directory share it, so each is one lookup.
#[derive(Debug, Default)]
pub(super) struct LinkResolver {
    directories: FastMap<PathBuf, Option<PathBuf>>,
}

impl LinkResolver {
    fn canonical_dir(&mut self, dir: &Path) -> Option<PathBuf> {
        if let Some(known) = self.directories.get(dir) {
            return known.clone();
        }
        let resolved = std::fs::canonicalize(dir).ok();
        self.directories.insert(dir.to_owned(), resolved.clone());
        resolved
    }

    /// Where the link at `path` (pointing at `target`) leads, every link on the way followed:
    /// what `canonicalize(path)` gives, which answers whenever the quick way is unsure.
    #[cfg(test)]
    pub(super) fn resolve(&mut self, path: &Path, target: &Path) -> Option<PathBuf> {
        self.quick(path, target)
            .map(|(resolved, _)| resolved)
            .or_else(|| std::fs::canonicalize(path).ok())
    }

    /// [`LinkResolver::resolve`] without asking the system to follow the whole link: `None`
    /// when unsure. With the place it leads to, its metadata (it is not a link).
    fn quick(&mut self, path: &Path, target: &Path) -> Option<(PathBuf, std::fs::Metadata)> {
        use std::path::Component;
        // Leading `..` are taken from the link's resolved directory, where the system takes
        // them; a `..` after a named part could cross a link, so those targets go the long way.
        let mut parts = target.components().peekable();
        let mut base = if target.is_absolute() {
            PathBuf::new()
        } else {
            let mut base = self.canonical_dir(path.parent()?)?;
            while parts.next_if_eq(&Component::ParentDir).is_some() {
                base.pop();
            }
            base
        };
        let rest: Vec<Component> = parts.collect();
        if rest
            .iter()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return None;
        }
        let (last, within) = rest.split_last()?;
        if !matches!(last, Component::Normal(_)) {
            return None;
        }
        for part in within {
            base.push(part.as_os_str());
        }
        let mut resolved = self.canonical_dir(&base)?;
        resolved.push(last.as_os_str());
        // The last step may be a link of its own.
        match std::fs::symlink_metadata(&resolved) {
            Ok(m) if !m.file_type().is_symlink() => Some((resolved, m)),
            _ => None,
        }
    }
}

/// A path made absolute against `cwd` and cleared of `.` and `..` by their text alone, so a
/// link is never followed.
pub fn lexical_absolute(path: &Path, cwd: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        cwd.join(path)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
