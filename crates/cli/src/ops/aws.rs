//! Calling AWS for the operator commands: configuration from the command line and the
//! standard environment, a runtime, and AWS errors in words.

use std::fmt;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use super::AwsArgs;

impl AwsArgs {
    pub(crate) async fn load(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &self.region {
            loader = loader.region(Region::new(r.clone()));
        }
        loader.load().await
    }
}

/// A single-threaded runtime for one command.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// An AWS error as `Code: message`, or what to check when AWS did not answer at all.
pub(crate) fn aws_error<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug + 'static,
{
    use aws_sdk_s3::error::SdkError;
    match e {
        SdkError::DispatchFailure(d) if d.is_user() || root_cause(e).contains("credentials") => {
            format!(
                "no AWS credentials ({})",
                root_cause(e).trim_end_matches(" Attempted:")
            )
        }
        SdkError::DispatchFailure(_) => format!(
            "cannot reach AWS ({}); check the network, the region and AWS_ENDPOINT_URL",
            root_cause(e)
        ),
        SdkError::TimeoutError(_) => {
            "AWS did not answer in time; check the network, the region and AWS_ENDPOINT_URL".into()
        }
        SdkError::ConstructionFailure(_) => format!(
            "the request could not be made ({}); check the credentials and the region",
            root_cause(e)
        ),
        _ => flavor_ci_aws::sdk_error_message(e, ""),
    }
}

/// The innermost error's message, first line: the part that says what actually went wrong.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    text.lines().next().unwrap_or_default().to_owned()
}
