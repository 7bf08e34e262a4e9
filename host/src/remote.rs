//! Imports of a chained thread that runs on a worker host, away from its
//! home (the host of its program's main thread).
//!
//! A remote thread computes on its own copy of memory; what it may do
//! there is what needs nothing of its home: clocks, randomness, sleeping,
//! `weft:threads` `finish`, and writing to stdout and stderr (buffered and
//! printed by the home host when the thread's changes merge). A new arena
//! chunk is a call home over the thread's stream (the arena zone is
//! home's), and so is every operation on the global state tier (the local
//! tier is the worker's own, as each host has its own). Every other host
//! call (a nested spawn, a chained function, any other file operation,
//! `exit`) ends the remote run with
//! [`NeedsHome`]; the home host then runs the thread itself from the same
//! snapshot, which computes the same result: a thread changes nothing
//! outside its own memory before it finishes, and its buffered output is
//! dropped with the run.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{Caller, ExternType, Linker, Module};
use weft_transport::quic::HomeLink;

use crate::calls::CallError;
use crate::chain;
use crate::cluster::envelope::{
    ChainAnswer, ChainCall, GlobalAnswer, GlobalCall, HomeReply, HomeRequest, decode_home,
    encode_home,
};
use crate::process::{ThreadState, read_guest, write_guest};
use crate::state::{GlobalTier, LockKind, Owner, StateError};
use crate::{call_imports, state_imports, threads, wasi};

/// Output a remote thread may buffer; past it, the thread runs at home.
pub const MAX_OUTPUT: usize = 1 << 20;

/// The error a remote thread's instance unwinds with when it calls an
/// import only its home host can serve.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` needs the thread's home host")]
pub struct NeedsHome(pub String);

/// Imports a remote thread runs on the worker as it would at home.
const RUN_ANYWHERE: &[(&str, &str)] = &[
    (wasi::MODULE, "clock_res_get"),
    (wasi::MODULE, "random_get"),
    (wasi::MODULE, "sched_yield"),
    (threads::WEFT_MODULE, "mode"),
    (threads::WEFT_MODULE, "current-id"),
    (threads::WEFT_MODULE, "finish"),
    (threads::WEFT_MODULE, "exit-current"),
    (threads::WEFT_MODULE, "chain-unsupported"),
    // A remote thread's own threads run on its worker (ids and arena
    // chunks from home, see `chain.rs`).
    (threads::WASI_MODULE, threads::WASI_SPAWN),
    (threads::WEFT_MODULE, "spawn"),
    (threads::WEFT_MODULE, "wait-begin"),
    (threads::WEFT_MODULE, "wait-end"),
    (threads::WEFT_MODULE, "available-parallelism"),
];

/// Replaces, in `linker`, every import of `module` that a remote thread
/// cannot serve away from home with one that ends the run with
/// [`NeedsHome`], and stdout/stderr writes and sleeps with remote versions.
pub(crate) fn shadow_home_imports(
    linker: &mut Linker<ThreadState>,
    module: &Module,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for import in module.imports() {
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let (module_name, name) = (import.module(), import.name());
        let ours = matches!(
            module_name,
            wasi::MODULE
                | threads::WASI_MODULE
                | threads::WEFT_MODULE
                | state_imports::STATE_MODULE
                | call_imports::CHAIN_MODULE
        );
        // Shared state works anywhere: the local tier is this host's, the
        // global tier is reached through home (`HomeGlobal`); so do chained
        // calls (`call_imports.rs` sends them home).
        if !ours
            || module_name == state_imports::STATE_MODULE
            || module_name == call_imports::CHAIN_MODULE
            || RUN_ANYWHERE.contains(&(module_name, name))
        {
            continue;
        }
        match (module_name, name) {
            (wasi::MODULE, "fd_write") => {
                linker.func_wrap(wasi::MODULE, "fd_write", remote_fd_write)?;
            }
            (wasi::MODULE, "clock_time_get") => {
                linker.func_wrap(wasi::MODULE, "clock_time_get", remote_clock_time_get)?;
            }
            (wasi::MODULE, "fd_fdstat_get") => {
                linker.func_wrap(wasi::MODULE, "fd_fdstat_get", remote_fd_fdstat_get)?;
            }
            (wasi::MODULE, "poll_oneoff") => {
                linker.func_wrap(wasi::MODULE, "poll_oneoff", remote_poll_oneoff)?;
            }
            (threads::WEFT_MODULE, "arena-grow") => {
                linker.func_wrap(threads::WEFT_MODULE, "arena-grow", remote_arena_grow)?;
            }
            _ => {
                let what = format!("{module_name}.{name}");
                linker.func_new(module_name, name, ty, move |_, _, _| {
                    Err(wasmtime::Error::new(NeedsHome(what.clone())))
                })?;
            }
        }
    }
    Ok(())
}

/// Size of a preview1 `ciovec`.
const CIOVEC_SIZE: u32 = 8;
/// preview1 `errno.fault`.
const ERRNO_FAULT: i32 = 21;

/// `fd_write` on stdout or stderr appends to the thread's buffered output
/// (a record per write: fd, length, bytes); any other fd needs home.
fn remote_fd_write(
    mut caller: Caller<'_, ThreadState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    if fd != 1 && fd != 2 {
        return Err(NeedsHome(format!("fd_write to fd {fd}")).into());
    }
    let mut bytes = Vec::new();
    for i in 0..iovs_len.max(0) as u32 {
        let mut iov = [0u8; CIOVEC_SIZE as usize];
        let at = (iovs as u32).wrapping_add(i * CIOVEC_SIZE);
        if !read_guest(&mut caller, at, &mut iov) {
            return Ok(ERRNO_FAULT);
        }
        let ptr = u32::from_le_bytes(iov[..4].try_into().unwrap());
        let len = u32::from_le_bytes(iov[4..].try_into().unwrap()) as usize;
        if bytes.len() + len > MAX_OUTPUT {
            return Err(NeedsHome("more output than a remote thread buffers".into()).into());
        }
        let start = bytes.len();
        bytes.resize(start + len, 0);
        if !read_guest(&mut caller, ptr, &mut bytes[start..]) {
            return Ok(ERRNO_FAULT);
        }
    }
    if !write_guest(&mut caller, out as u32, &(bytes.len() as u32).to_le_bytes()) {
        return Ok(ERRNO_FAULT);
    }
    let Some(remote) = caller.data().remote.clone() else {
        return Err(NeedsHome("fd_write without a call".into()).into());
    };
    let mut output = remote.output.lock().unwrap_or_else(|e| e.into_inner());
    if output.len() + bytes.len() > MAX_OUTPUT {
        return Err(NeedsHome("more output than a remote thread buffers".into()).into());
    }
    output.push(fd as u8);
    output.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    output.extend_from_slice(&bytes);
    Ok(0)
}

/// Clocks work anywhere, but the process's CPU time is home's (it counts
/// every thread of the program, wherever it ran).
fn remote_clock_time_get(
    mut caller: Caller<'_, ThreadState>,
    id: i32,
    precision: i64,
    out: i32,
) -> wasmtime::Result<i32> {
    if id == wasi::CLOCKID_PROCESS_CPUTIME {
        return Err(NeedsHome("the process's CPU time".into()).into());
    }
    wasi::clock_time_get(&mut caller, id, precision, out)
}

/// `fd_fdstat_get` of stdout or stderr (libc's first write asks it):
/// home's answer, so the thread buffers its output as it would at home.
fn remote_fd_fdstat_get(
    mut caller: Caller<'_, ThreadState>,
    fd: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    if fd != 1 && fd != 2 {
        return Err(NeedsHome(format!("fd_fdstat_get of fd {fd}")).into());
    }
    let Some(remote) = caller.data().remote.clone() else {
        return Err(NeedsHome("fd_fdstat_get without a call".into()).into());
    };
    match remote.call(&HomeRequest::FdStat { fd: fd as u32 }) {
        Ok(HomeReply::FdStat(Ok(bytes))) if bytes.len() == wasi::FDSTAT_SIZE => {
            if !write_guest(&mut caller, out as u32, &bytes) {
                return Ok(ERRNO_FAULT);
            }
            Ok(0)
        }
        Ok(HomeReply::FdStat(Err(errno))) => Ok(errno as i32),
        other => Err(NeedsHome(format!("fd_fdstat_get: home answered {other:?}")).into()),
    }
}

/// `arena-grow` away from home: home hands out the chunk from its zone;
/// the thread's memory is made to reach it (and zeroed where it held
/// data). Returns 0 (the guest's `malloc` fails) when memory is full.
fn remote_arena_grow(caller: Caller<'_, ThreadState>, size: i32) -> wasmtime::Result<i32> {
    let state = caller.data();
    let (Some(remote), Some(memory)) = (state.remote.clone(), state.memory.clone()) else {
        return Err(NeedsHome("arena-grow without a way home".into()).into());
    };
    let call = |request: &HomeRequest| -> wasmtime::Result<HomeReply> {
        remote
            .call(request)
            .map_err(|e| NeedsHome(format!("arena-grow: {e}")).into())
    };
    match call(&HomeRequest::ArenaGrow { size: size as u32 })? {
        HomeReply::Chunk { start, len, dirty } => {
            match chain::adopt_remote_chunk(&memory, start, len, dirty) {
                Ok(()) => Ok(start as i32),
                Err(e) => {
                    tracing::debug!("remote arena-grow of {size} bytes: {e}");
                    call(&HomeRequest::ArenaRelease { start })?;
                    Ok(0)
                }
            }
        }
        HomeReply::NoChunk => Ok(0),
        other => Err(NeedsHome(format!("arena-grow: home answered {other:?}")).into()),
    }
}

/// Sleeping works anywhere; waiting on files needs home.
fn remote_poll_oneoff(
    mut caller: Caller<'_, ThreadState>,
    subs: i32,
    events: i32,
    nsubs: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    if nsubs == 1
        && let Some(errno) = wasi::sleep_only(&mut caller, subs, events, nevents)?
    {
        return Ok(errno);
    }
    Err(NeedsHome("poll_oneoff on files".into()).into())
}

/// Why a call home got no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HomeError {
    #[error(transparent)]
    Link(#[from] weft_transport::quic::HomeCallError),
    #[error("home's answer: {0}")]
    Answer(#[from] crate::cluster::envelope::EnvelopeError),
}

/// One call a worker runs: the way home of its threads (the one home sent
/// and the threads it starts here), their buffered output, and the first
/// failure among the threads it started, which fails the whole call (home
/// then runs the thread itself).
#[derive(Debug)]
pub(crate) struct RemoteCall {
    /// One call home at a time (the stream carries one); calls are short,
    /// lock waits included (`HomeGlobal::lock` polls).
    home: Mutex<HomeLink>,
    output: Mutex<Vec<u8>>,
    failure: Mutex<Option<String>>,
    /// Set when the requester cancelled or is gone, or the call failed:
    /// its threads stop at their next epoch check.
    cancelled: Arc<AtomicBool>,
    /// Threads started on the worker for this call that have not ended.
    running: Mutex<usize>,
    ended: Condvar,
    /// The worker's time limit for a call: past it, the call is cancelled.
    deadline: Option<Instant>,
    /// CPU time the call's threads used here, in nanoseconds.
    cpu_ns: std::sync::atomic::AtomicU64,
}

/// How long a cancelled call's threads get to stop (a thread blocked in a
/// wait with no timeout does not see the cancel).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long threads a call started may run on after its own thread has
/// finished (a detached thread finishing its work) before the call is
/// given up and its thread runs at home.
const OUTLIVE_GRACE: Duration = Duration::from_secs(2);

impl RemoteCall {
    /// A call whose threads may run until `deadline`, if any.
    pub(crate) fn new(home: HomeLink, deadline: Option<Instant>) -> Arc<Self> {
        Arc::new(Self {
            deadline,
            cpu_ns: std::sync::atomic::AtomicU64::new(0),
            cancelled: home.cancelled(),
            home: Mutex::new(home),
            output: Mutex::default(),
            failure: Mutex::default(),
            running: Mutex::new(0),
            ended: Condvar::new(),
        })
    }

    /// Counts CPU time one of the call's threads used.
    pub(crate) fn add_cpu(&self, nanos: u64) {
        self.cpu_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn cpu_ns(&self) -> u64 {
        self.cpu_ns.load(Ordering::Relaxed)
    }

    /// Stops the call's threads (at their next epoch check).
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.past_deadline()
    }

    /// Whether the call ran past the worker's time limit.
    pub(crate) fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|at| Instant::now() >= at)
    }

    /// Waits until every thread started on the worker for this call has
    /// ended. A thread that outlives the call's own thread by more than
    /// [`OUTLIVE_GRACE`] fails the call (home runs the thread itself, where
    /// a thread that outlives its creator is handled as in plain chain
    /// mode) and is stopped; once the call is cancelled, the wait is
    /// bounded by [`STOP_GRACE`].
    pub(crate) fn wait_threads(&self) {
        let started = Instant::now();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut cancelled_at: Option<Instant> = None;
        while *running > 0 {
            if self.is_cancelled() {
                let since = *cancelled_at.get_or_insert_with(Instant::now);
                if since.elapsed() > STOP_GRACE {
                    self.fail(format!("{} thread(s) did not stop", *running));
                    return;
                }
            } else if started.elapsed() > OUTLIVE_GRACE {
                self.fail(format!(
                    "{} thread(s) it started outlive it: home runs it instead",
                    *running
                ));
                self.cancel();
            }
            running = self
                .ended
                .wait_timeout(running, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Asks home; a lost link or an answer that does not decode is `Err`.
    pub(crate) fn call(&self, request: &HomeRequest) -> Result<HomeReply, HomeError> {
        let home = self.home.lock().unwrap_or_else(|e| e.into_inner());
        let reply = home.call(encode_home(request))?;
        Ok(decode_home(&reply)?)
    }

    /// Records why a thread of this call failed (the first reason wins).
    pub(crate) fn fail(&self, why: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            tracing::debug!("a remote call fails: {why}");
            *failure = Some(why);
        }
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn take_output(&self) -> Vec<u8> {
        std::mem::take(&mut *self.output.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A thread started on a worker for a call, counted while it lives.
pub(crate) struct CallThread(Arc<RemoteCall>);

impl CallThread {
    pub(crate) fn new(call: Arc<RemoteCall>) -> Self {
        *call.running.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Self(call)
    }
}

impl Drop for CallThread {
    fn drop(&mut self) {
        let mut running = self.0.running.lock().unwrap_or_else(|e| e.into_inner());
        *running -= 1;
        if *running == 0 {
            self.0.ended.notify_all();
        }
    }
}

thread_local! {
    /// The call of the remote thread running on this OS thread.
    static HOME: RefCell<Option<Arc<RemoteCall>>> = const { RefCell::new(None) };
}

/// While it lives, the calling OS thread runs a thread of `call` (for
/// [`HomeGlobal`], which the state imports call without the thread's
/// store).
pub(crate) struct HomeScope;

impl HomeScope {
    pub(crate) fn enter(call: Arc<RemoteCall>) -> Self {
        HOME.with(|home| *home.borrow_mut() = Some(call));
        Self
    }
}

impl Drop for HomeScope {
    fn drop(&mut self) {
        HOME.with(|home| home.borrow_mut().take());
    }
}

/// The global state tier of a worker host: each operation goes to the
/// home of the remote thread that makes it, over its call's stream; home
/// applies it to its own global tier (embedded or Redis) as the thread's
/// lock owner there.
#[derive(Debug, Default)]
pub struct HomeGlobal;

impl HomeGlobal {
    fn call(&self, call: GlobalCall) -> Result<GlobalAnswer, StateError> {
        let Some(remote) = HOME.with(|home| home.borrow().clone()) else {
            return Err(StateError::Unavailable);
        };
        match remote.call(&HomeRequest::Global(call)) {
            Ok(HomeReply::Global(Ok(answer))) => Ok(answer),
            Ok(HomeReply::Global(Err(code))) => {
                Err(StateError::from_code(code).unwrap_or(StateError::Unavailable))
            }
            _ => Err(StateError::Unavailable),
        }
    }

    fn done(&self, call: GlobalCall) -> Result<(), StateError> {
        match self.call(call)? {
            GlobalAnswer::Done => Ok(()),
            _ => Err(StateError::Unavailable),
        }
    }
}

impl GlobalTier for HomeGlobal {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match self.call(GlobalCall::Get { key: key.into() })? {
            GlobalAnswer::Value(value) => Ok(value),
            _ => Err(StateError::Unavailable),
        }
    }

    fn get_range(&self, key: &str, offset: u64, len: u32) -> Result<Vec<u8>, StateError> {
        let key = key.into();
        match self.call(GlobalCall::GetRange { key, offset, len })? {
            GlobalAnswer::Bytes(bytes) if bytes.len() == len as usize => Ok(bytes),
            _ => Err(StateError::Unavailable),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StateError> {
        self.done(GlobalCall::Set {
            key: key.into(),
            value: value.to_vec(),
        })
    }

    fn set_ranges(&self, key: &str, len: u64, ranges: &[(u64, &[u8])]) -> Result<(), StateError> {
        self.done(GlobalCall::SetRanges {
            key: key.into(),
            len,
            ranges: ranges
                .iter()
                .map(|(at, bytes)| (*at, bytes.to_vec()))
                .collect(),
        })
    }

    fn delete(&self, key: &str) -> Result<(), StateError> {
        self.done(GlobalCall::Delete { key: key.into() })
    }

    fn append(&self, key: &str, record: &[u8]) -> Result<(), StateError> {
        self.done(GlobalCall::Append {
            key: key.into(),
            record: record.to_vec(),
        })
    }

    fn appended_count(&self, key: &str) -> Result<u32, StateError> {
        match self.call(GlobalCall::AppendedCount { key: key.into() })? {
            GlobalAnswer::Count(n) => Ok(n),
            _ => Err(StateError::Unavailable),
        }
    }

    fn read_appended(&self, key: &str, index: u32) -> Result<Option<Vec<u8>>, StateError> {
        match self.call(GlobalCall::ReadAppended {
            key: key.into(),
            index,
        })? {
            GlobalAnswer::Value(value) => Ok(value),
            _ => Err(StateError::Unavailable),
        }
    }

    fn clear_appended(&self, key: &str) -> Result<(), StateError> {
        self.done(GlobalCall::ClearAppended { key: key.into() })
    }

    /// Tries at home without waiting there, and waits here between tries:
    /// the call's link stays free for its other threads meanwhile (one of
    /// them may hold the lock and need home to give it back).
    fn lock(
        &self,
        key: &str,
        kind: LockKind,
        owner: Owner,
        deadline: Instant,
    ) -> Result<(), StateError> {
        let mut pause = std::time::Duration::from_micros(50);
        loop {
            let tried = self.done(GlobalCall::Lock {
                key: key.into(),
                write: kind == LockKind::Write,
                wait_ms: 0,
                // Home makes the owner from the thread id (the low half).
                tid: owner as u32,
            });
            match tried {
                Err(StateError::TimedOut) if Instant::now() < deadline => {
                    std::thread::sleep(pause.min(deadline - Instant::now()));
                    pause = (pause * 2).min(std::time::Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    fn unlock(&self, key: &str, kind: LockKind, owner: Owner) -> Result<(), StateError> {
        self.done(GlobalCall::Unlock {
            key: key.into(),
            write: kind == LockKind::Write,
            tid: owner as u32,
        })
    }
}

/// Sends a `weft:chain` operation home; a lost link is `failed-to-start`
/// (nothing can run for a thread whose home is gone).
pub(crate) fn chain_call(remote: &RemoteCall, call: ChainCall) -> Result<ChainAnswer, CallError> {
    match remote.call(&HomeRequest::Chain(call)) {
        Ok(HomeReply::Chain(answer)) => {
            answer.map_err(|code| CallError::from_code(code).unwrap_or(CallError::FailedToStart))
        }
        other => {
            tracing::debug!("a chained call from away from home: {other:?}");
            Err(CallError::FailedToStart)
        }
    }
}

/// Polls `try_once` until it gives an answer, pausing longer each time (a
/// thread away from home waiting for a chained call).
pub(crate) fn poll<T>(
    mut try_once: impl FnMut() -> Result<Option<T>, CallError>,
) -> Result<T, CallError> {
    let mut pause = std::time::Duration::from_micros(100);
    loop {
        if let Some(done) = try_once()? {
            return Ok(done);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(10));
    }
}

/// Serves a remote thread's [`GlobalCall`] against `global`, as `owner`;
/// a lock waits at most `max_wait` (home's own bound, whatever the worker
/// asked).
pub(crate) fn serve_global(
    global: &dyn GlobalTier,
    owner: Owner,
    call: GlobalCall,
    max_wait: std::time::Duration,
) -> Result<GlobalAnswer, StateError> {
    let kind = |write| {
        if write {
            LockKind::Write
        } else {
            LockKind::Read
        }
    };
    Ok(match call {
        GlobalCall::Get { key } => GlobalAnswer::Value(global.get(&key)?),
        GlobalCall::GetRange { key, offset, len } => {
            GlobalAnswer::Bytes(global.get_range(&key, offset, len)?)
        }
        GlobalCall::Set { key, value } => {
            global.set(&key, &value)?;
            GlobalAnswer::Done
        }
        GlobalCall::SetRanges { key, len, ranges } => {
            let ranges: Vec<(u64, &[u8])> =
                ranges.iter().map(|(at, bytes)| (*at, &bytes[..])).collect();
            global.set_ranges(&key, len, &ranges)?;
            GlobalAnswer::Done
        }
        GlobalCall::Delete { key } => {
            global.delete(&key)?;
            GlobalAnswer::Done
        }
        GlobalCall::Append { key, record } => {
            global.append(&key, &record)?;
            GlobalAnswer::Done
        }
        GlobalCall::AppendedCount { key } => GlobalAnswer::Count(global.appended_count(&key)?),
        GlobalCall::ReadAppended { key, index } => {
            GlobalAnswer::Value(global.read_appended(&key, index)?)
        }
        GlobalCall::ClearAppended { key } => {
            global.clear_appended(&key)?;
            GlobalAnswer::Done
        }
        GlobalCall::Lock {
            key,
            write,
            wait_ms,
            ..
        } => {
            let wait = std::time::Duration::from_millis(wait_ms).min(max_wait);
            let deadline = Instant::now() + wait;
            global.lock(&key, kind(write), owner, deadline)?;
            GlobalAnswer::Done
        }
        GlobalCall::Unlock { key, write, .. } => {
            global.unlock(&key, kind(write), owner)?;
            GlobalAnswer::Done
        }
    })
}
