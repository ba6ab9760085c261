#!/usr/bin/env bash
# Runs the property-test fuzz targets for longer than the test command does (256 cases each):
# arbitrary requests (bytes, headers, base64 flags, signed or not) into the webhook's handler,
# and arbitrary JSON events and bytes into the custom resource's reading and work. Any panic or
# missing answer fails with the smallest input proptest can shrink it to.
#
# Usage: bash benches/fuzz.sh [CASES]   (default 5000 per target)
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-5000}"
for target in "github-webhook handler::tests::fuzz" "buildspec-resource handler::tests::fuzz"; do
  set -- $target
  start=$SECONDS
  PROPTEST_CASES="$cases" cargo test --locked -q -p "$1" "$2" -- --test-threads 2 2>&1 | grep -E "test result|panicked|minimal failing" || true
  echo "$1: $cases cases per property in $((SECONDS - start)) s"
done
