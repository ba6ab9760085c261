//! What the webhook reads from GitHub, through the one GitHub client: the flavors at a commit
//! (git trees and blobs, so the answer is exactly the commit's content, symbolic links
//! included), a pull request's changed files, the default branch and a ref's commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use flavor_ci::flavors::{FlavorError, FlavorSet, is_candidate};
use flavor_ci::selection::Changes;
use flavor_ci::settings::Settings;
use flavor_ci::webhook::push::{LinkedFlavor, resolve_link};
use flavor_ci_aws::github::checks::{CheckRun, CheckRuns};
use flavor_ci_aws::github::{Answer, Auth, Call, CallError, GitHubClient, Timing};
use flavor_ci_aws::github_status::{CommitStatus, PostError, StatusPoster};
use serde::Deserialize;

use crate::fault::Fault;
use tokio::task::JoinSet;

/// One request may take 4 s, both attempts together 6 s: the delivery is answered within its
/// 8 s, well before GitHub gives up at 10.
pub(crate) const TIMING: Timing = Timing {
    attempt: Duration::from_secs(4),
    total: Duration::from_secs(6),
};
/// How many links a path may pass through, like the kernel's limit on nested links.
const MAX_LINK_DEPTH: u8 = 8;
use flavor_ci::inputs::{MODE_LINK, MODE_SUBMODULE, MODE_TREE, TreeEntry, Trees};

/// A failed API call, with the HTTP status the webhook answers for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    /// A wrong answer (upstream), GitHub rate limiting or unavailable, or a commit that
    /// cannot be built.
    pub(crate) fault: Fault,
    pub(crate) message: String,
    /// The status GitHub answered with, or 0 when it did not answer.
    pub(crate) github_status: u16,
}

/// Why the flavors could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ListError {
    #[error("{0}")]
    Api(#[from] ApiError),
    /// The repository's content is the problem (422).
    #[error("{0}")]
    Repository(String),
}

/// What the webhook asks of GitHub: the port the batch step and the adapters read through
/// (GitHub's REST API in the function, a stand-in in tests).
pub(crate) trait Repository: Send + Sync + std::fmt::Debug + 'static {
    /// The flavors at `commit` (whose root tree is `tree`, when known).
    fn flavors(
        &self,
        repo: &str,
        commit: &str,
        tree: Option<&str>,
        settings: &Settings,
    ) -> impl Future<Output = Result<Listing, ListError>> + Send;

    /// The files `base...head` changes.
    fn changed_files(
        &self,
        repo: &str,
        base: &str,
        head: &str,
    ) -> impl Future<Output = Result<Changes, ApiError>> + Send;

    /// The repository's default branch.
    fn default_branch(&self, repo: &str) -> impl Future<Output = Result<String, ApiError>> + Send;

    /// The commit `full_ref` points at.
    fn ref_commit(
        &self,
        repo: &str,
        full_ref: &str,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;

    /// Posts a commit status; `None` when there is no token to post with.
    fn post_status(
        &self,
        repo: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> impl Future<Output = Option<Result<(), PostError>>> + Send;

    /// Whether the stack reports with check runs (a GitHub App).
    fn writes_checks(&self) -> bool;

    /// Writes a check run: updates check run `id`, or creates one. Its id.
    fn write_check(
        &self,
        repo: &str,
        id: Option<u64>,
        run: &CheckRun,
    ) -> impl Future<Output = Result<u64, String>> + Send;

    /// The permission `user` has on `repo`, as GitHub says (`admin`, `maintain`, `write`,
    /// `triage`, `read`, `none`): who may approve a fork's build is never read from a payload.
    fn permission(
        &self,
        repo: &str,
        user: &str,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;

    /// The App installation a delivery came through.
    fn installation(&self, id: u64) -> impl Future<Output = ()> + Send;
}

/// One attempt of a delivery, as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct HookDelivery {
    pub(crate) id: u64,
    pub(crate) guid: String,
    pub(crate) delivered_at: String,
    #[serde(default)]
    pub(crate) status_code: u16,
    #[serde(default)]
    pub(crate) event: String,
    #[serde(default)]
    pub(crate) repository_id: Option<u64>,
}

/// The App's own endpoints the sweep needs (GitHub's REST API, or a stand-in in tests).
pub(crate) trait AppHooks: Send + Sync {
    /// Whether the stack has a GitHub App whose deliveries can be listed.
    fn has_app(&self) -> bool;

    /// The repository's numeric id, which deliveries name.
    fn repository_id(&self, repo: &str) -> impl Future<Output = Result<u64, ApiError>> + Send;

    /// One page of the App's deliveries, newest first, and the next page's path.
    fn deliveries(
        &self,
        page: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<HookDelivery>, Option<String>), ApiError>> + Send;

    /// Asks GitHub to deliver attempt `id` again.
    fn redeliver(&self, id: u64) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// The GitHub API as the webhook reads it, authenticated by `A`.
#[derive(Debug)]
pub(crate) struct GitHub<A> {
    client: GitHubClient,
    statuses: StatusPoster,
    checks: CheckRuns,
    auth: Arc<A>,
}

impl<A> Clone for GitHub<A> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            statuses: self.statuses.clone(),
            checks: self.checks.clone(),
            auth: self.auth.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Tree {
    #[serde(default)]
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Debug, Deserialize)]
struct Blob {
    content: String,
    #[serde(default)]
    encoding: String,
}

#[derive(Debug, Deserialize)]
struct CommitTree {
    sha: String,
}

#[derive(Debug, Deserialize)]
struct GitCommit {
    tree: CommitTree,
    #[serde(default)]
    message: String,
}

/// What reading the repository needs of the token.
const READ: &str = "Contents: read";

impl<A: Auth + 'static> GitHub<A> {
    pub(crate) fn new(client: GitHubClient, auth: A) -> Self {
        Self {
            statuses: StatusPoster::new(client.clone()),
            checks: CheckRuns::new(client.clone()),
            client,
            auth: Arc::new(auth),
        }
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, ApiError> {
        let fail = |fault: Fault, message: String| ApiError {
            fault,
            message,
            github_status: 0,
        };
        let call = Call::get(path, READ);
        let answer = match self.client.send(&*self.auth, &call).await {
            Ok(answer) => answer,
            Err(CallError::Auth(e)) => {
                return Err(fail(
                    Fault::Unavailable,
                    format!("cannot read the GitHub token: {e}"),
                ));
            }
            Err(e @ CallError::Transport(..)) => {
                return Err(fail(
                    Fault::Unavailable,
                    format!("{e}; check GITHUB_API_URL and the network path to GitHub"),
                ));
            }
            Err(e @ CallError::Timeout(..)) => {
                return Err(fail(
                    Fault::Unavailable,
                    format!("{e}; GitHub may be slow, redeliver the push later"),
                ));
            }
            Err(e) => return Err(fail(Fault::Upstream, e.to_string())),
        };
        let status = answer.status;
        if answer.is_success() {
            return serde_json::from_slice(&answer.body).map_err(|e| {
                fail(
                    Fault::Upstream,
                    format!(
                        "{} answered {status} with a body that is not the expected JSON: {e}",
                        answer.call
                    ),
                )
            });
        }
        Err(status_error(&answer))
    }

    /// The root tree of `commit`, and its message.
    async fn commit_tree(&self, repo: &str, commit: &str) -> Result<(String, String), ApiError> {
        let c: GitCommit = self
            .get(&format!("/repos/{repo}/git/commits/{commit}"))
            .await?;
        Ok((c.tree.sha, c.message))
    }

    async fn tree(&self, repo: &str, sha: &str) -> Result<Tree, ApiError> {
        self.get(&format!("/repos/{repo}/git/trees/{sha}")).await
    }

    /// A link's target: the blob's bytes as text.
    async fn link_target(&self, repo: &str, sha: &str) -> Result<String, ApiError> {
        let blob: Blob = self.get(&format!("/repos/{repo}/git/blobs/{sha}")).await?;
        let bad = |why: &str| ApiError {
            fault: Fault::Upstream,
            message: format!("GitHub's blob {sha} in {repo} {why}"),
            github_status: 200,
        };
        if blob.encoding != "base64" {
            return Err(bad("is not base64-encoded"));
        }
        let compact: String = blob.content.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| bad("holds invalid base64"))?;
        String::from_utf8(bytes).map_err(|_| bad("is a link target that is not UTF-8"))
    }
}

/// GitHub lists at most this many changed files in a comparison.
pub(crate) const MAX_COMPARE_FILES: usize = 300;

impl<A: Auth + 'static> Repository for GitHub<A> {
    async fn flavors(
        &self,
        repo: &str,
        commit: &str,
        tree: Option<&str>,
        settings: &Settings,
    ) -> Result<Listing, ListError> {
        list_flavors(self, repo, commit, tree, settings).await
    }

    async fn post_status(
        &self,
        repo: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> Option<Result<(), PostError>> {
        if !self.auth.has_token() {
            return None;
        }
        Some(self.statuses.post(&*self.auth, repo, sha, status).await)
    }

    fn writes_checks(&self) -> bool {
        self.auth.is_app()
    }

    async fn write_check(
        &self,
        repo: &str,
        id: Option<u64>,
        run: &CheckRun,
    ) -> Result<u64, String> {
        let written = match id {
            Some(id) => self
                .checks
                .update(&*self.auth, repo, id, run)
                .await
                .map(|()| id),
            None => self.checks.create(&*self.auth, repo, run).await,
        };
        written.map_err(|e| e.to_string())
    }

    async fn permission(&self, repo: &str, user: &str) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Permission {
            permission: String,
        }
        let p: Permission = self
            .get(&format!("/repos/{repo}/collaborators/{user}/permission"))
            .await?;
        Ok(p.permission)
    }

    async fn installation(&self, id: u64) {
        self.auth.installation_hint(id).await;
    }

    /// The repository's default branch.
    async fn default_branch(&self, repo: &str) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Repo {
            default_branch: String,
        }
        let r: Repo = self.get(&format!("/repos/{repo}")).await?;
        Ok(r.default_branch)
    }

    /// The commit `full_ref` (`refs/heads/…`, `refs/tags/…`) points at, through annotated tags.
    async fn ref_commit(&self, repo: &str, full_ref: &str) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Target {
            #[serde(rename = "type")]
            kind: String,
            sha: String,
        }
        #[derive(Deserialize)]
        struct Ref {
            object: Target,
        }
        let name = full_ref.strip_prefix("refs/").unwrap_or(full_ref);
        let mut target = self
            .get::<Ref>(&format!("/repos/{repo}/git/ref/{name}"))
            .await?
            .object;
        // An annotated tag points at a tag object; follow it (a tag of a tag, a few levels).
        for _ in 0..4 {
            if target.kind != "tag" {
                break;
            }
            target = self
                .get::<Ref>(&format!("/repos/{repo}/git/tags/{}", target.sha))
                .await?
                .object;
        }
        if target.kind != "commit" {
            return Err(ApiError {
                fault: Fault::Unbuildable,
                message: format!("{full_ref} points at a {}, not a commit", target.kind),
                github_status: 200,
            });
        }
        Ok(target.sha)
    }

    /// The files a pull request changes: those changed between the merge base of `base` and
    /// `head`, and `head` (the compare API's `base...head`). GitHub lists the changed files, at
    /// most 300, with the first page of a comparison (later pages only add commits), so one
    /// page of one commit is asked for. When the list may be incomplete (300 files, no list) or
    /// GitHub cannot compare the two (too large, 406 or 422), the changes are unknown and every
    /// flavor builds, for that reason.
    async fn changed_files(&self, repo: &str, base: &str, head: &str) -> Result<Changes, ApiError> {
        #[derive(Deserialize)]
        struct Compare {
            files: Option<Vec<ChangedFile>>,
        }
        #[derive(Deserialize)]
        struct ChangedFile {
            filename: String,
            previous_filename: Option<String>,
        }
        let path = format!("/repos/{repo}/compare/{base}...{head}?per_page=1&page=1");
        let compare: Compare = match self.get(&path).await {
            Ok(c) => c,
            Err(e) if matches!(e.github_status, 406 | 422) => {
                return Ok(Changes::Unknown(format!(
                    "GitHub cannot list the changes between {base} and {head} ({}): building every flavor",
                    e.message
                )));
            }
            Err(e) => return Err(e),
        };
        let Some(files) = compare.files else {
            return Ok(Changes::Unknown(
                "GitHub's comparison came without its list of changed files: building every flavor"
                    .into(),
            ));
        };
        if files.len() >= MAX_COMPARE_FILES {
            return Ok(Changes::Unknown(format!(
                "GitHub lists at most {MAX_COMPARE_FILES} changed files and this pull request changes {} or more, so the list may be incomplete: building every flavor",
                files.len()
            )));
        }
        Ok(Changes::Paths(
            files
                .into_iter()
                .flat_map(|f| std::iter::once(f.filename).chain(f.previous_filename))
                .collect(),
        ))
    }
}

/// The error for a non-2xx answer.
fn status_error(answer: &Answer) -> ApiError {
    let (call, status, with_token) = (&answer.call, answer.status, answer.with_token);
    let header = |name: &str| answer.header(name).map(str::to_owned);
    let github_message = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let said = if github_message.is_empty() {
        String::new()
    } else {
        format!(" ({github_message})")
    };
    if answer.rate_limited() {
        let when = if let Some(after) = header("retry-after") {
            format!("retry after {after} s")
        } else if let Some(reset) = header("x-ratelimit-reset").and_then(|r| r.parse::<u64>().ok())
        {
            let now = flavor_ci_aws::undo::now_ms() / 1000;
            format!("the limit resets in {} s", reset.saturating_sub(now))
        } else {
            "retry later".to_owned()
        };
        let fix = if with_token {
            ""
        } else {
            "; set GITHUB_TOKEN_SECRET_ID for a higher limit"
        };
        return ApiError {
            fault: Fault::Unavailable,
            message: format!(
                "GitHub's API rate limit is exhausted{said}: {when}, then redeliver the push{fix}"
            ),
            github_status: status,
        };
    }
    let (answer, message) = match status {
        401 => (
            Fault::Upstream,
            format!(
                "GitHub rejected the token for {call} (401){said}: store a valid token in the GitHub token secret"
            ),
        ),
        403 | 404 => (
            Fault::Upstream,
            format!(
                "{call} answered {status}{said}: the commit does not exist or the token cannot read the repository; give the token read access to its contents"
            ),
        ),
        500..=599 => (
            Fault::Unavailable,
            format!(
                "GitHub answered {status} for {call}{said}: GitHub is unavailable; redeliver the push later"
            ),
        ),
        _ => (
            Fault::Upstream,
            format!("GitHub answered {status} for {call}{said}"),
        ),
    };
    ApiError {
        fault: answer,
        message,
        github_status: status,
    }
}

/// The flavors at a commit, and where linked flavors keep their content.
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    pub(crate) flavors: FlavorSet,
    pub(crate) links: Vec<LinkedFlavor>,
    /// API calls made.
    pub(crate) calls: usize,
    /// The trees read on the way, for the flavors' input keys.
    pub(crate) trees: Trees,
    /// The commit's message, when it was read (the delivery did not name the tree).
    pub(crate) message: Option<String>,
}

/// What a repository path is at the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Tree(String),
    /// A git submodule (or a path inside one): its content is not in this repository.
    Submodule(String),
    File,
    Missing(String),
}

/// Walks one commit's trees, fetching each tree once.
struct Walker<'a, A> {
    api: &'a GitHub<A>,
    repo: &'a str,
    root: String,
    trees: HashMap<String, Arc<Vec<TreeEntry>>>,
    calls: usize,
}

impl<A: Auth + 'static> Walker<'_, A> {
    async fn tree(&mut self, sha: &str) -> Result<Arc<Vec<TreeEntry>>, ListError> {
        if let Some(t) = self.trees.get(sha) {
            return Ok(t.clone());
        }
        self.calls += 1;
        let tree = self.api.tree(self.repo, sha).await?;
        if tree.truncated {
            return Err(ListError::Repository(format!(
                "GitHub truncated the listing of tree {sha}: the directory is too large to list"
            )));
        }
        let entries = Arc::new(tree.tree);
        self.trees.insert(sha.to_owned(), entries.clone());
        Ok(entries)
    }

    /// The tree of the flavors directory `dir` (`shown` in messages) at `commit`.
    async fn flavors_dir(
        &mut self,
        dir: &str,
        shown: &str,
        commit: &str,
    ) -> Result<String, ListError> {
        match self.lookup(dir, 0).await? {
            (Found::Tree(sha), _) => Ok(sha),
            (Found::Missing(why), at) => Err(ListError::Repository(format!(
                "no flavors directory {shown} at commit {commit}: {at} {why}; create it or correct `flavors-dir` in the deployed settings"
            ))),
            (Found::Submodule(at), _) => Err(ListError::Repository(format!(
                "the flavors directory {shown} is inside the submodule {at}; point `flavors-dir` at a directory of this repository"
            ))),
            (Found::File, _) => Err(ListError::Repository(format!(
                "{shown} is a file at commit {commit}, not a directory; correct `flavors-dir`"
            ))),
        }
    }

    /// Follows `path` from the root, through links, to what it names.
    async fn lookup(&mut self, path: &str, depth: u8) -> Result<(Found, String), ListError> {
        if depth > MAX_LINK_DEPTH {
            return Ok((
                Found::Missing(format!("passes through more than {MAX_LINK_DEPTH} links")),
                path.into(),
            ));
        }
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut sha = self.root.clone();
        for (i, part) in parts.iter().enumerate() {
            let here = parts[..=i].join("/");
            let entries = self.tree(&sha).await?;
            let Some(entry) = entries.iter().find(|e| e.name == *part).cloned() else {
                return Ok((Found::Missing("does not exist".into()), here));
            };
            let last = i + 1 == parts.len();
            match entry.mode.as_str() {
                MODE_TREE => sha = entry.id,
                MODE_SUBMODULE => return Ok((Found::Submodule(here.clone()), here)),
                MODE_LINK => {
                    self.calls += 1;
                    let target = self.api.link_target(self.repo, &entry.id).await?;
                    let Some(mut resolved) = resolve_link(&here, &target) else {
                        return Ok((Found::Missing("leaves the repository".into()), here));
                    };
                    for rest in &parts[i + 1..] {
                        resolved.push('/');
                        resolved.push_str(rest);
                    }
                    return Box::pin(self.lookup(&resolved, depth + 1)).await;
                }
                _ if last => return Ok((Found::File, here)),
                _ => return Ok((Found::Missing("is not a directory".into()), here)),
            }
        }
        Ok((Found::Tree(sha), parts.join("/")))
    }
}

/// Lists the flavors in the settings' `flavors-dir` at `commit` of `repo` (`owner/name`), by
/// the settings' rules. `tree` is the commit's root tree when the push names it, which saves a
/// call.
async fn list_flavors<A: Auth + 'static>(
    api: &GitHub<A>,
    repo: &str,
    commit: &str,
    tree: Option<&str>,
    settings: &Settings,
) -> Result<Listing, ListError> {
    let (dir, exclude, style) = (
        settings.flavors_dir.as_str(),
        settings.exclude.as_slice(),
        settings.batch.identifier_style,
    );
    let mut calls = 0;
    let (root, message) = match tree {
        Some(t) => (t.to_owned(), None),
        None => {
            calls += 1;
            let (root, message) = api.commit_tree(repo, commit).await?;
            (root, Some(message))
        }
    };
    let mut walker = Walker {
        api,
        repo,
        root,
        trees: HashMap::new(),
        calls,
    };
    let dir = dir.trim_matches('/');
    let dir = if dir == "." { "" } else { dir };
    let shown = if dir.is_empty() {
        "the repository root"
    } else {
        dir
    };
    let dir_sha = walker.flavors_dir(dir, shown, commit).await?;
    let entries = walker.tree(&dir_sha).await?;
    let path_of = |name: &str| {
        if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{dir}/{name}")
        }
    };
    let mut names = Vec::new();
    let mut link_entries = Vec::new();
    for e in entries.iter().filter(|e| is_candidate(&e.name, exclude)) {
        match e.mode.as_str() {
            MODE_TREE | MODE_SUBMODULE => names.push(e.name.clone()),
            MODE_LINK => link_entries.push(e.clone()),
            _ => {}
        }
    }
    let mut targets = link_targets(api, repo, &link_entries).await?;
    walker.calls += targets.len();
    targets.sort();
    let mut links = Vec::new();
    let mut errors = Vec::new();
    for (name, target) in targets {
        let link = path_of(&name);
        let broken = |reason: &str| FlavorError::BrokenLinkAtCommit {
            path: link.clone(),
            target: target.clone(),
            reason: reason.into(),
        };
        let Some(resolved) = resolve_link(&link, &target) else {
            errors.push(broken("leaves the repository"));
            continue;
        };
        match walker.lookup(&resolved, 1).await? {
            (Found::Tree(_), at) | (Found::Submodule(at), _) => {
                names.push(name.clone());
                links.push(LinkedFlavor {
                    flavor: name,
                    path: at,
                });
            }
            (Found::File, _) => {}
            (Found::Missing(why), _) => errors.push(broken(&why)),
        }
    }
    let flavors = FlavorSet::from_listing(shown, names, exclude, style, errors)
        .map_err(|e| ListError::Repository(e.to_string()))?;
    let mut trees = Trees::new(walker.root);
    trees.trees = walker.trees;
    Ok(Listing {
        flavors,
        links,
        calls: walker.calls,
        trees,
        message,
    })
}

/// The targets of the links `entries` (fetched together: they are independent), by name.
async fn link_targets<A: Auth + 'static>(
    api: &GitHub<A>,
    repo: &str,
    entries: &[TreeEntry],
) -> Result<Vec<(String, String)>, ListError> {
    let mut fetches = JoinSet::new();
    for e in entries {
        let (api, repo, sha) = (api.clone(), repo.to_owned(), e.id.clone());
        let name = e.name.clone();
        fetches.spawn(async move { (name, api.link_target(&repo, &sha).await) });
    }
    let mut targets = Vec::with_capacity(entries.len());
    while let Some(joined) = fetches.join_next().await {
        let (name, target) = joined.map_err(|e| ApiError {
            fault: Fault::Upstream,
            message: format!("a link lookup failed: {e}"),
            github_status: 0,
        })?;
        targets.push((name, target?));
    }
    Ok(targets)
}

#[cfg(test)]
pub(crate) mod stand_in {
    //! GitHub in memory, for tests of the webhook's decisions: fixed flavors, comparisons and
    //! refs, and the statuses posted.
    use std::collections::{BTreeSet, HashMap};
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub(crate) struct StandIn {
        /// The flavors at every commit.
        pub(crate) flavors: Vec<String>,
        /// What every comparison lists.
        pub(crate) changed: Vec<String>,
        pub(crate) default_branch: String,
        /// Full ref → commit.
        pub(crate) refs: HashMap<String, String>,
        /// Whether there is a token to post statuses with.
        pub(crate) token: bool,
        /// The statuses posted: commit, status.
        pub(crate) statuses: Mutex<Vec<(String, CommitStatus)>>,
        /// Whether it is a GitHub App (check runs).
        pub(crate) app: bool,
        /// The check runs written: the id, and the run.
        pub(crate) checks: Mutex<Vec<(u64, CheckRun)>>,
        /// Each user's permission on the repository.
        pub(crate) permissions: HashMap<String, String>,
        /// The App's delivery attempts, and those asked for again.
        pub(crate) deliveries: Vec<HookDelivery>,
        pub(crate) redelivered: Mutex<Vec<u64>>,
        /// Each flavor's content version at every commit (`"0"` unless set): its tree id.
        pub(crate) versions: Mutex<HashMap<String, String>>,
        /// The listed commit's message.
        pub(crate) message: Option<String>,
    }

    impl StandIn {
        /// The trees of a repository holding the flavors (at their versions) under `flavors/`
        /// and one shared file.
        fn trees(&self, dir: &str) -> Trees {
            let versions = self.versions.lock().unwrap();
            let entry = |name: &str, mode: &str, id: String| TreeEntry {
                name: name.into(),
                mode: mode.into(),
                id,
            };
            let mut flavors: Vec<TreeEntry> = self
                .flavors
                .iter()
                .map(|f| {
                    let v = versions.get(f).map_or("0", String::as_str);
                    entry(f, MODE_TREE, format!("tree-{f}-{v}"))
                })
                .collect();
            flavors.sort_by(|a, b| a.name.cmp(&b.name));
            let dir_id = format!("dir-{}", flavors.len());
            let mut trees = Trees::new("root");
            trees.insert(dir_id.clone(), Arc::new(flavors));
            trees.insert(
                "root",
                Arc::new(vec![
                    entry("build.sh", "100644", "blob-build".into()),
                    entry(dir.trim_matches('/'), MODE_TREE, dir_id),
                ]),
            );
            trees
        }
    }

    impl AppHooks for StandIn {
        fn has_app(&self) -> bool {
            self.app
        }

        async fn repository_id(&self, _repo: &str) -> Result<u64, ApiError> {
            Ok(7)
        }

        async fn deliveries(
            &self,
            page: Option<&str>,
        ) -> Result<(Vec<HookDelivery>, Option<String>), ApiError> {
            // Two pages: the first half, then the rest.
            let half = self.deliveries.len() / 2;
            Ok(match page {
                None => (self.deliveries[..half].to_vec(), Some("/page-2".into())),
                Some(_) => (self.deliveries[half..].to_vec(), None),
            })
        }

        async fn redeliver(&self, id: u64) -> Result<(), ApiError> {
            self.redelivered.lock().unwrap().push(id);
            Ok(())
        }
    }

    impl Repository for StandIn {
        async fn flavors(
            &self,
            _repo: &str,
            _commit: &str,
            _tree: Option<&str>,
            settings: &Settings,
        ) -> Result<Listing, ListError> {
            let flavors = FlavorSet::from_listing(
                &settings.flavors_dir,
                self.flavors.clone(),
                &settings.exclude,
                settings.batch.identifier_style,
                Vec::new(),
            )
            .map_err(|e| ListError::Repository(e.to_string()))?;
            Ok(Listing {
                flavors,
                links: Vec::new(),
                calls: 1,
                trees: self.trees(&settings.flavors_dir),
                message: self.message.clone(),
            })
        }

        async fn changed_files(
            &self,
            _repo: &str,
            _base: &str,
            _head: &str,
        ) -> Result<Changes, ApiError> {
            Ok(Changes::Paths(
                self.changed.iter().cloned().collect::<BTreeSet<_>>(),
            ))
        }

        async fn default_branch(&self, _repo: &str) -> Result<String, ApiError> {
            Ok(self.default_branch.clone())
        }

        async fn ref_commit(&self, _repo: &str, full_ref: &str) -> Result<String, ApiError> {
            self.refs.get(full_ref).cloned().ok_or_else(|| ApiError {
                fault: Fault::Upstream,
                message: format!("GET {full_ref} answered 404"),
                github_status: 404,
            })
        }

        async fn post_status(
            &self,
            _repo: &str,
            sha: &str,
            status: &CommitStatus,
        ) -> Option<Result<(), PostError>> {
            if !self.token {
                return None;
            }
            if let Ok(mut posted) = self.statuses.lock() {
                posted.push((sha.to_owned(), status.clone()));
            }
            Some(Ok(()))
        }

        fn writes_checks(&self) -> bool {
            self.app
        }

        async fn write_check(
            &self,
            _repo: &str,
            id: Option<u64>,
            run: &CheckRun,
        ) -> Result<u64, String> {
            run.validate().map_err(|e| e.to_string())?;
            let mut checks = self.checks.lock().unwrap();
            let id = id.unwrap_or(1000 + checks.len() as u64);
            checks.push((id, run.clone()));
            Ok(id)
        }

        async fn permission(&self, _repo: &str, user: &str) -> Result<String, ApiError> {
            Ok(self
                .permissions
                .get(user)
                .cloned()
                .unwrap_or_else(|| "none".into()))
        }

        async fn installation(&self, _id: u64) {}
    }
}

/// The App's own endpoints, authenticated with its JWT (only a stack with the App has them).
impl<K: flavor_ci_aws::secrets::SecretSource> AppHooks
    for GitHub<flavor_ci_aws::github::app::Credentials<K>>
{
    fn has_app(&self) -> bool {
        self.auth.is_app()
    }

    async fn repository_id(&self, repo: &str) -> Result<u64, ApiError> {
        #[derive(Deserialize)]
        struct Repo {
            id: u64,
        }
        let r: Repo = self.get(&format!("/repos/{repo}")).await?;
        Ok(r.id)
    }

    async fn deliveries(
        &self,
        page: Option<&str>,
    ) -> Result<(Vec<HookDelivery>, Option<String>), ApiError> {
        let path = page.unwrap_or("/app/hook/deliveries?per_page=100");
        let answer = self.as_app(Call::get(path, APP_HOOKS)).await?;
        deliveries_page(&answer, self.client.base())
    }

    async fn redeliver(&self, id: u64) -> Result<(), ApiError> {
        let path = format!("/app/hook/deliveries/{id}/attempts");
        self.as_app(Call::post(&path, b"", APP_HOOKS))
            .await
            .map(|_| ())
    }
}

/// What the App's hook endpoints need: its JWT (no installation permission).
const APP_HOOKS: &str = "the App's own JWT (the App's webhook deliveries)";

impl<K: flavor_ci_aws::secrets::SecretSource> GitHub<flavor_ci_aws::github::app::Credentials<K>> {
    /// Sends `call` as the App itself; a refusal is an error naming GitHub's answer.
    async fn as_app(&self, call: Call<'_>) -> Result<Answer, ApiError> {
        let fail = |fault: Fault, message: String, github_status: u16| ApiError {
            fault,
            message,
            github_status,
        };
        let flavor_ci_aws::github::app::Credentials::App(app) = &*self.auth else {
            return Err(fail(
                Fault::Misconfigured,
                "the App's endpoints need the GitHub App (CommitStatuses=github-app)".into(),
                0,
            ));
        };
        let jwt = app.app().await.map_err(|e| {
            fail(
                Fault::Unavailable,
                format!("cannot authenticate as the App: {e}"),
                0,
            )
        })?;
        send_checked(&self.client, jwt, &call, "").await
    }
}

/// Sends `call` with `auth`; an answer other than 2xx is an error naming GitHub's answer and
/// `hint`.
pub(crate) async fn send_checked(
    client: &GitHubClient,
    auth: &impl Auth,
    call: &Call<'_>,
    hint: &str,
) -> Result<Answer, ApiError> {
    let answer = client.send(auth, call).await.map_err(|e| ApiError {
        fault: Fault::Unavailable,
        message: e.to_string(),
        github_status: 0,
    })?;
    if answer.is_success() {
        return Ok(answer);
    }
    Err(ApiError {
        fault: Fault::Upstream,
        message: format!(
            "{} answered {}: {}{hint}",
            answer.call,
            answer.status,
            answer.message()
        ),
        github_status: answer.status,
    })
}

/// One page of a deliveries listing (the App's or a repository hook's) and the next page's
/// path.
pub(crate) fn deliveries_page(
    answer: &Answer,
    base: &str,
) -> Result<(Vec<HookDelivery>, Option<String>), ApiError> {
    let listed = serde_json::from_slice(&answer.body).map_err(|e| ApiError {
        fault: Fault::Upstream,
        message: format!(
            "{} answered with a body that is not a list of deliveries: {e}",
            answer.call
        ),
        github_status: answer.status,
    })?;
    let next = answer.header("link").and_then(|l| next_page(l, base));
    Ok((listed, next))
}

/// The path of the `rel="next"` page in a `Link` header, relative to the API's base.
pub(crate) fn next_page(link: &str, base: &str) -> Option<String> {
    let next = link.split(',').find(|part| part.contains("rel=\"next\""))?;
    let url = next.split_once('<')?.1.split_once('>')?.0;
    if let Some(path) = url.strip_prefix(base.trim_end_matches('/')) {
        return Some(path.to_owned());
    }
    // Another spelling of the host: the path and query after it.
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme.find('/').map(|i| after_scheme[i..].to_owned())
}

#[cfg(test)]
mod link_tests {
    use super::next_page;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let link = r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12>; rel="next", <https://api.github.com/app/hook/deliveries?per_page=100>; rel="first""#;
        assert_eq!(
            next_page(link, "https://api.github.com").as_deref(),
            Some("/app/hook/deliveries?per_page=100&cursor=v1_12")
        );
        assert_eq!(
            next_page(link, "https://ghe.example.com/api/v3").as_deref(),
            Some("/app/hook/deliveries?per_page=100&cursor=v1_12")
        );
        assert_eq!(
            next_page(r#"<x>; rel="first""#, "https://api.github.com"),
            None
        );
    }
}
