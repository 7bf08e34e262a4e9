//! Imports of a chained thread that runs on a worker host, away from its
//! home (the host of its program's main thread).
//!
//! A remote thread computes on its own copy of memory. What needs nothing
//! of its home runs on the worker: clocks, randomness, sleeping,
//! `weft:threads` `finish`, writing to stdout and stderr (buffered; the
//! buffer goes home with every call home and with the result), and the
//! threads it starts (ids and arena chunks from home). What only home has
//! is a call home over the thread's stream: arena chunks and lookups, the
//! global state tier (the local tier is the worker's own), chained
//! function calls, every sync call (`Home::synchronise` below: release
//! consistency over the stream, `chain/sync_away.rs`), every other WASI
//! call (files, descriptors, polls: made at home on a copy of the thread's
//! memory), `exit`, the CPU clocks only home reads, and registering a
//! merge region. Any other host call (giving an arena back, which a
//! chained thread's own copy never does) ends the remote run with
//! [`NeedsHome`]; the home host then runs the thread itself from
//! the same snapshot, which computes the same result as long as the thread
//! has not synchronised or changed shared state yet (home refuses to run
//! it again after that).
//!
//! The imports here differ from home's only in what they ask the thread's
//! [`Home`]: `wasi_call`, `buffer_output`, `exit`, `home_clock` and
//! `output_fdstat`, which [`RemoteCall`] implements below by calls home.

use wasmtime::{Caller, ExternType, Linker, Module, Val, ValType};

use crate::calls::CallError;
use crate::chain;
use crate::home::RemoteCall;
use crate::home::{MAX_OUTPUT, NeedsHome};
use crate::locks::Locked as _;
use crate::outcome::ProgramEnded;
use crate::process::{Home, Process, ThreadState, read_guest, write_guest};
use crate::start::ThreadError;
use crate::sync::{LockKind, MutexKind};
use crate::{call_imports, state_imports, threads, wasi};
use std::sync::Arc;
use weft_transport::envelope::{ChainAnswer, ChainCall, HomeReply, HomeRequest, SyncCall};

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
    // chunks from home, see `chain/arena.rs`).
    (threads::WASI_MODULE, threads::WASI_SPAWN),
    (threads::WEFT_MODULE, "spawn"),
    (threads::WEFT_MODULE, "wait-begin"),
    (threads::WEFT_MODULE, "wait-end"),
    (threads::WEFT_MODULE, "wait-slice"),
    (threads::WEFT_MODULE, "available-parallelism"),
    (threads::WEFT_MODULE, "set-stack-bottom"),
    // The arena zone and the merge regions are home's: the thread's `Home`
    // asks home for them over the call's stream.
    (threads::WEFT_MODULE, "arena-grow"),
    (threads::WEFT_MODULE, "arena-lookup"),
    (threads::WEFT_MODULE, "register-merge-region"),
    // Sync calls go home over the call's stream (`Home::synchronise`).
    (threads::WEFT_MODULE, "sync-lock"),
    (threads::WEFT_MODULE, "sync-unlock"),
    (threads::WEFT_MODULE, "sync-barrier"),
    (threads::WEFT_MODULE, "sync-cond-wait"),
    (threads::WEFT_MODULE, "sync-cond-wake"),
    (threads::WEFT_MODULE, "sync-sem-init"),
    (threads::WEFT_MODULE, "sync-sem-wait"),
    (threads::WEFT_MODULE, "sync-sem-post"),
    (threads::WEFT_MODULE, "sync-sem-value"),
    (threads::WEFT_MODULE, "sync-point"),
    (threads::WEFT_MODULE, "sync-atomic"),
    (threads::WEFT_MODULE, "sync-load"),
    (threads::WEFT_MODULE, "sync-at-home"),
    (threads::WEFT_MODULE, "sync-pause"),
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
            (wasi::MODULE, "proc_exit") => {
                linker.func_wrap(wasi::MODULE, "proc_exit", remote_proc_exit)?;
            }
            // Files and descriptors are home's: the call goes home.
            (wasi::MODULE, name)
                if wasi::is_plain(name)
                    && ty.results().map(|r| r.matches(&ValType::I32)).eq([true]) =>
            {
                let name = name.to_string();
                linker.func_new(
                    wasi::MODULE,
                    &name.clone(),
                    ty,
                    move |mut caller, params, results| {
                        let args = params.iter().map(widen).collect();
                        results[0] = Val::I32(wasi_at_home(&mut caller, &name, args)?);
                        Ok(())
                    },
                )?;
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

/// A wasm argument as a WASI call home carries it.
fn widen(value: &Val) -> i64 {
    match value {
        Val::I32(v) => i64::from(*v),
        Val::I64(v) => *v,
        _ => 0,
    }
}

/// Makes WASI call `name(args)` where the program's descriptors are (see
/// [`Home::wasi_call`]).
fn wasi_at_home(
    caller: &mut Caller<'_, ThreadState>,
    name: &str,
    args: Vec<i64>,
) -> wasmtime::Result<i32> {
    let home = caller.data().home_handle();
    home.wasi_call(caller, name, args)
}

/// Size of a preview1 `ciovec`.
const CIOVEC_SIZE: u32 = 8;
/// preview1 `errno.fault`.
const ERRNO_FAULT: i32 = 21;
/// preview1 `errno.inval`.
const ERRNO_INVAL: i32 = 28;

/// `fd_write` on stdout or stderr appends to the thread's buffered output
/// (a record per write: fd, length, bytes); any other fd needs home.
fn remote_fd_write(
    mut caller: Caller<'_, ThreadState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    // Other descriptors, and output past what the call buffers, are
    // written at home (after the buffered output, which goes first).
    let at_home = |caller: &mut Caller<'_, ThreadState>| {
        let args = [fd, iovs, iovs_len, out].map(i64::from).to_vec();
        wasi_at_home(caller, "fd_write", args)
    };
    if fd != 1 && fd != 2 {
        return at_home(&mut caller);
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
            return at_home(&mut caller);
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
    if !caller.data().home().buffer_output(fd as u8, &bytes) {
        return at_home(&mut caller);
    }
    Ok(0)
}

/// `exit(code)` ends the program at home (away from home, after the
/// output the call buffered).
fn remote_proc_exit(caller: Caller<'_, ThreadState>, code: i32) -> wasmtime::Result<()> {
    let state = caller.data();
    Err(state.home().exit(state.tid, code))
}

/// Clocks work anywhere, but the process's CPU time is home's (it counts
/// every thread of the program, wherever it ran), and so are the CPU
/// clocks of other threads.
fn remote_clock_time_get(
    mut caller: Caller<'_, ThreadState>,
    id: i32,
    precision: i64,
    out: i32,
) -> wasmtime::Result<i32> {
    if !wasi::is_home_clock(id) {
        return wasi::clock_time_get(&mut caller, id, precision, out);
    }
    let state = caller.data();
    match state.home().home_clock(&state.process, id as u32)? {
        Some(nanos) => Ok(
            if write_guest(&mut caller, out as u32, &nanos.to_le_bytes()) {
                0
            } else {
                ERRNO_FAULT
            },
        ),
        None => Ok(ERRNO_INVAL),
    }
}

/// `fd_fdstat_get` of stdout or stderr (libc's first write asks it):
/// home's answer, so the thread buffers its output as it would at home.
fn remote_fd_fdstat_get(
    mut caller: Caller<'_, ThreadState>,
    fd: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    if fd != 1 && fd != 2 {
        return wasi_at_home(&mut caller, "fd_fdstat_get", vec![fd.into(), out.into()]);
    }
    let state = caller.data();
    match state.home().output_fdstat(&state.process, fd as u32)? {
        Ok(bytes) if bytes.len() == wasi::FDSTAT_SIZE => {
            if !write_guest(&mut caller, out as u32, &bytes) {
                return Ok(ERRNO_FAULT);
            }
            Ok(0)
        }
        Ok(bytes) => Err(NeedsHome(format!(
            "fd_fdstat_get: a record of {} bytes from home",
            bytes.len()
        ))
        .into()),
        Err(errno) => Ok(i32::from(errno)),
    }
}

/// Sleeping works anywhere; waiting on descriptors is home's.
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
    let args = [subs, events, nsubs, nevents].map(i64::from).to_vec();
    wasi_at_home(&mut caller, "poll_oneoff", args)
}

/// A thread on a worker reaches its home through its call: thread ids and
/// the count of the program's threads are home's (the worker counts the
/// ones it runs as well), and a failure fails the call, not the worker
/// (home then runs the thread itself).
impl Home for RemoteCall {
    fn new_thread(&self, process: &Process) -> Result<u32, ThreadError> {
        let tid = self.new_thread_id()?;
        process.count_thread();
        Ok(tid)
    }

    fn not_started(&self, process: &Process, tid: u32) {
        process.thread_ended();
        self.tell_thread_ended(tid);
    }

    fn thread_failed(&self, process: &Process, tid: u32, end: Result<i32, wasmtime::Error>) {
        self.chained_thread_failed(process, tid, end);
        process.thread_ended();
    }

    fn chained_thread_failed(&self, _: &Process, tid: u32, end: Result<i32, wasmtime::Error>) {
        self.fail(match end {
            Ok(code) => format!("thread {tid} called exit({code})"),
            Err(e) => format!("thread {tid}: {e:#}"),
        });
    }

    fn refuse(&self, _: &Process, _: i32, why: String) {
        self.fail(why);
    }

    fn decides_conflicts(&self) -> bool {
        false
    }

    fn chained_thread_runs(&self, _: &Process) {}

    fn chained_thread_exiting(&self, tid: u32) {
        self.tell_thread_ended(tid);
    }

    fn add_cpu(&self, nanos: u64) {
        RemoteCall::add_cpu(self, nanos);
    }

    fn running_thread(self: Arc<Self>) -> Option<crate::home::CallThread> {
        Some(crate::home::CallThread::new(self))
    }

    fn state<'a>(&'a self, _: &'a Process) -> &'a crate::state::StateHost {
        RemoteCall::state(self)
    }

    /// Made at home on home's descriptors and a copy of the thread's
    /// memory (what it has not released goes along, as no release); what
    /// the call wrote comes back into the thread's memory. The thread's
    /// slot here is free meanwhile (a read may wait).
    fn wasi_call(
        &self,
        caller: &mut Caller<'_, ThreadState>,
        name: &str,
        args: Vec<i64>,
    ) -> wasmtime::Result<i32> {
        let state = caller.data();
        let tid = state.tid;
        let Some(memory) = state.memory.clone() else {
            return Err(NeedsHome(format!("{name} without a memory")).into());
        };
        let unreleased = chain::unreleased_away(&memory)?;
        let request = HomeRequest::Wasi {
            tid,
            name: name.to_string(),
            args,
            unreleased,
            output: self.take_output(),
        };
        match crate::process::without_slot(caller, |_| self.call(&request)) {
            Ok(HomeReply::Wasi { errno, written }) => {
                chain::write_away(&memory, &written)?;
                Ok(errno)
            }
            Ok(HomeReply::ProgramEnded) => Err(wasmtime::Error::new(ProgramEnded)),
            Ok(HomeReply::Refused(why)) => Err(wasmtime::Error::msg(why)),
            Ok(other) => wasmtime::bail!("thread {tid}: {name}: home answered {other:?}"),
            Err(e) => wasmtime::bail!("thread {tid}: {name}: {e}"),
        }
    }

    fn buffer_output(&self, fd: u8, bytes: &[u8]) -> bool {
        RemoteCall::buffer_output(self, fd, bytes)
    }

    /// The program ends at home, after the output the call buffered.
    fn exit(&self, tid: u32, code: i32) -> wasmtime::Error {
        let request = HomeRequest::Exit {
            tid,
            code,
            output: self.take_output(),
        };
        match self.call(&request) {
            Ok(HomeReply::ProgramEnded) => wasmtime::Error::new(ProgramEnded),
            other => wasmtime::Error::msg(format!("exit({code}): home answered {other:?}")),
        }
    }

    fn home_clock(&self, _: &Process, id: u32) -> wasmtime::Result<Option<u64>> {
        match self.call(&HomeRequest::CpuClock { id }) {
            Ok(HomeReply::Nanos(nanos)) => Ok(nanos),
            other => wasmtime::bail!("clock_time_get of clock {id:#x}: home answered {other:?}"),
        }
    }

    fn output_fdstat(&self, _: &Process, fd: u32) -> wasmtime::Result<Result<Vec<u8>, u16>> {
        match self.call(&HomeRequest::FdStat { fd }) {
            Ok(HomeReply::FdStat(answer)) => Ok(answer),
            other => Err(NeedsHome(format!("fd_fdstat_get: home answered {other:?}")).into()),
        }
    }

    /// Those of the snapshot home sent: a worker's process serves many
    /// programs.
    fn merge_regions(
        &self,
        process: &Process,
        parent: &crate::process::ThreadMemory,
    ) -> Vec<weft_snapshot::MergeRegion> {
        let mut memory = parent;
        while let Some(origin) = &memory.origin {
            if origin.parent.origin.is_none() {
                return origin.snapshot.locked().regions.clone();
            }
            memory = &origin.parent;
        }
        process.merge_regions()
    }

    fn first_arena_chunk(
        &self,
        _: &Arc<Process>,
        parent: &Arc<crate::process::ThreadMemory>,
    ) -> wasmtime::Result<(u32, u32)> {
        chain::home_chunk(self, parent).map_err(wasmtime::Error::new)
    }

    fn give_back_arena_chunk(&self, _: &Process, start: u32) {
        let _ = self.call(&HomeRequest::ArenaRelease { start });
    }

    /// Home hands the chunk out of its zone; the thread's memory is made
    /// to reach it (and zeroed where it held data).
    fn arena_grow(&self, caller: &mut Caller<'_, ThreadState>, size: u32) -> wasmtime::Result<u32> {
        let Some(memory) = caller.data().memory.clone() else {
            return Err(NeedsHome("arena-grow without a memory".into()).into());
        };
        let call = |request: &HomeRequest| -> wasmtime::Result<HomeReply> {
            self.call(request)
                .map_err(|e| NeedsHome(format!("arena-grow: {e}")).into())
        };
        match call(&HomeRequest::ArenaGrow { size })? {
            HomeReply::Chunk { start, len, dirty } => {
                match chain::adopt_remote_chunk(&memory, start, len, dirty) {
                    Ok(()) => Ok(start),
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

    /// The arena zone is home's.
    fn arena_lookup(&self, _: &Process, _: u32, addr: u32) -> wasmtime::Result<u32> {
        match self.call(&HomeRequest::ArenaLookup { addr }) {
            Ok(HomeReply::Arena(arena)) => Ok(arena),
            Ok(HomeReply::Refused(why)) => Err(wasmtime::Error::msg(why)),
            other => wasmtime::bail!("arena-lookup: home answered {other:?}"),
        }
    }

    /// The program's merge regions are home's: registered there.
    fn register_merge_region(
        &self,
        _: &Process,
        region: weft_snapshot::MergeRegion,
    ) -> wasmtime::Result<Result<(), u8>> {
        match self.call(&HomeRequest::MergeRegion(region)) {
            Ok(HomeReply::Region(result)) => Ok(result),
            Ok(HomeReply::ProgramEnded) => Err(wasmtime::Error::new(ProgramEnded)),
            Ok(HomeReply::Refused(why)) => Err(wasmtime::Error::msg(why)),
            Ok(other) => wasmtime::bail!("register-merge-region: home answered {other:?}"),
            Err(e) => wasmtime::bail!("register-merge-region: {e}"),
        }
    }

    fn is_cancelled(&self) -> bool {
        RemoteCall::is_cancelled(self)
    }

    fn chain(&self, _: &Process, call: ChainCall) -> Result<ChainAnswer, CallError> {
        crate::home::chain_call(self, call)
    }

    /// A sync call goes home on the call's stream with what the thread
    /// wrote since its last sync point and the output the call buffered;
    /// the answer brings what its acquire takes. The thread's slot here is
    /// free while home may make it wait. A FILE's lock is a home lock
    /// here too: the FILE's buffer is shared memory like any other.
    fn synchronise(
        &self,
        caller: &mut Caller<'_, ThreadState>,
        call: &SyncCall,
    ) -> wasmtime::Result<i64> {
        let state = caller.data();
        let tid = state.tid;
        let Some(memory) = state.memory.clone() else {
            wasmtime::bail!("thread {tid}: {} without a memory", call.name());
        };
        let _span = state.span(call.name(), "sync");
        let released = if call.is_sync_point() {
            chain::release_away(&memory)?
        } else {
            Vec::new()
        };
        // A release the thread needs no answer to goes on at once: an
        // unlock of a normal mutex (unlocking one the thread does not hold
        // is undefined) or a semaphore post. The stream keeps the order,
        // so the next call sees it made.
        let detached = match call {
            SyncCall::Unlock { flags, .. } => {
                LockKind::from_bits(*flags) == LockKind::Mutex(MutexKind::Normal)
            }
            SyncCall::SemPost { .. } => true,
            _ => false,
        };
        let request = HomeRequest::Sync {
            tid,
            call: call.clone(),
            released,
            output: self.take_output(),
            cpu_ns: crate::cpu_clock::thread_cpu_time().saturating_sub(state.cpu_base),
            detached,
        };
        if detached {
            self.send_detached(&request, format!("thread {tid}: {}", call.name()));
            return Ok(0);
        }
        let reply = if call.may_wait() {
            crate::process::without_slot(caller, |_| self.call(&request))
        } else {
            self.call(&request)
        };
        match reply {
            Ok(HomeReply::Synced { value, updates }) => {
                chain::acquire_away(&memory, &updates)?;
                Ok(value)
            }
            Ok(HomeReply::ProgramEnded) => Err(wasmtime::Error::new(ProgramEnded)),
            Ok(HomeReply::Refused(why)) => Err(wasmtime::Error::msg(why)),
            Ok(other) => wasmtime::bail!("thread {tid}: {}: home answered {other:?}", call.name()),
            Err(e) => wasmtime::bail!("thread {tid}: {}: {e}", call.name()),
        }
    }
}
