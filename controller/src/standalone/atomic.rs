//! Atomic file replacement (write a dot-temp file in the same directory, fsync, rename), used by
//! the file routers and the standalone state file so a reader never sees a half-written file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The temp path next to `path`: `.NAME.sluice-tmp` in the same directory (same filesystem,
/// and a dot-file so directory watchers such as Traefik's file provider skip it).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    path.with_file_name(format!(".{name}.sluice-tmp"))
}

/// Replace `path` with `contents` atomically. Creates missing parent directories.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: do not leave the temp file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Read a file, `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/a.conf");
        assert_eq!(read_optional(&p).unwrap(), None);
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(read_optional(&p).unwrap().as_deref(), Some("two"));
        assert!(!temp_path(&p).exists());
        assert_eq!(
            temp_path(&p).file_name().unwrap().to_str().unwrap(),
            ".a.conf.sluice-tmp"
        );
    }
}
