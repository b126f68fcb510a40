//! Schema helpers: fields whose shape is opaque to the API server, and the integer bounds the
//! API server enforces.
//!
//! The API server does not enforce `format` on CRD integers (a `format: int32` field stores
//! `3000000000`, and the typed client then fails to decode the whole LIST), but it does enforce
//! `minimum`/`maximum`. It also warns about integer formats other than `int32`/`int64`
//! (`GetUnrecognizedFormats` in apiextensions-apiserver `pkg/apiserver/validation/formats.go`),
//! which schemars emits for unsigned Rust types (`uint32`, `uint64`). [`k8s_integers`] gives
//! every integer explicit bounds that fit its Rust type and keeps only the two known formats.

use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

/// An object the API server stores as-is (`x-kubernetes-preserve-unknown-fields`).
pub fn preserve_unknown(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Largest integer a JSON number (an IEEE double) holds exactly: the bound of 64-bit fields.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Schemars transform, applied to the root of each CRD type: every `integer` schema in the
/// tree gets `minimum` and `maximum` (the tighter of those already set and its Rust type's
/// range) and a format the API server knows (`int32` or `int64`).
pub fn k8s_integers(schema: &mut Schema) {
    if let Some(obj) = schema.as_object_mut() {
        fix_object(obj);
    }
}

fn is_integer(obj: &Map<String, Value>) -> bool {
    match obj.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
        _ => false,
    }
}

/// (minimum, maximum, format to keep) for a schemars integer format.
fn range_of(format: Option<&str>) -> (i64, i64, &'static str) {
    match format {
        Some("int8") => (i64::from(i8::MIN), i64::from(i8::MAX), "int32"),
        Some("int16") => (i64::from(i16::MIN), i64::from(i16::MAX), "int32"),
        Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX), "int32"),
        Some("uint8") => (0, i64::from(u8::MAX), "int32"),
        Some("uint16") => (0, i64::from(u16::MAX), "int32"),
        Some("uint32") => (0, i64::from(u32::MAX), "int64"),
        Some(f) if f.starts_with('u') => (0, MAX_SAFE_INTEGER, "int64"),
        _ => (-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER, "int64"),
    }
}

fn bound(obj: &Map<String, Value>, key: &str) -> Option<f64> {
    obj.get(key).and_then(Value::as_f64)
}

fn fix_integer(obj: &mut Map<String, Value>) {
    let (lo, hi, format) = range_of(obj.get("format").and_then(Value::as_str));
    // i64 -> f64 is exact for every value range_of returns (all within 2^53).
    let lo = bound(obj, "minimum").map_or(lo as f64, |m| m.max(lo as f64));
    let hi = bound(obj, "maximum").map_or(hi as f64, |m| m.min(hi as f64));
    obj.insert("minimum".into(), Value::from(lo as i64));
    obj.insert("maximum".into(), Value::from(hi as i64));
    obj.insert("format".into(), Value::from(format));
}

fn fix_object(obj: &mut Map<String, Value>) {
    if is_integer(obj) {
        fix_integer(obj);
    }
    for (key, value) in obj.iter_mut() {
        match key.as_str() {
            // Inner schemas: keep walking.
            "properties" | "patternProperties" | "$defs" | "definitions" => {
                if let Value::Object(props) = value {
                    for v in props.values_mut() {
                        fix_value(v);
                    }
                }
            }
            "items" | "additionalProperties" | "not" => fix_value(value),
            "anyOf" | "oneOf" | "allOf" => {
                if let Value::Array(items) = value {
                    items.iter_mut().for_each(fix_value);
                }
            }
            _ => {}
        }
    }
}

fn fix_value(v: &mut Value) {
    match v {
        Value::Object(obj) => fix_object(obj),
        Value::Array(items) => items.iter_mut().for_each(fix_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixed(v: Value) -> Value {
        let mut s: Schema = serde_json::from_value(v).expect("schema");
        k8s_integers(&mut s);
        s.to_value()
    }

    #[test]
    fn unsigned_formats_become_int64_with_their_range() {
        let out = fixed(json!({"type": "object", "properties": {
            "a": {"type": "integer", "format": "uint32", "minimum": 0},
            "b": {"type": ["integer", "null"], "format": "uint64"},
            "c": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 100},
            "d": {"type": "array", "items": {"type": "integer", "format": "int64"}}
        }}));
        let p = &out["properties"];
        assert_eq!(
            p["a"],
            json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295_u32})
        );
        assert_eq!(p["b"]["format"], "int64");
        assert_eq!(p["b"]["maximum"], MAX_SAFE_INTEGER);
        assert_eq!(p["c"]["minimum"], 1);
        assert_eq!(p["c"]["maximum"], 100);
        assert_eq!(p["c"]["format"], "int32");
        assert_eq!(p["d"]["items"]["minimum"], -MAX_SAFE_INTEGER);
    }

    #[test]
    fn a_wider_explicit_bound_is_narrowed_to_the_type() {
        let out = fixed(json!({"type": "integer", "format": "int32", "maximum": 1e12}));
        assert_eq!(out["maximum"], i64::from(i32::MAX));
        assert_eq!(out["minimum"], i64::from(i32::MIN));
    }
}
