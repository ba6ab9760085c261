//! CloudFormation templates as flavor-ci reads them: recognising one, turning its YAML (short
//! intrinsic tags included) into CloudFormation's JSON form, and checking the settings and
//! flavors its `Custom::Buildspecs` resources carry with the same code the resource runs.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::custom_resource;
use crate::yaml::{self, Kind, Node};

/// The resource type the buildspec function serves.
pub const BUILDSPECS_TYPE: &str = "Custom::Buildspecs";

/// Reads a template (YAML or JSON) into CloudFormation's JSON form: `!Ref X` becomes
/// `{"Ref": "X"}`, `!GetAtt A.B` `{"Fn::GetAtt": ["A", "B"]}`, `!Sub …` `{"Fn::Sub": …}`.
pub fn read(text: &str) -> Result<Value, yaml::ReadError> {
    Ok(to_json(&yaml::read(text)?))
}

/// Whether `value` looks like a CloudFormation template.
pub fn is_template(value: &Value) -> bool {
    value.get("Resources").is_some_and(Value::is_object)
        && (value.get("AWSTemplateFormatVersion").is_some() || value.get("Transform").is_some())
}

fn to_json(node: &Node) -> Value {
    let plain = match &node.kind {
        Kind::Scalar { text, .. } => Value::String(text.to_string()),
        Kind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Kind::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match &k.kind {
                    Kind::Scalar { text, .. } => text.to_string(),
                    _ => continue,
                };
                map.insert(key, to_json(v));
            }
            Value::Object(map)
        }
    };
    match node.tag.as_deref().and_then(|t| t.strip_prefix('!')) {
        None | Some("") => plain,
        // `!!str` and other core-schema tags: keep the value.
        Some(t) if t.starts_with('!') || t.contains(':') => plain,
        Some("Ref") => json!({"Ref": plain}),
        Some("Condition") => json!({"Condition": plain}),
        Some("GetAtt") => match plain {
            Value::String(s) => match s.split_once('.') {
                Some((a, b)) => json!({"Fn::GetAtt": [a, b]}),
                None => json!({"Fn::GetAtt": [s]}),
            },
            other => json!({"Fn::GetAtt": other}),
        },
        Some(name) => json!({format!("Fn::{name}"): plain}),
    }
}

/// What the check of one `Custom::Buildspecs` resource found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Generated and validated: a summary such as `4 flavors, 3 objects`.
    Ok {
        resource: String,
        summary: String,
    },
    Invalid {
        resource: String,
        problems: String,
    },
    /// A property is not known before deployment (a `!GetAtt`, a parameter without a default).
    Skipped {
        resource: String,
        reason: String,
    },
}

/// Checks every `Custom::Buildspecs` resource of `template`. Parameter references resolve to
/// `parameters[name]`, else the parameter's `Default`; the bucket may be any reference.
pub fn check_buildspecs(template: &Value, parameters: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(resources) = template.get("Resources").and_then(Value::as_object) else {
        return findings;
    };
    for (name, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some(BUILDSPECS_TYPE) {
            continue;
        }
        let props = resource
            .get("Properties")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let Some(props) = props.as_object() else {
            findings.push(Finding::Invalid {
                resource: name.clone(),
                problems: "Properties is not a mapping".into(),
            });
            continue;
        };
        let mut resolved = Map::new();
        let mut skipped = None;
        for (key, value) in props {
            match resolve(template, parameters, value) {
                Ok(v) => {
                    resolved.insert(key.clone(), v);
                }
                // The bucket only names where objects go; any bucket will do for the check.
                Err(_) if key == "Bucket" => {
                    resolved.insert(key.clone(), json!("bucket-resolved-at-deploy"));
                }
                Err(_) if key == "ServiceToken" => {}
                Err(why) => {
                    skipped = Some(format!("{key} {why}"));
                    break;
                }
            }
        }
        if let Some(reason) = skipped {
            findings.push(Finding::Skipped {
                resource: name.clone(),
                reason,
            });
            continue;
        }
        let stack = "arn:aws:cloudformation:us-east-1:000000000000:stack/validate/00000000-0000-0000-0000-000000000000";
        match custom_resource::plan(&Value::Object(resolved), stack, name) {
            Ok(plan) => findings.push(Finding::Ok {
                resource: name.clone(),
                summary: format!(
                    "{} flavors, {} buildspec objects, content hash {}",
                    plan.data.get("FlavorCount").map_or("?", String::as_str),
                    plan.objects.len(),
                    plan.data
                        .get("ContentHash")
                        .map_or("?", |h| &h[..h.len().min(12)])
                ),
            }),
            Err(e) => findings.push(Finding::Invalid {
                resource: name.clone(),
                problems: e.to_string(),
            }),
        }
    }
    findings
}

/// A property value with parameter references replaced; `Err` says why it cannot be known.
fn resolve(
    template: &Value,
    parameters: &BTreeMap<String, String>,
    value: &Value,
) -> Result<Value, String> {
    match value {
        Value::Object(map) if map.len() == 1 => {
            let (key, inner) = map
                .iter()
                .next()
                .map_or(("", &Value::Null), |(k, v)| (k.as_str(), v));
            if key == "Ref" {
                let name = inner.as_str().unwrap_or_default();
                if let Some(v) = parameters.get(name) {
                    return Ok(Value::String(v.clone()));
                }
                return template
                    .pointer(&format!("/Parameters/{name}/Default"))
                    .map(|d| match d {
                        Value::String(_) => d.clone(),
                        other => Value::String(other.to_string()),
                    })
                    .ok_or_else(|| {
                        format!(
                            "refers to {name}, which has no default; pass --parameter {name}=VALUE"
                        )
                    });
            }
            if key.starts_with("Fn::") {
                return Err(format!("is {key}, known only at deploy time"));
            }
            resolve_map(template, parameters, map)
        }
        Value::Object(map) => resolve_map(template, parameters, map),
        Value::Array(items) => items
            .iter()
            .map(|v| resolve(template, parameters, v))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn resolve_map(
    template: &Value,
    parameters: &BTreeMap<String, String>,
    map: &Map<String, Value>,
) -> Result<Value, String> {
    let mut out = Map::new();
    for (k, v) in map {
        out.insert(k.clone(), resolve(template, parameters, v)?);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Flavors: {Type: String, Default: "base,python-3.10"}
  Settings: {Type: String, Default: "{}"}
  NoDefault: {Type: String}
Resources:
  Bucket: {Type: AWS::S3::Bucket}
  Buildspecs:
    Type: Custom::Buildspecs
    Properties:
      ServiceToken: !GetAtt Fn.Arn
      Bucket: !Ref Bucket
      Flavors: !Ref Flavors
      Settings: !Ref Settings
  Url:
    Type: AWS::Lambda::Url
    Properties:
      TargetFunctionArn: !Sub "${Fn.Arn}"
      Cors: !If [Cond, {AllowOrigins: ["*"]}, !Ref AWS::NoValue]
"#;

    #[test]
    fn short_tags_become_cloudformation_json() {
        let t = read(TEMPLATE).unwrap();
        assert!(is_template(&t));
        assert_eq!(
            t["Resources"]["Buildspecs"]["Properties"]["ServiceToken"],
            json!({"Fn::GetAtt": ["Fn", "Arn"]})
        );
        assert_eq!(
            t["Resources"]["Buildspecs"]["Properties"]["Flavors"],
            json!({"Ref": "Flavors"})
        );
        assert_eq!(
            t["Resources"]["Url"]["Properties"]["TargetFunctionArn"],
            json!({"Fn::Sub": "${Fn.Arn}"})
        );
        assert_eq!(
            t["Resources"]["Url"]["Properties"]["Cors"]["Fn::If"][2],
            json!({"Ref": "AWS::NoValue"})
        );
        assert!(!is_template(&read("version: 0.2\nphases: {}\n").unwrap()));
    }

    #[test]
    fn buildspec_resources_are_checked_with_defaults_and_overrides() {
        let t = read(TEMPLATE).unwrap();
        let none = BTreeMap::new();
        match &check_buildspecs(&t, &none)[..] {
            [Finding::Ok { resource, summary }] => {
                assert_eq!(resource, "Buildspecs");
                assert!(summary.starts_with("2 flavors"), "{summary}");
            }
            other => panic!("{other:?}"),
        }
        let bad = BTreeMap::from([
            ("Flavors".to_string(), "a,b".to_string()),
            (
                "Settings".to_string(),
                r#"{"batch": {"max-builds": 0}}"#.to_string(),
            ),
        ]);
        match &check_buildspecs(&t, &bad)[..] {
            [Finding::Invalid { problems, .. }] => {
                assert!(problems.contains("max-builds"), "{problems}")
            }
            other => panic!("{other:?}"),
        }
        let t2 =
            read(&TEMPLATE.replace("Flavors: !Ref Flavors", "Flavors: !Ref NoDefault")).unwrap();
        match &check_buildspecs(&t2, &none)[..] {
            [Finding::Skipped { reason, .. }] => {
                assert!(reason.contains("--parameter NoDefault=VALUE"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
