"""Checks that every AWS build resolves its third-party dependencies with one feature set.

Cargo enables a dependency's features from the packages a command selects. The functions are
built one at a time (`cargo lambda watch -p …`, `sam build`) and the command line with its `aws`
feature; when those selections enable different features of a shared crate, that crate and
everything above it compile once per selection. crates/feature-union asks for the union; this
check compares each selection with the union (with `cargo tree`, no compiling) and names any
crate whose features differ, so the manifest can be completed.

Usage: python3 tests/feature_union.py
"""

import json
import subprocess
import sys

# Each build the tests and `sam build` run, as cargo selects it.
SELECTIONS = {
    "flavor-ci-cli --features aws": ["-p", "flavor-ci-cli", "--features", "aws"],
    "github-webhook": ["-p", "github-webhook"],
    "build-events": ["-p", "build-events"],
    "buildspec-resource": ["-p", "buildspec-resource"],
    "buildspec-resource --features fault-injection": ["-p", "buildspec-resource", "--features", "fault-injection"],
}
UNION = ["-p", "flavor-ci-cli", "-p", "github-webhook", "-p", "build-events", "-p", "buildspec-resource",
         "--features", "flavor-ci-cli/aws,buildspec-resource/fault-injection"]


def workspace_members():
    """The workspace's own packages: small, and their features may differ per selection."""
    run = subprocess.run(["cargo", "metadata", "--locked", "--no-deps", "--format-version", "1"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"cargo metadata failed:\n{run.stderr}")
    return {p["name"] for p in json.loads(run.stdout)["packages"]}



def features(args, ours):
    """Package → the feature sets cargo resolves for it (normal and build dependencies)."""
    run = subprocess.run(
        ["cargo", "tree", "--locked", "-e", "normal,build", "--prefix", "none", "--no-dedupe",
         "-f", "{p}|{f}", *args],
        capture_output=True, text=True,
    )
    if run.returncode != 0:
        sys.exit(f"cargo tree {' '.join(args)} failed:\n{run.stderr}")
    out = run.stdout
    found = {}
    for line in out.splitlines():
        if "|" not in line:
            continue
        package, feats = line.split("|", 1)
        name, version = package.split()[:2]
        if name in ours:
            continue
        found.setdefault(f"{name} {version}", set()).add(feats.strip())
    return found


def main():
    ours = workspace_members()
    union = features(UNION, ours)
    problems = []
    for label, args in SELECTIONS.items():
        for package, feats in sorted(features(args, ours).items()):
            if feats != union.get(package):
                problems.append(f"{label}: {package} has features {sorted(feats)}, "
                                f"the union {sorted(union.get(package, set()))}")
    if problems:
        print("These builds resolve shared crates differently, so each compiles them again:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        print("Add the union's features for these crates to crates/feature-union/Cargo.toml.", file=sys.stderr)
        return 1
    print(f"{len(SELECTIONS)} builds resolve {len(union)} third-party crates with one feature set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
