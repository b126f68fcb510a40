//! Schema helpers for fields whose shape is opaque to the API server.

use schemars::{json_schema, Schema, SchemaGenerator};

/// An object the API server stores as-is (`x-kubernetes-preserve-unknown-fields`).
pub fn preserve_unknown(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
