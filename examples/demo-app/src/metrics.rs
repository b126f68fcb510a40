//! Request counters and a latency histogram, rendered in the Prometheus text format.

use std::collections::BTreeMap;

/// Upper bounds (seconds) of the latency histogram buckets, as in TESTBED §3.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counts by status code and a latency histogram for one version.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Metrics {
    by_code: BTreeMap<u16, u64>,
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// Records one served request.
    pub fn observe(&mut self, code: u16, seconds: f64) {
        *self.by_code.entry(code).or_insert(0) += 1;
        let slot = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    /// `http_requests_total{version,code}` and the `http_request_duration_seconds` histogram.
    pub fn render(&self, version: &str) -> String {
        let v = escape(version);
        let mut out = String::new();
        out.push_str("# HELP http_requests_total Requests served, by version and status code.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for (code, n) in &self.by_code {
            out.push_str(&format!(
                "http_requests_total{{version=\"{v}\",code=\"{code}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP http_request_duration_seconds Request latency, by version.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i];
            out.push_str(&format!(
                "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"{b}\"}} {cumulative}\n"
            ));
        }
        cumulative += self.buckets[BUCKETS.len()];
        out.push_str(&format!(
            "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"+Inf\"}} {cumulative}\n"
        ));
        out.push_str(&format!(
            "http_request_duration_seconds_sum{{version=\"{v}\"}} {}\n",
            self.sum
        ));
        out.push_str(&format!(
            "http_request_duration_seconds_count{{version=\"{v}\"}} {}\n",
            self.count
        ));
        out
    }
}

/// Escapes a label value (backslash, quote, newline) per the text format.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix} in\n{text}"))
    }

    #[test]
    fn empty_metrics_have_zero_histogram_and_no_counters() {
        let t = Metrics::default().render("stable");
        assert!(!t.contains("http_requests_total{"));
        assert_eq!(
            line(&t, "http_request_duration_seconds_count"),
            "http_request_duration_seconds_count{version=\"stable\"} 0"
        );
        assert_eq!(
            line(
                &t,
                "http_request_duration_seconds_bucket{version=\"stable\",le=\"+Inf\"}"
            ),
            "http_request_duration_seconds_bucket{version=\"stable\",le=\"+Inf\"} 0"
        );
    }

    #[test]
    fn counts_by_code_and_cumulative_buckets() {
        let mut m = Metrics::default();
        m.observe(200, 0.003);
        m.observe(200, 0.007);
        m.observe(500, 0.2);
        m.observe(200, 30.0);
        let t = m.render("canary");
        assert_eq!(
            line(&t, "http_requests_total{version=\"canary\",code=\"200\"}"),
            "http_requests_total{version=\"canary\",code=\"200\"} 3"
        );
        assert_eq!(
            line(&t, "http_requests_total{version=\"canary\",code=\"500\"}"),
            "http_requests_total{version=\"canary\",code=\"500\"} 1"
        );
        let bucket = |le: &str| {
            let l = line(
                &t,
                &format!("http_request_duration_seconds_bucket{{version=\"canary\",le=\"{le}\"}}"),
            );
            l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
        };
        assert_eq!(bucket("0.005"), 1);
        assert_eq!(bucket("0.01"), 2);
        assert_eq!(bucket("0.1"), 2);
        assert_eq!(bucket("0.25"), 3);
        assert_eq!(bucket("10"), 3);
        assert_eq!(bucket("+Inf"), 4);
        assert!(t.contains("http_request_duration_seconds_count{version=\"canary\"} 4\n"));
        let sum: f64 = line(&t, "http_request_duration_seconds_sum")
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 30.21).abs() < 1e-9);
    }

    #[test]
    fn bucket_boundary_is_inclusive() {
        let mut m = Metrics::default();
        m.observe(200, 0.005);
        assert!(m
            .render("v")
            .contains("http_request_duration_seconds_bucket{version=\"v\",le=\"0.005\"} 1\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut m = Metrics::default();
        m.observe(200, 0.001);
        assert!(m.render("a\"b").contains("version=\"a\\\"b\""));
    }
}
