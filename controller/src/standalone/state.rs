//! The standalone state file: each rollout's `RolloutStatus` plus what the file world needs to
//! resume (the primary's revision, the latest command). JSON, replaced atomically after every
//! change, so a restarted `sluice run` continues at the same step with the same counters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sluice_crds::{Command, RolloutStatus};

use super::atomic::{read_optional, write_atomic};

/// Format version of the state file.
pub const STATE_VERSION: u32 = 1;

/// What is kept per rollout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutState {
    #[serde(default)]
    pub status: RolloutStatus,
    /// Revision the stable backend runs as far as Sluice knows (set by ApplyPrimary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_revision: Option<String>,
    /// Last scale hook run for the canary (true: up), so the hook runs only on a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_up: Option<bool>,
    /// The latest command (the standalone twin of the `sluice.dev/command` annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// A version set through the API (`sluice set-version`), in force until the file's own
    /// `canary.version` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_override: Option<VersionOverride>,
    /// Notifications still to deliver and the keys already settled (notify::outbox), written
    /// with the status so that a kill between the write and the delivery loses nothing.
    #[serde(default, skip_serializing_if = "crate::notify::Outbox::is_empty")]
    pub notifications: crate::notify::Outbox,
}

/// What `sluice set-version` recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionOverride {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The file's `canary.version` when this was set: an edit of the file after that wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateFile {
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub rollouts: BTreeMap<String, RolloutState>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt ({source}); move it away to start fresh")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("state file {path} has version {found}, this sluice reads {STATE_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StateFile {
    /// Load, or an empty state when the file does not exist yet. A corrupt file is an error
    /// (never silently reset: it holds where each rollout is).
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let Some(text) = read_optional(path).map_err(|source| StateError::Read {
            path: path.to_path_buf(),
            source,
        })?
        else {
            return Ok(StateFile {
                version: STATE_VERSION,
                rollouts: BTreeMap::new(),
            });
        };
        let state: StateFile =
            serde_json::from_str(&text).map_err(|source| StateError::Corrupt {
                path: path.to_path_buf(),
                source,
            })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Version {
                path: path.to_path_buf(),
                found: state.version,
            });
        }
        Ok(state)
    }

    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| StateError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        text.push('\n');
        write_atomic(path, text.as_bytes()).map_err(|source| StateError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_crds::Phase;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let empty = StateFile::load(&p).unwrap();
        assert!(empty.rollouts.is_empty());
        let mut s = empty.clone();
        let mut r = RolloutState {
            primary_revision: Some("v1".into()),
            ..Default::default()
        };
        r.status.phase = Phase::Progressing;
        r.status.current_step = 3;
        s.rollouts.insert("web".into(), r);
        s.save(&p).unwrap();
        assert_eq!(StateFile::load(&p).unwrap(), s);
        std::fs::write(&p, "{not json").unwrap();
        assert!(matches!(
            StateFile::load(&p),
            Err(StateError::Corrupt { .. })
        ));
        std::fs::write(&p, r#"{"version": 99, "rollouts": {}}"#).unwrap();
        assert!(matches!(
            StateFile::load(&p),
            Err(StateError::Version { found: 99, .. })
        ));
    }
}
