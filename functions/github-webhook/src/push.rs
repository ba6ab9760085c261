//! A verified push, end to end: the flavors at the pushed commit, the batch buildspec written to
//! S3, the delivery claimed, the batch started, and what a failure wrote removed again.

use flavor_ci::generate::{self, Role, Variant};
use flavor_ci::layout::{
    DELIVERY_TAG, PUSH_SPEC_TAG, delivery_key, open_run_key, push_spec_key, region_partition,
    run_key, s3_object_arn, s3_uri,
};
use flavor_ci::runs::{RUN_TAG, RunFlavor, RunRecord, RunTrigger};
use flavor_ci::selection::{self, Changes, Selection};
use flavor_ci::settings::Settings;
use flavor_ci::webhook::push::{self, Push, Route, Routing};
use flavor_ci_aws::store::{ObjectStore, Put, Written};
use flavor_ci_aws::undo::{UndoLog, now_ms};
use lambda_runtime::tracing::{info, warn};

use crate::builds::{BatchRequest, Builds};
use crate::config::Config;
use crate::deps::{Deps, cleanup, post_aggregate, settings};
use crate::github::{ListError, list_flavors};
use crate::http::Reply;
use crate::record::{DeliveryRecord, Earlier, State, earlier};
use crate::secrets::SecretSource;
use crate::superseded;

pub(crate) async fn on_push<S, B, K>(
    deps: &Deps<S, B, K>,
    config: &Config,
    delivery: &str,
    key: &str,
    payload: &[u8],
    progress: &UndoLog,
) -> Result<Reply, Reply>
where
    S: ObjectStore,
    B: Builds,
    K: SecretSource,
{
    let push = Push::from_json(payload).map_err(|e| Reply::error(400, e.to_string()))?;
    if let Some(other) = other_repository(config, &push.repository.full_name, "the push is to") {
        return Ok(other);
    }
    let settings = settings(deps, config).await?;
    let routing = Routing {
        branches: config.branches.clone(),
        tags: config.tags.clone(),
        release: match (&config.release_project, settings.release.enabled) {
            (None, _) => Err("no release project is configured (RELEASE_PROJECT)".into()),
            (Some(_), false) => Err("the deployed settings disable the release variant".into()),
            (Some(_), true) => Ok(()),
        },
    };
    let (variant, project, release_id) = match push::route(&push, &routing) {
        Route::Ignore { reason } => return Ok(Reply::new(202, "ignored", reason)),
        Route::Ci { .. } => (Variant::Ci, config.ci_project.clone(), None),
        Route::Release { tag } => (
            Variant::Release,
            config.release_project.clone().unwrap_or_default(),
            Some(tag),
        ),
    };

    let start = Start {
        git_ref: push.git_ref.clone(),
        commit: push.after.clone(),
        tree_id: push.tree_id().map(str::to_owned),
        variant,
        project,
        release_id,
        changes: ChangesFrom::Delivery(push.changes()),
        about: Vec::new(),
        trigger: RunTrigger::Push,
        pull_request: None,
        default_branch: push
            .repository
            .default_branch
            .as_deref()
            .is_some_and(|b| push.git_ref.strip_prefix("refs/heads/") == Some(b)),
        supersede: variant == Variant::Ci
            && superseded::applies(
                settings.batch.stop_superseded,
                &push.git_ref,
                push.repository.default_branch.as_deref(),
            ),
    };
    build(deps, config, delivery, key, &settings, start, progress).await
}

/// Where the changes come from.
pub(crate) enum ChangesFrom {
    /// The delivery says (a push lists its commits' files).
    Delivery(Changes),
    /// GitHub's comparison of `base...` the commit (a pull request).
    Compare { base: String },
}

/// One batch to start: the commit, where it goes, and what changed.
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
    /// More fields for the answer (`pullRequest`).
    pub(crate) about: Vec<(&'static str, serde_json::Value)>,
    /// Whether the batches flavor-ci started earlier for `git_ref` are stopped.
    pub(crate) supersede: bool,
    /// For the run record.
    pub(crate) trigger: RunTrigger,
    pub(crate) pull_request: Option<u64>,
    /// Whether `git_ref` is the repository's default branch.
    pub(crate) default_branch: bool,
}

/// Lists the flavors at the commit, chooses, writes the spec, claims the delivery and starts
/// the batch; what a failure wrote is removed again.
pub(crate) async fn build<S, B, K>(
    deps: &Deps<S, B, K>,
    config: &Config,
    delivery: &str,
    key: &str,
    settings: &Settings,
    start: Start,
    progress: &UndoLog,
) -> Result<Reply, Reply>
where
    S: ObjectStore,
    B: Builds,
    K: SecretSource,
{
    let Start {
        git_ref,
        commit,
        tree_id,
        variant,
        project,
        release_id,
        changes,
        about,
        supersede,
        trigger,
        pull_request,
        default_branch,
    } = start;
    // The record is keyed by the signed body. It is claimed with a conditional write before the
    // build starts and read only when the claim finds one there: reading an absent key needs
    // s3:ListBucket to answer 404 rather than 403, which the role does not have.
    let record_key = delivery_key(&config.root, key);
    let listing = list(
        deps,
        &config.repository,
        &commit,
        tree_id.as_deref(),
        settings,
    )
    .await?;
    let changes = match changes {
        ChangesFrom::Delivery(changes) => changes,
        ChangesFrom::Compare { base } => {
            // Listing has fetched the token again if GitHub had rejected it.
            let token = match &deps.github_token {
                Some(cache) => Some(cache.get().await.map_err(|e| {
                    Reply::error(503, format!("cannot read the GitHub token: {e}"))
                })?),
                None => None,
            };
            deps.github
                .changed_files(
                    &config.repository,
                    &base,
                    &commit,
                    token.as_deref().map(String::as_str),
                )
                .await
                .map_err(|e| Reply::error(e.status, e.message))?
        }
    };
    let selection = selection::select(
        &changes,
        settings,
        &listing.flavors,
        &listing.links,
        &config.ignored,
    );
    let only = match &selection {
        Selection::Nothing { reason } => {
            let mut reply = Reply::new(202, "ignored", reason.clone());
            for (k, v) in about {
                reply = reply.with(k, v);
            }
            // A required check is never left waiting: nothing to build is a success.
            let text = flavor_ci::runs::StatusText {
                state: "success",
                description: format!("no flavor affected: {reason}"),
            };
            let release = variant == Variant::Release;
            if let Some(status) = post_aggregate(deps, config, &commit, release, &text, None).await
            {
                reply = reply.with("aggregateStatus", status);
            }
            return Ok(reply);
        }
        Selection::All { .. } => None,
        Selection::Some { flavors, .. } => Some(flavors.as_slice()),
    };
    let output = generate::generate(generate::Request {
        settings,
        flavors: &listing.flavors,
        only,
        release_id: release_id.as_deref(),
    })
    .map_err(|e| {
        Reply::error(
            422,
            format!("cannot generate the batch buildspec for commit {commit}: {e}"),
        )
    })?;
    let Some(doc) = output.document(variant, Role::Batch) else {
        return Err(Reply::error(
            500,
            format!(
                "the settings produced no {} batch buildspec",
                variant.name()
            ),
        ));
    };
    let spec_key = push_spec_key(&config.root, doc);
    let spec_arn = s3_object_arn(
        region_partition(deps.region.get().await),
        &config.bucket,
        &spec_key,
    );
    let spec_uri = s3_uri(&config.bucket, &spec_key);
    info!(
        delivery,
        commit = %commit,
        project = %project,
        flavors = ?output.selected,
        reason = selection.reason(),
        github_calls = listing.calls,
        "building"
    );

    let store_failed = |e: flavor_ci_aws::store::StoreError| {
        Reply::error(503, format!("{e}; nothing was started; redeliver the push"))
    };
    let put = deps
        .store
        .put_if_absent(
            &config.bucket,
            &spec_key,
            doc.yaml.as_bytes(),
            "application/yaml",
            PUSH_SPEC_TAG,
        )
        .await
        .map_err(store_failed)?;
    let mut mine = Vec::new();
    if let Put::Created { version } = put {
        mine.push(Written {
            key: spec_key.clone(),
            version,
        });
    }
    progress.set(&config.bucket, &mine);

    let record = DeliveryRecord {
        delivery: delivery.to_owned(),
        key: key.to_owned(),
        state: State::Claimed,
        at: now_ms(),
        git_ref: git_ref.clone(),
        after: commit.clone(),
        project: project.clone(),
        buildspec: spec_uri.clone(),
        flavors: output.selected.clone(),
        batch_build_id: None,
    };
    let claim = record.to_json();
    let claimed = match deps
        .store
        .put_if_absent(
            &config.bucket,
            &record_key,
            claim.as_bytes(),
            "application/json",
            DELIVERY_TAG,
        )
        .await
    {
        Ok(Put::Created { version }) => Written {
            key: record_key.clone(),
            version,
        },
        Ok(Put::Existed) => {
            // This body was delivered before: handled, being handled right now by a concurrent
            // copy, or claimed by an invocation that died (then it is taken over).
            let current = match deps.store.get(&config.bucket, &record_key).await {
                Ok(current) => current,
                Err(e) => {
                    // A concurrent copy may be using the spec: it stays.
                    progress.set(&config.bucket, &[]);
                    return Err(store_failed(e));
                }
            };
            // The spec is left in place on these two answers: the other request uses it.
            match current.as_deref().map(earlier) {
                Some(Earlier::Started(reply)) => {
                    progress.set(&config.bucket, &[]);
                    return Ok(reply);
                }
                Some(Earlier::InProgress) => {
                    progress.set(&config.bucket, &[]);
                    return Err(Reply::error(
                        409,
                        "this delivery is being handled by another request right now and no build has started yet; if none starts, redeliver it in a minute",
                    ));
                }
                // Abandoned, unreadable, or removed since the claim failed: take it over.
                Some(Earlier::Abandoned) | None => {}
            }
            match put_record(&deps.store, config, &record_key, &claim).await {
                Ok(w) => w,
                Err(e) => return Err(failed(deps, config, progress, &mine, store_failed(e)).await),
            }
        }
        Err(e) => return Err(failed(deps, config, progress, &mine, store_failed(e)).await),
    };
    mine.push(claimed);
    progress.set(&config.bucket, &mine);

    let request = BatchRequest {
        project: project.clone(),
        source_version: commit.clone(),
        buildspec: spec_arn.clone(),
        // The same body within CodeBuild's idempotency window starts one batch at most.
        idempotency_token: key.to_owned(),
        report_status: config.status_context.as_ref().map(|_| false),
    };
    let batch_id = match deps.builds.start_batch(&request).await {
        Ok(id) => id,
        Err(e) => {
            let reply = Reply::error(
                502,
                format!("CodeBuild did not start the batch build on {project}: {e}"),
            );
            return Err(failed(deps, config, progress, &mine, reply).await);
        }
    };
    progress.keep();
    let record = record.started(&batch_id);
    if let Err(e) = put_record(&deps.store, config, &record_key, &record.to_json()).await {
        warn!(error = %e, delivery, "the batch started but its delivery record was not updated");
    }
    // The run record, for `flavor-ci status` and `retry`; the batch runs without it.
    let run = RunRecord {
        batch_id: batch_id.clone(),
        project: project.clone(),
        commit: commit.clone(),
        git_ref: git_ref.clone(),
        pull_request,
        trigger,
        flavors: output
            .selected
            .iter()
            .filter_map(|name| listing.flavors.get(name))
            .map(|f| RunFlavor {
                name: f.name.as_str().to_owned(),
                identifier: f.identifier.clone(),
            })
            .collect(),
        started_at: flavor_ci_aws::undo::now_ms(),
        buildspec: spec_uri.clone(),
        repository: config.repository.clone(),
        default_branch,
        builds: Default::default(),
        finished: None,
    };
    let run_json = serde_json::to_vec(&run).unwrap_or_default();
    if let Err(e) = deps
        .store
        .put_if_absent(
            &config.bucket,
            &run_key(&config.root, &batch_id),
            &run_json,
            "application/json",
            RUN_TAG,
        )
        .await
    {
        warn!(error = %e, batch = %batch_id, "the batch started but its run record was not written");
    }
    // Open until its outcome is posted: the build-events function's reconciler looks at it.
    if let Err(e) = deps
        .store
        .put(
            &config.bucket,
            &open_run_key(&config.root, &batch_id),
            b"{}",
            "application/json",
            RUN_TAG,
        )
        .await
    {
        warn!(error = %e, batch = %batch_id, "the batch started but was not marked open");
    }
    let aggregate = post_aggregate(
        deps,
        config,
        &commit,
        variant == Variant::Release,
        &flavor_ci::runs::building_status(run.flavors.len()),
        Some(flavor_ci::layout::console_batch_url(
            deps.region.get().await,
            &project,
            &batch_id,
        )),
    )
    .await;
    let mut reply = Reply::new(200, "started", selection.reason());
    if let Some(status) = aggregate {
        reply = reply.with("aggregateStatus", status);
    }
    if supersede {
        let newest = superseded::started(&batch_id, &commit);
        match superseded::replace_and_stop(
            &deps.store,
            &deps.builds,
            &config.bucket,
            &config.root,
            &git_ref,
            Some(newest),
        )
        .await
        {
            Ok(done) => {
                reply = reply.with("stopped", done.stopped);
                if !done.not_stopped.is_empty() {
                    reply = reply.with("notStopped", not_stopped(&done.not_stopped));
                }
            }
            Err(e) => {
                warn!(error = %e, git_ref, "the batch started, but the superseded ones were not stopped");
                reply = reply.with(
                    "notStopped",
                    format!("the batches running for {git_ref} could not be looked up: {e}"),
                );
            }
        }
    }
    // Why each flavor builds (the path or rule that selected it); when every flavor builds,
    // the message is the one reason.
    let reply = match &selection {
        Selection::Some { why, .. } => reply.with(
            "why",
            why.iter()
                .map(|(f, w)| (f.clone(), serde_json::Value::from(w.as_str())))
                .collect::<serde_json::Map<_, _>>(),
        ),
        _ => reply,
    };
    let mut reply = reply
        .with("batchBuildId", batch_id)
        .with("project", project)
        .with("sourceVersion", commit.clone())
        .with("buildspec", spec_uri)
        .with("buildspecArn", spec_arn)
        .with("flavors", output.selected.clone());
    for (k, v) in about {
        reply = reply.with(k, v);
    }
    Ok(reply)
}

/// Writes a delivery record over whatever is there.
async fn put_record<S: ObjectStore>(
    store: &S,
    config: &Config,
    key: &str,
    text: &str,
) -> Result<Written, flavor_ci_aws::store::StoreError> {
    store
        .put(
            &config.bucket,
            key,
            text.as_bytes(),
            "application/json",
            DELIVERY_TAG,
        )
        .await
}

/// Removes what this request wrote, then returns `reply`.
async fn failed<S: ObjectStore, B, K>(
    deps: &Deps<S, B, K>,
    config: &Config,
    progress: &UndoLog,
    mine: &[Written],
    reply: Reply,
) -> Reply {
    progress.set(&config.bucket, mine);
    cleanup(&deps.store, progress).await;
    reply
}

/// The flavors at the pushed commit; a token GitHub rejects is fetched again once.
async fn list<S, B, K: SecretSource>(
    deps: &Deps<S, B, K>,
    repo: &str,
    commit: &str,
    tree_id: Option<&str>,
    settings: &Settings,
) -> Result<crate::github::Listing, Reply> {
    let token_error = |e: crate::secrets::SecretError| {
        Reply::error(503, format!("cannot read the GitHub token: {e}"))
    };
    let mut token = match &deps.github_token {
        Some(cache) => Some(cache.get().await.map_err(token_error)?),
        None => None,
    };
    let mut retried = false;
    loop {
        let result = list_flavors(
            &deps.github,
            repo,
            commit,
            tree_id,
            settings,
            token.as_deref().map(String::as_str),
        )
        .await;
        match result {
            Ok(listing) => return Ok(listing),
            Err(ListError::Api(e)) if e.unauthorized && !retried => {
                retried = true;
                let (Some(cache), Some(stale)) = (&deps.github_token, &token) else {
                    return Err(Reply::error(e.status, e.message));
                };
                match cache.refresh(stale).await.map_err(token_error)? {
                    Some(fresh) => token = Some(fresh),
                    None => return Err(Reply::error(e.status, e.message)),
                }
            }
            Err(ListError::Api(e)) => return Err(Reply::error(e.status, e.message)),
            Err(ListError::Repository(e)) => {
                return Err(Reply::error(
                    422,
                    format!("cannot list the flavors at commit {commit}: {e}"),
                ));
            }
        }
    }
}

/// Batches CodeBuild did not stop, and why, for the answer.
pub(crate) fn not_stopped(list: &[(String, String)]) -> serde_json::Value {
    list.iter()
        .map(|(id, why)| (id.clone(), serde_json::Value::from(why.as_str())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The answer to a delivery about a repository other than the stack's, if it is one.
pub(crate) fn other_repository(config: &Config, repo: &str, what: &str) -> Option<Reply> {
    let expected = &config.repository;
    (!expected.eq_ignore_ascii_case(repo)).then(|| {
        Reply::new(
            202,
            "ignored",
            format!("{what} {repo}, but this stack builds {expected}; ignored"),
        )
    })
}
