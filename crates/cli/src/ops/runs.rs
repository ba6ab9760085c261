//! `flavor-ci status` and `flavor-ci retry`: a stack's runs, from the run records its webhook
//! writes (`runs/<batch id>.json` under the stack's `BuildspecsRoot`) and CodeBuild's builds.

use std::io::{self, Write as _};
use std::process::ExitCode;

use aws_config::SdkConfig;
use aws_sdk_codebuild::types::RetryBuildBatchType;
use flavor_ci::layout::{run_key, superseded_key};
use flavor_ci::runs::{self, FlavorState, RunRecord, Superseded};
use serde_json::{Value, json};

use super::{RetryArgs, StatusArgs, aws_error};

/// Where a stack keeps its records.
pub(crate) struct Records {
    pub(crate) bucket: String,
    pub(crate) root: String,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) codebuild: aws_sdk_codebuild::Client,
    /// The stack's CI project (`CiProjectName`).
    pub(crate) ci_project: Option<String>,
}

impl Records {
    pub(crate) async fn of(config: &SdkConfig, stack: &str) -> Result<Self, String> {
        let out = aws_sdk_cloudformation::Client::new(config)
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| format!("cannot read stack {stack}: {}", aws_error(&e)))?;
        let outputs: Vec<_> = out.stacks().iter().flat_map(|s| s.outputs()).collect();
        let output = |key: &str| {
            outputs
                .iter()
                .find(|o| o.output_key() == Some(key))
                .and_then(|o| o.output_value())
                .map(str::to_owned)
        };
        let (Some(bucket), Some(root)) = (output("SpecsBucketName"), output("BuildspecsRoot"))
        else {
            return Err(format!(
                "stack {stack} has no SpecsBucketName and BuildspecsRoot outputs; deploy this version of the template to it"
            ));
        };
        Ok(Self {
            ci_project: output("CiProjectName"),
            bucket,
            root,
            s3: flavor_ci_aws::s3_client(config),
            codebuild: aws_sdk_codebuild::Client::new(config),
        })
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out
                .body
                .collect()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| format!("reading s3://{}/{key} failed: {e}", self.bucket)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(format!(
                "cannot read s3://{}/{key}: {}",
                self.bucket,
                aws_error(&e)
            )),
        }
    }

    async fn record(&self, batch: &str) -> Result<RunRecord, String> {
        let key = run_key(&self.root, batch);
        let bytes = self.get(&key).await?.ok_or_else(|| {
            format!("no run record for batch {batch} (s3://{}/{key}); was it started by this stack's webhook?", self.bucket)
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "the run record s3://{}/{key} is not readable: {e}",
                self.bucket
            )
        })
    }

    /// The deliveries the webhook keeps (`pushes/inbox/`), as stored; one removed or unreadable
    /// meanwhile is left out.
    async fn kept(&self) -> Result<Vec<(String, Value)>, String> {
        let prefix = flavor_ci::layout::inbox_prefix(&self.root);
        let mut kept = Vec::new();
        for key in self.list(&prefix).await? {
            if let Ok(Some(bytes)) = self.get(&key).await
                && let Ok(value) = serde_json::from_slice::<Value>(&bytes)
            {
                let name = key.trim_start_matches(&prefix).trim_end_matches(".json");
                kept.push((name.to_owned(), value));
            }
        }
        Ok(kept)
    }

    /// Every key under `prefix`, page by page.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "cannot list s3://{}/{prefix}: {}",
                        self.bucket,
                        aws_error(&e)
                    )
                })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .map(str::to_owned),
            );
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(keys),
            }
        }
    }

    /// Every run record, for lookups by commit, ref or pull request.
    async fn all(&self) -> Result<Vec<RunRecord>, String> {
        let prefix = format!("{}runs/", self.root);
        let keys: Vec<String> = self
            .list(&prefix)
            .await?
            .into_iter()
            .filter(|k| k.ends_with(".json") && !k.ends_with(".superseded.json"))
            .collect();
        let mut records = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(bytes) = self.get(&key).await?
                && let Ok(record) = serde_json::from_slice::<RunRecord>(&bytes)
            {
                records.push(record);
            }
        }
        Ok(records)
    }

    async fn superseded(&self, batch: &str) -> Result<Option<Superseded>, String> {
        Ok(self
            .get(&superseded_key(&self.root, batch))
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// The batch's status and each flavor's build; a flavor skipped on green evidence is
    /// succeeded, with the build that proved it.
    async fn states(&self, record: &RunRecord) -> Result<(String, Vec<FlavorState>), String> {
        let skipped = |f: &str| {
            record.skipped.get(f).map(|s| FlavorState {
                flavor: f.to_owned(),
                status: "SUCCEEDED".into(),
                seconds: None,
                logs: Some(format!(
                    "skipped: green in {} at {}",
                    s.build_id,
                    s.commit.get(..12).unwrap_or(&s.commit)
                )),
            })
        };
        // Every flavor skipped: no batch was started.
        if record.finished.is_some()
            && record
                .flavors
                .iter()
                .all(|f| record.skipped.contains_key(&f.name))
        {
            let states = record
                .flavors
                .iter()
                .filter_map(|f| skipped(&f.name))
                .collect();
            return Ok(("SUCCEEDED".into(), states));
        }
        let out = self
            .codebuild
            .batch_get_build_batches()
            .ids(&record.batch_id)
            .send()
            .await
            .map_err(|e| format!("cannot read batch {}: {}", record.batch_id, aws_error(&e)))?;
        let Some(batch) = out.build_batches().first() else {
            return Err(format!("CodeBuild does not know batch {}", record.batch_id));
        };
        let status = batch
            .build_batch_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        // identifier → build id
        let builds: Vec<(String, String)> = batch
            .build_groups()
            .iter()
            .filter_map(|g| {
                let id = g
                    .current_build_summary()?
                    .arn()?
                    .split_once('/')?
                    .1
                    .to_owned();
                Some((g.identifier()?.to_owned(), id))
            })
            .collect();
        let ids: Vec<String> = builds.iter().map(|(_, id)| id.clone()).collect();
        let details = if ids.is_empty() {
            Vec::new()
        } else {
            self.codebuild
                .batch_get_builds()
                .set_ids(Some(ids))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "cannot read the builds of batch {}: {}",
                        record.batch_id,
                        aws_error(&e)
                    )
                })?
                .builds()
                .to_vec()
        };
        let states = record
            .flavors
            .iter()
            .map(|f| {
                if let Some(state) = skipped(&f.name) {
                    return state;
                }
                let build = builds
                    .iter()
                    .find(|(identifier, _)| *identifier == f.identifier)
                    .and_then(|(_, id)| details.iter().find(|b| b.id() == Some(id.as_str())));
                FlavorState {
                    flavor: f.name.clone(),
                    status: build
                        .and_then(|b| b.build_status())
                        .map_or("NOT_STARTED".to_owned(), |s| s.as_str().to_owned()),
                    seconds: build.and_then(|b| {
                        let start = b.start_time()?.secs();
                        let end = b.end_time().map_or_else(now_secs, |t| t.secs());
                        u64::try_from(end - start).ok()
                    }),
                    logs: build
                        .and_then(|b| b.logs())
                        .and_then(|l| l.deep_link())
                        .map(str::to_owned),
                }
            })
            .collect();
        Ok((status, states))
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `flavor-ci status`: the run asked for, as a table or JSON; exit 0 all succeeded, 1 any
/// failed, 4 any still running.
/// `flavor-ci status --deliveries`: the kept deliveries, retrying or given up. Exit status 0
/// when none is kept, 4 while any is retrying, 1 when any was given up.
async fn deliveries(records: &Records, json_out: bool) -> Result<ExitCode, String> {
    let kept = records.kept().await?;
    let mut out = io::stdout().lock();
    if json_out {
        let list: Vec<Value> = kept
            .iter()
            .map(|(key, v)| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("body");
                    o.insert("key".into(), json!(key));
                }
                v
            })
            .collect();
        let _ = writeln!(out, "{}", json!(list));
    } else if kept.is_empty() {
        let _ = writeln!(out, "no delivery is kept: every delivery was handled");
    }
    let now = flavor_ci_aws::undo::now_ms();
    let mut code = 0;
    for (key, v) in &kept {
        let state = v["state"].as_str().unwrap_or("?");
        code = match (state, code) {
            ("failed", _) | (_, 1) => 1,
            _ => 4,
        };
        if json_out {
            continue;
        }
        let next = match v["nextAt"].as_u64() {
            Some(at) if at > now => format!("next attempt in {} min", (at - now).div_ceil(60_000)),
            Some(_) => "due now".to_owned(),
            None if state == "received" => "being handled (or its invocation died)".to_owned(),
            None => "not retried".to_owned(),
        };
        let _ = writeln!(
            out,
            "{key}  {}  {} {}  commit {}  {state}, {} attempts, {next}\n    {}",
            v["delivery"].as_str().unwrap_or("?"),
            v["event"].as_str().unwrap_or("?"),
            v["service"]
                .as_str()
                .map(|s| format!("({s})"))
                .unwrap_or_default(),
            v["commit"].as_str().unwrap_or("?"),
            v["attempts"].as_u64().unwrap_or(0),
            v["reason"].as_str().unwrap_or("")
        );
    }
    if !json_out && !kept.is_empty() {
        let _ = writeln!(
            out,
            "handle one again now: flavor-ci dispatch --stack STACK --redeliver <key or delivery id>"
        );
    }
    Ok(ExitCode::from(code))
}

pub(crate) async fn status(args: &StatusArgs) -> Result<ExitCode, String> {
    let config = args.aws.load().await;
    let records = Records::of(&config, &args.stack).await?;
    if args.deliveries {
        return deliveries(&records, args.json).await;
    }
    let record = match &args.batch {
        Some(batch) => records.record(batch).await?,
        None => {
            let wanted_ref = args.git_ref.as_ref().map(|r| {
                if r.starts_with("refs/") {
                    r.clone()
                } else {
                    format!("refs/heads/{r}")
                }
            });
            let found = records
                .all()
                .await?
                .into_iter()
                .filter(|r| {
                    args.commit
                        .as_ref()
                        .is_none_or(|c| r.commit.starts_with(c.as_str()))
                })
                .filter(|r| wanted_ref.as_ref().is_none_or(|w| &r.git_ref == w))
                .filter(|r| args.pr.is_none_or(|n| r.pull_request == Some(n)))
                .filter(|r| {
                    args.merge_group.as_ref().is_none_or(|sha| {
                        r.merge_group.is_some() && r.commit.starts_with(sha.as_str())
                    })
                })
                .max_by_key(|r| r.started_at);
            found.ok_or("no run matches; flavor-ci status --batch ID names one directly")?
        }
    };
    let (batch_status, states) = records.states(&record).await?;
    let superseded = if batch_status == "STOPPED" {
        records.superseded(&record.batch_id).await?
    } else {
        None
    };
    let overall = runs::overall(&states);
    let mut out = io::stdout().lock();
    if args.json {
        let value = json!({
            "run": record,
            "batchStatus": batch_status,
            "overall": overall,
            "flavors": states,
            "supersededBy": superseded.as_ref().map(|s| s.by.clone()),
            "stoppedFor": superseded.as_ref().and_then(|s| s.reason.clone()),
            "skippedBuilds": record.saved().0,
            "savedBuildSeconds": record.saved().1,
        });
        let _ = writeln!(out, "{value}");
    } else {
        if let Some(group) = &record.merge_group {
            let prs: Vec<String> = group
                .pull_requests
                .iter()
                .map(|n| format!("#{n}"))
                .collect();
            let _ = writeln!(
                out,
                "merge group into {} of {} (compared with {})",
                group.base_ref.trim_start_matches("refs/heads/"),
                if prs.is_empty() {
                    "unnamed pull requests".to_owned()
                } else {
                    prs.join(", ")
                },
                group.base_sha
            );
        }
        let _ = write!(out, "{}", runs::table(&record, &states));
        if let Some(s) = superseded {
            match &s.reason {
                Some(reason) => {
                    let _ = writeln!(out, "stopped: {reason}");
                }
                None => {
                    let _ = writeln!(out, "stopped: superseded by {}", s.by);
                }
            }
        }
    }
    Ok(ExitCode::from(overall.exit_code()))
}

/// `flavor-ci retry`: the failed builds of a failed batch again; refuses, saying why, when the
/// batch did not fail or was stopped.
pub(crate) async fn retry(args: &RetryArgs) -> Result<(), String> {
    let config = args.aws.load().await;
    let records = Records::of(&config, &args.stack).await?;
    let record = records.record(&args.batch).await?;
    let (batch_status, states) = records.states(&record).await?;
    match batch_status.as_str() {
        "IN_PROGRESS" => {
            return Err(format!(
                "batch {} is still running; retry it once it has ended",
                record.batch_id
            ));
        }
        "SUCCEEDED" => {
            return Err(format!(
                "batch {} succeeded: nothing to retry",
                record.batch_id
            ));
        }
        "STOPPED" => {
            return Err(match records.superseded(&record.batch_id).await? {
                Some(s) => format!(
                    "batch {} was stopped because {} replaced it; retry that one, or start a run with flavor-ci dispatch",
                    record.batch_id, s.by
                ),
                None => format!(
                    "batch {} was stopped by hand; start a new run with flavor-ci dispatch",
                    record.batch_id
                ),
            });
        }
        _ => {}
    }
    let failed: Vec<&str> = states
        .iter()
        .filter(|s| s.status != "SUCCEEDED")
        .map(|s| s.flavor.as_str())
        .collect();
    records
        .codebuild
        .retry_build_batch()
        .id(&record.batch_id)
        .retry_type(RetryBuildBatchType::RetryFailedBuilds)
        .send()
        .await
        .map_err(|e| {
            format!(
                "CodeBuild did not retry batch {}: {}",
                record.batch_id,
                aws_error(&e)
            )
        })?;
    let _ = writeln!(
        io::stdout(),
        "retrying the failed builds of batch {}: {}",
        record.batch_id,
        failed.join(", ")
    );
    Ok(())
}
