//! The flavors' input keys at the planned commit, from the local repository's git objects:
//! the same trees the webhook reads from GitHub, so the same keys (`flavor_ci::inputs`). The
//! working tree is keyed as the commit it would make: its files are hashed into git's object
//! store through a temporary index, which leaves the real index and the branch untouched.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use flavor_ci::inputs::{TreeEntry, Trees};
use flavor_ci::selection::LinkedFlavor;

use super::checkout::{git, git_with};
use crate::failure::Failure;

/// The root tree of what is planned: commit `rev`, or the working tree; `prefix` is the
/// planned directory's path in its repository ("" at the root).
pub(super) fn root_tree(repo: &Path, prefix: &str, rev: Option<&str>) -> Result<String, Failure> {
    let full = match rev {
        Some(rev) => text(&git(repo, &["rev-parse", &format!("{rev}^{{tree}}")])?),
        None => worktree_tree(repo)?,
    };
    if prefix.is_empty() {
        return Ok(full);
    }
    Ok(text(&git(
        repo,
        &[
            "rev-parse",
            &format!("{full}:{}", prefix.trim_end_matches('/')),
        ],
    )?))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

/// The tree a commit of the whole working tree (untracked files included, ignored ones not)
/// would have.
fn worktree_tree(repo: &Path) -> Result<String, Failure> {
    let index = text(&git(
        repo,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
    )?);
    let temp = std::env::temp_dir().join(format!("flavor-ci-index-{}", std::process::id()));
    // Starting from the real index keeps git's record of unchanged files: only changed ones
    // are hashed again.
    if Path::new(&index).exists() {
        std::fs::copy(&index, &temp)
            .map_err(|e| Failure::io(&temp, "copy the git index to", &e))?;
    }
    let run = |args: &[&str]| git_with(repo, args, Some(&temp));
    let tree = run(&["add", "-A", "--", ":/"]).and_then(|_| run(&["write-tree"]));
    let _ = std::fs::remove_file(&temp);
    Ok(text(&tree?))
}

/// The trees the keys need, read from git: the root, the way to the flavors directory and the
/// directory itself, and the way to each linked flavor's target.
pub(super) fn read_trees(
    repo: &Path,
    root: &str,
    flavors_dir: &str,
    links: &[LinkedFlavor],
) -> Result<Trees, Failure> {
    let mut trees = Trees::new(root);
    let mut cache: HashMap<String, Arc<Vec<TreeEntry>>> = HashMap::new();
    let dir = flavors_dir.trim_matches('/');
    let dir = if dir == "." { "" } else { dir };
    let mut ways: Vec<(String, bool)> = vec![(dir.to_owned(), true)];
    ways.extend(links.iter().map(|l| (l.path.clone(), false)));
    for (path, inclusive) in ways {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut id = root.to_owned();
        let mut entries = ls(repo, &id, &mut cache)?;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let Some(next) = entries.iter().find(|e| e.name == *part && e.is_tree()) else {
                break;
            };
            if last && !inclusive {
                break;
            }
            id.clone_from(&next.id);
            entries = ls(repo, &id, &mut cache)?;
        }
    }
    trees.trees = cache;
    Ok(trees)
}

/// One tree's entries (`git ls-tree`), read once.
fn ls(
    repo: &Path,
    id: &str,
    cache: &mut HashMap<String, Arc<Vec<TreeEntry>>>,
) -> Result<Arc<Vec<TreeEntry>>, Failure> {
    if let Some(t) = cache.get(id) {
        return Ok(t.clone());
    }
    let out = git(repo, &["ls-tree", "-z", id])?;
    let entries: Vec<TreeEntry> = out
        .split(|b| *b == 0)
        .filter_map(|line| {
            let line = String::from_utf8_lossy(line);
            let (meta, name) = line.split_once('\t')?;
            let mut parts = meta.split(' ');
            let (mode, _, sha) = (parts.next()?, parts.next()?, parts.next()?);
            Some(TreeEntry {
                name: name.to_owned(),
                mode: mode.to_owned(),
                id: sha.to_owned(),
            })
        })
        .collect();
    let entries = Arc::new(entries);
    cache.insert(id.to_owned(), entries.clone());
    Ok(entries)
}
