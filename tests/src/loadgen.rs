//! An open-loop HTTP load generator that counts answers by status and by `X-Version`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How many recent error messages a snapshot keeps.
const KEEP_ERRORS: usize = 10;

/// Load generator options; see [`LoadGenOptions::new`] for defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadGenOptions {
    /// The URL to GET.
    pub url: String,
    /// Requests started per second (open loop: not slowed down by slow answers).
    pub rate_per_sec: f64,
    /// Stop by itself after this long; `None` runs until [`LoadGen::stop`].
    pub duration: Option<Duration>,
    /// Open a new connection for every request (no keepalive). Keepalive clients can see
    /// a connection reset when NGINX reloads (TESTBED §7); new connections do not.
    pub new_connection_per_request: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight at most; ticks beyond it are counted as `skipped`.
    pub max_in_flight: usize,
}

impl LoadGenOptions {
    /// Keepalive, unbounded duration, 5 s timeout, 256 in flight.
    pub fn new(url: &str, rate_per_sec: f64) -> Self {
        LoadGenOptions {
            url: url.to_string(),
            rate_per_sec,
            duration: None,
            new_connection_per_request: false,
            timeout: Duration::from_secs(5),
            max_in_flight: 256,
        }
    }
}

/// Counters of a load run (cumulative since start, or a window via [`LoadSnapshot::since`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadSnapshot {
    /// Requests started.
    pub sent: u64,
    /// HTTP answers by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// HTTP answers by `X-Version` header ("none" when absent, e.g. NGINX's own 502).
    pub by_version: BTreeMap<String, u64>,
    /// HTTP answers by (version, status).
    pub by_version_status: BTreeMap<(String, u16), u64>,
    /// Transport failures: refused, reset, closed before an answer.
    pub conn_errors: u64,
    /// Requests that hit the timeout.
    pub timeouts: u64,
    /// Ticks dropped because `max_in_flight` requests were pending.
    pub skipped: u64,
    /// The latest transport error messages (at most 10).
    pub last_errors: Vec<String>,
}

impl LoadSnapshot {
    /// HTTP answers of any status.
    pub fn responses(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// Answers with status >= 500.
    pub fn server_errors(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(c, _)| **c >= 500)
            .map(|(_, n)| n)
            .sum()
    }

    /// 5xx answers plus transport failures plus timeouts.
    pub fn failures(&self) -> u64 {
        self.server_errors() + self.conn_errors + self.timeouts
    }

    /// failures / (answers + transport failures + timeouts); 0 when nothing finished.
    pub fn error_rate(&self) -> f64 {
        ratio(
            self.failures(),
            self.responses() + self.conn_errors + self.timeouts,
        )
    }

    /// Answers carrying `X-Version: version`.
    pub fn version(&self, version: &str) -> u64 {
        self.by_version.get(version).copied().unwrap_or(0)
    }

    /// Share of all answers that came from `version` (0 when there were none).
    pub fn version_share(&self, version: &str) -> f64 {
        ratio(self.version(version), self.responses())
    }

    /// 5xx share among `version`'s answers (0 when there were none).
    pub fn version_error_rate(&self, version: &str) -> f64 {
        let bad = self
            .by_version_status
            .iter()
            .filter(|((v, c), _)| v == version && *c >= 500)
            .map(|(_, n)| n)
            .sum();
        ratio(bad, self.version(version))
    }

    /// The counts between `earlier` and `self` (both from the same run).
    pub fn since(&self, earlier: &LoadSnapshot) -> LoadSnapshot {
        fn diff<K: Ord + Clone>(a: &BTreeMap<K, u64>, b: &BTreeMap<K, u64>) -> BTreeMap<K, u64> {
            a.iter()
                .map(|(k, n)| (k.clone(), n.saturating_sub(b.get(k).copied().unwrap_or(0))))
                .filter(|(_, n)| *n > 0)
                .collect()
        }
        LoadSnapshot {
            sent: self.sent.saturating_sub(earlier.sent),
            by_status: diff(&self.by_status, &earlier.by_status),
            by_version: diff(&self.by_version, &earlier.by_version),
            by_version_status: diff(&self.by_version_status, &earlier.by_version_status),
            conn_errors: self.conn_errors.saturating_sub(earlier.conn_errors),
            timeouts: self.timeouts.saturating_sub(earlier.timeouts),
            skipped: self.skipped.saturating_sub(earlier.skipped),
            last_errors: self.last_errors.clone(),
        }
    }

    fn record_answer(&mut self, status: u16, version: String) {
        *self.by_status.entry(status).or_insert(0) += 1;
        *self.by_version.entry(version.clone()).or_insert(0) += 1;
        *self.by_version_status.entry((version, status)).or_insert(0) += 1;
    }

    fn record_error(&mut self, timeout: bool, msg: String) {
        if timeout {
            self.timeouts += 1;
        } else {
            self.conn_errors += 1;
        }
        if self.last_errors.len() == KEEP_ERRORS {
            self.last_errors.remove(0);
        }
        self.last_errors.push(msg);
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A running load generator; stops when dropped.
#[derive(Debug)]
pub struct LoadGen {
    stats: Arc<Mutex<LoadSnapshot>>,
    stop_tx: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    has_duration: bool,
}

fn lock(m: &Mutex<LoadSnapshot>) -> std::sync::MutexGuard<'_, LoadSnapshot> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LoadGen {
    /// Keepalive load at `rate_per_sec` against `url` until stopped. Needs a tokio runtime.
    pub fn start(url: &str, rate_per_sec: f64) -> LoadGen {
        LoadGen::start_with(LoadGenOptions::new(url, rate_per_sec))
    }

    /// Load with explicit options. Needs a tokio runtime.
    pub fn start_with(opts: LoadGenOptions) -> LoadGen {
        let stats = Arc::new(Mutex::new(LoadSnapshot::default()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let has_duration = opts.duration.is_some();
        let task = tokio::spawn(run(opts, stats.clone(), stop_rx));
        LoadGen {
            stats,
            stop_tx,
            task: Some(task),
            has_duration,
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> LoadSnapshot {
        lock(&self.stats).clone()
    }

    /// The counts of the next `window`.
    pub async fn measure(&self, window: Duration) -> LoadSnapshot {
        let before = self.snapshot();
        tokio::time::sleep(window).await;
        self.snapshot().since(&before)
    }

    /// Stops sending, waits for requests in flight, returns the final counts.
    pub async fn stop(mut self) -> LoadSnapshot {
        let _ = self.stop_tx.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.snapshot()
    }

    /// Waits until the configured duration has passed (stops at once without one).
    pub async fn wait(mut self) -> LoadSnapshot {
        if !self.has_duration {
            return self.stop().await;
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.snapshot()
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        let _ = self.stop_tx.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn run(
    opts: LoadGenOptions,
    stats: Arc<Mutex<LoadSnapshot>>,
    mut stop: watch::Receiver<bool>,
) {
    crate::init_tls();
    let mut builder = reqwest::Client::builder().no_proxy().timeout(opts.timeout);
    if opts.new_connection_per_request {
        builder = builder.pool_max_idle_per_host(0);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            lock(&stats).record_error(false, format!("building client: {e}"));
            return;
        }
    };
    let rate = if opts.rate_per_sec.is_finite() && opts.rate_per_sec > 0.0 {
        opts.rate_per_sec
    } else {
        1.0
    };
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let slots = Arc::new(Semaphore::new(opts.max_in_flight.max(1)));
    let mut inflight = JoinSet::new();
    let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
    loop {
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
            _ = until_deadline => break,
        }
        while inflight.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            lock(&stats).skipped += 1;
            continue;
        };
        lock(&stats).sent += 1;
        let (client, url, stats) = (client.clone(), opts.url.clone(), stats.clone());
        inflight.spawn(async move {
            let _permit = permit;
            one_request(&client, &url, &stats).await;
        });
    }
    while inflight.join_next().await.is_some() {}
}

async fn one_request(client: &reqwest::Client, url: &str, stats: &Mutex<LoadSnapshot>) {
    match client.get(url).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let version = resp
                .headers()
                .get("x-version")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_string();
            // Read the body so the connection can be reused; a failure there is a transport error.
            match resp.bytes().await {
                Ok(_) => lock(stats).record_answer(status, version),
                Err(e) => lock(stats).record_error(e.is_timeout(), format!("body: {e}")),
            }
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            lock(stats).record_error(e.is_timeout(), msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(answers: &[(&str, u16, u64)], conn: u64) -> LoadSnapshot {
        let mut s = LoadSnapshot::default();
        for (v, c, n) in answers {
            for _ in 0..*n {
                s.record_answer(*c, v.to_string());
            }
        }
        for _ in 0..conn {
            s.record_error(false, "reset".into());
        }
        s
    }

    #[test]
    fn rates_and_shares() {
        let s = snap(
            &[("stable", 200, 90), ("canary", 200, 8), ("canary", 500, 2)],
            0,
        );
        assert_eq!(s.responses(), 100);
        assert_eq!(s.server_errors(), 2);
        assert!((s.error_rate() - 0.02).abs() < 1e-12);
        assert!((s.version_share("canary") - 0.10).abs() < 1e-12);
        assert!((s.version_error_rate("canary") - 0.2).abs() < 1e-12);
        assert_eq!(s.version_error_rate("stable"), 0.0);
        assert_eq!(LoadSnapshot::default().error_rate(), 0.0);
    }

    #[test]
    fn connection_errors_count_as_failures() {
        let s = snap(&[("stable", 200, 9)], 1);
        assert_eq!(s.failures(), 1);
        assert!((s.error_rate() - 0.1).abs() < 1e-12);
        assert_eq!(s.last_errors.len(), 1);
    }

    #[test]
    fn since_gives_the_window() {
        let a = snap(&[("stable", 200, 5)], 1);
        let b = snap(&[("stable", 200, 8), ("canary", 500, 2)], 1);
        let w = b.since(&a);
        assert_eq!(w.version("stable"), 3);
        assert_eq!(w.server_errors(), 2);
        assert_eq!(w.conn_errors, 0);
    }
}
