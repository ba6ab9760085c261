//! CodeBuild's vocabulary: the values the service accepts for compute types, environment
//! types, shells, report formats and `on-failure`, its rules for build identifiers, variable
//! names and secret references, and the inline buildspec limit. Settings and buildspec
//! validation both check against these.

use crate::flavors::MAX_IDENTIFIER_CHARS;

/// CodeBuild rejects inline buildspecs longer than this (in characters).
pub const INLINE_LIMIT_CHARS: usize = 25_600;

/// Compute types CodeBuild documents for `compute-type`.
pub const COMPUTE_TYPES: &[&str] = &[
    "BUILD_GENERAL1_SMALL",
    "BUILD_GENERAL1_MEDIUM",
    "BUILD_GENERAL1_LARGE",
    "BUILD_GENERAL1_XLARGE",
    "BUILD_GENERAL1_2XLARGE",
    "BUILD_LAMBDA_1GB",
    "BUILD_LAMBDA_2GB",
    "BUILD_LAMBDA_4GB",
    "BUILD_LAMBDA_8GB",
    "BUILD_LAMBDA_10GB",
    "ATTRIBUTE_BASED_COMPUTE",
    "CUSTOM_INSTANCE_TYPE",
];

/// Environment types CodeBuild documents for a task's `type`.
pub const ENVIRONMENT_TYPES: &[&str] = &[
    "LINUX_CONTAINER",
    "LINUX_GPU_CONTAINER",
    "ARM_CONTAINER",
    "WINDOWS_CONTAINER",
    "WINDOWS_SERVER_2019_CONTAINER",
    "WINDOWS_SERVER_2022_CONTAINER",
    "LINUX_LAMBDA_CONTAINER",
    "ARM_LAMBDA_CONTAINER",
    "LINUX_EC2",
    "ARM_EC2",
    "WINDOWS_EC2",
    "MAC_ARM",
];

/// Shell tags of `env.shell` (Linux: bash, /bin/sh; Windows: powershell.exe, cmd.exe).
pub const SHELLS: &[&str] = &["bash", "/bin/sh", "powershell.exe", "cmd.exe"];

/// Report file formats (test and code coverage reports).
pub const REPORT_FORMATS: &[&str] = &[
    "CUCUMBERJSON",
    "JUNITXML",
    "NUNITXML",
    "NUNIT3XML",
    "TESTNGXML",
    "VISUALSTUDIOTRX",
    "CLOVERXML",
    "COBERTURAXML",
    "JACOCOXML",
    "SIMPLECOV",
];

/// Checks a build identifier; `None` when it is valid.
pub fn identifier_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("the identifier is empty".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Some(format!(
            "identifier `{id}` contains {c:?}; CodeBuild allows only letters, digits and `_`"
        ));
    }
    if id.chars().count() > MAX_IDENTIFIER_CHARS {
        return Some(format!(
            "identifier `{id}` is {} characters; CodeBuild requires fewer than 128",
            id.chars().count()
        ));
    }
    None
}

/// `unknown <what> `<value>`; expected one of: …` when `value` is not in `allowed`.
pub fn unknown_value(value: &str, allowed: &[&str], what: &str) -> Option<String> {
    (!allowed.contains(&value)).then(|| {
        format!(
            "unknown {what} `{value}`; expected one of: {}",
            allowed.join(", ")
        )
    })
}

/// Checks a build environment variable name (buildspec and settings alike).
pub fn variable_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a variable name is empty")
    } else if name.starts_with("CODEBUILD_") {
        Some("names starting with CODEBUILD_ are reserved by CodeBuild; rename it")
    } else {
        None
    }
}

/// Checks a secrets-manager reference (`secret-id:json-key:version-stage:version-id`).
pub fn secret_reference_problem(reference: &str) -> Option<&'static str> {
    reference.split(':').next().is_none_or(str::is_empty).then_some(
        "expected secret-id:json-key[:version-stage[:version-id]] with a non-empty secret-id, e.g. `Dockerhub:User`",
    )
}

/// Checks a phase's `on-failure` (ABORT, CONTINUE, RETRY, RETRY-count, RETRY-regex, …).
pub fn on_failure_problem(value: &str) -> Option<String> {
    let known = matches!(value, "ABORT" | "CONTINUE" | "RETRY") || value.starts_with("RETRY-");
    (!known).then(|| {
        format!("unknown on-failure `{value}`; expected ABORT, CONTINUE or RETRY[-count][-regex]")
    })
}
