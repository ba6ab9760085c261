use serde_json::json;

use super::push::*;
use crate::flavors::FlavorSet;
use crate::glob::Glob;
use crate::settings::Settings;

const A: &str = "1111111111111111111111111111111111111111";
const B: &str = "2222222222222222222222222222222222222222";
const ZERO: &str = "0000000000000000000000000000000000000000";

fn push(value: serde_json::Value) -> Push {
    let mut base = json!({
        "ref": "refs/heads/main", "before": A, "after": B,
        "created": false, "deleted": false, "forced": false,
        "commits": [], "head_commit": {"id": B, "tree_id": "3333333333333333333333333333333333333333"},
        "repository": {"full_name": "acme/slc"}
    });
    for (k, v) in value.as_object().unwrap() {
        base[k] = v.clone();
    }
    Push::from_json(base.to_string().as_bytes()).unwrap()
}

fn commits(paths: &[&str]) -> serde_json::Value {
    json!([{"id": B, "added": [], "removed": [], "modified": paths}])
}

fn routing() -> Routing {
    Routing {
        branches: Glob::list("main, release/*").unwrap(),
        tags: Glob::list("v*").unwrap(),
        release: Ok(()),
    }
}

fn settings(yaml: &str) -> Settings {
    Settings::from_yaml(yaml).unwrap()
}

fn flavors() -> FlavorSet {
    FlavorSet::from_names(["base", "python-3.10", "r-4.4", "standard"]).unwrap()
}

#[test]
fn payload_errors_name_the_field() {
    let err = Push::from_json(b"{\"ref\": 5}").unwrap_err().to_string();
    assert!(err.contains("`ref`"), "{err}");
    let err = Push::from_json(b"[]").unwrap_err().to_string();
    assert!(err.contains("not valid"), "{err}");
    let body =
        json!({"ref": "refs/heads/main", "after": "HEAD", "repository": {"full_name": "a/b"}});
    let err = Push::from_json(body.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a commit id"), "{err}");
    let body = json!({"ref": "refs/heads/main", "after": B, "repository": {"full_name": "ab"}});
    let err = Push::from_json(body.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("owner/name"), "{err}");
    for bad in ["a/../b", "../b", "a/b c", "a/"] {
        let body = json!({"ref": "refs/heads/main", "after": B, "repository": {"full_name": bad}});
        let err = Push::from_json(body.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("owner/name"), "{bad}: {err}");
    }
    let body = json!({"ref": "refs/heads/main", "after": B, "commits": [{"added": "x"}], "repository": {"full_name": "a/b"}});
    let err = Push::from_json(body.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("commits[0].added"), "{err}");
}

#[test]
fn the_tree_id_is_used_only_when_it_belongs_to_the_pushed_commit() {
    assert_eq!(
        push(json!({})).tree_id(),
        Some("3333333333333333333333333333333333333333")
    );
    assert_eq!(
        push(json!({"head_commit": {"id": A, "tree_id": B}})).tree_id(),
        None
    );
    assert_eq!(push(json!({"head_commit": null})).tree_id(), None);
}

#[test]
fn refs_route_to_ci_release_or_nowhere_with_a_reason() {
    let r = routing();
    assert_eq!(
        route(&push(json!({})), &r),
        Route::Ci {
            branch: "main".into()
        }
    );
    assert_eq!(
        route(&push(json!({"ref": "refs/heads/release/2.0"})), &r),
        Route::Ci {
            branch: "release/2.0".into()
        }
    );
    assert_eq!(
        route(&push(json!({"ref": "refs/tags/v1.2"})), &r),
        Route::Release { tag: "v1.2".into() }
    );
    let reason = |p: Push, r: &Routing| match route(&p, r) {
        Route::Ignore { reason } => reason,
        other => panic!("{other:?}"),
    };
    let why = reason(push(json!({"ref": "refs/heads/feature/x"})), &r);
    assert_eq!(
        why,
        "branch feature/x matches none of the branch patterns (main, release/*)"
    );
    let why = reason(
        push(json!({"deleted": true, "after": ZERO, "head_commit": null})),
        &r,
    );
    assert_eq!(
        why,
        "refs/heads/main was deleted; there is nothing to build"
    );
    let why = reason(push(json!({"after": ZERO})), &r);
    assert!(why.contains("deleted"), "{why}");
    let why = reason(push(json!({"ref": "refs/tags/nightly"})), &r);
    assert!(why.contains("tag patterns (v*)"), "{why}");
    let no_release = Routing {
        release: Err("no release project is configured".into()),
        ..routing()
    };
    let why = reason(push(json!({"ref": "refs/tags/v1"})), &no_release);
    assert_eq!(
        why,
        "tag v1 was pushed but no release project is configured"
    );
    let why = reason(push(json!({"ref": "refs/notes/commits"})), &r);
    assert!(why.contains("neither a branch nor a tag"), "{why}");
}

#[test]
fn changes_in_flavor_directories_select_those_flavors_and_their_dependents() {
    let s = settings("flavors:\n  standard:\n    depend-on: [base]\n");
    let sel = select(
        &push(json!({"commits": commits(&["flavors/base/Dockerfile", "flavors/r-4.4/x"])})),
        &s,
        &flavors(),
        &[],
        &[],
    );
    assert_eq!(
        sel,
        Selection::Some {
            flavors: vec!["base".into(), "r-4.4".into(), "standard".into()],
            reason: "changes under the flavors base, r-4.4, and the flavors that depend on them (standard)".into(),
            why: [
                ("base", "flavors/base/Dockerfile changed"),
                ("r-4.4", "flavors/r-4.4/x changed"),
                ("standard", "depends on base"),
            ]
            .into_iter()
            .map(|(f, w)| (f.to_owned(), w.to_owned()))
            .collect(),
        }
    );
}

#[test]
fn the_union_over_all_commits_counts() {
    let p = push(json!({"commits": [
        {"id": A, "added": ["flavors/base/a"], "removed": [], "modified": []},
        {"id": B, "added": [], "removed": ["flavors/python-3.10/b"], "modified": []},
    ]}));
    let sel = select(&p, &Settings::default(), &flavors(), &[], &[]);
    match sel {
        Selection::Some { flavors, .. } => assert_eq!(flavors, ["base", "python-3.10"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_changes_created_forced_and_incomplete_pushes_build_everything() {
    let s = Settings::default();
    let all = |p: Push| match select(&p, &s, &flavors(), &[], &[]) {
        Selection::All { reason } => reason,
        other => panic!("{other:?}"),
    };
    let why = all(push(
        json!({"commits": commits(&["flavors/base/x", "scripts/build.sh"])}),
    ));
    assert_eq!(
        why,
        "scripts/build.sh changed outside the flavor directories: building every flavor"
    );
    assert!(
        all(push(
            json!({"created": true, "commits": commits(&["flavors/base/x"])})
        ))
        .contains("new branch")
    );
    assert_eq!(
        all(push(
            json!({"created": true, "ref": "refs/tags/v1.0.0", "commits": commits(&["flavors/base/x"])})
        )),
        "a new tag: building every flavor"
    );
    assert!(
        all(push(
            json!({"forced": true, "commits": commits(&["flavors/base/x"])})
        ))
        .contains("forced")
    );
    assert!(all(push(json!({"commits": []}))).contains("no commits"));
    let many: Vec<serde_json::Value> = (0..MAX_LISTED_COMMITS)
        .map(|_| json!({"id": B, "modified": ["flavors/base/x"]}))
        .collect();
    assert!(all(push(json!({"commits": many}))).contains("may be incomplete"));
    // A file directly in the flavors directory, and hidden or excluded directories, may be
    // shared by every flavor.
    assert!(
        all(push(json!({"commits": commits(&["flavors/common.sh"])})))
            .contains("flavors/common.sh")
    );
    assert!(all(push(json!({"commits": commits(&["flavors/.shared/x"])}))).contains(".shared"));
    assert!(
        all(push(
            json!({"commits": commits(&["flavors/__pycache__/x"])})
        ))
        .contains("__pycache__")
    );
    let many: Vec<String> = (0..5).map(|i| format!("src/{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(
        all(push(json!({"commits": commits(&many)})))
            .starts_with("src/0, src/1, src/2 and 2 more changed")
    );
}

#[test]
fn ignored_paths_and_removed_flavors_build_nothing() {
    let s = Settings::default();
    let ignored = Glob::list("docs, **/*.md").unwrap();
    let sel = select(
        &push(json!({"commits": commits(&["docs/index.html", "flavors/base/README.md"])})),
        &s,
        &flavors(),
        &[],
        &ignored,
    );
    assert_eq!(
        sel,
        Selection::Nothing {
            reason: "only ignored paths changed (docs/index.html, flavors/base/README.md): nothing to build".into()
        }
    );
    let sel = select(
        &push(json!({"commits": [{"id": B, "removed": ["flavors/old/Dockerfile"]}]})),
        &s,
        &flavors(),
        &[],
        &ignored,
    );
    assert_eq!(
        sel,
        Selection::Nothing {
            reason: "removed flavors changed (old): nothing to build".into()
        }
    );
}

#[test]
fn changes_under_a_link_target_select_the_linked_flavor() {
    let links = [
        LinkedFlavor {
            flavor: "python-3.10".into(),
            path: "ext/slc/flavors/python-3.10".into(),
        },
        LinkedFlavor {
            flavor: "r-4.4".into(),
            path: "ext/slc".into(),
        },
    ];
    let sel = select(
        &push(json!({"commits": commits(&["ext/slc/flavors/python-3.10/Dockerfile"])})),
        &Settings::default(),
        &flavors(),
        &links,
        &[],
    );
    match sel {
        Selection::Some { flavors, .. } => assert_eq!(flavors, ["python-3.10", "r-4.4"]),
        other => panic!("{other:?}"),
    }
    // A submodule update shows up as a change of the submodule's path.
    let sel = select(
        &push(json!({"commits": commits(&["ext/slc"])})),
        &Settings::default(),
        &flavors(),
        &links,
        &[],
    );
    match sel {
        Selection::Some { flavors, .. } => assert_eq!(flavors, ["r-4.4"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_nested_flavors_dir_is_honoured() {
    let s = settings("flavors-dir: build/flavors/\n");
    let sel = select(
        &push(json!({"commits": commits(&["build/flavors/base/x"])})),
        &s,
        &flavors(),
        &[],
        &[],
    );
    assert!(
        matches!(sel, Selection::Some { ref flavors, .. } if flavors == &["base"]),
        "{sel:?}"
    );
}

#[test]
fn links_resolve_inside_the_repository_only() {
    assert_eq!(
        resolve_link("flavors/python-3.10", "../ext/slc/flavors/python-3.10").as_deref(),
        Some("ext/slc/flavors/python-3.10")
    );
    assert_eq!(
        resolve_link("flavors/a", "./b/").as_deref(),
        Some("flavors/b")
    );
    assert_eq!(resolve_link("flavors/a", "../../x"), None);
    assert_eq!(resolve_link("flavors/a", "/etc"), None);
    assert_eq!(resolve_link("flavors/a", "..").as_deref(), Some(""));
}

#[test]
fn merge_queue_branches_never_build_whatever_the_patterns_say() {
    let all = Routing {
        branches: Glob::list("**").unwrap(),
        ..routing()
    };
    let queue = format!("refs/heads/gh-readonly-queue/main/pr-7-{A}");
    let p = push(json!({"ref": queue}));
    match route(&p, &all) {
        Route::Ignore { reason } => assert!(reason.contains("merge queue branch"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn merge_queue_settings_read_and_refuse_unknown_values() {
    let s =
        settings("merge-queue:\n  compare: target-branch\nnotifications:\n  merge-groups: true\n");
    assert_eq!(
        s.merge_queue.compare,
        crate::settings::MergeQueueCompare::TargetBranch
    );
    assert!(s.notifications.merge_groups);
    assert_eq!(
        Settings::default().merge_queue.compare,
        crate::settings::MergeQueueCompare::GroupBase
    );
    let err = Settings::from_yaml("merge-queue:\n  compare: head\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("merge-queue.compare") || err.contains("compare"),
        "{err}"
    );
    // The defaults stay out of the stored form.
    assert!(
        !Settings::default()
            .to_canonical_json()
            .contains("merge-queue")
    );
}
