//! The `flavor-ci` binary as a user runs it: output, files, exit codes.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn flavor_ci(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flavor-ci"))
        .args(args)
        .output()
        .unwrap()
}

/// `flavor-ci generate -r REPO -o OUT`.
fn generate(repo: &Path, out: &Path) -> Output {
    flavor_ci(&[
        "generate",
        "-r",
        repo.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/script-languages")
}

fn repo_with(flavors: &[&str], settings: Option<&str>) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in flavors {
        std::fs::create_dir_all(tmp.path().join("flavors").join(f)).unwrap();
    }
    if let Some(s) = settings {
        std::fs::write(tmp.path().join("flavor-ci.yaml"), s).unwrap();
    }
    tmp
}

#[test]
fn generate_writes_the_example_buildspecs_and_says_what_it_wrote() {
    let out_dir = tempfile::tempdir().unwrap();
    let o = flavor_ci(&[
        "generate",
        "--repo",
        example().to_str().unwrap(),
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("flavors: 9 of 9"), "{text}");
    assert!(text.contains("ci-batch-buildspec.yaml ("), "{text}");
    assert!(text.contains("release-batch-buildspec.yaml ("), "{text}");
    let golden = include_str!("../../../tests/snapshots/generate__ci-batch-buildspec.yaml.snap");
    let written = std::fs::read_to_string(out_dir.path().join("ci-batch-buildspec.yaml")).unwrap();
    assert!(
        golden.ends_with(&written),
        "the CLI and the library disagree"
    );
    let v = flavor_ci(&[
        "validate",
        out_dir
            .path()
            .join("ci-batch-buildspec.yaml")
            .to_str()
            .unwrap(),
    ]);
    assert!(v.status.success(), "{}", stdout(&v));
}

#[test]
fn generate_without_a_settings_file_uses_the_defaults_and_says_so() {
    let repo = repo_with(&["a", "b"], None);
    let out = repo.path().join("out");
    let o = flavor_ci(&[
        "generate",
        "-r",
        repo.path().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("settings: built-in defaults (no flavor-ci.yaml in"),
        "{}",
        stdout(&o)
    );
    assert!(out.join("release-batch-buildspec.yaml").exists());
}

#[test]
fn generate_removes_outputs_the_settings_no_longer_produce() {
    let repo = repo_with(&["a"], None);
    let out = repo.path().join("out");
    assert!(generate(repo.path(), &out).status.success());
    std::fs::write(
        repo.path().join("flavor-ci.yaml"),
        "release:\n  enabled: false\n",
    )
    .unwrap();
    let o = generate(repo.path(), &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("removed stale"), "{}", stdout(&o));
    assert!(!out.join("release-batch-buildspec.yaml").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["ci-batch-buildspec.yaml"]);
}

#[test]
fn bad_input_exits_1_with_a_clear_message_and_writes_nothing() {
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["python-3.10", "python_3.10"],
            None,
            "flavors `python-3.10` and `python_3.10` both map to build identifier `build_python_3_10`; rename one",
        ),
        (
            &["a"],
            Some("batch:\n  max-build: 3\n"),
            "line 2: batch.max-build: unknown key `max-build`",
        ),
        (
            &["a"],
            Some("build:\n  compute-type: HUGE\n"),
            "line 2: build.compute-type: unknown compute type `HUGE`",
        ),
        (
            &["a"],
            Some("flavors:\n  a:\n    depend-on: [b]\n"),
            "flavors.a.depend-on[0]: there is no flavor `b`",
        ),
        (
            &["a"],
            Some("build: [\n"),
            "flavor-ci.yaml has problems:\nline 2",
        ),
        (&[], None, "holds no flavor directories"),
    ];
    for (flavors, settings, expected) in cases {
        let repo = repo_with(flavors, *settings);
        if flavors.is_empty() {
            std::fs::create_dir_all(repo.path().join("flavors")).unwrap();
        }
        let out = repo.path().join("out");
        let o = flavor_ci(&[
            "generate",
            "-r",
            repo.path().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{expected}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(expected),
            "expected {expected:?}\ngot {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked") && !stderr(&o).contains("backtrace"));
        assert!(!out.exists(), "nothing may be written on bad input");
    }
}

#[cfg(unix)]
#[test]
fn a_broken_flavor_link_names_the_path_and_the_fix() {
    let repo = repo_with(&["a"], None);
    std::os::unix::fs::symlink("../submodule/flavors/b", repo.path().join("flavors/b")).unwrap();
    let o = flavor_ci(&["flavors", "-r", repo.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("flavors/b points to ../submodule/flavors/b, which does not exist"),
        "{err}"
    );
    assert!(
        err.contains("git submodule update --init --recursive"),
        "{err}"
    );
}

#[test]
fn flavors_lists_names_and_identifiers() {
    let o = flavor_ci(&["flavors", "--repo", example().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o)
            .contains("template-Exasol-all-python-3.10\tbuild_template_Exasol_all_python_3_10\n")
    );
}

#[test]
fn generate_for_selected_flavors_and_unknown_ones() {
    let out = tempfile::tempdir().unwrap();
    let ex = example();
    let o = flavor_ci(&[
        "generate",
        "-r",
        ex.to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
        "-f",
        "standard-EXASOL-all",
        "--release-id",
        "9.9.9",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("flavors: 1 of 9 (standard-EXASOL-all)"));
    let release = std::fs::read_to_string(out.path().join("release-batch-buildspec.yaml")).unwrap();
    assert!(release.contains("RELEASE_ID: '9.9.9'"));
    let o = flavor_ci(&[
        "generate",
        "-r",
        ex.to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
        "-f",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no such flavor(s): nope"));
}

#[test]
fn validate_prints_every_problem_with_file_line_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "version: 0.2\nbatch:\n  build-graph:\n    - identifier: build-a\n    - identifier: b\n      depend-on: [c]\nphases:\n  build:\n    commands: x\n",
    )
    .unwrap();
    let o = flavor_ci(&["validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    let b = bad.display();
    assert!(
        text.contains(&format!(
            "{b}:4: error: batch.build-graph[0].identifier: identifier `build-a` contains '-'"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{b}:6: error: batch.build-graph[1].depend-on[0]: `c` is not an identifier"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{b}:9: error: phases.build.commands: expected a list"
        )),
        "{text}"
    );
    assert!(
        text.ends_with("1 file(s): 3 error(s), 0 warning(s)\n"),
        "{text}"
    );
}

#[test]
fn validate_enforces_the_batch_size_and_reports_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yml");
    std::fs::write(&spec, "version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n    - identifier: b\nphases: {build: {commands: [x]}}\n").unwrap();
    assert!(
        flavor_ci(&["validate", spec.to_str().unwrap()])
            .status
            .success()
    );
    let o = flavor_ci(&["validate", "--max-builds", "1", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("the batch has 2 builds but the project allows at most 1"));
    let o = flavor_ci(&["validate", dir.path().join("missing.yml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("cannot read"));
}

#[test]
fn usage_errors_exit_2_and_help_explains_the_exit_codes() {
    assert_eq!(flavor_ci(&["validate"]).status.code(), Some(2));
    assert_eq!(flavor_ci(&["frobnicate"]).status.code(), Some(2));
    let help = stdout(&flavor_ci(&["--help"]));
    assert!(
        help.contains("Exit status: 0 success, 1 invalid input"),
        "{help}"
    );
    assert!(stdout(&flavor_ci(&["generate", "--help"])).contains("--flavor <NAME>"));
}

/// Each way YAML and JSON nest, far past the bound (the shapes that overflowed the stack).
fn deep_forms() -> Vec<(&'static str, String)> {
    let n = 100_000;
    let mut block_map = String::new();
    for i in 0..2_000 {
        block_map.push_str(&" ".repeat(i));
        block_map.push_str("k:\n");
    }
    vec![
        ("block sequence", format!("{}v\n", "- ".repeat(n))),
        (
            "flow sequence",
            format!("{}{}\n", "[".repeat(n), "]".repeat(n)),
        ),
        (
            "flow mapping",
            format!("{}v{}\n", "{k: ".repeat(n), "}".repeat(n)),
        ),
        (
            "json object",
            format!("{}1{}\n", "{\"k\":".repeat(n), "}".repeat(n)),
        ),
        ("block mapping", block_map),
    ]
}

#[test]
fn deep_nesting_in_any_input_is_an_error_never_a_crash() {
    let deep = "more than 100 levels deep";
    for (form, text) in deep_forms() {
        // A buildspec, and a CloudFormation template (told apart by content: both fail to read).
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("deep.yaml");
        std::fs::write(&file, &text).unwrap();
        let o = flavor_ci(&["validate", "--offline", file.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{form}: {}", stderr(&o));
        assert!(stdout(&o).contains(deep), "{form}: {}", stdout(&o));

        let template = format!(
            "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  B:\n    Type: Custom::Buildspecs\n    Properties:\n      Deep:\n{}",
            text.lines()
                .map(|l| format!("        {l}\n"))
                .collect::<String>()
        );
        std::fs::write(&file, template).unwrap();
        let o = flavor_ci(&["validate", "--offline", file.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{form}: {}", stderr(&o));
        assert!(stdout(&o).contains(deep), "{form}: {}", stdout(&o));

        // Settings, at the top and under a key.
        for settings in [
            text.clone(),
            format!("build:\n  variables:\n    A:\n{}", indent(&text)),
        ] {
            let repo = repo_with(&["a"], Some(&settings));
            let out = repo.path().join("out");
            let o = generate(repo.path(), &out);
            assert_eq!(o.status.code(), Some(1), "{form}: {}", stderr(&o));
            assert!(stderr(&o).contains(deep), "{form}: {}", stderr(&o));
            assert!(!out.exists(), "{form}: nothing is written");
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      {l}\n")).collect()
}

#[test]
fn a_failed_write_leaves_every_earlier_output_as_it_was() {
    let repo = repo_with(&["a"], None);
    let out = repo.path().join("out");
    assert!(generate(repo.path(), &out).status.success());
    let ci = out.join("ci-batch-buildspec.yaml");
    let before = std::fs::read_to_string(&ci).unwrap();
    // The second output cannot be written: a directory is in its place.
    std::fs::remove_file(out.join("release-batch-buildspec.yaml")).unwrap();
    std::fs::create_dir(out.join("release-batch-buildspec.yaml")).unwrap();
    std::fs::write(
        repo.path().join("flavor-ci.yaml"),
        "build:\n  variables:\n    CHANGED: yes\n",
    )
    .unwrap();
    let o = generate(repo.path(), &out);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("release-batch-buildspec.yaml"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&ci).unwrap(), before);
    let mut names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ci-batch-buildspec.yaml", "release-batch-buildspec.yaml"]
    );
}

#[test]
fn generate_says_plainly_when_the_builds_do_nothing_yet() {
    let repo = repo_with(&["a"], None);
    let out = repo.path().join("out");
    let o = generate(repo.path(), &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "warning: the ci and release builds do nothing yet: no build commands are set"
        ),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("`build.phases`"), "{}", stderr(&o));
    // With commands for CI only, the notice names the release builds alone.
    std::fs::write(
        repo.path().join("flavor-ci.yaml"),
        "ci:\n  phases:\n    build:\n      commands: [make]\n",
    )
    .unwrap();
    let o = generate(repo.path(), &out);
    assert!(
        stderr(&o).contains("warning: the release builds do nothing yet"),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        repo.path().join("flavor-ci.yaml"),
        "build:\n  phases:\n    build:\n      commands: [make]\n",
    )
    .unwrap();
    let o = generate(repo.path(), &out);
    assert!(!stderr(&o).contains("do nothing yet"), "{}", stderr(&o));
}

#[test]
fn the_flavors_directory_is_one_path_inside_the_repository_used_everywhere() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("images/flavors/a")).unwrap();
    let out = repo.path().join("out");
    // --flavors-dir, relative to where the command runs, becomes the repository path the
    // builds list.
    let o = Command::new(env!("CARGO_BIN_EXE_flavor-ci"))
        .current_dir(repo.path())
        .args(["generate", "--flavors-dir", "./images/flavors", "-o", "out"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let ci = std::fs::read_to_string(out.join("ci-batch-buildspec.yaml")).unwrap();
    assert!(ci.contains("ls -la 'images/flavors'/\"${FLAVOR}\""), "{ci}");
    // Outside the repository: refused.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(elsewhere.path().join("a")).unwrap();
    let o = flavor_ci(&[
        "generate",
        "-r",
        repo.path().to_str().unwrap(),
        "--flavors-dir",
        elsewhere.path().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is outside the repository"),
        "{}",
        stderr(&o)
    );
    // The setting, absolute or through `..`: refused by name.
    for dir in ["/srv/flavors", "../flavors"] {
        std::fs::write(
            repo.path().join("flavor-ci.yaml"),
            format!("flavors-dir: {dir}\n"),
        )
        .unwrap();
        let o = generate(repo.path(), &out);
        assert_eq!(o.status.code(), Some(1), "{dir}");
        assert!(
            stderr(&o).contains("line 1: flavors-dir: `"),
            "{}",
            stderr(&o)
        );
    }
}

#[cfg(unix)]
#[test]
fn a_flavor_link_that_leaves_the_repository_is_refused_as_the_webhook_refuses_it() {
    let repo = repo_with(&["a"], None);
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("b")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("b"), repo.path().join("flavors/b")).unwrap();
    let o = flavor_ci(&["flavors", "-r", repo.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("which leaves the repository"),
        "{}",
        stderr(&o)
    );
}

#[cfg(unix)]
#[test]
fn io_failures_exit_3_everywhere() {
    // A flavors directory that cannot be read (here: a link loop; permissions do not stop root).
    let repo = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("flavors", repo.path().join("flavors")).unwrap();
    let o = flavor_ci(&["flavors", "-r", repo.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    // A settings file that cannot be read.
    let repo = repo_with(&["a"], None);
    std::fs::create_dir(repo.path().join("flavor-ci.yaml")).unwrap();
    let o = flavor_ci(&["flavors", "-r", repo.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

#[test]
fn the_aws_commands_are_listed_in_every_build_and_say_how_to_get_them() {
    let o = flavor_ci(&["health", "--help"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("--stack"), "{}", stdout(&o));
    #[cfg(not(feature = "aws"))]
    for args in [&["health"][..], &["deploy-source-credentials"][..]] {
        let o = flavor_ci(args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("cargo install --locked --path crates/cli --features aws"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    use std::io::{BufRead, BufReader};
    let names: Vec<String> = (0..3000).map(|i| format!("flavor-{i:04}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let repo = repo_with(&refs, None);
    // `flavor-ci flavors | head -1`: the reader goes away after one line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_flavor-ci"))
        .args(["flavors", "-r", repo.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "flavor-0000\tbuild_flavor_0000\n");
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}", o.status);
    assert_eq!(stderr(&o), "", "no panic, no message");
}

/// Runs git in `dir` with a fixed identity; fails the test when git fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=ci@example.com", "-c", "user.name=ci"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    stdout(&o).trim().to_owned()
}

/// A git repository on `main`: flavors a, b (depends on a) and c (a link into vendor/), one
/// commit; then a `feature` branch checked out.
fn git_repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    git(root, &["init", "-q", "-b", "main"]);
    for d in ["flavors/a", "flavors/b", "vendor/c", "docs"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
        std::fs::write(root.join(d).join("file"), "1").unwrap();
    }
    std::os::unix::fs::symlink("../vendor/c", root.join("flavors/c")).unwrap();
    std::fs::write(
        root.join("flavor-ci.yaml"),
        "flavors:\n  b:\n    depend-on: [a]\n",
    )
    .unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "init"]);
    git(root, &["switch", "-qc", "feature"]);
    tmp
}

fn plan(repo: &Path, more: &[&str]) -> Output {
    let mut args = vec!["plan", "--repo", repo.to_str().unwrap()];
    args.extend_from_slice(more);
    flavor_ci(&args)
}

#[test]
fn plan_names_each_flavor_with_the_change_or_rule_that_selected_it() {
    let repo = git_repo();
    let root = repo.path();
    // Uncommitted changes count by default: one in a flavor, one behind a link.
    std::fs::write(root.join("vendor/c/file"), "2").unwrap();
    std::fs::write(root.join("flavors/a/new"), "untracked").unwrap();
    let o = plan(root, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("builds 3 of 3 flavors"), "{text}");
    assert!(text.contains("  a\tflavors/a/new changed"), "{text}");
    assert!(text.contains("  b\tdepends on a"), "{text}");
    assert!(
        text.contains("  c\tvendor/c/file changed, under vendor/c where the flavor links"),
        "{text}"
    );

    // Committed: --base and --head compare as a pull request does (from the merge base).
    git(root, &["checkout", "-q", "--", "."]);
    std::fs::remove_file(root.join("flavors/a/new")).unwrap();
    std::fs::write(root.join("flavors/b/file"), "2").unwrap();
    git(root, &["commit", "-qam", "b"]);
    let o = plan(root, &["--base", "main", "--head", "HEAD"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("builds 1 of 3 flavors"), "{text}");
    assert!(text.contains("  b\tflavors/b/file changed"), "{text}");

    // Ignored paths select nothing; a change elsewhere selects everything.
    std::fs::write(root.join("docs/file"), "2").unwrap();
    let o = plan(root, &["--base", "HEAD", "--ignore", "docs"]);
    assert!(
        stdout(&o).contains("nothing to build: only ignored paths changed (docs/file)"),
        "{}",
        stdout(&o)
    );
    let o = plan(root, &["--base", "HEAD"]);
    assert!(
        stdout(&o)
            .contains("builds all 3 flavors: docs/file changed outside the flavor directories"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn plan_out_writes_the_spec_generate_writes_for_the_same_flavors() {
    let repo = git_repo();
    let root = repo.path();
    std::fs::write(root.join("flavors/a/file"), "2").unwrap();
    let planned = tempfile::tempdir().unwrap();
    let o = plan(root, &["--out", planned.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let generated = tempfile::tempdir().unwrap();
    let o = flavor_ci(&[
        "generate",
        "-r",
        root.to_str().unwrap(),
        "-o",
        generated.path().to_str().unwrap(),
        "--flavor",
        "a",
        "--flavor",
        "b",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let name = "ci-batch-buildspec.yaml";
    assert_eq!(
        std::fs::read_to_string(planned.path().join(name)).unwrap(),
        std::fs::read_to_string(generated.path().join(name)).unwrap()
    );
}

#[test]
fn plan_refuses_what_it_cannot_plan_and_says_how_to() {
    let repo = git_repo();
    let root = repo.path();
    let first = git(root, &["rev-parse", "HEAD"]);
    std::fs::write(root.join("flavors/a/file"), "2").unwrap();
    git(root, &["commit", "-qam", "a"]);
    // A commit compared with itself changed nothing.
    let o = plan(root, &["--base", "main", "--head", &first]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("nothing to build: no file changed"),
        "{}",
        stdout(&o)
    );
    let o = plan(root, &["--base", "no-such-rev"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no-such-rev is not a commit"),
        "{}",
        stderr(&o)
    );
    let o = plan(repo_with(&["x"], None).path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not in a git repository; plan reads the changes from git"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plan_in_a_subdirectory_plans_its_flavors_and_counts_only_its_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    git(root, &["init", "-q", "-b", "main"]);
    for d in ["proj/flavors/a", "proj/flavors/b", "other"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
        std::fs::write(root.join(d).join("file"), "1").unwrap();
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "init"]);
    git(root, &["switch", "-qc", "feature"]);
    std::fs::write(root.join("proj/flavors/a/file"), "2").unwrap();
    std::fs::write(root.join("other/file"), "2").unwrap();
    let o = plan(&root.join("proj"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("planning proj of the git repository")
            && text.contains("builds 1 of 2 flavors")
            && text.contains("  a\tflavors/a/file changed"),
        "{text}"
    );
    // The same, committed and read from git's objects.
    git(root, &["commit", "-qam", "change"]);
    let o = plan(&root.join("proj"), &["--base", "main", "--head", "HEAD"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("  a\tflavors/a/file changed"),
        "{}",
        stdout(&o)
    );
    // A change outside the directory alone builds nothing.
    std::fs::write(root.join("other/file"), "3").unwrap();
    let o = plan(&root.join("proj"), &["--base", "HEAD"]);
    assert!(
        stdout(&o).contains("nothing to build: no file changed\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn plan_event_shows_what_the_webhook_would_do_with_a_push() {
    let repo = git_repo();
    let root = repo.path();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let push = |git_ref: &str, files: &[&str]| {
        let body = format!(
            r#"{{"ref": "{git_ref}", "after": "{sha}", "repository": {{"full_name": "acme/slc"}}, "commits": [{{"modified": {}}}]}}"#,
            serde_json_array(files)
        );
        let file = root.join("push.json");
        std::fs::write(&file, body).unwrap();
        plan(root, &["--event", file.to_str().unwrap()])
    };
    let o = push("refs/heads/main", &["flavors/b/file"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "route: branch main → the CI project, commit {sha}"
        )),
        "{text}"
    );
    assert!(text.contains("  b\tflavors/b/file changed"), "{text}");
    let o = push("refs/heads/topic", &["flavors/b/file"]);
    assert!(
        stdout(&o).contains("ignored: branch topic matches none of the branch patterns (main)"),
        "{}",
        stdout(&o)
    );
    let o = push("refs/tags/v1", &["vendor/c/file"]);
    let text = stdout(&o);
    assert!(
        text.contains("route: tag v1 → the release project"),
        "{text}"
    );
    assert!(
        text.contains("  c\tvendor/c/file changed, under vendor/c"),
        "{text}"
    );
}

fn serde_json_array(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

#[test]
fn plan_event_shows_what_the_webhook_would_do_with_a_pull_request() {
    let repo = git_repo();
    let root = repo.path();
    let base = git(root, &["rev-parse", "main"]);
    std::fs::write(root.join("vendor/c/file"), "2").unwrap();
    git(root, &["commit", "-qam", "c"]);
    let head = git(root, &["rev-parse", "HEAD"]);
    let event = |action: &str, draft: bool, head_repo: &str, head_sha: &str| {
        let body = format!(
            r#"{{"action": "{action}", "number": 5, "repository": {{"full_name": "acme/slc"}},
               "pull_request": {{"draft": {draft},
                 "head": {{"ref": "feature", "sha": "{head_sha}", "repo": {{"full_name": "{head_repo}"}}}},
                 "base": {{"ref": "main", "sha": "{base}", "repo": {{"full_name": "acme/slc"}}}}}}}}"#
        );
        let file = root.join("pr.json");
        std::fs::write(&file, body).unwrap();
        plan(root, &["--event", file.to_str().unwrap()])
    };
    let o = event("opened", false, "acme/slc", &head);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "route: pull request #5 → the CI project, commit {head}"
        )),
        "{text}"
    );
    assert!(
        text.contains("  c\tvendor/c/file changed, under vendor/c where the flavor links"),
        "{text}"
    );
    let o = event("opened", true, "acme/slc", &head);
    assert!(
        stdout(&o).contains("ignored: pull request #5 is a draft"),
        "{}",
        stdout(&o)
    );
    let o = event("synchronize", false, "mallory/slc", &head);
    assert!(stdout(&o).contains("`safe to build`"), "{}", stdout(&o));
    // As a stack with the GitHub App decides: the fork waits for a click.
    let file = root.join("pr.json");
    let o = plan(root, &["--event", file.to_str().unwrap(), "--github-app"]);
    assert!(
        stdout(&o).contains("clicks \"Build this commit\""),
        "{}",
        stdout(&o)
    );
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let o = event("opened", false, "acme/slc", missing);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("git fetch origin pull/5/head"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plan_event_shows_what_the_webhook_would_do_with_a_merge_group() {
    let repo = git_repo();
    let root = repo.path();
    let base = git(root, &["rev-parse", "main"]);
    std::fs::write(root.join("vendor/c/file"), "2").unwrap();
    git(root, &["commit", "-qam", "c (#9)"]);
    let head = git(root, &["rev-parse", "HEAD"]);
    let event = |action: &str, reason: &str| {
        let body = format!(
            r#"{{"action": "{action}", "reason": "{reason}", "repository": {{"full_name": "acme/slc"}},
                "merge_group": {{"head_sha": "{head}", "base_sha": "{base}", "base_ref": "refs/heads/main",
                 "head_ref": "refs/heads/gh-readonly-queue/main/pr-9-{base}",
                 "head_commit": {{"id": "{head}", "message": "c (#9)"}}}}}}"#
        );
        let file = root.join("group.json");
        std::fs::write(&file, body).unwrap();
        plan(root, &["--event", file.to_str().unwrap()])
    };
    let o = event("checks_requested", "");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "route: merge group of #9 into main → the CI project, commit {head} (compared with {base})"
        )),
        "{text}"
    );
    assert!(
        text.contains("  c\tvendor/c/file changed, under vendor/c where the flavor links"),
        "{text}"
    );
    let o = event("destroyed", "dequeued");
    assert!(
        stdout(&o).contains("(dequeued): its running batch would be stopped"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn plan_head_reads_the_commit_from_git_without_checking_it_out() {
    let repo = git_repo();
    let root = repo.path();
    // On `feature`: a new flavor d, and a change behind the link c. Then back to main, whose
    // working tree has neither.
    std::fs::create_dir_all(root.join("flavors/d")).unwrap();
    std::fs::write(root.join("flavors/d/file"), "1").unwrap();
    std::fs::write(root.join("vendor/c/file"), "2").unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "d and c"]);
    git(root, &["switch", "-q", "main"]);
    let o = plan(root, &["--base", "main", "--head", "feature"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("builds 2 of 4 flavors"), "{text}");
    assert!(
        text.contains("  c\tvendor/c/file changed, under vendor/c where the flavor links"),
        "{text}"
    );
    assert!(text.contains("  d\tflavors/d/file changed"), "{text}");
    // A link that points nowhere at that commit is named.
    git(root, &["switch", "-q", "feature"]);
    std::os::unix::fs::symlink("../vendor/gone", root.join("flavors/e")).unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "broken e"]);
    git(root, &["switch", "-q", "main"]);
    let o = plan(root, &["--base", "main", "--head", "feature"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("flavors/e"), "{}", stderr(&o));
}

/// The input keys `plan` prints, by flavor.
fn keys_of(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .skip_while(|l| !l.starts_with("input keys for project"))
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn plan_prints_input_keys_that_follow_exactly_what_the_selection_builds() {
    let repo = git_repo();
    let root = repo.path();
    let committed = plan(
        root,
        &["--head", "HEAD", "--base", "HEAD", "--ignore", "docs"],
    );
    assert!(committed.status.success(), "{}", stderr(&committed));
    let at_head = keys_of(&stdout(&committed));
    assert_eq!(at_head.len(), 3, "{}", stdout(&committed));
    assert!(stdout(&committed).contains("input keys for project ci, commit HEAD:"));
    // The clean working tree keys as its commit does.
    assert_eq!(
        keys_of(&stdout(&plan(
            root,
            &["--base", "HEAD", "--ignore", "docs"]
        ))),
        at_head
    );
    // An ignored change moves no key; a change behind c's link moves c's alone; a change in
    // a moves a's and b's (b depends on a).
    std::fs::write(root.join("docs/file"), "2").unwrap();
    let ignored = keys_of(&stdout(&plan(
        root,
        &["--base", "HEAD", "--ignore", "docs"],
    )));
    assert_eq!(ignored, at_head);
    std::fs::write(root.join("vendor/c/file"), "2").unwrap();
    let linked = keys_of(&stdout(&plan(
        root,
        &["--base", "HEAD", "--ignore", "docs"],
    )));
    let moved = |k: &std::collections::BTreeMap<String, String>| -> Vec<String> {
        k.iter()
            .filter(|(f, v)| at_head[*f] != **v)
            .map(|(f, _)| f.clone())
            .collect()
    };
    assert_eq!(moved(&linked), ["c"]);
    std::fs::write(root.join("flavors/a/file"), "2").unwrap();
    let o = plan(
        root,
        &["--base", "HEAD", "--ignore", "docs", "--project", "slc-ci"],
    );
    let other_project = keys_of(&stdout(&o));
    assert!(
        stdout(&o).contains("  a  ") && stdout(&o).contains("selected"),
        "{}",
        stdout(&o)
    );
    assert_eq!(other_project.len(), 3);
    let same_project = keys_of(&stdout(&plan(
        root,
        &["--base", "HEAD", "--ignore", "docs"],
    )));
    assert_eq!(moved(&same_project), ["a", "b", "c"]);
    assert!(
        other_project.iter().all(|(f, k)| same_project[f] != *k),
        "the project is part of the key"
    );
    // Keying the working tree leaves the real index alone: nothing is staged.
    assert_eq!(git(root, &["diff", "--cached", "--name-only"]), "");
}
