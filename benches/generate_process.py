#!/usr/bin/env python3
"""Times `flavor-ci generate` as a whole process for 5, 50, 500 and 5000 flavors.

For each size it builds a repository in a temporary directory (a third of the flavors are
symlinks into a vendored directory, as in real repositories), runs the release binary
repeatedly, and reports wall time (median and p90) and peak RSS (from wait4's rusage).
Targets: 500 flavors under 20 ms wall and under 20 MB peak RSS; per-flavor cost flat
from 500 to 5000 (linear growth). Exit status 1 when a target is missed.

Against the tool it replaces: when exasol-script-languages-container-ci-setup is installed in
the bench's own venv (python3 -m venv benches/.venv-exasol && benches/.venv-exasol/bin/pip
install exasol-script-languages-container-ci-setup==1.8.0), its `generate-buildspecs` (the CI
variant only) and `flavor-ci generate` (CI and release) run in turn on the same 500-flavor tree,
10 pairs, and the ratio of the medians is printed. Target: at least 200x.

Usage: python3 benches/generate_process.py [--runs N] [--old-tool PYTHON]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "flavor-ci"
SIZES = (5, 50, 500, 5000)
TARGET_MS, TARGET_MB, TARGET_SIZE = 20.0, 20.0, 500
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
OLD_TOOL_PYTHON = ROOT / "benches" / ".venv-exasol" / "bin" / "python"
OLD_TOOL_PAIRS, OLD_TOOL_TARGET = 10, 200.0

SETTINGS = """\
batch:
  max-builds: {max_builds}
build:
  image: aws/codebuild/standard:7.0
  secrets-manager:
    DOCKER_USER: Dockerhub:User
    DOCKER_PASSWORD: Dockerhub:AccessToken
  runtime-versions:
    python: 3.10
  phases:
    pre-build:
      commands:
        - echo "$DOCKER_PASSWORD" | docker login --username "$DOCKER_USER" --password-stdin
    build:
      commands:
        - exaslct build --flavor-path "flavors/$FLAVOR"
flavors:
  flavor-0001:
    depend-on: [flavor-0000]
    compute-type: BUILD_GENERAL1_LARGE
"""


def make_repo(base: Path, n: int) -> Path:
    repo = base / f"repo-{n}"
    flavors = repo / "flavors"
    vendor = repo / "vendor" / "flavors"
    flavors.mkdir(parents=True)
    vendor.mkdir(parents=True)
    for i in range(n):
        name = f"flavor-{i:04d}"
        if i % 3 == 2:
            (vendor / name).mkdir()
            (flavors / name).symlink_to(Path("..") / "vendor" / "flavors" / name)
        else:
            (flavors / name).mkdir()
    (repo / "flavor-ci.yaml").write_text(SETTINGS.format(max_builds=max(n, 2)))
    return repo


def run_wall(args: list[str]) -> float:
    """Wall seconds of one generate process."""
    start = time.perf_counter()
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"flavor-ci failed: {proc.stderr.decode()}")
    return wall


def run_peak_rss(args: list[str], report: Path) -> float:
    """Peak RSS in MB of one generate process.

    Measured by GNU time, not by wait4 from here: a child's high-water mark includes the
    memory of the process that forked it (Python's ~14 MB), while GNU time is ~1 MB.
    """
    subprocess.run([TIME, "-f", "%M", "-o", str(report), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return int(report.read_text().split()[-1]) / 1024.0  # %M is in KiB


def against_old_tool(python: Path, base: Path) -> float:
    """Median wall ms of the old tool and of flavor-ci on the same 500-flavor tree, in turn;
    returns and prints the ratio of the medians."""
    repo = base / "repo-500"
    ours = [str(BINARY), "generate", "--repo", str(repo), "--out", str(base / "ours-500")]
    old_out = base / "old-500"
    old_out.mkdir(exist_ok=True)
    theirs = [str(python), "-m", "exasol_script_languages_container_ci_setup.main", "generate-buildspecs",
              "--flavor-root-path", str(repo / "flavors"), "--output-path", str(old_out)]
    run_wall(theirs)
    run_wall(ours)
    old_ms, new_ms = [], []
    for _ in range(OLD_TOOL_PAIRS):
        old_ms.append(run_wall(theirs) * 1000)
        new_ms.append(run_wall(ours) * 1000)
    old_median, new_median = statistics.median(old_ms), statistics.median(new_ms)
    ratio = old_median / new_median
    pair_ratios = sorted(o / n for o, n in zip(old_ms, new_ms))
    print(f"500 flavors, {OLD_TOOL_PAIRS} alternating pairs: old tool {old_median:.1f} ms (CI only), "
          f"flavor-ci {new_median:.2f} ms (CI and release): {ratio:.0f}x "
          f"(pairwise {pair_ratios[0]:.0f}x to {pair_ratios[-1]:.0f}x)")
    return ratio


def main() -> int:
    if not os.access(TIME, os.X_OK):
        sys.exit(f"{TIME} is missing: install GNU time (apt-get install time)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per size (default 40)")
    parser.add_argument("--old-tool", type=Path, default=OLD_TOOL_PYTHON,
                        help="a Python with exasol-script-languages-container-ci-setup installed")
    args = parser.parse_args()

    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "flavor-ci-cli"], cwd=ROOT, check=True)
    print(f"binary: {BINARY} ({BINARY.stat().st_size / 1e6:.2f} MB)")
    print(f"{'flavors':>8} {'median ms':>10} {'p90 ms':>8} {'peak MB':>8} {'µs/flavor':>10} {'output KB':>10}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for n in SIZES:
            repo = make_repo(base, n)
            out = base / f"out-{n}"
            cmd = [str(BINARY), "generate", "--repo", str(repo), "--out", str(out)]
            run_wall(cmd)  # warm the page cache
            walls = sorted(run_wall(cmd) * 1000 for _ in range(args.runs))
            median = statistics.median(walls)
            p90 = walls[int(0.9 * (len(walls) - 1))]
            peak = max(run_peak_rss(cmd, base / "rss") for _ in range(5))
            size_kb = sum(f.stat().st_size for f in out.iterdir()) / 1024
            results[n] = (median, peak)
            print(f"{n:>8} {median:>10.2f} {p90:>8.2f} {peak:>8.1f} {median * 1000 / n:>10.1f} {size_kb:>10.1f}")

        old = against_old_tool(args.old_tool, base) if args.old_tool.exists() else None

    base_ms = results[SIZES[0]][0]
    per_500 = (results[500][0] - base_ms) / (500 - SIZES[0])
    per_5000 = (results[5000][0] - base_ms) / (5000 - SIZES[0])
    ratio = per_5000 / per_500 if per_500 > 0 else float("inf")
    print(f"marginal cost per flavor: {per_500 * 1000:.1f} µs (5→500), {per_5000 * 1000:.1f} µs (5→5000); ratio {ratio:.2f} (1.0 = linear)")

    median, peak = results[TARGET_SIZE]
    checks = [
        (f"{TARGET_SIZE} flavors median wall < {TARGET_MS:.0f} ms", median < TARGET_MS, f"{median:.2f} ms"),
        (f"{TARGET_SIZE} flavors peak RSS < {TARGET_MB:.0f} MB", peak < TARGET_MB, f"{peak:.1f} MB"),
        ("linear growth (marginal cost ratio 5000 vs 500 within 0.5–1.5)", 0.5 <= ratio <= 1.5, f"{ratio:.2f}"),
    ]
    if old is None:
        print(f"(the old tool is not installed at {args.old_tool}; see the docstring to compare)")
    else:
        checks.append((f"at least {OLD_TOOL_TARGET:.0f}x faster than the old tool at 500 flavors",
                       old >= OLD_TOOL_TARGET, f"{old:.0f}x"))
    failed = False
    for name, ok, value in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
