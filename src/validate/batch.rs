//! The `batch` section: build lists, graphs, matrices and fanouts, and their tasks.

use super::{At, Problem, Severity, TOP_BATCH, Validator, find_cycle};
use crate::FastMap;
use crate::codebuild::{COMPUTE_TYPES, ENVIRONMENT_TYPES, identifier_problem};
use crate::yaml::{Kind, Node};

impl Validator {
    /// Checks `batch` and returns how many tasks name no buildspec of their own.
    pub(super) fn batch(&mut self, batch: &Node) -> usize {
        const KINDS: &[&str] = &["build-graph", "build-list", "build-matrix", "build-fanout"];
        let entries = self.map(
            batch,
            &At::top("batch"),
            &[
                "fast-fail",
                "build-graph",
                "build-list",
                "build-matrix",
                "build-fanout",
            ],
        );
        let kinds: Vec<_> = entries.iter().filter(|(k, _)| KINDS.contains(k)).collect();
        if kinds.is_empty() {
            self.error(
                batch,
                &At::top("batch"),
                "no batch kind; add one of build-graph, build-list, build-matrix, build-fanout",
            );
        } else if kinds.len() > 1 {
            let names: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
            self.error(
                batch,
                &At::top("batch"),
                format!(
                    "a batch holds exactly one kind, found {}; keep one",
                    names.join(" and ")
                ),
            );
        }
        let mut without_spec = 0;
        for &(k, v) in &entries {
            let here = At::Key(&TOP_BATCH, k);
            let (builds, missing) = match k {
                "fast-fail" => {
                    self.boolean(v, &here);
                    continue;
                }
                "build-graph" => self.tasks(v, &here, true),
                "build-list" => self.tasks(v, &here, false),
                "build-matrix" => self.matrix(v, &here),
                _ => (self.fanout(v, &here), 1),
            };
            without_spec += missing;
            if let Some(max) = self.limits.max_builds
                && builds > max as usize
            {
                self.error(v, &here, format!(
                        "the batch has {builds} builds but the project allows at most {max}; raise the project's maximum builds per batch or build fewer at once"
                    ));
            }
        }
        without_spec
    }

    fn task_env(&mut self, env: &Node, path: &At<'_>) {
        const KEYS: &[&str] = &[
            "compute-type",
            "fleet",
            "image",
            "privileged-mode",
            "type",
            "variables",
        ];
        for (k, v) in self.map(env, path, KEYS) {
            let here = path.key(k);
            match k {
                "compute-type" => self.one_of(v, &here, COMPUTE_TYPES, "compute type"),
                "type" => self.one_of(v, &here, ENVIRONMENT_TYPES, "environment type"),
                "privileged-mode" => self.boolean(v, &here),
                "variables" => self.variables(v, &here),
                _ => {
                    self.text(v, &here);
                }
            }
        }
    }

    /// Checks a build-graph or build-list; returns (builds, tasks without a buildspec).
    fn tasks(&mut self, node: &Node, path: &At<'_>, graph: bool) -> (usize, usize) {
        const KEYS: &[&str] = &[
            "identifier",
            "buildspec",
            "depend-on",
            "env",
            "ignore-failure",
            "debug-session",
        ];
        let tasks = self.list(node, path);
        if tasks.is_empty() && matches!(node.kind, Kind::Seq(_)) {
            self.error(node, path, "the batch has no builds; add at least one");
        }
        // identifier → (index, line) of the task that defines it
        let mut ids: FastMap<&str, (usize, usize)> =
            FastMap::with_capacity_and_hasher(tasks.len(), Default::default());
        let mut order: Vec<&str> = Vec::with_capacity(tasks.len());
        // (identifier, the entry, task index, entry index) of each depend-on entry
        let mut deps: Vec<(&str, &Node, usize, usize)> = Vec::new();
        let mut without_spec = 0;
        for (i, task) in tasks.iter().enumerate() {
            let at = path.index(i);
            let fields = self.map(task, &at, KEYS);
            if !fields.iter().any(|(k, _)| *k == "buildspec") {
                without_spec += 1;
            }
            let mut id = None;
            match fields.iter().find(|(k, _)| *k == "identifier") {
                None => self.error(task, &at, "missing `identifier`"),
                Some((_, v)) => {
                    let here = at.key("identifier");
                    if let Some(t) = self.text(v, &here) {
                        if let Some(problem) = identifier_problem(t) {
                            self.error(v, &here, problem);
                        } else if let Some(first) = ids.get(t) {
                            self.error(
                                v,
                                &here,
                                format!(
                                    "identifier `{t}` is used twice (first at {}); make it unique",
                                    path.index(first.0)
                                ),
                            );
                        } else {
                            ids.insert(t, (i, task.line as usize));
                            order.push(t);
                            id = Some(t);
                        }
                    }
                }
            }
            for &(k, v) in &fields {
                let here = at.key(k);
                match k {
                    "identifier" => {}
                    "buildspec" => {
                        self.text(v, &here);
                    }
                    "env" => self.task_env(v, &here),
                    "ignore-failure" | "debug-session" => self.boolean(v, &here),
                    _ if !graph => self.error(
                        v,
                        &here,
                        "`depend-on` only works in a build-graph; use build-graph or remove it",
                    ),
                    _ => {
                        for (j, dep) in self.list(v, &here).iter().enumerate() {
                            let at = here.index(j);
                            if self.text(dep, &at).is_some()
                                && let Some(from) = id
                            {
                                deps.push((from, dep, i, j));
                            }
                        }
                    }
                }
            }
        }
        self.dependencies(path, &ids, &order, &deps);
        (tasks.len(), without_spec)
    }

    /// The tasks' `depend-on` entries (identifier, entry, task index, entry index): each names
    /// a task of the batch, and they form no cycle. `ids` has each identifier's task index and
    /// line, `order` the identifiers in task order.
    fn dependencies(
        &mut self,
        path: &At<'_>,
        ids: &FastMap<&str, (usize, usize)>,
        order: &[&str],
        deps: &[(&str, &Node, usize, usize)],
    ) {
        let mut edges: FastMap<&str, Vec<&str>> = FastMap::default();
        for &(from, dep, i, j) in deps {
            let Some(to) = dep.text() else { continue };
            if ids.contains_key(to) {
                edges.entry(from).or_default().push(to);
            } else {
                let task = path.index(i);
                let entries = task.key("depend-on");
                self.error(
                    dep,
                    &entries.index(j),
                    format!("`{to}` is not an identifier in this batch; name an existing task"),
                );
            }
        }
        if let Some(cycle) = find_cycle(order, &edges) {
            let (first, line) = ids
                .get(cycle[0])
                .map(|&(i, line)| (path.index(i).to_string(), line))
                .unwrap_or_default();
            self.problems.push(Problem {
                severity: Severity::Error,
                path: first,
                line,
                message: format!(
                    "dependency cycle: {}; remove one of these depend-on entries",
                    cycle.join(" → ")
                ),
            });
        }
    }

    fn matrix(&mut self, node: &Node, path: &At<'_>) -> (usize, usize) {
        let mut builds = 1usize;
        let mut has_buildspec = false;
        for (k, v) in self.map(node, path, &["static", "dynamic"]) {
            let here = path.key(k);
            if k == "static" {
                for (sk, sv) in self.map(v, &here, &["ignore-failure", "env"]) {
                    let at = here.key(sk);
                    if sk == "env" {
                        self.task_env(sv, &at)
                    } else {
                        self.boolean(sv, &at)
                    }
                }
                continue;
            }
            for (dk, dv) in self.map(v, &here, &["buildspec", "env"]) {
                let at = here.key(dk);
                if dk == "buildspec" {
                    has_buildspec = true;
                    builds = builds.saturating_mul(self.text_list(dv, &at).max(1));
                    continue;
                }
                for (ek, ev) in self.map(dv, &at, &["compute-type", "image", "variables"]) {
                    let e_at = at.key(ek);
                    if ek == "variables" {
                        for (name, values) in self.map(ev, &e_at, &[]) {
                            builds = builds
                                .saturating_mul(self.text_list(values, &e_at.key(name)).max(1));
                        }
                    } else {
                        let items = self.list(ev, &e_at);
                        for (i, item) in items.iter().enumerate() {
                            let i_at = e_at.index(i);
                            if ek == "compute-type" {
                                self.one_of(item, &i_at, COMPUTE_TYPES, "compute type");
                            } else {
                                self.text(item, &i_at);
                            }
                        }
                        builds = builds.saturating_mul(items.len().max(1));
                    }
                }
            }
        }
        (builds, usize::from(!has_buildspec))
    }

    fn fanout(&mut self, node: &Node, path: &At<'_>) -> usize {
        let mut parallelism = 1;
        for (k, v) in self.map(node, path, &["parallelism", "ignore-failure"]) {
            let here = path.key(k);
            if k == "ignore-failure" {
                self.boolean(v, &here);
            } else if let Some(t) = self.text(v, &here) {
                match t.parse::<usize>() {
                    Ok(n) if n >= 1 => parallelism = n,
                    _ => self.error(
                        v,
                        &here,
                        format!("expected a whole number of at least 1, found `{t}`"),
                    ),
                }
            }
        }
        parallelism
    }
}
