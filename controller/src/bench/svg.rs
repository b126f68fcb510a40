//! Hand-written SVG plots: canary weight (top) and canary error rate (bottom) over time, one
//! line per policy, for one seed of one scenario.

use std::fmt::Write as _;

use super::report::TraceEntry;

const COLORS: [&str; 6] = [
    "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b",
];
const W: f64 = 760.0;
const PANEL_H: f64 = 180.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const GAP: f64 = 50.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One SVG for `scenario` from the traces of every policy.
pub fn plot(scenario: &str, description: &str, traces: &[&TraceEntry]) -> String {
    let t_max = traces
        .iter()
        .filter_map(|e| e.trace.t.last().copied())
        .max()
        .unwrap_or(60)
        .max(60) as f64
        + 10.0;
    let e_max = traces
        .iter()
        .flat_map(|e| e.trace.canary_error_rate.iter().flatten().copied())
        .fold(0.02f64, f64::max)
        .min(1.0);
    let plot_w = W - LEFT - RIGHT;
    let height = TOP + 2.0 * PANEL_H + GAP + 50.0;
    let x = |t: f64| LEFT + plot_w * t / t_max;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{}</text><text x="{LEFT}" y="32">{}</text>"#,
        esc(scenario),
        esc(description)
    );
    for (panel, (label, max)) in [
        ("canary weight %", 100.0),
        ("canary error rate (10 s)", e_max),
    ]
    .into_iter()
    .enumerate()
    {
        let y0 = TOP + panel as f64 * (PANEL_H + GAP) + 10.0;
        let y = |v: f64| y0 + PANEL_H - PANEL_H * (v / max).clamp(0.0, 1.0);
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#888"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{}">{}</text>"#,
            y0 - 3.0,
            esc(label)
        );
        for k in 0..=4 {
            let v = max * f64::from(k) / 4.0;
            let text = if panel == 0 {
                format!("{v:.0}")
            } else {
                format!("{:.1}%", 100.0 * v)
            };
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{text}</text>"#,
                LEFT - 4.0,
                y(v) + 4.0
            );
        }
        let tick = if t_max > 1200.0 { 300.0 } else { 60.0 };
        let mut t = 0.0;
        while t <= t_max {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{:.0}m</text>"#,
                x(t),
                y0 + PANEL_H + 14.0,
                t / 60.0
            );
            t += tick;
        }
        for (i, e) in traces.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let pts: Vec<String> = e
                .trace
                .t
                .iter()
                .enumerate()
                .filter_map(|(j, t)| {
                    let v = if panel == 0 {
                        Some(f64::from(e.trace.weight[j]))
                    } else {
                        e.trace.canary_error_rate[j]
                    };
                    v.map(|v| format!("{:.1},{:.1}", x(*t as f64), y(v)))
                })
                .collect();
            if !pts.is_empty() {
                let _ = writeln!(
                    s,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                    pts.join(" ")
                );
            }
            if panel == 0 {
                let ly = TOP + 20.0 + 16.0 * i as f64;
                let _ = writeln!(
                    s,
                    r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{} (seed {})</text>"#,
                    W - RIGHT + 10.0,
                    W - RIGHT + 30.0,
                    W - RIGHT + 34.0,
                    ly + 4.0,
                    esc(&e.policy),
                    e.seed
                );
            }
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}
