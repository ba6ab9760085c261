//! A GitHub `push` delivery: what was pushed, where it goes, and which flavors it rebuilds.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::glob::Glob;
use crate::flavors::{FlavorSet, is_candidate};
use crate::generate::with_dependents;
use crate::settings::Settings;

/// GitHub lists at most this many commits in a push; a longer push is cut short.
pub const MAX_LISTED_COMMITS: usize = 2048;

/// The parts of a push payload flavor-ci reads. Everything else is ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Push {
    #[serde(rename = "ref")]
    pub git_ref: String,
    #[serde(default)]
    pub before: String,
    pub after: String,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    #[serde(default)]
    pub commits: Vec<Commit>,
    #[serde(default)]
    pub head_commit: Option<HeadCommit>,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Commit {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub modified: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HeadCommit {
    pub id: String,
    #[serde(default)]
    pub tree_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    /// `owner/name`.
    pub full_name: String,
}

/// Why a push payload cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// A field has the wrong type or is missing (`path` is `None` for the payload as a whole).
    #[error("{}", match path {
        Some(path) => format!("the push payload's `{path}` is not valid: {message}"),
        None => format!("the push payload is not valid: {message}"),
    })]
    Field {
        path: Option<String>,
        message: String,
    },
    #[error("the push payload's `after` is {0:?}, not a commit id")]
    NotACommit(String),
    #[error("the push payload's `repository.full_name` is {0:?}, not `owner/name`")]
    NotARepository(String),
}

impl Push {
    /// Parses a push payload; the error names the field that is wrong.
    pub fn from_json(body: &[u8]) -> Result<Self, PayloadError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        let push: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            PayloadError::Field {
                path: (path != ".").then_some(path),
                message: e.inner().to_string(),
            }
        })?;
        if !is_object_id(&push.after) {
            return Err(PayloadError::NotACommit(push.after));
        }
        let name_ok = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        let parts: Vec<&str> = push.repository.full_name.split('/').collect();
        if parts.len() != 2 || !parts.iter().all(|p| name_ok(p)) {
            return Err(PayloadError::NotARepository(push.repository.full_name));
        }
        Ok(push)
    }

    /// True for a push that deleted its ref.
    pub fn is_deletion(&self) -> bool {
        self.deleted || self.after.bytes().all(|b| b == b'0')
    }

    /// The root tree of the pushed commit, when the payload names it.
    pub fn tree_id(&self) -> Option<&str> {
        self.head_commit
            .as_ref()
            .filter(|h| h.id == self.after)
            .and_then(|h| h.tree_id.as_deref())
            .filter(|t| is_object_id(t))
    }
}

/// A git object id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where pushes go.
#[derive(Debug, Clone)]
pub struct Routing {
    /// Branches that build on the CI project.
    pub branches: Vec<Glob>,
    /// Tags that build on the release project.
    pub tags: Vec<Glob>,
    /// Whether a release project is configured and the settings enable the release variant.
    pub release: Result<(), String>,
}

/// What a push means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ci { branch: String },
    Release { tag: String },
    Ignore { reason: String },
}

/// Routes a push by its ref.
pub fn route(push: &Push, routing: &Routing) -> Route {
    let git_ref = push.git_ref.as_str();
    if push.is_deletion() {
        return Route::Ignore {
            reason: format!("{git_ref} was deleted; there is nothing to build"),
        };
    }
    let patterns = |globs: &[Glob]| {
        globs
            .iter()
            .map(Glob::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        if routing.branches.iter().any(|g| g.matches(branch)) {
            return Route::Ci {
                branch: branch.into(),
            };
        }
        return Route::Ignore {
            reason: format!(
                "branch {branch} matches none of the branch patterns ({})",
                patterns(&routing.branches)
            ),
        };
    }
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        if let Err(why) = &routing.release {
            return Route::Ignore {
                reason: format!("tag {tag} was pushed but {why}"),
            };
        }
        if routing.tags.iter().any(|g| g.matches(tag)) {
            return Route::Release { tag: tag.into() };
        }
        return Route::Ignore {
            reason: format!(
                "tag {tag} matches none of the tag patterns ({})",
                patterns(&routing.tags)
            ),
        };
    }
    Route::Ignore {
        reason: format!("{git_ref} is neither a branch nor a tag"),
    }
}

/// A flavor reached through a link, and the repository paths its content lives under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedFlavor {
    pub flavor: String,
    /// The directory the link resolves to, or the submodule it points into.
    pub path: String,
}

/// Which flavors a push builds, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All {
        reason: String,
    },
    Some {
        flavors: Vec<String>,
        reason: String,
    },
    Nothing {
        reason: String,
    },
}

impl Selection {
    pub fn reason(&self) -> &str {
        match self {
            Selection::All { reason }
            | Selection::Some { reason, .. }
            | Selection::Nothing { reason } => reason,
        }
    }
}

/// Up to three items, then how many more.
fn some_of(items: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = items.iter().take(3).map(String::as_str).collect();
    let more = items.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Decides which flavors `push` rebuilds. A change under `<flavors-dir>/<name>/` (or under a
/// linked flavor's target) selects that flavor and its dependents; a change matching `ignored`
/// selects nothing; any other change, a created branch, a forced push, or a commit list that
/// may be incomplete selects every flavor.
pub fn select(
    push: &Push,
    settings: &Settings,
    flavors: &FlavorSet,
    links: &[LinkedFlavor],
    ignored: &[Glob],
) -> Selection {
    if push.created {
        let what = if push.git_ref.starts_with("refs/tags/") {
            "a new tag"
        } else {
            "a new branch"
        };
        return Selection::All {
            reason: format!("{what}: building every flavor"),
        };
    }
    if push.forced {
        return Selection::All {
            reason: "a forced push: building every flavor".into(),
        };
    }
    if push.commits.len() >= MAX_LISTED_COMMITS {
        return Selection::All {
            reason: format!(
                "the push lists {} commits, the most GitHub sends, so its changes may be incomplete: building every flavor",
                push.commits.len()
            ),
        };
    }
    if push.commits.is_empty() {
        return Selection::All {
            reason: "the push lists no commits, so its changes are unknown: building every flavor"
                .into(),
        };
    }
    let dir = settings.flavors_dir.trim_matches('/');
    let dir = if dir == "." { "" } else { dir };
    let mut changed: BTreeSet<String> = BTreeSet::new();
    let mut ignored_paths: BTreeSet<String> = BTreeSet::new();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let mut other: BTreeSet<String> = BTreeSet::new();
    let paths: BTreeSet<&str> = push
        .commits
        .iter()
        .flat_map(|c| c.added.iter().chain(&c.removed).chain(&c.modified))
        .map(String::as_str)
        .collect();
    for path in paths {
        if ignored.iter().any(|g| g.matches_path(path)) {
            ignored_paths.insert(path.into());
            continue;
        }
        let mut hit = false;
        for link in links {
            if under(path, &link.path) {
                changed.insert(link.flavor.clone());
                hit = true;
            }
        }
        let in_dir = if dir.is_empty() {
            Some(path)
        } else {
            path.strip_prefix(dir)
                .and_then(|rest| rest.strip_prefix('/'))
        };
        if let Some((name, inside)) = in_dir.map(|rest| {
            rest.split_once('/')
                .map_or((rest, false), |(n, _)| (n, true))
        }) {
            if flavors.get(name).is_some() {
                changed.insert(name.into());
                continue;
            }
            // The directory of a flavor that no longer exists: nothing to build for it.
            if inside && is_candidate(name, &settings.exclude) {
                gone.insert(name.into());
                continue;
            }
        }
        if !hit {
            other.insert(path.into());
        }
    }
    if !other.is_empty() {
        return Selection::All {
            reason: format!(
                "{} changed outside the flavor directories: building every flavor",
                some_of(&other)
            ),
        };
    }
    if changed.is_empty() {
        let mut parts = Vec::new();
        if !ignored_paths.is_empty() {
            parts.push(format!(
                "only ignored paths changed ({})",
                some_of(&ignored_paths)
            ));
        }
        if !gone.is_empty() {
            parts.push(format!("removed flavors changed ({})", some_of(&gone)));
        }
        return Selection::Nothing {
            reason: format!("{}: nothing to build", parts.join("; ")),
        };
    }
    let direct: Vec<String> = changed.iter().cloned().collect();
    let all = with_dependents(settings, flavors, &direct);
    let dependents: BTreeSet<String> = all
        .iter()
        .filter(|f| !changed.contains(*f))
        .cloned()
        .collect();
    let mut reason = format!("changes under the flavors {}", some_of(&changed));
    if !dependents.is_empty() {
        reason.push_str(&format!(
            ", and the flavors that depend on them ({})",
            some_of(&dependents)
        ));
    }
    Selection::Some {
        flavors: all,
        reason,
    }
}

/// Whether `path` is `dir` or lies under it.
fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The repository path a symbolic link at `link` with target `target` points to, or `None`
/// when the target is absolute or climbs above the repository root.
pub fn resolve_link(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').filter(|p| !p.is_empty()).collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}
