//! Physical resource ids: what each one names, and which ones a Delete may act on.

use crate::layout::resource_root;

use super::*;

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
