//! A GitHub `push` delivery: what was pushed, where it goes, and which flavors it rebuilds.

use serde::Deserialize;

use crate::flavors::FlavorSet;
use crate::glob::Glob;
use crate::selection::Changes;
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
    /// The App installation that received the delivery (deliveries to a GitHub App).
    #[serde(default)]
    pub installation: Option<Installation>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Commit {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub message: String,
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
    pub message: String,
    #[serde(default)]
    pub tree_id: Option<String>,
}

impl Push {
    /// Whether a pushed commit's message asks for a fresh build (`flavor-ci: rebuild`).
    pub fn asks_rebuild(&self) -> bool {
        self.head_commit
            .iter()
            .map(|h| h.message.as_str())
            .chain(self.commits.iter().map(|c| c.message.as_str()))
            .any(crate::inputs::asks_rebuild)
    }
}

/// The prefix of the branches GitHub's merge queue creates (`gh-readonly-queue/<base>/pr-<N>-<sha>`).
pub const QUEUE_BRANCH_PREFIX: &str = "refs/heads/gh-readonly-queue/";

/// Whether `git_ref` is one of the merge queue's temporary branches: its merge group is built,
/// never the branch.
pub fn is_queue_branch(git_ref: &str) -> bool {
    git_ref.starts_with(QUEUE_BRANCH_PREFIX)
}

/// The App installation a delivery came through (deliveries to a GitHub App).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Installation {
    pub id: u64,
}

/// A GitHub account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    /// `owner/name`.
    pub full_name: String,
    /// The default branch, when the payload names it (push payloads do).
    #[serde(default)]
    pub default_branch: Option<String>,
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

    /// What the push changed: the paths its commits list, or why that list cannot be trusted
    /// (a new branch or tag, a forced push, a list cut short or empty).
    pub fn changes(&self) -> Changes {
        if self.created {
            let what = if self.git_ref.starts_with("refs/tags/") {
                "a new tag"
            } else {
                "a new branch"
            };
            return Changes::Unknown(format!("{what}: building every flavor"));
        }
        if self.forced {
            return Changes::Unknown("a forced push: building every flavor".into());
        }
        if self.commits.len() >= MAX_LISTED_COMMITS {
            return Changes::Unknown(format!(
                "the push lists {} commits, the most GitHub sends, so its changes may be incomplete: building every flavor",
                self.commits.len()
            ));
        }
        if self.commits.is_empty() {
            return Changes::Unknown(
                "the push lists no commits, so its changes are unknown: building every flavor"
                    .into(),
            );
        }
        Changes::Paths(
            self.commits
                .iter()
                .flat_map(|c| c.added.iter().chain(&c.removed).chain(&c.modified))
                .cloned()
                .collect(),
        )
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
    if is_queue_branch(git_ref) {
        return Route::Ignore {
            reason: format!(
                "{git_ref} is a merge queue branch: its merge group is built (merge_group events), never the branch"
            ),
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

pub use crate::selection::{LinkedFlavor, Selection};

/// Decides which flavors `push` rebuilds: the paths its commits list (see
/// [`Push::changes`]), chosen from as every way a build starts chooses
/// ([`crate::selection::select`]).
pub fn select(
    push: &Push,
    settings: &Settings,
    flavors: &FlavorSet,
    links: &[LinkedFlavor],
    ignored: &[Glob],
) -> Selection {
    crate::selection::select(&push.changes(), settings, flavors, links, ignored)
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
