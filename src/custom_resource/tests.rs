use super::*;
use crate::generate;
use crate::layout::resource_root;
use crate::settings::Settings;
use indexmap::IndexMap;
use serde_json::json;
use sha2::{Digest, Sha256};

const STACK: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/ci/0e8c4f20-1111-2222-3333-444455556666";

fn props() -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:x",
        "Bucket": "specs-bucket",
        "Flavors": ["standard-EXASOL-8.0.0", "python3.12-minimal"],
        "Settings": {"batch": {"max-builds": "8", "fast-fail": "true"}}
    })
}

#[test]
fn string_scalars_are_accepted_where_numbers_and_booleans_are_meant() {
    let p = Properties::from_json(&props()).unwrap();
    assert_eq!(p.settings.batch.max_builds, 8);
    assert_eq!(p.location.prefix, DEFAULT_PREFIX);
    assert_eq!(p.flavors.len(), 2);
}

#[test]
fn comma_separated_flavors_are_a_list() {
    let mut v = props();
    v["Flavors"] = json!("a, b ,c");
    let p = Properties::from_json(&v).unwrap();
    assert_eq!(p.flavors.names().collect::<Vec<_>>(), ["a", "b", "c"]);
}

#[test]
fn every_bad_property_is_named() {
    let v = json!({
        "Bucket": "Bad_Bucket",
        "Prefix": "/abs",
        "Flavors": [1],
        "Settings": {"batch": {"max-builds": "many"}},
        "Flavours": "x"
    });
    let e = Properties::from_json(&v).unwrap_err();
    let named: Vec<&str> = e.0.iter().map(|p| p.property.as_str()).collect();
    assert_eq!(
        named,
        [
            "Flavours",
            "Bucket",
            "Prefix",
            "Flavors",
            "Settings.batch.max-builds"
        ]
    );
    assert!(e.to_string().contains("did you mean Flavors?"), "{e}");
}

#[test]
fn flavors_are_checked_in_the_identifier_style_the_settings_choose() {
    let mut v = props();
    v["Flavors"] = json!(["python-3.10", "python-31.0"]);
    assert!(Properties::from_json(&v).is_ok());
    v["Settings"] = json!({"batch": {"identifier-style": "exasol-ci-setup"}});
    let e = Properties::from_json(&v).unwrap_err().to_string();
    assert!(
        e.contains("Flavors: flavors `python-3.10` and `python-31.0` both map to build identifier `build_python_310`"),
        "{e}"
    );
}

#[test]
fn settings_may_be_yaml_text() {
    let mut v = props();
    v["Settings"] = json!("batch:\n  max-builds: 3\n");
    assert_eq!(
        Properties::from_json(&v).unwrap().settings.batch.max_builds,
        3
    );
    v["Settings"] = json!("batch:\n  max-builds: [\n");
    let e = Properties::from_json(&v).unwrap_err();
    assert!(e.0[0].property.starts_with("Settings"), "{e}");
}

#[test]
fn plan_writes_settings_then_build_then_batch_and_keys_carry_the_hash() {
    let plan = plan(&props(), STACK, "Buildspecs").unwrap();
    assert!(plan.root.starts_with("flavor-ci/ci-"), "{}", plan.root);
    assert!(plan.root.ends_with("/Buildspecs/"));
    assert!(plan.objects[0].key.contains("/settings/"));
    let batch = &plan.data["CiBatchBuildspecKey"];
    assert!(batch.ends_with("/ci-batch-buildspec.yaml"));
    assert_eq!(
        plan.data["CiBatchBuildspecArn"],
        format!("arn:aws:s3:::specs-bucket/{batch}")
    );
    assert_eq!(plan.data["FlavorCount"], "2");
    let obj = plan.objects.iter().find(|o| &o.key == batch).unwrap();
    let hash = generate::hex(&Sha256::digest(obj.body.as_bytes()));
    assert!(batch.contains(&hash));
}

#[test]
fn build_buildspecs_are_stored_before_the_batch_buildspecs_that_use_them() {
    let mut v = props();
    v["Settings"] = json!({"ci": {"build-buildspec": "ci/build.yaml"}});
    let plan = plan(&v, STACK, "Buildspecs").unwrap();
    let at = |name: &str| {
        plan.objects
            .iter()
            .position(|o| o.key.ends_with(name))
            .unwrap()
    };
    assert!(at("/ci-build-buildspec.yaml") < at("/ci-batch-buildspec.yaml"));
    assert_eq!(
        plan.data["CiBuildBuildspecKey"],
        plan.objects[at("/ci-build-buildspec.yaml")].key
    );
}

#[test]
fn plan_is_deterministic_and_id_depends_only_on_location() {
    let a = plan(&props(), STACK, "Buildspecs").unwrap();
    let b = plan(&props(), STACK, "Buildspecs").unwrap();
    assert_eq!(a.objects, b.objects);
    let mut changed = props();
    changed["Flavors"] = json!(["only-one"]);
    let c = plan(&changed, STACK, "Buildspecs").unwrap();
    assert_eq!(a.physical_id, c.physical_id);
    assert_ne!(a.data["CiBatchBuildspecKey"], c.data["CiBatchBuildspecKey"]);
    let mut moved = props();
    moved["Prefix"] = json!("other");
    let d = plan(&moved, STACK, "Buildspecs").unwrap();
    assert_ne!(a.physical_id, d.physical_id);
    assert!(d.root.starts_with("other/"));
}

#[test]
fn stored_settings_regenerate_identical_buildspecs() {
    let p = Properties::from_json(&props()).unwrap();
    let stored: Value = serde_json::from_str(&p.settings.to_canonical_json()).unwrap();
    let again = Settings::from_json(stored).unwrap();
    let gen_with = |s: &Settings| {
        generate::generate(generate::Request {
            settings: s,
            flavors: &p.flavors,
            only: None,
            release_id: None,
        })
        .unwrap()
    };
    assert_eq!(gen_with(&p.settings), gen_with(&again));
}

#[test]
fn physical_ids_round_trip_and_foreign_ones_are_recognised() {
    let root = resource_root("p/", STACK, "Specs");
    let id = PhysicalId::stored("bkt", &root);
    assert_eq!(
        PhysicalId::parse(&id, STACK, "Specs"),
        PhysicalId::Stored {
            bucket: "bkt".into(),
            root
        }
    );
    assert_eq!(PhysicalId::parse(&id, STACK, "Other"), PhysicalId::Foreign);
    let other_stack = STACK.replace("0e8c", "ffff");
    assert_eq!(
        PhysicalId::parse(&id, &other_stack, "Specs"),
        PhysicalId::Foreign
    );
    assert_eq!(
        PhysicalId::parse(&PhysicalId::failed_create("r-1"), STACK, "Specs"),
        PhysicalId::FailedCreate
    );
    for foreign in [
        "",
        "ci-Specs-1ABC",
        "flavor-ci:v1:s3://bkt",
        "flavor-ci:v1:s3://bkt/x/",
    ] {
        assert_eq!(
            PhysicalId::parse(foreign, STACK, "Specs"),
            PhysicalId::Foreign
        );
    }
}

fn response(reason: &str, data: IndexMap<String, String>) -> Response {
    Response {
        status: Status::Success,
        reason: reason.into(),
        physical_id: "id".into(),
        stack_id: STACK.into(),
        request_id: "req".into(),
        logical_id: "Specs".into(),
        data,
    }
}

#[test]
fn long_reasons_keep_start_and_end_within_the_limit() {
    let reason = format!("START{}\"\n{}END", "é".repeat(3000), "\u{1}".repeat(500));
    let body = response(&reason, IndexMap::new()).to_body();
    assert!(body.len() <= MAX_RESPONSE_BYTES);
    assert!(body.len() > MAX_RESPONSE_BYTES - 8, "{}", body.len());
    let v: Value = serde_json::from_slice(&body).unwrap();
    let r = v["Reason"].as_str().unwrap();
    assert!(r.starts_with("START") && r.ends_with("END") && r.contains(" … "));
}

#[test]
fn data_that_cannot_fit_becomes_a_short_failure() {
    let mut data = IndexMap::new();
    for i in 0..10 {
        data.insert(format!("Key{i}"), "x".repeat(500));
    }
    let body = response("ok", data).to_body();
    assert!(body.len() <= MAX_RESPONSE_BYTES);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Status"], "FAILED");
    assert!(v.get("Data").is_none());
    assert!(v["Reason"].as_str().unwrap().contains("4096-byte"));
}

#[test]
fn overflowing_data_is_detected_before_writing() {
    let mut data = IndexMap::new();
    data.insert("Key".into(), "x".repeat(3000));
    assert_eq!(response("", data.clone()).data_overflow(), None);
    data.insert("Key2".into(), "x".repeat(600));
    assert!(response("", data).data_overflow().is_some());
}

#[test]
fn shortening_respects_escapes() {
    for budget in 0..40 {
        let s = shorten_json("a\"b\\c\nd\u{2}eéfg😀hij", budget);
        let escaped = serde_json::to_string(&s).unwrap();
        assert!(escaped.len() - 2 <= budget, "{budget}: {escaped}");
    }
}

#[test]
fn bucket_and_prefix_rules() {
    assert!(bucket_problem("my-bucket.1").is_none());
    for bad in [
        "ab",
        "-ab",
        "ab-",
        "a..b",
        "AB",
        "192.168.1.1",
        &"a".repeat(64),
    ] {
        assert!(bucket_problem(bad).is_some(), "{bad}");
    }
    assert!(prefix_problem("").is_none());
    assert!(prefix_problem("team/ci").is_none());
    for bad in ["/x", "a//b", "a/../b", "a b", &"p".repeat(513)] {
        assert!(prefix_problem(bad).is_some(), "{bad}");
    }
}
