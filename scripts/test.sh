#!/usr/bin/env bash
# The project's test command (README, CI): installs the test-bed components if missing,
# builds every target once, then runs every test without rebuilding.
#   scripts/test.sh [extra cargo test args, e.g. -- --nocapture]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

step "install test-bed dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh
# Everything is built below: test helpers need not re-check workspace binaries.
export SLUICE_TESTBED_NO_BUILD=1

step "build: cargo build --workspace --all-targets"
cargo build --workspace --all-targets

step "test: cargo test --workspace --no-fail-fast $*"
status=0
cargo test --workspace --no-fail-fast "$@" || status=$?

if [ "$status" -eq 0 ]; then
    step "all tests passed ($((SECONDS - started)) s)"
else
    step "TESTS FAILED (cargo test exit $status, $((SECONDS - started)) s)"
fi
exit "$status"
