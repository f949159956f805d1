//! The socket file Kong connects to: created with the right mode, never
//! over a live server's socket.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::net::UnixListener;

/// Owner read/write only: Kong's worker user (who starts the server) and root.
pub(super) const DEFAULT_SOCKET_MODE: u32 = 0o600;

pub(super) fn socket_mode_from_env() -> Option<u32> {
    let text = std::env::var("KONG_PDK_SOCKET_MODE").ok()?;
    match u32::from_str_radix(text.trim().trim_start_matches("0o"), 8) {
        Ok(mode) if mode <= 0o777 => Some(mode),
        _ => {
            eprintln!("ignoring KONG_PDK_SOCKET_MODE={text:?}: not an octal mode like 660");
            None
        }
    }
}

/// Binds the socket, replacing a stale file but never a live server's socket.
pub(super) fn bind(path: &Path, mode: u32) -> io::Result<UnixListener> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "the Kong prefix {} does not exist or is not a directory (set it with -kong-prefix)",
                dir.display()
            ),
        ));
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another server is already listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot remove stale socket {}: {e}", path.display()),
            )
        })?;
    }
    // Bind under a temporary name, set the mode, then link it into place:
    // nobody can connect before the permissions are right, and the link
    // fails if another server took the path meanwhile.
    let tmp = path.with_extension(format!("socket.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create socket {}: {e}", path.display()),
        )
    })?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    placed.map_err(|e| {
        let why = if e.kind() == io::ErrorKind::AlreadyExists {
            "another server created it at the same time".to_owned()
        } else {
            e.to_string()
        };
        io::Error::new(
            e.kind(),
            format!("cannot create socket {}: {why}", path.display()),
        )
    })?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}
