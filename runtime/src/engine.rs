//! The wasmtime engines Weft runs guests on: a program's own host's, one
//! whose threads can be stopped at an epoch tick, and a worker host's pair
//! of both.

use wasmtime::{Config, Engine};

/// Creates the engine every module and thread of a program's own host
/// uses.
pub fn engine() -> wasmtime::Result<Engine> {
    new_engine(false)
}

/// Creates an engine whose threads can be stopped anywhere: guest code
/// checks the engine's epoch at loop heads and calls, so a thread whose call
/// was cancelled or ran past its time limit stops within a tick. Those
/// checks cost: a tight loop runs about 1.2x slower (`weft bench threads`'
/// kernel) and a matrix multiply 1.4x, so a program's own host goes
/// without them.
pub fn worker_engine() -> wasmtime::Result<Engine> {
    new_engine(true)
}

/// The two engines of a worker host (`weft serve`), which runs chained
/// threads for other hosts: a call runs on `fast` unless it must be
/// stoppable anywhere (a call with a time limit, or while a cancelled
/// thread the worker could not stop still runs: `weft-cluster`'s worker
/// decides). A cancelled thread on `fast` stops at its next host call.
#[derive(Clone)]
pub struct WorkerEngines {
    /// With epoch checks ([`worker_engine`]).
    pub stoppable: Engine,
    /// Without: guest code at full speed; `None` for a worker whose calls
    /// all run with the checks.
    pub fast: Option<Engine>,
}

impl std::fmt::Debug for WorkerEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerEngines").finish_non_exhaustive()
    }
}

impl WorkerEngines {
    pub fn new() -> wasmtime::Result<Self> {
        Ok(Self {
            stoppable: worker_engine()?,
            fast: Some(engine()?),
        })
    }

    /// Only the engine that stops threads anywhere (a worker that never
    /// runs guest code without epoch checks).
    pub fn stoppable_only() -> wasmtime::Result<Self> {
        Ok(Self {
            stoppable: worker_engine()?,
            fast: None,
        })
    }
}

fn new_engine(interruptible: bool) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_threads(true);
    config.shared_memory(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // As much stack as a native program's threads get (see `wasm_stack`).
    config.max_wasm_stack(crate::wasm_stack::WASM_STACK);
    // wasmtime wants it within the stack of an async call, which Weft
    // never makes; the bound is checked all the same.
    config.async_stack_size(crate::wasm_stack::THREAD_STACK);
    // Guest code checks the engine's epoch at loop heads and calls, so a
    // thread whose call was cancelled (its home is gone) stops within a
    // tick of the ticker below instead of running forever.
    config.epoch_interruption(interruptible);
    // Compiled code is cached on disk by content (wasmtime's own cache, in
    // the user's cache folder): a large component such as a Python guest
    // compiles once, not at every invocation. Only this host's own
    // compilations are ever read back. Without a usable cache folder, or
    // with WEFT_COMPILE_CACHE=off, every load compiles.
    if std::env::var_os("WEFT_COMPILE_CACHE").is_none_or(|v| v != "off") {
        match wasmtime::Cache::from_file(None) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => tracing::debug!("no compilation cache: {e:#}"),
        }
    }
    let engine = Engine::new(&config)?;
    if interruptible {
        start_epoch_ticker(&engine);
    }
    Ok(engine)
}

/// How often the engine's epoch advances: a cancelled thread stops within
/// about this long (each store's callback then decides, see
/// `process::ThreadState::on_epoch`).
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Advances `engine`'s epoch every [`EPOCH_TICK`] while the engine lives.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let started = std::thread::Builder::new()
        .name("weft-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = started {
        // Without it no deadline is ever reached: nothing is interrupted,
        // and nothing else changes.
        tracing::warn!("no epoch ticker thread: {e}");
    }
}

/// For stores that are never interrupted: a deadline no ticker reaches.
pub const NEVER: u64 = u64::MAX / 2;
