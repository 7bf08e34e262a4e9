//! What a call's end becomes on the wire (sans-IO): a status, an outcome
//! label for the metrics, and a small JSON body for every failure.

use weft_runtime::outcome::EndKind;

/// How much of a failed call's output its JSON body repeats.
pub const OUTPUT_EXCERPT: usize = 4096;

/// How an HTTP call ended, from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallOutcome {
    /// The function exited with code 0: 200 and its output.
    Ok,
    /// It exited with another code.
    Exit,
    /// A thread trapped.
    Trap,
    /// Every thread waited on another.
    Deadlock,
    /// Chained threads wrote the same bytes.
    Conflict,
    /// Its time limit passed; its threads were stopped.
    Timeout,
    /// Chain mode refused to go on (e.g. a thread could not run anywhere).
    Refused,
    /// It could not be started (bad limits, memory).
    StartFailed,
    /// The host panicked running it (a bug of the host, reported as one).
    Crashed,
    /// No function has that name.
    Unknown,
    /// The name is not a function name.
    BadName,
    /// Its input was over the limit.
    TooLarge,
    /// Slots and queue were full.
    Busy,
    /// The server was draining.
    Draining,
    /// The client went away, or sent its body too slowly.
    BadRequest,
}

impl CallOutcome {
    /// Every outcome, in the order the metrics list them.
    pub const ALL: [Self; 15] = [
        Self::Ok,
        Self::Exit,
        Self::Trap,
        Self::Deadlock,
        Self::Conflict,
        Self::Timeout,
        Self::Refused,
        Self::StartFailed,
        Self::Crashed,
        Self::Unknown,
        Self::BadName,
        Self::TooLarge,
        Self::Busy,
        Self::Draining,
        Self::BadRequest,
    ];

    /// The outcome of a function that ran and ended with `end` and `code`.
    pub fn of_end(end: EndKind, code: i32) -> Self {
        match end {
            EndKind::Exit if code == 0 => Self::Ok,
            EndKind::Exit => Self::Exit,
            EndKind::Trap { .. } => Self::Trap,
            EndKind::Deadlock => Self::Deadlock,
            EndKind::Conflict => Self::Conflict,
            EndKind::TimeLimit => Self::Timeout,
            EndKind::Refused => Self::Refused,
        }
    }

    /// Its label in the metrics and in the JSON body's `error`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Exit => "exit",
            Self::Trap => "trap",
            Self::Deadlock => "deadlock",
            Self::Conflict => "conflict",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::StartFailed => "start_failed",
            Self::Crashed => "crashed",
            Self::Unknown => "unknown_function",
            Self::BadName => "bad_name",
            Self::TooLarge => "too_large",
            Self::Busy => "busy",
            Self::Draining => "draining",
            Self::BadRequest => "bad_request",
        }
    }

    /// Its HTTP status: each end of a function that ran has its own.
    pub fn status(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::Exit => 422,
            Self::Trap | Self::StartFailed | Self::Crashed => 500,
            Self::Deadlock => 508,
            Self::Conflict => 409,
            Self::Timeout => 504,
            Self::Refused | Self::Draining => 503,
            Self::Unknown => 404,
            Self::BadName | Self::BadRequest => 400,
            Self::TooLarge => 413,
            Self::Busy => 429,
        }
    }

    /// Whether the function ran (its exit code goes in a header).
    pub fn ran(self) -> bool {
        matches!(
            self,
            Self::Ok
                | Self::Exit
                | Self::Trap
                | Self::Deadlock
                | Self::Conflict
                | Self::Timeout
                | Self::Refused
        )
    }
}

/// The JSON body of a failure: `{"error": LABEL, "message": ...}`, with
/// the exit code and an excerpt of the output when the function ran.
pub fn error_body(
    outcome: CallOutcome,
    message: &str,
    exit_code: Option<i32>,
    output: &[u8],
) -> String {
    let mut body = serde_json::json!({
        "error": outcome.label(),
        "message": message,
    });
    if let Some(code) = exit_code {
        body["exit_code"] = code.into();
        let excerpt = &output[..output.len().min(OUTPUT_EXCERPT)];
        body["output"] = String::from_utf8_lossy(excerpt).into_owned().into();
        body["output_bytes"] = output.len().into();
    }
    let mut text = body.to_string();
    text.push('\n');
    text
}

/// The message of a function's end when it has none of its own.
pub fn default_message(outcome: CallOutcome, code: i32) -> String {
    match outcome {
        CallOutcome::Exit => format!("the function exited with code {code}"),
        other => other.label().replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_end_of_a_run_has_its_own_status() {
        let ends = [
            (EndKind::Exit, 0),
            (EndKind::Exit, 3),
            (EndKind::Trap { thread: 1 }, 134),
            (EndKind::Deadlock, 134),
            (EndKind::Conflict, 1),
            (EndKind::TimeLimit, 124),
            (EndKind::Refused, 1),
        ];
        let statuses: std::collections::BTreeSet<u16> = ends
            .iter()
            .map(|&(end, code)| CallOutcome::of_end(end, code).status())
            .collect();
        assert_eq!(statuses.len(), ends.len());
        assert_eq!(CallOutcome::of_end(EndKind::Exit, 0).status(), 200);
        assert_eq!(CallOutcome::of_end(EndKind::TimeLimit, 124).status(), 504);
        assert!(
            ends.iter()
                .all(|&(end, code)| CallOutcome::of_end(end, code).ran())
        );
    }

    #[test]
    fn labels_are_distinct_prometheus_values() {
        let labels: std::collections::BTreeSet<_> =
            CallOutcome::ALL.iter().map(|o| o.label()).collect();
        assert_eq!(labels.len(), CallOutcome::ALL.len());
        assert!(
            labels
                .iter()
                .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
    }

    #[test]
    fn bodies_are_json_with_an_excerpt_of_the_output() {
        let output = vec![b'x'; OUTPUT_EXCERPT + 10];
        let body = error_body(
            CallOutcome::Trap,
            "thread 1 trapped: \"oops\"",
            Some(134),
            &output,
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "trap");
        assert_eq!(v["message"], "thread 1 trapped: \"oops\"");
        assert_eq!(v["exit_code"], 134);
        assert_eq!(v["output"].as_str().unwrap().len(), OUTPUT_EXCERPT);
        assert_eq!(v["output_bytes"], OUTPUT_EXCERPT + 10);
        let v: serde_json::Value =
            serde_json::from_str(&error_body(CallOutcome::Busy, "full", None, b"")).unwrap();
        assert!(v.get("exit_code").is_none());
        assert_eq!(
            default_message(CallOutcome::Exit, 7),
            "the function exited with code 7"
        );
    }
}
