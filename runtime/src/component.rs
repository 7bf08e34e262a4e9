//! Functions as components: guests in any language with a component
//! toolchain (e.g. Python through componentize-py) that import the chain
//! and state interfaces and export `run` (`wit/function/world.wit`), run
//! with WASI preview 2. Components cannot share a memory, so they have no
//! threads; everything else about a function is as for core modules.

use crate::locks::Locked as _;
use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::calls::{CallError as HostCallError, CallIo, CallTable, Invoke, MAX_CALL_BYTES};
use crate::start::StartConfig;
use crate::state::{
    LockKind as HostLockKind, StateError as HostStateError, StateHost, Tier as HostTier,
};

wasmtime::component::bindgen!({
    path: "../wit/function",
    world: "app",
});

use self::weft::chain::chain::{self, CallError};
use self::weft::state::state::{self, LockKind, StateError, Tier};

/// A component function's store: WASI, and what it shares with the host.
pub(crate) struct ComponentHost {
    wasi: WasiCtx,
    table: ResourceTable,
    state: Arc<StateHost>,
    functions: Arc<dyn Invoke>,
    calls: Arc<CallTable>,
    io: Arc<CallIo>,
    base: StartConfig,
    /// Lock owner for this invocation (unique within the host).
    owner: u64,
    /// Memory and table caps (`--max-memory`).
    limits: wasmtime::StoreLimits,
}

impl WasiView for ComponentHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn state_error(e: HostStateError) -> StateError {
    match e {
        HostStateError::NotFound => StateError::NotFound,
        HostStateError::OutOfBounds => StateError::OutOfBounds,
        HostStateError::TooLarge => StateError::TooLarge,
        HostStateError::NotLocked => StateError::NotLocked,
        HostStateError::TimedOut => StateError::TimedOut,
        HostStateError::Unavailable => StateError::Unavailable,
    }
}

fn call_error(e: HostCallError) -> CallError {
    match e {
        HostCallError::UnknownFunction => CallError::UnknownFunction,
        HostCallError::NoSuchCall => CallError::NoSuchCall,
        HostCallError::AlreadyAwaited => CallError::AlreadyAwaited,
        HostCallError::NotFinished => CallError::NotFinished,
        HostCallError::Trapped => CallError::Trapped,
        HostCallError::FailedToStart => CallError::FailedToStart,
        HostCallError::TooLarge => CallError::TooLarge,
    }
}

fn tier(tier: Tier) -> HostTier {
    match tier {
        Tier::Local => HostTier::Local,
        Tier::Global => HostTier::Global,
    }
}

fn lock_kind(kind: LockKind) -> HostLockKind {
    match kind {
        LockKind::Read => HostLockKind::Read,
        LockKind::Write => HostLockKind::Write,
    }
}

impl state::Host for ComponentHost {
    fn get(&mut self, key: String) -> Result<Vec<u8>, StateError> {
        self.state.get(&key).map_err(state_error)
    }
    fn get_range(&mut self, key: String, offset: u64, len: u32) -> Result<Vec<u8>, StateError> {
        self.state.get_range(&key, offset, len).map_err(state_error)
    }
    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), StateError> {
        self.state.set(&key, &value).map_err(state_error)
    }
    fn set_range(&mut self, key: String, offset: u64, data: Vec<u8>) -> Result<(), StateError> {
        self.state
            .set_range(&key, offset, &data)
            .map_err(state_error)
    }
    fn size(&mut self, key: String) -> Result<u64, StateError> {
        self.state.size(&key).map_err(state_error)
    }
    fn push(&mut self, key: String) -> Result<(), StateError> {
        self.state.push(&key).map_err(state_error)
    }
    fn push_partial(&mut self, key: String) -> Result<(), StateError> {
        self.state.push_partial(&key).map_err(state_error)
    }
    fn pull(&mut self, key: String) -> Result<(), StateError> {
        self.state.pull(&key).map_err(state_error)
    }
    fn pull_range(&mut self, key: String, offset: u64, len: u32) -> Result<(), StateError> {
        self.state
            .pull_range(&key, offset, len)
            .map_err(state_error)
    }
    fn delete(&mut self, key: String) -> Result<(), StateError> {
        self.state.delete(&key).map_err(state_error)
    }
    fn append(&mut self, key: String, data: Vec<u8>) -> Result<(), StateError> {
        self.state.append(&key, &data).map_err(state_error)
    }
    fn appended_count(&mut self, key: String) -> Result<u32, StateError> {
        self.state.appended_count(&key).map_err(state_error)
    }
    fn read_appended(&mut self, key: String, index: u32) -> Result<Vec<u8>, StateError> {
        self.state.read_appended(&key, index).map_err(state_error)
    }
    fn clear_appended(&mut self, key: String) -> Result<(), StateError> {
        self.state.clear_appended(&key).map_err(state_error)
    }
    fn lock(&mut self, key: String, t: Tier, kind: LockKind) -> Result<(), StateError> {
        self.state
            .lock(&key, tier(t), lock_kind(kind), self.owner)
            .map_err(state_error)
    }
    fn unlock(&mut self, key: String, t: Tier, kind: LockKind) -> Result<(), StateError> {
        self.state
            .unlock(&key, tier(t), lock_kind(kind), self.owner)
            .map_err(state_error)
    }
}

impl chain::Host for ComponentHost {
    fn input(&mut self) -> Vec<u8> {
        self.io.input.clone()
    }
    fn set_output(&mut self, data: Vec<u8>) -> Result<(), CallError> {
        if data.len() > MAX_CALL_BYTES {
            return Err(CallError::TooLarge);
        }
        *self.io.output.locked() = data;
        Ok(())
    }
    fn call(&mut self, name: String, input: Vec<u8>) -> Result<u32, CallError> {
        self.calls
            .call(self.functions.clone(), &name, input, &self.base)
            .map_err(call_error)
    }
    fn await_(&mut self, id: u32) -> Result<i32, CallError> {
        self.calls.await_call(id).map_err(call_error)
    }
    fn await_all(&mut self, ids: Vec<u32>) -> Result<Vec<i32>, CallError> {
        self.calls.await_all(&ids).map_err(call_error)
    }
    fn output(&mut self, id: u32) -> Result<Vec<u8>, CallError> {
        self.calls.output(id).map_err(call_error)
    }
}

/// A compiled component function, linked once: each call instantiates it
/// from the same `InstancePre` (its memories from the engine's copy-on-write
/// images of the component's data).
pub(crate) struct ComponentFunction {
    pre: AppPre<ComponentHost>,
}

impl std::fmt::Debug for ComponentFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ComponentFunction")
    }
}

/// A component function stopped at an epoch tick because its call's time
/// limit passed.
#[derive(Debug, thiserror::Error)]
#[error("time limit of {0:?} reached")]
pub(crate) struct TimeLimitReached(pub std::time::Duration);

impl ComponentFunction {
    pub(crate) fn load(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        crate::rewrite::check_compile_budget(bytes)
            .map_err(|e| wasmtime::Error::msg(format!("component too large to compile: {e}")))?;
        let component = Component::new(engine, bytes)?;
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        App::add_to_linker::<_, HasSelf<_>>(&mut linker, |host| host)?;
        // Fails now, not at the first call, if the component wants more
        // than the function world gives, or does not export its `run`.
        let pre = AppPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self { pre })
    }

    /// Runs the component's `run` with `io`; its exit code (0 ok, 1 err),
    /// or the trap ([`TimeLimitReached`] when `base.time_limit` passed:
    /// the guest is stopped at the engine's next epoch tick, so a
    /// component that computes without end gives its slot back).
    pub(crate) fn run(
        &self,
        name: &str,
        functions: &Arc<dyn Invoke>,
        state: Arc<StateHost>,
        io: Arc<CallIo>,
        base: &StartConfig,
    ) -> wasmtime::Result<i32> {
        static OWNERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let wasi = WasiCtxBuilder::new()
            .inherit_stdout()
            .inherit_stderr()
            .args(&[name])
            .build();
        let host = ComponentHost {
            wasi,
            table: ResourceTable::new(),
            state,
            functions: functions.clone(),
            calls: Arc::default(),
            io,
            base: base.clone(),
            // Distinct from core processes' owners (process serial << 32).
            owner: u64::MAX - OWNERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            limits: crate::process::store_limits(base.max_memory),
        };
        let mut store = Store::new(self.pre.engine(), host);
        store.limiter(|host| &mut host.limits);
        match base.time_limit {
            Some(limit) => {
                let started = std::time::Instant::now();
                // Checked at every tick of the engine's epoch (an engine
                // without epoch checks never calls it).
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(move |_| {
                    if started.elapsed() >= limit {
                        Err(wasmtime::Error::new(TimeLimitReached(limit)))
                    } else {
                        Ok(wasmtime::UpdateDeadline::Continue(1))
                    }
                });
            }
            None => store.set_epoch_deadline(crate::engine::NEVER),
        }
        let run = || -> wasmtime::Result<i32> {
            let app = self.pre.instantiate(&mut store)?;
            Ok(match app.call_run(&mut store)? {
                Ok(()) => 0,
                Err(()) => 1,
            })
        };
        crate::wasm_stack::with_room(run).unwrap_or_else(|e| {
            Err(wasmtime::Error::msg(format!(
                "{name}: starting a thread for the guest's stack: {e}"
            )))
        })
    }
}
