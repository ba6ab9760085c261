//! The green ledger of a deployed stack (`green/<key>` under its `BuildspecsRoot`): what
//! `flavor-ci plan --stack` says of each key, and `flavor-ci ledger`, which lists records and
//! forgets the ones an operator does not trust.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::process::ExitCode;

use flavor_ci::inputs::ledger::{BuildFacts, GreenRecord, ago, trust};
use flavor_ci::layout::{green_key, green_prefix};
use flavor_ci::settings::Settings;
use serde_json::json;

use super::runs::Records;
use super::{AwsArgs, LedgerArgs, aws_error};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The stack's records, and its CI project (the project the keys are computed for).
pub(crate) async fn open(aws: &AwsArgs, stack: &str) -> Result<(Records, String), String> {
    let config = aws.load().await;
    let records = Records::of(&config, stack).await?;
    let project = records.ci_project.clone().ok_or_else(|| {
        format!(
            "stack {stack} has no CiProjectName output; deploy this version of the template to it"
        )
    })?;
    Ok((records, project))
}

/// The record of each key, if any.
async fn read(records: &Records, keys: &[String]) -> Result<BTreeMap<String, GreenRecord>, String> {
    let mut found = BTreeMap::new();
    for key in keys {
        if let Some(bytes) = records.get(&green_key(&records.root, key)).await?
            && let Ok(record) = serde_json::from_slice::<GreenRecord>(&bytes)
        {
            found.insert(key.clone(), record);
        }
    }
    Ok(found)
}

/// What CodeBuild says of these builds.
async fn facts(records: &Records, ids: Vec<String>) -> Result<Vec<BuildFacts>, String> {
    let mut facts = Vec::new();
    for chunk in ids.chunks(100) {
        let out = records
            .codebuild
            .batch_get_builds()
            .set_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| format!("cannot read builds from CodeBuild: {}", aws_error(&e)))?;
        for b in out.builds() {
            let ms = |t: Option<&aws_sdk_codebuild::primitives::DateTime>| {
                t.and_then(|t| u64::try_from(t.to_millis().ok()?).ok())
            };
            facts.push(BuildFacts::new(
                b.id(),
                b.build_status().map(|s| s.as_str()),
                b.project_name(),
                b.resolved_source_version().or(b.source_version()),
                ms(b.start_time()),
                ms(b.end_time()),
            ));
        }
    }
    Ok(facts)
}

/// For `plan --stack`: for each (flavor, key), what the ledger says, checked with CodeBuild as
/// the webhook checks it.
pub(crate) async fn explain(
    records: &Records,
    project: &str,
    settings: &Settings,
    keys: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let wanted: Vec<String> = keys.iter().map(|(_, k)| k.clone()).collect();
    let found = read(records, &wanted).await?;
    let ids = found.values().map(|r| r.build_id.clone()).collect();
    let facts = facts(records, ids).await?;
    let now = now_ms();
    Ok(keys
        .iter()
        .map(|(flavor, key)| {
            let said = match found.get(key) {
                None => "no green record: builds".to_owned(),
                Some(record) => {
                    let build = facts.iter().find(|f| f.id == record.build_id);
                    match trust(key, project, record, build, now, settings.skip.max_age.0) {
                        Ok(s) => format!("skipped: {}", s.evidence(now, &s.build_id)),
                        Err(why) => format!("builds: the green record does not hold ({why})"),
                    }
                }
            };
            (flavor.clone(), said)
        })
        .collect())
}

/// `flavor-ci ledger`: lists the records (of some flavors), or forgets some.
pub(crate) async fn run(args: &LedgerArgs) -> Result<ExitCode, String> {
    let config = args.aws.load().await;
    let records = Records::of(&config, &args.stack).await?;
    let mut out = io::stdout().lock();
    if !args.forget.is_empty() {
        for key in &args.forget {
            let key = key.trim_start_matches("green/");
            let at = green_key(&records.root, key);
            let Some(bytes) = records.get(&at).await? else {
                return Err(format!(
                    "no green record has key {key}; `flavor-ci ledger --stack {}` lists them",
                    args.stack
                ));
            };
            let record = serde_json::from_slice::<GreenRecord>(&bytes).ok();
            records
                .s3
                .delete_object()
                .bucket(&records.bucket)
                .key(&at)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "cannot remove s3://{}/{at}: {}",
                        records.bucket,
                        aws_error(&e)
                    )
                })?;
            let _ = match record {
                Some(r) => writeln!(
                    out,
                    "forgot {key} ({} built green in {} at {}): its next selection builds",
                    r.flavor, r.build_id, r.commit
                ),
                None => writeln!(out, "forgot {key} (an unreadable record)"),
            };
        }
        return Ok(ExitCode::SUCCESS);
    }
    let prefix = green_prefix(&records.root);
    let keys: Vec<String> = records
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    let found = read(&records, &keys).await?;
    let now = now_ms();
    let mut shown: Vec<&GreenRecord> = found
        .values()
        .filter(|r| args.flavors.is_empty() || args.flavors.contains(&r.flavor))
        .collect();
    shown.sort_by_key(|r| std::cmp::Reverse(r.at));
    if args.json {
        let _ = writeln!(out, "{}", json!({ "records": shown }));
        return Ok(ExitCode::SUCCESS);
    }
    if shown.is_empty() {
        let _ = writeln!(
            out,
            "the green ledger has no records{}",
            if args.flavors.is_empty() {
                ""
            } else {
                " of these flavors"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let width = shown
        .iter()
        .map(|r| r.flavor.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:<width$}  {:<65}  {:<12}  {:<14}  build",
        "flavor", "key", "commit", "built"
    );
    for r in &shown {
        let _ = writeln!(
            out,
            "{:<width$}  {:<65}  {:<12}  {:<14}  {} ({})",
            r.flavor,
            r.key,
            r.commit.get(..12).unwrap_or(&r.commit),
            ago(now.saturating_sub(r.at) / 1000),
            r.build_id,
            r.git_ref
        );
    }
    let _ = writeln!(
        out,
        "{} record{}; forget one with: flavor-ci ledger --stack {} --forget KEY",
        shown.len(),
        if shown.len() == 1 { "" } else { "s" },
        args.stack
    );
    Ok(ExitCode::SUCCESS)
}
