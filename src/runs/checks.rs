//! What a run's check runs say (the GitHub App reporting mode): each flavor's conclusion, the
//! aggregate's summary (a table of the flavors and why each built), and a flavor's summary (its
//! phases and, when it failed, the tail of its log). Pure: the functions post the text.
//!
//! GitHub's rules hold whatever the input: a summary stays under 65,535 characters, a log tail
//! is at most 100 lines with its terminal escapes removed and is cut at a line boundary, and
//! a conclusion is never `neutral` or `skipped` (branch protection counts both as passing).

use std::fmt::Write as _;

use super::texts::duration;
use super::{BuildState, NO_RESULT, RunRecord};

/// GitHub's limit on a check run's summary and text, in characters.
pub const MAX_SUMMARY_CHARS: usize = 65_535;
/// The log lines a failed flavor's summary shows.
pub const LOG_TAIL_LINES: usize = 100;

/// The requested action on a failed aggregate: build the failed flavors again.
pub const RERUN_FAILED: Button = Button {
    identifier: "rerun-failed",
    label: "Re-run failed",
    description: "Build the failed flavors again",
};

/// The requested action on a fork's aggregate (`forks: approve`): build its head commit.
pub const BUILD_COMMIT: Button = Button {
    identifier: "build-commit",
    label: "Build this commit",
    description: "Build this fork's commit (write access)",
};

/// A button on a check run (GitHub's requested action), within GitHub's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Button {
    pub identifier: &'static str,
    pub label: &'static str,
    pub description: &'static str,
}

/// A flavor's check run name: `<context> / <flavor>`.
pub fn flavor_check_name(context: &str, flavor: &str) -> String {
    format!("{context} / {flavor}")
}

/// The flavor a check run named by [`flavor_check_name`] is about.
pub fn flavor_of_check<'a>(context: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix(context)?
        .strip_prefix(" / ")
        .filter(|f| !f.is_empty())
}

/// The `external_id` of a run's check run: the batch, and the flavor for a flavor's.
pub fn external_id(batch: &str, flavor: Option<&str>) -> String {
    match flavor {
        Some(f) => format!("{batch}#{f}"),
        None => batch.to_owned(),
    }
}

/// The batch (and flavor) an `external_id` names.
pub fn read_external_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once('#') {
        Some((batch, flavor)) => (batch, Some(flavor)),
        None => (id, None),
    }
}

/// How a check run ends. `neutral` and `skipped` are not here: they pass branch protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    Success,
    Failure,
    TimedOut,
    /// Stopped, or superseded by a newer run.
    Cancelled,
}

impl Conclusion {
    /// The conclusion of a build CodeBuild reports as `status`; `None` while it runs.
    pub fn of_build(status: &str) -> Option<Self> {
        match status {
            "SUCCEEDED" => Some(Conclusion::Success),
            "FAILED" | "FAULT" | NO_RESULT => Some(Conclusion::Failure),
            "TIMED_OUT" => Some(Conclusion::TimedOut),
            "STOPPED" => Some(Conclusion::Cancelled),
            _ => None,
        }
    }

    /// As GitHub names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::TimedOut => "timed_out",
            Conclusion::Cancelled => "cancelled",
        }
    }
}

/// One phase of a build, as CodeBuild describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseTiming {
    /// `INSTALL`, `PRE_BUILD`, `BUILD`, …
    pub name: String,
    /// `SUCCEEDED`, `FAILED`, …; `None` while it runs.
    pub status: Option<String>,
    pub seconds: Option<u64>,
    /// CodeBuild's message for the phase (its context), when it gives one.
    pub message: Option<String>,
}

/// Text made safe for one cell of a markdown table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The aggregate's summary: a table of the flavors (conclusion, duration, failed phase, a
/// link to the build) and why each flavor was built.
pub fn aggregate_summary(record: &RunRecord) -> String {
    let why = &record.why;
    let mut rows = Vec::with_capacity(record.flavors.len());
    for flavor in &record.flavors {
        let build = record.builds.get(&flavor.name);
        let conclusion = build
            .and_then(|b| Conclusion::of_build(&b.status))
            .map_or("in progress", Conclusion::as_str);
        let seconds = build.and_then(|b| b.seconds).map_or("–".into(), duration);
        let failed = build.and_then(|b| b.failed_phase.as_deref()).unwrap_or("–");
        let link = build
            .and_then(|b| b.page.as_deref())
            .map_or("–".to_owned(), |p| format!("[build]({p})"));
        rows.push(format!(
            "| {} | {conclusion} | {seconds} | {} | {link} |\n",
            cell(&flavor.name),
            cell(failed)
        ));
    }
    let mut reasons = Vec::with_capacity(why.len().max(1));
    for (flavor, reason) in why {
        reasons.push(format!("- `{}`: {}\n", cell(flavor), cell(reason)));
    }
    if reasons.is_empty() && !record.reason.is_empty() {
        reasons.push(format!("{}\n", cell(&record.reason)));
    }
    let head = "| Flavor | Conclusion | Duration | Failed phase | Build |\n|---|---|---|---|---|\n";
    let mut out = String::from(head);
    let why_head = "\n**Why these flavors built**\n\n";
    // The reasons come after the table; both are cut to fit, the table first in line.
    let budget = MAX_SUMMARY_CHARS - head.len() - why_head.len() - 200;
    let (table, left) = fit_lines(&rows, budget, "flavors");
    out.push_str(&table);
    if !reasons.is_empty() {
        out.push_str(why_head);
        out.push_str(&fit_lines(&reasons, left, "reasons").0);
    }
    out
}

/// As many of `lines` as fit in `budget` characters, then a line saying how many more there
/// are; returns the text and the budget left.
fn fit_lines(lines: &[String], budget: usize, what: &str) -> (String, usize) {
    let mut out = String::new();
    let mut used = 0;
    for (i, line) in lines.iter().enumerate() {
        let n = line.chars().count();
        if used + n > budget.saturating_sub(80) {
            let _ = writeln!(out, "\n… and {} more {what}", lines.len() - i);
            return (out, 0);
        }
        out.push_str(line);
        used += n;
    }
    (out, budget - used)
}

/// A flavor's summary: its phases with their durations, the phase that failed with
/// CodeBuild's message, and, when the build failed, the tail of its log.
pub fn flavor_summary(build: &BuildState, phases: &[PhaseTiming], log: Option<&str>) -> String {
    let mut out = String::from("| Phase | Status | Duration |\n|---|---|---|\n");
    for phase in phases {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            cell(&phase.name),
            cell(phase.status.as_deref().unwrap_or("running")),
            phase.seconds.map_or("–".into(), duration)
        );
    }
    if let Some(failed) = &build.failed_phase {
        let message = phases
            .iter()
            .find(|p| &p.name == failed)
            .and_then(|p| p.message.as_deref())
            .unwrap_or("CodeBuild gave no message");
        // CodeBuild's messages are short; a long one is cut so the log keeps its room.
        let message: String = message.chars().take(2000).collect();
        let _ = writeln!(out, "\n**{} failed:** {}", cell(failed), cell(&message));
    }
    let failed = matches!(
        Conclusion::of_build(&build.status),
        Some(Conclusion::Failure | Conclusion::TimedOut)
    );
    if let (true, Some(log)) = (failed, log) {
        let budget = MAX_SUMMARY_CHARS.saturating_sub(out.chars().count() + 200);
        let tail = log_tail(log, LOG_TAIL_LINES, budget);
        let fence = "`".repeat(3.max(longest_backtick_run(&tail) + 1));
        let _ = write!(
            out,
            "\n**The last lines of the log**\n\n{fence}text\n{tail}\n{fence}\n"
        );
    }
    out
}

fn longest_backtick_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// The last `lines` lines of `log` with terminal escapes and control characters removed,
/// at most `max_chars` long: whole lines are dropped from the front, and a last line longer
/// than that keeps its end.
pub fn log_tail(log: &str, lines: usize, max_chars: usize) -> String {
    let clean = strip_escapes(log);
    let all: Vec<&str> = clean.trim_end_matches('\n').split('\n').collect();
    let mut kept: Vec<&str> = all[all.len().saturating_sub(lines)..].to_vec();
    let mut total: usize = kept.iter().map(|l| l.chars().count() + 1).sum();
    while total > max_chars && kept.len() > 1 {
        total -= kept[0].chars().count() + 1;
        kept.remove(0);
    }
    if total > max_chars {
        let last = kept.pop().unwrap_or_default();
        let keep = max_chars.saturating_sub(2);
        let skip = last.chars().count().saturating_sub(keep);
        return format!("…{}", last.chars().skip(skip).collect::<String>());
    }
    kept.join("\n")
}

/// `text` without terminal escape sequences (CSI such as colours, OSC such as titles, and
/// two-character escapes) and without control characters other than newline and tab.
pub fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ST (ESC \).
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::runs::{RunFlavor, RunTrigger};

    fn build(status: &str, failed_phase: Option<&str>) -> BuildState {
        BuildState {
            build_id: "ci:1".into(),
            status: status.into(),
            phase: None,
            failed_phase: failed_phase.map(str::to_owned),
            started_at: None,
            ended_at: None,
            seconds: Some(125),
            compute_type: None,
            logs: None,
            page: Some("https://example.com/build/1".into()),
            reported_at: 0,
        }
    }

    fn record(flavors: &[(&str, &str)]) -> RunRecord {
        RunRecord {
            batch_id: "ci:batch".into(),
            project: "ci".into(),
            commit: "c".repeat(40),
            git_ref: "refs/heads/main".into(),
            pull_request: None,
            trigger: RunTrigger::Push,
            flavors: flavors
                .iter()
                .map(|(n, _)| RunFlavor {
                    name: (*n).into(),
                    identifier: format!("build_{n}"),
                })
                .collect(),
            started_at: 0,
            buildspec: String::new(),
            repository: "acme/slc".into(),
            default_branch: true,
            builds: flavors
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(n, s)| {
                    (
                        (*n).to_owned(),
                        build(s, (*s == "FAILED").then_some("BUILD")),
                    )
                })
                .collect(),
            finished: None,
            reason: String::new(),
            why: Default::default(),
            checks: None,
            carried: Default::default(),
            merge_group: None,
            announce: None,
            inputs: Default::default(),
            trusted: false,
            skipped: Default::default(),
        }
    }

    #[test]
    fn conclusions_never_pass_a_run_that_did_not_build() {
        assert_eq!(Conclusion::of_build("SUCCEEDED"), Some(Conclusion::Success));
        for status in ["FAILED", "FAULT", NO_RESULT] {
            assert_eq!(
                Conclusion::of_build(status),
                Some(Conclusion::Failure),
                "{status}"
            );
        }
        assert_eq!(
            Conclusion::of_build("TIMED_OUT").unwrap().as_str(),
            "timed_out"
        );
        assert_eq!(
            Conclusion::of_build("STOPPED").unwrap().as_str(),
            "cancelled"
        );
        assert_eq!(Conclusion::of_build("IN_PROGRESS"), None);
    }

    #[test]
    fn names_and_external_ids_read_back() {
        let name = flavor_check_name("flavor-ci", "py-3.12");
        assert_eq!(flavor_of_check("flavor-ci", &name), Some("py-3.12"));
        assert_eq!(flavor_of_check("flavor-ci", "flavor-ci"), None);
        assert_eq!(flavor_of_check("flavor-ci", "other / x"), None);
        let id = external_id("ci:0e8c", Some("base"));
        assert_eq!(read_external_id(&id), ("ci:0e8c", Some("base")));
        assert_eq!(read_external_id("ci:0e8c"), ("ci:0e8c", None));
        for b in [RERUN_FAILED, BUILD_COMMIT] {
            assert!(b.label.chars().count() <= 20 && b.description.chars().count() <= 40);
            assert!(b.identifier.chars().count() <= 20);
        }
    }

    #[test]
    fn the_aggregate_summary_tables_each_flavor_and_says_why_it_built() {
        let mut r = record(&[("base", "SUCCEEDED"), ("py|3", "FAILED"), ("r-4.4", "")]);
        r.why = BTreeMap::from([(
            "base".to_owned(),
            "flavors/base/Dockerfile changed".to_owned(),
        )]);
        let text = aggregate_summary(&r);
        assert!(
            text.contains("| base | success | 2m05s | – | [build](https://example.com/build/1) |"),
            "{text}"
        );
        assert!(
            text.contains("| py\\|3 | failure | 2m05s | BUILD |"),
            "{text}"
        );
        assert!(
            text.contains("| r-4.4 | in progress | – | – | – |"),
            "{text}"
        );
        assert!(
            text.contains("- `base`: flavors/base/Dockerfile changed"),
            "{text}"
        );
    }

    #[test]
    fn a_summary_of_thousands_of_flavors_stays_within_githubs_limit() {
        let names: Vec<String> = (0..5000)
            .map(|i| format!("flavor-{i:05}-{}", "x".repeat(40)))
            .collect();
        let flavors: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "SUCCEEDED")).collect();
        let mut r = record(&flavors);
        r.why = names
            .iter()
            .map(|n| (n.clone(), format!("{n}/Dockerfile changed")))
            .collect();
        let text = aggregate_summary(&r);
        assert!(text.chars().count() <= MAX_SUMMARY_CHARS, "{}", text.len());
        assert!(text.contains("more flavors"), "the cut is said");
    }

    #[test]
    fn a_failed_flavor_shows_its_phases_message_and_clean_log_tail() {
        let phases = [
            PhaseTiming {
                name: "INSTALL".into(),
                status: Some("SUCCEEDED".into()),
                seconds: Some(3),
                message: None,
            },
            PhaseTiming {
                name: "BUILD".into(),
                status: Some("FAILED".into()),
                seconds: Some(61),
                message: Some("COMMAND_EXECUTION_ERROR: Error while executing command: make. Reason: exit status 2".into()),
            },
        ];
        let log: String = (1..=150)
            .map(|i| format!("\u{1b}[31mline {i}\u{1b}[0m ```\r\n"))
            .collect();
        let text = flavor_summary(&build("FAILED", Some("BUILD")), &phases, Some(&log));
        assert!(text.contains("| BUILD | FAILED | 1m01s |"), "{text}");
        assert!(
            text.contains("**BUILD failed:** COMMAND_EXECUTION_ERROR"),
            "{text}"
        );
        assert!(
            text.contains("line 150 ```") && text.contains("line 51 ```"),
            "{text}"
        );
        assert!(!text.contains("line 50 ") && !text.contains('\u{1b}') && !text.contains('\r'));
        assert!(
            text.contains("````text\n"),
            "a fence longer than any run in the log"
        );
        // A build that succeeded shows no log.
        let ok = flavor_summary(&build("SUCCEEDED", None), &phases[..1], Some(&log));
        assert!(!ok.contains("line 1"), "{ok}");
    }

    #[test]
    fn log_tails_fit_any_budget_at_a_line_boundary() {
        let log = "first\nsecond\nthird\n";
        assert_eq!(log_tail(log, 2, 100), "second\nthird");
        assert_eq!(log_tail(log, 100, 12), "third");
        let long = "y".repeat(200);
        let tail = log_tail(&long, 100, 50);
        assert!(
            tail.starts_with('…') && tail.chars().count() <= 50,
            "{tail}"
        );
        let huge = format!("{}\n", "z".repeat(1000)).repeat(500);
        let text = flavor_summary(&build("FAILED", Some("BUILD")), &[], Some(&huge));
        assert!(text.chars().count() <= MAX_SUMMARY_CHARS, "{}", text.len());
    }

    #[test]
    fn escapes_and_control_characters_are_removed() {
        assert_eq!(strip_escapes("\u{1b}[1;32mok\u{1b}[0m"), "ok");
        assert_eq!(strip_escapes("\u{1b}]0;title\u{7}text"), "text");
        assert_eq!(strip_escapes("\u{1b}]8;;http://x\u{1b}\\link"), "link");
        assert_eq!(strip_escapes("a\r\nb\tc\u{0}d\u{8}"), "a\nb\tcd");
    }
}
