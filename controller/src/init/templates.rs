//! The texts `sluice init standalone` writes (pure functions of the [`Plan`]).
//!
//! Sources of the shapes: NGINX `map`, `log_format` / `access_log`, `include` and `upstream`
//! (nginx.org/en/docs/http/ngx_http_map_module.html, ngx_http_log_module.html,
//! ngx_http_upstream_module.html; `$upstream_addr` is the `host:port` of the server that
//! answered); mtail's program syntax (github.com/google/mtail docs/Language.md: named capture
//! groups become `$name`, `counter … by …`, `histogram … buckets …`); Prometheus
//! `rule_files` / `alerting` / `scrape_configs` (prometheus.io/docs/prometheus/latest/
//! configuration/configuration/, relative `rule_files` resolve against the config file's
//! directory); Alertmanager `webhook_configs` with `http_config.authorization`
//! (prometheus.io/docs/alerting/latest/configuration/).

use super::{Plan, StartCommand};

/// Reads the access-log format of [`nginx_sluice_conf`]; exports what the built-in `nginx-*`
/// metrics query: `nginx_upstream_requests_total{version,code}` and the histogram
/// `nginx_upstream_request_duration_seconds{version}`.
pub const MTAIL_PROGRAM: &str = r#"# Written by `sluice init standalone`.
# NGINX log_format sluice '$msec $pid $upstream_version $status $request_time $upstream_addr';
counter nginx_upstream_requests_total by version, code
histogram nginx_upstream_request_duration_seconds by version buckets 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10

/^(?P<msec>\d+\.\d+) (?P<pid>\d+) (?P<version>\S+) (?P<code>\d{3}) (?P<rt>\d+\.\d+) (?P<up>\S+)$/ {
  nginx_upstream_requests_total[$version][$code]++
  nginx_upstream_request_duration_seconds[$version] = $rt
}
"#;

pub fn rollouts(p: &Plan) -> String {
    let nginx_bin = p
        .nginx_bin
        .as_ref()
        .map(|b| format!("        nginxBin: {}\n", b.display()))
        .unwrap_or_default();
    format!(
        r#"# Written by `sluice init standalone`. Run: sluice run -f rollouts.yaml
# Start a rollout: sluice set-version {name} v2 --server http://{api} --token {token}
#   (or edit canary.version below; the file is re-read when it changes).
prometheus: http://{prometheus}
listen: {api}
apiToken: {token}               # API and Alertmanager webhook token
stateFile: sluice-state.json    # relative paths are relative to this file
rollouts:
  - name: {name}
    stable:
      address: {stable}
      version: v1
    canary:
      address: {canary}
      version: v1               # a new version here (or set-version) starts a rollout
    router:
      nginx:
        conf: nginx/nginx.conf
        prefix: nginx
        upstreamFile: nginx/upstream.conf   # owned by Sluice, included by nginx/sluice.conf
        upstream: app
{nginx_bin}    strategy:
      canary:
        steps:
          - setWeight: 20
          - analysis: {{}}
          - setWeight: 50
          - analysis: {{}}
    analysis:
      interval: {interval}
      failureLimit: 0
      inconclusiveLimit: 3
      metrics:
        - name: success-rate
          builtin: nginx-success-rate
          threshold: {{ min: 0.95 }}
        - name: p99-latency
          builtin: nginx-latency-p99
          threshold: {{ max: 0.5 }}
    queryWindow: {window}
    alerts:
      - name: canary-errors
        labels: {{ alertname: CanaryHighErrorRate, rollout: {name} }}
    hooks:
      # Deploy a promoted version to the stable backend (argv, no shell; gets SLUICE_REVISION):
      # promote: ["/usr/local/bin/deploy-stable"]
      promote: []
"#,
        name = p.name,
        api = p.api,
        token = p.token,
        prometheus = p.prometheus,
        stable = p.stable,
        canary = p.canary,
        interval = p.analysis_interval,
        window = p.query_window,
    )
}

/// A complete NGINX config, run in the foreground with `nginx -p nginx -c nginx.conf`.
pub fn nginx_conf(p: &Plan) -> String {
    format!(
        r#"# Written by `sluice init standalone`. Start: nginx -p {dir}/nginx -c nginx.conf
daemon off;
worker_processes 1;
pid nginx.pid;
error_log logs/error.log notice;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    include sluice.conf;
    server {{
        listen {listen};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # One upstream per request, so the access log names exactly one backend.
            proxy_next_upstream off;
        }}
    }}
}}
"#,
        dir = p.dir.display(),
        listen = p.listen,
    )
}

/// What an existing NGINX needs inside `http {{ }}`: the version map, the log format mtail
/// reads, and the upstream file Sluice rewrites.
pub fn nginx_sluice_conf(p: &Plan) -> String {
    format!(
        r#"# Written by `sluice init standalone`: include this inside http {{ }} and proxy_pass to
# http://app. It labels each request with the backend that answered, for mtail.
map $upstream_addr $upstream_version {{
    "{stable}" stable;
    "{canary}" canary;
    default other;
}}
log_format sluice '$msec $pid $upstream_version $status $request_time $upstream_addr';
access_log logs/access.log sluice;
include upstream.conf;
"#,
        stable = p.stable,
        canary = p.canary,
    )
}

/// The starting upstream file: all traffic on stable (Sluice rewrites it at each weight).
pub fn upstream_conf(p: &Plan) -> String {
    crate::router::nginx_file::render_upstream("app", &p.stable, &p.canary, 0, 16)
}

pub fn prometheus_yml(p: &Plan) -> String {
    format!(
        r#"# Written by `sluice init standalone`.
global:
  scrape_interval: {i}
  evaluation_interval: {i}
rule_files: [ alerts.yml ]
alerting:
  alertmanagers:
    - static_configs: [ {{ targets: [ "{am}" ] }} ]
scrape_configs:
  - job_name: mtail
    static_configs: [ {{ targets: [ "{mtail}" ] }} ]
"#,
        i = p.scrape_interval,
        am = p.alertmanager,
        mtail = p.mtail,
    )
}

pub fn alerts_yml(p: &Plan) -> String {
    format!(
        r#"# Written by `sluice init standalone`: Sluice aborts the rollout named by `rollout`.
groups:
  - name: sluice-canary
    rules:
      - alert: CanaryHighErrorRate
        expr: |
          sum(rate(nginx_upstream_requests_total{{version="canary",code=~"5.."}}[1m]))
            / sum(rate(nginx_upstream_requests_total{{version="canary"}}[1m])) > 0.05
        labels: {{ rollout: {name}, namespace: standalone, severity: critical }}
        annotations:
          summary: canary of {name} answers more than 5% 5xx
"#,
        name = p.name,
    )
}

pub fn alertmanager_yml(p: &Plan) -> String {
    format!(
        r#"# Written by `sluice init standalone`: firing and resolved alerts go to Sluice.
route:
  receiver: sluice
  group_by: ['...']
  group_wait: 5s
  group_interval: 30s
  repeat_interval: 1h
receivers:
  - name: sluice
    webhook_configs:
      - url: http://{api}/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"#,
        api = p.api,
        token = p.token,
    )
}

pub fn readme(p: &Plan, commands: &[StartCommand]) -> String {
    let mut s = format!(
        r#"# Sluice standalone quick start

Written by `sluice init standalone`. Two backends (stable `{stable}`, canary `{canary}`) behind
NGINX on `{listen}`; mtail turns NGINX's access log into per-backend metrics, Prometheus scrapes
mtail, and Sluice shifts traffic by rewriting `nginx/upstream.conf`.

Files: `rollouts.yaml` (the rollout), `nginx/nginx.conf` + `nginx/sluice.conf` (map, log format,
`include upstream.conf`; with your own NGINX, include `sluice.conf` inside `http {{ }}`),
`mtail/nginx.mtail`, `prometheus/prometheus.yml` + `alerts.yml`, `alertmanager/alertmanager.yml`.

Check the set-up: `sluice run --check -f {dir}/rollouts.yaml`.

Start each in its own terminal, in this directory (`cd {dir}`; Debian packages: nginx, mtail,
prometheus, prometheus-alertmanager):

```sh
"#,
        stable = p.stable,
        canary = p.canary,
        listen = p.listen,
        dir = p.dir.display(),
    );
    for c in commands {
        s.push_str(&format!("{}   # {}\n", c.argv.join(" "), c.name));
    }
    s.push_str(&format!(
        r#"```

Then start your backends on `{stable}` (v1) and `{canary}` (v2) and roll v2 out:

```sh
export SLUICE_SERVER=http://{api} SLUICE_TOKEN={token}
sluice set-version {name} v2
sluice wait {name}         # 0 promoted, 2 rolled back, 3 paused, 4 timeout, 6 blocked
sluice status {name}
```
"#,
        stable = p.stable,
        canary = p.canary,
        api = p.api,
        token = p.token,
        name = p.name,
    ));
    s
}
