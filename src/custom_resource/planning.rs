//! What a request stores where: the objects, their keys and the attributes it answers with.

use indexmap::IndexMap;
use serde_json::Value;

use crate::generate::{self, Output, Role, Variant};
use crate::layout::{partition, resource_root, s3_object_arn, settings_key, spec_key};

use super::*;

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
