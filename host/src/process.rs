//! A running guest program: its module, its one shared memory, its WASI
//! state and its threads, and how the program ends.
//!
//! Every thread (the main one included) has a `Store` of its own holding a
//! [`ThreadState`], and an instance of the module made from the shared
//! `InstancePre`, all over the same `SharedMemory`.

use std::cell::UnsafeCell;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use wasmtime::{Caller, Engine, Extern, InstancePre, SharedMemory, Store};
use weft_snapshot::{MergeOp, MergeRegion};

use crate::pool::WorkerPool;
use crate::wasi::SharedWasi;
use crate::{ThreadError, ThreadMode};

/// The thread id wasi-libc gives the main thread: outside the range a host
/// hands out (`1..=MAX_TID`), so the two never collide.
pub const MAIN_TID: u32 = 0x3fff_ffff;
/// The largest thread id the wasi-threads ABI allows.
pub const MAX_TID: u32 = 0x1fff_ffff;

/// Exit code of a program that trapped (the code wasmtime's CLI uses).
pub const TRAP_EXIT_CODE: i32 = 134;

/// Per-store state: which process and which thread a store belongs to.
#[derive(Debug)]
pub struct ThreadState {
    pub process: Arc<Process>,
    pub tid: u32,
}

/// Settings of one process.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    pub mode: ThreadMode,
    /// Threads (besides the main one) that may be live at once.
    pub max_threads: u32,
}

/// How one thread's wasm call ended.
#[derive(Debug)]
pub enum ThreadEnd {
    /// Returned normally, or ended itself through `pthread_exit`.
    Finished,
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

pub struct Process {
    engine: Engine,
    /// Set once by `Program::start`, before any thread runs.
    pre: OnceLock<InstancePre<ThreadState>>,
    memory: Option<SharedMemory>,
    wasi: SharedWasi,
    config: ProcessConfig,
    next_tid: AtomicU32,
    live_threads: AtomicU32,
    main_finished: AtomicBool,
    /// Signalled when the last spawned thread ends after `main` exited
    /// through `pthread_exit`.
    idle: (Mutex<()>, Condvar),
    pool: WorkerPool,
    /// Merge regions the guest registered, sorted by address.
    merge_regions: Mutex<Vec<MergeRegion>>,
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
    ) -> Arc<Self> {
        Arc::new(Self {
            engine,
            pre: OnceLock::new(),
            memory,
            wasi,
            config,
            next_tid: AtomicU32::new(0),
            live_threads: AtomicU32::new(0),
            main_finished: AtomicBool::new(false),
            idle: (Mutex::new(()), Condvar::new()),
            pool: WorkerPool::default(),
            merge_regions: Mutex::new(Vec::new()),
        })
    }

    pub fn mode(&self) -> ThreadMode {
        self.config.mode
    }

    pub fn shared_memory(&self) -> Option<&SharedMemory> {
        self.memory.as_ref()
    }

    /// Registers a merge region (see `wit/threads.wit`).
    pub fn register_merge_region(&self, region: MergeRegion) -> Result<(), RegionError> {
        if region.len == 0 {
            return Err(RegionError::Empty);
        }
        let memory_len = self.memory.as_ref().map_or(0, |m| m.data().len() as u64);
        if region.end() > memory_len {
            return Err(RegionError::OutOfBounds);
        }
        if !matches!(region.op, MergeOp::Bytewise | MergeOp::Ignore) {
            let size = region.ty.size();
            if !region.addr.is_multiple_of(size) || !region.len.is_multiple_of(size) {
                return Err(RegionError::Misaligned);
            }
        }
        let mut regions = self.merge_regions.lock().unwrap_or_else(|e| e.into_inner());
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
        self.merge_regions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn wasi(&self) -> &SharedWasi {
        &self.wasi
    }

    pub(crate) fn set_instance_pre(&self, pre: InstancePre<ThreadState>) {
        assert!(self.pre.set(pre).is_ok(), "instance pre set twice");
    }

    fn instantiate(&self, store: &mut Store<ThreadState>) -> wasmtime::Result<wasmtime::Instance> {
        match self.pre.get() {
            Some(pre) => pre.instantiate(store),
            None => wasmtime::bail!("process has no linked module"),
        }
    }

    pub(crate) fn new_store(self: &Arc<Self>, tid: u32) -> Store<ThreadState> {
        Store::new(
            &self.engine,
            ThreadState {
                process: self.clone(),
                tid,
            },
        )
    }

    /// Runs the program's `_start` on the calling thread and returns how the
    /// whole program ends. Spawned threads may still be running when this
    /// returns; ending the OS process is the caller's job (see
    /// [`terminate`]).
    pub fn run_main(self: &Arc<Self>) -> ThreadEnd {
        let mut store = self.new_store(MAIN_TID);
        let result = (|| {
            let instance = self.instantiate(&mut store)?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call(&mut store, ())
        })();
        let ended_itself = matches!(&result, Err(e) if e.downcast_ref::<ThreadExited>().is_some());
        match ThreadEnd::classify(result) {
            ThreadEnd::Finished if ended_itself => {
                // `pthread_exit` in main: the program lives on until its last
                // thread ends (libc then calls `exit(0)` itself).
                self.main_finished.store(true, Ordering::SeqCst);
                let (lock, cvar) = &self.idle;
                let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                while self.live_threads.load(Ordering::SeqCst) > 0 {
                    guard = cvar.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                ThreadEnd::Exit(0)
            }
            ThreadEnd::Finished => ThreadEnd::Exit(0),
            other => other,
        }
    }

    /// Starts a new thread running `wasi_thread_start(tid, start_arg)` and
    /// returns its id.
    pub fn spawn(self: &Arc<Self>, start_arg: i32) -> Result<u32, ThreadError> {
        if self.memory.is_none() {
            return Err(ThreadError::NotSupported);
        }
        let max = self.config.max_threads;
        self.live_threads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| ThreadError::Again)?;
        let tid = self.next_tid.fetch_add(1, Ordering::Relaxed) % MAX_TID + 1;
        let process = self.clone();
        let job = Box::new(move || process.run_thread(tid, start_arg));
        if let Err(e) = self.pool.execute(job) {
            tracing::warn!("cannot start an OS thread for thread {tid}: {e}");
            self.thread_ended();
            return Err(ThreadError::Again);
        }
        tracing::debug!(tid, "spawned");
        Ok(tid)
    }

    fn run_thread(self: &Arc<Self>, tid: u32, start_arg: i32) {
        let mut store = self.new_store(tid);
        let result = (|| {
            let instance = self.instantiate(&mut store)?;
            let start =
                instance.get_typed_func::<(i32, i32), ()>(&mut store, "wasi_thread_start")?;
            start.call(&mut store, (tid as i32, start_arg))
        })();
        drop(store);
        match ThreadEnd::classify(result) {
            ThreadEnd::Finished => self.thread_ended(),
            ThreadEnd::Exit(code) => terminate(code, None),
            ThreadEnd::Trap(e) => terminate(TRAP_EXIT_CODE, Some((tid, e))),
        }
    }

    fn thread_ended(&self) {
        if self.live_threads.fetch_sub(1, Ordering::SeqCst) == 1
            && self.main_finished.load(Ordering::SeqCst)
        {
            let (lock, cvar) = &self.idle;
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            cvar.notify_all();
        }
    }
}

static TERMINATING: AtomicBool = AtomicBool::new(false);

/// Ends the OS process with `code`, after reporting `trap` (the thread id
/// and the error) if there is one. The first thread to call it wins; any
/// later caller blocks until the process is gone, so a program has exactly
/// one exit status and one message.
pub fn terminate(code: i32, trap: Option<(u32, wasmtime::Error)>) -> ! {
    if TERMINATING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    let _ = std::io::stdout().flush();
    if let Some((tid, error)) = trap {
        let who = if tid == MAIN_TID {
            "the main thread".to_string()
        } else {
            format!("thread {tid}")
        };
        // Printing may fail (stderr closed): never panic here, exit anyway.
        let _ = writeln!(std::io::stderr(), "weft: {who} trapped: {error:?}");
    }
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// Runs `f` over the bytes of the caller's linear memory (shared or not).
fn guest_memory<R>(
    caller: &mut Caller<'_, ThreadState>,
    f: impl FnOnce(&[UnsafeCell<u8>]) -> R,
) -> Option<R> {
    if let Some(shared) = caller.data().process.shared_memory() {
        let shared = shared.clone();
        return Some(f(shared.data()));
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
