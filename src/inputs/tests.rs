//! Input keys against a repository model: random histories of a repository with flavors, a
//! dependency, a linked flavor, a flavor inside a submodule, shared and ignored paths.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::ledger::{BuildFacts, Distrust, GreenRecord, ago, trust, trusted};
use super::*;
use crate::flavors::{FlavorSet, IdentifierStyle, is_candidate};
use crate::runs::RunTrigger;
use crate::selection::{Changes, Selection, select};
use crate::settings::{FlavorSettings, MaxAge};

/// A file, a link or a submodule at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    File(String),
    Exec(String),
    Link(String),
    Submodule(String),
}

type Files = BTreeMap<String, Item>;

fn id_of(text: &str) -> String {
    crate::generate::hex(&Sha256::digest(text.as_bytes()))[..40].to_owned()
}

/// Builds the trees of `files` into `trees`; returns the root's id.
fn tree_of(files: &Files, prefix: &str, trees: &mut Trees) -> String {
    let mut children: BTreeMap<String, Option<&Item>> = BTreeMap::new();
    for (path, item) in files {
        let Some(rest) = (if prefix.is_empty() {
            Some(path.as_str())
        } else {
            path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/'))
        }) else {
            continue;
        };
        match rest.split_once('/') {
            Some((dir, _)) => {
                children.insert(dir.to_owned(), None);
            }
            None => {
                children.insert(rest.to_owned(), Some(item));
            }
        }
    }
    let mut entries = Vec::new();
    for (name, item) in children {
        let (mode, id) = match item {
            None => {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                (MODE_TREE.to_owned(), tree_of(files, &path, trees))
            }
            Some(Item::File(c)) => ("100644".to_owned(), id_of(&format!("blob {c}"))),
            Some(Item::Exec(c)) => ("100755".to_owned(), id_of(&format!("blob {c}"))),
            Some(Item::Link(t)) => (MODE_LINK.to_owned(), id_of(&format!("blob {t}"))),
            Some(Item::Submodule(c)) => (MODE_SUBMODULE.to_owned(), id_of(&format!("commit {c}"))),
        };
        entries.push(TreeEntry { name, mode, id });
    }
    let id = id_of(&format!("tree {entries:?}"));
    trees.insert(id.clone(), Arc::new(entries));
    id
}

/// One commit of the model: its trees, flavors and links, as the webhook lists them.
struct Commit {
    trees: Trees,
    flavors: FlavorSet,
    links: Vec<LinkedFlavor>,
    files: Files,
}

fn commit(files: &Files) -> Commit {
    let mut trees = Trees::default();
    let root = tree_of(files, "", &mut trees);
    trees.root = root;
    let mut names = BTreeSet::new();
    let mut links = Vec::new();
    for (path, item) in files {
        let Some(rest) = path.strip_prefix("flavors/") else {
            continue;
        };
        let name = rest.split('/').next().unwrap_or_default();
        if !is_candidate(name, &[]) {
            continue;
        }
        match item {
            Item::Link(target) if !rest.contains('/') => {
                // Links point at ../ext/<dir> or ../sub/<dir>.
                let resolved = target.trim_start_matches("../");
                if resolved.starts_with("sub/") {
                    names.insert(name.to_owned());
                    links.push(LinkedFlavor {
                        flavor: name.to_owned(),
                        path: "sub".into(),
                    });
                } else if files.keys().any(|p| p.starts_with(&format!("{resolved}/"))) {
                    names.insert(name.to_owned());
                    links.push(LinkedFlavor {
                        flavor: name.to_owned(),
                        path: resolved.to_owned(),
                    });
                }
            }
            Item::Link(_) => {}
            _ if rest.contains('/') => {
                names.insert(name.to_owned());
            }
            Item::Submodule(_) => {
                names.insert(name.to_owned());
            }
            _ => {}
        }
    }
    let flavors = FlavorSet::from_names_in(names, IdentifierStyle::Standard).unwrap();
    Commit {
        trees,
        flavors,
        links,
        files: files.clone(),
    }
}

fn settings(image_a: &str) -> Settings {
    let mut s = Settings::default();
    s.flavors.insert(
        "b".into(),
        FlavorSettings {
            depend_on: vec!["a".into()],
            ..Default::default()
        },
    );
    s.flavors.insert(
        "a".into(),
        FlavorSettings {
            image: Some(image_a.into()),
            ..Default::default()
        },
    );
    s
}

fn ignored() -> Vec<Glob> {
    Glob::list("docs,**/*.txt").unwrap()
}

fn keys(c: &Commit, s: &Settings) -> InputKeys {
    input_keys(KeyInput {
        trees: &c.trees,
        settings: s,
        flavors: &c.flavors,
        links: &c.links,
        ignored: &ignored(),
        project: "slc-ci",
        variant: Variant::Ci,
        release_id: None,
    })
    .unwrap()
}

/// The paths whose entries differ between two commits (as git and GitHub list them: a
/// submodule by its path, a link by its own path).
fn diff(a: &Files, b: &Files) -> BTreeSet<String> {
    a.keys()
        .chain(b.keys())
        .filter(|p| a.get(*p) != b.get(*p))
        .cloned()
        .collect()
}

/// The paths the model can touch.
const PATHS: &[&str] = &[
    "flavors/a/Dockerfile",
    "flavors/a/deps/packages",
    "flavors/a/notes.txt",
    "flavors/b/Dockerfile",
    "flavors/c/Dockerfile",
    "flavors/c/scripts/run",
    "flavors/README",
    "flavors/.template/Dockerfile",
    "ext/L/Dockerfile",
    "ext/L/conf",
    "ext/other",
    "shared/build.sh",
    "shared/deep/lib",
    "docs/guide",
    "top.txt",
    ".github/workflows/ci",
];

#[derive(Debug, Clone)]
enum Op {
    Write(usize, u8),
    Exec(usize, u8),
    Remove(usize),
    BumpSubmodule(u8),
    Relink(bool),
    Image(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PATHS.len(), any::<u8>()).prop_map(|(p, c)| Op::Write(p, c % 3)),
        1 => (0..PATHS.len(), any::<u8>()).prop_map(|(p, c)| Op::Exec(p, c % 2)),
        2 => (0..PATHS.len()).prop_map(Op::Remove),
        1 => any::<u8>().prop_map(|c| Op::BumpSubmodule(c % 3)),
        1 => any::<bool>().prop_map(Op::Relink),
        1 => any::<u8>().prop_map(|c| Op::Image(c % 2)),
    ]
}

fn base() -> (Files, String) {
    let mut f = Files::new();
    for p in [
        "flavors/a/Dockerfile",
        "flavors/b/Dockerfile",
        "flavors/c/Dockerfile",
    ] {
        f.insert(p.into(), Item::File("0".into()));
    }
    f.insert("ext/L/Dockerfile".into(), Item::File("0".into()));
    f.insert("shared/build.sh".into(), Item::File("0".into()));
    f.insert("flavors/linked".into(), Item::Link("../ext/L".into()));
    f.insert("sub".into(), Item::Submodule("0".into()));
    f.insert(
        "flavors/subflavor".into(),
        Item::Link("../sub/inner".into()),
    );
    (f, "image:0".into())
}

fn apply(files: &mut Files, image: &mut String, op: &Op) {
    match op {
        Op::Write(p, c) => {
            files.insert(PATHS[*p].into(), Item::File(c.to_string()));
        }
        Op::Exec(p, c) => {
            files.insert(PATHS[*p].into(), Item::Exec(c.to_string()));
        }
        Op::Remove(p) => {
            // The link target keeps one file: a broken link is refused before keys matter.
            if PATHS[*p] != "ext/L/Dockerfile" {
                files.remove(PATHS[*p]);
            }
        }
        Op::BumpSubmodule(c) => {
            files.insert("sub".into(), Item::Submodule(c.to_string()));
        }
        Op::Relink(inner) => {
            let target = if *inner {
                "../sub/inner"
            } else {
                "../sub/other"
            };
            files.insert("flavors/subflavor".into(), Item::Link(target.into()));
        }
        Op::Image(c) => *image = format!("image:{c}"),
    }
}

/// Whether a change of `path` can change how `flavor` builds (independently of the selection):
/// its own directory or link, its link's target, its dependency's inputs, or any path outside
/// every flavor that is not ignored.
fn relevant(path: &str, flavor: &str, c: &Commit, other: &Commit) -> bool {
    if ignored().iter().any(|g| g.matches_path(path)) {
        return false;
    }
    let own = |f: &str, c: &Commit| {
        path == format!("flavors/{f}")
            || path.starts_with(&format!("flavors/{f}/"))
            || c.links.iter().any(|l| {
                l.flavor == f && (path == l.path || path.starts_with(&format!("{}/", l.path)))
            })
    };
    if own(flavor, c) || own(flavor, other) || (flavor == "b" && (own("a", c) || own("a", other))) {
        return true;
    }
    let flavor_paths = |c: &Commit| {
        c.flavors
            .names()
            .any(|f| path == format!("flavors/{f}") || path.starts_with(&format!("flavors/{f}/")))
            || c.links
                .iter()
                .any(|l| path == l.path || path.starts_with(&format!("{}/", l.path)))
    };
    !(flavor_paths(c) || flavor_paths(other))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn keys_differ_where_the_plan_builds_and_match_only_when_no_input_differs(
        first in proptest::collection::vec(op(), 0..12),
        then in proptest::collection::vec(op(), 0..6),
    ) {
        let (mut files, mut image) = base();
        for o in &first {
            apply(&mut files, &mut image, o);
        }
        let (a_files, a_image) = (files.clone(), image.clone());
        for o in &then {
            apply(&mut files, &mut image, o);
        }
        let (a, b) = (commit(&a_files), commit(&files));
        let (sa, sb) = (settings(&a_image), settings(&image));
        let (ka, kb) = (keys(&a, &sa), keys(&b, &sb));
        let changed = diff(&a.files, &b.files);
        let selection = select(&Changes::Paths(changed.clone()), &sb, &b.flavors, &b.links, &ignored());
        let selected: Vec<String> = match &selection {
            Selection::All { .. } => b.flavors.names().map(str::to_owned).collect(),
            Selection::Some { flavors, .. } => flavors.clone(),
            Selection::Nothing { .. } => Vec::new(),
        };
        for flavor in &selected {
            if let (Some(x), Some(y)) = (ka.get(flavor), kb.get(flavor)) {
                prop_assert_ne!(x, y, "{} selected by {:?} but its key did not change", flavor, changed);
            }
        }
        for flavor in b.flavors.names() {
            let (Some(x), Some(y)) = (ka.get(flavor), kb.get(flavor)) else { continue };
            if x == y {
                for path in &changed {
                    prop_assert!(
                        !relevant(path, flavor, &b, &a),
                        "{} kept its key though {} changed", flavor, path
                    );
                }
                let a_in_both = a.flavors.get("a").is_some() && b.flavors.get("a").is_some();
                let image_matters = flavor == "a" || (flavor == "b" && a_in_both);
                prop_assert!(!(image_matters && a_image != image), "{} kept its key though its image changed", flavor);
            }
        }
    }
}

#[test]
fn identical_trees_give_identical_keys_and_one_change_moves_its_flavor_and_dependents() {
    let (files, image) = base();
    let s = settings(&image);
    let a = keys(&commit(&files), &s);
    assert_eq!(a, keys(&commit(&files), &s));
    assert_eq!(a.keys.len(), 5, "{a:?}");
    assert!(
        a.keys
            .values()
            .all(|k| k.starts_with(&format!("{}-", a.shared)) && k.len() == 65)
    );
    let mut changed = files.clone();
    changed.insert("flavors/a/Dockerfile".into(), Item::File("1".into()));
    let b = keys(&commit(&changed), &s);
    assert_eq!(a.shared, b.shared);
    let moved: Vec<&String> = a.keys.keys().filter(|f| a.keys[*f] != b.keys[*f]).collect();
    assert_eq!(moved, ["a", "b"]);
    // A path outside the flavors moves every key, an ignored one none.
    let mut docs = files.clone();
    docs.insert("docs/guide".into(), Item::File("new".into()));
    assert_eq!(keys(&commit(&docs), &s), a);
    let mut shared = files.clone();
    shared.insert("shared/build.sh".into(), Item::File("1".into()));
    let c = keys(&commit(&shared), &s);
    assert_ne!(a.shared, c.shared);
    // Another project or variant is another key.
    let other = input_keys(KeyInput {
        project: "slc-release",
        ..KeyInput {
            trees: &commit(&files).trees,
            settings: &s,
            flavors: &commit(&files).flavors,
            links: &commit(&files).links,
            ignored: &ignored(),
            project: "slc-ci",
            variant: Variant::Ci,
            release_id: None,
        }
    })
    .unwrap();
    assert_ne!(other.shared, a.shared);
}

#[test]
fn a_flavors_directory_reached_through_a_link_gives_no_keys() {
    let mut files = Files::new();
    files.insert("real/a/Dockerfile".into(), Item::File("0".into()));
    files.insert("flavors".into(), Item::Link("real".into()));
    let mut trees = Trees::default();
    trees.root = tree_of(&files, "", &mut trees);
    let flavors = FlavorSet::from_names(["a"]).unwrap();
    let s = Settings::default();
    let got = input_keys(KeyInput {
        trees: &trees,
        settings: &s,
        flavors: &flavors,
        links: &[],
        ignored: &[],
        project: "p",
        variant: Variant::Ci,
        release_id: None,
    });
    assert_eq!(got, Err(KeyError::FlavorsDirLinked("flavors".into())));
}

#[test]
fn the_rebuild_trailer_is_found_in_any_case() {
    assert!(asks_rebuild("Bump numpy\n\nflavor-ci: rebuild\n"));
    assert!(asks_rebuild("x\n\nFlavor-CI:   Rebuild"));
    assert!(!asks_rebuild("flavor-ci: rebuilt everything"));
    assert!(!asks_rebuild("rebuild flavor-ci"));
}

#[test]
fn max_age_reads_days_and_hours_and_names_the_fix() {
    assert_eq!("14d".parse::<MaxAge>(), Ok(MaxAge(14 * 86_400)));
    assert_eq!(
        "36h".parse::<MaxAge>().map(|m| m.to_string()),
        Ok("36h".into())
    );
    let e = "2 weeks".parse::<MaxAge>().unwrap_err();
    assert!(e.contains("like `14d` or `36h`"), "{e}");
    assert!("0d".parse::<MaxAge>().is_err() && "400d".parse::<MaxAge>().is_err());
    let s: Settings =
        serde_json::from_str(r#"{"skip":{"max-age":"3d","on":["merge-groups"]}}"#).unwrap();
    assert_eq!(s.skip.max_age, MaxAge(3 * 86_400));
    let e = serde_json::from_str::<Settings>(r#"{"skip":{"on":["schedules"]}}"#).unwrap_err();
    assert!(e.to_string().contains("schedules always build"), "{e}");
    let e = serde_json::from_str::<Settings>(r#"{"skip":{"on":["push"]}}"#).unwrap_err();
    assert!(
        e.to_string()
            .contains("\"push\" is not a trigger; skip.on takes"),
        "{e}"
    );
}

fn record() -> GreenRecord {
    GreenRecord {
        key: "k".into(),
        flavor: "a".into(),
        build_id: "ci:1".into(),
        batch_id: "ci:b".into(),
        project: "ci".into(),
        commit: "c0ffee".into(),
        git_ref: "refs/heads/main".into(),
        trigger: RunTrigger::Push,
        at: 0,
        seconds: Some(600),
    }
}

fn facts(status: &str, project: &str, commit: &str, ended: u64) -> BuildFacts {
    BuildFacts {
        id: "ci:1".into(),
        status: status.into(),
        project: project.into(),
        commit: commit.into(),
        ended_at: Some(ended),
        seconds: Some(610),
    }
}

#[test]
fn a_record_is_trusted_only_when_codebuild_confirms_it() {
    let day = 86_400_000;
    let now = 10 * day;
    let ok = trust(
        "k",
        "ci",
        &record(),
        Some(&facts("SUCCEEDED", "ci", "c0ffee", 8 * day)),
        now,
        14 * 86_400,
    )
    .unwrap();
    assert_eq!((ok.seconds, ok.built_at), (Some(610), 8 * day));
    assert_eq!(
        ok.evidence(now, "[ci:1](u)"),
        "identical inputs built green in [ci:1](u) at c0ffee, 2 days ago"
    );
    let no =
        |f: Option<&BuildFacts>, max: u64| trust("k", "ci", &record(), f, now, max).unwrap_err();
    assert_eq!(no(None, 14 * 86_400), Distrust::NoBuild("ci:1".into()));
    assert!(matches!(
        no(Some(&facts("FAILED", "ci", "c0ffee", now)), 14 * 86_400),
        Distrust::NotGreen { .. }
    ));
    assert!(matches!(
        no(
            Some(&facts("SUCCEEDED", "other", "c0ffee", now)),
            14 * 86_400
        ),
        Distrust::WrongProject { .. }
    ));
    assert!(matches!(
        no(Some(&facts("SUCCEEDED", "ci", "badbad", now)), 14 * 86_400),
        Distrust::WrongCommit { .. }
    ));
    let old = no(Some(&facts("SUCCEEDED", "ci", "c0ffee", day)), 3 * 86_400);
    assert_eq!(
        old.to_string(),
        "build ci:1 ended 9 days ago, longer ago than skip.max-age (3d)"
    );
    assert!(matches!(
        trust("other", "ci", &record(), None, now, 1),
        Err(Distrust::OtherKey { .. })
    ));
    assert!(matches!(
        trust("k", "release", &record(), None, now, 1),
        Err(Distrust::OtherProject { .. })
    ));
    assert_eq!(ago(59), "just now");
    assert_eq!(ago(3600), "1 hour ago");
}

#[test]
fn only_trusted_runs_write_the_ledger() {
    assert!(trusted(RunTrigger::Push, "refs/heads/main", true, false));
    assert!(trusted(RunTrigger::Push, "refs/tags/v1", false, false));
    assert!(!trusted(
        RunTrigger::Push,
        "refs/heads/feature",
        false,
        true
    ));
    assert!(trusted(
        RunTrigger::MergeGroup,
        "refs/heads/gh-readonly-queue/main/x",
        false,
        false
    ));
    assert!(trusted(
        RunTrigger::PullRequest,
        "refs/pull/1/head",
        false,
        true
    ));
    assert!(!trusted(
        RunTrigger::PullRequest,
        "refs/pull/1/head",
        false,
        false
    ));
    assert!(trusted(
        RunTrigger::Schedule,
        "refs/heads/main",
        true,
        false
    ));
}
