//! The function's configuration, from its environment. Every problem is reported at once.

use std::time::Duration;

/// What the function is told by the stack.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The bucket of the buildspec resource, which holds the run records.
    pub(crate) bucket: String,
    /// The resource's root in the bucket, ending with `/`.
    pub(crate) root: String,
    pub(crate) ci_project: String,
    pub(crate) release_project: Option<String>,
    /// `owner/name`: where the statuses go.
    pub(crate) repository: String,
    pub(crate) github_token_secret: Option<String>,
    pub(crate) github_api: String,
    /// The aggregate status's context (`flavor-ci`); each flavor's is `<context>/<flavor>`.
    /// `None`: flavor-ci posts no statuses (CodeBuild reports them, or nobody does).
    pub(crate) status_context: Option<String>,
    /// Which per-flavor statuses are posted (the aggregate always is).
    pub(crate) flavor_statuses: FlavorStatuses,
    /// The GitHub App the stack reports through: check runs instead of commit statuses.
    pub(crate) app: Option<AppSettings>,
    /// Which per-flavor check runs are written (the aggregate always is).
    pub(crate) flavor_checks: FlavorStatuses,
    /// The SNS topic failures are announced on.
    pub(crate) topic: Option<String>,
    pub(crate) secret_ttl: Duration,
    /// How long the reconciler leaves a finished run's reporting to the event that finished it.
    pub(crate) reporting_grace: Duration,
}

/// Which per-flavor statuses are posted. GitHub limits content-creating requests (statuses
/// among them) to about 80 a minute and 500 an hour per token; a batch of hundreds of flavors
/// posts two per flavor with `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlavorStatuses {
    /// Pending, then the outcome.
    All,
    /// Only failures (`failure`, `error`): a large batch stays within GitHub's limits and the
    /// failed flavors still stand out.
    Failures,
    /// Only the aggregate status.
    None,
}

impl FlavorStatuses {
    /// Whether a status in GitHub's `state` (or a check run of that outcome) is posted.
    pub(crate) fn posts(self, state: &str) -> bool {
        match self {
            FlavorStatuses::All => true,
            FlavorStatuses::Failures => matches!(state, "failure" | "error"),
            FlavorStatuses::None => false,
        }
    }
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
        let ci_project = env.required("CI_PROJECT", "the name of the CodeBuild CI project");
        let repository = env.repository("the repository this stack builds, `owner/name`");
        let github_api = env.github_api();
        let status_context = env.status_context();
        let github_token_secret = env.optional("GITHUB_TOKEN_SECRET_ID");
        let mut which = |name: &str| match env.optional(name).as_deref() {
            None | Some("all") => FlavorStatuses::All,
            Some("failures") => FlavorStatuses::Failures,
            Some("none") => FlavorStatuses::None,
            Some(other) => {
                env.problem(format!(
                    "{name} {other:?} is not one of all, failures, none"
                ));
                FlavorStatuses::All
            }
        };
        let flavor_statuses = which("FLAVOR_STATUSES");
        let flavor_checks = which("FLAVOR_CHECKS");
        let app = env.app();
        let secret_ttl = env.seconds("SECRET_CACHE_SECONDS", 300);
        let reporting_grace = env.seconds("REPORTING_GRACE_SECONDS", 60);
        let release_project = env.optional("RELEASE_PROJECT");
        let topic = env.optional("NOTIFICATION_TOPIC_ARN");
        env.finish()?;
        Ok(Self {
            bucket,
            root,
            ci_project,
            release_project,
            repository,
            github_token_secret,
            github_api,
            status_context,
            flavor_statuses,
            app,
            flavor_checks,
            topic,
            secret_ttl,
            reporting_grace,
        })
    }

    /// Whether builds of `project` are flavor-ci's.
    pub(crate) fn is_ours(&self, project: &str) -> bool {
        project == self.ci_project || self.release_project.as_deref() == Some(project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let base = [
            ("FLAVOR_CI_BUCKET", "specs"),
            ("FLAVOR_CI_ROOT", "flavor-ci/x/"),
            ("CI_PROJECT", "ci"),
            ("GITHUB_REPOSITORY", "acme/slc"),
            ("GITHUB_TOKEN_SECRET_ID", "token"),
            ("STATUS_CONTEXT", "flavor-ci"),
        ];
        Config::from_lookup(|name| {
            vars.iter()
                .chain(base.iter())
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_post_statuses_to_github_com() {
        let c = config(&[]).unwrap();
        assert_eq!(c.github_api, "https://api.github.com");
        assert_eq!(c.status_context.as_deref(), Some("flavor-ci"));
        assert!(c.is_ours("ci") && !c.is_ours("other"));
        assert!(c.topic.is_none());
    }

    #[test]
    fn per_flavor_statuses_can_be_limited_to_failures() {
        let c = config(&[("FLAVOR_STATUSES", "failures")]).unwrap();
        assert!(c.flavor_statuses.posts("failure") && c.flavor_statuses.posts("error"));
        assert!(!c.flavor_statuses.posts("pending") && !c.flavor_statuses.posts("success"));
        assert_eq!(config(&[]).unwrap().flavor_statuses, FlavorStatuses::All);
        assert!(!FlavorStatuses::None.posts("failure"));
    }

    #[test]
    fn an_app_reports_with_check_runs() {
        let c = config(&[
            ("GITHUB_TOKEN_SECRET_ID", ""),
            ("GITHUB_APP_ID", "12345"),
            ("GITHUB_APP_KEY_SECRET_ID", "flavor-ci/app-key"),
            ("FLAVOR_CHECKS", "failures"),
        ])
        .unwrap();
        assert_eq!(c.app.as_ref().unwrap().id, "12345");
        assert_eq!(c.flavor_checks, FlavorStatuses::Failures);
        let e = config(&[("GITHUB_APP_ID", "my-app")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is not a number") && e.contains("GITHUB_APP_KEY_SECRET_ID is not set"),
            "{e}"
        );
    }

    #[test]
    fn every_problem_is_named_with_its_fix() {
        let e = config(&[
            ("FLAVOR_CI_ROOT", "no-slash"),
            ("GITHUB_API_URL", "http://example.com"),
            ("GITHUB_REPOSITORY", "acme"),
            ("GITHUB_TOKEN_SECRET_ID", " "),
        ])
        .unwrap_err()
        .to_string();
        for part in [
            "must end with `/`",
            "is not an https URL",
            "is not `owner/name`",
            "statuses need a token that may write them, check runs a GitHub App",
        ] {
            assert!(e.contains(part), "{part} missing from {e}");
        }
        assert!(config(&[("GITHUB_API_URL", "http://127.0.0.1:9/")]).is_ok());
        assert!(
            config(&[("FLAVOR_STATUSES", "some")])
                .unwrap_err()
                .to_string()
                .contains("not one of all, failures, none")
        );
        assert!(
            config(&[("STATUS_CONTEXT", ""), ("GITHUB_TOKEN_SECRET_ID", "")])
                .unwrap()
                .status_context
                .is_none()
        );
    }
}
