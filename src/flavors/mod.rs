//! Flavors: their names, their CodeBuild build identifiers, and finding them in a repository.
//!
//! # Name → identifier mapping (stable; part of the public contract)
//!
//! A flavor's build identifier is `build_` followed by the flavor name with every character
//! outside `[A-Za-z0-9_]` replaced by `_`, one for one: `python-3.10` → `build_python_3_10`.
//! Names are at most [`MAX_NAME_CHARS`] characters, so identifiers stay under CodeBuild's
//! 128-character limit. Two flavors that map to the same identifier are an error.
//!
//! Repositories moving from `exasol-script-languages-container-ci-setup` can keep that tool's
//! identifiers ([`IdentifierStyle::ExasolCiSetup`], setting `batch.identifier-style`), so build
//! history and automation keyed on them carry over.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::FastMap;
use crate::text::shown;

mod disk;

pub use disk::{Discovered, FlavorLink, lexical_absolute, links_leaving};

/// The longest flavor name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The prefix of every flavor's build identifier.
pub const IDENTIFIER_PREFIX: &str = "build_";
/// CodeBuild rejects identifiers of 128 characters or more.
pub const MAX_IDENTIFIER_CHARS: usize = 127;

/// How a flavor name becomes a build identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentifierStyle {
    /// `build_` + the name with every character outside `[A-Za-z0-9_]` replaced by `_`, one for
    /// one: `python-3.10` → `build_python_3_10`.
    #[default]
    Standard,
    /// The mapping of `exasol-script-languages-container-ci-setup`: `build_` + the name with
    /// `.` removed and `-` replaced by `_` (`python-3.10` → `build_python_310`); any other
    /// character outside `[A-Za-z0-9_]`, which that tool passed through into an identifier
    /// CodeBuild rejects, becomes `_`.
    ExasolCiSetup,
}

impl IdentifierStyle {
    pub fn is_standard(&self) -> bool {
        *self == IdentifierStyle::Standard
    }
}

/// A validated flavor name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlavorName(String);

impl FlavorName {
    /// Checks `name` against the naming rules.
    pub fn new(name: &str) -> Result<Self, FlavorError> {
        let invalid = |reason: &str| FlavorError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid(&format!(
                "it is longer than {MAX_NAME_CHARS} characters; shorten it"
            )));
        }
        if name.contains(['/', '\\']) {
            return Err(invalid(
                "it contains a path separator; name a single directory",
            ));
        }
        if name.contains("..") {
            return Err(invalid("it contains `..`; name a single directory"));
        }
        if name.starts_with('.') {
            return Err(invalid(
                "it starts with `.`; hidden directories are not flavors",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("it contains a control character"));
        }
        if !name.chars().all(crate::yaml::is_yaml_printable) {
            return Err(invalid(
                "it contains a character YAML does not allow (U+FFFE or U+FFFF); rename it",
            ));
        }
        if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
            return Err(invalid("it starts or ends with whitespace; remove it"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The CodeBuild build identifier of this flavor in the standard style.
    pub fn identifier(&self) -> String {
        self.identifier_in(IdentifierStyle::Standard)
    }

    /// The CodeBuild build identifier of this flavor in `style` (see the module docs).
    pub fn identifier_in(&self, style: IdentifierStyle) -> String {
        let mut id = String::with_capacity(IDENTIFIER_PREFIX.len() + self.0.len());
        id.push_str(IDENTIFIER_PREFIX);
        let safe = |c: char| c.is_ascii_alphanumeric() || c == '_';
        for c in self.0.chars() {
            match (style, c) {
                (_, c) if safe(c) => id.push(c),
                (IdentifierStyle::ExasolCiSetup, '.') => {}
                _ => id.push('_'),
            }
        }
        id
    }
}

impl fmt::Display for FlavorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One problem with a flavor list or a flavors directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlavorError {
    #[error("flavor name \"{}\" is invalid: {reason}", shown(name))]
    InvalidName { name: String, reason: String },
    #[error("flavor `{}` is listed twice; list it once", shown(name))]
    Duplicate { name: String },
    #[error(
        "flavors `{}` and `{}` both map to build identifier `{identifier}`; rename one",
        shown(first),
        shown(second)
    )]
    IdentifierCollision {
        first: String,
        second: String,
        identifier: String,
    },
    #[error(
        "no flavors directory at {}: create it or point `flavors-dir` (or --flavors-dir) at it",
        sh(path)
    )]
    MissingDirectory { path: PathBuf },
    #[error(
        "the flavors directory {} is a link to {}, which does not exist; if it points into a git submodule, run `git submodule update --init --recursive`, otherwise fix the link or point `flavors-dir` (or --flavors-dir) at the directory",
        sh(path),
        sh(target)
    )]
    BrokenDirectoryLink { path: PathBuf, target: PathBuf },
    #[error(
        "{} is not a directory: point `flavors-dir` (or --flavors-dir) at the directory that holds one directory per flavor",
        sh(path)
    )]
    NotADirectory { path: PathBuf },
    #[error(
        "{} holds no flavor directories: add one directory per flavor",
        sh(path)
    )]
    NoFlavors { path: PathBuf },
    #[error("the flavor list is empty: name at least one flavor")]
    EmptyList,
    #[error(
        "flavor link {} points to {}, which {reason}; if it points into a git submodule, run `git submodule update --init --recursive`, otherwise fix or remove the link",
        sh(path),
        sh(target)
    )]
    BrokenLink {
        path: PathBuf,
        target: PathBuf,
        reason: String,
    },
    #[error(
        "flavor link {} points to {}, which {reason} at the pushed commit; fix or remove the link",
        shown(path),
        shown(target)
    )]
    BrokenLinkAtCommit {
        path: String,
        target: String,
        reason: String,
    },
    #[error(
        "flavor link {} points to {}, which leaves the repository {}; CodeBuild clones only the repository, so the build would not find it: move the flavor into the repository",
        sh(path),
        sh(target),
        sh(root)
    )]
    LinkLeavesRepository {
        path: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("{} is not valid UTF-8: rename the directory", sh(path))]
    NonUtf8Name { path: PathBuf },
    #[error("cannot read {}: {message}", sh(path))]
    Io { path: PathBuf, message: String },
}

/// A path as a message shows it: invisible characters escaped.
fn sh(path: &Path) -> String {
    shown(&path.display().to_string()).into_owned()
}

/// All problems found in one flavor list, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FlavorErrors(pub Vec<FlavorError>);

impl fmt::Display for FlavorErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::write_lines(f, &self.0)
    }
}

impl From<FlavorError> for FlavorErrors {
    fn from(e: FlavorError) -> Self {
        Self(vec![e])
    }
}

/// A flavor and its build identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    pub name: FlavorName,
    pub identifier: String,
}

/// A non-empty set of flavors, sorted by name, whose identifiers (in one style) are unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlavorSet {
    flavors: Vec<Flavor>,
    style: IdentifierStyle,
}

impl FlavorSet {
    /// Builds the set from explicit names (the deploy-time path), with standard identifiers.
    /// Every problem is reported.
    pub fn from_names<I, S>(names: I) -> Result<Self, FlavorErrors>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::from_names_in(names, IdentifierStyle::Standard)
    }

    /// [`FlavorSet::from_names`] with identifiers in `style`.
    pub fn from_names_in<I, S>(names: I, style: IdentifierStyle) -> Result<Self, FlavorErrors>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut errors = Vec::new();
        let mut valid = Vec::new();
        for name in names {
            match FlavorName::new(name.as_ref()) {
                Ok(n) => valid.push(n),
                Err(e) => errors.push(e),
            }
        }
        if valid.is_empty() && errors.is_empty() {
            errors.push(FlavorError::EmptyList);
        }
        Self::build(valid, errors, style)
    }

    /// The same flavors with identifiers in `style`, checked for collisions in that style.
    pub fn in_style(&self, style: IdentifierStyle) -> Result<Self, FlavorErrors> {
        if style == self.style {
            return Ok(self.clone());
        }
        Self::build(
            self.flavors.iter().map(|f| f.name.clone()).collect(),
            Vec::new(),
            style,
        )
    }

    /// The style of this set's identifiers.
    pub fn style(&self) -> IdentifierStyle {
        self.style
    }

    /// The flavors among `names`, the directories (and links that resolve to directories) of a
    /// flavors directory listed somewhere other than the local disk, such as a git tree. The
    /// same rules as [`FlavorSet::discover`]: hidden and excluded names are skipped, and
    /// `errors` (broken links found by the caller) are reported with any others.
    pub fn from_listing<I, S>(
        dir: &str,
        names: I,
        exclude: &[String],
        style: IdentifierStyle,
        mut errors: Vec<FlavorError>,
    ) -> Result<Self, FlavorErrors>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut valid = Vec::new();
        for name in names {
            let name = name.as_ref();
            if !is_candidate(name, exclude) {
                continue;
            }
            match FlavorName::new(name) {
                Ok(n) => valid.push(n),
                Err(e) => errors.push(e),
            }
        }
        if valid.is_empty() && errors.is_empty() {
            errors.push(FlavorError::NoFlavors { path: dir.into() });
        }
        Self::build(valid, errors, style)
    }

    pub(super) fn build(
        mut names: Vec<FlavorName>,
        mut errors: Vec<FlavorError>,
        style: IdentifierStyle,
    ) -> Result<Self, FlavorErrors> {
        names.sort_unstable();
        let mut flavors: Vec<Flavor> = Vec::with_capacity(names.len());
        let mut by_identifier: FastMap<String, usize> =
            FastMap::with_capacity_and_hasher(names.len(), Default::default());
        for name in names {
            if flavors.last().is_some_and(|f| f.name == name) {
                errors.push(FlavorError::Duplicate { name: name.0 });
                continue;
            }
            let identifier = name.identifier_in(style);
            if let Some(&i) = by_identifier.get(&identifier) {
                errors.push(FlavorError::IdentifierCollision {
                    first: flavors[i].name.0.clone(),
                    second: name.0,
                    identifier,
                });
                continue;
            }
            by_identifier.insert(identifier.clone(), flavors.len());
            flavors.push(Flavor { name, identifier });
        }
        if errors.is_empty() {
            Ok(Self { flavors, style })
        } else {
            Err(FlavorErrors(errors))
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Flavor> {
        self.flavors.iter()
    }

    pub fn len(&self) -> usize {
        self.flavors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flavors.is_empty()
    }

    /// The flavor called `name`, if it is in the set.
    pub fn get(&self, name: &str) -> Option<&Flavor> {
        self.flavors
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.flavors[i])
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.flavors.iter().map(|f| f.name.as_str())
    }
}

/// Whether a directory entry called `name` can be a flavor: not hidden, not excluded.
pub fn is_candidate(name: &str, exclude: &[String]) -> bool {
    !name.starts_with('.') && !exclude.iter().any(|e| e == name)
}

impl<'a> IntoIterator for &'a FlavorSet {
    type Item = &'a Flavor;
    type IntoIter = std::slice::Iter<'a, Flavor>;
    fn into_iter(self) -> Self::IntoIter {
        self.flavors.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::disk::LinkResolver;
    use super::*;
    use proptest::prelude::*;
    use std::fs;

    fn names(set: &FlavorSet) -> Vec<&str> {
        set.names().collect()
    }

    /// The quick resolution agrees with `canonicalize` for every shape of link: leading and
    /// inner `..`, `.`, absolute targets, a directory reached through a link, chains, and
    /// targets outside the repository or missing.
    #[test]
    fn links_resolve_as_canonicalize_resolves_them() {
        use std::os::unix::fs::symlink;
        let top = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let repo = top.path().join("repo");
        let flavors = repo.join("flavors");
        for d in [
            "flavors",
            "vendor/flavors/a",
            "vendor/flavors/b",
            "deep/x/y",
        ] {
            fs::create_dir_all(repo.join(d)).unwrap();
        }
        fs::create_dir_all(outside.path().join("o")).unwrap();
        symlink("vendor", repo.join("vendored")).unwrap();
        symlink("../vendor/flavors/a", repo.join("vendor/flavors/chain")).unwrap();
        symlink(&flavors, top.path().join("flavors-link")).unwrap();
        let links: &[(&str, std::path::PathBuf)] = &[
            ("l1", "../vendor/flavors/a".into()),
            ("l2", "../vendored/flavors/b".into()),
            ("l3", "../vendor/flavors/chain".into()),
            ("l4", "../deep/x/../x/y".into()),
            ("l5", "./../vendor/flavors/a".into()),
            ("l6", repo.join("vendor/flavors/b")),
            ("l7", outside.path().join("o")),
            ("l8", "../../../../../../../../..".into()),
            ("l9", "../vendor/flavors/missing".into()),
            ("l10", "../../repo/vendor/flavors/a".into()),
            ("l11", "/".into()),
            ("l12", "..".into()),
        ];
        for (name, target) in links {
            symlink(target, flavors.join(name)).unwrap();
        }
        // The same links, reached through a linked flavors directory.
        for dir in [flavors.clone(), top.path().join("flavors-link")] {
            let mut resolver = LinkResolver::default();
            for (name, target) in links {
                let path = dir.join(name);
                assert_eq!(
                    resolver.resolve(&path, target),
                    fs::canonicalize(&path).ok(),
                    "{} -> {}",
                    path.display(),
                    target.display()
                );
            }
            // Discovery follows each link once and takes the flavors the system would: the
            // links to directories; the broken ones (l3's chain leads nowhere, l9) are errors.
            let broken: Vec<&(&str, std::path::PathBuf)> = links
                .iter()
                .filter(|(name, _)| fs::metadata(dir.join(name)).is_err())
                .collect();
            assert_eq!(broken.len(), 2);
            let err = FlavorSet::discover_on_disk(&dir, &[], IdentifierStyle::Standard)
                .expect_err("broken links");
            for (name, _) in &broken {
                assert!(
                    err.to_string().contains(&format!("/{name}")),
                    "{name}: {err}"
                );
            }
            for (name, _) in &broken {
                fs::remove_file(dir.join(name)).unwrap();
            }
            let found = FlavorSet::discover_on_disk(&dir, &[], IdentifierStyle::Standard).unwrap();
            for (name, target) in &broken {
                symlink(target, dir.join(name)).unwrap();
            }
            let mut expected: Vec<&str> = links
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| fs::metadata(dir.join(name)).is_ok_and(|m| m.is_dir()))
                .collect();
            expected.sort();
            assert_eq!(names(&found.set), expected);
            // And leads where the system says they lead.
            for link in &found.links {
                let resolved = link
                    .resolved
                    .clone()
                    .or_else(|| fs::canonicalize(&link.path).ok());
                assert_eq!(resolved, fs::canonicalize(&link.path).ok(), "{link:?}");
            }
        }
    }

    #[test]
    fn identifiers_replace_each_other_character_with_an_underscore() {
        let id = |n: &str| FlavorName::new(n).unwrap().identifier();
        assert_eq!(id("python-3.10"), "build_python_3_10");
        assert_eq!(id("standard-EXASOL-all"), "build_standard_EXASOL_all");
        assert_eq!(id("with space"), "build_with_space");
        assert_eq!(id("über"), "build__ber");
    }

    #[test]
    fn invalid_names_are_rejected_with_the_reason() {
        for (name, reason) in [
            ("", "empty"),
            ("a/b", "path separator"),
            ("a\\b", "path separator"),
            ("..", "`..`"),
            ("a..b", "`..`"),
            (".hidden", "hidden"),
            ("a\u{7}b", "control"),
            (" a", "whitespace"),
            ("a\t", "control"),
            ("a\u{fffe}", "YAML does not allow"),
            ("\u{ffff}b", "YAML does not allow"),
        ] {
            let err = FlavorName::new(name).unwrap_err().to_string();
            assert!(err.contains(reason), "{name:?}: {err}");
        }
        assert!(FlavorName::new(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(FlavorName::new(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn the_exasol_ci_setup_style_keeps_that_tools_identifiers() {
        let id = |n: &str| {
            FlavorName::new(n)
                .unwrap()
                .identifier_in(IdentifierStyle::ExasolCiSetup)
        };
        assert_eq!(
            id("standard-EXASOL-all-python-3.10"),
            "build_standard_EXASOL_all_python_310"
        );
        assert_eq!(
            id("template-Exasol-8-python-3.12-cuda-conda"),
            "build_template_Exasol_8_python_312_cuda_conda"
        );
        assert_eq!(id("r-4.4"), "build_r_44");
        assert_eq!(id("with space"), "build_with_space");
        // Collisions are checked in the style in use: these two collide only in the old one.
        let names = ["python-3.10", "python-31.0"];
        assert!(FlavorSet::from_names(names).is_ok());
        let err = FlavorSet::from_names_in(names, IdentifierStyle::ExasolCiSetup).unwrap_err();
        assert_eq!(
            err.to_string(),
            "flavors `python-3.10` and `python-31.0` both map to build identifier `build_python_310`; rename one"
        );
        // …and these only in the standard one.
        let names = ["a.b", "a-b"];
        assert!(FlavorSet::from_names(names).is_err());
        let set = FlavorSet::from_names_in(names, IdentifierStyle::ExasolCiSetup).unwrap();
        assert!(set.in_style(IdentifierStyle::Standard).is_err());
        let ids: Vec<&str> = set.iter().map(|f| f.identifier.as_str()).collect();
        assert_eq!(ids, ["build_a_b", "build_ab"]);
    }

    #[test]
    fn names_in_messages_show_invisible_characters() {
        let err = FlavorSet::from_names(["a\u{200b}", "a_"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "flavors `a_` and `a\\u{200b}` both map to build identifier `build_a_`; rename one"
        );
        let err = FlavorName::new("a\u{1b}[31mred").unwrap_err().to_string();
        assert!(
            err.starts_with("flavor name \"a\\u{1b}[31mred\" is invalid"),
            "{err}"
        );
    }

    #[test]
    fn colliding_identifiers_name_both_flavors() {
        let err = FlavorSet::from_names(["python-3.10", "python_3.10", "ok"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "flavors `python-3.10` and `python_3.10` both map to build identifier `build_python_3_10`; rename one"
        );
    }

    #[test]
    fn every_problem_in_a_list_is_reported() {
        let err = FlavorSet::from_names(["a", "a", "", "b/c"]).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        assert!(matches!(
            FlavorSet::from_names(Vec::<String>::new()).unwrap_err().0[0],
            FlavorError::EmptyList
        ));
    }

    #[test]
    fn lists_are_sorted_and_searchable() {
        let set = FlavorSet::from_names(["b", "a", "c"]).unwrap();
        assert_eq!(names(&set), ["a", "b", "c"]);
        assert_eq!(set.get("b").unwrap().identifier, "build_b");
        assert!(set.get("d").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn discovery_counts_directories_and_symlinked_directories_only() {
        let tmp = tempfile::tempdir().unwrap();
        let flavors = tmp.path().join("flavors");
        let vendor = tmp.path().join("vendor/linked-flavor");
        fs::create_dir_all(&vendor).unwrap();
        for d in ["real", ".hidden", "__pycache__"] {
            fs::create_dir_all(flavors.join(d)).unwrap();
        }
        fs::write(flavors.join("README.md"), "not a flavor").unwrap();
        std::os::unix::fs::symlink("../vendor/linked-flavor", flavors.join("linked")).unwrap();
        std::os::unix::fs::symlink("README.md", flavors.join("file-link")).unwrap();
        let set = FlavorSet::discover(
            &flavors,
            &["__pycache__".to_owned()],
            IdentifierStyle::Standard,
        )
        .unwrap();
        assert_eq!(names(&set), ["linked", "real"]);
    }

    #[cfg(unix)]
    #[test]
    fn discovery_gives_the_links_the_leaving_check_needs() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let flavors = repo.join("flavors");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(repo.join("vendor/inside")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::create_dir_all(flavors.join("real")).unwrap();
        std::os::unix::fs::symlink("../vendor/inside", flavors.join("inside")).unwrap();
        std::os::unix::fs::symlink(&outside, flavors.join("away")).unwrap();
        std::os::unix::fs::symlink("../vendor/inside", flavors.join(".hidden")).unwrap();
        let found = FlavorSet::discover_on_disk(&flavors, &[], IdentifierStyle::Standard).unwrap();
        let mut links: Vec<PathBuf> = found.links.iter().map(|l| l.path.clone()).collect();
        links.sort();
        assert_eq!(links, [flavors.join("away"), flavors.join("inside")]);
        let leaving = links_leaving(found.links, &repo);
        assert_eq!(leaving.len(), 1);
        assert!(leaving[0].to_string().contains("away"), "{}", leaving[0]);
    }

    #[cfg(unix)]
    #[test]
    fn broken_links_are_errors_that_name_the_path_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let flavors = tmp.path().join("flavors");
        fs::create_dir_all(flavors.join("ok")).unwrap();
        fs::create_dir_all(tmp.path().join("submodule")).unwrap();
        std::os::unix::fs::symlink("../submodule/flavors/gone", flavors.join("gone")).unwrap();
        std::os::unix::fs::symlink("loop", flavors.join("loop")).unwrap();
        let err = FlavorSet::discover(&flavors, &[], IdentifierStyle::Standard).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("flavors/gone points to ../submodule/flavors/gone, which does not exist"),
            "{text}"
        );
        assert!(
            text.contains("git submodule update --init --recursive"),
            "{text}"
        );
        assert!(
            text.contains("flavors/loop points to loop, which cannot be followed"),
            "{text}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn entries_that_would_not_be_flavors_never_stop_discovery() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let flavors = tmp.path().join("flavors");
        fs::create_dir_all(flavors.join("ok")).unwrap();
        let bytes = |b: &[u8]| flavors.join(OsStr::from_bytes(b));
        fs::create_dir(bytes(b".hidden-\xff")).unwrap();
        fs::write(bytes(b"notes-\xff.txt"), "a file").unwrap();
        std::os::unix::fs::symlink("../gone", flavors.join(".hidden-link")).unwrap();
        fs::create_dir(bytes(b"__pycache__")).unwrap();
        let set = FlavorSet::discover(
            &flavors,
            &["__pycache__".to_owned()],
            IdentifierStyle::Standard,
        )
        .unwrap();
        assert_eq!(names(&set), ["ok"]);
        // A directory whose name is not UTF-8 would be a flavor: that is reported.
        fs::create_dir(bytes(b"bad-\xff")).unwrap();
        let err = FlavorSet::discover(&flavors, &[], IdentifierStyle::Standard).unwrap_err();
        assert!(
            matches!(err.0[..], [FlavorError::NonUtf8Name { .. }]),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_flavors_directory_that_is_a_broken_link_names_the_link_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let flavors = tmp.path().join("flavors");
        std::os::unix::fs::symlink("vendor/sub/flavors", &flavors).unwrap();
        let err = FlavorSet::discover(&flavors, &[], IdentifierStyle::Standard).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("is a link to vendor/sub/flavors, which does not exist"),
            "{text}"
        );
        assert!(
            text.contains("git submodule update --init --recursive"),
            "{text}"
        );
    }

    #[test]
    fn missing_empty_and_non_directories_are_clear_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = FlavorSet::discover(&tmp.path().join("nope"), &[], IdentifierStyle::Standard)
            .unwrap_err();
        assert!(matches!(missing.0[0], FlavorError::MissingDirectory { .. }));
        let empty = FlavorSet::discover(tmp.path(), &[], IdentifierStyle::Standard).unwrap_err();
        assert!(matches!(empty.0[0], FlavorError::NoFlavors { .. }));
        fs::create_dir(tmp.path().join(".only-hidden")).unwrap();
        let hidden = FlavorSet::discover(tmp.path(), &[], IdentifierStyle::Standard).unwrap_err();
        assert!(matches!(hidden.0[0], FlavorError::NoFlavors { .. }));
        fs::write(tmp.path().join("file"), "").unwrap();
        let file = FlavorSet::discover(&tmp.path().join("file"), &[], IdentifierStyle::Standard)
            .unwrap_err();
        assert!(matches!(file.0[0], FlavorError::NotADirectory { .. }));
    }

    proptest! {
        #[test]
        fn identifiers_are_valid_for_every_valid_name(name in "\\PC{1,100}") {
            if let Ok(n) = FlavorName::new(&name) {
                let id = n.identifier();
                prop_assert!(id.chars().count() <= MAX_IDENTIFIER_CHARS);
                prop_assert!(id.starts_with(IDENTIFIER_PREFIX));
                prop_assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            }
        }

        #[test]
        fn old_style_identifiers_are_valid_for_every_valid_name(name in "\\PC{1,100}") {
            if let Ok(n) = FlavorName::new(&name) {
                let id = n.identifier_in(IdentifierStyle::ExasolCiSetup);
                prop_assert!(id.chars().count() <= MAX_IDENTIFIER_CHARS);
                prop_assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            }
        }

        #[test]
        fn names_of_safe_characters_map_to_themselves(name in "[A-Za-z0-9_]{1,100}") {
            prop_assert_eq!(FlavorName::new(&name).unwrap().identifier(), format!("build_{name}"));
        }
    }
}
