//! Skipping identical inputs: each flavor's input key at the commit (from the trees the
//! listing read), the green ledger's records for the selected flavors, each confirmed with
//! CodeBuild, and whether this run's own green builds may be recorded.
//!
//! ```text
//! keys ─▶ list green/<shared>- ─▶ read the hits ─▶ BatchGetBuilds ─▶ trust ─▶ skipped
//! ```
//!
//! Nothing here stops a build: a key that cannot be computed, a ledger or CodeBuild that does
//! not answer, or a record that does not hold, each means the flavor builds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex};

use flavor_ci::batch;
use flavor_ci::generate::Variant;
use flavor_ci::inputs::ledger::{self, GreenRecord};
use flavor_ci::inputs::{self, InputKeys, KeyInput};
use flavor_ci::layout::{green_key, green_prefix};
use flavor_ci::runs::Skipped;
use flavor_ci::selection::Selection;
use flavor_ci::settings::{Settings, SkipTrigger};
use flavor_ci_aws::store::ObjectStore;
use flavor_ci_aws::undo::now_ms;
use lambda_runtime::tracing::{info, warn};

use crate::builds::Builds;
use crate::github::{Listing, Repository};
use crate::ports::{Job, Ports};

/// Whose green builds a run may record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trust {
    Yes,
    No,
    /// A pull request from the repository itself: trusted when its author may write to it.
    IfWriter(String),
}

/// What skipping needs to know of the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked<'a> {
    pub(crate) project: &'a str,
    pub(crate) commit: &'a str,
    pub(crate) variant: Variant,
    pub(crate) release_id: Option<&'a str>,
    /// The trigger `skip.on` must list; `None`: the run always builds.
    pub(crate) skip_as: Option<SkipTrigger>,
    /// The delivery asks for a fresh build (`flavor-ci: rebuild`, `--force`).
    pub(crate) rebuild: bool,
    pub(crate) trust: &'a Trust,
}

/// What the ledger says for one run.
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    pub(crate) keys: Option<InputKeys>,
    pub(crate) skipped: BTreeMap<String, Skipped>,
    pub(crate) trusted: bool,
}

/// The records looked at concurrently at most.
const READS_AT_ONCE: usize = 32;

/// The green records this instance read, by S3 key, with the ETag they were read at. A
/// record's bytes are fixed for its ETag, and the listing gives each record's current ETag, so
/// a record is read once per version: the merge group and the push of a merged commit, handled
/// by one warm instance, read the ledger's records once. The build each names is confirmed with
/// CodeBuild every time.
static READ: LazyLock<Mutex<HashMap<String, (String, GreenRecord)>>> =
    LazyLock::new(Default::default);

/// Records remembered at most; beyond, the memory starts again.
const REMEMBERED_AT_MOST: usize = 20_000;

fn remembered(at: &str, etag: &str) -> Option<GreenRecord> {
    let read = READ.lock().ok()?;
    read.get(at)
        .filter(|(tag, _)| tag == etag)
        .map(|(_, record)| record.clone())
}

fn remember(at: &str, etag: &str, record: &GreenRecord) {
    if let Ok(mut read) = READ.lock() {
        if read.len() >= REMEMBERED_AT_MOST {
            read.clear();
        }
        read.insert(at.to_owned(), (etag.to_owned(), record.clone()));
    }
}

/// Computes the keys, and the selected flavors that need no build.
pub(crate) async fn decide<P: Ports>(
    job: Job<'_, P>,
    start: Asked<'_>,
    settings: &Settings,
    listing: &Listing,
    selection: &Selection,
) -> Inputs {
    let keys = inputs::input_keys(KeyInput {
        trees: &listing.trees,
        settings,
        flavors: &listing.flavors,
        links: &listing.links,
        ignored: &job.config.ignored,
        project: start.project,
        variant: start.variant,
        release_id: start.release_id,
    });
    let keys = match keys {
        Ok(k) => k,
        Err(e) => {
            info!(commit = %start.commit, reason = %e, "no input keys: every selected flavor builds");
            return Inputs {
                trusted: trusted(job, start.trust).await,
                ..Inputs::default()
            };
        }
    };
    let selected = batch::selected(selection, &listing.flavors);
    let may_skip = may_skip(start, settings, listing);
    let skipped = match may_skip {
        Ok(()) if !selected.is_empty() => look_up(job, start, settings, &keys, &selected).await,
        Ok(()) => BTreeMap::new(),
        Err(why) => {
            info!(commit = %start.commit, why, "skipping is off for this run");
            BTreeMap::new()
        }
    };
    Inputs {
        keys: Some(keys),
        skipped,
        trusted: trusted(job, start.trust).await,
    }
}

/// Whether this run may skip flavors, or why not.
fn may_skip(start: Asked<'_>, settings: &Settings, listing: &Listing) -> Result<(), &'static str> {
    let Some(trigger) = start.skip_as else {
        return Err("schedules, releases, re-runs and forced runs always build");
    };
    if start.variant != Variant::Ci {
        return Err("releases always build");
    }
    if !settings.skip.allows(trigger) {
        return Err("skip.on does not list this trigger");
    }
    if start.rebuild || listing.message.as_deref().is_some_and(inputs::asks_rebuild) {
        return Err("the commit message asks for a rebuild (flavor-ci: rebuild)");
    }
    Ok(())
}

/// The selected flavors whose keys have a record that holds.
async fn look_up<P: Ports>(
    job: Job<'_, P>,
    start: Asked<'_>,
    settings: &Settings,
    keys: &InputKeys,
    selected: &[&str],
) -> BTreeMap<String, Skipped> {
    let (store, config) = (&job.deps.store, job.config);
    let prefix = format!("{}{}-", green_prefix(&config.root), keys.shared);
    let listed = match store.list_tagged(&config.bucket, &prefix, 100_000).await {
        Ok(listed) => listed,
        Err(e) => {
            warn!(error = %e, "the green ledger could not be listed: every selected flavor builds");
            return BTreeMap::new();
        }
    };
    let listed: HashMap<&str, &str> = listed
        .iter()
        .map(|(k, etag)| (k.as_str(), etag.as_str()))
        .collect();
    let mut records: Vec<(&str, GreenRecord)> = Vec::new();
    let mut unread: Vec<(&str, String)> = Vec::new();
    for flavor in selected {
        let Some(at) = keys.get(flavor).map(|k| green_key(&config.root, k)) else {
            continue;
        };
        let Some(etag) = listed.get(at.as_str()) else {
            continue;
        };
        match remembered(&at, etag) {
            Some(record) => records.push((flavor, record)),
            None => unread.push((flavor, at)),
        }
    }
    for chunk in unread.chunks(READS_AT_ONCE) {
        let reads = chunk
            .iter()
            .map(|(f, at)| async move { (*f, at, store.get_tagged(&config.bucket, at).await) });
        for (flavor, at, read) in futures_util::future::join_all(reads).await {
            match read {
                Ok(Some((bytes, etag))) => match serde_json::from_slice::<GreenRecord>(&bytes) {
                    Ok(record) => {
                        remember(at, &etag, &record);
                        records.push((flavor, record));
                    }
                    Err(e) => {
                        warn!(flavor, record = at.as_str(), error = %e, "a green record is unreadable: building the flavor");
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    warn!(flavor, error = %e, "a green record could not be read: building the flavor")
                }
            }
        }
    }
    if records.is_empty() {
        return BTreeMap::new();
    }
    let ids: Vec<String> = records
        .iter()
        .map(|(_, r)| r.build_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let facts = match job.deps.builds.build_facts(&ids).await {
        Ok(facts) => facts,
        Err(e) => {
            warn!(error = %e, "CodeBuild could not confirm the green records: every selected flavor builds");
            return BTreeMap::new();
        }
    };
    let now = now_ms();
    let mut skipped = BTreeMap::new();
    for (flavor, record) in records {
        let key = keys.get(flavor).unwrap_or_default();
        let found = facts.iter().find(|f| f.id == record.build_id);
        match ledger::trust(
            key,
            start.project,
            &record,
            found,
            now,
            settings.skip.max_age.0,
        ) {
            Ok(skip) => {
                skipped.insert(flavor.to_owned(), skip);
            }
            Err(why) => {
                warn!(flavor, key, build = %record.build_id, reason = %why, "a green record does not hold: building the flavor");
            }
        }
    }
    skipped
}

/// Whether this run's green builds go into the ledger.
async fn trusted<P: Ports>(job: Job<'_, P>, trust: &Trust) -> bool {
    match trust {
        Trust::Yes => true,
        Trust::No => false,
        Trust::IfWriter(user) => {
            match job
                .deps
                .github
                .permission(&job.config.repository, user)
                .await
            {
                Ok(p) => matches!(p.as_str(), "admin" | "maintain" | "write"),
                Err(e) => {
                    warn!(user, error = %e, "the pull request author's permission is unknown: its builds are not recorded as green");
                    false
                }
            }
        }
    }
}
