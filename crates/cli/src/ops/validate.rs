//! Template validation through CloudFormation's `ValidateTemplate`.

use std::io::{self, Write as _};

use super::templates::TemplateFile;
use super::{AwsArgs, aws_error};

/// The largest template body `ValidateTemplate` accepts inline.
const MAX_TEMPLATE_BODY: usize = 51_200;

fn say(line: &str) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// A CloudFormation client, or `None` (after saying why) when no region is set.
pub(crate) async fn client(aws: &AwsArgs) -> Option<aws_sdk_cloudformation::Client> {
    let config = aws.load().await;
    if config.region().is_none() {
        say(
            "FAIL  ValidateTemplate needs a region: set AWS_REGION, pass --region, or --offline to skip it",
        );
        return None;
    }
    Some(aws_sdk_cloudformation::Client::new(&config))
}

/// Runs `ValidateTemplate` on one template; prints the result; returns whether it passed.
pub(crate) async fn one(cfn: &aws_sdk_cloudformation::Client, t: &TemplateFile) -> bool {
    if t.text.len() > MAX_TEMPLATE_BODY {
        say(&format!(
            "FAIL  {}: ValidateTemplate: {} bytes is over the {MAX_TEMPLATE_BODY}-byte inline limit; shorten the template",
            t.path,
            t.text.len()
        ));
        return false;
    }
    match cfn.validate_template().template_body(&t.text).send().await {
        Ok(out) => {
            let needs = if out.capabilities().is_empty() {
                String::new()
            } else {
                format!(
                    ", needs {}",
                    out.capabilities()
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            say(&format!(
                "PASS  {}: ValidateTemplate: {} parameters{needs}",
                t.path,
                out.parameters().len(),
            ));
            true
        }
        Err(e) => {
            say(&format!(
                "FAIL  {}: ValidateTemplate: {}",
                t.path,
                aws_error(&e)
            ));
            false
        }
    }
}
