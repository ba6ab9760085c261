//! A GitHub `pull_request` delivery: what it asks for (build the head commit, stop, nothing),
//! by its action, draft state and where its commits come from.

use serde::Deserialize;

use super::push::is_object_id;
use crate::settings::{ForkPolicy, PullRequestSettings};

/// The parts of a `pull_request` payload flavor-ci reads. Everything else is ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    pub number: u64,
    pub pull_request: PullRequest,
    /// The label added or removed, for `labeled` and `unlabeled`.
    #[serde(default)]
    pub label: Option<Label>,
    pub repository: super::push::Repository,
    /// The App installation that received the delivery (deliveries to a GitHub App).
    #[serde(default)]
    pub installation: Option<super::push::Installation>,
    /// Who acted.
    #[serde(default)]
    pub sender: Option<super::push::User>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    #[serde(default)]
    pub draft: bool,
    /// Who opened it.
    #[serde(default)]
    pub user: Option<super::push::User>,
    pub head: Side,
    pub base: Side,
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// The head or the base of a pull request.
#[derive(Debug, Clone, Deserialize)]
pub struct Side {
    /// The branch name.
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    /// The repository the branch lives in; `null` when a fork was deleted.
    pub repo: Option<super::push::Repository>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

/// Why a pull request payload cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullRequestError {
    #[error("the pull_request payload's `{path}` is not valid: {message}")]
    Field { path: String, message: String },
    #[error("the pull_request payload's `{0}` is not a commit id")]
    NotACommit(&'static str),
}

impl PullRequestEvent {
    /// Parses a `pull_request` payload; the error names the field that is wrong.
    pub fn from_json(body: &[u8]) -> Result<Self, PullRequestError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        let event: Self =
            serde_path_to_error::deserialize(de).map_err(|e| PullRequestError::Field {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        if !is_object_id(&event.pull_request.head.sha) {
            return Err(PullRequestError::NotACommit("pull_request.head.sha"));
        }
        if !is_object_id(&event.pull_request.base.sha) {
            return Err(PullRequestError::NotACommit("pull_request.base.sha"));
        }
        Ok(event)
    }

    /// The repository the head commit comes from, when it is not the base repository.
    pub fn fork(&self) -> Option<String> {
        let base = &self.repository.full_name;
        match &self.pull_request.head.repo {
            Some(head) if head.full_name.eq_ignore_ascii_case(base) => None,
            Some(head) => Some(head.full_name.clone()),
            None => Some("a deleted fork".into()),
        }
    }
}

/// What a `pull_request` delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Build the head commit; the text says why it may.
    Build(String),
    /// The pull request was closed: stop what runs for it.
    Stop,
    /// Nothing; the text says why.
    Ignore(String),
    /// A pull request from a fork that builds once a maintainer allows it: nothing yet; the
    /// text says how to allow it. The aggregate status waits (pending) until then.
    AwaitApproval(String),
    /// A pull request from a fork that waits for a click on "Build this commit" by someone with
    /// write access (`forks: approve`): the aggregate check asks for the action.
    AwaitClick(String),
    /// A pull request from a fork that is never built (`forks: never`): the required check
    /// fails, so it neither waits nor passes.
    Refuse(String),
}

/// Decides what a `pull_request` delivery asks for under `settings`; `app` says whether the
/// stack reports through a GitHub App (which decides the default fork policy, and whether
/// buttons exist).
pub fn decide(event: &PullRequestEvent, settings: &PullRequestSettings, app: bool) -> Decision {
    let n = event.number;
    let action = event.action.as_str();
    let labeled_to_build = action == "labeled"
        && event
            .label
            .as_ref()
            .is_some_and(|l| l.name == settings.fork_label);
    match action {
        "opened" | "reopened" | "synchronize" | "ready_for_review" => {}
        "closed" => return Decision::Stop,
        "labeled" if labeled_to_build => {}
        "labeled" | "unlabeled" => {
            return Decision::Ignore(format!(
                "pull request #{n} was {action}; only the label `{}` (on a pull request from a fork) starts a build",
                settings.fork_label
            ));
        }
        other => {
            return Decision::Ignore(format!(
                "pull request #{n}: the action `{other}` starts no build (opened, reopened, synchronize and ready_for_review do)"
            ));
        }
    }
    if event.pull_request.draft && !settings.build_drafts {
        return Decision::Ignore(format!(
            "pull request #{n} is a draft: it builds once marked ready for review (or set pull-requests.build-drafts: true)"
        ));
    }
    let Some(fork) = event.fork() else {
        if labeled_to_build {
            return Decision::Ignore(format!(
                "pull request #{n} was labeled `{}`, which only matters for pull requests from forks; its commits build as they are pushed",
                settings.fork_label
            ));
        }
        return Decision::Build(format!("pull request #{n} was {}", described(action)));
    };
    match settings.fork_policy(app) {
        ForkPolicy::Never => Decision::Refuse(format!(
            "pull request #{n} comes from {fork}; pull requests from forks are not built here (pull-requests.forks: never)"
        )),
        ForkPolicy::Approve if app => Decision::AwaitClick(format!(
            "pull request #{n} comes from {fork}: its code would run with the project's role and secrets, so it builds only when someone with write access reviews this commit and clicks \"Build this commit\" on the check (each new commit needs a new click), or set pull-requests.forks: always"
        )),
        ForkPolicy::Approve => Decision::AwaitApproval(format!(
            "pull request #{n} comes from {fork} and pull-requests.forks is `approve`, which needs the GitHub App reporting mode (CommitStatuses: github-app) for its button; with commit statuses, set pull-requests.forks: label"
        )),
        ForkPolicy::Always => Decision::Build(format!(
            "pull request #{n} from {fork} was {} (pull-requests.forks: always)",
            described(action)
        )),
        ForkPolicy::Label if labeled_to_build => Decision::Build(format!(
            "a maintainer labeled pull request #{n} from {fork} `{}`",
            settings.fork_label
        )),
        ForkPolicy::Label => Decision::AwaitApproval(format!(
            "pull request #{n} comes from {fork}: its code would run with the project's role and secrets, so it builds only when a maintainer adds the label `{}` after reviewing this commit (remove and add it again after new commits), or set pull-requests.forks: always",
            settings.fork_label
        )),
    }
}

fn described(action: &str) -> &str {
    match action {
        "synchronize" => "updated with new commits",
        "ready_for_review" => "marked ready for review",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HEAD: &str = "1111111111111111111111111111111111111111";
    const BASE: &str = "2222222222222222222222222222222222222222";

    fn event(
        action: &str,
        draft: bool,
        head_repo: Option<&str>,
        label: Option<&str>,
    ) -> PullRequestEvent {
        let body = json!({
            "action": action,
            "number": 7,
            "pull_request": {
                "draft": draft,
                "head": {"ref": "topic", "sha": HEAD, "repo": head_repo.map(|r| json!({"full_name": r}))},
                "base": {"ref": "main", "sha": BASE, "repo": {"full_name": "acme/slc"}},
                "labels": [],
            },
            "label": label.map(|l| json!({"name": l})),
            "repository": {"full_name": "acme/slc"},
        });
        PullRequestEvent::from_json(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn own_branches_build_on_the_actions_that_change_what_would_build() {
        let s = PullRequestSettings::default();
        for action in ["opened", "reopened", "synchronize", "ready_for_review"] {
            let d = decide(&event(action, false, Some("acme/slc"), None), &s, false);
            assert!(matches!(d, Decision::Build(_)), "{action}: {d:?}");
        }
        assert_eq!(
            decide(&event("closed", false, Some("acme/slc"), None), &s, false),
            Decision::Stop
        );
        for action in ["edited", "assigned", "review_requested"] {
            let d = decide(&event(action, false, Some("acme/slc"), None), &s, false);
            assert!(
                matches!(d, Decision::Ignore(ref why) if why.contains(action)),
                "{d:?}"
            );
        }
    }

    #[test]
    fn drafts_wait_until_ready_unless_the_settings_build_them() {
        let mut s = PullRequestSettings::default();
        let d = decide(&event("opened", true, Some("acme/slc"), None), &s, false);
        assert!(
            matches!(d, Decision::Ignore(ref why) if why.contains("build-drafts")),
            "{d:?}"
        );
        s.build_drafts = true;
        assert!(matches!(
            decide(&event("opened", true, Some("acme/slc"), None), &s, false),
            Decision::Build(_)
        ));
    }

    #[test]
    fn forks_build_only_as_the_settings_allow() {
        let mut s = PullRequestSettings::default();
        let fork = Some("mallory/slc");
        // By default: not on a push of commits, only when the label is added.
        let d = decide(&event("synchronize", false, fork, None), &s, false);
        assert!(
            matches!(d, Decision::AwaitApproval(ref why) if why.contains("safe to build") && why.contains("mallory/slc")),
            "{d:?}"
        );
        let d = decide(
            &event("labeled", false, fork, Some("safe to build")),
            &s,
            false,
        );
        assert!(matches!(d, Decision::Build(_)), "{d:?}");
        let d = decide(&event("labeled", false, fork, Some("bug")), &s, false);
        assert!(matches!(d, Decision::Ignore(_)), "{d:?}");
        // A deleted fork is a fork.
        let d = decide(&event("opened", false, None, None), &s, false);
        assert!(
            matches!(d, Decision::AwaitApproval(ref why) if why.contains("deleted fork")),
            "{d:?}"
        );
        s.forks = Some(ForkPolicy::Always);
        assert!(matches!(
            decide(&event("synchronize", false, fork, None), &s, false),
            Decision::Build(_)
        ));
        s.forks = Some(ForkPolicy::Never);
        let d = decide(
            &event("labeled", false, fork, Some("safe to build")),
            &s,
            false,
        );
        assert!(
            matches!(d, Decision::Refuse(ref why) if why.contains("never")),
            "{d:?}"
        );
    }

    #[test]
    fn with_the_app_forks_wait_for_a_click_unless_set_otherwise() {
        let mut s = PullRequestSettings::default();
        let fork = Some("mallory/slc");
        let d = decide(&event("synchronize", false, fork, None), &s, true);
        assert!(
            matches!(d, Decision::AwaitClick(ref why) if why.contains("Build this commit")),
            "{d:?}"
        );
        // The label is no approval in this mode.
        let d = decide(
            &event("labeled", false, fork, Some("safe to build")),
            &s,
            true,
        );
        assert!(matches!(d, Decision::AwaitClick(_)), "{d:?}");
        // Set explicitly, a policy holds in either mode; approve needs the App's button.
        s.forks = Some(ForkPolicy::Label);
        let d = decide(
            &event("labeled", false, fork, Some("safe to build")),
            &s,
            true,
        );
        assert!(matches!(d, Decision::Build(_)), "{d:?}");
        s.forks = Some(ForkPolicy::Approve);
        let d = decide(&event("synchronize", false, fork, None), &s, false);
        assert!(
            matches!(d, Decision::AwaitApproval(ref why) if why.contains("forks: label")),
            "{d:?}"
        );
        // Pull requests from the repository itself build as always.
        let d = decide(
            &event("synchronize", false, Some("acme/slc"), None),
            &s,
            true,
        );
        assert!(matches!(d, Decision::Build(_)), "{d:?}");
    }

    #[test]
    fn payload_errors_name_the_field() {
        let e = PullRequestEvent::from_json(b"{\"action\": 1}").unwrap_err();
        assert!(e.to_string().contains("`action`"), "{e}");
        let mut body = json!({
            "action": "opened", "number": 1,
            "pull_request": {"head": {"ref": "a", "sha": "nope", "repo": null}, "base": {"ref": "main", "sha": BASE, "repo": null}},
            "repository": {"full_name": "acme/slc"},
        });
        let e = PullRequestEvent::from_json(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(e, PullRequestError::NotACommit("pull_request.head.sha"));
        body["pull_request"]["head"]["sha"] = json!(HEAD);
        assert!(PullRequestEvent::from_json(body.to_string().as_bytes()).is_ok());
    }
}
