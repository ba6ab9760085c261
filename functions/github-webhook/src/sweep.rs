//! The sweep: deliveries that never reached the function, or that it answered with an error,
//! asked of GitHub again. GitHub never redelivers a failed delivery by itself; its REST API
//! lists the App's recent deliveries (`GET /app/hook/deliveries`, with the App's JWT) and
//! redelivers one on request (`POST /app/hook/deliveries/{id}/attempts`). A schedule invokes
//! the function with `{"flavorCiSweep": {}}`; each failed delivery of this repository is
//! redelivered once, whatever the number of runs (a create-only marker per delivery guid).
//!
//! A delivery counts as failed when no attempt of its guid got a 2xx answer. The newest
//! attempts are left alone for a minute: GitHub may still be waiting for the answer.

use std::collections::BTreeMap;

use flavor_ci::layout::{DELIVERY_TAG, sweep_key};
use flavor_ci_aws::github::app::epoch_seconds;
use flavor_ci_aws::store::{ObjectStore, Put};
use flavor_ci_aws::undo::now_ms;
use lambda_runtime::tracing::{info, warn};

use crate::github::{AppHooks, HookDelivery};
use crate::outcome::{Fault, Outcome, Refusal};
use crate::ports::{Job, Ports};

/// The key a direct invocation carries to ask for a sweep (the kept deliveries that are due,
/// then the App's failed deliveries).
pub(crate) const SWEEP_KEY: &str = "flavorCiSweep";
/// The key of a direct invocation that handles one kept delivery again now
/// (`{"flavorCiRetry": {"delivery": "<id or key>"}}`, from `flavor-ci dispatch --redeliver`).
pub(crate) const RETRY_KEY: &str = "flavorCiRetry";
/// How far back the sweep looks: GitHub redelivers only recent deliveries (a few days).
const WINDOW_S: u64 = 3 * 24 * 3600;
/// A delivery this young may still be in flight.
const SETTLE_S: u64 = 60;
/// Redeliveries asked per run; the rest wait for the next run.
const MAX_PER_RUN: usize = 25;
/// Pages of 100 deliveries read per run.
pub(crate) const MAX_PAGES: usize = 5;

/// The deliveries to ask for again (of `repo_id` only, when given: an App's deliveries are of
/// every repository it is installed on), at `now` (seconds): for each guid whose attempts all
/// failed, its newest attempt, oldest first.
pub(crate) fn failed(
    deliveries: &[HookDelivery],
    repo_id: Option<u64>,
    now: u64,
) -> Vec<HookDelivery> {
    let mut by_guid: BTreeMap<&str, Vec<&HookDelivery>> = BTreeMap::new();
    for d in deliveries {
        if repo_id.is_none_or(|id| d.repository_id == Some(id)) {
            by_guid.entry(d.guid.as_str()).or_default().push(d);
        }
    }
    let mut out: Vec<(u64, HookDelivery)> = Vec::new();
    for attempts in by_guid.values() {
        if attempts.iter().any(|d| (200..300).contains(&d.status_code)) {
            continue;
        }
        let Some(newest) = attempts
            .iter()
            .filter_map(|d| Some((epoch_seconds(&d.delivered_at)?, *d)))
            .max_by_key(|(at, d)| (*at, d.id))
        else {
            continue;
        };
        let (at, d) = newest;
        if now.saturating_sub(at) < SETTLE_S || now.saturating_sub(at) > WINDOW_S {
            continue;
        }
        out.push((at, d.clone()));
    }
    out.sort_by_key(|(at, d)| (*at, d.id));
    out.into_iter().map(|(_, d)| d).collect()
}

/// Where the failed deliveries are listed: the App's, or the repository hook's (with the hook
/// token, once a delivery has named the hook), or nowhere.
enum Source<'a, K> {
    App,
    Hook(&'a crate::repo_hook::RepoHook<K>, u64),
    None,
}

/// Lists the App's recent deliveries and redelivers this repository's failed ones, once each.
pub(crate) async fn sweep<P: Ports>(job: Job<'_, P>) -> Outcome {
    match run(job).await {
        Ok(outcome) => outcome,
        Err(refusal) => refusal.into(),
    }
}

/// One kept delivery handled again now, whatever its state.
pub(crate) async fn retry_one<P: Ports>(job: Job<'_, P>, id: &str) -> Outcome {
    match crate::intake::retry(job, Some(id)).await {
        Ok(pass)
            if pass.handled.is_empty() && pass.waiting.is_empty() && pass.given_up.is_empty() =>
        {
            Outcome::nothing(format!(
                "no kept delivery is called {id}; flavor-ci status --deliveries lists them"
            ))
        }
        Ok(pass) => Outcome::Swept {
            retries: pass,
            listed: 0,
            failed: 0,
            redelivered: Vec::new(),
            already: 0,
            errors: Vec::new(),
        },
        Err(refusal) => refusal.into(),
    }
}

async fn run<P: Ports>(job: Job<'_, P>) -> Result<Outcome, Refusal> {
    let (github, config) = (&job.deps.github, job.config);
    let began = std::time::Instant::now();
    let retries = crate::intake::retry(job, None).await?;
    // The invocation has 8 s: a long pass leaves the listing to the next run.
    let source = if began.elapsed() > std::time::Duration::from_secs(4) {
        info!("the retry pass took its time; the failed deliveries are swept next run");
        Source::None
    } else if github.has_app() {
        Source::App
    } else if let Some(hook) = &job.deps.repo_hook {
        match crate::repo_hook::hook_id(&job.deps.store, &config.bucket, &config.root).await? {
            Some(id) => Source::Hook(hook, id),
            None => Source::None,
        }
    } else {
        Source::None
    };
    if matches!(source, Source::None) {
        return Ok(Outcome::Swept {
            retries,
            listed: 0,
            failed: 0,
            redelivered: Vec::new(),
            already: 0,
            errors: Vec::new(),
        });
    }
    let repo = &config.repository;
    let repo_id = match source {
        Source::App => Some(github.repository_id(repo).await?),
        _ => None,
    };
    let mut listed = Vec::new();
    let mut page: Option<String> = None;
    let now = now_ms() / 1000;
    for _ in 0..MAX_PAGES {
        let (mut batch, next) = match source {
            Source::Hook(hook, id) => hook.deliveries(repo, id, page.as_deref()).await?,
            _ => github.deliveries(page.as_deref()).await?,
        };
        let oldest = batch
            .iter()
            .filter_map(|d| epoch_seconds(&d.delivered_at))
            .min();
        listed.append(&mut batch);
        match next {
            Some(n) if oldest.is_some_and(|o| now.saturating_sub(o) < WINDOW_S) => page = Some(n),
            _ => break,
        }
    }
    let candidates = failed(&listed, repo_id, now);
    let (store, bucket) = (&job.deps.store, &config.bucket);
    let mut redelivered = Vec::new();
    let mut already = 0;
    let mut errors = Vec::new();
    for d in candidates.iter().take(MAX_PER_RUN) {
        let key = sweep_key(&config.root, &d.guid);
        let marker = serde_json::json!({"delivery": d.id, "event": d.event, "at": now_ms()});
        let put = store
            .put_if_absent(
                bucket,
                &key,
                marker.to_string().as_bytes(),
                "application/json",
                DELIVERY_TAG,
            )
            .await
            .map_err(|e| {
                Refusal::new(
                    Fault::Unavailable,
                    format!("{e}; the sweep runs again on its schedule"),
                )
            })?;
        let Put::Created { version } = put else {
            already += 1;
            continue;
        };
        let asked = match source {
            Source::Hook(hook, id) => hook.redeliver(repo, id, d.id).await,
            _ => github.redeliver(d.id).await,
        };
        match asked {
            Ok(()) => {
                info!(guid = %d.guid, delivery = d.id, event = %d.event, status = d.status_code, "asked GitHub to redeliver a failed delivery");
                redelivered.push(d.guid.clone());
            }
            Err(e) => {
                warn!(guid = %d.guid, error = %e, "GitHub did not redeliver; the next sweep tries again");
                // Tried again next time.
                let written = flavor_ci_aws::store::Written { key, version };
                if let Err(e) = store.delete_written(bucket, &[written]).await {
                    warn!(guid = %d.guid, error = %e, "the sweep's marker was not removed");
                }
                errors.push(format!("{}: {e}", d.guid));
            }
        }
    }
    Ok(Outcome::Swept {
        retries,
        listed: listed.len(),
        failed: candidates.len(),
        redelivered,
        already,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: u64, guid: &str, at: &str, code: u16, repo: u64) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.into(),
            delivered_at: at.into(),
            status_code: code,
            event: "push".into(),
            repository_id: Some(repo),
        }
    }

    #[test]
    fn only_guids_that_never_succeeded_are_asked_for_again() {
        let now = epoch_seconds("2026-12-03T12:00:00Z").unwrap();
        let list = [
            // Failed, then redelivered with success: done.
            d(1, "a", "2026-12-03T10:00:00Z", 503, 7),
            d(2, "a", "2026-12-03T10:30:00Z", 200, 7),
            // Failed twice: the newest attempt is redelivered.
            d(3, "b", "2026-12-03T09:00:00Z", 502, 7),
            d(4, "b", "2026-12-03T11:00:00Z", 0, 7),
            // Another repository of the App.
            d(5, "c", "2026-12-03T11:00:00Z", 500, 8),
            // Too young: GitHub may still be waiting for the answer.
            d(6, "e", "2026-12-03T11:59:30Z", 0, 7),
            // Too old to redeliver.
            d(7, "f", "2026-11-20T11:00:00Z", 500, 7),
            d(8, "g", "2026-12-03T08:00:00Z", 401, 7),
        ];
        let ids: Vec<u64> = failed(&list, Some(7), now).iter().map(|d| d.id).collect();
        assert_eq!(ids, [8, 4]);
    }
}
