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

/// `text` without its comment lines (a line whose first non-blank character is `#`), except
/// inside block scalars (`|`, `>`), where such a line is content. CloudFormation reads the
/// template the same either way; `sam deploy` uploads the template to S3 and is not bound by
/// the inline limit, which comments alone can exceed.
fn without_comment_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // The indentation of the key whose value is the block scalar being read.
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end();
        let indent = content.len() - content.trim_start().len();
        if let Some(key) = block {
            if content.is_empty() || indent > key {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        if content.trim_start().starts_with('#') {
            continue;
        }
        let value = content
            .rsplit_once(": ")
            .map(|(_, v)| v)
            .or_else(|| content.trim_start().strip_prefix("- "))
            .unwrap_or("");
        let value = value.split(" #").next().unwrap_or("").trim();
        let indicator =
            value.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
        if matches!(indicator, "|" | ">") {
            block = Some(indent);
        }
        out.push_str(line);
    }
    out
}

/// Runs `ValidateTemplate` on one template; prints the result; returns whether it passed.
pub(crate) async fn one(cfn: &aws_sdk_cloudformation::Client, t: &TemplateFile) -> bool {
    let stripped;
    let body = if t.text.len() > MAX_TEMPLATE_BODY {
        stripped = without_comment_lines(&t.text);
        &stripped
    } else {
        &t.text
    };
    if body.len() > MAX_TEMPLATE_BODY {
        say(&format!(
            "FAIL  {}: ValidateTemplate: {} bytes ({} without comments) is over the {MAX_TEMPLATE_BODY}-byte inline limit; shorten the template",
            t.path,
            t.text.len(),
            body.len()
        ));
        return false;
    }
    match cfn.validate_template().template_body(body).send().await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_lines_go_and_block_scalars_keep_theirs() {
        let text = "# top\nParameters:\n  # about A\n  A:\n    Description: >-\n      text\n      # not a comment here\n\n      more\n    Default: x # kept\n  B: |\n    # content\n  # a comment again\n  C: 1\n";
        let out = without_comment_lines(text);
        assert_eq!(
            out,
            "Parameters:\n  A:\n    Description: >-\n      text\n      # not a comment here\n\n      more\n    Default: x # kept\n  B: |\n    # content\n  C: 1\n"
        );
        // The project's template: exactly its comment lines go (no block scalar in it holds a
        // line starting with `#`).
        let template = include_str!("../../../../template.yaml");
        let stripped = without_comment_lines(template);
        assert!(stripped.len() < template.len());
        assert!(
            stripped.len() <= MAX_TEMPLATE_BODY,
            "template.yaml is {} bytes without comments, over ValidateTemplate's inline limit",
            stripped.len()
        );
        assert!(
            stripped
                .lines()
                .all(|l| !l.trim_start().starts_with('#') || l.contains("#"))
        );
        let kept: Vec<&str> = template
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        assert_eq!(
            stripped.lines().collect::<Vec<_>>(),
            kept,
            "no block scalar holds a `#` line"
        );
    }
}
