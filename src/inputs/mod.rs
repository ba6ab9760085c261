//! Input keys: for each flavor, a hash of everything whose change makes the selection build it
//! again, and of nothing else. Two commits whose key for a flavor is the same build that
//! flavor from the same bytes, with the same batch task, on the same project; the green ledger
//! ([`ledger`]) keeps which keys already built green, so a rebuild of identical inputs can be
//! skipped.
//!
//! A key is computed from git object ids alone (they are content hashes already): the trees
//! the webhook reads from GitHub's trees API to list the flavors, or the same trees read from
//! the local repository. No file content is fetched.
//!
//! # What a key covers
//!
//! - the flavor's own entry in the flavors directory (its tree, its submodule commit, or its
//!   link), and for a linked flavor what the link leads to (a tree, or a submodule's commit:
//!   the link's own text names the path inside it);
//! - every path whose change builds every flavor: each entry of the repository outside the
//!   flavors' directories and outside the linked flavors' targets, except what the deployed
//!   ignored paths leave out (a directory is left out when a pattern covers all of it);
//! - the keys of the flavors it depends on;
//! - the text of its generated batch task and of the build document the task runs (commands,
//!   variables, artifacts), for the variant;
//! - the CodeBuild project, and [`FORMAT`].
//!
//! A key is `<shared>-<own>`: `shared` (32 hex digits) hashes the parts every flavor of the
//! commit has in common, `own` (32 hex digits) the rest, so the ledger's records for one
//! repository state are listed with one prefix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::flavors::FlavorSet;
use crate::generate::{self, Variant};
use crate::glob::Glob;
use crate::selection::LinkedFlavor;
use crate::settings::Settings;

pub mod ledger;
#[cfg(test)]
mod tests;

/// The version of what a key hashes: a new version gives every flavor new keys, so records
/// written under an older one are never matched.
pub const FORMAT: &str = "flavor-ci inputs 1";

/// Hex digits in each half of a key.
const HALF: usize = 32;

/// One entry of a git tree, as GitHub's trees API and `git ls-tree` give it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TreeEntry {
    /// The entry's name in its tree.
    #[serde(rename = "path")]
    pub name: String,
    /// `040000` (tree), `100644`/`100755` (file), `120000` (link), `160000` (submodule).
    pub mode: String,
    /// The object id (a blob, a tree, or a submodule's commit).
    #[serde(rename = "sha")]
    pub id: String,
}

pub const MODE_TREE: &str = "040000";
pub const MODE_LINK: &str = "120000";
pub const MODE_SUBMODULE: &str = "160000";

impl TreeEntry {
    pub fn is_tree(&self) -> bool {
        self.mode == MODE_TREE || self.mode == "40000"
    }
    pub fn is_submodule(&self) -> bool {
        self.mode == MODE_SUBMODULE
    }
    /// The mode in git's six-digit spelling (GitHub and `ls-tree` agree; a raw tree object
    /// writes trees as `40000`).
    fn mode(&self) -> &str {
        if self.mode == "40000" {
            MODE_TREE
        } else {
            &self.mode
        }
    }
}

/// The trees of one commit that were read, by id.
#[derive(Debug, Clone, Default)]
pub struct Trees {
    pub root: String,
    pub trees: HashMap<String, Arc<Vec<TreeEntry>>>,
}

impl Trees {
    pub fn new(root: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            trees: HashMap::new(),
        }
    }

    pub fn insert(&mut self, id: impl Into<String>, entries: Arc<Vec<TreeEntry>>) {
        self.trees.insert(id.into(), entries);
    }

    fn entries(&self, id: &str, path: &str) -> Result<&[TreeEntry], KeyError> {
        self.trees.get(id).map(|t| t.as_slice()).ok_or_else(|| {
            KeyError::Unread(if path.is_empty() {
                "/".into()
            } else {
                path.into()
            })
        })
    }

    /// The entry at `path` (no links followed), or `None` when a part of it is missing or not
    /// a tree.
    fn entry_at(&self, path: &str) -> Result<Option<TreeEntry>, KeyError> {
        let mut id = self.root.clone();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut found = None;
        for (i, part) in parts.iter().enumerate() {
            let here = parts[..i].join("/");
            let entries = self.entries(&id, &here)?;
            let Some(entry) = entries.iter().find(|e| e.name == *part) else {
                return Ok(None);
            };
            if i + 1 < parts.len() {
                if !entry.is_tree() {
                    return Ok(None);
                }
                id.clone_from(&entry.id);
            }
            found = Some(entry.clone());
        }
        Ok(found)
    }
}

/// Why no keys could be computed (the flavors then build as if nothing were recorded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the flavors directory {0} is reached through a link: input keys need it to be a directory of the repository"
    )]
    FlavorsDirLinked(String),
    #[error("the tree at {0} was not read")]
    Unread(String),
    #[error("flavor {0} has no entry in the flavors directory")]
    NoEntry(String),
    #[error("the linked flavor {flavor} leads to {path}, which is not in the commit's trees")]
    NoTarget { flavor: String, path: String },
}

/// What the keys of one commit are computed from.
#[derive(Debug, Clone, Copy)]
pub struct KeyInput<'a> {
    pub trees: &'a Trees,
    pub settings: &'a Settings,
    pub flavors: &'a FlavorSet,
    pub links: &'a [LinkedFlavor],
    /// Paths whose changes build nothing (the deployed ignored paths).
    pub ignored: &'a [Glob],
    /// The CodeBuild project the flavors build on.
    pub project: &'a str,
    pub variant: Variant,
    pub release_id: Option<&'a str>,
}

/// Every flavor's input key at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputKeys {
    /// The part every key starts with (`<shared>-`): the ledger prefix of this state.
    pub shared: String,
    pub keys: BTreeMap<String, String>,
}

impl InputKeys {
    pub fn get(&self, flavor: &str) -> Option<&str> {
        self.keys.get(flavor).map(String::as_str)
    }
}

/// The normalized flavors directory (`""` for the repository root).
fn flavors_dir(settings: &Settings) -> &str {
    let dir = settings.flavors_dir.trim_matches('/');
    if dir == "." { "" } else { dir }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Computes every flavor's input key.
pub fn input_keys(input: KeyInput<'_>) -> Result<InputKeys, KeyError> {
    let dir = flavors_dir(input.settings);
    let trees = input.trees;
    // The flavors directory's own entries, reached through trees only.
    let dir_entries: &[TreeEntry] = if dir.is_empty() {
        trees.entries(&trees.root, "")?
    } else {
        match trees.entry_at(dir)? {
            Some(e) if e.is_tree() => trees.entries(&e.id, dir)?,
            _ => return Err(KeyError::FlavorsDirLinked(dir.to_owned())),
        }
    };
    let names: BTreeSet<&str> = input.flavors.names().collect();
    // Paths carved out of the shared part: each flavor's entry, and each link's target.
    let mut carved: BTreeSet<String> = names.iter().map(|n| join(dir, n)).collect();
    let mut targets: BTreeMap<&str, (String, TreeEntry)> = BTreeMap::new();
    for link in input.links {
        let entry = trees
            .entry_at(&link.path)?
            .ok_or_else(|| KeyError::NoTarget {
                flavor: link.flavor.clone(),
                path: link.path.clone(),
            })?;
        carved.insert(link.path.clone());
        targets.insert(link.flavor.as_str(), (link.path.clone(), entry));
    }

    let (document, tasks) = generate::task_texts(
        input.settings,
        input.flavors,
        input.variant,
        input.release_id,
    );
    let mut shared = Sha256::new();
    field(&mut shared, "format", FORMAT);
    field(&mut shared, "project", input.project);
    field(&mut shared, "variant", input.variant.name());
    field(&mut shared, "document", &document);
    let carved_list: Vec<&str> = carved.iter().map(String::as_str).collect();
    repository(
        &mut shared,
        trees,
        &trees.root,
        "",
        &carved_list,
        input.ignored,
    )?;
    let shared = shared.finalize();
    let shared_hex = crate::generate::hex(&shared);
    let shared_part = &shared_hex[..HALF];

    let tasks: HashMap<&str, &str> = tasks
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    // Each flavor's own part, before its dependencies.
    let mut own: BTreeMap<&str, Sha256> = BTreeMap::new();
    for name in &names {
        let entry = dir_entries
            .iter()
            .find(|e| e.name == *name)
            .ok_or_else(|| KeyError::NoEntry((*name).to_owned()))?;
        let mut h = Sha256::new();
        h.update(shared);
        field(&mut h, "flavor", name);
        field(&mut h, "entry", &format!("{} {}", entry.mode(), entry.id));
        if let Some((path, target)) = targets.get(name) {
            field(
                &mut h,
                "target",
                &format!("{path} {} {}", target.mode(), target.id),
            );
        }
        field(&mut h, "task", tasks.get(name).copied().unwrap_or(""));
        own.insert(name, h);
    }
    // Dependencies first: a key includes the keys of the flavors its flavor depends on.
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    for name in &names {
        key_of(
            name,
            input.settings,
            &own,
            &mut keys,
            &mut Vec::new(),
            shared_part,
        );
    }
    Ok(InputKeys {
        shared: shared_part.to_owned(),
        keys,
    })
}

/// The key of `name`, computing its dependencies' first. A dependency cycle (refused by the
/// settings check) is cut where it closes.
fn key_of(
    name: &str,
    settings: &Settings,
    own: &BTreeMap<&str, Sha256>,
    keys: &mut BTreeMap<String, String>,
    path: &mut Vec<String>,
    shared: &str,
) -> Option<String> {
    if let Some(k) = keys.get(name) {
        return Some(k.clone());
    }
    if path.iter().any(|p| p == name) {
        return None;
    }
    let mut h = own.get(name)?.clone();
    path.push(name.to_owned());
    let deps: BTreeSet<&str> = settings
        .flavors
        .get(name)
        .map(|s| s.depend_on.iter().map(String::as_str).collect())
        .unwrap_or_default();
    for dep in deps {
        let key = key_of(dep, settings, own, keys, path, shared);
        field(
            &mut h,
            "depends-on",
            &format!("{dep} {}", key.as_deref().unwrap_or("-")),
        );
    }
    path.pop();
    let key = format!("{shared}-{}", &crate::generate::hex(&h.finalize())[..HALF]);
    keys.insert(name.to_owned(), key.clone());
    Some(key)
}

/// One length-prefixed field, so no two sequences of fields hash the same bytes.
fn field(h: &mut Sha256, name: &str, value: &str) {
    h.update(name.as_bytes());
    h.update([0]);
    h.update((value.len() as u64).to_le_bytes());
    h.update(value.as_bytes());
}

/// Hashes the entries of tree `id` (at `prefix`) that are not carved out: an entry that holds
/// a carved path is entered, any other is hashed by its id, unless the ignored paths cover it.
fn repository(
    h: &mut Sha256,
    trees: &Trees,
    id: &str,
    prefix: &str,
    carved: &[&str],
    ignored: &[Glob],
) -> Result<(), KeyError> {
    for entry in trees.entries(id, prefix)? {
        let path = join(prefix, &entry.name);
        if carved.contains(&path.as_str()) {
            continue;
        }
        let inner: Vec<&str> = carved
            .iter()
            .copied()
            .filter(|c| {
                c.len() > path.len() && c.starts_with(&path) && c.as_bytes()[path.len()] == b'/'
            })
            .collect();
        if !inner.is_empty() && entry.is_tree() {
            field(h, "enter", &path);
            repository(h, trees, &entry.id, &path, &inner, ignored)?;
            continue;
        }
        if ignored.iter().any(|g| g.matches_path(&path)) {
            continue;
        }
        field(h, "path", &path);
        field(h, "object", &format!("{} {}", entry.mode(), entry.id));
    }
    Ok(())
}

/// Whether a commit message asks for a fresh build: a line `flavor-ci: rebuild` (a trailer;
/// the key is case-insensitive).
pub fn asks_rebuild(message: &str) -> bool {
    message.lines().any(|line| {
        line.trim().split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("flavor-ci") && v.trim().eq_ignore_ascii_case("rebuild")
        })
    })
}
