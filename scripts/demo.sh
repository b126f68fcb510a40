#!/usr/bin/env bash
# One-command demo of Sluice without Kubernetes (`sluice run`):
#   two demo-app backends behind a real NGINX whose upstream file Sluice owns, mtail on NGINX's
#   access log, Prometheus (1 s scrape), Alertmanager, Sluice, and a bounded load (100 req/s).
# Analysis uses the recommended metric set of the examples (errors and latency compared with
# stable, a 95% success-rate floor). Scenarios: (a) healthy canary -> promoted once the
# sequential tests rule out a 2x worse error rate and slow-request rate, (b) canary with 10x
# stable's error rate -> rolled back by analysis (the comparison or the floor), (c) canary
# aborted by a Prometheus alert through Alertmanager.
# Everything binds 127.0.0.1 on free ports and is stopped on exit. Takes 1-4 minutes
# after the build (the healthy canary passes once the evidence suffices).
# KEEP=1 keeps the work directory (configs, logs, state file).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELPER="$ROOT/examples/standalone/demo/demo_helper.py"
TOKEN="demo-token"
LOAD_RATE="${LOAD_RATE:-100}"

# shellcheck source=lib/demo-output.sh
. "$ROOT/scripts/lib/demo-output.sh"

say "installing dependencies (scripts/install-deps.sh)"
"$ROOT/scripts/install-deps.sh"
export PATH="$PATH:/usr/sbin:/sbin"

say "building sluice and the demo app (a few minutes the first time)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build -p sluice-controller --bin sluice -p sluice-demo-app)
BIN="$CARGO_TARGET_DIR/debug"

WORK="$(mktemp -d /tmp/sluice-demo.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
NGINX_STARTED=""
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    if [ -n "$NGINX_STARTED" ]; then nginx -s quit -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>/dev/null; fi
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [ "${KEEP:-0}" = "1" ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_STABLE P_CANARY P_NGINX P_MTAIL P_PROM P_AM P_SLUICE <<<"$(python3 "$HELPER" freeport 7)"
API="http://127.0.0.1:$P_SLUICE"

wait_http() { # URL SECONDS
    for _ in $(seq 1 $(($2 * 10))); do
        if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "not ready: $1 (logs in $WORK)" >&2
    return 1
}
start() { # NAME CMD... (output to $WORK/NAME.log)
    local name="$1"; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
}

say "starting backends, NGINX, mtail, Prometheus, Alertmanager (work dir $WORK)"
start stable "$BIN/sluice-demo-app" --port "$P_STABLE" --version stable --error-rate 0.01
start canary "$BIN/sluice-demo-app" --port "$P_CANARY" --version canary --error-rate 0.01
wait_http "http://127.0.0.1:$P_STABLE/healthz" 10
wait_http "http://127.0.0.1:$P_CANARY/healthz" 10

mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp" && chmod 755 "$WORK/nginx" && chmod 777 "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid nginx.pid;
error_log logs/error.log notice;
events { worker_connections 1024; }
http {
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    map \$upstream_addr \$upstream_version {
        "127.0.0.1:$P_STABLE" stable;
        "127.0.0.1:$P_CANARY" canary;
        default other;
    }
    log_format plain '\$msec \$pid \$upstream_version \$status \$request_time \$upstream_addr';
    access_log logs/access.log plain;
    include upstream.conf;   # owned by Sluice
    server {
        listen 127.0.0.1:$P_NGINX;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream off;
        }
    }
}
EOF
printf 'upstream app {\n    server 127.0.0.1:%s weight=100 max_fails=0;\n    server 127.0.0.1:%s down;\n}\n' \
    "$P_STABLE" "$P_CANARY" >"$WORK/nginx/upstream.conf"
touch "$WORK/nginx/logs/access.log"
start nginx nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"
NGINX_STARTED=1
wait_http "http://127.0.0.1:$P_NGINX/" 10

mkdir -p "$WORK/mtail"
cat >"$WORK/mtail/nginx.mtail" <<'EOF'
counter nginx_upstream_requests_total by version, code
histogram nginx_upstream_request_duration_seconds by version buckets 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
/^(?P<msec>\d+\.\d+) (?P<pid>\d+) (?P<version>\S+) (?P<code>\d{3}) (?P<rt>\d+\.\d+) (?P<up>\S+)$/ {
  nginx_upstream_requests_total[$version][$code]++
  nginx_upstream_request_duration_seconds[$version] = $rt
}
EOF
start mtail mtail --progs "$WORK/mtail" --logs "$WORK/nginx/logs/access.log" --address 127.0.0.1 --port "$P_MTAIL" --logtostderr
wait_http "http://127.0.0.1:$P_MTAIL/metrics" 10

mkdir -p "$WORK/prom" "$WORK/am"
cat >"$WORK/prom/prometheus.yml" <<EOF
global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
alerting:
  alertmanagers: [ { static_configs: [ { targets: ['127.0.0.1:$P_AM'] } ] } ]
rule_files: [ rules.yml ]
scrape_configs:
  - job_name: mtail
    static_configs: [ { targets: ['127.0.0.1:$P_MTAIL'] } ]
EOF
# Above 20% canary errors: an outage, page and abort (analysis handles subtler regressions).
cat >"$WORK/prom/rules.yml" <<'EOF'
groups:
  - name: canary
    rules:
      - alert: CanaryOutage
        expr: sum(rate(nginx_upstream_requests_total{version="canary",code=~"5.."}[5s])) / sum(rate(nginx_upstream_requests_total{version="canary"}[5s])) > 0.2
        labels: { rollout: web, namespace: standalone, severity: critical }
        annotations: { summary: "canary 5xx ratio above 20%" }
EOF
cat >"$WORK/am/alertmanager.yml" <<EOF
route: { receiver: sluice, group_by: ['...'], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }
receivers:
  - name: sluice
    webhook_configs:
      - url: $API/webhooks/alertmanager
        send_resolved: true
        http_config: { authorization: { type: Bearer, credentials: $TOKEN } }
EOF
start alertmanager prometheus-alertmanager --config.file="$WORK/am/alertmanager.yml" --storage.path="$WORK/am/data" \
    --web.listen-address="127.0.0.1:$P_AM" --cluster.listen-address=
start prometheus prometheus --config.file="$WORK/prom/prometheus.yml" --storage.tsdb.path="$WORK/prom/data" \
    --web.listen-address="127.0.0.1:$P_PROM" --web.enable-lifecycle
wait_http "http://127.0.0.1:$P_AM/-/ready" 20
wait_http "http://127.0.0.1:$P_PROM/-/ready" 20

# The recommended metric set, taken from the standalone example (docs/analysis.md,
# "Recommended metric set") rather than a set of the demo's own.
METRICS="$(sed -n '/^      metrics:/,/^ \{0,4\}[^ ]/p' "$ROOT/examples/standalone/rollouts.yaml" | sed '$d')"
if ! grep -q 'builtin: error-rate-comparison' <<<"$METRICS"; then
    echo "no metric set found in examples/standalone/rollouts.yaml" >&2
    exit 1
fi

# The rollouts file. MODE analysis: 20% -> analysis -> 50% -> analysis -> promote.
# MODE alert: 20% then a long pause, no analysis: only an alert can stop it.
write_rollouts() { # CANARY_VERSION MODE
    local steps analysis=""
    if [ "$2" = analysis ]; then
        steps='          - setWeight: 20
          - analysis: {}
          - setWeight: 50
          - analysis: { iterations: 2 }'
        analysis="    analysis:
      interval: 2s
      failureLimit: 0
      inconclusiveLimit: 10
$METRICS"
    else
        steps='          - setWeight: 20
          - pause: { duration: 10m }'
    fi
    cat >"$WORK/rollouts.yaml.tmp" <<EOF
prometheus: http://127.0.0.1:$P_PROM
apiToken: $TOKEN
rollouts:
  - name: web
    stable: { address: "127.0.0.1:$P_STABLE", version: v1 }
    canary: { address: "127.0.0.1:$P_CANARY", version: $1, healthPath: /healthz }
    router:
      nginx:
        conf: $WORK/nginx/nginx.conf
        prefix: $WORK/nginx
        upstreamFile: $WORK/nginx/upstream.conf
        upstream: app
    strategy:
      canary:
        steps:
$steps
$analysis
    queryWindow: 5s
    progressDeadlineSeconds: 60
    hooks:
      # "Deploy" the promoted version to the stable backend: copy the canary's error rate.
      promote: ["sh", "-c", "curl -fsS \"http://127.0.0.1:$P_STABLE/admin?error_rate=\$(cat $WORK/canary_error_rate)\" >/dev/null"]
EOF
    mv "$WORK/rollouts.yaml.tmp" "$WORK/rollouts.yaml"
}
set_canary_errors() { # RATE
    echo "$1" >"$WORK/canary_error_rate"
    curl -fsS "http://127.0.0.1:$P_CANARY/admin?error_rate=$1" >/dev/null
}

say "starting sluice run (API $API)"
set_canary_errors 0.01
write_rollouts v1 analysis
start sluice "$BIN/sluice" run -f "$WORK/rollouts.yaml" --state "$WORK/state.json" --listen "127.0.0.1:$P_SLUICE" --poll-ms 500
wait_http "$API/healthz" 30
python3 "$HELPER" watch "$API" "$TOKEN" /dev/null Idle 30 | tail -n 1 >/dev/null

say "bounded load: $LOAD_RATE req/s through NGINX (new connection per request)"
start load python3 "$HELPER" load "http://127.0.0.1:$P_NGINX/" "$LOAD_RATE" "$WORK/load.json"
sleep 3

declare -A RESULTS
scenario() { # KEY TITLE VERSION MODE ERROR_RATE
    say "$2"
    set_canary_errors "$5"
    write_rollouts "$3" "$4"
    local out
    out="$(python3 "$HELPER" watch "$API" "$TOKEN" "$WORK/load.json" Succeeded,Failed 300 | mirror_last_line)"
    RESULTS[$1]="$out"
}

scenario a "(a) healthy canary v2 (1% errors, like stable): expect promotion" v2 analysis 0.01
scenario b "(b) faulty canary v3 (10% errors, 10x stable): expect rollback by analysis" v3 analysis 0.10
scenario c "(c) canary v4 with 50% errors, no analysis gate: expect abort by a Prometheus alert via Alertmanager" v4 alert 0.5

say "sluice status (the CLI talking to the standalone API)"
"$BIN/sluice" status web -n standalone --server "$API" --token "$TOKEN" || true

say "summary"
printf '%-28s %-10s %-17s %-22s %s\n' scenario outcome "time to decision" "served by canary" "reason"
for k in a b c; do
    read -r _ phase secs creq cerr reason <<<"${RESULTS[$k]}"
    case $k in a) name="healthy v2";; b) name="10x errors v3 (analysis)";; c) name="outage v4 (alert)";; esac
    printf '%-28s %-10s %-17s %-22s %s\n' "$name" "$phase" "${secs}s" "$creq req, $cerr 5xx" "${reason:-}"
done
echo
if [ "${KEEP:-0}" = "1" ]; then
    echo "state file: $WORK/state.json   sluice log: $WORK/sluice.log (kept)"
else
    echo "the work directory (state file, logs) is removed on exit; KEEP=1 keeps it"
fi
ok=1
[[ "${RESULTS[a]}" == "RESULT Succeeded"* ]] || ok=0
[[ "${RESULTS[b]}" == "RESULT Failed"* ]] || ok=0
[[ "${RESULTS[c]}" == "RESULT Failed"* ]] || ok=0
if [ "$ok" = 1 ]; then echo "demo: all three scenarios ended as expected"; else echo "demo: an unexpected outcome (see above)"; exit 1; fi
