#!/usr/bin/env bash
# Reproduces every benchmark table: builds release once, then runs
#   1. `sluice bench`            decision quality (docs/benchmarks.md)
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

step "build release once: sluice + the two bench binaries"
cargo build --release -p sluice-controller --bin sluice
cargo bench --no-run -p sluice-controller --bench scale
cargo bench --no-run -p sluice-tests --bench alert_latency
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

step "decision quality: sluice bench${QUICK:+ --quick}"
"$TARGET/release/sluice" bench --out "$OUT" ${QUICK:+--quick}

step "alert -> rollback latency: $ABORTS aborts"
cargo bench -q -p sluice-tests --bench alert_latency -- \
    --aborts "$ABORTS" --json "$OUT/alert_latency.json" | tee "$OUT/alert_latency.md"

step "controller scale: $SIZES rollouts"
cargo bench -q -p sluice-controller --bench scale -- \
    --sizes "$SIZES" --json "$OUT/scale.json" | tee "$OUT/scale.md"

step "done in $((SECONDS - started)) s; results in $OUT/"
