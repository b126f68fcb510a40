//! An in-memory Prometheus for simulations and tests: counters that a simulated exporter
//! increments, sampled at scrape times into series, answering the raw range-selector queries
//! Sluice's comparisons send (`name{matchers}[range]`) the way Prometheus does:
//! - a range selector returns the samples with timestamps in `(at − range, at]` (left-open and
//!   right-closed, prometheus docs/querying/basics.md "Range Vector Selectors");
//! - `=~` / `!~` regexes are fully anchored (`^(?:re)$`), and a matcher on an absent label
//!   compares against the empty string (docs/querying/basics.md "Time series selectors");
//! - a counter that its process recreates after a restart starts again from zero, and a series
//!   exists only from its first increment on (client libraries create labelled children lazily).
//!
//! - the built-in threshold metrics' shape `sum(rate(SEL[W]))`, alone or divided by another
//!   (`sum(rate(A[W])) / sum(rate(B[W]))`, the success rate): `rate` as Prometheus 2.x's
//!   `extrapolatedRate` (promql/functions.go: at least two samples in the range, resets added
//!   back, extrapolated to the range's ends when the first/last sample is within 1.1 average
//!   gaps of them, else by half a gap, never below the counter's zero point, divided by the
//!   range); `sum` over no series is an empty vector, and so is a division with an empty side.
//!
//! Anything else (other functions, aggregations, operators) is refused with an error, so a
//! simulation can never silently answer a query the real server would answer differently.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::prometheus::{Labels, QueryError, QueryResponse, QueryResult, RangeSeries, Sample};
use crate::source::{MetricsSource, QueryFuture};

#[derive(Debug, Default)]
struct Inner {
    /// Current counter values of the exporter, keyed by labels including `__name__`.
    live: BTreeMap<Labels, f64>,
    /// Scraped samples `(ms, value)` per series.
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    regex: HashMap<String, regex::Regex>,
}

/// The simulated server. Thread-safe; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct SimPrometheus {
    inner: Mutex<Inner>,
}

fn key(name: &str, labels: &[(&str, &str)]) -> Labels {
    let mut l: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.insert("__name__".into(), name.into());
    l
}

impl SimPrometheus {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `by` to the counter `name{labels}`, creating it at zero first.
    pub fn add(&self, name: &str, labels: &[(&str, &str)], by: f64) {
        *self.lock().live.entry(key(name, labels)).or_insert(0.0) += by;
    }

    /// A scrape at `t_ms`: every live counter gets a sample.
    pub fn scrape(&self, t_ms: i64) {
        let mut g = self.lock();
        let Inner { live, series, .. } = &mut *g;
        for (l, v) in live.iter() {
            series.entry(l.clone()).or_default().push((t_ms, *v));
        }
    }

    /// The exporter restarts: its counters are gone and come back from zero when next used.
    pub fn restart(&self) {
        self.lock().live.clear();
    }

    /// Every scraped series (labels with `__name__`) and its samples, for export.
    pub fn dump(&self) -> Vec<(Labels, Vec<(i64, f64)>)> {
        self.lock()
            .series
            .iter()
            .map(|(l, s)| (l.clone(), s.clone()))
            .collect()
    }

    /// Evaluates a raw range selector, or the `sum(rate(..))` shapes of the module docs, at
    /// `at_ms`.
    pub fn eval(&self, promql: &str, at_ms: i64) -> Result<QueryResult, QueryError> {
        let bad = |e: String| QueryError::Prometheus {
            error_type: "bad_data".into(),
            error: format!("simulated prometheus: {e} in {promql:?}"),
            http_status: 400,
        };
        let q = promql.trim();
        if q.starts_with("sum(") {
            let parts = split_division(q);
            let mut values = Vec::new();
            for part in &parts {
                let inner = part
                    .trim()
                    .strip_prefix("sum(rate(")
                    .and_then(|r| r.strip_suffix("))"))
                    .ok_or_else(|| bad("only sum(rate(selector[range])) is simulated".into()))?;
                let sel = parse(inner).map_err(bad)?;
                values.push(self.sum_rate(&sel, at_ms)?);
            }
            let value = match values.as_slice() {
                [Some(a)] => Some(*a),
                [Some(a), Some(b)] => Some(a / b),
                [_] | [_, _] => None,
                _ => return Err(bad("at most one division is simulated".into())),
            };
            return Ok(QueryResult::Vector(
                value
                    .map(|v| Sample {
                        labels: Labels::new(),
                        timestamp: at_ms as f64 / 1000.0,
                        value: v,
                    })
                    .into_iter()
                    .collect(),
            ));
        }
        let sel = parse(promql).map_err(bad)?;
        self.select(&sel, at_ms)
    }

    /// `sum(rate(sel))`: `None` when no series has two samples in the range.
    fn sum_rate(&self, sel: &Selector, at_ms: i64) -> Result<Option<f64>, QueryError> {
        let QueryResult::Matrix(m) = self.select(sel, at_ms)? else {
            return Ok(None);
        };
        let rates: Vec<f64> = m
            .iter()
            .filter_map(|s| extrapolated_rate(&s.values, at_ms, sel.range_ms))
            .collect();
        Ok((!rates.is_empty()).then(|| rates.iter().sum()))
    }

    fn select(&self, sel: &Selector, at_ms: i64) -> Result<QueryResult, QueryError> {
        let mut g = self.lock();
        let Inner { series, regex, .. } = &mut *g;
        let mut out = Vec::new();
        for (labels, samples) in series.iter() {
            if labels.get("__name__").map(String::as_str) != Some(sel.name.as_str()) {
                continue;
            }
            let mut ok = true;
            for m in &sel.matchers {
                let have = labels.get(&m.label).map_or("", String::as_str);
                let hit = match m.op {
                    Op::Eq => have == m.value,
                    Op::Ne => have != m.value,
                    Op::Re | Op::NotRe => {
                        let re = match regex.get(&m.value) {
                            Some(r) => r.clone(),
                            None => {
                                let r = regex::Regex::new(&format!("^(?:{})$", m.value)).map_err(
                                    |e| QueryError::Prometheus {
                                        error_type: "bad_data".into(),
                                        error: format!("invalid regex {:?}: {e}", m.value),
                                        http_status: 400,
                                    },
                                )?;
                                regex.insert(m.value.clone(), r.clone());
                                r
                            }
                        };
                        re.is_match(have) == (m.op == Op::Re)
                    }
                };
                if !hit {
                    ok = false;
                    break;
                }
            }
            if !ok {
                continue;
            }
            let from = samples.partition_point(|(t, _)| *t <= at_ms - sel.range_ms);
            let to = samples.partition_point(|(t, _)| *t <= at_ms);
            if from >= to {
                continue;
            }
            let mut l = labels.clone();
            l.remove("__name__");
            out.push(RangeSeries {
                labels: l,
                values: samples[from..to]
                    .iter()
                    .map(|(t, v)| (*t as f64 / 1000.0, *v))
                    .collect(),
            });
        }
        Ok(QueryResult::Matrix(out))
    }
}

/// `a / b` split at its top-level `/` (outside parentheses, braces and quotes).
fn split_division(q: &str) -> Vec<&str> {
    let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in q.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            '/' if depth == 0 => {
                parts.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&q[start..]);
    parts
}

/// Prometheus 2.x `rate()` of one counter series (samples `(seconds, value)` inside the range
/// ending at `at_ms`): see the module docs. `None` with fewer than two samples.
fn extrapolated_rate(values: &[(f64, f64)], at_ms: i64, range_ms: i64) -> Option<f64> {
    let (first, last) = (values.first()?, values.last()?);
    if values.len() < 2 {
        return None;
    }
    let mut result = last.1 - first.1;
    for w in values.windows(2) {
        if w[1].1 < w[0].1 {
            result += w[0].1;
        }
    }
    let range_start = (at_ms - range_ms) as f64 / 1000.0;
    let range_end = at_ms as f64 / 1000.0;
    let mut to_start = first.0 - range_start;
    let to_end = range_end - last.0;
    let sampled = last.0 - first.0;
    let avg = sampled / (values.len() - 1) as f64;
    if result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg / 2.0
    };
    Some(result * (interval / sampled) / (range_ms as f64 / 1000.0))
}

impl MetricsSource for SimPrometheus {
    fn query<'a>(&'a self, promql: &'a str, at: Option<DateTime<Utc>>) -> QueryFuture<'a> {
        let at_ms = at.unwrap_or_else(Utc::now).timestamp_millis();
        let answer = self.eval(promql, at_ms).map(QueryResponse::from);
        Box::pin(async move { answer })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

#[derive(Debug)]
struct Matcher {
    label: String,
    op: Op,
    value: String,
}

#[derive(Debug)]
struct Selector {
    name: String,
    matchers: Vec<Matcher>,
    range_ms: i64,
}

fn parse(q: &str) -> Result<Selector, String> {
    let q = q.trim();
    let open = q.find('{').ok_or("expected name{matchers}[range]")?;
    let name = &q[..open];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("unsupported expression before '{{': {name:?}"));
    }
    let mut chars = q[open + 1..].char_indices().peekable();
    let body = &q[open + 1..];
    let mut matchers = Vec::new();
    let close;
    loop {
        while chars
            .peek()
            .is_some_and(|(_, c)| c.is_whitespace() || *c == ',')
        {
            chars.next();
        }
        let (i, c) = chars.next().ok_or("unterminated selector")?;
        if c == '}' {
            close = i;
            break;
        }
        let mut label = String::from(c);
        while let Some((_, c)) = chars.peek().copied() {
            if c.is_ascii_alphanumeric() || c == '_' {
                label.push(c);
                chars.next();
            } else {
                break;
            }
        }
        let mut op = String::new();
        while let Some((_, c)) = chars.peek().copied() {
            if matches!(c, '=' | '!' | '~') {
                op.push(c);
                chars.next();
            } else {
                break;
            }
        }
        let op = match op.as_str() {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "=~" => Op::Re,
            "!~" => Op::NotRe,
            other => return Err(format!("unknown matcher operator {other:?}")),
        };
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("expected a double-quoted label value".into());
        }
        let mut value = String::new();
        loop {
            match chars.next().map(|(_, c)| c) {
                None => return Err("unterminated label value".into()),
                Some('"') => break,
                Some('\\') => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return Err("unterminated escape".into()),
                },
                Some(c) => value.push(c),
            }
        }
        matchers.push(Matcher { label, op, value });
    }
    let rest = body[close + 1..].trim();
    let range = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or("expected a [range] after the selector (only raw range selectors are simulated)")?;
    let range_ms = crate::template::duration_ms(range).ok_or("bad range duration")?;
    Ok(Selector {
        name: name.to_string(),
        matchers,
        range_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_raw_selectors_left_open_with_anchored_regexes() {
        let p = SimPrometheus::new();
        p.add(
            "req_total",
            &[("code", "200"), ("svc", "a@kubernetescrd")],
            1.0,
        );
        p.scrape(10_000);
        p.add(
            "req_total",
            &[("code", "500"), ("svc", "a@kubernetes")],
            2.0,
        );
        p.scrape(20_000);
        p.scrape(30_000);
        let r = p
            .eval(
                r#"req_total{svc=~"a@kubernetes(crd)?",code=~"5.."}[20s]"#,
                30_000,
            )
            .unwrap();
        let QueryResult::Matrix(m) = r else { panic!() };
        assert_eq!(m.len(), 1);
        // (10 s, 30 s]: the 500 series exists from 20 s.
        assert_eq!(m[0].values, vec![(20.0, 2.0), (30.0, 2.0)]);
        let QueryResult::Matrix(m) = p.eval(r#"req_total{code!~"5"}[20s]"#, 30_000).unwrap() else {
            panic!()
        };
        // "5" does not match "500" when anchored; the sample at exactly 10 s is left out.
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].values, vec![(20.0, 1.0), (30.0, 1.0)]);
        // A matcher on an absent label compares with "".
        let QueryResult::Matrix(m) = p.eval(r#"req_total{canary=""}[1m]"#, 30_000).unwrap() else {
            panic!()
        };
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn restart_resets_and_recreates_lazily() {
        let p = SimPrometheus::new();
        p.add("c", &[], 5.0);
        p.scrape(1_000);
        p.restart();
        p.scrape(2_000);
        p.add("c", &[], 1.0);
        p.scrape(3_000);
        let QueryResult::Matrix(m) = p.eval("c{}[1h]", 3_000).unwrap() else {
            panic!()
        };
        assert_eq!(m[0].values, vec![(1.0, 5.0), (3.0, 1.0)]);
    }

    #[test]
    fn sum_rate_extrapolates_like_prometheus() {
        let p = SimPrometheus::new();
        // 1 request/s for 45 s, 1 error every 15 s from 15 s on, scraped every 15 s.
        for t in 0..=45 {
            if t % 15 == 0 {
                p.scrape(t * 1000);
            }
            p.add("r", &[("code", "200")], 1.0);
        }
        let ok = r#"sum(rate(r{code!~"5.."}[1m]))"#;
        // Range (-10 s, 50 s]: samples 0..45 at 0, 15, 30, 45 s; the zero point is the first
        // sample, so the start is not extrapolated; the end by 5 s: 45 * (50 / 45) / 60.
        let QueryResult::Vector(v) = p.eval(ok, 50_000).unwrap() else {
            panic!("vector")
        };
        assert!((v[0].value - 50.0 / 60.0).abs() < 1e-12, "{v:?}");
        // A ratio of two sums; one sample in the range is no rate, and an empty side is empty.
        let QueryResult::Vector(v) = p.eval(&format!("{ok} / {ok}"), 50_000).unwrap() else {
            panic!("vector")
        };
        assert_eq!(v[0].value, 1.0);
        let QueryResult::Vector(v) = p.eval(r#"sum(rate(r{}[10s]))"#, 50_000).unwrap() else {
            panic!("vector")
        };
        assert!(v.is_empty(), "{v:?}");
        let QueryResult::Vector(v) = p
            .eval(&format!(r#"{ok} / sum(rate(r{{code="503"}}[1m]))"#), 50_000)
            .unwrap()
        else {
            panic!("vector")
        };
        assert!(v.is_empty(), "{v:?}");
        // A reset adds the value before it back: 10 -> 2 counts as 10 + 2.
        assert_eq!(
            extrapolated_rate(&[(0.0, 0.0), (10.0, 10.0), (20.0, 2.0)], 20_000, 20_000),
            Some(12.0 / 20.0)
        );
    }

    #[test]
    fn refuses_what_it_does_not_simulate() {
        let p = SimPrometheus::new();
        p.add("x", &[("a", "b")], 1.0);
        p.scrape(0);
        for q in [
            "max(rate(x{}[1m]))",
            "sum(increase(x{}[1m]))",
            "sum(rate(x{}[1m])) / sum(rate(x{}[1m])) / sum(rate(x{}[1m]))",
            "x{}",
            r#"x{a="b"[1m]"#,
            r#"x{a~"b"}[1m]"#,
            r#"x{a="b}[1m]"#,
            r#"x{a=~"("}[1m]"#,
        ] {
            assert!(p.eval(q, 0).is_err(), "{q}");
        }
    }
}
