//! The batch step every trigger ends in. A trigger's adapter says what to build ([`Start`]);
//! this module lists the flavors at the commit, gets the changes, plans the batch (pure, in
//! `flavor_ci::batch`) and runs the plan's I/O, one named step each:
//!
//! ```text
//! list ─▶ changes ─▶ plan ─▶ store_spec ─▶ claim ─▶ start ─▶ checks ─▶ record ─▶ report ─▶ supersede
//! ```
//!
//! What a failed step wrote before the batch started is removed again; once the batch has
//! started, later failures are logged and the answer still says `started`.

use flavor_ci::batch::{self, BatchInput, BatchPlan, Plan, PlanError, RunContext, SkippedPlan};
use flavor_ci::generate::Variant;
use flavor_ci::layout::{
    DELIVERY_TAG, PUSH_SPEC_TAG, commit_run_key, delivery_key, open_run_key, push_spec_key,
    region_partition, run_key, s3_object_arn, s3_uri,
};

use flavor_ci::runs::Skipped;
use flavor_ci::runs::{MergeGroupRun, RUN_TAG, RunRecord, RunTrigger};
use flavor_ci::selection::{Changes, Selection};
use flavor_ci::settings::{Settings, SkipTrigger};
use flavor_ci_aws::store::{ObjectStore, Put, StoreError, Written};
use flavor_ci_aws::undo::{UndoLog, Undone, now_ms};
use lambda_runtime::tracing::{info, warn};

use crate::builds::{BatchRequest, Builds};
use crate::github::{ListError, Listing, Repository};
use crate::outcome::{Aggregate, Context, Fault, Outcome, Refusal, Started, Stopping};
use crate::ports::{Job, Ports};
use crate::record::{DeliveryRecord, Earlier, State, earlier};
use crate::report::{self, Verdict, post_aggregate};
use crate::skip::{self, Inputs, Trust};
use crate::superseded;

/// Where the changes come from.
#[derive(Debug)]
pub(crate) enum ChangesFrom {
    /// The delivery says (a push lists its commits' files; a run names flavors or none).
    Delivery(Changes),
    /// GitHub's comparison of `base...` the commit (a pull request).
    Compare { base: String },
}

/// One batch to start: the commit, where it goes, and what changed.
#[derive(Debug)]
pub(crate) struct Start {
    /// The ref the record names (`refs/heads/main`, `refs/pull/7/head`).
    pub(crate) git_ref: String,
    /// The exact commit planned and built.
    pub(crate) commit: String,
    /// The commit's root tree, when the delivery names it.
    pub(crate) tree_id: Option<String>,
    pub(crate) variant: Variant,
    pub(crate) project: String,
    pub(crate) release_id: Option<String>,
    pub(crate) changes: ChangesFrom,
    /// What the answer says the request is about.
    pub(crate) context: Context,
    /// Whether the batches flavor-ci started earlier for `git_ref` are stopped.
    pub(crate) supersede: bool,
    /// For the run record.
    pub(crate) trigger: RunTrigger,
    pub(crate) pull_request: Option<u64>,
    /// Whether `git_ref` is the repository's default branch.
    pub(crate) default_branch: bool,
    /// The run this one builds some flavors of again (a button): the flavors it does not build
    /// keep their results and check runs, so the new aggregate speaks for the whole commit.
    pub(crate) earlier: Option<Box<RunRecord>>,
    /// The merge group, for a run of one.
    pub(crate) merge_group: Option<MergeGroupRun>,
    /// Whether a failure is announced, when the settings decide it now (merge groups).
    pub(crate) announce: Option<bool>,
    /// The trigger `skip.on` must list for this run to skip flavors that already built green;
    /// `None`: it always builds (schedules, releases, re-runs, forced dispatches).
    pub(crate) skip_as: Option<SkipTrigger>,
    /// The delivery's commit message asks for a fresh build (`flavor-ci: rebuild`).
    pub(crate) rebuild: bool,
    /// Whether its green builds go into the ledger.
    pub(crate) trust: Trust,
}

/// What identifies the request: the delivery id (for the log and the record) and the key its
/// body hashes to (the claim, and CodeBuild's idempotency token).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket<'a> {
    pub(crate) delivery: &'a str,
    pub(crate) key: &'a str,
}

impl<'a> Ticket<'a> {
    pub(crate) fn new(delivery: &'a str, key: &'a str) -> Self {
        Self { delivery, key }
    }
}

/// Where the batch buildspec is kept.
#[derive(Debug)]
struct Spec {
    key: String,
    uri: String,
    arn: String,
}

/// Builds `start`: a started batch, nothing to build and why, or a refusal.
pub(crate) async fn run<P: Ports>(
    job: Job<'_, P>,
    ticket: Ticket<'_>,
    settings: &Settings,
    start: Start,
) -> Outcome {
    match steps(job, ticket, settings, start).await {
        Ok(outcome) => outcome,
        Err(refusal) => refusal.into(),
    }
}

async fn steps<P: Ports>(
    job: Job<'_, P>,
    ticket: Ticket<'_>,
    settings: &Settings,
    start: Start,
) -> Result<Outcome, Refusal> {
    let listing = list(job, &start.commit, start.tree_id.as_deref(), settings).await?;
    let compared;
    let changes = match &start.changes {
        ChangesFrom::Delivery(changes) => changes,
        ChangesFrom::Compare { base } => {
            compared = compare(job, base, &start.commit).await?;
            &compared
        }
    };
    let input = BatchInput {
        settings,
        flavors: &listing.flavors,
        links: &listing.links,
        changes,
        ignored: &job.config.ignored,
        variant: start.variant,
        release_id: start.release_id.as_deref(),
    };
    let selection = batch::select(input);
    let inputs = match &selection {
        Selection::Nothing { .. } => Inputs::default(),
        _ => {
            let asked = skip::Asked {
                project: &start.project,
                commit: &start.commit,
                variant: start.variant,
                release_id: start.release_id.as_deref(),
                skip_as: start.skip_as,
                rebuild: start.rebuild,
                trust: &start.trust,
            };
            skip::decide(job, asked, settings, &listing, &selection).await
        }
    };
    let planned = batch::plan_with(input, selection, inputs.skipped.clone());
    let plan = match planned {
        Ok(Plan::Build(plan)) => plan,
        Ok(Plan::Nothing { reason }) => return Ok(nothing(job, start, reason).await),
        Ok(Plan::Skipped(plan)) => return Ok(all_skipped(job, start, plan, inputs.trusted).await),
        Err(e @ PlanError::Generate(_)) => {
            return Err(Refusal::new(
                Fault::Unbuildable,
                format!(
                    "cannot generate the batch buildspec for commit {}: {e}",
                    start.commit
                ),
            ));
        }
        Err(e @ PlanError::NoDocument(_)) => {
            return Err(Refusal::new(Fault::Misconfigured, e.to_string()));
        }
    };
    let spec = spec_place(job, &plan).await;
    info!(
        delivery = ticket.delivery,
        commit = %start.commit,
        project = %start.project,
        flavors = ?plan.selected,
        reason = plan.selection.reason(),
        github_calls = listing.calls,
        "building"
    );
    let mut mine = store_spec(job, &spec, &plan).await?;
    let record = DeliveryRecord {
        delivery: ticket.delivery.to_owned(),
        key: ticket.key.to_owned(),
        state: State::Claimed,
        at: now_ms(),
        git_ref: start.git_ref.clone(),
        after: start.commit.clone(),
        project: start.project.clone(),
        buildspec: spec.uri.clone(),
        flavors: plan.selected.clone(),
        batch_build_id: None,
    };
    if let Some(earlier) = claim(job, ticket, &record, &mut mine).await? {
        return Ok(earlier);
    }
    let batch_id = start_batch(job, ticket, &start, &spec, &mine).await?;
    job.written.keep();
    let mut run = run_record(job, &start, &plan, &record.buildspec, &batch_id);
    run.trusted = inputs.trusted;
    if let Some(keys) = &inputs.keys {
        run.inputs = plan
            .selected
            .iter()
            .filter_map(|f| keys.get(f).map(|k| (f.clone(), k.to_owned())))
            .collect();
    }
    let release = start.variant == Variant::Release;
    let checks = report::open_checks(
        job,
        &run,
        release,
        start.earlier.as_ref().map(|_| plan.selected.as_slice()),
    )
    .await;
    let aggregate = checks.map(|(ids, aggregate)| {
        run.checks = Some(ids);
        aggregate
    });
    if !run.skipped.is_empty() && !release {
        let ids = report::skipped_flavors(job, &run.commit, &run.project, &run.skipped).await;
        if !ids.is_empty() {
            run.checks
                .get_or_insert_with(Default::default)
                .flavors
                .extend(ids);
        }
    }
    keep_records(job, ticket, record, &run).await;
    Ok(started(job, start, *plan, spec, batch_id, aggregate).await)
}

/// The run record of a batch that started: the plan's flavors, and those an earlier run's
/// re-run carries over.
fn run_record<P: Ports>(
    job: Job<'_, P>,
    start: &Start,
    plan: &BatchPlan,
    buildspec: &str,
    batch_id: &str,
) -> RunRecord {
    let mut run = plan.run_record(&run_context(job, start), batch_id, buildspec, now_ms());
    run.merge_group.clone_from(&start.merge_group);
    run.announce = start.announce;
    if let Some(earlier) = &start.earlier {
        run.carry_from(earlier);
    }
    run
}

/// Where and why `start` runs, for its run record.
fn run_context<P: Ports>(job: Job<'_, P>, start: &Start) -> RunContext {
    RunContext {
        project: start.project.clone(),
        commit: start.commit.clone(),
        git_ref: start.git_ref.clone(),
        pull_request: start.pull_request,
        trigger: start.trigger,
        repository: job.config.repository.clone(),
        default_branch: start.default_branch,
    }
}

/// The flavors at the commit.
async fn list<P: Ports>(
    job: Job<'_, P>,
    commit: &str,
    tree_id: Option<&str>,
    settings: &Settings,
) -> Result<Listing, Refusal> {
    let repo = &job.config.repository;
    match job
        .deps
        .github
        .flavors(repo, commit, tree_id, settings)
        .await
    {
        Ok(listing) => Ok(listing),
        Err(ListError::Api(e)) => Err(e.into()),
        Err(ListError::Repository(e)) => Err(Refusal::new(
            Fault::Unbuildable,
            format!("cannot list the flavors at commit {commit}: {e}"),
        )),
    }
}

/// The changes GitHub's comparison of `base...commit` lists (a pull request).
async fn compare<P: Ports>(job: Job<'_, P>, base: &str, commit: &str) -> Result<Changes, Refusal> {
    let changes = job
        .deps
        .github
        .changed_files(&job.config.repository, base, commit)
        .await?;
    Ok(changes)
}

/// Nothing affected: a required check is never left waiting, so the aggregate succeeds.
async fn nothing<P: Ports>(job: Job<'_, P>, start: Start, reason: String) -> Outcome {
    let release = start.variant == Variant::Release;
    let verdict = Verdict::nothing(&reason);
    let aggregate = post_aggregate(job, &start.commit, release, verdict).await;
    Outcome::Nothing {
        reason,
        context: start.context,
        aggregate,
    }
}

/// Every selected flavor already built green with identical inputs: no batch starts, the
/// aggregate succeeds with the evidence, the ref's older batches stop, and a finished run
/// record says what was skipped.
async fn all_skipped<P: Ports>(
    job: Job<'_, P>,
    start: Start,
    plan: SkippedPlan,
    trusted: bool,
) -> Outcome {
    let region = job.deps.region.get().await;
    let now = now_ms();
    let skipped = &plan.skipped;
    let build_url =
        |s: &Skipped| flavor_ci::layout::console_build_url(region, &start.project, &s.build_id);
    let evidence: Vec<String> = skipped
        .iter()
        .map(|(flavor, s)| {
            let link = format!("[{}]({})", s.build_id, build_url(s));
            format!("- `{flavor}`: {}", s.evidence(now, &link))
        })
        .collect();
    let n = skipped.len();
    let reason = format!(
        "{} selected: identical inputs already built green, so nothing was built",
        if n == 1 {
            "the one flavor".to_owned()
        } else {
            format!("all {n} flavors")
        }
    );
    let verdict = Verdict {
        text: flavor_ci::runs::StatusText {
            state: "success",
            description: format!(
                "{n} flavor{} skipped: identical inputs built green",
                if n == 1 { "" } else { "s" }
            ),
        },
        check: flavor_ci_aws::github::checks::CheckState::Completed("success"),
        summary: format!(
            "Nothing was built: every flavor this change selects ({}) already built green with identical inputs.\n\n{}\n",
            plan.selection.reason(),
            evidence.join("\n")
        ),
        button: None,
        external_id: None,
        target: skipped.values().next().map(build_url),
    };
    let release = start.variant == Variant::Release;
    let aggregate = post_aggregate(job, &start.commit, release, verdict).await;
    report::skipped_flavors(job, &start.commit, &start.project, skipped).await;
    // The ref's newer commit needs no build: the batches of its older ones are stopped.
    if start.supersede {
        let stopping = supersede(job, &start, None).await;
        info!(git_ref = %start.git_ref, ?stopping, "superseded by a commit whose flavors all built green before");
    }
    let mut run = plan.run_record(&run_context(job, &start), now);
    run.merge_group.clone_from(&start.merge_group);
    run.announce = start.announce;
    run.trusted = trusted;
    let (store, config) = (&job.deps.store, job.config);
    let json = serde_json::to_vec(&run).unwrap_or_default();
    let key = run_key(&config.root, &run.batch_id);
    if let Err(e) = store
        .put(&config.bucket, &key, &json, "application/json", RUN_TAG)
        .await
    {
        warn!(error = %e, commit = %start.commit, "the skipped run's record was not written");
    }
    info!(commit = %start.commit, skipped = n, "every selected flavor built green before: nothing started");
    Outcome::Skipped {
        reason,
        context: start.context,
        aggregate,
        skipped: plan
            .skipped
            .into_iter()
            .map(|(f, s)| (f, s.build_id))
            .collect(),
    }
}

/// The spec's key (content-addressed), URI and ARN.
async fn spec_place<P: Ports>(job: Job<'_, P>, plan: &BatchPlan) -> Spec {
    let config = job.config;
    let key = push_spec_key(&config.root, &plan.document);
    let arn = s3_object_arn(
        region_partition(job.deps.region.get().await),
        &config.bucket,
        &key,
    );
    let uri = s3_uri(&config.bucket, &key);
    Spec { key, uri, arn }
}

fn store_failed(e: StoreError) -> Refusal {
    Refusal::new(
        Fault::Unavailable,
        format!("{e}; nothing was started; redeliver the push"),
    )
}

/// Writes the batch buildspec (once per content); returns what this request wrote.
async fn store_spec<P: Ports>(
    job: Job<'_, P>,
    spec: &Spec,
    plan: &BatchPlan,
) -> Result<Vec<Written>, Refusal> {
    let put = job
        .deps
        .store
        .put_if_absent(
            &job.config.bucket,
            &spec.key,
            plan.document.yaml.as_bytes(),
            "application/yaml",
            PUSH_SPEC_TAG,
        )
        .await
        .map_err(store_failed)?;
    let mut mine = Vec::new();
    if let Put::Created { version } = put {
        mine.push(Written {
            key: spec.key.clone(),
            version,
        });
    }
    job.written.set(&job.config.bucket, &mine);
    Ok(mine)
}

/// Claims the body with a conditional write of its delivery record. The record is keyed by the
/// signed body and read only when the claim finds one there: reading an absent key needs
/// s3:ListBucket to answer 404 rather than 403, which the role does not have. Returns the
/// answer when an earlier copy of the body decides it.
async fn claim<P: Ports>(
    job: Job<'_, P>,
    ticket: Ticket<'_>,
    record: &DeliveryRecord,
    mine: &mut Vec<Written>,
) -> Result<Option<Outcome>, Refusal> {
    let (store, bucket) = (&job.deps.store, &job.config.bucket);
    let record_key = delivery_key(&job.config.root, ticket.key);
    let claim = record.to_json();
    let put = store
        .put_if_absent(
            bucket,
            &record_key,
            claim.as_bytes(),
            "application/json",
            DELIVERY_TAG,
        )
        .await;
    let claimed = match put {
        Ok(Put::Created { version }) => Written {
            key: record_key,
            version,
        },
        Ok(Put::Existed) => {
            // This body was delivered before: handled, being handled right now by a concurrent
            // copy, or claimed by an invocation that died (then it is taken over).
            let current = match store.get(bucket, &record_key).await {
                Ok(current) => current,
                Err(e) => {
                    // A concurrent copy may be using the spec: it stays.
                    job.written.set(bucket, &[]);
                    return Err(store_failed(e));
                }
            };
            // The spec is left in place on these two answers: the other request uses it.
            match current.as_deref().map(earlier) {
                Some(Earlier::Started(handled)) => {
                    job.written.set(bucket, &[]);
                    return Ok(Some(Outcome::AlreadyHandled(handled)));
                }
                Some(Earlier::InProgress) => {
                    job.written.set(bucket, &[]);
                    return Err(Refusal::new(
                        Fault::Busy,
                        "this delivery is being handled by another request right now and no build has started yet; if none starts, redeliver it in a minute",
                    ));
                }
                // Abandoned, unreadable, or removed since the claim failed: take it over.
                Some(Earlier::Abandoned) | None => {}
            }
            match put_record(job, &record_key, &claim).await {
                Ok(w) => w,
                Err(e) => return Err(failed(job, mine, store_failed(e)).await),
            }
        }
        Err(e) => return Err(failed(job, mine, store_failed(e)).await),
    };
    mine.push(claimed);
    job.written.set(bucket, mine);
    Ok(None)
}

/// Starts the batch at exactly the planned commit with exactly the stored spec.
async fn start_batch<P: Ports>(
    job: Job<'_, P>,
    ticket: Ticket<'_>,
    start: &Start,
    spec: &Spec,
    mine: &[Written],
) -> Result<String, Refusal> {
    let request = BatchRequest {
        project: start.project.clone(),
        source_version: start.commit.clone(),
        buildspec: spec.arn.clone(),
        // The same body within CodeBuild's idempotency window starts one batch at most.
        idempotency_token: ticket.key.to_owned(),
        report_status: job.config.status_context.as_ref().map(|_| false),
    };
    match job.deps.builds.start_batch(&request).await {
        Ok(id) => Ok(id),
        Err(e) => {
            let fault = match e {
                crate::builds::CodeBuildError::Unavailable(_) => Fault::Unavailable,
                _ => Fault::Upstream,
            };
            let refusal = Refusal::new(
                fault,
                format!(
                    "CodeBuild did not start the batch build on {}: {e}",
                    start.project
                ),
            );
            Err(failed(job, mine, refusal).await)
        }
    }
}

/// Once the batch runs: the delivery record says so, the run record is written, and the run is
/// marked open for the reconciler. The batch runs without them, so failures are logged.
async fn keep_records<P: Ports>(
    job: Job<'_, P>,
    ticket: Ticket<'_>,
    record: DeliveryRecord,
    run: &RunRecord,
) {
    let (store, config) = (&job.deps.store, job.config);
    let delivery = ticket.delivery;
    let batch_id = run.batch_id.as_str();
    let record_key = delivery_key(&config.root, ticket.key);
    let record = record.started(batch_id);
    if let Err(e) = put_record(job, &record_key, &record.to_json()).await {
        warn!(error = %e, delivery, "the batch started but its delivery record was not updated");
    }
    // The run record, for `flavor-ci status` and `retry`.
    let run_json = serde_json::to_vec(run).unwrap_or_default();
    if let Err(e) = store
        .put_if_absent(
            &config.bucket,
            &run_key(&config.root, batch_id),
            &run_json,
            "application/json",
            RUN_TAG,
        )
        .await
    {
        warn!(error = %e, batch = %batch_id, "the batch started but its run record was not written");
    }
    // Open until its outcome is posted: the build-events function's reconciler looks at it.
    if let Err(e) = store
        .put(
            &config.bucket,
            &open_run_key(&config.root, batch_id),
            b"{}",
            "application/json",
            RUN_TAG,
        )
        .await
    {
        warn!(error = %e, batch = %batch_id, "the batch started but was not marked open");
    }
    // The commit's newest run of the project, for "Re-run all" on its check suite.
    if let Err(e) = store
        .put(
            &config.bucket,
            &commit_run_key(&config.root, &run.project, &run.commit),
            batch_id.as_bytes(),
            "text/plain",
            RUN_TAG,
        )
        .await
    {
        warn!(error = %e, batch = %batch_id, "the commit's newest run was not recorded");
    }
}

/// The answer for a started batch, after its aggregate is reported and the batches it
/// supersedes are stopped.
async fn started<P: Ports>(
    job: Job<'_, P>,
    start: Start,
    plan: BatchPlan,
    spec: Spec,
    batch_id: String,
    checks: Option<Aggregate>,
) -> Outcome {
    let aggregate = match checks {
        Some(aggregate) => Some(aggregate),
        None => {
            let region = job.deps.region.get().await;
            let target = flavor_ci::layout::console_batch_url(region, &start.project, &batch_id);
            let building = flavor_ci::runs::building_status(plan.flavors.len());
            let release = start.variant == Variant::Release;
            let verdict = Verdict {
                target: Some(target),
                ..Verdict::waiting(building.description, "")
            };
            post_aggregate(job, &start.commit, release, verdict).await
        }
    };
    let superseded = if start.supersede {
        Some(supersede(job, &start, Some(&batch_id)).await)
    } else {
        None
    };
    let BatchPlan {
        selection,
        selected,
        skipped,
        ..
    } = plan;
    let (reason, why) = match selection {
        Selection::Some { reason, why, .. } => (reason, Some(why)),
        Selection::All { reason } | Selection::Nothing { reason } => (reason, None),
    };
    Outcome::Started(Box::new(Started {
        reason,
        aggregate,
        superseded,
        why,
        batch_build_id: batch_id,
        project: start.project,
        source_version: start.commit,
        buildspec: spec.uri,
        buildspec_arn: spec.arn,
        flavors: selected,
        context: start.context,
        skipped: skipped.into_iter().map(|(f, s)| (f, s.build_id)).collect(),
    }))
}

/// Records `batch_id` as the ref's newest batch (none: the newest commit needs no batch) and
/// stops the ones it replaces.
async fn supersede<P: Ports>(job: Job<'_, P>, start: &Start, batch_id: Option<&str>) -> Stopping {
    let git_ref = &start.git_ref;
    let newest = batch_id.map(|id| superseded::started(id, &start.commit));
    let done = superseded::replace_and_stop(
        &job.deps.store,
        &job.deps.builds,
        &job.config.bucket,
        &job.config.root,
        git_ref,
        newest,
    )
    .await;
    match done {
        Ok(done) => Stopping::Done {
            stopped: done.stopped,
            not_stopped: done.not_stopped,
        },
        Err(e) => {
            warn!(error = %e, git_ref, "the superseded batches were not stopped");
            Stopping::Failed(format!(
                "the batches running for {git_ref} could not be looked up: {e}"
            ))
        }
    }
}

/// Writes a delivery record over whatever is there.
async fn put_record<P: Ports>(
    job: Job<'_, P>,
    key: &str,
    text: &str,
) -> Result<Written, StoreError> {
    job.deps
        .store
        .put(
            &job.config.bucket,
            key,
            text.as_bytes(),
            "application/json",
            DELIVERY_TAG,
        )
        .await
}

/// Removes what this request wrote, then returns `refusal`.
async fn failed<P: Ports>(job: Job<'_, P>, mine: &[Written], refusal: Refusal) -> Refusal {
    job.written.set(&job.config.bucket, mine);
    cleanup(&job.deps.store, job.written).await;
    refusal
}

/// Removes what a failed delivery wrote (nothing once its batch started).
pub(crate) async fn cleanup<S: ObjectStore>(store: &S, written: &UndoLog) {
    match written
        .undo(store, std::time::Duration::from_millis(1500))
        .await
    {
        Undone::Nothing | Undone::Removed(_) => {}
        Undone::Failed(e) => warn!(error = %e, "removing what a failed delivery wrote failed"),
        Undone::TimedOut => warn!("removing what a failed delivery wrote timed out"),
    }
}
