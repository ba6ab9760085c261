//! Where flavor-ci keeps things in S3: every key, tag and ARN the custom resource and the
//! webhook write or read, in one place.
//!
//! ```text
//! <Prefix><stack>-<12 hex of SHA-256(StackId)>/<LogicalResourceId>/   one resource's root
//!   settings/<SHA-256>.json                   canonical settings (deploy time)
//!   specs/<SHA-256>/<variant>-<role>-buildspec.yaml     deploy-time buildspecs
//!   pushes/specs/<SHA-256>/<file>             buildspecs the webhook stored (tag PUSH_SPEC_TAG)
//!   pushes/deliveries/<id>.json               webhook delivery records (tag DELIVERY_TAG)
//!   runs/<batch id>.json                      run records (tag RUN_TAG)
//!   runs/<batch id>.superseded.json           the marker of a run a newer one replaced
//!   pushes/refs/<escaped ref>.json            the batches running per ref (tag REF_TAG)
//! ```
//!
//! Keys under `specs/` and `settings/` are content-addressed: the same bytes always have the
//! same key, so a write is conditional (`If-None-Match: *`) and a running build keeps its spec.

use sha2::{Digest, Sha256};

use crate::generate::{self, Document};

/// The tag of buildspecs the webhook stores; the bucket's lifecycle rules expire them.
pub const PUSH_SPEC_TAG: &str = "flavor-ci=push-spec";
/// The tag of webhook delivery records; the bucket's lifecycle rules expire them.
pub const DELIVERY_TAG: &str = "flavor-ci=delivery";
/// The tag of the records of running batches per ref.
pub const REF_TAG: &str = "flavor-ci=ref";

/// The root under which the resource `logical_id` of stack `stack_id` keeps its objects.
pub fn resource_root(prefix: &str, stack_id: &str, logical_id: &str) -> String {
    let digest = Sha256::digest(stack_id.as_bytes());
    let hash = generate::hex(&digest[..6]);
    format!(
        "{prefix}{}-{hash}/{}/",
        key_segment(stack_name(stack_id)),
        key_segment(logical_id)
    )
}

/// The partition (`aws`, `aws-cn`, `aws-us-gov`, …) of an ARN; `aws` when it is not one.
pub fn partition(arn: &str) -> &str {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.split(':').next())
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

/// The partition of a region: `cn-*` is `aws-cn`, `us-gov-*` is `aws-us-gov`, others `aws`.
pub fn region_partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARN CodeBuild takes for a buildspec stored in S3.
pub fn s3_object_arn(partition: &str, bucket: &str, key: &str) -> String {
    format!("arn:{partition}:s3:::{bucket}/{key}")
}

/// The stack name inside a stack ARN (`arn:aws:cloudformation:…:stack/NAME/GUID`).
pub fn stack_name(stack_id: &str) -> &str {
    stack_id
        .split_once(":stack/")
        .and_then(|(_, rest)| rest.split('/').next())
        .filter(|n| !n.is_empty())
        .unwrap_or("stack")
}

fn key_segment(text: &str) -> String {
    let s: String = text
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "_".into() } else { s }
}

/// The content-addressed key of a generated buildspec.
pub fn spec_key(root: &str, document: &Document) -> String {
    format!("{root}specs/{}/{}", document.sha256(), document.file_name)
}

/// The content-addressed key of stored settings.
pub fn settings_key(root: &str, settings_json: &str) -> String {
    let digest = Sha256::digest(settings_json.as_bytes());
    let hash = generate::hex(&digest);
    format!("{root}settings/{hash}.json")
}

/// The key of a buildspec the webhook stores for a push: content-addressed, like the
/// deploy-time ones, but apart from them so lifecycle rules can expire it.
pub fn push_spec_key(root: &str, document: &Document) -> String {
    format!(
        "{root}pushes/specs/{}/{}",
        document.sha256(),
        document.file_name
    )
}

/// The key of the record of one webhook delivery.
pub fn delivery_key(root: &str, delivery: &str) -> String {
    format!("{root}pushes/deliveries/{delivery}.json")
}

/// The key of the record of one batch build run.
pub fn run_key(root: &str, batch_id: &str) -> String {
    format!("{root}runs/{}.json", escape(batch_id))
}

/// The key naming the newest run of `project` at `commit` (its batch id, as text): what
/// "Re-run all" on the commit's check suite builds again.
pub fn commit_run_key(root: &str, project: &str, commit: &str) -> String {
    format!("{root}runs/commits/{}/{}", escape(commit), escape(project))
}

/// The green ledger's record of input key `key` (see `flavor_ci::inputs`).
pub fn green_key(root: &str, key: &str) -> String {
    format!("{}{}", green_prefix(root), escape(key))
}

/// Where the green ledger's records are.
pub fn green_prefix(root: &str) -> String {
    format!("{root}green/")
}

/// The key of a click on a check run's button (or of a re-run request), kept create-only so a
/// double click acts once.
pub fn click_key(root: &str, click: &str) -> String {
    format!("{root}pushes/clicks/{}.json", escape(click))
}

/// Where a verified delivery is kept until it is handled (`<body key>.json`).
pub fn inbox_key(root: &str, body_key: &str) -> String {
    format!("{}{}.json", inbox_prefix(root), escape(body_key))
}

/// Where the kept deliveries are.
pub fn inbox_prefix(root: &str) -> String {
    format!("{root}pushes/inbox/")
}

/// The key of the marker that the sweep asked GitHub to redeliver delivery `guid` (once).
pub fn sweep_key(root: &str, guid: &str) -> String {
    format!("{root}pushes/sweep/{}.json", escape(guid))
}

/// The key where a fork's pull request delivery waits for its "Build this commit" click.
pub fn fork_wait_key(root: &str, commit: &str) -> String {
    format!("{root}pushes/forks/{}.json", escape(commit))
}

/// The key of the marker that a run is open: started, its outcome not yet posted. The
/// build-events function reconciles the runs these name and removes each once it is done.
pub fn open_run_key(root: &str, batch_id: &str) -> String {
    format!("{}{}.json", open_runs_prefix(root), escape(batch_id))
}

/// Where the open-run markers are.
pub fn open_runs_prefix(root: &str) -> String {
    format!("{root}runs/open/")
}

/// The batch an open-run marker names, from the marker's key.
pub fn open_run_batch(root: &str, key: &str) -> Option<String> {
    let name = key
        .strip_prefix(&open_runs_prefix(root))?
        .strip_suffix(".json")?;
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The CodeBuild console page of a batch build.
pub fn console_batch_url(region: &str, project: &str, batch_id: &str) -> String {
    console_url(region, project, "batch", batch_id)
}

/// The CodeBuild console page of one build.
pub fn console_build_url(region: &str, project: &str, build_id: &str) -> String {
    console_url(region, project, "build", build_id)
}

fn console_url(region: &str, project: &str, kind: &str, id: &str) -> String {
    let escaped: String = id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    let host = match region_partition(region) {
        "aws-cn" => "console.amazonaws.cn".to_owned(),
        "aws-us-gov" => "console.amazonaws-us-gov.com".to_owned(),
        _ => format!("{region}.console.aws.amazon.com"),
    };
    format!(
        "https://{host}/codesuite/codebuild/projects/{project}/{kind}/{escaped}?region={region}"
    )
}

/// The key of the marker left on a run that a newer run of its ref replaced.
pub fn superseded_key(root: &str, batch_id: &str) -> String {
    format!("{root}runs/{}.superseded.json", escape(batch_id))
}

/// The key of the record of the batches running for one git ref (`refs/heads/main`).
pub fn ref_key(root: &str, git_ref: &str) -> String {
    format!("{root}pushes/refs/{}.json", escape(git_ref))
}

/// An `s3://bucket/key` address, for messages and answers.
pub fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// `text` as one key segment: letters, digits, `-`, `_` and `.` as they are (a leading `.`
/// escaped), everything else (`/`, `:` …) as `%XX` per byte, so distinct texts never share a
/// key and every key stays one segment.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, b) in text.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() { "%".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Role, Variant};

    const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/ci/0e8c4f20-1111-2222-3333-444455556666";

    #[test]
    fn console_pages_escape_the_id_and_follow_the_partition() {
        assert_eq!(
            console_batch_url("eu-west-1", "ci", "ci:0e8c-11"),
            "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/ci/batch/ci%3A0e8c-11?region=eu-west-1"
        );
        assert_eq!(
            console_build_url("cn-north-1", "ci", "ci:b/1"),
            "https://console.amazonaws.cn/codesuite/codebuild/projects/ci/build/ci%3Ab%2F1?region=cn-north-1"
        );
    }

    #[test]
    fn open_run_markers_name_their_batch() {
        for batch in ["ci:0e8c4f20-1111", "release:x%y", "ci:.a"] {
            let key = open_run_key("r/", batch);
            assert!(
                key.starts_with("r/runs/open/") && key.ends_with(".json"),
                "{key}"
            );
            assert_eq!(open_run_batch("r/", &key).as_deref(), Some(batch));
        }
        assert_eq!(open_run_batch("r/", "r/runs/open/x%4"), None);
        assert_eq!(open_run_batch("r/", "r/runs/x.json"), None);
    }

    #[test]
    fn every_key_lives_under_the_resource_root() {
        let root = resource_root("flavor-ci/", STACK, "Buildspecs");
        assert!(
            root.starts_with("flavor-ci/ci-") && root.ends_with("/Buildspecs/"),
            "{root}"
        );
        let doc = Document {
            variant: Variant::Ci,
            role: Role::Batch,
            file_name: "ci-batch-buildspec.yaml".into(),
            yaml: "version: 0.2\n".into(),
        };
        let sha = doc.sha256();
        assert_eq!(
            spec_key(&root, &doc),
            format!("{root}specs/{sha}/ci-batch-buildspec.yaml")
        );
        assert_eq!(
            push_spec_key(&root, &doc),
            format!("{root}pushes/specs/{sha}/ci-batch-buildspec.yaml")
        );
        assert_eq!(
            delivery_key(&root, "abc-1"),
            format!("{root}pushes/deliveries/abc-1.json")
        );
        assert!(settings_key(&root, "{}").starts_with(&format!("{root}settings/")));
        assert_eq!(
            run_key(&root, "ci:0e8c4f20-aaaa"),
            format!("{root}runs/ci%3A0e8c4f20-aaaa.json")
        );
        assert_eq!(
            ref_key(&root, "refs/heads/feature/x.y"),
            format!("{root}pushes/refs/refs%2Fheads%2Ffeature%2Fx.y.json")
        );
        assert_ne!(
            ref_key(&root, "refs/heads/a/b"),
            ref_key(&root, "refs/heads/a%2Fb")
        );
        assert_eq!(ref_key(&root, ".."), format!("{root}pushes/refs/%2E..json"));
    }

    #[test]
    fn arns_follow_the_partition() {
        assert_eq!(region_partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("arn:aws-us-gov:cloudformation:x"), "aws-us-gov");
        assert_eq!(
            s3_object_arn("aws", "b", "k/x.yaml"),
            "arn:aws:s3:::b/k/x.yaml"
        );
        assert_eq!(s3_uri("b", "k"), "s3://b/k");
        assert_eq!(stack_name(STACK), "ci");
    }
}
