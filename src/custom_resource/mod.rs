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

use serde_json::Value;

mod physical_id;
mod planning;
mod properties;
mod response;
#[cfg(test)]
mod tests;

pub use physical_id::*;
pub use planning::*;
pub use properties::*;
pub use response::*;

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
