//! Per-function options (sans-IO parsing; the registry keeps them beside
//! the module as `NAME.options.json`): thread mode, memory cap, thread
//! cap and time limit, given as the query of `PUT /f/{name}`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::ThreadMode;

/// The most a function's time limit may be: a call holds a slot while it
/// runs, so none may hold it for ever.
pub const MAX_TIME_LIMIT: Duration = Duration::from_secs(3600);

/// A function's options; `None` takes the server's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionOptions {
    /// `local` or `chain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_mode: Option<String>,
    /// Cap on its memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<u64>,
    /// Threads (besides main) live at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_threads: Option<u32>,
    /// Time limit in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// Why options could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("unknown option `{0}` (expected thread_mode, max_memory, max_threads or timeout)")]
    Unknown(String),
    #[error("option `{0}`: {1}")]
    Invalid(&'static str, String),
    #[error("option `{0}`: {1}")]
    Value(&'static str, ValueError),
    #[error("option `{0}` given twice")]
    Twice(String),
}

impl FunctionOptions {
    /// Reads `thread_mode=chain&max_memory=16M&max_threads=8&timeout=2s`.
    pub fn from_query(query: &str) -> Result<Self, OptionsError> {
        let mut options = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let twice = || OptionsError::Twice(key.to_string());
            match key {
                "thread_mode" => {
                    let mode: ThreadMode = value
                        .parse()
                        .map_err(|e| OptionsError::Invalid("thread_mode", format!("{e}")))?;
                    let name = match mode {
                        ThreadMode::Local => "local",
                        ThreadMode::Chain => "chain",
                    };
                    if options.thread_mode.replace(name.into()).is_some() {
                        return Err(twice());
                    }
                }
                "max_memory" => {
                    let size =
                        parse_size(value).map_err(|e| OptionsError::Value("max_memory", e))?;
                    if options.max_memory.replace(size).is_some() {
                        return Err(twice());
                    }
                }
                "max_threads" => {
                    let n = value.parse::<u32>().map_err(|_| {
                        OptionsError::Invalid("max_threads", format!("`{value}` is not a count"))
                    })?;
                    if options.max_threads.replace(n).is_some() {
                        return Err(twice());
                    }
                }
                "timeout" => {
                    let limit =
                        parse_duration(value).map_err(|e| OptionsError::Value("timeout", e))?;
                    if limit > MAX_TIME_LIMIT {
                        return Err(OptionsError::Invalid(
                            "timeout",
                            format!("at most {}s", MAX_TIME_LIMIT.as_secs()),
                        ));
                    }
                    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
                    if options.timeout_ms.replace(ms).is_some() {
                        return Err(twice());
                    }
                }
                other => return Err(OptionsError::Unknown(other.chars().take(64).collect())),
            }
        }
        Ok(options)
    }

    /// Its thread mode, if it sets one.
    pub fn mode(&self) -> Option<ThreadMode> {
        self.thread_mode.as_deref().and_then(|m| m.parse().ok())
    }

    /// Its time limit, if it sets one.
    pub fn time_limit(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }
}

/// Why a size or a duration could not be read (each names the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("invalid size `{0}`")]
    Size(String),
    #[error("invalid size unit in `{0}` (use K, M or G)")]
    SizeUnit(String),
    #[error("size `{0}` is too large")]
    SizeTooLarge(String),
    #[error("invalid duration `{0}`")]
    Duration(String),
    #[error("invalid duration unit in `{0}` (use ms, s, m or h)")]
    DurationUnit(String),
    #[error("duration `{0}` is too long")]
    DurationTooLong(String),
    #[error("a duration must be more than zero")]
    ZeroDuration,
}

/// At most this much of a hostile value is repeated in an error.
const QUOTED: usize = 64;

fn quoted(s: &str) -> String {
    s.chars().take(QUOTED).collect()
}

/// `4096`, `64K`, `16M`, `1G` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| ValueError::Size(quoted(s)))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(ValueError::SizeUnit(quoted(s))),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| ValueError::SizeTooLarge(quoted(s)))
}

/// `500ms`, `10s`, `2m`, `1h`, or bare seconds; more than zero.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| ValueError::Duration(quoted(s)))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(ValueError::DurationUnit(quoted(s))),
    }
    // Longer than a u32 of seconds (136 years) is no limit anyone means,
    // and a deadline that far would overflow a clock.
    .filter(|&ms| ms <= u64::from(u32::MAX) * 1000)
    .ok_or_else(|| ValueError::DurationTooLong(quoted(s)))?;
    if ms == 0 {
        return Err(ValueError::ZeroDuration);
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        let o = FunctionOptions::from_query(
            "thread_mode=chain&max_memory=16M&max_threads=8&timeout=2s",
        )
        .unwrap();
        assert_eq!(o.mode(), Some(ThreadMode::Chain));
        assert_eq!(o.max_memory, Some(16 << 20));
        assert_eq!(o.max_threads, Some(8));
        assert_eq!(o.time_limit(), Some(Duration::from_secs(2)));
        assert_eq!(
            FunctionOptions::from_query(""),
            Ok(FunctionOptions::default())
        );
        assert!(matches!(
            FunctionOptions::from_query("mode=chain"),
            Err(OptionsError::Unknown(_))
        ));
        assert!(matches!(
            FunctionOptions::from_query("thread_mode=fast"),
            Err(OptionsError::Invalid("thread_mode", _))
        ));
        assert!(matches!(
            FunctionOptions::from_query("timeout=2h"),
            Err(OptionsError::Invalid("timeout", _))
        ));
        assert!(matches!(
            FunctionOptions::from_query("timeout=1s&timeout=2s"),
            Err(OptionsError::Twice(_))
        ));
        assert!(FunctionOptions::from_query("max_threads=-1").is_err());
        assert!(FunctionOptions::from_query("max_memory=99999999999G").is_err());
    }

    #[test]
    fn stored_form_round_trips_and_rejects_unknown_fields() {
        let o = FunctionOptions::from_query("thread_mode=local&timeout=250ms").unwrap();
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(json, r#"{"thread_mode":"local","timeout_ms":250}"#);
        assert_eq!(serde_json::from_str::<FunctionOptions>(&json).unwrap(), o);
        assert!(serde_json::from_str::<FunctionOptions>(r#"{"x":1}"#).is_err());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64kb"), Ok(64 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("M"), Err(ValueError::Size("M".into())));
        assert_eq!(parse_size("1X"), Err(ValueError::SizeUnit("1X".into())));
        assert_eq!(
            parse_size("99999999999999G"),
            Err(ValueError::SizeTooLarge("99999999999999G".into()))
        );
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0s"), Err(ValueError::ZeroDuration));
        assert_eq!(
            parse_duration("5d"),
            Err(ValueError::DurationUnit("5d".into()))
        );
        assert_eq!(parse_duration("x"), Err(ValueError::Duration("x".into())));
        assert_eq!(
            parse_duration("99999999999h"),
            Err(ValueError::DurationTooLong("99999999999h".into()))
        );
    }
}
