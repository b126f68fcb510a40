//! What the API server enforces from the generated CRDs: every integer bounded (it ignores
//! `format`), only formats it knows (it warns about others), and the cross-field rules as CEL
//! `x-kubernetes-validations`, evaluated here by kube's client-side CEL validator (kube-cel,
//! which implements the Kubernetes CEL libraries) on the examples and on bad Rollouts.

use std::path::{Path, PathBuf};

use kube::core::cel::{compile_schema, Validator};
use kube::CustomResourceExt;
use serde_json::{json, Value};
use sluice_crds::{AnalysisTemplate, Rollout};

fn schema_of<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("schema");
    serde_json::to_value(schema).expect("json")
}

/// (path, schema) of every sub-schema.
fn walk<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    let Value::Object(obj) = v else { return };
    out.push((path.clone(), v));
    if let Some(Value::Object(props)) = obj.get("properties") {
        for (k, p) in props {
            walk(p, format!("{path}.{k}"), out);
        }
    }
    for k in ["items", "additionalProperties"] {
        if let Some(p) = obj.get(k) {
            walk(p, format!("{path}[]"), out);
        }
    }
}

fn subschemas(v: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

#[test]
fn every_integer_is_bounded_and_every_format_is_known() {
    // Formats apiextensions-apiserver recognises (pkg/apiserver/validation/formats.go); integers
    // only int32/int64, numbers only float/double.
    let string_formats = ["date-time", "datetime", "date", "duration", "byte", "uri"];
    for (crd, schema) in [
        ("Rollout", schema_of::<Rollout>()),
        ("AnalysisTemplate", schema_of::<AnalysisTemplate>()),
    ] {
        let mut integers = 0;
        for (path, s) in subschemas(&schema) {
            let format = s.get("format").and_then(Value::as_str);
            match s.get("type").and_then(Value::as_str) {
                Some("integer") => {
                    integers += 1;
                    let (lo, hi) = (s["minimum"].as_f64(), s["maximum"].as_f64());
                    assert!(lo.is_some() && hi.is_some(), "{crd}{path}: {s}");
                    assert!(
                        matches!(format, Some("int32" | "int64")),
                        "{crd}{path}: format {format:?}"
                    );
                    if format == Some("int32") {
                        assert!(lo >= Some(f64::from(i32::MIN)) && hi <= Some(f64::from(i32::MAX)));
                    }
                }
                Some("number") => assert!(
                    matches!(format, None | Some("double" | "float")),
                    "{crd}{path}: format {format:?}"
                ),
                _ => assert!(
                    format.is_none_or(|f| string_formats.contains(&f)),
                    "{crd}{path}: format {format:?}"
                ),
            }
        }
        assert!(integers >= 1, "{crd}: only {integers} integers found");
    }
}

#[test]
fn the_weight_that_broke_decoding_is_out_of_the_schema_range() {
    let schema = schema_of::<Rollout>();
    let all = subschemas(&schema);
    let find = |p: &str| {
        all.iter()
            .find(|(path, _)| path == p)
            .map(|(_, s)| (*s).clone())
            .unwrap_or_else(|| panic!("no {p}"))
    };
    let w = find(".spec.strategy.canary.steps[].setWeight");
    assert_eq!(
        (w["minimum"].as_f64(), w["maximum"].as_f64()),
        (Some(0.0), Some(100.0))
    );
    let step = find(".status.currentStep");
    assert_eq!(step["maximum"].as_f64(), Some(f64::from(u32::MAX)));
}

#[test]
fn every_rule_compiles() {
    for schema in [schema_of::<Rollout>(), schema_of::<AnalysisTemplate>()] {
        let compiled = compile_schema(&schema);
        let errors = compiled.compilation_errors();
        assert!(errors.is_empty(), "{errors:?}");
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn example_rollouts() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("examples")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("examples").flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if !p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("read");
            let Ok(docs) = serde_saphyr::from_multiple::<Value>(&text) else {
                continue;
            };
            for d in docs {
                if d["kind"] == "Rollout" && d["apiVersion"] == "sluice.dev/v1alpha1" {
                    out.push((p.display().to_string(), d));
                }
            }
        }
    }
    out
}

fn check(doc: &Value) -> Result<(), Vec<String>> {
    Validator::new()
        .validate(&schema_of::<Rollout>(), doc, None)
        .map_err(|e| e.iter().map(|x| x.to_string()).collect())
}

#[test]
fn the_examples_pass_the_rules() {
    let examples = example_rollouts();
    assert!(examples.len() >= 2, "found {}", examples.len());
    for (origin, doc) in examples {
        assert_eq!(check(&doc), Ok(()), "{origin}");
    }
}

fn base() -> Value {
    json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "podinfo", "namespace": "demo"},
        "spec": {
            "targetRef": {"name": "podinfo"},
            "service": {"port": 80},
            "strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]}},
            "router": {"nginx": {"ingressRef": "podinfo"}},
            "analysis": {"metrics": [{"name": "p99", "builtin": "nginx-latency-p99", "threshold": {"max": 0.5}}]}
        }
    })
}

/// Apply a JSON merge patch (RFC 7386) to the spec.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[test]
fn bad_rollouts_are_refused_with_a_message_naming_the_rule() {
    assert_eq!(check(&base()), Ok(()));
    let mut web = base();
    merge(
        &mut web["spec"],
        &json!({"analysis": {"metrics": [{"name": "score", "threshold": {"min": 0.9},
            "web": {"url": "http://checks/score", "method": "POST", "body": "{}", "jsonPointer": "/score"}}]}}),
    );
    assert_eq!(check(&web), Ok(()), "a valid web metric");
    let mut gated = base();
    merge(
        &mut gated["spec"],
        &json!({"gates": {"confirmPromotion": {"deadline": "1h", "onDeadline": "hold",
            "checks": [{"name": "ok", "url": "http://approvals/ok",
                "headers": [{"name": "Authorization", "secretKeyRef": {"name": "s", "key": "token"}}]}]}}}),
    );
    assert_eq!(check(&gated), Ok(()), "a valid gate");
    let cases = [
        (
            json!({"gates": {"preRollout": {"checks": [{"name": "a", "url": "https://x/y"}]}}}),
            "url must be an http:// URL",
        ),
        (
            json!({"gates": {"preRollout": {"checks": [{"name": "a", "url": "http://x/y",
                "headers": [{"name": "A", "value": "v", "env": "B"}]}]}}}),
            "set exactly one of value, secretKeyRef, env",
        ),
        (
            json!({"gates": {"preRollout": {"checks": [{"name": "a", "url": "http://x/y",
                "headers": [{"name": "A"}]}]}}}),
            "set exactly one of value, secretKeyRef, env",
        ),
        (
            json!({"strategy": {"blueGreen": {}}}),
            "set exactly one of canary or blueGreen",
        ),
        (
            json!({"strategy": {"canary": null}}),
            "set exactly one of canary or blueGreen",
        ),
        (
            json!({"router": {"traefik": {}}}),
            "set exactly one of nginx, traefik, gatewayApi",
        ),
        (
            json!({"strategy": {"canary": {"steps": [{"setWeight": 50}, {"setWeight": 10}]}}}),
            "setWeight must not decrease",
        ),
        (
            json!({"strategy": {"canary": {"steps": [{"setWeight": 10, "pause": {}}]}}}),
            "exactly one of setWeight, pause, analysis",
        ),
        (
            json!({"strategy": {"canary": {"stepWeight": 10}}}),
            "set steps, or stepWeight",
        ),
        (
            json!({"strategy": {"canary": {"steps": null, "stepWeight": 60, "maxWeight": 40}}}),
            "stepWeight must not exceed maxWeight",
        ),
        (
            json!({"targetRef": {"kind": "StatefulSet"}}),
            "only kind Deployment",
        ),
        (
            json!({"router": {"nginx": {"canaryByHeaderValue": "x"}}}),
            "canaryByHeaderValue needs canaryByHeader",
        ),
        (
            json!({"router": {"nginx": null, "traefik": {"apiGroup": "example.com"}}}),
            "apiGroup must be traefik.io",
        ),
        (
            json!({"analysis": {"metrics": null}}),
            "at least one metric",
        ),
        (
            json!({"analysis": {"metrics": [{"name": "e", "builtin": "b", "query": "q", "threshold": {"max": 1}}]}}),
            "builtin and query are exclusive",
        ),
        (
            json!({"analysis": {"metrics": [{"name": "w", "web": {"url": "http://checks/x"}}]}}),
            "a web metric needs a threshold and no builtin, query or comparison",
        ),
        (
            json!({"analysis": {"metrics": [{"name": "w", "query": "up", "threshold": {"max": 1}, "web": {"url": "http://checks/x"}}]}}),
            "a web metric needs a threshold and no builtin, query or comparison",
        ),
        (
            json!({"analysis": {"metrics": [{"name": "j", "threshold": {"max": 1}, "job": {"spec": {}}}]}}),
            "a job metric is judged by the Job's success",
        ),
        (
            json!({"analysis": {"metrics": [{"name": "e", "builtin": "b", "threshold": {"min": 2, "max": 1}}]}}),
            "min must not exceed max",
        ),
        (
            json!({"analysis": {"metrics": [{"name": "e", "builtin": "b", "threshold": {}}]}}),
            "set min or max",
        ),
        (
            json!({"analysis": {"metrics": [{"name": "e", "builtin": "nginx-errors-vs-stable", "comparison": {"alpha": 1.5}}]}}),
            "alpha must be in (0, 1)",
        ),
        (
            json!({"analysis": {"metrics": [{"name": "e", "builtin": "nginx-errors-vs-stable", "comparison": {"toleratedRatio": 3}}]}}),
            "degradedRatio (default 2) must exceed",
        ),
    ];
    for (patch, want) in cases {
        let mut doc = base();
        merge(&mut doc["spec"], &patch);
        let errs = check(&doc).expect_err(&format!("{patch} should be refused"));
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{patch}: wanted {want:?}, got {errs:?}"
        );
    }
}
