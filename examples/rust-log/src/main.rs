//! `rust-log`: appends Kong's log record of every request (the output of
//! `kong.log.serialize()`) as one JSON line to a file (go-pdk's `go-log` in
//! Rust).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

use kong_pdk::{BoxError, Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

/// The plugin's configuration, as set in Kong.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// The file the log records are appended to.
    path: String,
    /// Reopen the file for every record, so log rotation by renaming works.
    #[kong(default = false)]
    #[serde(default)]
    reopen: bool,
    /// The open file, shared by all events of this instance.
    #[serde(skip)]
    file: Mutex<Option<File>>,
}

impl Config {
    fn open(&self) -> std::io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    fn append(&self, record: &str) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(record.len() + 1);
        line.extend_from_slice(record.as_bytes());
        line.push(b'\n');
        // One short append under a lock: cheaper than a blocking-pool hop.
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if self.reopen || file.is_none() {
            *file = Some(self.open()?);
        }
        let f = file.as_mut().expect("opened above");
        f.write_all(&line)
    }
}

#[kong_pdk::plugin]
impl Plugin for Config {
    /// Opens the file when Kong starts the instance, so a bad path fails the
    /// start (with a clear log line) instead of every request.
    async fn init(&mut self) -> Result<(), BoxError> {
        let file = self
            .open()
            .map_err(|e| format!("cannot open log file {}: {e}", self.path))?;
        *self.file.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(file);
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        let record = kong.log().serialize().await?;
        self.append(&record)
            .map_err(|e| format!("cannot write to {}: {e}", self.path))?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_pdk_test::{Request, TestEnv};
    use serde_json::json;

    #[tokio::test]
    async fn writes_kongs_record_after_the_response() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.log");
        let mut env = TestEnv::new(Request::post("http://api.test/orders", "{}"));
        let out = env.run::<Config>(json!({"path": path})).await;
        assert_eq!(out.response.status, 200);
        assert!(out.unhandled_calls.is_empty(), "{:?}", out.unhandled_calls);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        let record: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(record["request"]["method"], "POST");
        assert_eq!(record["response"]["status"], 200);
    }

    #[tokio::test]
    async fn a_bad_path_fails_the_instance_start() {
        let mut env = TestEnv::new(Request::get("http://api.test/"));
        let err = env
            .try_run::<Config>(json!({"path": "/no/such/dir/x.log"}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot open log file"), "{err}");
    }
}
