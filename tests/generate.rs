//! Generation end to end in-process: golden output, determinism, subsets, errors, quoting.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers fail loudly by design

use std::path::Path;

use flavor_ci::flavors::FlavorSet;
use flavor_ci::generate::{self, GenerateError, Request, Role, Variant, with_dependents};
use flavor_ci::settings::Settings;
use flavor_ci::validate::{self, Limits};
use flavor_ci::yaml::{self, Kind, Node};
use proptest::prelude::*;

fn example() -> (Settings, FlavorSet) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/script-languages");
    let settings =
        Settings::from_yaml(&std::fs::read_to_string(repo.join("flavor-ci.yaml")).unwrap())
            .unwrap();
    let flavors = FlavorSet::discover(
        &repo.join(&settings.flavors_dir),
        &settings.exclude,
        settings.batch.identifier_style,
    )
    .unwrap();
    (settings, flavors)
}

fn all(settings: &Settings, flavors: &FlavorSet) -> generate::Output {
    generate::generate(Request {
        settings,
        flavors,
        only: None,
        release_id: None,
    })
    .unwrap()
}

#[test]
fn example_repository_output_matches_the_golden_files() {
    let (settings, flavors) = example();
    let out = all(&settings, &flavors);
    assert_eq!(out.documents.len(), 2);
    for d in &out.documents {
        insta::assert_snapshot!(d.file_name.clone(), d.yaml);
    }
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

#[test]
fn built_in_defaults_give_a_complete_buildspec() {
    let flavors = FlavorSet::from_names(["python-3.10", "1.10", "yes"]).unwrap();
    let out = all(&Settings::default(), &flavors);
    insta::assert_snapshot!("defaults-ci-batch-buildspec", out.documents[0].yaml);
}

#[test]
fn a_separate_build_buildspec_is_written_before_the_batch_that_references_it() {
    let settings = Settings::from_yaml(
        "ci:\n  build-buildspec: ci/build.yaml\nrelease:\n  build-buildspec: arn:aws:s3:::bucket/release-build.yaml\n  release-id: v1\n",
    )
    .unwrap();
    let flavors = FlavorSet::from_names(["a", "b"]).unwrap();
    let out = all(&settings, &flavors);
    let names: Vec<&str> = out.documents.iter().map(|d| d.file_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ci-build-buildspec.yaml",
            "ci-batch-buildspec.yaml",
            "release-build-buildspec.yaml",
            "release-batch-buildspec.yaml"
        ]
    );
    let batch = out.document(Variant::Ci, Role::Batch).unwrap();
    insta::assert_snapshot!("separate-ci-batch-buildspec", batch.yaml);
    insta::assert_snapshot!(
        "separate-ci-build-buildspec",
        out.document(Variant::Ci, Role::Build).unwrap().yaml
    );
    assert!(!batch.yaml.contains("phases:"));
}

#[test]
fn output_is_byte_identical_for_the_same_input_in_any_order() {
    let (settings, flavors) = example();
    let first = all(&settings, &flavors);
    let mut names: Vec<&str> = flavors.names().collect();
    names.reverse();
    let reordered = FlavorSet::from_names(names).unwrap();
    assert_eq!(all(&settings, &reordered), first);
    // The copy a stack stores (canonical JSON) regenerates the same bytes.
    let stored =
        Settings::from_json(serde_json::from_str(&settings.to_canonical_json()).unwrap()).unwrap();
    assert_eq!(all(&stored, &flavors), first);
    assert_eq!(all(&stored, &flavors).content_hash(), first.content_hash());
}

#[test]
fn a_subset_builds_only_the_named_flavors_and_drops_edges_to_others() {
    let (settings, flavors) = example();
    let only = vec!["template-Exasol-all-python-3.12".to_owned()];
    let out = generate::generate(Request {
        settings: &settings,
        flavors: &flavors,
        only: Some(&only),
        release_id: Some("v2.0.0"),
    })
    .unwrap();
    assert_eq!(out.selected, only);
    let ci = &out.document(Variant::Ci, Role::Batch).unwrap().yaml;
    assert_eq!(ci.matches("- identifier:").count(), 1);
    assert!(!ci.contains("depend-on"));
    assert!(
        out.document(Variant::Release, Role::Batch)
            .unwrap()
            .yaml
            .contains("RELEASE_ID: v2.0.0")
    );

    let with_base = vec![
        "standard-EXASOL-all-python-3.12".to_owned(),
        "template-Exasol-all-python-3.12".to_owned(),
    ];
    let out = generate::generate(Request {
        settings: &settings,
        flavors: &flavors,
        only: Some(&with_base),
        release_id: None,
    })
    .unwrap();
    assert!(
        out.documents[0]
            .yaml
            .contains("depend-on:\n        - build_standard_EXASOL_all_python_3_12")
    );
}

#[test]
fn dependents_of_a_changed_flavor_are_rebuilt_too() {
    let (settings, flavors) = example();
    assert_eq!(
        with_dependents(
            &settings,
            &flavors,
            &["standard-EXASOL-all-python-3.10".into(), "gone".into()]
        ),
        [
            "standard-EXASOL-all-python-3.10",
            "template-Exasol-all-python-3.10"
        ]
    );
}

#[test]
fn problems_between_settings_and_flavors_are_errors_that_name_the_key() {
    let flavors = FlavorSet::from_names(["a", "b", "c"]).unwrap();
    let run = |yaml: &str, only: Option<&[String]>| {
        let settings = Settings::from_yaml(yaml).unwrap();
        generate::generate(Request {
            settings: &settings,
            flavors: &flavors,
            only,
            release_id: None,
        })
    };
    let err = run("flavors:\n  a:\n    depend-on: [z]\n", None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "flavors.a.depend-on[0]: there is no flavor `z`; name an existing flavor"
    );
    let err = run(
        "flavors:\n  a: {depend-on: [b]}\n  b: {depend-on: [c]}\n  c: {depend-on: [a]}\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "flavors.a.depend-on: dependency cycle: a → b → c → a; remove one of these depend-on entries"
    );
    let err = run("batch: {max-builds: 2}\n", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("batch.max-builds: 3 flavors would build but the project allows at most 2"),
        "{err}"
    );
    let err = run("{}", Some(&["a".into(), "x".into()])).unwrap_err();
    assert!(
        matches!(err, GenerateError::Selection(ref m) if m.starts_with("no such flavor(s): x; choose from: a, b, c")),
        "{err}"
    );
    assert!(matches!(
        run("{}", Some(&[])).unwrap_err(),
        GenerateError::Selection(_)
    ));
    let ok = run(
        "flavors:\n  gone: {compute-type: BUILD_GENERAL1_LARGE}\n",
        None,
    )
    .unwrap();
    assert_eq!(
        ok.warnings,
        ["flavors.gone: there is no flavor `gone`; its settings are unused (remove them)"]
    );
}

#[test]
fn large_batches_warn_about_the_inline_limit() {
    let names: Vec<String> = (0..500).map(|i| format!("flavor-{i:03}")).collect();
    let flavors = FlavorSet::from_names(&names).unwrap();
    let settings = Settings::from_yaml("batch: {max-builds: 500}\n").unwrap();
    let out = all(&settings, &flavors);
    assert!(out.warnings.iter().any(
        |w| w.starts_with("ci-batch-buildspec.yaml: the buildspec is") && w.contains("25600")
    ));
}

fn flavor_values(doc: &Node) -> Vec<String> {
    let Kind::Seq(tasks) = &doc.get("batch").unwrap().get("build-graph").unwrap().kind else {
        panic!()
    };
    tasks
        .iter()
        .map(|t| {
            t.get("env")
                .unwrap()
                .get("variables")
                .unwrap()
                .get("FLAVOR")
                .unwrap()
                .text()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Whether a plain scalar would be read as something other than a string by a YAML 1.1 or
/// 1.2 reader (the resolution rules of both specs' type repositories, written out here
/// independently of the emitter's own check).
fn resolves_to_non_string(plain: &str) -> bool {
    let patterns = [
        r"^(~|null|Null|NULL|)$",
        r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
        r"^[-+]?0b[0-1_]+$",
        r"^[-+]?0[0-7_]+$",
        r"^0o[0-7]+$",
        r"^[-+]?(0|[1-9][0-9_]*)$",
        r"^[-+]?[0-9]+$",
        r"^[-+]?0x[0-9a-fA-F_]+$",
        r"^[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+$",
        r"^[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?$",
        r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$",
        r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*$",
        r"^[-+]?\.(inf|Inf|INF)$",
        r"^\.(nan|NaN|NAN)$",
        r"^[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?",
        r"^(<<|=)$",
    ];
    patterns
        .iter()
        .any(|p| regex::Regex::new(p).unwrap().is_match(plain))
}

#[test]
fn the_classic_traps_come_back_as_strings() {
    for s in [
        "1.10",
        "yes",
        "no",
        "on",
        "null",
        "~",
        "0x1F",
        "3.10",
        "*",
        "- x",
        "a: b",
        "a #b",
        "#x",
        " lead",
        "1e3",
        "2024-01-01",
        "0o17",
        ".5",
        "-.inf",
    ] {
        let text = yaml::emit(&yaml::Value::Map(vec![("k".into(), yaml::Value::str(s))]));
        let node = yaml::read(&text).unwrap();
        let value = node.get("k").unwrap();
        assert_eq!(value.text(), Some(s), "{text}");
        assert!(
            matches!(value.kind, Kind::Scalar { quoted: true, .. }),
            "{s:?} must be quoted: {text}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_string_survives_a_yaml_round_trip_as_a_string(s in "\\PC*|[ -~]{0,12}|[0-9.:+eE_xob-]{1,8}|\\p{Any}{0,6}") {
        let text = yaml::emit(&yaml::Value::Map(vec![(s.clone().into(), yaml::Value::Seq(vec![yaml::Value::str(s.clone())]))]));
        let node = yaml::read(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let Kind::Map(entries) = &node.kind else { return Err(TestCaseError::fail("not a map")) };
        prop_assert_eq!(entries[0].0.text(), Some(s.as_str()));
        let Kind::Seq(items) = &entries[0].1.kind else { return Err(TestCaseError::fail("not a seq")) };
        prop_assert_eq!(items[0].text(), Some(s.as_str()));
        if let Kind::Scalar { quoted: false, text } = &items[0].kind {
            prop_assert!(!resolves_to_non_string(text), "plain {:?} resolves to a non-string", text);
        }
    }

    #[test]
    fn generated_buildspecs_carry_every_flavor_name_exactly(
        names in proptest::collection::btree_set("[A-Za-z0-9][A-Za-z0-9 ._:#'\"*~-]{0,20}", 1..12),
        value in "\\PC{0,30}",
    ) {
        let Ok(flavors) = FlavorSet::from_names(&names) else { return Ok(()) };
        let settings = Settings::from_json(serde_json::json!({"build": {"variables": {"V": value}}})).unwrap();
        let out = generate::generate(Request { settings: &settings, flavors: &flavors, only: None, release_id: None }).unwrap();
        for d in &out.documents {
            let doc = yaml::read(&d.yaml).unwrap();
            let expected: Vec<String> = flavors.names().map(str::to_owned).collect();
            prop_assert_eq!(flavor_values(&doc), expected);
            prop_assert_eq!(doc.get("env").unwrap().get("variables").unwrap().get("V").unwrap().text(), Some(value.as_str()));
            prop_assert!(validate::validate_text(&d.yaml, Limits::default()).is_empty());
        }
    }
}

#[test]
fn the_old_tools_identifiers_and_dry_run_flag_can_be_kept() {
    let settings = Settings::from_yaml(
        "batch:\n  identifier-style: exasol-ci-setup\n  fast-fail: false\nflavors:\n  template-python-3.10:\n    depend-on: [standard-python-3.10]\nrelease:\n  dry-run: false\n  dry-run-values: {true: --dry-run, false: --no-dry-run}\n",
    )
    .unwrap();
    // Listed in the standard style, as the webhook or a library user might: generate follows
    // the settings.
    let flavors = FlavorSet::from_names(["standard-python-3.10", "template-python-3.10"]).unwrap();
    let out = all(&settings, &flavors);
    let ci = &out.document(Variant::Ci, Role::Batch).unwrap().yaml;
    assert!(
        ci.contains("identifier: build_standard_python_310\n"),
        "{ci}"
    );
    assert!(ci.contains("- build_standard_python_310\n"), "{ci}");
    assert!(!ci.contains("python_3_10"), "{ci}");
    let release = &out.document(Variant::Release, Role::Batch).unwrap().yaml;
    assert!(release.contains("DRY_RUN: '--no-dry-run'\n"), "{release}");
    let mut dry = settings.clone();
    dry.release.dry_run = true;
    let out = all(&dry, &flavors);
    let release = &out.document(Variant::Release, Role::Batch).unwrap().yaml;
    assert!(release.contains("DRY_RUN: '--dry-run'\n"), "{release}");
    // Collisions are checked in the style in use.
    let clash = FlavorSet::from_names(["python-3.10", "python-31.0"]).unwrap();
    let err = generate::generate(Request {
        settings: &settings,
        flavors: &clash,
        only: None,
        release_id: None,
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("both map to build identifier `build_python_310`"),
        "{err}"
    );
    // The defaults serialize as before, so stored settings keep their hash.
    let canonical = Settings::default().to_canonical_json();
    assert!(!canonical.contains("identifier-style") && !canonical.contains("dry-run-values"));
    let json = settings.to_canonical_json();
    let back = Settings::from_json(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(back, settings);
}

#[test]
fn an_unknown_name_among_thousands_gets_the_closest_names_not_the_list() {
    let names: Vec<String> = (0..5000).map(|i| format!("flavor-{i:04}")).collect();
    let flavors = FlavorSet::from_names(&names).unwrap();
    let settings = Settings::from_yaml("batch:\n  max-builds: 5000\n").unwrap();
    let only = ["flavor-00x1".to_owned(), "zzz\u{200b}".to_owned()];
    let err = generate::generate(Request {
        settings: &settings,
        flavors: &flavors,
        only: Some(&only),
        release_id: None,
    })
    .unwrap_err()
    .to_string();
    assert!(err.len() < 400, "{} bytes: {err}", err.len());
    assert!(err.starts_with("no such flavor(s): flavor-00x1, zzz\\u{200b}; for `flavor-00x1` did you mean flavor-0001, flavor-0011, flavor-0021?"), "{err}");
    assert!(
        err.ends_with("; `flavor-ci flavors` lists all 5000"),
        "{err}"
    );
}
