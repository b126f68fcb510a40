//! A renderer for exactly the Helm template subset `charts/sluice` uses (helm cannot be
//! installed from the registries these machines reach): whole-line `if` / `else` / `end` and
//! `toYaml X | nindent N`, and inline `.Values.*`, `.Release.Name`, `.Release.Namespace`,
//! `.Chart.AppVersion`, `.Chart.Version`, optionally `| quote`. Anything else panics, so a
//! template that uses more fails the tests instead of rendering wrongly. Shared by
//! `manifests.rs` and `install_manifests.rs`.

use std::path::{Path, PathBuf};

use serde_json::Value;

struct Chart {
    values: Value,
    meta: Value,
    release: &'static str,
    namespace: &'static str,
}

impl Chart {
    fn lookup(&self, path: &str) -> Value {
        let path = path.trim();
        if let Some(rest) = path.strip_prefix(".Values.") {
            let mut v = &self.values;
            for part in rest.split('.') {
                v = v.get(part).unwrap_or_else(|| panic!("no value {path}"));
            }
            return v.clone();
        }
        match path {
            ".Release.Name" => Value::String(self.release.into()),
            ".Release.Namespace" => Value::String(self.namespace.into()),
            ".Chart.AppVersion" => self.meta["appVersion"].clone(),
            ".Chart.Version" => self.meta["version"].clone(),
            _ => panic!("unsupported template value {path}"),
        }
    }

    fn expr(&self, e: &str) -> String {
        let mut parts = e.split('|').map(str::trim);
        let v = self.lookup(parts.next().unwrap_or_default());
        let s = match &v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match parts.next() {
            None => s,
            Some("quote") => format!("{s:?}"),
            Some(f) => panic!("unsupported template function {f}"),
        }
    }

    fn render(&self, template: &str) -> String {
        let mut out = String::new();
        // (active, branch already taken)
        let mut stack: Vec<(bool, bool)> = Vec::new();
        for line in template.lines() {
            let t = line.trim();
            let active = stack.iter().all(|(a, _)| *a);
            if t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1 {
                let inner = t.trim_start_matches("{{").trim_end_matches("}}");
                let inner = inner.trim_matches(|c: char| c == '-' || c.is_whitespace());
                let (word, rest) = inner.split_once(' ').unwrap_or((inner, ""));
                match word {
                    "if" => {
                        let cond = truthy(&self.lookup(rest));
                        stack.push((cond, cond));
                    }
                    "else" => {
                        let top = stack.last_mut().expect("else without if");
                        top.0 = !top.1;
                    }
                    "end" => drop(stack.pop().expect("end without if")),
                    "toYaml" if active => {
                        let (path, indent) =
                            rest.split_once("| nindent").expect("toYaml x | nindent N");
                        let n: usize = indent.trim().parse().expect("indent");
                        let yaml = serde_saphyr::to_string(&self.lookup(path)).expect("yaml");
                        for l in yaml.lines() {
                            out.push_str(&format!("{}{l}\n", " ".repeat(n)));
                        }
                    }
                    "toYaml" => {}
                    other => panic!("unsupported template action {other}"),
                }
                continue;
            }
            if !active {
                continue;
            }
            let mut rest = line;
            while let Some(start) = rest.find("{{") {
                let end = rest[start..].find("}}").expect("unclosed {{") + start;
                out.push_str(&rest[..start]);
                out.push_str(&self.expr(rest[start + 2..end].trim_matches('-')));
                rest = &rest[end + 2..];
            }
            out.push_str(rest);
            out.push('\n');
        }
        assert!(stack.is_empty(), "unbalanced if/end");
        out
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (_, Value::Null) => {}
        (b, o) => *b = o.clone(),
    }
}

/// The rendered documents of every template (and nothing for a template whose `if` is off),
/// with their origin, for release `sluice` in namespace `sluice-system`; `overrides` is merged
/// over values.yaml as `--set`/`-f` would.
pub fn render_chart(dir: &Path, overrides: &Value) -> Vec<(String, Value)> {
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).expect("chart file");
    let meta: Value = serde_saphyr::from_str(&read("Chart.yaml")).expect("Chart.yaml");
    let mut values: Value = serde_saphyr::from_str(&read("values.yaml")).expect("values.yaml");
    merge(&mut values, overrides);
    let chart = Chart {
        values,
        meta,
        release: "sluice",
        namespace: "sluice-system",
    };
    let mut out = Vec::new();
    for t in templates(&dir.join("templates")) {
        let origin = format!(
            "rendered {}",
            t.file_name().unwrap_or_default().to_string_lossy()
        );
        let rendered = chart.render(&std::fs::read_to_string(&t).expect("template"));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&rendered)
            .unwrap_or_else(|e| panic!("{origin}: not valid YAML: {e}\n{rendered}"));
        out.extend(
            docs.into_iter()
                .filter(|d| !d.is_null())
                .map(|d| (origin.clone(), d)),
        );
    }
    out
}

/// The chart's template files, sorted.
pub fn templates(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("templates/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
        .collect();
    out.sort();
    out
}
