use super::*;
use serde_json::json;

#[test]
fn an_empty_document_gives_the_defaults() {
    assert_eq!(Settings::from_yaml("{}\n").unwrap(), Settings::default());
    for empty in [
        "",
        "\n\n",
        "# only a comment\n  # and another\n",
        "---\n",
        "---\n...\n",
    ] {
        assert_eq!(
            Settings::from_yaml(empty).unwrap(),
            Settings::default(),
            "{empty:?}"
        );
    }
    assert_eq!(
        Settings::from_json(json!(null)).unwrap(),
        Settings::default()
    );
}

#[test]
fn cloudformation_strings_are_accepted_for_numbers_and_booleans() {
    let s = Settings::from_json(json!({
        "batch": {"max-builds": "8", "fast-fail": "true"},
        "build": {"privileged-mode": "false"},
        "release": {"dry-run": "False"}
    }))
    .unwrap();
    assert_eq!(
        (
            s.batch.max_builds,
            s.batch.fast_fail,
            s.build.privileged_mode,
            s.release.dry_run
        ),
        (8, true, false, false)
    );
}

#[test]
fn yaml_scalars_keep_their_source_text() {
    let s = Settings::from_yaml(
        "build:\n  runtime-versions:\n    python: 3.10\n  variables:\n    HEX: 0x1F\n    ON: on\n",
    )
    .unwrap();
    assert_eq!(s.build.runtime_versions["python"], "3.10");
    assert_eq!(s.build.variables["HEX"], "0x1F");
    assert_eq!(s.build.variables["ON"], "on");
}

#[test]
fn unknown_keys_are_rejected_by_name_with_their_line() {
    let err = Settings::from_yaml("batch:\n  fast-fail: true\n  compute-typ: X\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "line 3: batch.compute-typ: unknown key `compute-typ`, expected one of `shape`"
        ),
        "{text}"
    );
}

#[test]
fn bad_values_name_the_key_and_what_was_expected() {
    let cases = [
        (
            json!({"batch": {"max-builds": "many"}}),
            "batch.max-builds: expected a whole number, found `many`",
        ),
        (
            json!({"batch": {"max-builds": "0"}}),
            "batch.max-builds: must be at least 1",
        ),
        (
            json!({"batch": {"fast-fail": "perhaps"}}),
            "batch.fast-fail: expected true or false",
        ),
        (
            json!({"batch": {"shape": "build-tree"}}),
            "batch.shape: unknown value `build-tree`",
        ),
        (
            json!({"build": {"compute-type": "HUGE"}}),
            "build.compute-type: unknown compute type `HUGE`",
        ),
        (
            json!({"build": {"environment-type": "LINUX"}}),
            "build.environment-type: unknown environment type",
        ),
        (
            json!({"build": {"shell": "zsh"}}),
            "build.shell: unknown shell `zsh`",
        ),
        (
            json!({"build": {"variables": {"CODEBUILD_X": "1"}}}),
            "build.variables.CODEBUILD_X: names starting with CODEBUILD_ are reserved",
        ),
        (
            json!({"build": {"variables": {"A": null}}}),
            "build.variables: `A` has no value",
        ),
        (
            json!({"build": {"secrets-manager": {"U": ":User"}}}),
            "build.secrets-manager.U: expected secret-id:json-key",
        ),
        (
            json!({"build": {"phases": {"build": {"commands": []}}}}),
            "build.phases.build.commands: a phase needs at least one command",
        ),
        (
            json!({"ci": {"phases": {"build": {"commands": ["x"], "on-failure": "SKIP"}}}}),
            "ci.phases.build.on-failure: unknown on-failure `SKIP`",
        ),
        (
            json!({"build": {"reports": {"r": {"files": ["a"], "file-format": "XML"}}}}),
            "build.reports.r.file-format: unknown report format",
        ),
        (
            json!({"build": {"artifacts": {"name": "x"}}}),
            "build.artifacts.files: list what to upload",
        ),
        (
            json!({"flavors": {"a/b": {}}}),
            "flavors.a/b: flavor name \"a/b\" is invalid",
        ),
        (
            json!({"flavors": {"a": {"compute-type": "BIG"}}}),
            "flavors.a.compute-type: unknown compute type `BIG`",
        ),
        (
            json!({"batch": {"shape": "build-list"}, "flavors": {"a": {"depend-on": ["b"]}}}),
            "flavors.a.depend-on: dependencies need `batch.shape: build-graph`",
        ),
        (
            json!({"flavors-dir": ""}),
            "flavors-dir: must name a directory",
        ),
        (
            json!({"flavors-dir": "/srv/flavors"}),
            "flavors-dir: `/srv/flavors` is absolute",
        ),
        (
            json!({"flavors-dir": "C:\\flavors"}),
            "flavors-dir: `C:\\flavors` is absolute",
        ),
        (
            json!({"flavors-dir": "vendor/../../flavors"}),
            "flavors-dir: `vendor/../../flavors` leaves the repository through `..`",
        ),
        (
            json!({"build": {"image": null, "compute-type": null}}),
            "build.compute-type: needs a value",
        ),
        (
            json!({"release": {"enabled": ["x"]}}),
            "release.enabled: invalid type: sequence",
        ),
    ];
    for (input, expected) in cases {
        let err = Settings::from_json(input.clone()).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{input}\nexpected {expected:?}\ngot {err}"
        );
    }
}

#[test]
fn sections_must_be_mappings_never_lists_read_field_by_field() {
    let cases = [
        (
            json!(["flavors", ["x"]]),
            "the settings must be a mapping (`key: value` entries), not a list",
        ),
        (
            json!("flavors-dir: x"),
            "the settings must be a mapping (`key: value` entries), not string",
        ),
        (
            json!({"batch": ["build-list", true, true, 7]}),
            "batch: must be a mapping (`key: value` entries), not a list",
        ),
        (json!({"build": ["MEDIUM"]}), "build: must be a mapping"),
        (
            json!({"build": {"phases": [["x"]]}}),
            "build.phases: must be a mapping",
        ),
        (
            json!({"build": {"phases": {"build": [["make"]]}}}),
            "build.phases.build: must be a mapping",
        ),
        (
            json!({"build": {"artifacts": [["a"]]}}),
            "build.artifacts: must be a mapping",
        ),
        (
            json!({"build": {"cache": [["a"]]}}),
            "build.cache: must be a mapping",
        ),
        (
            json!({"build": {"reports": {"r": [["a"]]}}}),
            "build.reports.r: must be a mapping",
        ),
        (
            json!({"build": {"artifacts": {"files": ["a"], "secondary-artifacts": {"s": [["b"]]}}}}),
            "build.artifacts.secondary-artifacts.s: must be a mapping",
        ),
        (
            json!({"flavors": {"a": ["BUILD_GENERAL1_LARGE"]}}),
            "flavors.a: must be a mapping",
        ),
        (json!({"flavors": [["a"]]}), "flavors: must be a mapping"),
        (json!({"ci": [{}]}), "ci: must be a mapping"),
        (
            json!({"release": [true, "v1"]}),
            "release: must be a mapping",
        ),
    ];
    for (input, expected) in cases {
        let err = Settings::from_json(input.clone()).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{input}\nexpected {expected:?}\ngot {err}"
        );
    }
    let err = Settings::from_yaml("- flavors\n- [x]\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "line 1: the settings must be a mapping (`key: value` entries), not a list"
    );
    let err = Settings::from_yaml("batch: [build-list, true, true, 7]\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("line 1: batch: must be a mapping"), "{err}");
    // An entry left empty is the defaults, as a section left empty is.
    let s = Settings::from_yaml("flavors:\n  a:\nbuild:\n").unwrap();
    assert_eq!(s.flavors["a"], FlavorSettings::default());
    assert_eq!(s.build, BuildSettings::default());
}

#[test]
fn canonical_json_round_trips() {
    let s = Settings::from_yaml(
        "build:\n  image: aws/codebuild/standard:7.0\n  secrets-manager:\n    DOCKER_USER: Dockerhub:User\n  phases:\n    pre_build:\n      commands: [docker login]\nflavors:\n  a:\n    depend-on: [b]\nrelease:\n  dry-run: false\n",
    )
    .unwrap();
    let json = s.to_canonical_json();
    let back = Settings::from_json(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.to_canonical_json(), json);
}
