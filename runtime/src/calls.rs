//! The calls a program makes of functions by name (`wit/chain.wit`): a
//! table of running and finished calls, each on a thread of its own. The
//! table runs functions through [`Invoke`], which the host's registry
//! (`functions.rs`) implements; this module knows nothing of registries,
//! modules or components.

use crate::locks::Locked as _;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use crate::start::StartConfig;
pub use crate::start::{CallError, CallIo, Finished, Invoke};
use weft_transport::envelope::{ChainAnswer, ChainCall};

/// Largest input or output a call carries.
pub const MAX_CALL_BYTES: usize = 64 << 20;
/// Longest function name.
pub const MAX_NAME_LEN: usize = 128;
/// Deepest chain of calls (a function calling a function ...); deeper
/// calls fail with `failed-to-start`.
pub const MAX_CALL_DEPTH: u32 = 64;
/// Calls running at once in one host; more fail with `failed-to-start`
/// (each is an OS thread and a process).
pub const MAX_RUNNING_CALLS: usize = 256;

/// The calls a function has made, by id.
#[derive(Debug, Default)]
pub struct CallTable {
    calls: Mutex<CallsState>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct CallsState {
    next_id: u32,
    calls: HashMap<u32, Call>,
}

#[derive(Debug)]
enum Call {
    Running,
    Done {
        result: Result<Finished, CallError>,
        awaited: bool,
    },
}

impl CallTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallsState> {
        self.calls.locked()
    }

    /// Starts function `name` with `input` on a thread of its own.
    pub fn call(
        self: &Arc<Self>,
        functions: Arc<dyn Invoke>,
        name: &str,
        input: Vec<u8>,
        base: &StartConfig,
    ) -> Result<u32, CallError> {
        if name.len() > MAX_NAME_LEN || input.len() > MAX_CALL_BYTES {
            return Err(CallError::TooLarge);
        }
        if base.call_depth >= MAX_CALL_DEPTH {
            tracing::debug!("call of `{name}`: {MAX_CALL_DEPTH} calls deep already");
            return Err(CallError::FailedToStart);
        }
        // Unknown names fail here, not at await.
        functions.check(name)?;
        let Some(running) = functions.admit() else {
            tracing::debug!("call of `{name}`: {MAX_RUNNING_CALLS} calls run already");
            return Err(CallError::FailedToStart);
        };
        let id = {
            let mut state = self.lock();
            state.next_id = state.next_id.checked_add(1).ok_or(CallError::TooLarge)?;
            let id = state.next_id;
            state.calls.insert(id, Call::Running);
            id
        };
        let base = StartConfig {
            call_depth: base.call_depth + 1,
            ..base.clone()
        };
        let (table, name) = (self.clone(), name.to_string());
        let started = std::thread::Builder::new()
            .name(format!("weft-call-{name}"))
            .stack_size(crate::wasm_stack::THREAD_STACK)
            .spawn(move || {
                let _running = running;
                let result = functions.invoke(&name, input, &base);
                table.lock().calls.insert(
                    id,
                    Call::Done {
                        result,
                        awaited: false,
                    },
                );
                table.finished.notify_all();
            });
        if let Err(e) = started {
            tracing::warn!("call of a function: no OS thread: {e}");
            self.lock().calls.remove(&id);
            return Err(CallError::FailedToStart);
        }
        Ok(id)
    }

    /// Waits for call `id`; its exit code.
    pub fn await_call(&self, id: u32) -> Result<i32, CallError> {
        let mut state = self.lock();
        loop {
            match Self::take_result(&mut state, id) {
                Ok(None) => state = crate::locks::wait(&self.finished, state),
                Ok(Some(code)) => return code,
                Err(e) => return Err(e),
            }
        }
    }

    /// Call `id`'s exit code if it has finished (it is then awaited), or
    /// `None`: an await that does not block (for threads on other hosts,
    /// which poll).
    pub fn try_await(&self, id: u32) -> Result<Option<i32>, CallError> {
        Self::take_result(&mut self.lock(), id)?.transpose()
    }

    fn take_result(
        state: &mut CallsState,
        id: u32,
    ) -> Result<Option<Result<i32, CallError>>, CallError> {
        match state.calls.get_mut(&id) {
            None => Err(CallError::NoSuchCall),
            Some(Call::Running) => Ok(None),
            Some(Call::Done { awaited: true, .. }) => Err(CallError::AlreadyAwaited),
            Some(Call::Done { result, awaited }) => {
                *awaited = true;
                Ok(Some(match result {
                    Ok(finished) if finished.trapped => Err(CallError::Trapped),
                    Ok(finished) => Ok(finished.code),
                    Err(e) => Err(*e),
                }))
            }
        }
    }

    /// Checks `ids` for `await-all`: each a call, none awaited, none twice.
    /// Whether all of them have finished.
    fn check_all(state: &CallsState, ids: &[u32]) -> Result<bool, CallError> {
        let mut seen = std::collections::HashSet::new();
        let mut finished = true;
        for id in ids {
            match state.calls.get(id) {
                None => return Err(CallError::NoSuchCall),
                Some(Call::Done { awaited: true, .. }) => return Err(CallError::AlreadyAwaited),
                Some(_) if !seen.insert(*id) => return Err(CallError::AlreadyAwaited),
                Some(Call::Running) => finished = false,
                Some(Call::Done { .. }) => {}
            }
        }
        Ok(finished)
    }

    /// Waits for every call in `ids` (see `await-all` in `wit/chain.wit`).
    pub fn await_all(&self, ids: &[u32]) -> Result<Vec<i32>, CallError> {
        Self::check_all(&self.lock(), ids)?;
        let results: Vec<Result<i32, CallError>> =
            ids.iter().map(|id| self.await_call(*id)).collect();
        results.into_iter().collect()
    }

    /// `await-all` that does not block: the exit codes once every call in
    /// `ids` has finished (they are then awaited), else `None`.
    pub fn try_await_all(&self, ids: &[u32]) -> Result<Option<Vec<i32>>, CallError> {
        let mut state = self.lock();
        if !Self::check_all(&state, ids)? {
            return Ok(None);
        }
        let results: Vec<Result<i32, CallError>> = ids
            .iter()
            .map(|id| Self::take_result(&mut state, *id)?.ok_or(CallError::NotFinished)?)
            .collect();
        results.into_iter().collect::<Result<Vec<_>, _>>().map(Some)
    }

    /// The output of finished call `id`.
    pub fn output(&self, id: u32) -> Result<Vec<u8>, CallError> {
        match self.lock().calls.get(&id) {
            None => Err(CallError::NoSuchCall),
            Some(Call::Running) => Err(CallError::NotFinished),
            Some(Call::Done { result, .. }) => {
                result.as_ref().map(|f| f.output.clone()).map_err(|e| *e)
            }
        }
    }
}

/// Runs a `weft:chain` operation against a process's input and output (in
/// `config`) and its `calls` (at home, for its own threads and for threads
/// on peers): the
/// answer, and whether it changed what others see (starting a call, an
/// await that took a result, setting the output), after which a thread
/// must not run again.
pub(crate) fn serve_chain(
    config: &StartConfig,
    calls: &Arc<CallTable>,
    call: ChainCall,
) -> (Result<ChainAnswer, CallError>, bool) {
    match call {
        ChainCall::Input => (
            Ok(ChainAnswer::Bytes(
                config
                    .call_io
                    .as_ref()
                    .map_or_else(Vec::new, |io| io.input.to_vec()),
            )),
            false,
        ),
        ChainCall::SetOutput(data) => {
            // Outside a function (`weft run`) the output goes nowhere.
            if let Some(io) = &config.call_io {
                *io.output.locked() = data;
            }
            (Ok(ChainAnswer::Done), true)
        }
        ChainCall::Call { name, input } => match &config.functions {
            None => (Err(CallError::UnknownFunction), false),
            Some(functions) => match calls.call(functions.clone(), &name, input, config) {
                Ok(id) => (Ok(ChainAnswer::Id(id)), true),
                Err(e) => (Err(e), false),
            },
        },
        ChainCall::TryAwait { id } => {
            let code = calls.try_await(id);
            let effect = matches!(code, Ok(Some(_)) | Err(CallError::Trapped));
            (code.map(ChainAnswer::Code), effect)
        }
        ChainCall::TryAwaitAll { ids } => {
            let codes = calls.try_await_all(&ids);
            let effect = !matches!(
                codes,
                Ok(None) | Err(CallError::NoSuchCall | CallError::AlreadyAwaited)
            );
            (codes.map(ChainAnswer::Codes), effect)
        }
        ChainCall::Output { id } => (calls.output(id).map(ChainAnswer::Bytes), false),
    }
}

/// The same for an await at home, which waits for its answer.
pub(crate) fn serve_chain_wait(
    config: &StartConfig,
    calls: &Arc<CallTable>,
    call: ChainCall,
) -> Result<ChainAnswer, CallError> {
    match call {
        ChainCall::TryAwait { id } => calls
            .await_call(id)
            .map(|code| ChainAnswer::Code(Some(code))),
        ChainCall::TryAwaitAll { ids } => calls
            .await_all(&ids)
            .map(|codes| ChainAnswer::Codes(Some(codes))),
        other => serve_chain(config, calls, other).0,
    }
}
