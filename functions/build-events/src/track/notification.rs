//! The text of a failure notification.

use flavor_ci::runs::{Finished, RunRecord, flavor_status};

use crate::config::Config;

/// The subject and text of a failure notification: the failed flavors with their links.
pub(super) fn announcement(
    config: &Config,
    record: &RunRecord,
    finished: &Finished,
    page: &str,
) -> (String, String) {
    let what = match (record.trigger, record.git_ref.strip_prefix("refs/tags/")) {
        (flavor_ci::runs::RunTrigger::Schedule, _) => "scheduled run".to_owned(),
        (_, Some(tag)) => format!("tag {tag}"),
        _ => record
            .git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&record.git_ref)
            .to_owned(),
    };
    let names: Vec<&str> = finished.failed.iter().map(|(f, _)| f.as_str()).collect();
    let mut subject = format!(
        "flavor-ci: {} of {} flavors failed on {what} ({})",
        names.len(),
        record.flavors.len(),
        config.repository
    );
    // SNS subjects stop at 100 characters.
    if subject.chars().count() > 100 {
        subject = subject.chars().take(99).collect::<String>() + "…";
    }
    let mut message = format!(
        "{} of {} flavors failed in {} on {what}, commit {}.\nBatch: {page}\n\n",
        names.len(),
        record.flavors.len(),
        config.repository,
        record.commit
    );
    for (flavor, status) in &finished.failed {
        let build = record.builds.get(flavor);
        message.push_str(&format!(
            "{flavor}: {}\n  build: {}\n  logs: {}\n",
            build.map_or_else(|| status.to_lowercase(), |b| flavor_status(b).description),
            build.and_then(|b| b.page.as_deref()).unwrap_or("-"),
            build.and_then(|b| b.logs.as_deref()).unwrap_or("-"),
        ));
    }
    (subject, message)
}
