//! A running guest program: its module, its one shared memory, its WASI
//! state and its threads, and how the program ends.
//!
//! Every thread (the main one included) has a `Store` of its own holding a
//! [`ThreadState`] and an instance of the module. In local mode all of them
//! share the process's `SharedMemory` (instances come from one
//! `InstancePre`); in chain mode a chained thread has a memory of its own,
//! restored from a snapshot of its parent (see `chain/`).

use crate::locks::Locked as _;
use std::cell::UnsafeCell;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use wasmtime::{
    Caller, Engine, Extern, Instance, InstancePre, Linker, Module, SharedMemory, Store,
};
use weft_snapshot::{MergeOp, MergeRegion, Snapshot, WriteLog};

use crate::incremental::MemoryImage;

use crate::calls::CallError;
use crate::calls::CallTable;
use crate::pool::{Job, WorkerPool};
use crate::shared_wasi::SharedWasi;
use crate::slots::Slots;
use crate::start::ConflictPolicy;
use crate::start::StartConfig;
use crate::start::{ThreadError, ThreadMode};
use crate::state::StateHost;
use crate::trace::{self, Span};
use weft_transport::envelope::{ChainAnswer, ChainCall, SyncCall};

mod own_home;

pub use crate::outcome::{
    MAIN_TID, MAX_TID, Outcome, ProgramEnded, TIMEOUT_EXIT_CODE, TRAP_EXIT_CODE, WAIT_SLICE,
};

/// Per-store state: which process and thread a store belongs to, and the
/// linear memory that thread runs on.
#[derive(Debug)]
pub struct ThreadState {
    pub process: Arc<Process>,
    pub tid: u32,
    pub memory: Option<Arc<ThreadMemory>>,
    /// A chained thread's heap arena (the address of its first chunk), 0
    /// for other threads.
    pub arena: u32,
    /// A chained thread holds one of the process's worker slots while it
    /// runs (not while it waits for another thread).
    pub holds_slot: bool,
    /// The thread's home: the process itself, or on a worker the link of
    /// the call the thread runs for (its way home, its output).
    pub(crate) home: Arc<dyn Home>,
    /// Set in an instance that runs a libweft routine at home on the main
    /// memory for a chained thread (`sync-at-home`).
    pub(crate) at_home: Option<Arc<AtHomeBase>>,
    /// Memory and table caps (`--max-memory`).
    limits: wasmtime::StoreLimits,
    /// The OS thread's CPU time when this guest thread began running on it
    /// (pooled OS threads run many guest threads one after another).
    pub(crate) cpu_base: u64,
}

/// An instance that runs a libweft routine at home for a chained thread
/// (`chain/at_home.rs`): the request it serves, which lists what libc
/// wrote in the main memory for a thread it creates.
#[derive(Debug)]
pub(crate) struct AtHomeBase {
    pub(crate) request: u32,
}

/// A thread stopped because the call it runs for was cancelled (its home
/// is gone, or asked).
#[derive(Debug, thiserror::Error)]
#[error("the call this thread runs for was cancelled")]
pub struct Cancelled;

/// A slot given up for a wait, taken back when dropped (after the wait,
/// or as the wait unwinds).
struct SlotGivenUp(Arc<Process>);

impl Drop for SlotGivenUp {
    fn drop(&mut self) {
        self.0.acquire_slot();
    }
}

/// Runs `wait` with the calling thread's slot given up, if it holds one (a
/// thread it waits for may be queued for a slot), and takes it back after.
pub(crate) fn without_slot<R>(
    caller: &mut Caller<'_, ThreadState>,
    wait: impl FnOnce(&mut Caller<'_, ThreadState>) -> R,
) -> R {
    let held = std::mem::take(&mut caller.data_mut().holds_slot);
    let given_up = held.then(|| {
        let process = caller.data().process.clone();
        process.release_slot();
        SlotGivenUp(process)
    });
    let result = wait(caller);
    drop(given_up);
    caller.data_mut().holds_slot = held;
    result
}

impl ThreadState {
    /// At each epoch tick: stop a thread whose call was cancelled, let the
    /// others run on.
    fn on_epoch(&self) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        if self.home().is_cancelled() {
            Err(wasmtime::Error::new(Cancelled))
        } else {
            Ok(wasmtime::UpdateDeadline::Continue(1))
        }
    }

    /// A span of this thread, if the run is traced.
    pub(crate) fn span(&self, name: &'static str, category: &'static str) -> Option<Span> {
        trace::span(self.process.tracer(), name, category, self.tid)
    }

    /// The home of this thread's program, as this thread reaches it.
    pub(crate) fn home(&self) -> &dyn Home {
        &*self.home
    }

    /// The same, held apart from the store (for a call that needs the
    /// caller too).
    pub(crate) fn home_handle(&self) -> Arc<dyn Home> {
        self.home.clone()
    }
}

/// What only a program's home host has, as one of its threads reaches it:
/// ids and the count of live threads, and what a failed thread ends. The
/// process is the home of its own threads; a thread running on a worker
/// reaches its home through its call's link (`remote.rs` implements this
/// for `RemoteCall`). The runtime calls it and never asks which it is.
pub(crate) trait Home: Send + Sync + std::fmt::Debug {
    /// An id for a new thread, counted live at home and on `process`.
    fn new_thread(&self, process: &Process) -> Result<u32, ThreadError>;
    /// A thread counted by `new_thread` could not start.
    fn not_started(&self, process: &Process, tid: u32);
    /// Thread `tid` called `exit(code)` (`Ok`) or trapped (`Err`).
    fn thread_failed(&self, process: &Process, tid: u32, end: Result<i32, wasmtime::Error>);
    /// What chained thread `tid` ending so ends: the program at home; on a
    /// worker, the call (home then runs its thread again).
    fn chained_thread_failed(&self, process: &Process, tid: u32, end: Result<i32, wasmtime::Error>);
    /// Something the runtime cannot make correct: at home the program
    /// ends with `code` and `why`; on a worker the call fails (home runs
    /// its thread again and decides, with its own policy).
    fn refuse(&self, process: &Process, code: i32, why: String);
    /// Whether conflicting writes found here are this host's to report
    /// under the program's policy (home), or fail the call (a worker).
    fn decides_conflicts(&self) -> bool;
    /// A chained thread of the program starts on this host (home counts
    /// where its threads ran).
    fn chained_thread_runs(&self, process: &Process);
    /// Chained thread `tid` is about to run its exit path, which may wake
    /// its joiner.
    fn chained_thread_exiting(&self, tid: u32);
    /// CPU time a thread of this home used here.
    fn add_cpu(&self, nanos: u64);
    /// A thread that counts as running for its home until the returned
    /// guard goes (a call on a worker waits for the threads it started).
    fn running_thread(self: Arc<Self>) -> Option<crate::home::CallThread>;
    /// The state tier a thread of this home uses: the process's own at
    /// home; on a worker, the call's local tier over its home's global one.
    fn state<'a>(&'a self, process: &'a Process) -> &'a StateHost;
    /// A plain WASI call of the thread calling from `caller` (files,
    /// descriptors, polls): made where the program's descriptors are, on
    /// the thread's memory at home, or at home on a copy of it for a
    /// thread away (what the call writes comes back).
    fn wasi_call(
        &self,
        caller: &mut Caller<'_, ThreadState>,
        name: &str,
        args: Vec<i64>,
    ) -> wasmtime::Result<i32>;
    /// Keeps `bytes` written to stdout (1) or stderr (2) until the
    /// thread's next call home: whether it did (home writes through its
    /// WASI context, and output past the buffer takes a WASI call too).
    fn buffer_output(&self, fd: u8, bytes: &[u8]) -> bool;
    /// Thread `tid` calls `exit(code)`: what stops it, once the program
    /// has ended.
    fn exit(&self, tid: u32, code: i32) -> wasmtime::Error;
    /// A CPU clock only home reads (the process's, or another thread's):
    /// `None` for one it does not have.
    fn home_clock(&self, process: &Process, id: u32) -> wasmtime::Result<Option<u64>>;
    /// `fd_fdstat_get` of the program's stdout or stderr, as the record's
    /// bytes or the errno (libc's first write asks it).
    fn output_fdstat(&self, process: &Process, fd: u32) -> wasmtime::Result<Result<Vec<u8>, u16>>;
    /// The merge regions a child of `parent` merges with.
    fn merge_regions(&self, process: &Process, parent: &ThreadMemory) -> Vec<MergeRegion>;
    /// The first chunk of the heap arena of a new chained thread of
    /// `process` that starts from `parent` (zeroed there when reused).
    fn first_arena_chunk(
        &self,
        process: &Arc<Process>,
        parent: &Arc<ThreadMemory>,
    ) -> wasmtime::Result<(u32, u32)>;
    /// The same chunk back, when its thread could not start.
    fn give_back_arena_chunk(&self, process: &Process, start: u32);
    /// A new chunk of the calling chained thread's heap arena, at least
    /// `size` bytes: its start, or 0 when there is no room (the guest's
    /// `malloc` fails).
    fn arena_grow(&self, caller: &mut Caller<'_, ThreadState>, size: u32) -> wasmtime::Result<u32>;
    /// The arena heap address `addr` belongs to, 0 for libc's heap; a
    /// block of a chunk already given back is refused (thread `tid` frees
    /// it).
    fn arena_lookup(&self, process: &Process, tid: u32, addr: u32) -> wasmtime::Result<u32>;
    /// Registers a merge region of the program: its result as the guest
    /// reads it (an error's code).
    fn register_merge_region(
        &self,
        process: &Process,
        region: MergeRegion,
    ) -> wasmtime::Result<Result<(), u8>>;
    /// Whether the thread's work was called off (it stops at its next
    /// epoch check).
    fn is_cancelled(&self) -> bool;
    /// A `weft:chain` operation of the thread (its function's input and
    /// output, the calls it makes), answered at once: an await answers
    /// `None` while its call runs.
    fn chain(&self, process: &Process, call: ChainCall) -> Result<ChainAnswer, CallError>;
    /// The same for an await that waits for its answer (by polling,
    /// unless the home can wait itself).
    fn chain_wait(&self, process: &Process, call: ChainCall) -> Result<ChainAnswer, CallError> {
        crate::home::poll(|| match self.chain(process, call.clone())? {
            ChainAnswer::Code(None) | ChainAnswer::Codes(None) => Ok(None),
            done => Ok(Some(done)),
        })
    }
    /// A synchronisation call of the thread calling from `caller` (chain
    /// mode): its result, or the trap that stops the thread.
    fn synchronise(
        &self,
        caller: &mut Caller<'_, ThreadState>,
        call: &SyncCall,
    ) -> wasmtime::Result<i64>;
}

/// Chain mode as a process holds it: how a new thread starts as a chained
/// call from a snapshot of its creator (`chain/` implements it). It is
/// built before the process, which only keeps it.
pub(crate) trait Chaining: std::any::Any + Send + Sync + std::fmt::Debug {
    /// Starts thread `tid` (`wasi_thread_start(tid, start_arg)`) for the
    /// thread calling from `caller`, whose memory is `memory`.
    fn spawn(
        &self,
        process: &Arc<Process>,
        caller: &mut Caller<'_, ThreadState>,
        memory: Arc<ThreadMemory>,
        tid: u32,
        start_arg: u32,
    ) -> Result<(), ThreadError>;
    /// Bytes of the warm memories kept for reuse.
    fn pooled_bytes(&self) -> u64;
    /// Lets the warm memories go.
    fn drop_pooled(&self);
    /// The program has ended: waits at home end at once.
    fn program_ended(&self);
    /// The first chunk of the heap arena of a thread `process` starts from
    /// `parent` (a reused chunk is zeroed in the parent's memory).
    fn first_arena_chunk(
        &self,
        process: &Arc<Process>,
        parent: &Arc<ThreadMemory>,
    ) -> wasmtime::Result<(u32, u32)>;
    /// A first chunk whose thread could not start goes back to the zone.
    fn give_back_arena_chunk(&self, start: u32);
    /// A new chunk of the calling thread's arena (0: no room).
    fn arena_grow(&self, caller: &mut Caller<'_, ThreadState>, size: u32) -> u32;
    /// The arena `addr` belongs to, a freed chunk's block refused.
    fn arena_lookup(&self, process: &Process, tid: u32, addr: u32) -> wasmtime::Result<u32>;
    /// A sync call of a chained thread on this host.
    fn synchronise(
        &self,
        caller: &mut Caller<'_, ThreadState>,
        call: &SyncCall,
    ) -> wasmtime::Result<i64>;
}

/// A shared linear memory some threads run on, with the log of merges
/// into it; its lock orders snapshots of the memory against merges.
#[derive(Debug)]
pub struct ThreadMemory {
    pub memory: SharedMemory,
    pub(crate) merges: Mutex<Merges>,
    /// Where a chained thread's memory came from; `None` for the main one.
    pub(crate) origin: Option<Origin>,
    /// Chain mode: the running image snapshots of this memory are cut from.
    pub(crate) image: Mutex<Option<MemoryImage>>,
    /// A chained thread's memory: the tracker of its writes, when the
    /// kernel tracks them (its sync points compare only written pages).
    pub(crate) writes: OnceLock<Arc<crate::touched::WriteTracker>>,
    /// A chained thread's memory restored lazily: what fills its untouched
    /// pages, kept while anything may still touch the memory (a merge of
    /// a thread it started may come after its own thread ended).
    pub(crate) lazy_fill: OnceLock<Arc<crate::touched::LazyFill>>,
    /// Instances on this memory whose threads ended, for the next thread
    /// (instantiating costs more than a thread's start).
    idle_instances: Mutex<Vec<(Store<ThreadState>, Instance)>>,
}

/// Idle instances kept per memory.
const IDLE_INSTANCES: usize = 8;

/// How long every thread of a local-mode program must have waited for
/// good, with no wait woken, before the program is reported deadlocked:
/// a woken thread that has not run yet is back well within it.
const DEADLOCK_CONFIRM: std::time::Duration = std::time::Duration::from_secs(2);

/// What merges into a memory have written, and whether it still takes
/// merges (a chained thread's memory closes once its own diff is taken).
#[derive(Debug, Default)]
pub(crate) struct Merges {
    pub(crate) log: WriteLog,
    pub(crate) closed: bool,
}

/// The memory a chained thread's memory was copied from, and the snapshot
/// it was restored from (the baseline of its diff).
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) parent: Arc<ThreadMemory>,
    pub(crate) snapshot: Arc<Mutex<Snapshot>>,
    /// The parent's merge sequence number up to which the snapshot holds
    /// the parent's changes (at the spawn, then at each sync point).
    pub(crate) since: Arc<std::sync::atomic::AtomicU32>,
    /// The published image's sequence number when this thread last
    /// acquired (`u64::MAX` before its first acquire): while they are
    /// equal, an acquire would bring nothing.
    pub(crate) published_seen: std::sync::atomic::AtomicU64,
    /// When the thread last synchronised (or started).
    pub(crate) last_sync: Mutex<std::time::Instant>,
    /// Whether it was warned of running long without synchronising.
    pub(crate) stall_warned: std::sync::atomic::AtomicBool,
}

impl ThreadMemory {
    pub fn new(memory: SharedMemory) -> Arc<Self> {
        Self::with_origin(memory, None)
    }

    pub(crate) fn with_origin(memory: SharedMemory, origin: Option<Origin>) -> Arc<Self> {
        Arc::new(Self {
            memory,
            merges: Mutex::new(Merges::default()),
            origin,
            image: Mutex::new(None),
            writes: OnceLock::new(),
            lazy_fill: OnceLock::new(),
            idle_instances: Mutex::new(Vec::new()),
        })
    }
}

/// Settings of one process.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    pub mode: ThreadMode,
    /// Threads (besides the main one) that may be live at once.
    pub max_threads: u32,
    pub on_conflict: ConflictPolicy,
    /// Chain mode: chained threads that run at once.
    pub slots: usize,
}

/// The module as linked for this process.
pub(crate) struct Linking {
    pub(crate) module: Module,
    /// The linker without the memory import, for instances on other
    /// memories (shared by every process of the program).
    pub(crate) linker: Arc<Linker<ThreadState>>,
    /// Instances on the process's own memory.
    pub(crate) pre: InstancePre<ThreadState>,
    /// Module and name of the memory import.
    pub(crate) memory_import: Option<(String, String)>,
}

/// How one thread's wasm call ended.
#[derive(Debug)]
pub enum ThreadEnd {
    /// Returned normally, or ended itself through `pthread_exit`.
    Finished,
    /// A chained thread finished with this result (`weft:threads` `finish`).
    Result(u32),
    /// Called `proc_exit(code)`: the whole program ends with `code`.
    Exit(i32),
    /// Trapped (or failed to start): the whole program ends with code 134.
    Trap(wasmtime::Error),
}

impl ThreadEnd {
    pub fn classify(result: wasmtime::Result<()>) -> Self {
        match result {
            Ok(()) => Self::Finished,
            Err(e) => {
                if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    Self::Exit(exit.0)
                } else if e.downcast_ref::<ThreadExited>().is_some() {
                    Self::Finished
                } else if let Some(ChainFinished(value)) = e.downcast_ref::<ChainFinished>() {
                    Self::Result(*value)
                } else {
                    Self::Trap(e)
                }
            }
        }
    }
}

/// The error a thread's instance unwinds with when the thread ends itself
/// (`pthread_exit`); it is a normal end, not a trap.
#[derive(Debug, thiserror::Error)]
#[error("thread exited")]
pub struct ThreadExited;

/// The error a chained thread's instance unwinds with when its start routine
/// has produced its result.
#[derive(Debug, thiserror::Error)]
#[error("chained thread finished with {0:#x}")]
pub struct ChainFinished(pub u32);

pub struct Process {
    engine: Engine,
    /// Set once by `Program::start`, before any thread runs.
    linking: OnceLock<Linking>,
    memory: Option<Arc<ThreadMemory>>,
    /// Chain mode's thread start and state; `None` in local mode.
    chain: Option<Box<dyn Chaining>>,
    wasi: SharedWasi,
    config: ProcessConfig,
    next_tid: AtomicU32,
    live_threads: AtomicU32,
    main_finished: AtomicBool,
    /// Signalled when the last spawned thread ends after `main` exited
    /// through `pthread_exit`.
    idle: (Mutex<()>, Condvar),
    pool: WorkerPool,
    slots: Slots,
    /// This process's number within the host (lock owners are per thread
    /// of a process).
    serial: u64,
    state: Arc<StateHost>,
    /// What the process was started with: its function input and output,
    /// the functions it may call, and the settings its calls inherit.
    start: StartConfig,
    calls: Arc<CallTable>,
    /// Merge regions the guest registered, sorted by address.
    merge_regions: Mutex<Vec<MergeRegion>>,
    /// Stores stop a cancelled thread at its next host call: a worker may
    /// run guest code without epoch checks (`WorkerEngines::fast`).
    stops_at_host_calls: AtomicBool,
    /// CPU time this program's threads used on other hosts, nanoseconds.
    cpu_elsewhere: AtomicU64,
    /// The CPU clocks of the threads running here.
    clocks: crate::cpu_clock::ThreadClocks,
    /// Set once the program has ended: its threads stop at their next
    /// wait, host call or epoch check.
    ending: AtomicBool,
    /// How it ended, until `run_main` returns it.
    outcome: Mutex<Option<Outcome>>,
    /// Threads blocked in an atomic wait (`waits.rs`), woken at the end.
    waiters: Mutex<Waiters>,
    /// Dropped with the process, after its last store: a pooled memory's
    /// way back to its pool (`memory_pool.rs`).
    held: OnceLock<Box<dyn Send + Sync>>,
    /// The program's data symbols, for reports that name an address.
    data_names: OnceLock<DataNames>,
}

/// The data symbols of a program, parsed when a report first needs them
/// (a process that never reports never pays for it).
pub(crate) struct DataNames {
    pub(crate) symbols: Arc<OnceLock<crate::symbols::DataSymbols>>,
    pub(crate) wasm: Arc<[u8]>,
}

impl DataNames {
    /// `name` or `name+offset` of the symbol holding `addr`.
    fn describe(&self, addr: u32) -> Option<String> {
        self.symbols
            .get_or_init(|| crate::symbols::DataSymbols::parse(&self.wasm))
            .describe(addr)
    }
}

/// The program's threads blocked in atomic waits: the memory and address
/// each waits on, by a number of its own.
#[derive(Default)]
struct Waiters {
    next: u64,
    blocked: std::collections::HashMap<u64, BlockedAt>,
    /// Of those, the waits with no time limit.
    forever: u32,
    /// Bumped whenever a wait ends woken or finds its value changed: local
    /// mode's deadlock detector sees from it that nothing moved.
    changes: u64,
    /// Since when every thread waits for good, and `changes` then.
    all_waiting: Option<(u64, std::time::Instant)>,
}

/// Where a thread waits.
#[derive(Clone)]
struct BlockedAt {
    memory: SharedMemory,
    addr: u64,
    tid: u32,
    forever: bool,
    /// When a slice of the wait last ran out: a thread woken but not yet
    /// run has none after it was woken.
    slice_ended: Option<std::time::Instant>,
}

/// A thread counted among the blocked ones while this lives.
pub(crate) struct BlockedWait<'a> {
    process: &'a Process,
    id: u64,
}

impl Drop for Process {
    fn drop(&mut self) {
        // Threads stopped by the program's end never say so one by one.
        crate::metrics::threads_gone(u64::from(self.live_threads.load(Ordering::SeqCst)));
    }
}

impl BlockedWait<'_> {
    /// A slice of the wait ran out and the thread waits on.
    pub(crate) fn slice_ended(&self) {
        if let Some(at) = self.process.waiters.locked().blocked.get_mut(&self.id) {
            at.slice_ended = Some(std::time::Instant::now());
        }
    }
}

impl Drop for BlockedWait<'_> {
    fn drop(&mut self) {
        let mut waiters = self.process.waiters.locked();
        if let Some(gone) = waiters.blocked.remove(&self.id) {
            waiters.forever -= u32::from(gone.forever);
        }
    }
}

/// Why a merge region was refused; the discriminants are those of the WIT
/// `region-error` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum RegionError {
    #[error("empty region")]
    Empty = 0,
    #[error("region overlaps one registered before")]
    Overlaps = 1,
    #[error("region lies outside the memory")]
    OutOfBounds = 2,
    #[error("typed region is not whole, aligned elements")]
    Misaligned = 3,
}

impl RegionError {
    /// The error with WIT discriminant `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        [
            Self::Empty,
            Self::Overlaps,
            Self::OutOfBounds,
            Self::Misaligned,
        ]
        .into_iter()
        .find(|e| *e as u8 == code)
    }
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("config", &self.config)
            .field("live_threads", &self.live_threads)
            .finish_non_exhaustive()
    }
}

impl Process {
    pub(crate) fn new(
        engine: Engine,
        memory: Option<SharedMemory>,
        wasi: SharedWasi,
        config: ProcessConfig,
        state: Arc<StateHost>,
        start: StartConfig,
        chain: Option<Box<dyn Chaining>>,
    ) -> Arc<Self> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        Arc::new(Self {
            calls: Arc::default(),
            start,
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            state,
            engine,
            linking: OnceLock::new(),
            memory: memory.map(ThreadMemory::new),
            chain,
            wasi,
            next_tid: AtomicU32::new(0),
            live_threads: AtomicU32::new(0),
            main_finished: AtomicBool::new(false),
            idle: (Mutex::new(()), Condvar::new()),
            pool: WorkerPool::default(),
            slots: Slots::new(config.slots),
            config,
            merge_regions: Mutex::new(Vec::new()),
            stops_at_host_calls: AtomicBool::new(false),
            cpu_elsewhere: AtomicU64::new(0),
            clocks: Default::default(),
            ending: AtomicBool::new(false),
            outcome: Mutex::new(None),
            waiters: Mutex::default(),
            held: OnceLock::new(),
            data_names: OnceLock::new(),
        })
    }

    /// Where reports find the names of the program's data.
    pub(crate) fn name_data_with(&self, names: DataNames) {
        let _ = self.data_names.set(names);
    }

    /// Keeps `held` until the process is dropped (once per process).
    pub(crate) fn hold_until_dropped(&self, held: Box<dyn Send + Sync>) {
        if self.held.set(held).is_err() {
            tracing::warn!("a process was given two things to hold");
        }
    }

    /// Counts thread `tid` as blocked at `addr` of `memory` (`forever`:
    /// with no time limit) until the guard drops; the program's end wakes
    /// it there.
    pub(crate) fn blocked_wait(
        &self,
        memory: &SharedMemory,
        addr: u64,
        tid: u32,
        forever: bool,
    ) -> BlockedWait<'_> {
        let mut waiters = self.waiters.locked();
        let id = waiters.next;
        waiters.next += 1;
        waiters.forever += u32::from(forever);
        let at = BlockedAt {
            memory: memory.clone(),
            addr,
            tid,
            forever,
            slice_ended: None,
        };
        waiters.blocked.insert(id, at);
        BlockedWait { process: self, id }
    }

    /// A wait of the program ended woken, or found its value changed: the
    /// program moved.
    pub(crate) fn wait_went_on(&self) {
        self.waiters.locked().changes += 1;
    }

    /// Local mode's deadlock detector, asked by a thread in an atomic wait
    /// with no time limit at each of its slices: the report of a deadlock
    /// when every thread of the program has waited so for
    /// [`DEADLOCK_CONFIRM`], no wait ended woken meanwhile, and every such
    /// wait has seen a slice run out since then, so that a thread woken
    /// but not yet run (a process stopped or starved for a while) is never
    /// taken for a waiting one. A program whose main thread called
    /// `pthread_exit` is not watched (main counts as running).
    /// Nothing else can wake such a wait: the host notifies a guest's
    /// address only at the program's end, libweft's cancellation points
    /// wait in slices it marks as waits for good (`wait-slice`), and a
    /// program that uses signals waits in plain slices, which count as
    /// timed (its alarm timer is its own). Chain mode's waits are home's,
    /// which has a detector of its own.
    pub(crate) fn deadlocked_waits(&self) -> Option<String> {
        if self.config.mode != ThreadMode::Local {
            return None;
        }
        let mut waiters = self.waiters.locked();
        if waiters.forever < self.running_threads() {
            waiters.all_waiting = None;
            return None;
        }
        let changes = waiters.changes;
        match waiters.all_waiting {
            Some((seen, since)) if seen == changes => {
                let every_slice_ran_out = waiters
                    .blocked
                    .values()
                    .filter(|w| w.forever)
                    .all(|w| w.slice_ended.is_some_and(|at| at > since));
                if since.elapsed() < DEADLOCK_CONFIRM || !every_slice_ran_out {
                    return None;
                }
            }
            _ => {
                waiters.all_waiting = Some((changes, std::time::Instant::now()));
                return None;
            }
        }
        let mut waits: Vec<_> = waiters.blocked.values().filter(|w| w.forever).collect();
        waits.sort_by_key(|w| (w.tid != MAIN_TID, w.tid));
        let waits: Vec<_> = waits
            .iter()
            .map(|w| {
                let who = if w.tid == MAIN_TID {
                    "the main thread".to_string()
                } else {
                    format!("thread {}", w.tid)
                };
                let name = u32::try_from(w.addr)
                    .ok()
                    .and_then(|addr| self.data_names.get()?.describe(addr));
                match name {
                    Some(name) => format!("{who} waits at {:#x} (`{name}`)", w.addr),
                    None => format!("{who} waits at {:#x}", w.addr),
                }
            })
            .collect();
        Some(
            crate::sync::SyncError::Deadlock(format!(
                "{}, each in an atomic wait with no time limit",
                waits.join(", ")
            ))
            .to_string(),
        )
    }

    /// Ends the program with `outcome`, unless it has ended already (the
    /// first end wins, so a program has one outcome and one message): the
    /// outcome is reported on stderr, the configured hook runs, and every
    /// thread of the program stops: a blocked one is woken (`waits.rs`;
    /// home's sync waits and slot queue close), a running one stops at its
    /// next wait, host call or epoch check. It
    /// returns; the caller's thread unwinds on its own.
    pub fn end(&self, outcome: Outcome) {
        if self.ending.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = std::io::stdout().flush();
        {
            // Printing may fail (stderr closed): never panic here.
            let mut err = std::io::stderr().lock();
            outcome.report(&mut err);
            let _ = err.flush();
        }
        tracing::debug!(?outcome, "program ended");
        // Recorded before the hook runs, and held while it runs: a thread
        // that sees the end meanwhile (the main thread returning from
        // `run_main`) takes this outcome, not a plain exit.
        let mut recorded = self.outcome.locked();
        let outcome = recorded.insert(outcome);
        if let Some(hook) = &self.start.on_end {
            (hook.0)(outcome);
        }
        drop(recorded);
        self.slots.close();
        if let Some(chain) = &self.chain {
            chain.program_ended();
        }
        let blocked: Vec<_> = self.waiters.locked().blocked.values().cloned().collect();
        for at in blocked {
            // In bounds and aligned: the thread waits there.
            let _ = at.memory.atomic_notify(at.addr, u32::MAX);
        }
        let (lock, cvar) = &self.idle;
        let _guard = lock.locked();
        cvar.notify_all();
    }

    /// Whether the program has ended (its threads are being stopped).
    pub fn is_ending(&self) -> bool {
        self.ending.load(Ordering::Relaxed)
    }

    /// Ends the program with [`Outcome::TimeLimit`] once `limit` has
    /// passed, whatever its threads are doing, unless it ended before or
    /// the returned guard was dropped. One thread watches every process's
    /// limit (`deadlines.rs`): a thread per call cost a call more than
    /// running a small function.
    pub fn limit_time(
        self: &Arc<Self>,
        limit: std::time::Duration,
    ) -> std::io::Result<crate::deadlines::Deadline> {
        let process = Arc::downgrade(self);
        crate::deadlines::after(
            limit,
            Box::new(move || {
                if let Some(process) = process.upgrade() {
                    process.end(Outcome::TimeLimit(limit));
                }
            }),
        )
    }

    /// Counts CPU time a thread of this program used on another host.
    pub(crate) fn add_cpu_elsewhere(&self, nanos: u64) {
        self.cpu_elsewhere.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The CPU clocks of the threads running here.
    pub(crate) fn clocks(&self) -> &crate::cpu_clock::ThreadClocks {
        &self.clocks
    }

    pub(crate) fn cpu_elsewhere(&self) -> u64 {
        self.cpu_elsewhere.load(Ordering::Relaxed)
    }

    pub(crate) fn stop_at_host_calls(&self) {
        self.stops_at_host_calls.store(true, Ordering::Relaxed);
    }

    pub(crate) fn start_config(&self) -> &StartConfig {
        &self.start
    }

    /// The processors the program is told it has (parallelism.rs).
    pub(crate) fn processors(&self) -> usize {
        let peers = self.start.placer.as_ref().map_or(0, |p| p.peer_slots());
        crate::parallelism::processors(
            self.config.mode,
            crate::parallelism::host_cores(),
            self.config.slots,
            peers,
        )
    }

    pub(crate) fn calls(&self) -> &Arc<CallTable> {
        &self.calls
    }

    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// The host's shared state (`weft:state`).
    pub fn state(&self) -> &StateHost {
        &self.state
    }

    pub fn mode(&self) -> ThreadMode {
        self.config.mode
    }

    /// The main thread's memory, with its merge log.
    pub(crate) fn main_memory(&self) -> Option<&Arc<ThreadMemory>> {
        self.memory.as_ref()
    }

    /// The process's own memory (the main thread's).
    pub fn shared_memory(&self) -> Option<&SharedMemory> {
        self.memory.as_ref().map(|m| &m.memory)
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn config(&self) -> &ProcessConfig {
        &self.config
    }

    /// Starts chained thread `job` on a pool thread when it gets a slot
    /// (now, or when a slot frees up).
    pub(crate) fn start_with_slot(&self, job: Job) -> std::io::Result<()> {
        match self.slots.start(job) {
            Some(job) => self.pool.execute(job),
            None => Ok(()),
        }
    }

    /// Takes a slot if one is free (the caller then runs a thread with it).
    pub(crate) fn try_take_slot(&self) -> bool {
        self.slots.try_take()
    }

    /// Runs `job` on a pool thread, holding no slot.
    pub(crate) fn execute(&self, job: Job) -> std::io::Result<()> {
        self.pool.execute(job)
    }

    /// The calling thread gives its slot up (it ended, or waits for
    /// another thread); a queued thread may start with it.
    pub(crate) fn release_slot(&self) {
        if let Some(job) = self.slots.release()
            && let Err(e) = self.pool.execute(job)
        {
            self.end(Outcome::Refused {
                code: TRAP_EXIT_CODE,
                message: format!("no OS thread for a queued chained thread: {e}"),
            });
        }
    }

    /// Blocks until the calling thread holds a slot again.
    pub(crate) fn acquire_slot(&self) {
        self.slots.acquire();
    }

    /// Gives the calling thread's slot to a queued thread (maybe the one it
    /// waits for) and takes one back: how a thread spinning on a flag lets
    /// others run.
    pub(crate) fn yield_slot(&self) {
        self.release_slot();
        self.acquire_slot();
    }

    /// Where the run's spans go, if it is traced.
    pub(crate) fn tracer(&self) -> Option<&Arc<crate::trace::Tracer>> {
        self.start.trace.as_ref()
    }

    /// Bytes of the warm memories chain mode keeps for reuse.
    pub fn pooled_memory_bytes(&self) -> u64 {
        self.chain.as_ref().map_or(0, |chain| chain.pooled_bytes())
    }

    /// Lets chain mode's warm memories go (a worker over its budget).
    pub fn drop_pooled_memories(&self) {
        if let Some(chain) = &self.chain {
            chain.drop_pooled();
        }
    }

    /// Chain mode's part of the process (`None` in local mode).
    pub(crate) fn chaining(&self) -> Option<&dyn Chaining> {
        self.chain.as_deref()
    }

    /// Registers a merge region (see `wit/threads.wit`).
    pub fn register_merge_region(&self, region: MergeRegion) -> Result<(), RegionError> {
        if region.len == 0 {
            return Err(RegionError::Empty);
        }
        let memory_len = self.shared_memory().map_or(0, |m| m.data().len() as u64);
        if region.end() > memory_len {
            return Err(RegionError::OutOfBounds);
        }
        if !matches!(region.op, MergeOp::Bytewise | MergeOp::Ignore) {
            let size = region.ty.size();
            if !region.addr.is_multiple_of(size) || !region.len.is_multiple_of(size) {
                return Err(RegionError::Misaligned);
            }
        }
        let mut regions = self.merge_regions.locked();
        let at = regions.partition_point(|r| r.addr < region.addr);
        let overlaps_previous = at > 0 && regions[at - 1].end() > region.addr as u64;
        let overlaps_next = regions
            .get(at)
            .is_some_and(|r| (r.addr as u64) < region.end());
        if overlaps_previous || overlaps_next {
            return Err(RegionError::Overlaps);
        }
        regions.insert(at, region);
        Ok(())
    }

    /// The merge regions registered so far, sorted by address.
    pub fn merge_regions(&self) -> Vec<MergeRegion> {
        self.merge_regions.locked().clone()
    }

    pub(crate) fn wasi(&self) -> &SharedWasi {
        &self.wasi
    }

    pub(crate) fn set_linking(&self, linking: Linking) {
        assert!(self.linking.set(linking).is_ok(), "linking set twice");
    }

    /// Instantiates the module for a thread running on `memory`.
    pub(crate) fn instantiate(
        &self,
        store: &mut Store<ThreadState>,
        memory: Option<&Arc<ThreadMemory>>,
    ) -> wasmtime::Result<Instance> {
        let Some(linking) = self.linking.get() else {
            wasmtime::bail!("process has no linked module");
        };
        let own = match (memory, &self.memory) {
            (Some(m), Some(main)) => Arc::ptr_eq(m, main),
            (None, _) => true,
            (Some(_), None) => false,
        };
        if own {
            return linking.pre.instantiate(store);
        }
        let (Some(memory), Some((module, name))) = (memory, &linking.memory_import) else {
            wasmtime::bail!("module imports no memory to run a thread on");
        };
        let mut linker = (*linking.linker).clone();
        linker.define(&*store, module, name, memory.memory.clone())?;
        linker.instantiate(store, &linking.module)
    }

    /// Every function this process's linker defines, with its core type:
    /// what a guest may import (for the test that WIT and the ABI agree).
    pub fn import_types(self: &Arc<Self>) -> Vec<(String, String, wasmtime::FuncType)> {
        let Some(linking) = self.linking.get() else {
            return Vec::new();
        };
        let mut store = self.new_store(MAIN_TID, None);
        let defined: Vec<_> = linking
            .linker
            .iter(&mut store)
            .filter_map(|(module, name, item)| {
                Some((module.to_string(), name.to_string(), item.into_func()?))
            })
            .collect();
        defined
            .into_iter()
            .map(|(module, name, func)| (module, name, func.ty(&store)))
            .collect()
    }

    pub(crate) fn new_store(
        self: &Arc<Self>,
        tid: u32,
        memory: Option<Arc<ThreadMemory>>,
    ) -> Store<ThreadState> {
        let mut store = Store::new(
            &self.engine,
            ThreadState {
                process: self.clone(),
                tid,
                memory,
                arena: 0,
                holds_slot: false,
                home: self.clone(),
                at_home: None,
                limits: store_limits(self.start.max_memory),
                // Set where a guest thread starts running on an OS thread.
                cpu_base: 0,
            },
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store| store.data().on_epoch());
        if self.stops_at_host_calls.load(Ordering::Relaxed) {
            store.call_hook(|store, hook| match hook {
                wasmtime::CallHook::CallingHost if store.data().home().is_cancelled() => {
                    Err(wasmtime::Error::new(Cancelled))
                }
                _ => Ok(()),
            });
        }
        store
    }

    /// Runs the program's `_start` and returns how the whole program
    /// ended: main's own end, or the first end another thread brought (a
    /// trap, `exit`, a conflict). Threads still running then stop at their
    /// next wait or epoch check; the OS process is the caller's. Main runs
    /// on the calling thread when it has room for the guest's stack, else
    /// on a thread made for it (`wasm_stack`).
    pub fn run_main(self: &Arc<Self>) -> Outcome {
        match crate::wasm_stack::with_room(|| self.run_main_here()) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.end(Outcome::Refused {
                    code: 1,
                    message: format!("starting a thread for the main thread's stack: {e}"),
                });
                self.pool.close();
                self.outcome.locked().take().unwrap_or(Outcome::Exit(1))
            }
        }
    }

    fn run_main_here(self: &Arc<Self>) -> Outcome {
        let mut store = self.new_store(MAIN_TID, self.memory.clone());
        let _clock = self.clocks.enter(MAIN_TID, 0);
        let span = trace::span(self.tracer(), "main", "thread", MAIN_TID);
        let _deadline = match self.start.time_limit.map(|limit| self.limit_time(limit)) {
            Some(Err(e)) => {
                self.end(Outcome::Refused {
                    code: 1,
                    message: format!("starting the time limit's thread: {e}"),
                });
                None
            }
            Some(Ok(deadline)) => Some(deadline),
            None => None,
        };
        let mut main_instance = None;
        let result = (|| {
            let instance = self.instantiate(&mut store, None)?;
            main_instance = Some(instance);
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call(&mut store, ())
        })();
        drop(span);
        let ended_itself = matches!(&result, Err(e) if e.downcast_ref::<ThreadExited>().is_some());
        match ThreadEnd::classify(result) {
            ThreadEnd::Finished if ended_itself => {
                // `pthread_exit` in main: the program lives on until its last
                // thread ends (libc then calls `exit(0)` itself).
                self.main_finished.store(true, Ordering::SeqCst);
                let (lock, cvar) = &self.idle;
                let mut guard = lock.locked();
                while self.live_threads.load(Ordering::SeqCst) > 0 && !self.is_ending() {
                    guard = crate::locks::wait(cvar, guard);
                }
                drop(guard);
                self.end(Outcome::Exit(0));
            }
            ThreadEnd::Finished | ThreadEnd::Result(_) => self.end(Outcome::Exit(0)),
            ThreadEnd::Exit(code) => self.end(Outcome::Exit(code)),
            ThreadEnd::Trap(error) => {
                let overflow = main_instance
                    .filter(|_| {
                        error.downcast_ref::<wasmtime::Trap>()
                            == Some(&wasmtime::Trap::MemoryOutOfBounds)
                    })
                    .and_then(|instance| {
                        let len = self.memory.as_ref().map(|m| m.memory.data_size())?;
                        crate::stack_check::main_overflow(&mut store, &instance, len as u64)
                    });
                // The overflow is the cause the report names first; the
                // trap and its wasm backtrace follow it.
                let error = match overflow {
                    Some(overflow) => wasmtime::Error::new(overflow).context(format!("{error:?}")),
                    None => error,
                };
                self.end(Outcome::trap(MAIN_TID, error))
            }
        }
        // What the program kept for later threads goes: its idle instances
        // and warm memories (their stores refer back to the process) and its
        // idle OS threads.
        if let Some(memory) = &self.memory {
            memory.idle_instances.locked().clear();
        }
        self.drop_pooled_memories();
        self.pool.close();
        self.outcome.locked().take().unwrap_or(Outcome::Exit(0))
    }

    /// Starts a new thread running `wasi_thread_start(tid, start_arg)` for
    /// the thread calling from `caller`, and returns its id. In chain mode
    /// the new thread is a chained call restored from a snapshot of the
    /// caller.
    pub fn spawn(
        self: &Arc<Self>,
        caller: &mut Caller<'_, ThreadState>,
        start_arg: i32,
    ) -> Result<u32, ThreadError> {
        let Some(memory) = caller.data().memory.clone() else {
            return Err(ThreadError::NotSupported);
        };
        let tid = caller.data().home().new_thread(self)?;
        let started = match &self.chain {
            None => {
                let process = self.clone();
                let home = caller.data().home_handle();
                let job = Box::new(move || process.run_thread(tid, start_arg, memory, home));
                self.pool.execute(job).map_err(|e| {
                    tracing::warn!("cannot start an OS thread for thread {tid}: {e}");
                    ThreadError::Again
                })
            }
            Some(chain) => chain.spawn(self, caller, memory, tid, start_arg as u32),
        };
        if let Err(e) = started {
            caller.data().home().not_started(self, tid);
            return Err(e);
        }
        tracing::debug!(tid, "spawned");
        Ok(tid)
    }

    /// Threads of the program that may be running now: the live ones
    /// besides main, and main.
    pub(crate) fn running_threads(&self) -> u32 {
        self.live_threads.load(Ordering::SeqCst) + 1
    }

    /// Counts a new live thread (within `max_threads`) and gives its id.
    pub(crate) fn new_thread(&self) -> Result<u32, ThreadError> {
        Home::new_thread(self, self)
    }

    /// Counts a live thread whose id its home gave.
    pub(crate) fn count_thread(&self) {
        self.live_threads.fetch_add(1, Ordering::SeqCst);
        crate::metrics::thread_began();
    }

    /// Runs `wasi_thread_start(tid, start_arg)` in a new instance over
    /// `memory`, then ends the thread (or the program) as its call ended.
    /// Runs thread `tid` (wasi-libc's start and exit path) on `memory`,
    /// for `home`: a thread of a call on a worker that exits or traps fails
    /// that call (home runs its thread again) instead of ending the
    /// worker's process, and its writes to stdout go with the call.
    pub(crate) fn run_thread(
        self: &Arc<Self>,
        tid: u32,
        start_arg: i32,
        memory: Arc<ThreadMemory>,
        home: Arc<dyn Home>,
    ) {
        let idle = memory.idle_instances.locked().pop();
        let (mut store, instance) = match idle {
            Some(idle) => idle,
            None => {
                let mut store = self.new_store(tid, None);
                match self.instantiate(&mut store, Some(&memory)) {
                    Ok(instance) => (store, instance),
                    Err(e) => return home.thread_failed(self, tid, Err(e)),
                }
            }
        };
        let state = store.data_mut();
        state.tid = tid;
        state.memory = Some(memory.clone());
        state.home = home.clone();
        state.cpu_base = crate::cpu_clock::thread_cpu_time();
        let clock = self.clocks.enter(tid, state.cpu_base);
        // A chained thread's exit path runs here on its parent's memory.
        let name = if self.chain.is_some() {
            "exit path"
        } else {
            "thread"
        };
        let span = trace::span(self.tracer(), name, "thread", tid);
        let result = crate::stack_check::forget_bounds(&mut store, &instance)
            .and_then(|()| {
                instance.get_typed_func::<(i32, i32), ()>(&mut store, "wasi_thread_start")
            })
            .and_then(|start| start.call(&mut store, (tid as i32, start_arg)));
        drop((clock, span));
        match ThreadEnd::classify(result) {
            ThreadEnd::Finished | ThreadEnd::Result(_) => {
                // No reference back to the memory from its own cache.
                store.data_mut().memory = None;
                store.data_mut().home = self.clone();
                let mut idle = memory.idle_instances.locked();
                if idle.len() < IDLE_INSTANCES && !self.is_ending() {
                    idle.push((store, instance));
                }
                drop(idle);
                self.thread_ended()
            }
            ThreadEnd::Exit(code) => home.thread_failed(self, tid, Ok(code)),
            ThreadEnd::Trap(e) => home.thread_failed(self, tid, Err(e)),
        }
    }

    pub(crate) fn thread_ended(&self) {
        crate::metrics::thread_ended();
        if self.live_threads.fetch_sub(1, Ordering::SeqCst) == 1
            && self.main_finished.load(Ordering::SeqCst)
        {
            let (lock, cvar) = &self.idle;
            let _guard = lock.locked();
            cvar.notify_all();
        }
    }
}

/// The limiter of every store of a program: each memory (defined or
/// imported, shared ones are bounded by their type at creation) at most
/// `max_memory` bytes, each table at most as many bytes of references.
pub(crate) fn store_limits(max_memory: Option<u64>) -> wasmtime::StoreLimits {
    let mut limits = wasmtime::StoreLimitsBuilder::new();
    if let Some(max) = max_memory {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        limits = limits
            .memory_size(max)
            .table_elements(max / std::mem::size_of::<usize>());
    }
    limits.build()
}

/// Runs `f` over the bytes of the caller's linear memory (shared or not).
fn guest_memory<R>(
    caller: &mut Caller<'_, ThreadState>,
    f: impl FnOnce(&[UnsafeCell<u8>]) -> R,
) -> Option<R> {
    if let Some(memory) = caller.data().memory.clone() {
        return Some(f(memory.memory.data()));
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => {
            let bytes = memory.data_mut(&mut *caller);
            // SAFETY: `UnsafeCell<u8>` has the layout of `u8`, and the
            // exclusive borrow of the store's memory lasts for the call.
            let cells = unsafe { &*(bytes as *mut [u8] as *const [UnsafeCell<u8>]) };
            Some(f(cells))
        }
        _ => None,
    }
}

/// Copies guest bytes at `addr` into `out`; false when out of bounds.
pub(crate) fn read_guest(caller: &mut Caller<'_, ThreadState>, addr: u32, out: &mut [u8]) -> bool {
    guest_memory(caller, |bytes| {
        let start = addr as usize;
        let Some(src) = bytes.get(start..start + out.len()) else {
            return false;
        };
        for (dst, cell) in out.iter_mut().zip(src) {
            // SAFETY: shared guest memory may change under us (other
            // threads); byte-wise volatile reads are the same access
            // wasmtime's own host functions make.
            *dst = unsafe { cell.get().read_volatile() };
        }
        true
    })
    .unwrap_or(false)
}

/// Copies `data` into guest memory at `addr`; false when out of bounds.
pub(crate) fn write_guest(caller: &mut Caller<'_, ThreadState>, addr: u32, data: &[u8]) -> bool {
    guest_memory(caller, |bytes| {
        let start = addr as usize;
        let Some(dst) = bytes.get(start..start + data.len()) else {
            return false;
        };
        for (cell, byte) in dst.iter().zip(data) {
            // SAFETY: as in `read_guest`: byte-wise writes into guest memory.
            unsafe { cell.get().write_volatile(*byte) };
        }
        true
    })
    .unwrap_or(false)
}
