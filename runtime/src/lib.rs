//! Weft's runtime: a WebAssembly runtime for multi-threaded programs.
//!
//! A guest is a core wasm module built for `wasm32-wasip1-threads` (C with
//! pthreads, Rust with `std::thread`). [`Program::load`] compiles and checks
//! it; [`Program::start`] makes a [`Process`] (one shared memory, one WASI
//! context); [`Process::run_main`] runs `_start`. Threads spawned by the
//! guest run in parallel, each an instance of the module on an OS thread
//! from a pool, over the same shared memory (local mode), or each as a
//! chained call restored from a snapshot (chain mode), at home or, through
//! a [`placement::Placer`] the cluster implements, on another host.

mod abi;
pub mod adapt_calls;
pub mod call_imports;
pub mod calls;
mod chain;
mod component;
mod cpu_clock;
pub mod deadlines;
mod engine;
pub mod functions;
mod home;
mod incremental;
mod inline_recursion;
pub mod locks;
pub mod lower_atomics;
pub mod memory_pool;
pub mod metrics;
pub mod outcome;
mod parallelism;
pub mod placement;
mod pool;
pub mod process;
mod program;
pub mod redis;
pub mod remote;
pub mod rewrite;
mod shared_wasi;
mod slots;
pub mod snapshot;
mod stack_check;
mod start;
pub mod state;
pub mod state_imports;
pub mod std_answers;
pub mod symbols;
mod sync;
pub mod threads;
mod touched;
pub mod trace;
pub mod waits;
pub mod wasi;
mod wasi_poll;
pub mod wasm_stack;
mod zone;

pub use engine::{EPOCH_TICK, NEVER, WorkerEngines, engine, worker_engine};
pub use outcome::{OnEnd, Outcome};
pub use process::{Process, ProcessConfig, ThreadEnd};
pub use program::{LoadError, MemoryError, Program, StartError};
pub use start::{
    ConflictPolicy, DEFAULT_STALL_WARNING, StartConfig, ThreadError, ThreadMode, UnknownThreadMode,
};

/// What a worker host (the cluster's `weft serve`) uses to run threads of
/// programs whose home is another host.
pub mod away {
    pub use crate::chain::{ChildError, run_remote};
    pub use crate::home::{NeedsHome, RemoteCall};
}
