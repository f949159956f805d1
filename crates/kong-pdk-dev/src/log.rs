//! The gateway's log lines on stderr: `2026/01/01 12:00:00 [info] message`,
//! nginx's error-log time format.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Failures.
    Error,
    /// Problems the gateway works around.
    Warn,
    /// Lines from the plugin servers and Kong's `notice`-level events.
    Notice,
    /// Progress.
    Info,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Notice => "notice",
            Level::Info => "info",
        }
    }
}

/// Writes one line (lines in `message` are written separately, each with
/// the prefix).
pub fn line(level: Level, message: &str) {
    let ts = timestamp();
    let mut out = String::new();
    for l in message.lines() {
        out.push_str(&format!("{ts} [{}] {l}\n", level.as_str()));
    }
    // One write per message so lines from different tasks do not mix.
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// Logs at [`Level::Info`].
pub fn info(message: impl AsRef<str>) {
    line(Level::Info, message.as_ref());
}

/// Logs at [`Level::Notice`].
pub fn notice(message: impl AsRef<str>) {
    line(Level::Notice, message.as_ref());
}

/// Logs at [`Level::Warn`].
pub fn warn(message: impl AsRef<str>) {
    line(Level::Warn, message.as_ref());
}

/// Logs at [`Level::Error`].
pub fn error(message: impl AsRef<str>) {
    line(Level::Error, message.as_ref());
}

/// The current UTC time as `YYYY/MM/DD HH:MM:SS`.
pub fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_time(secs)
}

fn format_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_format_like_nginx() {
        assert_eq!(super::format_time(0), "1970/01/01 00:00:00");
        assert_eq!(super::format_time(1_767_225_600), "2026/01/01 00:00:00");
        assert_eq!(super::format_time(951_825_599), "2000/02/29 11:59:59");
    }
}
