//! Template validation: CloudFormation's `ValidateTemplate`, then flavor-ci's own check of the
//! settings and flavors each `Custom::Buildspecs` resource carries.

use std::collections::BTreeMap;

use flavor_ci::template::{self, Finding};
use serde_json::Value;

use super::{AwsArgs, aws_error};

/// The largest template body `ValidateTemplate` accepts inline.
const MAX_TEMPLATE_BODY: usize = 51_200;

/// One template to check.
#[derive(Debug)]
pub(crate) struct TemplateFile {
    pub(crate) path: String,
    pub(crate) text: String,
    pub(crate) value: Value,
}

/// Checks the templates; prints a line per check; returns whether all passed.
pub(crate) async fn run(
    aws: &AwsArgs,
    templates: &[TemplateFile],
    parameters: &BTreeMap<String, String>,
    offline: bool,
) -> bool {
    let mut ok = true;
    let cfn = if offline {
        None
    } else {
        let config = aws.load().await;
        if config.region().is_none() {
            println!(
                "FAIL  ValidateTemplate needs a region: set AWS_REGION, pass --region, or --offline to skip it"
            );
            return false;
        }
        Some(aws_sdk_cloudformation::Client::new(&config))
    };
    for t in templates {
        if let Some(cfn) = &cfn {
            if t.text.len() > MAX_TEMPLATE_BODY {
                ok = false;
                println!(
                    "FAIL  {}: ValidateTemplate: {} bytes is over the {MAX_TEMPLATE_BODY}-byte inline limit; shorten the template",
                    t.path,
                    t.text.len()
                );
            } else {
                match cfn.validate_template().template_body(&t.text).send().await {
                    Ok(out) => println!(
                        "PASS  {}: ValidateTemplate: {} parameters{}",
                        t.path,
                        out.parameters().len(),
                        if out.capabilities().is_empty() {
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
                        }
                    ),
                    Err(e) => {
                        ok = false;
                        println!("FAIL  {}: ValidateTemplate: {}", t.path, aws_error(&e));
                    }
                }
            }
        }
        let findings = template::check_buildspecs(&t.value, parameters);
        if findings.is_empty() {
            println!("PASS  {}: no Custom::Buildspecs resource to check", t.path);
        }
        for f in findings {
            match f {
                Finding::Ok { resource, summary } => {
                    println!("PASS  {}: {resource}: {summary}", t.path);
                }
                Finding::Skipped { resource, reason } => {
                    println!("SKIP  {}: {resource}: {reason}", t.path);
                }
                Finding::Invalid { resource, problems } => {
                    ok = false;
                    println!("FAIL  {}: {resource}:", t.path);
                    for line in problems.lines() {
                        println!("        {line}");
                    }
                }
            }
        }
    }
    ok
}
