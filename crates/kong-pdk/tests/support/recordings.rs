//! Reading the recordings of real Kong traffic (both protocols' test
//! targets include this file).

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

/// The recordings: `$env_var` if set, else `tests/<beside>` in this crate.
pub(crate) fn dir(env_var: &str, beside: &str) -> PathBuf {
    match std::env::var(env_var) {
        Ok(dir) => dir.into(),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(beside),
    }
}

/// One scenario's JSON.
pub(crate) fn load(dir: &Path, scenario: &str) -> Json {
    let path = dir.join(format!("{scenario}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("recording is JSON")
}

/// A message's bytes from the recording's `hex`.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
