//! `merge_group` deliveries of GitHub's merge queue: `checks_requested` asks for the required
//! checks on a group's head commit, `destroyed` says the group is gone (merged, invalidated or
//! dequeued). A group's branch, `gh-readonly-queue/<base>/pr-<N>-<sha>`, is never built as a
//! branch: its merge group is.

use serde::Deserialize;

use super::push::{Installation, Repository, is_object_id};
pub use super::push::{QUEUE_BRANCH_PREFIX, is_queue_branch};

#[derive(Debug, Clone, Deserialize)]
pub struct MergeGroupEvent {
    pub action: String,
    pub merge_group: MergeGroup,
    /// Why a group was destroyed: `merged`, `invalidated`, `dequeued`.
    #[serde(default)]
    pub reason: Option<String>,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<Installation>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MergeGroup {
    pub head_sha: String,
    /// `refs/heads/gh-readonly-queue/main/pr-104-<sha>`.
    pub head_ref: String,
    pub base_sha: String,
    /// `refs/heads/main`.
    pub base_ref: String,
    #[serde(default)]
    pub head_commit: Option<GroupCommit>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GroupCommit {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub tree_id: Option<String>,
}

/// Why a delivery cannot be read: the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the merge_group delivery cannot be read at `{path}`: {message}")]
pub struct MergeGroupError {
    pub path: String,
    pub message: String,
}

impl MergeGroupEvent {
    pub fn from_json(body: &[u8]) -> Result<Self, MergeGroupError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        let event: Self = serde_path_to_error::deserialize(de).map_err(|e| MergeGroupError {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        let group = &event.merge_group;
        for (path, sha) in [
            ("merge_group.head_sha", &group.head_sha),
            ("merge_group.base_sha", &group.base_sha),
        ] {
            if !is_object_id(sha) {
                return Err(MergeGroupError {
                    path: path.into(),
                    message: format!("`{sha}` is not a commit id"),
                });
            }
        }
        if !group.base_ref.starts_with("refs/heads/") {
            return Err(MergeGroupError {
                path: "merge_group.base_ref".into(),
                message: format!("`{}` is not a branch", group.base_ref),
            });
        }
        Ok(event)
    }

    /// The pull requests the group holds, as its head branch and head commit name them: the
    /// branch names the last (`pr-<N>-`), the merge commits' messages each (`Merge pull request
    /// #N`, or a squash's `(#N)`). Sorted, without repeats.
    pub fn pull_requests(&self) -> Vec<u64> {
        let group = &self.merge_group;
        let mut found = Vec::new();
        if let Some(rest) = group
            .head_ref
            .rsplit('/')
            .next()
            .and_then(|l| l.strip_prefix("pr-"))
            && let Some(n) = rest.split('-').next().and_then(|n| n.parse().ok())
        {
            found.push(n);
        }
        let message = group
            .head_commit
            .as_ref()
            .map_or("", |c| c.message.as_str());
        for line in message.lines() {
            let line = line.trim();
            let number = match line.strip_prefix("Merge pull request #") {
                Some(rest) => rest.split(|c: char| !c.is_ascii_digit()).next(),
                None => line
                    .strip_suffix(')')
                    .and_then(|l| l.rsplit_once("(#"))
                    .map(|(_, n)| n),
            };
            if let Some(n) = number.and_then(|n| n.parse().ok()) {
                found.push(n);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The group's root tree, when its head commit (the same commit as `head_sha`) names it.
    pub fn tree_id(&self) -> Option<&str> {
        self.merge_group
            .head_commit
            .as_ref()
            .filter(|c| c.id == self.merge_group.head_sha)
            .and_then(|c| c.tree_id.as_deref())
            .filter(|t| is_object_id(t))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn group(message: &str) -> serde_json::Value {
        json!({
            "action": "checks_requested",
            "merge_group": {
                "head_sha": "a".repeat(40),
                "head_ref": format!("refs/heads/gh-readonly-queue/main/pr-104-{}", "b".repeat(40)),
                "base_sha": "b".repeat(40),
                "base_ref": "refs/heads/main",
                "head_commit": {"id": "a".repeat(40), "tree_id": "c".repeat(40), "message": message},
            },
            "repository": {"full_name": "acme/slc"},
            "installation": {"id": 42},
        })
    }

    #[test]
    fn a_group_is_read_with_its_pull_requests() {
        let body = group("Merge pull request #101 from acme/a\n\nA\nFix the r flavor (#103)\n");
        let e = MergeGroupEvent::from_json(body.to_string().as_bytes()).unwrap();
        assert_eq!(e.pull_requests(), [101, 103, 104]);
        assert_eq!(e.tree_id(), Some("c".repeat(40).as_str()));
        assert!(is_queue_branch(&e.merge_group.head_ref));
        assert!(!is_queue_branch("refs/heads/main"));
        let mut bad = group("");
        bad["merge_group"]["base_sha"] = json!("main");
        let err = MergeGroupEvent::from_json(bad.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("merge_group.base_sha"), "{err}");
        let err = MergeGroupEvent::from_json(b"{\"action\": \"destroyed\"}").unwrap_err();
        assert!(err.to_string().contains("merge_group"), "{err}");
    }
}
