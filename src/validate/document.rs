//! The document's top level, its `env`, `phases` and `artifacts`.

use super::{At, TOP_CACHE, TOP_ENV, TOP_PHASES, TOP_PROXY, TOP_REPORTS, Validator};
use crate::codebuild::{
    REPORT_FORMATS, SHELLS, identifier_problem, on_failure_problem, secret_reference_problem,
};
use crate::yaml::{Kind, Node};

impl Validator {
    pub(super) fn document(&mut self, root: &Node) {
        const TOP: &[&str] = &[
            "version",
            "run-as",
            "env",
            "proxy",
            "batch",
            "phases",
            "reports",
            "artifacts",
            "cache",
        ];
        if !matches!(root.kind, Kind::Map(_)) {
            self.error(
                root,
                &At::Root,
                format!("a buildspec is a mapping, found {}", root.type_name()),
            );
            return;
        }
        let entries = self.map(root, &At::Root, TOP);
        let get = |k: &str| entries.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        match get("version") {
            None => self.error(
                root,
                &At::top("version"),
                "missing `version`; add `version: 0.2`",
            ),
            Some(v) => match v.text() {
                Some("0.2") => {}
                Some("0.1") => self.warning(
                    v,
                    &At::top("version"),
                    "version 0.1 runs every command in a fresh shell; use 0.2",
                ),
                _ => self.error(
                    v,
                    &At::top("version"),
                    "unsupported version; use `version: 0.2`",
                ),
            },
        }
        if let Some(v) = get("run-as") {
            self.text(v, &At::top("run-as"));
        }
        if let Some(env) = get("env") {
            self.env(env);
        }
        if let Some(proxy) = get("proxy") {
            for (k, v) in self.map(proxy, &At::top("proxy"), &["upload-artifacts", "logs"]) {
                self.boolean(v, &At::Key(&TOP_PROXY, k));
            }
        }
        let tasks_without_spec = get("batch").map(|b| self.batch(b)).unwrap_or(0);
        match get("phases") {
            Some(phases) => self.phases(phases),
            None if get("batch").is_none() => self.error(root, &At::top("phases"), "missing `phases`; add at least a `build` phase with `commands`"),
            None if tasks_without_spec > 0 => self.error(
                root,
                &At::top("phases"),
                format!("{tasks_without_spec} batch task(s) name no `buildspec`, so they run this document's phases, but it has none; add `phases` or give each task a `buildspec`"),
            ),
            None => {}
        }
        if let Some(reports) = get("reports") {
            self.reports(reports);
        }
        if let Some(artifacts) = get("artifacts") {
            self.artifacts(artifacts, &At::top("artifacts"), true);
        }
        if let Some(cache) = get("cache") {
            self.cache(cache);
        }
    }

    fn reports(&mut self, reports: &Node) {
        for (name, report) in self.map(reports, &At::top("reports"), &[]) {
            let path = At::Key(&TOP_REPORTS, name);
            let fields = self.map(
                report,
                &path,
                &["files", "base-directory", "discard-paths", "file-format"],
            );
            if !fields.iter().any(|(k, _)| *k == "files") {
                self.error(report, &path, "missing `files`; list the report files");
            }
            for (k, v) in fields {
                let here = path.key(k);
                match k {
                    "files" => {
                        self.text_list(v, &here);
                    }
                    "discard-paths" => self.boolean(v, &here),
                    "file-format" => self.one_of(v, &here, REPORT_FORMATS, "report format"),
                    _ => {
                        self.text(v, &here);
                    }
                }
            }
        }
    }

    fn cache(&mut self, cache: &Node) {
        for (k, v) in self.map(
            cache,
            &At::top("cache"),
            &["paths", "key", "fallback-keys", "action"],
        ) {
            let here = At::Key(&TOP_CACHE, k);
            match k {
                "paths" | "fallback-keys" => {
                    self.text_list(v, &here);
                }
                "action" => self.one_of(v, &here, &["restore", "save"], "cache action"),
                _ => {
                    self.text(v, &here);
                }
            }
        }
    }

    fn env(&mut self, env: &Node) {
        const KEYS: &[&str] = &[
            "shell",
            "variables",
            "parameter-store",
            "exported-variables",
            "secrets-manager",
            "git-credential-helper",
        ];
        for (k, v) in self.map(env, &At::top("env"), KEYS) {
            let here = At::Key(&TOP_ENV, k);
            match k {
                "shell" => self.one_of(v, &here, SHELLS, "shell"),
                "variables" | "parameter-store" => self.variables(v, &here),
                "exported-variables" => {
                    self.text_list(v, &here);
                }
                "git-credential-helper" => self.boolean(v, &here),
                _ => {
                    for (name, reference) in self.map(v, &here, &[]) {
                        let at = here.key(name);
                        if let Some(problem) =
                            self.text(reference, &at).and_then(secret_reference_problem)
                        {
                            self.error(reference, &at, problem);
                        }
                    }
                }
            }
        }
    }

    fn phases(&mut self, phases: &Node) {
        const PHASES: &[&str] = &["install", "pre_build", "build", "post_build"];
        const KEYS: &[&str] = &[
            "run-as",
            "on-failure",
            "runtime-versions",
            "commands",
            "finally",
        ];
        let entries = self.map(phases, &At::top("phases"), PHASES);
        if entries.is_empty() && matches!(phases.kind, Kind::Map(_)) {
            self.error(
                phases,
                &At::top("phases"),
                "no phases; add at least a `build` phase with `commands`",
            );
        }
        for (name, phase) in entries {
            let path = At::Key(&TOP_PHASES, name);
            let fields = self.map(phase, &path, KEYS);
            let has_commands = fields.iter().any(|(k, _)| *k == "commands");
            for (k, v) in fields {
                let here = path.key(k);
                match k {
                    "commands" => {
                        self.text_list(v, &here);
                    }
                    "finally" => {
                        self.text_list(v, &here);
                        if !has_commands {
                            self.error(v, &here, "`finally` needs `commands` in the same phase");
                        }
                    }
                    "runtime-versions" => {
                        if name != "install" {
                            self.error(
                                v,
                                &here,
                                "only the install phase takes runtime-versions; move it there",
                            );
                        }
                        self.variables(v, &here);
                    }
                    "on-failure" => {
                        if let Some(problem) = self.text(v, &here).and_then(on_failure_problem) {
                            self.error(v, &here, problem);
                        }
                    }
                    _ => {
                        self.text(v, &here);
                    }
                }
            }
        }
    }

    fn artifacts(&mut self, node: &Node, path: &At<'_>, primary: bool) {
        const KEYS: &[&str] = &[
            "files",
            "name",
            "discard-paths",
            "base-directory",
            "exclude-paths",
            "enable-symlinks",
            "s3-prefix",
            "secondary-artifacts",
        ];
        let fields = self.map(node, path, if primary { KEYS } else { &KEYS[..7] });
        if !fields.iter().any(|(k, _)| *k == "files")
            && !fields.iter().any(|(k, _)| *k == "secondary-artifacts")
        {
            self.error(node, path, "missing `files`; list what to upload");
        }
        for (k, v) in fields {
            let here = path.key(k);
            match k {
                "files" => {
                    self.text_list(v, &here);
                }
                "exclude-paths" => self.text_or_list(v, &here),
                "discard-paths" | "enable-symlinks" => self.boolean(v, &here),
                "secondary-artifacts" => {
                    for (id, artifact) in self.map(v, &here, &[]) {
                        let at = here.key(id);
                        if let Some(problem) = identifier_problem(id) {
                            self.error(
                                artifact,
                                &at,
                                problem.replace("identifier", "artifact identifier"),
                            );
                        }
                        self.artifacts(artifact, &at, false);
                    }
                }
                _ => {
                    self.text(v, &here);
                }
            }
        }
    }
}
