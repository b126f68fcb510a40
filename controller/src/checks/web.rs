//! Web metrics (`metrics[].web`): one HTTP request per analysis run, the number at a JSON
//! Pointer in the answer judged by the metric's threshold.
//!
//! The pointer is RFC 6901 as `serde_json::Value::pointer` reads it (`/data/0/value`; `~1` for
//! `/` and `~0` for `~` inside a key; empty for the whole document). What each answer becomes:
//! - no answer (connection refused, timeout), a status outside 2xx, a body over
//!   [`MAX_BODY`] bytes or one that is not JSON: **Error** (counts toward `errorLimit`), with
//!   the method, URL and what happened;
//! - nothing at the pointer: **Inconclusive** (no data);
//! - `null`, a boolean, an object, an array, a string that is not a number, or a value that is
//!   not finite: **Inconclusive** (not a number), saying what was there;
//! - a number, or a string holding one (Prometheus-style `"0.25"`): judged against the
//!   threshold (Pass / Fail).

use std::time::Duration;

use sluice_analysis::{judge_value, render_with, InconclusiveCause, Threshold, Variables, Verdict};
use sluice_crds::{WebCheck, WebMethod};

/// The largest answer read; a longer one is an Error (a metric endpoint answers with a number).
pub const MAX_BODY: usize = 1 << 20;
/// Request timeout when the check sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A web check's request with its templates rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebRequest {
    pub method: WebMethod,
    pub url: String,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

impl WebRequest {
    /// `GET http://…`, for reasons and the run's list of queries.
    pub fn describe(&self) -> String {
        let m = match self.method {
            WebMethod::Get => "GET",
            WebMethod::Post => "POST",
        };
        format!("{m} {}", self.url)
    }
}

/// Renders the URL, body and header values with the step's variables.
pub fn render_request(check: &WebCheck, vars: &Variables) -> Result<WebRequest, String> {
    let r = |what: &str, t: &str, encode: &dyn Fn(&str) -> String| {
        render_with(t, vars, encode).map_err(|e| format!("web {what}: {e}"))
    };
    let timeout = match &check.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => sluice_crds::parse_duration(t).map_err(|e| format!("web timeout: {e}"))?,
    };
    let mut headers = Vec::with_capacity(check.headers.len());
    for (k, v) in &check.headers {
        headers.push((k.clone(), r(&format!("header {k}"), v, &|x| x.to_string())?));
    }
    Ok(WebRequest {
        method: check.method,
        url: r("url", &check.url, &percent_encode)?,
        body: check
            .body
            .as_deref()
            .map(|b| r("body", b, &json_escape))
            .transpose()?,
        headers,
        timeout,
    })
}

/// A value inside a URL: RFC 3986 unreserved characters as they are, every other byte `%XX`.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A value inside a JSON string: what `serde_json` writes between the quotes.
fn json_escape(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// What the endpoint answered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Judges an answer (pure).
pub fn judge_answer(
    req: &WebRequest,
    answer: &WebAnswer,
    pointer: &str,
    limits: &Threshold,
) -> Verdict {
    let what = req.describe();
    if !(200..300).contains(&answer.status) {
        return Verdict::error(format!("{what} answered HTTP {}", answer.status));
    }
    if answer.body.len() > MAX_BODY {
        return Verdict::error(format!(
            "{what} answered more than {} KiB; point the check at an endpoint that returns the number",
            MAX_BODY / 1024
        ));
    }
    let doc: serde_json::Value = match serde_json::from_slice(&answer.body) {
        Ok(d) => d,
        Err(e) => return Verdict::error(format!("{what} did not answer JSON: {e}")),
    };
    let Some(found) = doc.pointer(pointer) else {
        return Verdict::inconclusive(
            InconclusiveCause::NoData,
            None,
            format!("{what}: nothing at JSON pointer {pointer:?}"),
        );
    };
    let not_a_number = |shown: String| {
        Verdict::inconclusive(
            InconclusiveCause::NaN,
            None,
            format!("{what}: {shown} at {pointer:?} is not a number"),
        )
    };
    let value = match found {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match value {
        Some(v) if v.is_finite() => judge_value(v, limits),
        _ => not_a_number(shorten(&found.to_string())),
    }
}

/// At most 80 characters of a value, for a reason.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(80).collect::<String>())
    }
}

fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: std::sync::OnceLock<Result<reqwest::Client, String>> =
        std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // A workspace build enables reqwest's `rustls-no-provider`: without a provider
            // installed first, building the client panics (gates may run before any
            // Prometheus client was built).
            crate::cli::ensure_crypto_provider();
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Sends the request and reads at most [`MAX_BODY`] + 1 bytes of the answer.
pub async fn fetch(req: &WebRequest) -> Result<WebAnswer, String> {
    let what = req.describe();
    let mut b = match req.method {
        WebMethod::Get => client()?.get(&req.url),
        WebMethod::Post => client()?.post(&req.url),
    }
    .timeout(req.timeout);
    if let Some(body) = &req.body {
        b = b
            .header("content-type", "application/json")
            .body(body.clone());
    }
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let mut resp = b.send().await.map_err(|e| failed(&what, req, e))?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(&what, req, e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            break;
        }
    }
    Ok(WebAnswer { status, body })
}

fn failed(what: &str, req: &WebRequest, e: reqwest::Error) -> String {
    if e.is_timeout() {
        format!(
            "{what} did not answer within {} s (its timeout)",
            req.timeout.as_secs_f64()
        )
    } else {
        // The URL is in `what` already; reqwest's Display stops at the outermost error.
        format!(
            "{what} failed: {}",
            sluice_analysis::causes(&e.without_url())
        )
    }
}

/// Runs one web check: the verdict and the request it made (for the run's list of queries).
pub async fn evaluate(
    check: &WebCheck,
    limits: &Threshold,
    vars: &Variables,
) -> (Verdict, Option<String>) {
    let req = match render_request(check, vars) {
        Ok(r) => r,
        Err(e) => return (Verdict::error(e), None),
    };
    let verdict = match fetch(&req).await {
        Ok(answer) => judge_answer(&req, &answer, &check.json_pointer, limits),
        Err(e) => Verdict::error(e),
    };
    (verdict, Some(req.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> WebRequest {
        WebRequest {
            method: WebMethod::Get,
            url: "http://127.0.0.1:9/x".into(),
            body: None,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    const MAX: Threshold = Threshold {
        min: None,
        max: Some(0.5),
    };

    fn judged(status: u16, body: &str, pointer: &str) -> Verdict {
        let a = WebAnswer {
            status,
            body: body.as_bytes().to_vec(),
        };
        judge_answer(&req(), &a, pointer, &MAX)
    }

    use sluice_analysis::VerdictKind as K;

    #[test]
    fn numbers_and_numeric_strings_are_judged() {
        let v = judged(200, r#"{"data": {"rate": 0.25}}"#, "/data/rate");
        assert_eq!((v.kind, v.value), (K::Pass, Some(0.25)));
        let v = judged(200, r#"{"data": [{"v": "0.75"}]}"#, "/data/0/v");
        assert_eq!((v.kind, v.value), (K::Fail, Some(0.75)));
        let v = judged(200, "0.1", "");
        assert_eq!(v.kind, K::Pass);
        let v = judged(200, r#"{"a/b": 1}"#, "/a~1b");
        assert_eq!(v.kind, K::Fail);
    }

    #[test]
    fn what_is_not_a_number_is_inconclusive_with_what_was_there() {
        for (body, shown) in [
            (r#"{"v": null}"#, "null"),
            (r#"{"v": true}"#, "true"),
            (r#"{"v": "high"}"#, "\"high\""),
            (r#"{"v": {"x": 1}}"#, "{\"x\":1}"),
            (r#"{"v": "NaN"}"#, "\"NaN\""),
        ] {
            let v = judged(200, body, "/v");
            assert_eq!(v.kind, K::Inconclusive, "{body}");
            assert_eq!(v.cause, Some(InconclusiveCause::NaN), "{body}");
            assert!(v.reason.contains(shown), "{}", v.reason);
        }
        let v = judged(200, r#"{"v": 1}"#, "/w");
        assert_eq!(v.cause, Some(InconclusiveCause::NoData));
        assert!(
            v.reason.contains("nothing at JSON pointer \"/w\""),
            "{}",
            v.reason
        );
    }

    #[test]
    fn bad_answers_are_errors_that_say_what_happened() {
        let v = judged(503, "{}", "/v");
        assert_eq!(v.kind, K::Error);
        assert!(
            v.reason
                .contains("GET http://127.0.0.1:9/x answered HTTP 503"),
            "{}",
            v.reason
        );
        let v = judged(200, "<html>", "/v");
        assert_eq!(v.kind, K::Error);
        assert!(v.reason.contains("did not answer JSON"), "{}", v.reason);
        let big = format!("[{}0]", "0,".repeat(MAX_BODY / 2));
        let v = judged(200, &big, "/0");
        assert_eq!(v.kind, K::Error);
        assert!(v.reason.contains("more than 1024 KiB"), "{}", v.reason);
    }

    #[test]
    fn templates_are_rendered_and_unknown_variables_refused() {
        let vars: Variables = [("canary", "app-canary"), ("namespace", "shop")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let check = WebCheck {
            url: "http://checks.{{namespace}}/score?svc={{canary}}".into(),
            method: WebMethod::Post,
            body: Some(r#"{"service": "{{canary}}"}"#.into()),
            headers: [("X-Target".to_string(), "{{canary}}".to_string())].into(),
            json_pointer: "/score".into(),
            timeout: Some("2s".into()),
        };
        let r = render_request(&check, &vars).unwrap();
        assert_eq!(r.url, "http://checks.shop/score?svc=app-canary");
        assert_eq!(r.body.as_deref(), Some(r#"{"service": "app-canary"}"#));
        assert_eq!(r.headers, vec![("X-Target".into(), "app-canary".into())]);
        assert_eq!(r.timeout, Duration::from_secs(2));
        let odd: Variables = [("canary", "a b/\"c\"")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = render_request(&check, &vars.clone().into_iter().chain(odd).collect()).unwrap();
        assert_eq!(r.url, "http://checks.shop/score?svc=a%20b%2F%22c%22");
        assert_eq!(r.body.as_deref(), Some(r#"{"service": "a b/\"c\""}"#));
        let bad = WebCheck {
            url: "http://x/{{nope}}".into(),
            ..check
        };
        assert!(render_request(&bad, &vars).unwrap_err().contains("nope"));
    }
}
