//! Confirms with CloudFormation that a Delete is real before anything is removed.
//!
//! Anyone in the account who may invoke the function could send a Delete with this stack's ids;
//! without a check the function would remove every version of the live specs. So before a
//! Delete removes objects, the function asks CloudFormation (`DescribeStackResource` on the
//! event's stack and logical id, the one read action its role has on its own stack) whether the
//! stack is deleting that resource, or cleaning up an older physical resource after replacing
//! it. When CloudFormation says otherwise, nothing is removed and the answer is FAILED.

use aws_sdk_cloudformation::error::ProvideErrorMetadata;

/// Local tests whose Delete events name stacks no CloudFormation knows turn the check off with
/// `FLAVOR_CI_CONFIRM_DELETES=off`; the stack never sets it.
pub(crate) const CONFIRM_DELETES: &str = "FLAVOR_CI_CONFIRM_DELETES";

#[derive(Debug)]
pub(crate) enum Guard {
    /// Asks CloudFormation (the client is built on first use).
    CloudFormation(flavor_ci_aws::FromSdk<aws_sdk_cloudformation::Client>),
    /// Local tests only.
    Off,
    /// Unit tests: what CloudFormation would report (status, current physical id), or an error.
    #[cfg(test)]
    Reports(Result<(String, Option<String>), String>),
}

impl Guard {
    /// The guard the environment asks for.
    pub(crate) fn from_env(sdk: &std::sync::Arc<flavor_ci_aws::LazySdk>) -> Self {
        if std::env::var(CONFIRM_DELETES).is_ok_and(|v| v == "off") {
            Guard::Off
        } else {
            Guard::CloudFormation(flavor_ci_aws::FromSdk::on_first_use(
                sdk.clone(),
                aws_sdk_cloudformation::Client::new,
            ))
        }
    }

    /// `Ok` when CloudFormation confirms the Delete of `physical_id`; the reason otherwise.
    pub(crate) async fn confirm_delete(
        &self,
        stack_id: &str,
        logical_id: &str,
        physical_id: &str,
    ) -> Result<(), String> {
        let (status, current) = match self {
            Guard::Off => return Ok(()),
            #[cfg(test)]
            Guard::Reports(r) => r.clone()?,
            Guard::CloudFormation(client) => {
                let out = client
                    .get()
                    .await
                    .describe_stack_resource()
                    .stack_name(stack_id)
                    .logical_resource_id(logical_id)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "cannot confirm with CloudFormation that the stack is deleting {logical_id} ({}: {}); nothing was removed. Retry the deletion; if this persists, allow cloudformation:DescribeStackResource on the stack to the function's role",
                            e.code().unwrap_or("error"),
                            e.message().unwrap_or("no answer")
                        )
                    })?;
                let detail = out.stack_resource_detail();
                (
                    detail
                        .and_then(|d| d.resource_status())
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    detail
                        .and_then(|d| d.physical_resource_id())
                        .map(str::to_owned),
                )
            }
        };
        decide(logical_id, &status, current.as_deref(), physical_id)
    }
}

/// Whether what CloudFormation reports about the resource allows deleting `physical_id`: the
/// resource is being deleted (the stack's deletion, or a failed create rolled back), or it now
/// has another physical id (an older one is cleaned up after a replacement or a rolled-back
/// update). A resource complete or updating under this very id is not being deleted.
pub(crate) fn decide(
    logical_id: &str,
    status: &str,
    current: Option<&str>,
    physical_id: &str,
) -> Result<(), String> {
    if current != Some(physical_id) || status.starts_with("DELETE_") {
        return Ok(());
    }
    Err(format!(
        "CloudFormation reports {logical_id} as {status} under this physical id: the stack is not deleting it, so this Delete did not come from CloudFormation; nothing was removed"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_go_ahead_only_when_cloudformation_is_deleting_the_resource() {
        let id = "flavor-ci:v1:s3://b/r/";
        // The stack is being deleted, or a failed create is rolled back.
        assert!(decide("B", "DELETE_IN_PROGRESS", Some(id), id).is_ok());
        assert!(decide("B", "DELETE_FAILED", Some(id), id).is_ok());
        // An older physical resource after a replacement or a rolled-back update.
        assert!(decide("B", "UPDATE_COMPLETE", Some("flavor-ci:v1:s3://b/new/"), id).is_ok());
        assert!(decide("B", "UPDATE_COMPLETE", None, id).is_ok());
        // A live resource under this id: a forged Delete.
        for status in [
            "CREATE_COMPLETE",
            "UPDATE_COMPLETE",
            "UPDATE_IN_PROGRESS",
            "CREATE_IN_PROGRESS",
        ] {
            let err = decide("Buildspecs", status, Some(id), id).unwrap_err();
            assert!(err.contains(&format!("Buildspecs as {status}")), "{err}");
            assert!(err.contains("nothing was removed"), "{err}");
        }
    }
}
