//! Strict JSON request bodies: size-limited, parsed with serde_json (its recursion limit rejects
//! deep nesting), every failure mapped to a 4xx `ApiError` instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body; `Option<T>` semantics via [`OptionalJson`] for commands whose body may be empty.
pub struct StrictJson<T>(pub T);

/// A JSON body that may be absent (empty body): `None`.
pub struct OptionalJson<T>(pub Option<T>);

async fn read_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rej| {
        let status = rej.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "payload_too_large",
                format!("request body larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::bad_request(format!("cannot read request body: {rej}"))
        }
    })
}

/// Deepest accepted nesting of arrays/objects (Alertmanager's payload needs 3).
pub const MAX_DEPTH: usize = 32;

/// Nesting depth of a JSON text (brackets inside strings do not count); stops early past `limit`.
pub fn json_depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_str, mut escaped) = (false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
                if max > limit {
                    return max;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parse `bytes` as JSON of type `T`, mapping serde errors to a 400 with the position.
/// Nesting deeper than [`MAX_DEPTH`] is refused even inside ignored fields.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if json_depth(bytes, MAX_DEPTH) > MAX_DEPTH {
        return Err(ApiError::bad_request(format!(
            "JSON nested deeper than {MAX_DEPTH} levels"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Eof => "truncated JSON",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "unexpected JSON content",
            serde_json::error::Category::Io => "unreadable body",
        };
        ApiError::bad_request(format!("{kind}: {e}"))
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("empty request body; JSON expected"));
        }
        parse_json(&bytes).map(StrictJson)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::json_depth;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a":[1,{"b":2}]}"#, 10), 3);
        assert_eq!(json_depth(br#"{"a":"[[[[\"[["}"#, 10), 1);
        assert_eq!(json_depth(b"[[[[[[", 3), 4);
        assert_eq!(json_depth(b"", 3), 0);
    }
}
