//! A small W3C WebDriver client over plain HTTP (reqwest) for Debian's `chromedriver` driving
//! headless `chromium`. Endpoints and the element key are the W3C WebDriver spec's
//! (<https://www.w3.org/TR/webdriver2/>: New Session, Navigate To, Find Element, Element Send
//! Keys, Element Click, Execute Script, Take Screenshot, Delete Session); chromedriver speaks
//! it as JSON over HTTP. `goog:chromeOptions` (binary, args) is chromedriver's vendor
//! capability (MDN "WebDriver classic capabilities": vendor capabilities are prefixed).
//! The driver and the browser are stopped when [`Browser`] drops.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use sluice_tests::{free_port, http_client, Proc};

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
    driver: Proc,
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

impl Browser {
    /// Starts chromedriver on a free loopback port and one headless Chromium session.
    pub async fn start(log_dir: &Path) -> Browser {
        let driver_bin = which("chromedriver")
            .expect("chromedriver not found: run scripts/install-deps.sh (Debian chromium-driver)");
        let chromium = which("chromium").expect("chromium not found: run scripts/install-deps.sh");
        let port = free_port();
        let mut cmd = Command::new(driver_bin);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1");
        let mut driver = Proc::spawn("chromedriver", &mut cmd, &log_dir.join("chromedriver.log"))
            .expect("spawn chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        driver
            .wait_ready(&format!("{base}/status"), Duration::from_secs(20))
            .await
            .expect("chromedriver ready");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let http = http_client();
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("new session JSON");
        let session = r
            .pointer("/value/sessionId")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no session: {r}\n{}", driver.log_tail(30)))
            .to_string();
        Browser {
            base,
            session,
            http,
            _profile: profile,
            driver,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// One WebDriver command; `Err` carries the URL, status and the driver's error JSON.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{url}: {status} {v}"));
        }
        Ok(v.get("value").cloned().unwrap_or(Value::Null))
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    /// Types `text` into the element (real key events, as a person would).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clicks the element; finds it again if a live update replaced it in between (the
    /// spec's "stale element reference").
    pub async fn click(&self, css: &str) {
        for attempt in 0.. {
            let id = self.element(css).await;
            match self
                .try_call(
                    reqwest::Method::POST,
                    &format!("/element/{id}/click"),
                    Some(json!({})),
                )
                .await
            {
                Ok(_) => return,
                Err(e) if e.contains("stale element reference") && attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Polls `script` until it returns true; panics with `what` and the page's text on timeout.
    pub async fn wait_until(&self, what: &str, timeout: Duration, script: &str) {
        let t0 = Instant::now();
        loop {
            if self.eval(script, json!([])).await == Value::Bool(true) {
                return;
            }
            if t0.elapsed() > timeout {
                let text = self.eval("return document.body.innerText", json!([])).await;
                panic!("timed out after {timeout:?} waiting for {what}; page text:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.eval("return document.body.innerText", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let b64 = v.as_str().expect("screenshot is a base64 string");
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("screenshot base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: ask the driver to close Chromium; the driver itself stops with `Proc`.
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        http_client().delete(url).send(),
                    )
                    .await;
                });
            }
        })
        .join();
    }
}
