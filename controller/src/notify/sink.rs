//! A notification sink with its secrets resolved: where to send, in which format, which
//! transitions. The URL (Slack and Teams URLs carry their token) and the signing key are never
//! printed: `Debug` hides them and log lines name the sink only.

pub use sluice_crds::SinkKind;

use super::signature::SigningKey;
use super::transition::TransitionKind;

/// A sink ready to send to.
#[derive(Clone, PartialEq)]
pub struct Sink {
    pub name: String,
    pub kind: SinkKind,
    url: String,
    pub signing_key: Option<SigningKey>,
    /// Transitions sent to this sink; empty: all.
    pub on: Vec<TransitionKind>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &"***")
            .field("signing_key", &self.signing_key.as_ref().map(|_| "***"))
            .field("on", &self.on)
            .finish()
    }
}

/// A sink that cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SinkError {
    #[error("notification sink {name:?}: the URL must start with http:// or https://")]
    Url { name: String },
    #[error("notification sink {name:?}: {source}")]
    Key {
        name: String,
        source: super::signature::KeyError,
    },
    #[error("notification sink {name:?}: a signing key applies to kind webhook only")]
    KeyNotForKind { name: String },
}

impl Sink {
    /// Check and build. The URL is only checked for its scheme (reqwest parses it on send, and
    /// its error is reported without the URL).
    pub fn new(
        name: &str,
        kind: SinkKind,
        url: &str,
        signing_key: Option<&str>,
        on: Vec<TransitionKind>,
    ) -> Result<Sink, SinkError> {
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SinkError::Url { name: name.into() });
        }
        let signing_key = match signing_key {
            Some(_) if kind != SinkKind::Webhook => {
                return Err(SinkError::KeyNotForKind { name: name.into() })
            }
            Some(k) => Some(SigningKey::parse(k).map_err(|source| SinkError::Key {
                name: name.into(),
                source,
            })?),
            None => None,
        };
        Ok(Sink {
            name: name.to_string(),
            kind,
            url: url.to_string(),
            signing_key,
            on,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this sink wants a transition of this kind.
    pub fn wants(&self, kind: TransitionKind) -> bool {
        self.on.is_empty() || self.on.contains(&kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets_and_filters_apply() {
        let s = Sink::new(
            "ops",
            SinkKind::Slack,
            "https://hooks.slack.com/services/T0/B0/SECRET",
            None,
            vec![TransitionKind::Promoted],
        )
        .unwrap();
        let d = format!("{s:?}");
        assert!(!d.contains("SECRET"), "{d}");
        assert!(s.wants(TransitionKind::Promoted));
        assert!(!s.wants(TransitionKind::Step));
        assert!(matches!(
            Sink::new("x", SinkKind::Webhook, "ftp://h", None, vec![]),
            Err(SinkError::Url { .. })
        ));
        assert!(matches!(
            Sink::new("x", SinkKind::Teams, "https://h", Some("k"), vec![]),
            Err(SinkError::KeyNotForKind { .. })
        ));
        let e = Sink::new("x", SinkKind::Webhook, "https://h", Some("short"), vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 24"), "{e}");
    }
}
