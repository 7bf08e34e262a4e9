//! How a program ends ([`Outcome`]): the first end wins, is reported once,
//! and stops every thread of the program; the library never ends the OS
//! process (a binary does that with [`Outcome::exit_code`], through the
//! hook a program is started with, [`OnEnd`]).

use std::io::Write;
use std::sync::Arc;

/// The thread id wasi-libc gives the main thread: outside the range a host
/// hands out (`1..=MAX_TID`), so the two never collide.
pub const MAIN_TID: u32 = 0x3fff_ffff;
/// The largest thread id the wasi-threads ABI allows.
pub const MAX_TID: u32 = 0x1fff_ffff;

/// Exit code of a program that trapped (the code wasmtime's CLI uses).
pub const TRAP_EXIT_CODE: i32 = 134;

/// Exit code of a program stopped by its time limit (as `timeout(1)`).
pub const TIMEOUT_EXIT_CODE: i32 = 124;

/// How long a thread blocked in a wait goes without looking whether its
/// program has ended (or its call was cancelled). The end wakes the
/// program's waiting threads at once; this bounds the rare case of a
/// thread that was about to wait when the end came, and of a cancelled
/// call away from home.
pub const WAIT_SLICE: std::time::Duration = std::time::Duration::from_millis(500);

/// The error a thread unwinds with when its program has ended (another
/// thread trapped or called `exit`, a conflict or the time limit): it
/// stops quietly, as the OS would end it natively.
#[derive(Debug, thiserror::Error)]
#[error("the program has ended")]
pub struct ProgramEnded;

/// How a program ended; the first end wins.
#[derive(Debug)]
pub enum Outcome {
    /// `main` returned, or a thread called `exit(code)`.
    Exit(i32),
    /// Thread `thread` trapped ([`MAIN_TID`] for the main thread).
    Trap { thread: u32, error: wasmtime::Error },
    /// Every thread waited on another, none could go on.
    Deadlock { thread: u32, report: String },
    /// Chained threads wrote the same bytes without a merge region (the
    /// report is on stderr).
    Conflict { thread: u32, conflicts: usize },
    /// The program's time limit passed.
    TimeLimit(std::time::Duration),
    /// Chain mode could not finish a thread correctly and refused to go
    /// on: the exit code and the one line that says why.
    Refused { code: i32, message: String },
}

/// What kind of end an [`Outcome`] is, without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    Exit,
    Trap { thread: u32 },
    Deadlock,
    Conflict,
    TimeLimit,
    Refused,
}

impl Outcome {
    /// Its kind.
    pub fn kind(&self) -> EndKind {
        match self {
            Self::Exit(_) => EndKind::Exit,
            Self::Trap { thread, .. } => EndKind::Trap { thread: *thread },
            Self::Deadlock { .. } => EndKind::Deadlock,
            Self::Conflict { .. } => EndKind::Conflict,
            Self::TimeLimit(_) => EndKind::TimeLimit,
            Self::Refused { .. } => EndKind::Refused,
        }
    }

    /// Whether it is a trap (a deadlock is one: the waiting thread traps).
    pub fn trapped(&self) -> bool {
        matches!(self, Self::Trap { .. } | Self::Deadlock { .. })
    }

    /// A trap of `thread`; a deadlock the synchronisation table found is
    /// told apart.
    pub fn trap(thread: u32, error: wasmtime::Error) -> Self {
        if let Some(deadlock @ crate::sync::SyncError::Deadlock(_)) = error.downcast_ref() {
            return Self::Deadlock {
                thread,
                report: deadlock.to_string(),
            };
        }
        Self::Trap { thread, error }
    }

    /// The exit code the program has natively, or as `wasmtime run` and
    /// `timeout(1)` give it.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Exit(code) | Self::Refused { code, .. } => *code,
            Self::Trap { .. } | Self::Deadlock { .. } => TRAP_EXIT_CODE,
            Self::Conflict { .. } => 1,
            Self::TimeLimit(_) => TIMEOUT_EXIT_CODE,
        }
    }

    /// What to tell the user, one line first, on stderr (stdout flushed
    /// first); nothing for a plain exit or a conflict (reported as found).
    pub fn report(&self, to: &mut dyn Write) {
        let who = |tid: u32| {
            if tid == MAIN_TID {
                "the main thread".to_string()
            } else {
                format!("thread {tid}")
            }
        };
        match self {
            Self::Exit(_) | Self::Conflict { .. } => {}
            Self::Trap { thread, error } => {
                // What happened comes first, on one line; the wasm
                // backtrace and the context after it.
                let cause = error.root_cause().to_string();
                let _ = writeln!(to, "weft: {} trapped: {cause}", who(*thread));
                let details = format!("{error:?}");
                let details = details
                    .split_once("\n\nCaused by:")
                    .map_or(details.as_str(), |(before, _)| before);
                if details.trim() != cause {
                    let _ = writeln!(to, "{}", details.trim_end());
                }
            }
            Self::Deadlock { thread, report } => {
                let _ = writeln!(to, "weft: {} trapped: {report}", who(*thread));
            }
            Self::TimeLimit(limit) => {
                let _ = writeln!(to, "weft: time limit of {limit:?} reached");
            }
            Self::Refused { message, .. } => {
                let _ = writeln!(to, "weft: {message}");
            }
        }
    }
}

/// What runs once when a program ends, before its threads are stopped
/// (the CLI ends the OS process there; an embedding may log or count).
#[derive(Clone)]
pub struct OnEnd(pub Arc<dyn Fn(&Outcome) + Send + Sync>);

impl std::fmt::Debug for OnEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnEnd(..)")
    }
}
