//! Sluice's own metrics (rollout phase/weight/step, reconcile durations, analysis verdicts,
//! webhook and command counters), rendered in the Prometheus text exposition format.
//!
//! `Telemetry` is a cheap-to-clone handle (an `Arc` inside); every shell, the API and the CLI's
//! embedded server share one, either passed around or via [`Telemetry::global`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use sluice_crds::{Phase, RolloutStatus};

use crate::core::model::VerdictKind;

/// Upper bounds (seconds) of the reconcile-duration histogram buckets.
pub const RECONCILE_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const ALL_PHASES: [Phase; 8] = [
    Phase::Initializing,
    Phase::Idle,
    Phase::Progressing,
    Phase::Paused,
    Phase::Promoting,
    Phase::Succeeded,
    Phase::RollingBack,
    Phase::Failed,
];

/// Anything usable as a verdict label: `VerdictKind` or a plain string.
pub trait VerdictLabel {
    fn verdict_label(&self) -> &str;
}

impl VerdictLabel for VerdictKind {
    fn verdict_label(&self) -> &str {
        self.as_str()
    }
}

impl VerdictLabel for &VerdictKind {
    fn verdict_label(&self) -> &str {
        self.as_str()
    }
}

impl VerdictLabel for &str {
    fn verdict_label(&self) -> &str {
        self
    }
}

impl VerdictLabel for String {
    fn verdict_label(&self) -> &str {
        self.as_str()
    }
}

impl VerdictLabel for &String {
    fn verdict_label(&self) -> &str {
        self.as_str()
    }
}

#[derive(Debug, Clone)]
struct RolloutGauges {
    phase: Phase,
    weight: i32,
    step: u32,
}

#[derive(Debug)]
struct Histogram {
    /// Non-cumulative count per bucket of [`RECONCILE_BUCKETS`]; cumulated when rendered.
    buckets: [u64; RECONCILE_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [0; RECONCILE_BUCKETS.len()],
            count: 0,
            sum: 0.0,
        }
    }
}

impl Histogram {
    /// `NAME_bucket` (cumulative, with `le`), `NAME_sum` and `NAME_count`, with `labels` on each.
    fn render(&self, out: &mut String, name: &str, labels: &[(&str, &str)]) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, le) in RECONCILE_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i];
            let le = format_float(*le);
            let mut l = labels.to_vec();
            l.push(("le", &le));
            sample(out, &bucket, &l, cumulative);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        sample(out, &bucket, &l, self.count);
        sample(out, &format!("{name}_sum"), labels, format_float(self.sum));
        sample(out, &format!("{name}_count"), labels, self.count);
    }

    fn observe(&mut self, v: f64) {
        // Negative or NaN durations would corrupt the sum; clamp them to zero.
        let v = if v.is_finite() && v > 0.0 { v } else { 0.0 };
        if let Some(i) = RECONCILE_BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Debug, Default)]
struct Inner {
    rollouts: BTreeMap<(String, String), RolloutGauges>,
    reconcile: Histogram,
    reconcile_errors: u64,
    verdicts: BTreeMap<(String, String, String, String), u64>,
    webhooks: BTreeMap<String, u64>,
    commands: BTreeMap<(String, String), u64>,
    notifications: BTreeMap<(String, String), u64>,
    notification_drops: BTreeMap<String, u64>,
    /// Built-in load: (namespace, rollout, revision, code) -> requests.
    load_requests: BTreeMap<(String, String, String, String), u64>,
    /// Built-in load: (namespace, rollout, revision) -> durations of answered requests.
    load_durations: BTreeMap<(String, String, String), Histogram>,
    /// Built-in load: (namespace, rollout) -> requests not sent (concurrency bound reached).
    load_skipped: BTreeMap<(String, String), u64>,
}

/// What one built-in load request came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadOutcome {
    /// An HTTP answer with this status code, after this many seconds.
    Answered { code: u16, seconds: f64 },
    /// No answer (connection refused or reset, timeout): `code="error"`.
    NoAnswer,
    /// Not sent: the concurrency bound was reached.
    Skipped,
}

/// Shared metrics registry. Clone freely: clones share the same counters.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    inner: Arc<Mutex<Inner>>,
}

impl Telemetry {
    /// A fresh, empty registry (tests, or one per process passed around).
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry.
    pub fn global() -> Telemetry {
        static GLOBAL: OnceLock<Telemetry> = OnceLock::new();
        GLOBAL.get_or_init(Telemetry::new).clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind; keep serving them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Current phase (one-hot gauge), canary weight and step of one rollout.
    pub fn record_status(&self, namespace: &str, name: &str, status: &RolloutStatus) {
        self.lock().rollouts.insert(
            (namespace.to_string(), name.to_string()),
            RolloutGauges {
                phase: status.phase,
                weight: status.canary_weight,
                step: status.current_step,
            },
        );
    }

    /// Forget a deleted rollout's gauges.
    pub fn remove_rollout(&self, namespace: &str, name: &str) {
        self.lock()
            .rollouts
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// One reconcile (or standalone loop turn) took `duration_secs`; `ok == false` counts an error.
    pub fn record_reconcile(&self, duration_secs: f64, ok: bool) {
        let mut g = self.lock();
        g.reconcile.observe(duration_secs);
        if !ok {
            g.reconcile_errors += 1;
        }
    }

    /// One analysis verdict for one metric of one rollout.
    pub fn record_verdict(
        &self,
        namespace: &str,
        name: &str,
        metric: &str,
        verdict: impl VerdictLabel,
    ) {
        let key = (
            namespace.to_string(),
            name.to_string(),
            metric.to_string(),
            verdict.verdict_label().to_string(),
        );
        *self.lock().verdicts.entry(key).or_insert(0) += 1;
    }

    /// One Alertmanager webhook delivery and what came of it
    /// (`aborted`, `ignored`, `unauthorized`, `bad_request`, `error`).
    pub fn record_webhook(&self, outcome: &str) {
        *self.lock().webhooks.entry(outcome.to_string()).or_insert(0) += 1;
    }

    /// One command written (action: `promote`, `abort`...; source: `api`, `alertmanager`, `cli`).
    pub fn record_command(&self, action: &str, source: &str) {
        *self
            .lock()
            .commands
            .entry((action.to_string(), source.to_string()))
            .or_insert(0) += 1;
    }

    /// One built-in load request to the canary of `namespace/name` at `revision`.
    pub fn record_load(&self, namespace: &str, name: &str, revision: &str, outcome: LoadOutcome) {
        let mut g = self.lock();
        let rollout = (namespace.to_string(), name.to_string());
        let code = match outcome {
            LoadOutcome::Answered { code, .. } => code.to_string(),
            LoadOutcome::NoAnswer => "error".to_string(),
            LoadOutcome::Skipped => {
                *g.load_skipped.entry(rollout).or_insert(0) += 1;
                return;
            }
        };
        let (ns, name) = rollout;
        if let LoadOutcome::Answered { seconds, .. } = outcome {
            g.load_durations
                .entry((ns.clone(), name.clone(), revision.to_string()))
                .or_default()
                .observe(seconds);
        }
        *g.load_requests
            .entry((ns, name, revision.to_string(), code))
            .or_insert(0) += 1;
    }

    /// One notification settled for a sink (outcome: `delivered`, `failed`).
    pub fn record_notification(&self, sink: &str, outcome: &str) {
        *self
            .lock()
            .notifications
            .entry((sink.to_string(), outcome.to_string()))
            .or_insert(0) += 1;
    }

    /// One notification not queued (reason: `queue_full`, `outbox_full`, `stopped`).
    pub fn record_notification_drop(&self, reason: &str) {
        *self
            .lock()
            .notification_drops
            .entry(reason.to_string())
            .or_insert(0) += 1;
    }

    /// Everything in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let g = self.lock();
        let mut out = String::new();

        header(
            &mut out,
            "sluice_rollout_phase",
            "gauge",
            "Current phase of the rollout (1 for the current phase, 0 otherwise).",
        );
        for ((ns, name), r) in &g.rollouts {
            for p in ALL_PHASES {
                let v = u8::from(p == r.phase);
                sample(
                    &mut out,
                    "sluice_rollout_phase",
                    &[("namespace", ns), ("name", name), ("phase", p.as_str())],
                    v,
                );
            }
        }
        header(
            &mut out,
            "sluice_rollout_canary_weight",
            "gauge",
            "Percentage of traffic routed to the canary.",
        );
        for ((ns, name), r) in &g.rollouts {
            sample(
                &mut out,
                "sluice_rollout_canary_weight",
                &[("namespace", ns), ("name", name)],
                r.weight,
            );
        }
        header(
            &mut out,
            "sluice_rollout_step",
            "gauge",
            "Index of the current canary step.",
        );
        for ((ns, name), r) in &g.rollouts {
            sample(
                &mut out,
                "sluice_rollout_step",
                &[("namespace", ns), ("name", name)],
                r.step,
            );
        }

        header(
            &mut out,
            "sluice_reconcile_duration_seconds",
            "histogram",
            "Duration of one reconcile.",
        );
        g.reconcile
            .render(&mut out, "sluice_reconcile_duration_seconds", &[]);
        header(
            &mut out,
            "sluice_reconcile_errors_total",
            "counter",
            "Reconciles that ended in an error.",
        );
        sample(
            &mut out,
            "sluice_reconcile_errors_total",
            &[],
            g.reconcile_errors,
        );

        header(
            &mut out,
            "sluice_analysis_verdicts_total",
            "counter",
            "Analysis verdicts per metric.",
        );
        for ((ns, name, metric, verdict), n) in &g.verdicts {
            sample(
                &mut out,
                "sluice_analysis_verdicts_total",
                &[
                    ("namespace", ns),
                    ("name", name),
                    ("metric", metric),
                    ("verdict", verdict),
                ],
                n,
            );
        }

        header(
            &mut out,
            "sluice_webhook_requests_total",
            "counter",
            "Alertmanager webhook deliveries by outcome.",
        );
        for (outcome, n) in &g.webhooks {
            sample(
                &mut out,
                "sluice_webhook_requests_total",
                &[("outcome", outcome)],
                n,
            );
        }

        header(
            &mut out,
            "sluice_commands_total",
            "counter",
            "Commands written to rollouts, by action and source.",
        );
        for ((action, source), n) in &g.commands {
            sample(
                &mut out,
                "sluice_commands_total",
                &[("action", action), ("source", source)],
                n,
            );
        }
        header(
            &mut out,
            "sluice_load_requests_total",
            "counter",
            "Requests of the built-in load to the canary, by status code (\"error\": no answer).",
        );
        for ((ns, name, rev, code), n) in &g.load_requests {
            let labels = [
                ("namespace", ns.as_str()),
                ("rollout", name.as_str()),
                ("revision", rev.as_str()),
                ("code", code.as_str()),
            ];
            sample(&mut out, "sluice_load_requests_total", &labels, n);
        }
        header(
            &mut out,
            "sluice_load_request_duration_seconds",
            "histogram",
            "Duration of the built-in load's answered requests.",
        );
        for ((ns, name, rev), h) in &g.load_durations {
            let labels = [
                ("namespace", ns.as_str()),
                ("rollout", name.as_str()),
                ("revision", rev.as_str()),
            ];
            h.render(&mut out, "sluice_load_request_duration_seconds", &labels);
        }
        header(
            &mut out,
            "sluice_load_skipped_total",
            "counter",
            "Built-in load requests not sent because the concurrency bound was reached.",
        );
        for ((ns, name), n) in &g.load_skipped {
            let labels = [("namespace", ns.as_str()), ("rollout", name.as_str())];
            sample(&mut out, "sluice_load_skipped_total", &labels, n);
        }

        header(
            &mut out,
            "sluice_notifications_total",
            "counter",
            "Notifications settled per sink: delivered, or failed (refused, or retried past the maximum age).",
        );
        for ((sink, outcome), n) in &g.notifications {
            sample(
                &mut out,
                "sluice_notifications_total",
                &[("sink", sink), ("outcome", outcome)],
                n,
            );
        }
        header(
            &mut out,
            "sluice_notifications_dropped_total",
            "counter",
            "Notifications not queued: queue_full (kept in the outbox, offered again), outbox_full (discarded).",
        );
        for (reason, n) in &g.notification_drops {
            sample(
                &mut out,
                "sluice_notifications_dropped_total",
                &[("reason", reason)],
                n,
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape backslash, double quote and newline (exposition format rules).
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
#[path = "telemetry_tests.rs"]
mod tests;
