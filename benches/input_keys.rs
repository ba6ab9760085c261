//! Input keys for 500 flavors against what a push already does in memory with them: the
//! selection and the batch buildspec's generation (`batch::plan`), measured side by side in one
//! run. The trees are those the webhook reads to list the flavors: the root, the flavors
//! directory, and one tree per flavor's entry.
//!
//! Run: `cargo bench --bench input_keys`. Prints the median and p90 of 50 runs each.

#![allow(clippy::unwrap_used)] // a benchmark of fixed inputs fails loudly by design

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use flavor_ci::batch::{self, BatchInput};
use flavor_ci::flavors::FlavorSet;
use flavor_ci::generate::Variant;
use flavor_ci::glob::Glob;
use flavor_ci::inputs::{KeyInput, MODE_TREE, TreeEntry, Trees, input_keys};
use flavor_ci::selection::Changes;
use flavor_ci::settings::Settings;

fn entry(name: &str, mode: &str, id: String) -> TreeEntry {
    TreeEntry {
        name: name.into(),
        mode: mode.into(),
        id,
    }
}

fn measure(mut f: impl FnMut()) -> (f64, f64) {
    let mut times: Vec<f64> = (0..50)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 9 / 10])
}

fn main() {
    let names: Vec<String> = (0..500).map(|i| format!("flavor-{i:04}")).collect();
    let flavors = FlavorSet::from_names(names.iter().map(String::as_str)).unwrap();
    let settings = Settings::from_json(serde_json::json!({"batch": {"max-builds": 1000}})).unwrap();
    let mut trees = Trees::new("root");
    let dir: Vec<TreeEntry> = names
        .iter()
        .map(|n| {
            entry(
                n,
                MODE_TREE,
                format!("{:040x}", n.len() * 7919 + n.as_bytes()[10] as usize),
            )
        })
        .collect();
    trees.insert("flavors-tree", Arc::new(dir));
    let mut root: Vec<TreeEntry> = (0..40)
        .map(|i| entry(&format!("file-{i}"), "100644", format!("{i:040x}")))
        .collect();
    root.push(entry("flavors", MODE_TREE, "flavors-tree".into()));
    trees.insert("root", Arc::new(root));
    let ignored = Glob::list("docs").unwrap();
    let changes = Changes::Paths(BTreeSet::from(["build.sh".to_owned()]));
    let input = BatchInput {
        settings: &settings,
        flavors: &flavors,
        links: &[],
        changes: &changes,
        ignored: &ignored,
        variant: Variant::Ci,
        release_id: None,
    };
    let (plan_median, plan_p90) = measure(|| {
        batch::plan(input).unwrap();
    });
    let (keys_median, keys_p90) = measure(|| {
        let keys = input_keys(KeyInput {
            trees: &trees,
            settings: &settings,
            flavors: &flavors,
            links: &[],
            ignored: &ignored,
            project: "ci",
            variant: Variant::Ci,
            release_id: None,
        })
        .unwrap();
        assert_eq!(keys.keys.len(), 500);
    });
    println!(
        "500 flavors, every one selected: plan (selection + batch buildspec) median {plan_median:.2} ms, p90 {plan_p90:.2} ms"
    );
    println!(
        "500 flavors: input keys median {keys_median:.2} ms, p90 {keys_p90:.2} ms ({:.2}× the plan; target: keys and look-ups under 50 ms)",
        keys_median / plan_median
    );
}
