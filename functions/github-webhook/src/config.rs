//! The function's configuration, from its environment. Every problem is reported at once.

use std::time::Duration;

use flavor_ci::glob::Glob;

/// What the function is told by the stack.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The bucket the buildspec resource stores into.
    pub(crate) bucket: String,
    /// The resource's root in the bucket (`GetAtt <resource>.Root`), ending with `/`.
    pub(crate) root: String,
    /// The settings the stack deployed (`GetAtt <resource>.SettingsKey`).
    pub(crate) settings_key: String,
    pub(crate) webhook_secret: String,
    pub(crate) github_token_secret: Option<String>,
    pub(crate) github_api: String,
    pub(crate) ci_project: String,
    pub(crate) release_project: Option<String>,
    pub(crate) branches: Vec<Glob>,
    pub(crate) tags: Vec<Glob>,
    pub(crate) ignored: Vec<Glob>,
    /// Only pushes to this repository (`owner/name`) are acted on.
    pub(crate) repository: String,
    /// How long secret values are kept before they are fetched again.
    pub(crate) secret_ttl: Duration,
    /// The aggregate commit status's context (`flavor-ci`); `None`: flavor-ci posts none.
    pub(crate) status_context: Option<String>,
    /// The GitHub App the stack reports through (check runs), when it does.
    pub(crate) app: Option<AppSettings>,
    /// Which per-flavor check runs are written (the aggregate always is).
    pub(crate) flavor_checks: FlavorChecks,
    /// Which flavors get a commit status of their own (the statuses mode); the webhook posts
    /// only those of flavors it skips, the build-events function the rest.
    pub(crate) flavor_statuses: FlavorChecks,
    /// The secret holding a token that may read and redeliver the repository's webhook (the
    /// sweep without a GitHub App).
    pub(crate) hook_token_secret: Option<String>,
    /// The wait before a kept delivery's second attempt (doubled for each further one, up to
    /// an hour).
    pub(crate) retry_wait: Duration,
}

/// Which per-flavor check runs the webhook creates when a batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlavorChecks {
    /// Each flavor's, queued; the build-events function moves them on.
    All,
    /// None at the start: a failed flavor's is created when it fails.
    Failures,
    None,
}

pub(crate) use flavor_ci_aws::env::{AppSettings, EnvError as ConfigError};

impl Config {
    pub(crate) fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = flavor_ci_aws::env::Env::new(get);
        let bucket = env.required("FLAVOR_CI_BUCKET", "the bucket of the buildspec resource");
        let root = env.root();
        let settings_key = env.required(
            "FLAVOR_CI_SETTINGS_KEY",
            "the buildspec resource's SettingsKey attribute",
        );
        let webhook_secret = env.required(
            "WEBHOOK_SECRET_ID",
            "the ARN or name of the Secrets Manager secret that holds the webhook secret",
        );
        let ci_project = env.required("CI_PROJECT", "the name of the CodeBuild CI project");
        let repository = env.repository(
            "the repository this stack builds, `owner/name` (pushes to any other are ignored)",
        );
        let mut globs = |name: &str, default: &str| {
            let text = env.optional(name).unwrap_or_else(|| default.to_owned());
            Glob::list(&text).unwrap_or_else(|e| {
                env.problem(format!("{name}: {e}"));
                Vec::new()
            })
        };
        let branches = globs("BRANCH_PATTERNS", "**");
        let tags = globs("TAG_PATTERNS", "**");
        let ignored = globs("IGNORED_PATHS", "");
        let github_api = env.github_api();
        let secret_ttl = env.seconds("SECRET_CACHE_SECONDS", 300);
        let status_context = env.status_context();
        let github_token_secret = env.optional("GITHUB_TOKEN_SECRET_ID");
        let release_project = env.optional("RELEASE_PROJECT");
        let app = env.app();
        let retry_wait = env.seconds("RETRY_FIRST_WAIT_SECONDS", 300);
        let hook_token_secret = env.optional("HOOK_TOKEN_SECRET_ID");
        let mut which = |name: &str| match env.optional(name).as_deref() {
            None | Some("all") => FlavorChecks::All,
            Some("failures") => FlavorChecks::Failures,
            Some("none") => FlavorChecks::None,
            Some(other) => {
                env.problem(format!(
                    "{name} {other:?} is not one of all, failures, none"
                ));
                FlavorChecks::All
            }
        };
        let flavor_checks = which("FLAVOR_CHECKS");
        let flavor_statuses = which("FLAVOR_STATUSES");
        env.finish()?;
        Ok(Self {
            status_context,
            app,
            flavor_checks,
            flavor_statuses,
            retry_wait,
            hook_token_secret,
            bucket,
            root,
            settings_key,
            webhook_secret,
            github_token_secret,
            github_api,
            ci_project,
            release_project,
            branches,
            tags,
            ignored,
            repository,
            secret_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 6] = [
        ("FLAVOR_CI_BUCKET", "specs"),
        ("FLAVOR_CI_ROOT", "flavor-ci/stack-0123456789ab/Buildspecs/"),
        (
            "FLAVOR_CI_SETTINGS_KEY",
            "flavor-ci/stack-0123456789ab/Buildspecs/settings/x.json",
        ),
        ("WEBHOOK_SECRET_ID", "webhook"),
        ("CI_PROJECT", "ci"),
        ("GITHUB_REPOSITORY", "acme/slc"),
    ];

    #[test]
    fn defaults_build_every_branch_and_tag_against_github_com() {
        let c = config(&BASE).unwrap();
        assert_eq!(c.github_api, "https://api.github.com");
        assert!(c.branches[0].matches("feature/x"));
        assert!(c.tags[0].matches("v1"));
        assert!(c.ignored.is_empty());
        assert!(c.release_project.is_none() && c.github_token_secret.is_none());
    }

    #[test]
    fn plain_http_reaches_only_loopback_addresses() {
        let with = |url: &str| {
            let mut vars = BASE.to_vec();
            vars.push(("GITHUB_API_URL", url));
            config(&vars)
        };
        for ok in [
            "https://api.github.com",
            "https://ghe.example.com/api/v3",
            "http://127.0.0.1:8788",
            "http://127.9.9.9/api",
            "http://localhost:1234",
            "http://[::1]:99/",
        ] {
            assert!(with(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.github.com",
            "http://10.0.0.1:80",
            "http://127.0.0.1.evil.com",
            "http://user@127.0.0.1",
            "http://localhost.evil.com",
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains("is not an https URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_problem_is_named_with_its_fix() {
        let err = config(&[
            ("FLAVOR_CI_ROOT", "no-slash"),
            ("GITHUB_API_URL", "ftp://x"),
            ("GITHUB_REPOSITORY", "acme"),
        ])
        .unwrap_err()
        .to_string();
        for part in [
            "FLAVOR_CI_BUCKET is not set",
            "FLAVOR_CI_SETTINGS_KEY is not set",
            "WEBHOOK_SECRET_ID is not set",
            "CI_PROJECT is not set",
            "must end with `/`",
            "GITHUB_API_URL \"ftp://x\" is not an https URL",
            "GITHUB_REPOSITORY \"acme\" is not `owner/name`",
        ] {
            assert!(err.contains(part), "{part} missing from {err}");
        }
    }
}
