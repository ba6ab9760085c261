#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust tests, and checks against independent tools.
# Installs what it needs (crates from crates.io, Python packages from PyPI into .venv, GitHub's
# example webhook payloads from npm into tests/.npm).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints its duration when the next one starts, and all of them at the end, so the
# slow steps are visible.
STEP_NAME="" STEP_START=$SECONDS RUN_START=$SECONDS TIMES=""
finish_step() {
  if [ -n "$STEP_NAME" ]; then
    local took=$((SECONDS - STEP_START))
    printf '    (%ds)\n' "$took"
    TIMES="${TIMES}$(printf '%5ds  %s' "$took" "$STEP_NAME")"$'\n'
  fi
}
step() {
  finish_step
  STEP_NAME="$*" STEP_START=$SECONDS
  printf '\n==> %s\n' "$*"
}

# Builds started in the background run in process groups of their own, stopped on any exit.
BACKGROUND=()
stop_background() {
  local pid
  for pid in "${BACKGROUND[@]}"; do
    kill -- "-$pid" 2>/dev/null || true
  done
}
trap stop_background EXIT

step "cargo fmt --check"
cargo fmt --all -- --check

# One feature set for the workspace (every feature on), so each crate compiles once per
# profile; the command line is also linted without its `aws` feature, the build the quickstart
# runs.
# The functions and the command line's `aws` build share one feature set for their
# dependencies (crates/feature-union), so the SDK stack compiles once per profile.
step "one feature set for every AWS build (cargo tree)"
python3 tests/feature_union.py

step "cargo clippy (all crates, all features; the command line without AWS)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo clippy -p flavor-ci-cli --all-targets --locked -- -D warnings

step "cargo test (all crates, all features)"
cargo test --workspace --all-features --locked
cargo test -p flavor-ci-cli --test cli --locked

step "Python tools (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps cargo-lambda==1.9.2

step "GitHub's example webhook payloads (npm)"
npm install --silent --no-audit --no-fund --prefix tests/.npm @octokit/webhooks-examples@7.6.1

step "generated YAML read back by PyYAML (a YAML 1.1 reader)"
cargo build --locked --quiet -p flavor-ci-cli --features aws
.venv/bin/python tests/yaml11_check.py target/debug/flavor-ci

step "migration example against the tool it replaces (exasol-script-languages-container-ci-setup 1.8.0 from PyPI, .venv-exasol)"
if [ ! -x .venv-exasol/bin/python ]; then
  python3 -m venv .venv-exasol
fi
.venv-exasol/bin/python -m pip install --quiet --disable-pip-version-check exasol-script-languages-container-ci-setup==1.8.0
EXASOL_CI_SETUP_PYTHON="$PWD/.venv-exasol/bin/python" .venv/bin/python -m pytest -q -p no:cacheprovider tests/migration

step "functions against real local servers (moto, cargo lambda watch, a response receiver, a GitHub API stand-in)"
cargo build --locked --quiet -p github-webhook
cargo build --locked --quiet -p build-events
cargo build --locked --quiet -p buildspec-resource --features fault-injection
# The `panic = "abort"` build compiles every dependency once more. It runs beside the other
# tests, in a target directory of its own (so no build waits on its lock); its one test runs
# when it is done.
mkdir -p target
CARGO_TARGET_DIR="$PWD/target/abort" setsid cargo build --locked --quiet -p buildspec-resource \
  --features fault-injection --profile panic-abort >target/abort-build.log 2>&1 &
abort_build=$!
BACKGROUND+=("$abort_build")
(cd tests/functions && ../../.venv/bin/python -m pytest -q -p no:cacheprovider -k "not panics_abort")
if ! wait "$abort_build"; then
  cat target/abort-build.log >&2
  exit 1
fi
(cd tests/functions && ../../.venv/bin/python -m pytest -q -p no:cacheprovider -k panics_abort)

if [ -f template.yaml ]; then
  step "templates: SAM CLI and cfn-lint (.venv-sam); sam build started in the background"
  if [ ! -x .venv-sam/bin/python ]; then
    python3 -m venv .venv-sam
  fi
  .venv-sam/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements-template.txt
  export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1
  # This step shows that the template builds with SAM's cargo lambda method and yields each
  # function's bootstrap; the optimized binaries are the benchmarks' business. So the release
  # profile is overridden here to compile like a debug build without debug info, instead of
  # fat LTO with one codegen unit. The checks below run on one core, so the build runs beside
  # them and is waited for at the end.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    PATH="$PWD/.venv/bin:$PATH" setsid .venv-sam/bin/sam build --template-file template.yaml \
    --parameter-overrides Architecture=x86_64 --beta-features --build-dir target/sam-build \
    >target/sam-build.log 2>&1 &
  sam_build=$!
  BACKGROUND+=("$sam_build")

  step "templates: least-privilege and structure tests"
  .venv/bin/python -m pytest -q -p no:cacheprovider tests/template

  step "templates: cfn-lint (plain and SAM-transformed), sam validate --lint"
  .venv-sam/bin/cfn-lint template.yaml source-credentials.yaml
  .venv-sam/bin/python tests/template/transform.py template.yaml target/template.transformed.json
  .venv-sam/bin/cfn-lint target/template.transformed.json
  .venv-sam/bin/sam validate --lint --region us-east-1 --template-file template.yaml

  step "templates: checkov (.venv-checkov); every finding fixed or suppressed in the template with its reason"
  if [ ! -x .venv-checkov/bin/python ]; then
    python3 -m venv .venv-checkov
  fi
  .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements-checkov.txt
  .venv-checkov/bin/checkov -f template.yaml -f source-credentials.yaml --framework cloudformation \
    --quiet --compact --skip-download

  step "templates: sam build for x86_64 (cargo lambda build, zig from PyPI; unoptimized), the rest of it"
  if ! wait "$sam_build"; then
    cat target/sam-build.log >&2
    exit 1
  fi
  tail -n 3 target/sam-build.log
  for f in BuildspecResourceFunction WebhookFunction BuildEventsFunction; do
    test -x "target/sam-build/$f/bootstrap" || { echo "sam build produced no $f/bootstrap" >&2; exit 1; }
  done
fi

finish_step
printf '\nstep times:\n%s%5ds  total\n' "$TIMES" "$((SECONDS - RUN_START))"
printf '\nall checks passed\n'
