//! A plugin executable started the way Kong starts it.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running plugin server with its own temporary Kong prefix.
#[derive(Debug)]
pub struct PluginProcess {
    child: Option<Child>,
    prefix: tempfile::TempDir,
    socket: PathBuf,
    stderr_path: PathBuf,
}

impl PluginProcess {
    /// Starts `exe -kong-prefix <tempdir>` and waits (up to 10 s) for
    /// `<tempdir>/<name>.socket` to appear.
    pub fn start(exe: impl AsRef<Path>) -> io::Result<PluginProcess> {
        PluginProcess::start_with_env(exe, &[])
    }

    /// [`start`](Self::start) with extra environment variables, e.g.
    /// `KONG_PDK_CALL_LAYER=off`.
    pub fn start_with_env(
        exe: impl AsRef<Path>,
        env: &[(&str, &str)],
    ) -> io::Result<PluginProcess> {
        let exe = exe.as_ref();
        let name = exe
            .file_name()
            .ok_or_else(|| io::Error::other("executable path has no file name"))?
            .to_string_lossy()
            .into_owned();
        let prefix = tempfile::tempdir()?;
        let socket = prefix.path().join(format!("{name}.socket"));
        let stderr_path = prefix.path().join("server.stderr");
        let child = Command::new(exe)
            .envs(env.iter().copied())
            .arg("-kong-prefix")
            .arg(prefix.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()?;
        let mut process = PluginProcess {
            child: Some(child),
            prefix,
            socket,
            stderr_path,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !process.socket.exists() {
            if let Some(status) = process.child_mut().try_wait()? {
                return Err(io::Error::other(format!(
                    "{name} exited with {status} before creating its socket: {}",
                    process.stderr()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{name} did not create its socket"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(process)
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until stopped")
    }

    /// The socket the server listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The temporary Kong prefix.
    pub fn prefix(&self) -> &Path {
        self.prefix.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits (up to `limit`) until the server's stderr contains `needle`;
    /// the stderr text either way, for the assertion message.
    pub fn wait_for_stderr(&self, needle: &str, limit: Duration) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.stderr();
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                return Err(format!("no {needle:?} within {limit:?} in:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM (what Kong sends) and waits up to 10 s for the exit.
    pub fn terminate(&mut self) -> io::Result<ExitStatus> {
        let pid = self.pid();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !status.success() {
            return Err(io::Error::other("kill -TERM failed"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child_mut().try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(
                    "server did not exit within 10 s of SIGTERM",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
