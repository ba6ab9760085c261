//! The CloudFormation custom resource, without I/O: reading the resource properties, planning
//! what to store where, physical resource ids, and the response body CloudFormation accepts.
//!
//! # Storage layout (shared with the webhook function)
//!
//! Every object a resource writes lives under its *root*:
//! `<Prefix><stack name>-<12 hex of SHA-256(StackId)>/<LogicalResourceId>/`. The root belongs
//! to exactly one resource of one stack, so deleting it never touches another stack's or another
//! resource's objects in a shared bucket. Inside the root, keys are content-addressed:
//!
//! - `specs/<SHA-256 of the YAML>/<file name>`: each generated buildspec;
//! - `settings/<SHA-256 of the JSON>.json`: the settings the stack deployed, in canonical JSON,
//!   which the webhook reads to regenerate byte-identical buildspecs.
//!
//! A running build keeps reading the spec it started with; a changed spec gets a new key, so
//! the ARN in `Fn::GetAtt` changes and CloudFormation updates the project.
//!
//! # Physical resource ids
//!
//! `flavor-ci:v1:s3://<bucket>/<root>` for a stored resource: deterministic, so duplicate
//! deliveries and updates that keep `Bucket` and `Prefix` keep the id, and a new bucket or prefix
//! is a replacement. A failed Create answers `flavor-ci:v1:create-failed:<RequestId>`; Delete
//! acknowledges that marker, and any id this function did not produce for the same stack and
//! logical resource, without touching S3.

use std::fmt;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use crate::flavors::{FlavorSet, IdentifierStyle};
use crate::generate::{self, Output, Role, Variant};
use crate::layout::{partition, resource_root, s3_object_arn, settings_key, spec_key};
use crate::settings::Settings;
use crate::text::edit_distance;

/// The largest response body CloudFormation accepts.
pub const MAX_RESPONSE_BYTES: usize = 4096;
/// The longest physical resource id CloudFormation accepts.
pub const MAX_PHYSICAL_ID_BYTES: usize = 1024;
/// The longest `Prefix` accepted, so that every key stays within S3's 1,024-byte limit.
pub const MAX_PREFIX_BYTES: usize = 512;
/// The prefix used when the `Prefix` property is absent.
pub const DEFAULT_PREFIX: &str = "flavor-ci/";

const ID_SCHEME: &str = "flavor-ci:v1:";
const FAILED_CREATE: &str = "flavor-ci:v1:create-failed:";
const PROPERTIES: [&str; 4] = ["Bucket", "Prefix", "Flavors", "Settings"];
/// Properties CloudFormation itself defines for every custom resource.
const CLOUDFORMATION_PROPERTIES: [&str; 2] = ["ServiceToken", "ServiceTimeout"];

/// The resource's `ServiceTimeout` (1–3600 s), which CloudFormation passes along with the other
/// properties: how long the stack waits for the answer.
pub fn service_timeout(properties: &Value) -> Option<std::time::Duration> {
    let seconds = match properties.get("ServiceTimeout")? {
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    (1..=3600)
        .contains(&seconds)
        .then(|| std::time::Duration::from_secs(seconds))
}

/// What a CloudFormation request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

impl RequestType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Create" => Some(Self::Create),
            "Update" => Some(Self::Update),
            "Delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// One invalid resource property, named the way the template spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyProblem {
    pub property: String,
    pub message: String,
}

impl fmt::Display for PropertyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.message)
    }
}

/// Every problem with a resource's properties.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PropertyErrors(pub Vec<PropertyProblem>);

impl fmt::Display for PropertyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid resource properties: ")?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Where a resource stores its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
}

/// The validated properties of one resource.
#[derive(Debug, Clone)]
pub struct Properties {
    pub location: Location,
    pub flavors: FlavorSet,
    pub settings: Settings,
}

impl Properties {
    /// Reads `ResourceProperties`. Every value may arrive as a string, as CloudFormation sends
    /// them; `ServiceToken` and `ServiceTimeout` are CloudFormation's own.
    pub fn from_json(value: &Value) -> Result<Self, PropertyErrors> {
        let mut problems = Vec::new();
        let mut bad = |property: &str, message: String| {
            problems.push(PropertyProblem {
                property: property.into(),
                message,
            })
        };
        let Some(map) = value.as_object() else {
            return Err(PropertyErrors(vec![PropertyProblem {
                property: "Properties".into(),
                message: "must be an object with Bucket and Flavors".into(),
            }]));
        };
        for key in map.keys() {
            if !CLOUDFORMATION_PROPERTIES.contains(&key.as_str())
                && !PROPERTIES.contains(&key.as_str())
            {
                let hint = PROPERTIES
                    .iter()
                    .find(|p| {
                        edit_distance(&p.to_ascii_lowercase(), &key.to_ascii_lowercase()) <= 2
                    })
                    .map(|p| format!("; did you mean {p}?"))
                    .unwrap_or_default();
                bad(
                    key,
                    format!(
                        "unknown property{hint} (expected {})",
                        PROPERTIES.join(", ")
                    ),
                );
            }
        }

        let bucket = match map.get("Bucket") {
            None | Some(Value::Null) => {
                bad(
                    "Bucket",
                    "is required: name the S3 bucket that holds the buildspecs".into(),
                );
                None
            }
            Some(Value::String(b)) => match bucket_problem(b) {
                Some(m) => {
                    bad("Bucket", m);
                    None
                }
                None => Some(b.clone()),
            },
            Some(_) => {
                bad("Bucket", "must be a string (a bucket name)".into());
                None
            }
        };
        let prefix = match map.get("Prefix") {
            None | Some(Value::Null) => Some(DEFAULT_PREFIX.to_string()),
            Some(Value::String(p)) => match prefix_problem(p) {
                Some(m) => {
                    bad("Prefix", m);
                    None
                }
                None if p.is_empty() || p.ends_with('/') => Some(p.clone()),
                None => Some(format!("{p}/")),
            },
            Some(_) => {
                bad("Prefix", "must be a string such as `flavor-ci/`".into());
                None
            }
        };
        // Settings are read first (the flavors' identifiers follow them) but reported after
        // the flavors, in the order the properties are documented.
        let mut deferred: Vec<(String, String)> = Vec::new();
        let settings = match map.get("Settings") {
            None | Some(Value::Null) => Settings::from_json(Value::Null).ok(),
            Some(Value::String(text)) => match Settings::from_yaml(text) {
                Ok(s) => Some(s),
                Err(e) => {
                    for p in e.0 {
                        deferred.push((settings_path(&p.path), with_line(p.line, p.message)));
                    }
                    None
                }
            },
            Some(v @ Value::Object(_)) => match Settings::from_json(v.clone()) {
                Ok(s) => Some(s),
                Err(e) => {
                    for p in e.0 {
                        deferred.push((settings_path(&p.path), p.message));
                    }
                    None
                }
            },
            Some(_) => {
                deferred.push((
                    "Settings".into(),
                    "must be an object in the flavor-ci.yaml schema, or that YAML as a string"
                        .into(),
                ));
                None
            }
        };
        // Identifiers (and their collisions) follow the settings' style when they are valid.
        let style = settings
            .as_ref()
            .map_or(IdentifierStyle::Standard, |s| s.batch.identifier_style);
        let flavors = match map.get("Flavors") {
            None | Some(Value::Null) => {
                bad(
                    "Flavors",
                    "is required: list the flavor names (a list, or one comma-separated string)"
                        .into(),
                );
                None
            }
            Some(v) => match flavor_names(v) {
                Err(m) => {
                    bad("Flavors", m);
                    None
                }
                Ok(names) => match FlavorSet::from_names_in(&names, style) {
                    Ok(set) => Some(set),
                    Err(errors) => {
                        for e in errors.0 {
                            bad("Flavors", e.to_string());
                        }
                        None
                    }
                },
            },
        };
        for (property, message) in deferred {
            bad(&property, message);
        }
        match (bucket, prefix, flavors, settings) {
            (Some(bucket), Some(prefix), Some(flavors), Some(settings)) if problems.is_empty() => {
                Ok(Self {
                    location: Location { bucket, prefix },
                    flavors,
                    settings,
                })
            }
            _ => Err(PropertyErrors(problems)),
        }
    }
}

fn settings_path(path: &str) -> String {
    if path.is_empty() {
        "Settings".into()
    } else {
        format!("Settings.{path}")
    }
}

fn with_line(line: Option<usize>, message: String) -> String {
    match line {
        Some(l) => format!("line {l}: {message}"),
        None => message,
    }
}

fn flavor_names(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "item {} is {}, not a flavor name; list names as strings",
                    i + 1,
                    kind(other)
                )),
            })
            .collect(),
        other => Err(format!(
            "is {}; give a list of flavor names or one comma-separated string",
            kind(other)
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Why `name` is not a valid S3 bucket name (the general-purpose bucket rules).
pub fn bucket_problem(name: &str) -> Option<String> {
    let fix = "use 3–63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit";
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&name.len())
        || !valid_chars
        || !edge_ok(name.bytes().next())
        || !edge_ok(name.bytes().last())
        || name.contains("..")
    {
        return Some(format!(
            "`{}` is not a valid bucket name: {fix}",
            shorten(name, 80)
        ));
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Some(format!("`{name}` looks like an IP address: {fix}"));
    }
    None
}

/// Why `prefix` cannot be a key prefix.
pub fn prefix_problem(prefix: &str) -> Option<String> {
    if prefix.len() > MAX_PREFIX_BYTES {
        return Some(format!(
            "is {} bytes; keep it within {MAX_PREFIX_BYTES} so every key fits S3's 1,024-byte limit",
            prefix.len()
        ));
    }
    if prefix.starts_with('/') {
        return Some("must not start with `/`; write `flavor-ci/`, not `/flavor-ci/`".into());
    }
    if prefix.contains("//") || prefix.split('/').any(|s| s == "." || s == "..") {
        return Some("must not contain empty, `.` or `..` path segments".into());
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()/".contains(*c)))
    {
        return Some(format!(
            "contains {c:?}; use letters, digits and `!-_.*'()/` only"
        ));
    }
    None
}

/// A physical resource id, as this function produces and reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhysicalId {
    /// Objects stored under `root` of `bucket`.
    Stored { bucket: String, root: String },
    /// The marker a failed Create answers with.
    FailedCreate,
    /// Anything else: an id CloudFormation made up, or one of another resource.
    Foreign,
}

impl PhysicalId {
    pub fn stored(bucket: &str, root: &str) -> String {
        format!("{ID_SCHEME}s3://{bucket}/{root}")
    }

    pub fn failed_create(request_id: &str) -> String {
        let id: String = request_id.chars().take(200).collect();
        format!("{FAILED_CREATE}{id}")
    }

    /// Reads `id` as seen by the resource `logical_id` of stack `stack_id`. A stored id whose
    /// root does not belong to that resource is `Foreign`, so no request can make this
    /// function delete another resource's objects.
    pub fn parse(id: &str, stack_id: &str, logical_id: &str) -> Self {
        if id.starts_with(FAILED_CREATE) {
            return Self::FailedCreate;
        }
        let Some(rest) = id
            .strip_prefix(ID_SCHEME)
            .and_then(|r| r.strip_prefix("s3://"))
        else {
            return Self::Foreign;
        };
        let Some((bucket, root)) = rest.split_once('/') else {
            return Self::Foreign;
        };
        let own = resource_root("", stack_id, logical_id);
        let prefix_ok = root
            .strip_suffix(own.as_str())
            .is_some_and(|p| prefix_problem(p).is_none() && (p.is_empty() || p.ends_with('/')));
        if bucket_problem(bucket).is_none() && prefix_ok {
            Self::Stored {
                bucket: bucket.into(),
                root: root.into(),
            }
        } else {
            Self::Foreign
        }
    }
}

/// One object to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub body: String,
    pub content_type: &'static str,
}

/// Everything a Create or Update stores and answers.
#[derive(Debug, Clone)]
pub struct Plan {
    pub bucket: String,
    pub root: String,
    pub physical_id: String,
    /// In write order: settings, then build buildspecs, then the batch buildspecs that use them.
    pub objects: Vec<StoredObject>,
    pub data: IndexMap<String, String>,
    pub warnings: Vec<String>,
}

/// Why a Create or Update cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Properties(#[from] PropertyErrors),
    #[error("cannot generate the buildspecs: {0}")]
    Generate(String),
    #[error(
        "the physical resource id would be {0} bytes, over CloudFormation's {MAX_PHYSICAL_ID_BYTES}; shorten Prefix"
    )]
    IdTooLong(usize),
}

/// Plans a Create or Update: generates the buildspecs and decides keys, id and `Data`.
pub fn plan(properties: &Value, stack_id: &str, logical_id: &str) -> Result<Plan, PlanError> {
    let props = Properties::from_json(properties)?;
    let output = generate::generate(generate::Request {
        settings: &props.settings,
        flavors: &props.flavors,
        only: None,
        release_id: None,
    })
    .map_err(|e| match e {
        generate::GenerateError::Settings(settings) => PlanError::Properties(PropertyErrors(
            settings
                .0
                .into_iter()
                .map(|p| PropertyProblem {
                    property: settings_path(&p.path),
                    message: p.message,
                })
                .collect(),
        )),
        other => PlanError::Generate(other.to_string().replace('\n', "; ")),
    })?;
    let Location { bucket, prefix } = props.location;
    let root = resource_root(&prefix, stack_id, logical_id);
    let physical_id = PhysicalId::stored(&bucket, &root);
    if physical_id.len() > MAX_PHYSICAL_ID_BYTES {
        return Err(PlanError::IdTooLong(physical_id.len()));
    }

    let settings_json = props.settings.to_canonical_json();
    let settings_key = settings_key(&root, &settings_json);
    let mut objects = vec![StoredObject {
        key: settings_key.clone(),
        body: settings_json,
        content_type: "application/json",
    }];
    objects.extend(output.documents.iter().map(|d| StoredObject {
        key: spec_key(&root, d),
        body: d.yaml.clone(),
        content_type: "application/yaml",
    }));

    let mut data = IndexMap::new();
    data.insert("Bucket".into(), bucket.clone());
    data.insert("Root".into(), root.clone());
    for variant in [Variant::Ci, Variant::Release] {
        let stem = match variant {
            Variant::Ci => "Ci",
            Variant::Release => "Release",
        };
        let key = output
            .document(variant, Role::Batch)
            .map(|d| spec_key(&root, d))
            .unwrap_or_default();
        let arn = if key.is_empty() {
            String::new()
        } else {
            s3_object_arn(partition(stack_id), &bucket, &key)
        };
        data.insert(format!("{stem}BatchBuildspecArn"), arn);
        data.insert(format!("{stem}BatchBuildspecKey"), key);
        if let Some(d) = output.document(variant, Role::Build) {
            data.insert(format!("{stem}BuildBuildspecKey"), spec_key(&root, d));
        }
    }
    data.insert("SettingsKey".into(), settings_key);
    data.insert("ContentHash".into(), output.content_hash());
    data.insert("FlavorCount".into(), props.flavors.len().to_string());
    let Output { warnings, .. } = output;
    Ok(Plan {
        bucket,
        root,
        physical_id,
        objects,
        data,
        warnings,
    })
}

/// `SUCCESS` or `FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
}

/// A response to one request, before it is fitted into CloudFormation's size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub reason: String,
    pub physical_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_id: String,
    pub data: IndexMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    status: Status,
    reason: &'a str,
    physical_resource_id: &'a str,
    stack_id: &'a str,
    request_id: &'a str,
    logical_resource_id: &'a str,
    no_echo: bool,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    data: &'a IndexMap<String, String>,
}

/// Room kept for `Reason` when checking that `Data` fits before anything is written.
const REASON_ROOM: usize = 512;

impl Response {
    /// `Some(size of Data)` when the response, with room for a reason, would exceed
    /// [`MAX_RESPONSE_BYTES`]: the caller fails the request before writing anything.
    pub fn data_overflow(&self) -> Option<usize> {
        let without_reason = Self {
            reason: String::new(),
            ..self.clone()
        };
        let size = serde_json::to_vec(&without_reason.body_parts(self.status, "", &self.data))
            .map_or(usize::MAX, |b| b.len());
        (size + REASON_ROOM > MAX_RESPONSE_BYTES)
            .then(|| serde_json::to_vec(&self.data).map_or(0, |d| d.len()))
    }

    fn body_parts<'a>(
        &'a self,
        status: Status,
        reason: &'a str,
        data: &'a IndexMap<String, String>,
    ) -> Body<'a> {
        Body {
            status,
            reason,
            physical_resource_id: &self.physical_id,
            stack_id: &self.stack_id,
            request_id: &self.request_id,
            logical_resource_id: &self.logical_id,
            no_echo: false,
            data,
        }
    }

    /// The JSON body, at most [`MAX_RESPONSE_BYTES`]. A long `Reason` keeps its start and end;
    /// `Data` that cannot fit turns the response into a FAILED one that says why.
    pub fn to_body(&self) -> Vec<u8> {
        let empty = IndexMap::new();
        let serialize = |status: Status, reason: &str, data: &IndexMap<String, String>| {
            serde_json::to_vec(&self.body_parts(status, reason, data)).unwrap_or_default()
        };
        let full = serialize(self.status, &self.reason, &self.data);
        if full.len() <= MAX_RESPONSE_BYTES {
            return full;
        }
        let (status, reason, data) = if self.data.is_empty() {
            (self.status, self.reason.clone(), &self.data)
        } else {
            let data_bytes = serde_json::to_vec(&self.data).map_or(0, |d| d.len());
            if serialize(self.status, "", &self.data).len() <= MAX_RESPONSE_BYTES {
                (self.status, self.reason.clone(), &self.data)
            } else {
                (
                    Status::Failed,
                    format!(
                        "the response Data ({data_bytes} bytes) does not fit CloudFormation's {MAX_RESPONSE_BYTES}-byte response limit; shorten Prefix or the stack name"
                    ),
                    &empty,
                )
            }
        };
        let base = serialize(status, "", data).len();
        let budget = MAX_RESPONSE_BYTES.saturating_sub(base);
        serialize(status, &shorten_json(&reason, budget), data)
    }
}

/// Shortens `text` so that its JSON-escaped form takes at most `budget` bytes, keeping the start
/// and the end and marking the cut.
pub fn shorten_json(text: &str, budget: usize) -> String {
    let cost = |c: char| escaped_len(c);
    let total: usize = text.chars().map(cost).sum();
    if total <= budget {
        return text.to_string();
    }
    const CUT: &str = " … ";
    let cut_cost: usize = CUT.chars().map(cost).sum();
    if budget <= cut_cost {
        return String::new();
    }
    let keep = budget - cut_cost;
    let mut head = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + cost(c) > keep / 2 {
            break;
        }
        used += cost(c);
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    for c in text.chars().rev() {
        if used + cost(c) > keep {
            break;
        }
        used += cost(c);
        tail.push(c);
    }
    tail.reverse();
    format!("{head}{CUT}{}", tail.into_iter().collect::<String>())
}

fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `text` cut to at most `max` characters, for messages that quote input.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/ci/0e8c4f20-1111-2222-3333-444455556666";

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
}
