#!/usr/bin/env bash
# Reproduces every benchmark table: builds release once, then runs
#   1. `sluice bench`            decision quality (docs/benchmarks.md), and its validity grid
#      (`--suite validity`), and the real-Prometheus calibration (promtool backfill)
#   2. alert_latency bench       alert -> rollback latency, real Alertmanager + NGINX
#   3. scale bench               1,000 and 5,000 rollouts on the in-memory Kubernetes API
# Tables go to stdout; JSON and Markdown to bench-results/ (or $OUT).
#   scripts/bench.sh [--quick]      (--quick: 50 seeds, 5 aborts, 100 and 500 rollouts)
# Overrides: SLUICE_ALERT_ABORTS=N, SLUICE_SCALE_SIZES=1000,5000, OUT=dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-bench-results}"
QUICK=""
for a in "$@"; do
    case "$a" in
        --quick) QUICK=1 ;;
        *) echo "usage: scripts/bench.sh [--quick]" >&2; exit 2 ;;
    esac
done
if [ -n "$QUICK" ]; then
    ABORTS="${SLUICE_ALERT_ABORTS:-5}"
    SIZES="${SLUICE_SCALE_SIZES:-100,500}"
else
    ABORTS="${SLUICE_ALERT_ABORTS:-200}"
    SIZES="${SLUICE_SCALE_SIZES:-1000,5000}"
fi
mkdir -p "$OUT"
step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

step "test-bed components (NGINX, Alertmanager): scripts/install-deps.sh"
bash scripts/install-deps.sh

step "build release once: sluice and the two bench binaries (one cargo call: one feature set)"
log="$(mktemp)"
cargo bench --no-run -p sluice-controller -p sluice-tests --bench scale --bench alert_latency 2>&1 | tee "$log"
exe() { sed -n "s|.*Executable benches/$1.rs (\(.*\))|\1|p" "$log" | tail -1; }
SCALE_BIN="$(exe scale)"
ALERT_BIN="$(exe alert_latency)"
rm -f "$log"
if [ -z "$SCALE_BIN" ] || [ -z "$ALERT_BIN" ]; then
    echo "bench.sh: bench executables not found in cargo's output" >&2
    exit 1
fi
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
# Bench builds also build the package's binaries; build it explicitly if this cargo did not.
[ -x "$TARGET/release/sluice" ] || cargo build --release -p sluice-controller -p sluice-tests --bin sluice

step "decision quality: sluice bench${QUICK:+ --quick}"
failed=""
"$TARGET/release/sluice" bench --out "$OUT" ${QUICK:+--quick} || failed="$failed sluice-bench"

step "validity grid: sluice bench --suite validity${QUICK:+ --quick}"
"$TARGET/release/sluice" bench --suite validity --out "$OUT/validity" ${QUICK:+--quick} ||
    failed="$failed sluice-bench-validity"

step "calibration on a real Prometheus: ${CALIBRATION_ROLLOUTS:=20} simulated rollouts backfilled with promtool"
SLUICE_CALIBRATION_ROLLOUTS="$CALIBRATION_ROLLOUTS" cargo test --release -p sluice-tests \
    --test calibration_real -- --nocapture || failed="$failed calibration"

step "alert -> rollback latency: $ABORTS aborts"
"$ALERT_BIN" --aborts "$ABORTS" --json "$OUT/alert_latency.json" | tee "$OUT/alert_latency.md" ||
    failed="$failed alert_latency"

step "controller scale: $SIZES rollouts"
"$SCALE_BIN" --sizes "$SIZES" --json "$OUT/scale.json" | tee "$OUT/scale.md" ||
    failed="$failed scale"

if [ -n "$failed" ]; then
    step "FAILED:$failed ($((SECONDS - started)) s); partial results in $OUT/"
    exit 1
fi
step "done in $((SECONDS - started)) s; results in $OUT/"
