#!/usr/bin/env python3
"""Times `flavor-ci plan` as a whole process on a git repository of 500 flavors (a third of them
links into a vendored directory): committed (`--base HEAD~1 --head HEAD`), the working tree
against the merge base, and a push delivery (`--event`). Each change touches one flavor, which
another flavor depends on. Target: under 50 ms median for each. Exit status 1 when missed.

Usage: python3 benches/plan_process.py [--runs N]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "flavor-ci"
FLAVORS, TARGET_MS = 500, 50.0


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=b@example.com", "-c", "user.name=b", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def make_repo(base: Path) -> Path:
    repo = base / "repo"
    (repo / "flavors").mkdir(parents=True)
    (repo / "vendor").mkdir()
    for i in range(FLAVORS):
        name = f"flavor-{i:04d}"
        target = repo / ("vendor" if i % 3 == 2 else "flavors") / name
        target.mkdir()
        (target / "Dockerfile").write_text(f"FROM base-{i}\n")
        if i % 3 == 2:
            (repo / "flavors" / name).symlink_to(Path("..") / "vendor" / name)
    (repo / "flavor-ci.yaml").write_text(
        f"batch:\n  max-builds: {FLAVORS}\nflavors:\n  flavor-0001:\n    depend-on: [flavor-0000]\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first")
    git(repo, "switch", "-qc", "topic")
    (repo / "flavors/flavor-0000/Dockerfile").write_text("FROM changed\n")
    git(repo, "commit", "-qam", "change flavor-0000")
    (repo / "vendor/flavor-0002/Dockerfile").write_text("FROM changed too\n")  # uncommitted
    return repo


def median_ms(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "-p", "flavor-ci-cli"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        head = git(repo, "rev-parse", "HEAD")
        event = Path(tmp) / "push.json"
        event.write_text(json.dumps({
            "ref": "refs/heads/main", "after": head, "repository": {"full_name": "acme/slc"},
            "commits": [{"modified": ["flavors/flavor-0000/Dockerfile"]}],
        }))
        base = [str(BINARY), "plan", "--repo", str(repo)]
        cases = {
            "committed (--base HEAD~1 --head HEAD)": base + ["--base", "HEAD~1", "--head", "HEAD"],
            "working tree against the merge base": base,
            "a push delivery (--event)": base + ["--event", str(event)],
        }
        print(f"flavor-ci plan, {FLAVORS} flavors ({FLAVORS // 3} links), median of {args.runs} runs:")
        failed = False
        for name, command in cases.items():
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            ms = median_ms(command, args.runs)
            ok = ms < TARGET_MS
            failed |= not ok
            first = out.splitlines()[1] if len(out.splitlines()) > 1 else out.strip()
            print(f"  {'PASS' if ok else 'FAIL'}  {ms:7.2f} ms  {name}: {first}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
