//! flavor-ci's own check of a CloudFormation template: the settings and flavors each
//! `Custom::Buildspecs` resource carries, generated and validated by the resource's code. No
//! AWS needed; `validate` (with the `aws` feature) also runs CloudFormation's ValidateTemplate.

use std::collections::BTreeMap;
use std::io::{self, Write as _};

use flavor_ci::template::{self, Finding};
use serde_json::Value;

/// One template to check.
#[derive(Debug)]
pub(crate) struct TemplateFile {
    pub(crate) path: String,
    /// The text as written, for CloudFormation's own check.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pub(crate) text: String,
    pub(crate) value: Value,
}

/// Checks the template's `Custom::Buildspecs` resources; prints a line per check; returns
/// whether all passed.
pub(crate) fn check(t: &TemplateFile, parameters: &BTreeMap<String, String>) -> bool {
    let mut out = io::stdout().lock();
    let mut ok = true;
    let findings = template::check_buildspecs(&t.value, parameters);
    if findings.is_empty() {
        let _ = writeln!(
            out,
            "PASS  {}: no Custom::Buildspecs resource to check",
            t.path
        );
    }
    for f in findings {
        match f {
            Finding::Ok { resource, summary } => {
                let _ = writeln!(out, "PASS  {}: {resource}: {summary}", t.path);
            }
            Finding::Skipped { resource, reason } => {
                let _ = writeln!(out, "SKIP  {}: {resource}: {reason}", t.path);
            }
            Finding::Invalid { resource, problems } => {
                ok = false;
                let _ = writeln!(out, "FAIL  {}: {resource}:", t.path);
                for line in problems.lines() {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
    }
    ok
}
