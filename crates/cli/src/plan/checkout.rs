//! What a local git checkout says, read with git: the changes between two revisions, the
//! submodules, the flavors that are links, and the settings, flavors and links at a commit
//! (read from git's objects, as the webhook reads them from GitHub).
//!
//! Paths are relative to the directory planned, which may be a subdirectory of the git
//! repository: git is asked for paths relative to it, and changes outside it do not count.

use std::collections::HashMap;
use std::io::{self, Write as _};
use std::path::Path;
use std::process::Command as Process;

use flavor_ci::flavors::{FlavorError, FlavorSet};
use flavor_ci::selection::{Changes, LinkedFlavor};
use flavor_ci::settings::{SETTINGS_FILE, Settings};
use flavor_ci::webhook::push::resolve_link;

use crate::failure::Failure;
use crate::repo::{RepoArgs, load_settings};

/// Runs `git -C repo args…`; its standard output, or a failure that quotes git.
pub(super) fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, Failure> {
    git_with(repo, args, None)
}

/// [`git`] with `GIT_INDEX_FILE` set to `index`.
pub(super) fn git_with(
    repo: &Path,
    args: &[&str],
    index: Option<&Path>,
) -> Result<Vec<u8>, Failure> {
    let mut command = Process::new("git");
    if let Some(index) = index {
        command.env("GIT_INDEX_FILE", index);
    }
    let out = command
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|e| {
            Failure::invalid(format!(
                "cannot run git ({e}); plan reads the changes from a git checkout, so install git"
            ))
        })?;
    if !out.status.success() {
        return Err(Failure::invalid(format!(
            "git {} failed in {}: {}",
            args.join(" "),
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

fn git_text(repo: &Path, args: &[&str]) -> Result<String, Failure> {
    Ok(String::from_utf8_lossy(&git(repo, args)?).trim().to_owned())
}

/// NUL-separated paths, as `-z` prints them.
fn paths(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    bytes
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

pub(super) fn commit_of(repo: &Path, rev: &str) -> Result<String, Failure> {
    git_text(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map_err(|_| Failure::invalid(format!("{rev} is not a commit in {}", repo.display())))
}

/// The merge base of HEAD and the default branch (`origin/HEAD`, else `main`, else `master`).
pub(super) fn default_base(repo: &Path) -> Result<String, Failure> {
    let candidates = ["origin/HEAD", "main", "master"];
    let branch = candidates
        .iter()
        .find(|b| commit_of(repo, b).is_ok())
        .ok_or_else(|| {
            Failure::invalid(
                "found no default branch (origin/HEAD, main or master) to compare with; pass --base REV",
            )
        })?;
    git_text(repo, &["merge-base", "HEAD", branch])
}

/// What changed between `base` and the head: committed changes when `head` is given, else the
/// working tree against `base`, untracked files included.
pub(super) fn local_changes(
    repo: &Path,
    base: &str,
    head: Option<&str>,
) -> Result<Changes, Failure> {
    // Paths relative to the planned directory, and only those inside it.
    let diff = |range: &str| {
        git(
            repo,
            &[
                "diff",
                "--name-only",
                "-z",
                "--no-renames",
                "--relative",
                range,
            ],
        )
    };
    let mut changed: std::collections::BTreeSet<String> = match head {
        Some(head) => paths(&diff(&format!("{base}...{head}"))?).collect(),
        None => {
            let mut all: std::collections::BTreeSet<String> = paths(&diff(base)?).collect();
            all.extend(paths(&git(
                repo,
                &["ls-files", "--others", "--exclude-standard", "-z"],
            )?));
            all
        }
    };
    changed.retain(|p| !p.is_empty());
    Ok(Changes::Paths(changed))
}

/// The submodules' paths in the index.
pub(super) fn submodules(repo: &Path) -> Result<Vec<String>, Failure> {
    let listing = git(repo, &["ls-files", "--stage", "-z"])?;
    Ok(listing
        .split(|b| *b == 0)
        .filter_map(|line| {
            let line = String::from_utf8_lossy(line);
            let (meta, path) = line.split_once('\t')?;
            meta.starts_with("160000 ").then(|| path.to_owned())
        })
        .collect())
}

/// The flavors that are links, with the repository path their content lives under: where the
/// link leads, or the submodule it leads into (as the webhook records them).
pub(super) fn local_links(
    repo: &Path,
    flavors_dir: &str,
    flavors: &FlavorSet,
    submodules: &[String],
) -> Vec<LinkedFlavor> {
    let root = std::fs::canonicalize(repo).unwrap_or_else(|_| repo.to_owned());
    let dir = flavors_dir.trim_matches('/');
    let mut links = Vec::new();
    for flavor in flavors {
        let name = flavor.name.as_str();
        let link_path = if dir.is_empty() || dir == "." {
            name.to_owned()
        } else {
            format!("{dir}/{name}")
        };
        let on_disk = repo.join(&link_path);
        let Ok(target) = std::fs::read_link(&on_disk) else {
            continue;
        };
        let resolved = std::fs::canonicalize(&on_disk)
            .ok()
            .and_then(|p| {
                p.strip_prefix(&root)
                    .ok()
                    .map(|r| r.to_string_lossy().into_owned())
            })
            .or_else(|| resolve_link(&link_path, &target.to_string_lossy()));
        let Some(resolved) = resolved else { continue };
        let path = submodules
            .iter()
            .find(|s| resolved == **s || resolved.starts_with(&format!("{s}/")))
            .cloned()
            .unwrap_or(resolved);
        links.push(LinkedFlavor {
            flavor: name.to_owned(),
            path,
        });
    }
    links
}

/// How many links a path may pass through (as the webhook allows).
const MAX_LINK_DEPTH: u8 = 8;

/// Every path of commit `rev` with its mode and object id, as git stores them.
struct Tree {
    entries: HashMap<String, (String, String)>,
}

impl Tree {
    /// `prefix`: the planned directory's path from the repository's root ("" at the root).
    fn at(repo: &Path, prefix: &str, rev: &str) -> Result<Self, Failure> {
        // The planned directory's tree at `rev` (`rev:` followed by its path from the root).
        let tree = format!("{rev}:{prefix}");
        let listing = git(repo, &["ls-tree", "-r", "-t", "-z", "--full-tree", &tree])?;
        let entries = listing
            .split(|b| *b == 0)
            .filter_map(|line| {
                let line = String::from_utf8_lossy(line);
                let (meta, path) = line.split_once('\t')?;
                let mut parts = meta.split(' ');
                let (mode, _, sha) = (parts.next()?, parts.next()?, parts.next()?);
                Some((path.to_owned(), (mode.to_owned(), sha.to_owned())))
            })
            .collect();
        Ok(Self { entries })
    }

    /// Follows `path` from the root, through links, to what it names: a directory or a
    /// submodule (with the path its content lives under), a file, or nothing (why).
    fn lookup(&self, repo: &Path, path: &str, depth: u8) -> Result<Found, Failure> {
        if depth > MAX_LINK_DEPTH {
            return Ok(Found::Missing(format!(
                "passes through more than {MAX_LINK_DEPTH} links"
            )));
        }
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for i in 0..parts.len() {
            let here = parts[..=i].join("/");
            let Some((mode, sha)) = self.entries.get(&here) else {
                return Ok(Found::Missing("does not exist".into()));
            };
            match mode.as_str() {
                "040000" => {}
                "160000" => return Ok(Found::At(here)),
                "120000" => {
                    let target = String::from_utf8_lossy(&git(repo, &["cat-file", "blob", sha])?)
                        .into_owned();
                    let Some(mut resolved) = resolve_link(&here, &target) else {
                        return Ok(Found::Missing("leaves the repository".into()));
                    };
                    for rest in &parts[i + 1..] {
                        resolved.push('/');
                        resolved.push_str(rest);
                    }
                    return self.lookup(repo, &resolved, depth + 1);
                }
                _ if i + 1 == parts.len() => return Ok(Found::File),
                _ => return Ok(Found::Missing("is not a directory".into())),
            }
        }
        Ok(Found::At(parts.join("/")))
    }
}

enum Found {
    At(String),
    File,
    Missing(String),
}

/// The settings, flavors and links of commit `rev`, read from git as the webhook reads them
/// from GitHub: no checkout of `rev` is needed. `prefix` is the planned directory's path from
/// the repository's root ("" at the root).
pub(super) fn at_commit(
    repo: &Path,
    prefix: &str,
    rev: &str,
    args: &RepoArgs,
) -> Result<(Settings, FlavorSet, Vec<LinkedFlavor>), Failure> {
    let commit = commit_of(repo, rev)?;
    let tree = Tree::at(repo, prefix, &commit)?;
    let settings = match &args.settings {
        Some(_) => load_settings(args)?.0,
        None => match tree.entries.get(SETTINGS_FILE) {
            Some((_, sha)) => {
                let text =
                    String::from_utf8_lossy(&git(repo, &["cat-file", "blob", sha])?).into_owned();
                Settings::from_yaml(&text).map_err(|e| {
                    Failure::invalid(format!("{SETTINGS_FILE} at {rev} has problems:\n{e}"))
                })?
            }
            None => Settings::default(),
        },
    };
    let dir = settings.flavors_dir.trim_matches('/').to_owned();
    let prefix = if dir.is_empty() || dir == "." {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut names = Vec::new();
    let mut links = Vec::new();
    let mut errors = Vec::new();
    let mut entries: Vec<(&String, &(String, String))> = tree
        .entries
        .iter()
        .filter(|(path, _)| {
            path.strip_prefix(&prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
        })
        .collect();
    entries.sort();
    // The links' targets, read by one git process.
    let link_shas: Vec<&str> = entries
        .iter()
        .filter(|(_, (mode, _))| mode == "120000")
        .map(|(_, (_, sha))| sha.as_str())
        .collect();
    let targets = blobs(repo, &link_shas)?;
    for (path, (mode, sha)) in entries {
        let name = path[prefix.len()..].to_owned();
        match mode.as_str() {
            "040000" | "160000" => names.push(name),
            "120000" => {
                let target = targets.get(sha.as_str()).cloned().unwrap_or_default();
                let broken = |reason: &str| FlavorError::BrokenLinkAtCommit {
                    path: path.clone(),
                    target: target.clone(),
                    reason: reason.into(),
                };
                let Some(resolved) = resolve_link(path, &target) else {
                    errors.push(broken("leaves the repository"));
                    continue;
                };
                match tree.lookup(repo, &resolved, 1)? {
                    Found::At(at) => {
                        links.push(LinkedFlavor {
                            flavor: name.clone(),
                            path: at,
                        });
                        names.push(name);
                    }
                    Found::File => {}
                    Found::Missing(why) => errors.push(broken(&why)),
                }
            }
            _ => {}
        }
    }
    let flavors = FlavorSet::from_listing(
        &dir,
        names,
        &settings.exclude,
        settings.batch.identifier_style,
        errors,
    )
    .map_err(|e| Failure::invalid(format!("the flavors at {rev}: {e}")))?;
    Ok((settings, flavors, links))
}

/// The contents of the blobs `shas`, as text, read by one `git cat-file --batch`.
fn blobs<'s>(repo: &Path, shas: &[&'s str]) -> Result<HashMap<&'s str, String>, Failure> {
    use std::io::Read as _;
    use std::process::Stdio;
    if shas.is_empty() {
        return Ok(HashMap::new());
    }
    let failed = |e: io::Error| Failure::invalid(format!("cannot run git cat-file ({e})"));
    let mut child = Process::new("git")
        .arg("-C")
        .arg(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(failed)?;
    let input: String = shas.iter().map(|s| format!("{s}\n")).collect();
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| failed(io::Error::other("no stdin")))?;
    // Written from another thread, so a large answer cannot block the writes.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut output = Vec::new();
    child
        .stdout
        .take()
        .ok_or_else(|| failed(io::Error::other("no stdout")))?
        .read_to_end(&mut output)
        .map_err(failed)?;
    let _ = writer.join();
    let _ = child.wait();
    // Each answer: "<sha> blob <size>\n<size bytes>\n" (or "<sha> missing\n").
    let mut out = HashMap::new();
    let mut rest = output.as_slice();
    for sha in shas {
        let Some(newline) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let header = String::from_utf8_lossy(&rest[..newline]).into_owned();
        rest = &rest[newline + 1..];
        if header.ends_with(" missing") {
            continue;
        }
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if size > rest.len() {
            break;
        }
        out.insert(*sha, String::from_utf8_lossy(&rest[..size]).into_owned());
        rest = rest.get(size + 1..).unwrap_or_default();
    }
    Ok(out)
}

/// Where `repo` stands in its git repository: `None` at the root, else its path from the
/// root (`examples/script-languages`) and the root.
pub(super) fn subdirectory(repo: &Path) -> Result<Option<(String, String)>, Failure> {
    let prefix = git_text(repo, &["rev-parse", "--show-prefix"]).map_err(|_| {
        Failure::invalid(format!(
            "{} is not in a git repository; plan reads the changes from git, so run it in a checkout (or pass --repo DIR of one)",
            repo.display()
        ))
    })?;
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return Ok(None);
    }
    let top = git_text(repo, &["rev-parse", "--show-toplevel"])?;
    Ok(Some((prefix.to_owned(), top)))
}
