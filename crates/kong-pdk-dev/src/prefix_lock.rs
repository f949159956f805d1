//! One gateway per prefix, as Kong refuses to start in a prefix whose nginx
//! is running: the gateway holds an exclusive lock on
//! `<prefix>/kong-pdk-dev.pid` (which holds its pid) for as long as it
//! runs. The lock goes with the process, so a file left by a gateway that
//! died is simply taken over.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file's name under the prefix.
pub const LOCK_FILE: &str = "kong-pdk-dev.pid";

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct PrefixLock {
    _file: File,
    path: PathBuf,
}

impl PrefixLock {
    /// Takes the lock on `prefix` (which must exist) and writes our pid.
    pub fn take(prefix: &Path) -> Result<PrefixLock> {
        let path = prefix.join(LOCK_FILE);
        let place = || format!("prefix {}", prefix.display());
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::at(place(), format!("cannot open {}: {e}", path.display())))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another kong-pdk-dev".to_owned()
            } else {
                format!("another kong-pdk-dev (pid {holder})")
            };
            return Err(Error::at(
                place(),
                format!(
                    "in use by {who}: stop it, or give this gateway another prefix ({} is locked)",
                    path.display()
                ),
            ));
        }
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        written.map_err(|e| Error::at(place(), format!("cannot write {}: {e}", path.display())))?;
        Ok(PrefixLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrefixLock {
    fn drop(&mut self) {
        // The lock itself goes with the descriptor; the file is only a note.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_and_a_stale_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // A file left by a gateway that died: no one holds the lock.
        std::fs::write(dir.path().join(LOCK_FILE), "999999\n").unwrap();
        let first = PrefixLock::take(dir.path()).unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(first.path()).unwrap().trim(), pid);
        // flock locks belong to the open file description: a second open,
        // even in this process, is refused.
        let err = PrefixLock::take(dir.path()).unwrap_err();
        assert!(err.message().contains(&format!("pid {pid}")), "{err:?}");
        drop(first);
        assert!(PrefixLock::take(dir.path()).is_ok());
    }
}
