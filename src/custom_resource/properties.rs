//! Reading and checking the resource's properties: bucket, prefix, flavors and settings.

use std::fmt;

use serde_json::Value;

use crate::flavors::{FlavorSet, IdentifierStyle};
use crate::settings::Settings;
use crate::text::edit_distance;

use super::*;

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
        unknown_properties(map, &mut bad);
        let bucket = read_bucket(map, &mut bad);
        let prefix = read_prefix(map, &mut bad);
        // Settings are read first (the flavors' identifiers follow them) but reported after
        // the flavors, in the order the properties are documented.
        let mut deferred: Vec<(String, String)> = Vec::new();
        let settings = read_settings(map, &mut deferred);
        // Identifiers (and their collisions) follow the settings' style when they are valid.
        let style = settings
            .as_ref()
            .map_or(IdentifierStyle::Standard, |s| s.batch.identifier_style);
        let flavors = read_flavors(map, style, &mut bad);
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

/// A problem with one property: its name and what is wrong.
type Bad<'a> = dyn FnMut(&str, String) + 'a;

/// Reports properties that are neither flavor-ci's nor CloudFormation's, with a near match.
fn unknown_properties(map: &serde_json::Map<String, Value>, bad: &mut Bad<'_>) {
    for key in map.keys() {
        if !CLOUDFORMATION_PROPERTIES.contains(&key.as_str()) && !PROPERTIES.contains(&key.as_str())
        {
            let hint = PROPERTIES
                .iter()
                .find(|p| edit_distance(&p.to_ascii_lowercase(), &key.to_ascii_lowercase()) <= 2)
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
}

/// `Bucket`: required, a bucket name.
fn read_bucket(map: &serde_json::Map<String, Value>, bad: &mut Bad<'_>) -> Option<String> {
    match map.get("Bucket") {
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
    }
}

/// `Prefix`: optional, made to end with `/`.
fn read_prefix(map: &serde_json::Map<String, Value>, bad: &mut Bad<'_>) -> Option<String> {
    match map.get("Prefix") {
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
    }
}

/// `Settings`: a mapping in the flavor-ci.yaml schema, or that YAML as a string; its problems go
/// to `deferred` (reported after the flavors').
fn read_settings(
    map: &serde_json::Map<String, Value>,
    deferred: &mut Vec<(String, String)>,
) -> Option<Settings> {
    match map.get("Settings") {
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
                "must be an object in the flavor-ci.yaml schema, or that YAML as a string".into(),
            ));
            None
        }
    }
}

/// `Flavors`: required, a list of names or one comma-separated string.
fn read_flavors(
    map: &serde_json::Map<String, Value>,
    style: IdentifierStyle,
    bad: &mut Bad<'_>,
) -> Option<FlavorSet> {
    match map.get("Flavors") {
        None | Some(Value::Null) => {
            bad(
                "Flavors",
                "is required: list the flavor names (a list, or one comma-separated string)".into(),
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
    }
}

pub(super) fn settings_path(path: &str) -> String {
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
