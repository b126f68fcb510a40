//! The report: JSON document and Markdown tables (printed, and pasted into docs/benchmarks.md).

use std::fmt::Write as _;

use serde::Serialize;

use super::run::Trace;
use super::scenario::Scenario;
use super::summary::{Cell, Ratio, Theory};

/// A policy's name and description.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    pub name: String,
    pub description: String,
}

/// One plotted run.
#[derive(Debug, Clone, Serialize)]
pub struct TraceEntry {
    pub policy: String,
    pub scenario: String,
    pub seed: u64,
    pub trace: Trace,
}

/// Everything one bench run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seeds: u64,
    pub horizon_seconds: u64,
    pub policies: Vec<PolicyInfo>,
    pub scenarios: Vec<Scenario>,
    pub cells: Vec<Cell>,
    pub ratios: Vec<Ratio>,
    pub theory: Vec<Theory>,
    pub traces: Vec<TraceEntry>,
}

fn secs(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |s| format!("{s:.0}"))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn ratio(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |r| format!("{r:.2}"))
}

impl Report {
    /// Per-scenario outcome table.
    pub fn outcomes_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| scenario | policy | promoted | rolled back | undecided | rollback s (median / p90) | promote s (median / p90) | canary requests (mean / p90) | canary errors (mean) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for sc in &self.scenarios {
            for c in self.cells.iter().filter(|c| c.scenario == sc.name) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} / {} | {} / {} | {} / {} | {} |",
                    sc.name,
                    c.policy,
                    pct(c.rate(c.promoted)),
                    pct(c.rate(c.rolled_back)),
                    pct(c.rate(c.undecided)),
                    secs(c.time_to_rollback.map(|d| d.median)),
                    secs(c.time_to_rollback.map(|d| d.p90)),
                    secs(c.time_to_promote.map(|d| d.median)),
                    secs(c.time_to_promote.map(|d| d.p90)),
                    secs(c.canary_requests.map(|d| d.mean)),
                    secs(c.canary_requests.map(|d| d.p90)),
                    c.canary_errors
                        .map_or("-".to_string(), |d| format!("{:.1}", d.mean)),
                );
            }
        }
        s
    }

    /// Canary-death cells: errors served after the death and the time to weight 0.
    pub fn death_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| scenario | policy | canary errors after the death (mean / p90) | seconds from death to 0% (median / p90) | runs whose canary died |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for c in self.cells.iter().filter(|c| c.errors_after_death.is_some()) {
            let e = c.errors_after_death;
            let z = c.death_to_zero;
            let _ = writeln!(
                s,
                "| {} | {} | {} / {} | {} / {} | {} |",
                c.scenario,
                c.policy,
                e.map_or("-".to_string(), |d| format!("{:.0}", d.mean)),
                e.map_or("-".to_string(), |d| format!("{:.0}", d.p90)),
                secs(z.map(|d| d.median)),
                secs(z.map(|d| d.p90)),
                e.map_or(0, |d| d.n),
            );
        }
        s
    }

    /// Sluice / baseline ratios.
    pub fn ratios_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| scenario | sluice variant / baseline | median time (rollback if bad, promote if healthy) | canary requests | canary errors |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for r in &self.ratios {
            let _ = writeln!(
                s,
                "| {} | {} / {} | {} | {} | {} |",
                r.scenario,
                r.sluice,
                r.baseline,
                ratio(r.median_time),
                ratio(r.canary_requests),
                ratio(r.canary_errors)
            );
        }
        s
    }

    /// Wald's SPRT yardstick.
    pub fn theory_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| scenario | bad event | p0 | p1 | Wald SPRT expected canary requests | seconds at 10% weight |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for t in &self.theory {
            let _ = writeln!(
                s,
                "| {} | {} | {:.4} | {:.4} | {:.0} | {:.0} |",
                t.scenario, t.event, t.p0, t.p1, t.requests, t.seconds_at_10pct
            );
        }
        s
    }

    /// All tables with headings.
    pub fn markdown(&self) -> String {
        let deaths = if self.cells.iter().any(|c| c.errors_after_death.is_some()) {
            format!("\n### Canary deaths\n\n{}", self.death_table())
        } else {
            String::new()
        };
        let tables = format!(
            "### Outcomes ({} seeds per cell, horizon {} s)\n\n{}\n### Sluice relative to the baselines (< 1: Sluice smaller or faster)\n\n{}\n### Theoretical yardstick (alpha = beta = 0.05; healthy rows: E0[N] against 2x)\n\n{}",
            self.seeds,
            self.horizon_seconds,
            self.outcomes_table(),
            self.ratios_table(),
            self.theory_table()
        );
        tables + &deaths
    }
}
