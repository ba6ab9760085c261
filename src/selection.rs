//! The one choice of flavors, for every way a build starts. What changed comes from the event
//! (a push's commit list, a pull request's comparison, a local diff) as [`Changes`]; this
//! module turns it into the flavors to build, each with the path or rule that selected it.

use std::collections::{BTreeMap, BTreeSet};

use crate::flavors::{FlavorSet, is_candidate};
use crate::generate::with_dependents;
use crate::glob::Glob;
use crate::settings::Settings;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// Exactly these repository paths changed.
    Paths(BTreeSet<String>),
    /// The changes are unknown or may be incomplete; the text says why (it becomes the reason
    /// every flavor builds).
    Unknown(String),
    /// No change: these flavors were asked for by name (a dispatched run), for `reason`.
    Flavors { names: Vec<String>, reason: String },
}

/// A flavor reached through a link, and the repository paths its content lives under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedFlavor {
    pub flavor: String,
    /// The directory the link resolves to, or the submodule it points into.
    pub path: String,
}

/// Which flavors build, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All {
        reason: String,
    },
    Some {
        flavors: Vec<String>,
        reason: String,
        /// For each flavor in `flavors`: the changed path or the rule that selected it.
        why: BTreeMap<String, String>,
    },
    Nothing {
        reason: String,
    },
}

impl Selection {
    pub fn reason(&self) -> &str {
        match self {
            Selection::All { reason }
            | Selection::Some { reason, .. }
            | Selection::Nothing { reason } => reason,
        }
    }

    /// The flavors to build: `None` for every flavor, an empty list for none.
    pub fn only(&self) -> Option<&[String]> {
        match self {
            Selection::All { .. } => None,
            Selection::Some { flavors, .. } => Some(flavors),
            Selection::Nothing { .. } => Some(&[]),
        }
    }
}

/// Up to three items, then how many more.
fn some_of(items: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = items.iter().take(3).map(String::as_str).collect();
    let more = items.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Decides which flavors `changes` build. A change under `<flavors-dir>/<name>/` (or under a
/// linked flavor's target) selects that flavor and its dependents; a change matching `ignored`
/// selects nothing; any other change, or changes that are unknown, select every flavor.
pub fn select(
    changes: &Changes,
    settings: &Settings,
    flavors: &FlavorSet,
    links: &[LinkedFlavor],
    ignored: &[Glob],
) -> Selection {
    let paths = match changes {
        Changes::Unknown(reason) => {
            return Selection::All {
                reason: reason.clone(),
            };
        }
        Changes::Flavors { names, reason } => return asked_for(names, reason, settings, flavors),
        Changes::Paths(paths) if paths.is_empty() => {
            return Selection::Nothing {
                reason: "no file changed".into(),
            };
        }
        Changes::Paths(paths) => paths,
    };
    let Classified {
        changed,
        ignored_paths,
        gone,
        other,
    } = classify(paths, settings, flavors, links, ignored);
    if !other.is_empty() {
        return Selection::All {
            reason: format!(
                "{} changed outside the flavor directories: building every flavor",
                some_of(&other)
            ),
        };
    }
    if changed.is_empty() {
        let mut parts = Vec::new();
        if !ignored_paths.is_empty() {
            parts.push(format!(
                "only ignored paths changed ({})",
                some_of(&ignored_paths)
            ));
        }
        if !gone.is_empty() {
            parts.push(format!("removed flavors changed ({})", some_of(&gone)));
        }
        return Selection::Nothing {
            reason: format!("{}: nothing to build", parts.join("; ")),
        };
    }
    with_dependents_and_why(changed, settings, flavors)
}

/// The changed paths, sorted by what they touch.
#[derive(Debug, Default)]
struct Classified {
    /// Each flavor a path selects, with the first changed path (in path order) that did.
    changed: BTreeMap<String, String>,
    ignored_paths: BTreeSet<String>,
    /// Names of flavor directories that no longer hold a flavor.
    gone: BTreeSet<String>,
    /// Paths outside every flavor: they build every flavor.
    other: BTreeSet<String>,
}

fn classify(
    paths: &BTreeSet<String>,
    settings: &Settings,
    flavors: &FlavorSet,
    links: &[LinkedFlavor],
    ignored: &[Glob],
) -> Classified {
    let dir = settings.flavors_dir.trim_matches('/');
    let dir = if dir == "." { "" } else { dir };
    let mut out = Classified::default();
    let Classified {
        changed,
        ignored_paths,
        gone,
        other,
    } = &mut out;
    for path in paths {
        if ignored.iter().any(|g| g.matches_path(path)) {
            ignored_paths.insert(path.clone());
            continue;
        }
        let mut hit = false;
        for link in links {
            if under(path, &link.path) {
                changed.entry(link.flavor.clone()).or_insert_with(|| {
                    format!("{path} changed, under {} where the flavor links", link.path)
                });
                hit = true;
            }
        }
        let in_dir = if dir.is_empty() {
            Some(path.as_str())
        } else {
            path.strip_prefix(dir)
                .and_then(|rest| rest.strip_prefix('/'))
        };
        if let Some((name, inside)) = in_dir.map(|rest| {
            rest.split_once('/')
                .map_or((rest, false), |(n, _)| (n, true))
        }) {
            if flavors.get(name).is_some() {
                changed
                    .entry(name.to_owned())
                    .or_insert_with(|| format!("{path} changed"));
                continue;
            }
            // The directory of a flavor that no longer exists: nothing to build for it.
            if inside && is_candidate(name, &settings.exclude) {
                gone.insert(name.into());
                continue;
            }
        }
        if !hit {
            other.insert(path.clone());
        }
    }
    out
}

/// The selection of the `changed` flavors and the ones that depend on them, each with why.
fn with_dependents_and_why(
    changed: BTreeMap<String, String>,
    settings: &Settings,
    flavors: &FlavorSet,
) -> Selection {
    let direct: Vec<String> = changed.keys().cloned().collect();
    let all = with_dependents(settings, flavors, &direct);
    let mut why = changed.clone();
    let dependents: BTreeSet<String> = all
        .iter()
        .filter(|f| !changed.contains_key(*f))
        .cloned()
        .collect();
    for flavor in &dependents {
        why.insert(flavor.clone(), depends_on(settings, flavor, &all));
    }
    let changed_names: BTreeSet<String> = changed.keys().cloned().collect();
    let mut reason = format!("changes under the flavors {}", some_of(&changed_names));
    if !dependents.is_empty() {
        reason.push_str(&format!(
            ", and the flavors that depend on them ({})",
            some_of(&dependents)
        ));
    }
    Selection::Some {
        flavors: all,
        reason,
        why,
    }
}

/// The flavors asked for by name, and those that depend on them; nothing when a name is not a
/// flavor (the reason names it and the flavors there are).
fn asked_for(
    names: &[String],
    reason: &str,
    settings: &Settings,
    flavors: &FlavorSet,
) -> Selection {
    let unknown: BTreeSet<String> = names
        .iter()
        .filter(|n| flavors.get(n).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        let there: BTreeSet<String> = flavors.names().map(str::to_owned).collect();
        return Selection::Nothing {
            reason: format!(
                "no flavor is called {} (the flavors are {}): nothing to build",
                some_of(&unknown),
                some_of(&there)
            ),
        };
    }
    let all = with_dependents(settings, flavors, names);
    let asked: BTreeSet<String> = names.iter().cloned().collect();
    let mut why = BTreeMap::new();
    for f in &all {
        if asked.contains(f) {
            why.insert(f.clone(), reason.to_owned());
        } else {
            why.insert(f.clone(), depends_on(settings, f, &all));
        }
    }
    let mut text = format!("{reason}: the flavors {}", some_of(&asked));
    let dependents: BTreeSet<String> = all
        .iter()
        .filter(|f| !asked.contains(*f))
        .cloned()
        .collect();
    if !dependents.is_empty() {
        text.push_str(&format!(
            ", and the flavors that depend on them ({})",
            some_of(&dependents)
        ));
    }
    Selection::Some {
        flavors: all,
        reason: text,
        why,
    }
}

/// Why a dependent builds: the flavors it depends on among those building.
fn depends_on(settings: &Settings, flavor: &str, building: &[String]) -> String {
    let on: Vec<&str> = settings
        .flavors
        .get(flavor)
        .map(|over| {
            over.depend_on
                .iter()
                .map(String::as_str)
                .filter(|d| building.iter().any(|b| b == d))
                .collect()
        })
        .unwrap_or_default();
    format!("depends on {}", on.join(", "))
}

/// Whether `path` is `dir` or lies under it.
fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
