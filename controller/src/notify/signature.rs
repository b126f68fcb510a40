//! Signatures of generic webhooks, as the Standard Webhooks specification 1.0 defines them
//! (github.com/standard-webhooks/standard-webhooks, `spec/standard-webhooks.md`, "Signature
//! scheme" and "Webhook headers"): HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`,
//! sent as `webhook-signature: v1,<base64>`; the timestamp is Unix seconds of the attempt.
//! Receivers can use any Standard Webhooks library, or the four steps in docs/notifications.md.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The spec serializes symmetric secrets as `whsec_` + base64 of the key bytes.
const SECRET_PREFIX: &str = "whsec_";
/// Shortest key accepted, in bytes (the spec asks for at least 24 random bytes).
pub const MIN_KEY_BYTES: usize = 24;

/// A signing key that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the signing key after `whsec_` is not base64")]
    NotBase64,
    #[error("the signing key has {0} bytes; use at least {MIN_KEY_BYTES} random bytes (e.g. `whsec_` + `openssl rand -base64 32`)")]
    TooShort(usize),
}

/// HMAC key bytes, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// `whsec_<base64>` (the spec's form: the decoded bytes are the key), or any other text,
    /// whose UTF-8 bytes are the key.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = match text.strip_prefix(SECRET_PREFIX) {
            Some(b64) => B64.decode(b64).map_err(|_| KeyError::NotBase64)?,
            None => text.as_bytes().to_vec(),
        };
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(bytes.len()));
        }
        Ok(SigningKey(bytes))
    }

    fn hmac(&self) -> ring::hmac::Key {
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0)
    }
}

fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut msg = format!("{id}.{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    msg
}

/// The `webhook-signature` value: `v1,<base64 HMAC-SHA256>`.
pub fn sign(key: &SigningKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = ring::hmac::sign(&key.hmac(), &signed_content(id, timestamp, body));
    format!("v1,{}", B64.encode(tag.as_ref()))
}

/// Whether any `v1,` entry of a (space-separated) `webhook-signature` value is valid for this
/// id, timestamp and raw body. Constant-time (ring's `hmac::verify`). The caller also checks
/// that the timestamp is recent (the spec's replay protection).
pub fn verify(key: &SigningKey, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let msg = signed_content(id, timestamp, body);
    header.split(' ').any(|entry| {
        let Some(b64) = entry.strip_prefix("v1,") else {
            return false;
        };
        let Ok(tag) = B64.decode(b64) else {
            return false;
        };
        ring::hmac::verify(&key.hmac(), &msg, &tag).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_from_python_hmac() {
        // python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
        //   b"0123456789abcdef0123456789abcdef", b"sluice_ab.1700000000.{\"a\":1}",
        //   hashlib.sha256).digest()).decode())'
        let key = SigningKey::parse("0123456789abcdef0123456789abcdef").unwrap();
        let sig = sign(&key, "sluice_ab", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(sig, format!("v1,{}", KNOWN));
        assert!(verify(
            &key,
            "sluice_ab",
            1_700_000_000,
            br#"{"a":1}"#,
            &sig
        ));
        // Rotation: several entries, one valid.
        let both = format!("v1,AAAA {sig}");
        assert!(verify(
            &key,
            "sluice_ab",
            1_700_000_000,
            br#"{"a":1}"#,
            &both
        ));
        // Any change breaks it.
        assert!(!verify(
            &key,
            "sluice_ab",
            1_700_000_001,
            br#"{"a":1}"#,
            &sig
        ));
        assert!(!verify(
            &key,
            "sluice_ac",
            1_700_000_000,
            br#"{"a":1}"#,
            &sig
        ));
        assert!(!verify(
            &key,
            "sluice_ab",
            1_700_000_000,
            br#"{"a":2}"#,
            &sig
        ));
        assert!(!verify(
            &key,
            "sluice_ab",
            1_700_000_000,
            br#"{"a":1}"#,
            "v1,%%%"
        ));
        assert!(!verify(&key, "sluice_ab", 1_700_000_000, br#"{"a":1}"#, ""));
    }

    #[test]
    fn whsec_keys_are_base64_and_short_keys_refused() {
        // base64 of the same 32 bytes as above.
        let k = SigningKey::parse("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        assert_eq!(
            k,
            SigningKey::parse("0123456789abcdef0123456789abcdef").unwrap()
        );
        assert_eq!(SigningKey::parse("short"), Err(KeyError::TooShort(5)));
        assert_eq!(SigningKey::parse("whsec_!!"), Err(KeyError::NotBase64));
        assert_eq!(format!("{k:?}"), "SigningKey(***)");
    }

    const KNOWN: &str = "JmYEd6NJ+yOnyttRQtuyws7TiB6mJX+C6fGwEXKHSzM=";
}
