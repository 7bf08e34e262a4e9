//! What a program starts with: its settings ([`StartConfig`]), how its
//! threads run ([`ThreadMode`]), its input and output as a function
//! ([`CallIo`]), and what runs the functions it calls by name
//! ([`Invoke`], which the host's registry implements).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use crate::outcome::{EndKind, OnEnd};
use crate::placement::Placer;
use crate::state::StateHost;
use crate::trace::Tracer;

/// How a program's threads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ThreadMode {
    /// Parallel OS threads over one shared memory (the default).
    Local = 0,
    /// Each thread is a chained call restored from a snapshot.
    Chain = 1,
}

/// A thread mode's name that is neither `local` nor `chain`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown thread mode `{0}` (expected `local` or `chain`)")]
pub struct UnknownThreadMode(pub String);

impl FromStr for ThreadMode {
    type Err = UnknownThreadMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Self::Local),
            "chain" => Ok(Self::Chain),
            other => Err(UnknownThreadMode(other.to_string())),
        }
    }
}

/// Why a thread could not be started; the discriminants are those of the
/// WIT `errno` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum ThreadError {
    #[error("too many threads")]
    Again = 0,
    #[error("this program cannot have threads (it imports no shared memory)")]
    NotSupported = 1,
}

/// What a chained thread does when its changes conflict with others'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Report each conflict on stderr and go on (the later write wins).
    Warn,
    /// Report the conflicts and end the program with exit code 1.
    Error,
}

/// What a process is started with.
#[derive(Debug, Clone)]
pub struct StartConfig {
    /// `argv`, program name first.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Preopened directories: host path, guest path.
    pub dirs: Vec<(PathBuf, String)>,
    pub mode: ThreadMode,
    /// Spawned threads that may be live at once.
    pub max_threads: u32,
    /// Cap on the shared memory in bytes, below the module's own maximum.
    pub max_memory: Option<u64>,
    /// Whether the guest's stdin is the host's.
    pub inherit_stdin: bool,
    /// What conflicting writes of chained threads do.
    pub on_conflict: ConflictPolicy,
    /// Chain mode: chained threads that run at once (more wait in a
    /// queue); `None`: one per CPU core.
    pub slots: Option<usize>,
    /// The host's shared state (`weft:state`); `None`: a state of its own
    /// with an embedded global tier.
    pub state: Option<Arc<StateHost>>,
    /// The functions the program may call by name (`weft:chain`); `None`:
    /// calls fail with `unknown-function`.
    pub functions: Option<Arc<dyn Invoke>>,
    /// The program's input and output when it runs as a function.
    pub call_io: Option<Arc<CallIo>>,
    /// Chain mode over many hosts: where chained threads may run besides
    /// home (the cluster implements it).
    pub placer: Option<Arc<dyn Placer>>,
    /// How deep in a chain of function calls this program runs (0: the
    /// invoked one).
    pub call_depth: u32,
    /// Chain mode: after how long a chained thread that runs without
    /// synchronising, while every other thread waits, gets a warning (it
    /// may be spinning on a plain variable it will never see change);
    /// `None`: never.
    pub stall_warning: Option<std::time::Duration>,
    /// The program ends with [`crate::Outcome::TimeLimit`] once this has
    /// passed.
    pub time_limit: Option<std::time::Duration>,
    /// Runs once when the program ends (see [`crate::Process::end`]).
    pub on_end: Option<OnEnd>,
    /// Where the run's spans go (`weft run --trace`).
    pub trace: Option<Arc<Tracer>>,
}

impl Default for StartConfig {
    fn default() -> Self {
        Self {
            args: vec!["main.wasm".into()],
            env: Vec::new(),
            dirs: Vec::new(),
            mode: ThreadMode::Local,
            max_threads: 1024,
            max_memory: None,
            inherit_stdin: true,
            on_conflict: ConflictPolicy::Error,
            slots: None,
            state: None,
            functions: None,
            call_io: None,
            placer: None,
            call_depth: 0,
            stall_warning: Some(DEFAULT_STALL_WARNING),
            time_limit: None,
            on_end: None,
            trace: None,
        }
    }
}

/// The default of [`StartConfig::stall_warning`].
pub const DEFAULT_STALL_WARNING: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a call failed; the discriminants are those of the WIT `call-error`
/// enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum CallError {
    #[error("no function is registered under that name")]
    UnknownFunction = 0,
    #[error("no call has that id")]
    NoSuchCall = 1,
    #[error("the call was awaited before")]
    AlreadyAwaited = 2,
    #[error("the call has not finished")]
    NotFinished = 3,
    #[error("the callee trapped")]
    Trapped = 4,
    #[error("the callee could not be started")]
    FailedToStart = 5,
    #[error("input or name too large")]
    TooLarge = 6,
}

impl CallError {
    /// The error with WIT discriminant `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        [
            Self::UnknownFunction,
            Self::NoSuchCall,
            Self::AlreadyAwaited,
            Self::NotFinished,
            Self::Trapped,
            Self::FailedToStart,
            Self::TooLarge,
        ]
        .into_iter()
        .find(|e| *e as u8 == code)
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its exit code ([`crate::Outcome::exit_code`]).
    pub code: i32,
    /// Whether it ended in a trap (a deadlock included).
    pub trapped: bool,
    /// How it ended.
    pub end: EndKind,
    pub output: Vec<u8>,
}

/// A function's input and output, as its process sees them.
#[derive(Debug, Default)]
pub struct CallIo {
    pub input: Vec<u8>,
    pub output: Mutex<Vec<u8>>,
}

/// What runs functions by name for a call table: the host's registry.
pub trait Invoke: Send + Sync + std::fmt::Debug {
    /// Checks that `name` can be called now: unknown names fail at the
    /// call, not at the await.
    fn check(&self, name: &str) -> Result<(), CallError>;
    /// A place among the calls running at once on this host, held while
    /// the call runs; `None` when every place is taken.
    fn admit(&self) -> Option<Box<dyn Send>>;
    /// Runs `name` with `input` until its main thread ends.
    fn invoke(
        self: Arc<Self>,
        name: &str,
        input: Vec<u8>,
        base: &StartConfig,
    ) -> Result<Finished, CallError>;
}
