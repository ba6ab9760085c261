//! Writes `generate`'s outputs all or none.
//!
//! 1. Every new document is written to a temporary file beside its target.
//! 2. Every file this run replaces or removes is renamed aside to a backup.
//! 3. Every temporary file is renamed into place.
//! 4. The backups are deleted.
//!
//! A failure in 1–3 undoes what was done so far, newest first: new files are removed and the
//! backups are renamed back, so the directory holds exactly what it held before. Renames
//! within one directory are atomic, so a reader never sees a half-written buildspec.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong, on which path.
#[derive(Debug)]
pub(crate) struct WriteError {
    pub(crate) path: PathBuf,
    pub(crate) action: &'static str,
    pub(crate) error: io::Error,
}

/// What a successful run changed.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Earlier outputs this run no longer produces, now removed.
    pub(crate) removed: Vec<PathBuf>,
    /// Backups that could not be deleted afterwards (harmless hidden files), with the reason.
    pub(crate) leftovers: Vec<(PathBuf, io::Error)>,
}

/// The file-system calls the writer makes, so a test can fail any one of them.
pub(crate) trait Fs {
    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug)]
pub(crate) struct RealFs;

impl Fs for RealFs {
    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        fs::write(path, bytes)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}

enum Step {
    Staged(PathBuf),
    BackedUp { target: PathBuf, backup: PathBuf },
    Placed(PathBuf),
}

/// Writes `files` (name, bytes) into `dir` and removes the names in `stale` that exist, all or
/// none.
pub(crate) fn write_all(
    fs_: &dyn Fs,
    dir: &Path,
    files: &[(&str, &[u8])],
    stale: &[&str],
) -> Result<Written, WriteError> {
    fs::create_dir_all(dir).map_err(|error| WriteError {
        path: dir.to_owned(),
        action: "create output directory",
        error,
    })?;
    let pid = std::process::id();
    let mut done: Vec<Step> = Vec::new();
    let result = (|| {
        let mut staged = Vec::with_capacity(files.len());
        for (name, bytes) in files {
            let target = dir.join(name);
            refuse_directory(&target)?;
            let tmp = dir.join(format!(".{name}.tmp-{pid}"));
            done.push(Step::Staged(tmp.clone()));
            fs_.write(&tmp, bytes).map_err(|error| WriteError {
                path: target.clone(),
                action: "write",
                error,
            })?;
            staged.push((tmp, target));
        }
        let mut removed = Vec::new();
        let replaced = files.iter().map(|(name, _)| (*name, false));
        let removing = stale.iter().map(|name| (*name, true));
        let mut backups = Vec::new();
        for (name, is_stale) in replaced.chain(removing) {
            let target = dir.join(name);
            match fs::symlink_metadata(&target) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(WriteError {
                        path: target,
                        action: "inspect",
                        error,
                    });
                }
            }
            refuse_directory(&target)?;
            let backup = dir.join(format!(".{name}.old-{pid}"));
            fs_.rename(&target, &backup).map_err(|error| WriteError {
                path: target.clone(),
                action: if is_stale { "remove stale" } else { "replace" },
                error,
            })?;
            done.push(Step::BackedUp {
                target: target.clone(),
                backup: backup.clone(),
            });
            backups.push(backup);
            if is_stale {
                removed.push(target);
            }
        }
        for (tmp, target) in &staged {
            fs_.rename(tmp, target).map_err(|error| WriteError {
                path: target.clone(),
                action: "write",
                error,
            })?;
            done.push(Step::Placed(target.clone()));
        }
        Ok((removed, backups))
    })();
    match result {
        Ok((removed, backups)) => {
            let leftovers = backups
                .into_iter()
                .filter_map(|b| fs_.remove(&b).err().map(|e| (b, e)))
                .collect();
            Ok(Written { removed, leftovers })
        }
        Err(e) => {
            undo(fs_, done);
            Err(e)
        }
    }
}

fn refuse_directory(target: &Path) -> Result<(), WriteError> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => Err(WriteError {
            path: target.to_owned(),
            action: "write",
            error: io::Error::other("a directory is in the way; move it or choose another --out"),
        }),
        _ => Ok(()),
    }
}

/// Reverses `done`, newest first, as far as the file system lets it.
fn undo(fs_: &dyn Fs, done: Vec<Step>) {
    for step in done.into_iter().rev() {
        let _ = match step {
            Step::Staged(tmp) => fs_.remove(&tmp),
            Step::Placed(target) => fs_.remove(&target),
            Step::BackedUp { target, backup } => fs_.rename(&backup, &target),
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;

    use super::*;

    /// The real file system, failing the `n`th call (counting from 1).
    struct FailingFs {
        calls: Cell<usize>,
        fail_at: usize,
    }

    impl FailingFs {
        fn tick(&self) -> io::Result<()> {
            self.calls.set(self.calls.get() + 1);
            if self.calls.get() == self.fail_at {
                Err(io::Error::other("injected failure"))
            } else {
                Ok(())
            }
        }
    }

    impl Fs for FailingFs {
        fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
            self.tick()?;
            RealFs.write(path, bytes)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.tick()?;
            RealFs.rename(from, to)
        }
        fn remove(&self, path: &Path) -> io::Result<()> {
            RealFs.remove(path)
        }
    }

    fn snapshot(dir: &Path) -> BTreeMap<String, String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_failure_at_any_step_leaves_the_directory_as_it_was() {
        let files: &[(&str, &[u8])] = &[("a.yaml", b"new a"), ("b.yaml", b"new b")];
        // 2 writes, 3 renames aside (a, b, stale c), 2 renames into place.
        for fail_at in 1..=7 {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            fs::write(dir.join("a.yaml"), "old a").unwrap();
            fs::write(dir.join("b.yaml"), "old b").unwrap();
            fs::write(dir.join("c.yaml"), "old c").unwrap();
            let before = snapshot(dir);
            let fs_ = FailingFs {
                calls: Cell::new(0),
                fail_at,
            };
            let err = write_all(&fs_, dir, files, &["c.yaml"]).unwrap_err();
            assert_eq!(err.error.to_string(), "injected failure");
            assert_eq!(snapshot(dir), before, "failing call {fail_at}");
        }
    }

    #[test]
    fn success_replaces_everything_and_removes_the_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("a.yaml"), "old a").unwrap();
        fs::write(dir.join("c.yaml"), "old c").unwrap();
        let files: &[(&str, &[u8])] = &[("a.yaml", b"new a"), ("b.yaml", b"new b")];
        let written = write_all(&RealFs, dir, files, &["c.yaml", "d.yaml"]).unwrap();
        assert_eq!(written.removed, [dir.join("c.yaml")]);
        assert!(written.leftovers.is_empty());
        let expected: BTreeMap<String, String> = [("a.yaml", "new a"), ("b.yaml", "new b")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(snapshot(dir), expected);
    }
}
