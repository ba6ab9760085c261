//! Reading a function's configuration from its environment: every problem collected, each
//! naming the variable and the fix, so a misconfigured function says everything at once.

use std::time::Duration;

/// The environment (or any lookup of it) and the problems found so far.
#[derive(Debug)]
pub struct Env<F> {
    get: F,
    problems: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(get: F) -> Self {
        Self {
            get,
            problems: Vec::new(),
        }
    }

    /// The variable's value, trimmed; `None` when unset or blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.get)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The variable's value; a problem saying to set it to `what` when it is missing.
    pub fn required(&mut self, name: &str, what: &str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.problem(format!("{name} is not set: set it to {what}"));
            String::new()
        })
    }

    pub fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    /// A whole number of seconds, `default` when unset.
    pub fn seconds(&mut self, name: &str, default: u64) -> Duration {
        match self.optional(name).map(|v| v.parse::<u64>()) {
            None => Duration::from_secs(default),
            Some(Ok(n)) => Duration::from_secs(n),
            Some(Err(_)) => {
                self.problem(format!("{name} is not a whole number of seconds"));
                Duration::ZERO
            }
        }
    }

    /// `FLAVOR_CI_ROOT`: the buildspec resource's root, ending with `/`.
    pub fn root(&mut self) -> String {
        let root = self.required("FLAVOR_CI_ROOT", "the buildspec resource's Root attribute");
        if !root.is_empty() && !root.ends_with('/') {
            self.problem(format!("FLAVOR_CI_ROOT {root:?} must end with `/`"));
        }
        root
    }

    /// `GITHUB_REPOSITORY`: `owner/name`.
    pub fn repository(&mut self, what: &str) -> String {
        let repository = self.required("GITHUB_REPOSITORY", what);
        if !repository.is_empty() && repository.split('/').filter(|p| !p.is_empty()).count() != 2 {
            self.problem(format!(
                "GITHUB_REPOSITORY {repository:?} is not `owner/name`"
            ));
        }
        repository
    }

    /// `GITHUB_API_URL`, without a trailing `/`: https, or plain http to a loopback address.
    pub fn github_api(&mut self) -> String {
        let api = self
            .optional("GITHUB_API_URL")
            .unwrap_or_else(|| "https://api.github.com".into())
            .trim_end_matches('/')
            .to_owned();
        if !api.starts_with("https://") && !crate::is_loopback_http(&api) {
            self.problem(format!(
                "GITHUB_API_URL {api:?} is not an https URL (plain http is allowed only to a loopback address, for local tests): use https://api.github.com or https://<host>/api/v3 for GitHub Enterprise Server"
            ));
        }
        api
    }

    /// `STATUS_CONTEXT`: the aggregate commit status's context, `None` when flavor-ci posts
    /// no statuses. Posting needs the token in `GITHUB_TOKEN_SECRET_ID`.
    pub fn status_context(&mut self) -> Option<String> {
        let context = self.optional("STATUS_CONTEXT");
        if let Some(c) = &context
            && (c.len() > 200 || c.ends_with('/'))
        {
            self.problem(format!(
                "STATUS_CONTEXT {c:?} must be a short name without a trailing `/`, such as flavor-ci"
            ));
        }
        if context.is_some()
            && self.optional("GITHUB_TOKEN_SECRET_ID").is_none()
            && self.optional("GITHUB_APP_ID").is_none()
        {
            self.problem("STATUS_CONTEXT is set but neither GITHUB_TOKEN_SECRET_ID nor GITHUB_APP_ID is: statuses need a token that may write them, check runs a GitHub App; set one, or leave STATUS_CONTEXT empty to report nothing".into());
        }
        context
    }

    /// The GitHub App the stack reports through (check runs), when `GITHUB_APP_ID` is set:
    /// its id and the secret that holds its private key.
    pub fn app(&mut self) -> Option<AppSettings> {
        let id = self.optional("GITHUB_APP_ID")?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            self.problem(format!(
                "GITHUB_APP_ID {id:?} is not a number; use the App ID from the App's settings page (General, About)"
            ));
        }
        let key_secret = self.required(
            "GITHUB_APP_KEY_SECRET_ID",
            "the Secrets Manager secret that holds the App's private key (the .pem file)",
        );
        Some(AppSettings { id, key_secret })
    }

    /// Every problem found, or none.
    pub fn finish(self) -> Result<(), EnvError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(EnvError(self.problems))
        }
    }
}

/// Every problem with a function's environment, each naming the variable and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct EnvError(pub Vec<String>);

/// A GitHub App as a function's environment names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    pub id: String,
    pub key_secret: String,
}
