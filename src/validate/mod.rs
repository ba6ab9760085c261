//! Checks a buildspec document against the version 0.2 schema and CodeBuild's batch rules,
//! reporting every problem with its path (`batch.build-graph[3].depend-on[0]`) and line.

use std::collections::HashSet;
use std::fmt;

use crate::FastMap;
use crate::codebuild::{INLINE_LIMIT_CHARS, unknown_value, variable_name_problem};
use crate::yaml::{self, Kind, Node};

mod batch;
mod document;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, located by path and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// Dotted path into the document; empty for the document as a whole.
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let at = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(f, "line {}: {level}: {at}: {}", self.line, self.message)
    }
}

/// What the validator should know beyond the document itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// The project's maximum number of builds per batch, when known.
    pub max_builds: Option<u32>,
}

/// Whether any of `problems` is an error.
pub fn has_errors(problems: &[Problem]) -> bool {
    problems.iter().any(|p| p.severity == Severity::Error)
}

/// Validates buildspec text: YAML syntax, schema, batch rules, size.
pub fn validate_text(text: &str, limits: Limits) -> Vec<Problem> {
    match yaml::read(text) {
        Ok(root) => validate_document(&root, text.chars().count(), limits),
        Err(e) => vec![not_yaml(&e)],
    }
}

/// The problem a text that is not YAML gives.
pub fn not_yaml(e: &yaml::ReadError) -> Problem {
    Problem {
        severity: Severity::Error,
        path: String::new(),
        line: e.line,
        message: format!("not valid YAML: {}", e.message),
    }
}

/// Validates a parsed buildspec whose source text is `chars` characters long.
pub fn validate_document(root: &Node, chars: usize, limits: Limits) -> Vec<Problem> {
    let mut v = Validator {
        problems: Vec::new(),
        limits,
    };
    v.document(root);
    if chars > INLINE_LIMIT_CHARS {
        v.problems.push(Problem {
            severity: Severity::Warning,
            path: String::new(),
            line: 1,
            message: format!(
                "the buildspec is {chars} characters; CodeBuild rejects inline buildspecs over {INLINE_LIMIT_CHARS}, so store it in S3 and point the project at it (arn:aws:s3:::bucket/key)"
            ),
        });
    }
    v.problems.sort_by_key(|p| (p.line, p.severity));
    v.problems
}

/// Finds a dependency cycle in a graph given as node → successors, returning it as a closed
/// path (`[a, b, a]`). Nodes are visited in the order given, so the answer is deterministic.
pub fn find_cycle<'a>(
    order: &[&'a str],
    edges: &FastMap<&'a str, Vec<&'a str>>,
) -> Option<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: FastMap<&str, Mark> =
        FastMap::with_capacity_and_hasher(order.len(), Default::default());
    for &start in order {
        if marks.contains_key(start) {
            continue;
        }
        // Iterative DFS: (node, index of next successor to visit).
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::Open);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let succ = edges.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(&s) = succ.get(*next) {
                *next += 1;
                match marks.get(s) {
                    Some(Mark::Open) => {
                        let from = stack.iter().position(|(n, _)| *n == s).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                        cycle.push(s);
                        return Some(cycle);
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(s, Mark::Open);
                        stack.push((s, 0));
                    }
                }
            } else {
                marks.insert(node, Mark::Done);
                stack.pop();
            }
        }
    }
    None
}

fn is_bool_word(text: &str) -> bool {
    matches!(
        text,
        "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

// Paths are built for every node visited, so without the formatting machinery.
/// Where a node stands in the document (`batch.build-graph[3].depend-on[0]`), built on the
/// stack as the walk goes down and written out only when a problem is reported there.
#[derive(Debug, Clone, Copy)]
enum At<'p> {
    Root,
    Key(&'p At<'p>, &'p str),
    Index(&'p At<'p>, usize),
}

impl<'p> At<'p> {
    /// A key of the document's top-level mapping.
    fn top(key: &'p str) -> Self {
        At::Key(&At::Root, key)
    }

    fn key(&'p self, key: &'p str) -> At<'p> {
        At::Key(self, key)
    }

    fn index(&'p self, i: usize) -> At<'p> {
        At::Index(self, i)
    }
}

// The top-level keys that paths start from.
const TOP_PROXY: At<'static> = At::Key(&At::Root, "proxy");
const TOP_REPORTS: At<'static> = At::Key(&At::Root, "reports");
const TOP_CACHE: At<'static> = At::Key(&At::Root, "cache");
const TOP_ENV: At<'static> = At::Key(&At::Root, "env");
const TOP_BATCH: At<'static> = At::Key(&At::Root, "batch");
const TOP_PHASES: At<'static> = At::Key(&At::Root, "phases");

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Root => Ok(()),
            At::Key(At::Root, key) => f.write_str(key),
            At::Key(parent, key) => write!(f, "{parent}.{key}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Up to this many entries, a mapping's duplicate keys are found by looking back.
const SMALL_MAP: usize = 16;

struct Validator {
    problems: Vec<Problem>,
    limits: Limits,
}

impl Validator {
    fn error(&mut self, node: &Node, path: &At<'_>, message: impl Into<String>) {
        self.problems.push(Problem {
            severity: Severity::Error,
            path: path.to_string(),
            line: node.line as usize,
            message: message.into(),
        });
    }

    fn warning(&mut self, node: &Node, path: &At<'_>, message: impl Into<String>) {
        self.problems.push(Problem {
            severity: Severity::Warning,
            path: path.to_string(),
            line: node.line as usize,
            message: message.into(),
        });
    }

    /// The entries of a mapping whose keys are all in `allowed`; reports anything else.
    fn map<'n>(
        &mut self,
        node: &'n Node,
        path: &At<'_>,
        allowed: &[&str],
    ) -> Vec<(&'n str, &'n Node<'n>)> {
        let Kind::Map(entries) = &node.kind else {
            self.error(
                node,
                path,
                format!("expected a mapping, found {}", node.type_name()),
            );
            return Vec::new();
        };
        // Small mappings (nearly all) look back over their earlier keys; large ones keep a set.
        let mut seen: Option<HashSet<&str, foldhash::fast::RandomState>> =
            (entries.len() > SMALL_MAP).then(HashSet::default);
        let mut out = Vec::with_capacity(entries.len());
        for (i, (key, value)) in entries.iter().enumerate() {
            let Some(name) = key.text() else {
                self.error(key, path, "mapping keys must be plain text");
                continue;
            };
            let here = path.key(name);
            let again = match &mut seen {
                Some(seen) => !seen.insert(name),
                None => entries[..i].iter().any(|(k, _)| k.text() == Some(name)),
            };
            if again {
                self.error(key, &here, format!("`{name}` appears twice; keep one"));
                continue;
            }
            if !allowed.is_empty() && !allowed.contains(&name) {
                self.error(
                    key,
                    &here,
                    format!(
                        "unknown key `{name}`; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            out.push((name, value));
        }
        out
    }

    fn text<'n>(&mut self, node: &'n Node, path: &At<'_>) -> Option<&'n str> {
        match node.text() {
            Some(t) if !node.is_null() => Some(t),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a value, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn one_of(&mut self, node: &Node, path: &At<'_>, allowed: &[&str], what: &str) {
        if let Some(message) = self
            .text(node, path)
            .and_then(|t| unknown_value(t, allowed, what))
        {
            self.error(node, path, message);
        }
    }

    fn boolean(&mut self, node: &Node, path: &At<'_>) {
        if let Some(t) = self.text(node, path)
            && !is_bool_word(t)
        {
            self.error(
                node,
                path,
                format!("expected true/false (or yes/no), found `{t}`"),
            );
        }
    }

    fn list<'n>(&mut self, node: &'n Node, path: &At<'_>) -> &'n [Node<'n>] {
        match &node.kind {
            Kind::Seq(items) => items,
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a list, found {}", node.type_name()),
                );
                &[]
            }
        }
    }

    fn text_list(&mut self, node: &Node, path: &At<'_>) -> usize {
        let items = self.list(node, path);
        for (i, item) in items.iter().enumerate() {
            self.text(item, &path.index(i));
        }
        items.len()
    }

    fn text_or_list(&mut self, node: &Node, path: &At<'_>) {
        if matches!(node.kind, Kind::Seq(_)) {
            self.text_list(node, path);
        } else {
            self.text(node, path);
        }
    }

    fn variables(&mut self, node: &Node, path: &At<'_>) {
        for (name, value) in self.map(node, path, &[]) {
            let here = path.key(name);
            if let Some(problem) = variable_name_problem(name) {
                self.error(value, &here, format!("`{name}`: {problem}"));
            }
            if value.is_null() {
                self.error(
                    value,
                    &here,
                    format!("`{name}` has no value; write \"\" for an empty one"),
                );
            } else {
                self.text(value, &here);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_as_before() {
        assert_eq!(At::Root.key("batch").to_string(), "batch");
        assert_eq!(
            TOP_BATCH.key("build-graph").to_string(),
            "batch.build-graph"
        );
        let graph = TOP_BATCH.key("build-graph");
        for i in [0, 7, 10, 123, usize::MAX] {
            assert_eq!(
                graph.index(i).to_string(),
                format!("batch.build-graph[{i}]")
            );
        }
        assert_eq!(
            graph.index(3).key("depend-on").index(0).to_string(),
            "batch.build-graph[3].depend-on[0]"
        );
    }

    fn check(text: &str) -> Vec<String> {
        validate_text(
            text,
            Limits {
                max_builds: Some(3),
            },
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    const GOOD: &str = "version: 0.2\nbatch:\n  fast-fail: false\n  build-graph:\n    - identifier: build_a\n    - identifier: build_b\n      depend-on:\n        - build_a\nphases:\n  build:\n    commands:\n      - echo hi\n";

    #[test]
    fn a_valid_batch_buildspec_has_no_problems() {
        assert_eq!(check(GOOD), Vec::<String>::new());
    }

    #[test]
    fn each_error_kind_is_reported_with_path_and_line() {
        let cases: &[(&str, &str)] = &[
            (
                "version: 0.3\nphases: {build: {commands: [x]}}\n",
                "line 1: error: version: unsupported version",
            ),
            (
                "phases: {build: {commands: [x]}}\n",
                "version: missing `version`",
            ),
            ("version: 0.2\n", "phases: missing `phases`"),
            (
                "version: 0.2\nphase:\n  build: {}\n",
                "line 2: error: phase: unknown key `phase`",
            ),
            (
                "version: 0.2\nbatch:\n  build-graph:\n    - identifier: build-a\nphases: {build: {commands: [x]}}\n",
                "line 4: error: batch.build-graph[0].identifier: identifier `build-a` contains '-'",
            ),
            (
                "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n    - identifier: a\nphases: {build: {commands: [x]}}\n",
                "line 5: error: batch.build-graph[1].identifier: identifier `a` is used twice (first at batch.build-graph[0])",
            ),
            (
                "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\nphases: {build: {commands: [x]}}\n",
                "line 5: error: batch.build-graph[0].depend-on[0]: `b` is not an identifier",
            ),
            (
                "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\n    - identifier: b\n      depend-on: [a]\nphases: {build: {commands: [x]}}\n",
                "line 4: error: batch.build-graph[0]: dependency cycle: a → b → a",
            ),
            (
                "version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n    - identifier: b\n    - identifier: c\n    - identifier: d\nphases: {build: {commands: [x]}}\n",
                "line 4: error: batch.build-list: the batch has 4 builds but the project allows at most 3",
            ),
            (
                "version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n      depend-on: [a]\nphases: {build: {commands: [x]}}\n",
                "batch.build-list[0].depend-on: `depend-on` only works in a build-graph",
            ),
            (
                "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      env:\n        compute-type: HUGE\nphases: {build: {commands: [x]}}\n",
                "line 6: error: batch.build-graph[0].env.compute-type: unknown compute type `HUGE`",
            ),
            (
                "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      env: {privileged-mode: maybe}\nphases: {build: {commands: [x]}}\n",
                "batch.build-graph[0].env.privileged-mode: expected true/false",
            ),
            (
                "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n",
                "phases: 1 batch task(s) name no `buildspec`",
            ),
            (
                "version: 0.2\nbatch:\n  fast-fail: true\n",
                "batch: no batch kind",
            ),
            (
                "version: 0.2\nbatch:\n  build-matrix:\n    dynamic:\n      env:\n        variables:\n          A: [1, 2]\n          B: [1, 2]\n      buildspec: [x.yml]\n",
                "the batch has 4 builds but the project allows at most 3",
            ),
            (
                "version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 0\nphases: {build: {commands: [x]}}\n",
                "batch.build-fanout.parallelism: expected a whole number of at least 1",
            ),
            (
                "version: 0.2\nenv:\n  shell: zsh\nphases: {build: {commands: [x]}}\n",
                "env.shell: unknown shell `zsh`",
            ),
            (
                "version: 0.2\nenv:\n  variables:\n    CODEBUILD_X: a\n    EMPTY:\nphases: {build: {commands: [x]}}\n",
                "env.variables.CODEBUILD_X: `CODEBUILD_X`: names starting with CODEBUILD_ are reserved",
            ),
            (
                "version: 0.2\nenv:\n  variables:\n    EMPTY:\nphases: {build: {commands: [x]}}\n",
                "env.variables.EMPTY: `EMPTY` has no value",
            ),
            (
                "version: 0.2\nphases:\n  build:\n    runtime-versions: {python: 3.12}\n    commands: [x]\n",
                "phases.build.runtime-versions: only the install phase",
            ),
            (
                "version: 0.2\nphases:\n  build:\n    finally: [x]\n",
                "phases.build.finally: `finally` needs `commands`",
            ),
            (
                "version: 0.2\nphases:\n  build:\n    commands: [x]\n    on-failure: IGNORE\n",
                "phases.build.on-failure: unknown on-failure `IGNORE`",
            ),
            (
                "version: 0.2\nphases:\n  build:\n    commands: x\n",
                "phases.build.commands: expected a list",
            ),
            (
                "version: 0.2\nphases: {build: {commands: [x]}}\nreports:\n  r:\n    files: [a]\n    file-format: XML\n",
                "reports.r.file-format: unknown report format `XML`",
            ),
            (
                "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts:\n  name: x\n",
                "artifacts: missing `files`",
            ),
            (
                "version: 0.2\nphases: {build: {commands: [x]}}\ncache:\n  paths: /x\n",
                "cache.paths: expected a list",
            ),
            (
                "version: 0.2\nversion: 0.2\nphases: {build: {commands: [x]}}\n",
                "line 2: error: version: `version` appears twice",
            ),
            (
                "version: 0.2\nphases: [build]\n",
                "phases: expected a mapping",
            ),
            (
                "version: 0.2\nphases: {build: {commands: [x]}\n",
                "not valid YAML",
            ),
            ("- a\n", "a buildspec is a mapping"),
        ];
        for (text, expected) in cases {
            let problems = check(text);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{text}\nexpected {expected:?}\ngot {problems:#?}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_found_in_small_and_large_mappings() {
        for n in [2, SMALL_MAP, SMALL_MAP + 1, 200] {
            let mut text = String::from(
                "version: 0.2\nphases: {build: {commands: [x]}}\nenv:\n  variables:\n",
            );
            for i in 0..n {
                text.push_str(&format!("    V{i}: x\n"));
            }
            assert_eq!(check(&text), Vec::<String>::new(), "{n} distinct");
            text.push_str("    V1: y\n");
            let problems = check(&text);
            assert_eq!(problems.len(), 1, "{n}: {problems:#?}");
            assert!(
                problems[0].contains(&format!(
                    "line {}: error: env.variables.V1: `V1` appears twice",
                    n + 5
                )),
                "{n}: {problems:#?}"
            );
        }
    }

    #[test]
    fn all_problems_are_reported_not_just_the_first() {
        let problems = check(
            "version: 0.2\nenv: {shell: zsh}\nphases:\n  build:\n    commands: x\n    finally: [y]\n  test: {}\n",
        );
        assert!(problems.len() >= 3, "{problems:#?}");
    }

    #[test]
    fn oversized_buildspecs_get_a_warning_not_an_error() {
        let mut text = String::from("version: 0.2\nphases:\n  build:\n    commands:\n");
        while text.len() <= INLINE_LIMIT_CHARS {
            text.push_str("      - echo 0123456789012345678901234567890123456789\n");
        }
        let problems = validate_text(&text, Limits::default());
        assert!(!has_errors(&problems));
        assert!(problems[0].message.contains("25600"), "{problems:?}");
    }

    #[test]
    fn cycles_are_found_and_named() {
        let edges: FastMap<&str, Vec<&str>> =
            [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["b"])]
                .into_iter()
                .collect();
        assert_eq!(
            find_cycle(&["a", "b", "c"], &edges),
            Some(vec!["b", "c", "b"])
        );
        let dag: FastMap<&str, Vec<&str>> = [("a", vec!["b", "c"]), ("b", vec!["c"])]
            .into_iter()
            .collect();
        assert_eq!(find_cycle(&["a", "b", "c"], &dag), None);
    }
}
