//! Chain mode: every new thread is a chained call, a fresh instance on a
//! memory of its own restored from a snapshot of its parent.
//!
//! At `pthread_create` (the parent is inside `thread-spawn`):
//! 1. snapshot the parent's memory and globals (under the parent memory's
//!    merge lock, so no merge lands halfway);
//! 2. adjust what the child will see, in the snapshot itself so the same
//!    bytes are the diff's baseline: the thread-list lock the parent holds is
//!    released, and the thread's start routine becomes libweft's trampoline,
//!    with the real routine and argument in `weft_chain_entry`;
//! 3. run the child on a pool thread: restore, `wasi_thread_start`, and the
//!    trampoline hands back the routine's result (`finish`);
//! 4. merge the child's diff into the parent's memory with the registered
//!    merge regions, reporting conflicts (address and variable name);
//! 5. finish the thread on the parent's memory: a helper instance runs
//!    libc's real exit path (`wasi_thread_start` with a start routine that
//!    returns the result), which wakes the joiner and updates libc's thread
//!    list exactly as in local mode.
//!
//! Where the child runs is `run_child`: the seam a remote host plugs into.
//!
//! Heap: each chained thread allocates from an arena of chunks that Weft
//! hands out from the arena zone (`zone.rs`), address space of the main
//! memory that no allocator uses. A chunk must read the same (zero) in
//! every copy of memory its writes travel through: the thread's memory and
//! snapshot, its parent's, and so on up to the main memory. Fresh zone
//! space is zero everywhere; a reused chunk is zeroed along that path when
//! it is handed out (`zero_along`).

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::{Caller, MemoryType, SharedMemory};
use weft_snapshot::{Merger, Snapshot, WASM_PAGE_SIZE};

use crate::ThreadError;
use crate::calls::CallError;
use crate::cluster::envelope::{
    ChainAnswer, ChainCall, HomeReply, HomeRequest, decode_home, encode_home,
};
use crate::cluster::placement::{self, Place};
use crate::cluster::{Cluster, Remote};
use crate::home::RemoteCall;
use crate::incremental::{self, ChildMemory, MemoryImage};
use crate::process::{
    Chaining, ConflictPolicy, Merges, Origin, Process, TRAP_EXIT_CODE, ThreadEnd, ThreadMemory,
    ThreadState, terminate,
};
use crate::snapshot::{self, SnapshotLayout};
use crate::symbols::DataSymbols;
use crate::sync::HomeAtomic;
use crate::zone::{self, Zone};

/// Offsets in wasi-libc's `struct start_args` (wasm32).
const ARGS_START_FUNC: u32 = 8;
const ARGS_START_ARG: u32 = 12;

/// The first chunk of a chained thread's heap arena; libweft asks for more
/// (`arena-grow`) when it is full.
const FIRST_ARENA_CHUNK: u32 = 1 << 20;
/// The largest chunk one `arena-grow` may ask for.
const MAX_ARENA_CHUNK: u32 = 1 << 30;

/// Child memories kept for reuse: a recycled memory is already faulted in,
/// so restoring into it costs copies, not page faults.
const POOLED_MEMORIES: usize = 8;

/// A pooled child memory with the store and instance its last thread ran
/// in.
type PooledMemory = ChildMemory<(wasmtime::Store<ThreadState>, wasmtime::Instance)>;

/// What chain mode needs to know about a module, and its memory pool.
#[derive(Debug)]
pub(crate) struct ChainSupport {
    layout: SnapshotLayout,
    symbols: DataSymbols,
    /// Address of libc's `__thread_list_lock`.
    thread_list_lock: u32,
    /// Address of libweft's `weft_chain_entry` (start routine, argument).
    entry: u32,
    /// Address of libweft's `weft_chain_functions` (trampoline, identity).
    functions: u32,
    /// Address of libweft's `weft_chain_heap_active` flag.
    heap_active: u32,
    memory_max_pages: u32,
    /// The module's wasm, for hosts that run this program's threads.
    module_bytes: Arc<[u8]>,
    /// Start routines (function table indices) whose threads made a host
    /// call only home serves: later ones run at home from the start.
    home_only: Mutex<std::collections::HashSet<u32>>,
    memories: Mutex<Vec<PooledMemory>>,
    zone: Mutex<Zone>,
    /// Locks, condition variables and barriers shared by every copy.
    sync: crate::sync::SyncTable,
    /// The main memory as chained threads see it at an acquire (see
    /// [`sync_point`]); made at the first sync point.
    published: Mutex<Option<Snapshot>>,
    /// Bumped at every change of `published`, under its lock.
    published_seq: std::sync::atomic::AtomicU64,
    /// Whether parents keep running images (write tracking works here).
    incremental: AtomicBool,
    /// Chained threads running at home, for the stall watch.
    running: Mutex<std::collections::HashMap<u32, std::sync::Weak<ThreadMemory>>>,
    /// Whether the stall watch runs.
    watching: std::sync::Once,
}

impl ChainSupport {
    /// A memory for a child of `pages` wasm pages: a recycled one no larger,
    /// or a new one.
    /// Lazily filled (`lazy`) at its first restore when it is new.
    fn memory(
        &self,
        engine: &wasmtime::Engine,
        pages: u32,
        lazy: bool,
    ) -> wasmtime::Result<PooledMemory> {
        let mut pool = self.memories.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = pool.iter().position(|m| m.memory.size() <= pages as u64) {
            return Ok(pool.swap_remove(at));
        }
        drop(pool);
        let memory = SharedMemory::new(engine, MemoryType::shared(pages, self.memory_max_pages))?;
        incremental::prepare_memory(&memory);
        Ok(ChildMemory::new(
            memory,
            self.incremental.load(Ordering::Relaxed),
            lazy,
        ))
    }

    /// Keeps `child` for a later thread, unless something still uses its
    /// memory (a detached grandchild's merge).
    fn recycle(&self, thread_memory: Arc<ThreadMemory>, mut child: PooledMemory) {
        let Ok(thread_memory) = Arc::try_unwrap(thread_memory) else {
            return;
        };
        if let Some(origin) = &thread_memory.origin {
            child.settle(&origin.snapshot.lock().unwrap_or_else(|e| e.into_inner()));
        }
        drop(thread_memory);
        let mut pool = self.memories.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOLED_MEMORIES {
            pool.push(child);
        }
    }

    /// Bytes of the warm memories kept for reuse.
    pub(crate) fn pooled_bytes(&self) -> u64 {
        let pool = self.memories.lock().unwrap_or_else(|e| e.into_inner());
        pool.iter().map(|m| m.memory.data_size() as u64).sum()
    }

    /// Lets the warm memories go (a worker over its memory budget).
    pub(crate) fn drop_pooled(&self) {
        let pooled = std::mem::take(&mut *self.memories.lock().unwrap_or_else(|e| e.into_inner()));
        // Unmapping takes a while: not under the pool's lock.
        drop(pooled);
    }

    /// The main memory as it is now, without globals or regions (the
    /// caller holds its merge lock).
    /// Notes a change of `published` (its lock held).
    fn published_changed(&self) {
        self.published_seq.fetch_add(1, Ordering::SeqCst);
    }

    fn image_of_main(&self, main: &ThreadMemory) -> Snapshot {
        self.snapshot_from_image(main).unwrap_or_else(|| {
            // SAFETY: merges wait for the lock the caller holds; the main
            // thread is paused in a host call or its concurrent writes are
            // ones no other thread may read before its next sync point.
            let bytes = unsafe { snapshot::shared_bytes(&main.memory) };
            Snapshot::capture(self.layout.module, bytes, None, vec![], vec![])
        })
    }

    /// A snapshot of `parent` from its running image; `None` when write
    /// tracking is not available (the caller captures in full).
    fn snapshot_from_image(&self, parent: &ThreadMemory) -> Option<Snapshot> {
        if !self.incremental.load(Ordering::Relaxed) {
            return None;
        }
        let mut image = parent.image.lock().unwrap_or_else(|e| e.into_inner());
        if image.is_none() {
            *image = MemoryImage::new(&parent.memory, self.layout.module);
        }
        let snapshot = image.as_mut().and_then(|i| i.snapshot(&parent.memory));
        if snapshot.is_none() {
            *image = None;
            self.incremental.store(false, Ordering::Relaxed);
            tracing::debug!("no write tracking: chain mode copies whole memories");
        }
        snapshot
    }

    pub(crate) fn new(
        layout: SnapshotLayout,
        symbols: DataSymbols,
        memory_max_pages: u32,
        module_bytes: Arc<[u8]>,
    ) -> Result<Self, MissingSymbol> {
        let find = |name: &'static str| symbols.address_of(name).ok_or(MissingSymbol(name));
        Ok(Self {
            thread_list_lock: find("__thread_list_lock")?,
            entry: find("weft_chain_entry")?,
            functions: find("weft_chain_functions")?,
            heap_active: find("weft_chain_heap_active")?,
            layout,
            symbols,
            memory_max_pages,
            module_bytes,
            home_only: Default::default(),
            memories: Default::default(),
            zone: Default::default(),
            sync: crate::sync::SyncTable::new(crate::process::MAIN_TID),
            published: Mutex::new(None),
            published_seq: std::sync::atomic::AtomicU64::new(0),
            running: Mutex::new(std::collections::HashMap::new()),
            watching: std::sync::Once::new(),
            // Off: every snapshot, restore and diff copies or compares
            // whole memories (for comparing the two ways).
            incremental: AtomicBool::new(
                std::env::var_os("WEFT_WRITE_TRACKING").is_none_or(|v| v != "off"),
            ),
        })
    }
}

impl Chaining for ChainSupport {
    fn spawn(
        &self,
        process: &Arc<Process>,
        caller: &mut Caller<'_, ThreadState>,
        memory: Arc<ThreadMemory>,
        tid: u32,
        start_arg: u32,
    ) -> Result<(), ThreadError> {
        spawn(self, process, caller, memory, tid, start_arg)
    }
}

/// How often the stall watch looks at the running chained threads.
const STALL_LOOK: std::time::Duration = std::time::Duration::from_millis(250);

/// A chained thread registered with the stall watch while it runs.
struct Watched<'a> {
    chain: &'a ChainSupport,
    tid: u32,
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        self.chain
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.tid);
    }
}

impl ChainSupport {
    /// Registers chained thread `tid` with the stall watch (started with
    /// the first one) until the guard drops.
    fn watch<'a>(
        &'a self,
        process: &Arc<Process>,
        tid: u32,
        memory: &Arc<ThreadMemory>,
    ) -> Option<Watched<'a>> {
        let limit = process.start_config().stall_warning?;
        if process.is_worker() {
            return None;
        }
        self.watching.call_once(|| {
            let process = Arc::downgrade(process);
            let spawned = std::thread::Builder::new()
                .name("weft-stall-watch".into())
                .spawn(move || watch_stalls(&process, limit));
            if let Err(e) = spawned {
                tracing::debug!("no stall watch: {e}");
            }
        });
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tid, Arc::downgrade(memory));
        Some(Watched { chain: self, tid })
    }

    /// Warns once about chained thread `tid` if it has not synchronised
    /// for `limit` while every other thread waits: it may be spinning on a
    /// plain variable, whose change it never sees on its copy. A long
    /// computation looks the same, hence a warning, not an end.
    fn check_stall(&self, process: &Process, tid: u32, memory: &ThreadMemory, limit: Duration) {
        let Some(origin) = &memory.origin else {
            return;
        };
        let quiet = origin
            .last_sync
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if quiet < limit
            || origin.stall_warned.load(Ordering::Relaxed)
            || self.sync.is_waiting(tid)
            || !self.sync.all_others_wait(process.running_threads())
            || origin.stall_warned.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let _ = writeln!(
            std::io::stderr(),
            "weft: thread {tid} has run {}s without synchronising while every other thread waits: in chain mode it sees their writes only when it synchronises, so if it waits for a plain variable it waits forever (use an atomic or a lock; --timeout ends the program)",
            quiet.as_secs()
        );
    }
}

/// The stall watch of one program: looks at its running chained threads
/// until the process is gone.
fn watch_stalls(process: &std::sync::Weak<Process>, limit: Duration) {
    loop {
        std::thread::sleep(STALL_LOOK);
        let Some(process) = process.upgrade() else {
            return;
        };
        let Some(chain) = support(&process) else {
            return;
        };
        let running: Vec<(u32, Arc<ThreadMemory>)> = chain
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|(tid, memory)| Some((*tid, memory.upgrade()?)))
            .collect();
        for (tid, memory) in running {
            chain.check_stall(&process, tid, &memory, limit);
        }
    }
}

/// The chain support of a process in chain mode.
pub(crate) fn support(process: &Process) -> Option<&ChainSupport> {
    let chaining: &dyn std::any::Any = process.chaining()?;
    chaining.downcast_ref()
}

/// The `u32` at `base + offset` (a guest-given address: overflow is `None`).
fn u32_at(snapshot: &Snapshot, base: u32, offset: u32) -> Option<u32> {
    snapshot
        .read_bytes::<4>(base.checked_add(offset)?)
        .map(u32::from_le_bytes)
}

/// Starts chained thread `tid` for the parent calling from `caller`, which
/// runs on `parent`.
fn spawn(
    chain: &ChainSupport,
    process: &Arc<Process>,
    caller: &mut Caller<'_, ThreadState>,
    parent: Arc<ThreadMemory>,
    tid: u32,
    start_arg: u32,
) -> Result<(), ThreadError> {
    // From now on the main memory may hold arena blocks (a no-op in a
    // chained parent, whose copy has the flag already).
    if !crate::process::write_guest(caller, chain.heap_active, &1u32.to_le_bytes()) {
        return Err(ThreadError::NotSupported);
    }
    // Before the snapshot: a reused chunk is zeroed in the parent's memory.
    let remote = caller.data().remote.clone();
    let chunk = match &remote {
        Some(remote) => home_chunk(remote, &parent),
        None => allocate_chunk(process, chain, &parent, FIRST_ARENA_CHUNK, None)
            .map(|(start, len, _)| (start, len)),
    };
    let (arena, arena_len) = chunk.map_err(|e| {
        tracing::warn!("chain spawn of thread {tid}: no heap arena: {e}");
        ThreadError::Again
    })?;
    let thread = NewThread {
        tid,
        start_arg,
        arena,
        arena_len,
    };
    let spawned = spawn_with_arena(process, chain, caller, parent, thread);
    if spawned.is_err() {
        match &remote {
            Some(remote) => {
                let _ = remote.call(&HomeRequest::ArenaRelease { start: arena });
            }
            None => {
                chain
                    .zone
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .release(arena)
                    .ok();
            }
        }
    }
    spawned
}

/// The first arena chunk of a thread that a remote thread starts on its
/// worker: home hands it out of its zone; a chunk that held data is zeroed
/// here along the parent's path (home did its side).
fn home_chunk(remote: &RemoteCall, parent: &Arc<ThreadMemory>) -> Result<(u32, u32), ArenaError> {
    match remote.call(&HomeRequest::ArenaNew {
        size: FIRST_ARENA_CHUNK,
    })? {
        HomeReply::Chunk { start, len, dirty } => {
            if dirty {
                zero_along(parent, start, len);
            }
            Ok((start, len))
        }
        HomeReply::NoChunk => Err(ArenaError::Full("home has no room".into())),
        other => Err(ArenaError::HomeAnswered(format!("{other:?}"))),
    }
}

/// A chained thread being started: its id, wasi-libc's start arguments and
/// the first chunk of its heap arena.
struct NewThread {
    tid: u32,
    start_arg: u32,
    arena: u32,
    arena_len: u32,
}

fn spawn_with_arena(
    process: &Arc<Process>,
    chain: &ChainSupport,
    caller: &mut Caller<'_, ThreadState>,
    parent: Arc<ThreadMemory>,
    thread: NewThread,
) -> Result<(), ThreadError> {
    let NewThread {
        tid,
        start_arg,
        arena,
        arena_len,
    } = thread;
    let fail = |what: String| {
        tracing::error!("chain spawn of thread {tid}: {what}");
        ThreadError::Again
    };
    let started = std::time::Instant::now();
    let globals =
        snapshot::caller_globals(caller, &chain.layout).map_err(|e| fail(e.to_string()))?;
    let (mut snap, since) = {
        let merges = parent.merges.lock().unwrap_or_else(|e| e.into_inner());
        let snap = match chain.snapshot_from_image(&parent) {
            Some(mut snap) => {
                snap.globals = snapshot::read_globals(&mut *caller, &globals)
                    .map_err(|e| fail(e.to_string()))?;
                snap.regions = merge_regions(process, &parent);
                snap
            }
            // SAFETY: the parent thread is paused in this host call and
            // merges into its memory wait for the lock we hold.
            None => unsafe {
                snapshot::capture(
                    &mut *caller,
                    &globals,
                    &parent.memory,
                    &chain.layout,
                    merge_regions(process, &parent),
                )
            }
            .map_err(|e| fail(e.to_string()))?,
        };
        if parent.origin.is_none() {
            // Starting a thread is a release of the main thread: what the
            // new thread starts from is what every chained thread takes at
            // its next acquire (older, it would undo the spawn's own writes
            // in their copies).
            let mut published = chain.published.lock().unwrap_or_else(|e| e.into_inner());
            if published.is_some() {
                *published = Some(snap.clone());
                chain.published_changed();
            }
        }
        (snap, merges.log.seq())
    };
    let (Some(start_func), Some(start_routine_arg), Some(trampoline), Some(identity)) = (
        u32_at(&snap, start_arg, ARGS_START_FUNC),
        // Checked here, so `start_arg + ARGS_*` below cannot overflow.
        u32_at(&snap, start_arg, ARGS_START_ARG),
        u32_at(&snap, chain.functions, 0),
        u32_at(&snap, chain.functions, 4),
    ) else {
        return Err(fail("start arguments out of bounds".into()));
    };
    let mut entry = [0u8; 16];
    entry[..4].copy_from_slice(&start_func.to_le_bytes());
    entry[4..8].copy_from_slice(&start_routine_arg.to_le_bytes());
    entry[8..12].copy_from_slice(&arena.to_le_bytes());
    entry[12..].copy_from_slice(&arena_len.to_le_bytes());
    // The child's memory reaches its arena (the zone may lie past the
    // parent's memory; the merge grows the parent as far).
    snap.memory_pages = snap
        .memory_pages
        .max(pages_to_reach(arena as u64 + arena_len as u64));
    let adjusted = snap.write_bytes(chain.thread_list_lock, &0u32.to_le_bytes())
        && snap.write_bytes(start_arg + ARGS_START_FUNC, &trampoline.to_le_bytes())
        && snap.write_bytes(chain.entry, &entry);
    if !adjusted {
        return Err(fail("libweft's chain symbols lie outside memory".into()));
    }
    tracing::debug!(
        tid,
        captured_us = started.elapsed().as_micros() as u64,
        pages = snap.page_count(),
        "chain snapshot"
    );
    let child = ChildStart {
        remote: caller.data().remote.clone(),
        process: process.clone(),
        tid,
        start_arg,
        arena,
        parent,
        snapshot: Arc::new(Mutex::new(snap)),
        since: Arc::new(AtomicU32::new(since)),
        identity,
        start_func,
    };
    let home_only = chain
        .home_only
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&start_func);
    let started = match process.start_config().cluster.clone() {
        Some(cluster) if !home_only => {
            let place = placement::place(
                cluster.placement(),
                || process.try_take_slot(),
                || cluster.reserve(&[]),
            );
            match place {
                Place::Home => process.execute(Box::new(move || child.run())),
                Place::Peer(peer) => {
                    let away = cluster.clone();
                    let started = process.execute(Box::new(move || child.run_away(&away, peer)));
                    if started.is_err() {
                        cluster.unreserve(peer);
                    }
                    started
                }
                Place::Queue => process.start_with_slot(Box::new(move || child.run())),
            }
        }
        _ => {
            // A thread started on a worker counts from now until its exit
            // path is done: its call waits for it.
            let running = child.remote.clone().map(crate::home::CallThread::new);
            process.start_with_slot(Box::new(move || {
                let _running = running;
                child.run()
            }))
        }
    };
    started.map_err(|e| fail(format!("no OS thread: {e}")))
}

/// The merge regions a child of `parent` merges with: the process's, or,
/// on a worker (whose process serves many programs), those of the
/// snapshot home sent.
fn merge_regions(process: &Process, parent: &ThreadMemory) -> Vec<weft_snapshot::MergeRegion> {
    if process.is_worker() {
        let mut memory = parent;
        while let Some(origin) = &memory.origin {
            if origin.parent.origin.is_none() {
                return origin
                    .snapshot
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .regions
                    .clone();
            }
            memory = &origin.parent;
        }
    }
    process.merge_regions()
}

/// Why a chunk of a heap arena could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArenaError {
    #[error("a chunk of {0} bytes is out of range")]
    OutOfRange(u32),
    #[error("the memory is full: {0}")]
    Full(String),
    #[error("the program has no shared memory")]
    NoSharedMemory,
    #[error("the zone lost fresh space")]
    ZoneLost,
    #[error("home answered {0}")]
    HomeAnswered(String),
    #[error("asking home: {0}")]
    Home(#[from] crate::home::HomeError),
}

/// Chain mode cannot run a module without libweft's symbols.
#[derive(Debug, thiserror::Error)]
#[error(
    "the module has no symbol `{0}`: chain mode needs a guest linked with libweft and its symbol table: C built with weft-cc, Rust built with RUSTFLAGS=\"$(weft-cc --rustflags)\""
)]
pub(crate) struct MissingSymbol(&'static str);

/// Wasm pages a memory needs to hold `end` bytes.
fn pages_to_reach(end: u64) -> u32 {
    end.div_ceil(WASM_PAGE_SIZE) as u32
}

/// Hands out `len` bytes of the arena zone (rounded up to whole wasm
/// pages) for `arena`, or for a new arena when `None`; the range reads
/// zero in `path` and every memory and snapshot `path` came from. Returns
/// the range's start and length, and whether it held data before.
fn allocate_chunk(
    process: &Process,
    chain: &ChainSupport,
    path: &Arc<ThreadMemory>,
    len: u32,
    arena: Option<u32>,
) -> Result<(u32, u32, bool), ArenaError> {
    let len = len
        .checked_next_multiple_of(zone::GRAIN)
        .filter(|len| (1..=MAX_ARENA_CHUNK).contains(len))
        .ok_or(ArenaError::OutOfRange(len))?;
    let taken = {
        let mut zone = chain.zone.lock().unwrap_or_else(|e| e.into_inner());
        match zone.take(len, arena) {
            Some(taken) => taken,
            None => {
                let main = process.main_memory().ok_or(ArenaError::NoSharedMemory)?;
                let old = main
                    .memory
                    .grow((len / zone::GRAIN) as u64)
                    .map_err(|e| ArenaError::Full(format!("{e:#}")))?;
                let start = u32::try_from(old * WASM_PAGE_SIZE)
                    .map_err(|_| ArenaError::Full("past 4 GiB".into()))?;
                zone.add_fresh(start, len);
                zone.take(len, arena).ok_or(ArenaError::ZoneLost)?
            }
        }
    };
    // A used range reads differently in the memories along the path; in
    // the main memory alone (the path of a thread it starts) the range is
    // what the new thread's snapshot will hold, whatever it is.
    if taken.dirty && path.origin.is_some() {
        zero_along(path, taken.start, len);
        // The main memory reads zero there now: so does what chained
        // threads take at an acquire.
        if let Some(published) = chain
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            published.zero_range(taken.start, len);
            chain.published_changed();
        }
    }
    Ok((taken.start, len, taken.dirty))
}

/// Zeroes `len` bytes at `start` in `path`, the snapshot it was restored
/// from, its parent, and so on up to the main memory.
fn zero_along(path: &Arc<ThreadMemory>, start: u32, len: u32) {
    let mut next = Some(path);
    while let Some(memory) = next {
        // The range belongs to a chunk being handed out: no thread uses it.
        incremental::zero_memory(&memory.memory, start, len);
        // Its previous owner's merges are history: a lineage older than
        // them that writes the range now is the new owner's.
        memory
            .merges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .log
            .forget(start, len);
        if let Some(image) = memory
            .image
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            image.zero_range(start, len);
        }
        next = memory.origin.as_ref().map(|origin| {
            origin
                .snapshot
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .zero_range(start, len);
            &origin.parent
        });
    }
}

/// `arena-grow`: a new chunk of `size` bytes for the calling chained
/// thread's arena, or 0 when there is no memory left for it.
pub(crate) fn grow_arena(caller: &mut Caller<'_, ThreadState>, size: u32) -> u32 {
    let state = caller.data();
    let (process, memory, arena) = (state.process.clone(), state.memory.clone(), state.arena);
    let (Some(chain), Some(memory)) = (support(&process), memory) else {
        return 0;
    };
    if arena == 0 {
        return 0;
    }
    let grown =
        allocate_chunk(&process, chain, &memory, size, Some(arena)).and_then(|(start, len, _)| {
            match reach(&memory, start, len) {
                Ok(()) => Ok(start),
                Err(e) => {
                    chain
                        .zone
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .release(start)
                        .ok();
                    Err(e)
                }
            }
        });
    grown.unwrap_or_else(|e| {
        tracing::debug!(
            tid = caller.data().tid,
            "arena-grow of {size} bytes refused: {e}"
        );
        0
    })
}

/// Grows `memory` (a thread's own) to reach the chunk at `start`.
fn reach(memory: &ThreadMemory, start: u32, len: u32) -> Result<(), ArenaError> {
    let need = pages_to_reach(start as u64 + len as u64) as u64;
    let have = memory.memory.size();
    if have < need {
        memory
            .memory
            .grow(need - have)
            .map_err(|e| ArenaError::Full(format!("{e:#}")))?;
    }
    Ok(())
}

/// A remote thread's side of a chunk home handed out for its arena: its
/// memory reaches it, and a chunk that held data reads zero in its memory
/// and in its snapshot (the baseline of its diff), as home made it read
/// zero in home's copy of that snapshot and along the parents.
pub(crate) fn adopt_remote_chunk(
    memory: &Arc<ThreadMemory>,
    start: u32,
    len: u32,
    dirty: bool,
) -> Result<(), ArenaError> {
    reach(memory, start, len)?;
    if dirty {
        zero_along(memory, start, len);
    }
    Ok(())
}

/// `arena-release`: chunk `start` goes back to the zone.
pub(crate) fn release_arena_chunk(process: &Process, start: u32) -> wasmtime::Result<()> {
    let Some(chain) = support(process) else {
        wasmtime::bail!("weft:threads arena-release: no heap arenas outside chain mode");
    };
    chain
        .zone
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .release(start)
        .map_err(|e| wasmtime::Error::msg(format!("weft:threads arena-release: {e}")))
}

/// `arena-lookup`: the arena that heap address `addr` belongs to, or 0.
pub(crate) fn arena_of(process: &Process, addr: u32) -> u32 {
    support(process).map_or(0, |chain| {
        chain
            .zone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .arena_of(addr)
            .unwrap_or(0)
    })
}

struct ChildStart {
    process: Arc<Process>,
    tid: u32,
    start_arg: u32,
    arena: u32,
    parent: Arc<ThreadMemory>,
    /// Shared with the child's memory's origin: a reused arena chunk is
    /// zeroed in it too.
    snapshot: Arc<Mutex<Snapshot>>,
    /// The parent memory's merge sequence number the snapshot is current
    /// to (shared with the child's memory, whose sync points move it).
    since: Arc<AtomicU32>,
    identity: u32,
    /// The thread's start routine (a function table index).
    start_func: u32,
    /// Set when a remote thread started this one on its worker.
    remote: Option<Arc<RemoteCall>>,
}

impl ChildStart {
    /// Runs the thread here; it holds a slot.
    fn run(self) {
        if self.remote.is_none()
            && let Some(cluster) = &self.process.start_config().cluster
        {
            cluster.count_home_run();
        }
        let _home = self.remote.clone().map(crate::home::HomeScope::enter);
        let result = self.run_here();
        self.merge_and_finish(result);
    }

    /// The thread's result and changes; `None` when it failed away from
    /// home (its call fails; the program's end is home's to decide).
    fn run_here(&self) -> Option<(u32, weft_snapshot::Diff)> {
        let ran = run_child(
            &self.process,
            (self.tid, self.start_arg, self.arena),
            &self.parent,
            (&self.snapshot, &self.since),
            self.remote.clone(),
        );
        match (ran, &self.remote) {
            (Ok(done), _) => Some(done),
            (Err(e), Some(remote)) => {
                remote.fail(match e {
                    ChildError::Exit(code) => format!("thread {} called exit({code})", self.tid),
                    ChildError::Trap(e) => format!("thread {}: {e:#}", self.tid),
                });
                None
            }
            (Err(ChildError::Exit(code)), None) => terminate(code, None),
            (Err(ChildError::Trap(e)), None) => terminate(TRAP_EXIT_CODE, Some((self.tid, e))),
        }
    }

    /// Ends the program with `code` at home; away from home, fails the
    /// call instead (home runs the thread that started this one again).
    fn end(&self, code: i32, why: String) -> bool {
        match &self.remote {
            Some(remote) => {
                remote.fail(why);
                false
            }
            None => {
                let _ = writeln!(std::io::stderr(), "weft: {why}");
                terminate(code, None)
            }
        }
    }

    /// Runs the thread on `peer` (or wherever the cluster takes it back
    /// to); it holds no slot here.
    fn run_away(self, cluster: &Cluster, peer: usize) {
        let Some(chain) = support(&self.process) else {
            return;
        };
        let snapshot = self
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let thread = (self.tid, self.start_arg, self.arena);
        let book = RemoteBook::default();
        let mut home = |request: Vec<u8>| encode_home(&self.serve_home(chain, &request, &book));
        let outcome = cluster.run(
            peer,
            &chain.module_bytes,
            thread,
            &snapshot,
            &mut home,
            &book.effects,
        );
        // Threads it started on a peer it lost never end there.
        for _ in book
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            self.process.thread_ended();
        }
        let effects = book.effects;
        let lost_after_effects = |why: &str| -> ! {
            let _ = writeln!(
                std::io::stderr(),
                "weft: thread {} cannot finish: {why}, after it changed shared state or started or awaited a function call, so running it again could repeat those changes",
                self.tid
            );
            terminate(1, None)
        };
        match outcome {
            Remote::Finished {
                value,
                diff,
                output,
                cpu_ns,
            } => {
                self.process.add_cpu_elsewhere(cpu_ns);
                cluster.count_peer_runs(1 + book.started.load(Ordering::SeqCst));
                print_output(&output);
                self.merge_and_finish(Some((value, diff)));
            }
            Remote::Home { .. } if effects.load(Ordering::SeqCst) => {
                lost_after_effects("it left its peer")
            }
            Remote::Home { needs_home, why } => {
                tracing::debug!(tid = self.tid, "running the thread at home: {why}");
                if needs_home {
                    chain
                        .home_only
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(self.start_func);
                }
                cluster.count_home_run();
                self.process.acquire_slot();
                let result = self.run_here();
                self.merge_and_finish(result);
            }
        }
    }

    /// Serves a call home from this thread running on a peer.
    fn serve_home(&self, chain: &ChainSupport, request: &[u8], book: &RemoteBook) -> HomeReply {
        let request = match decode_home::<HomeRequest>(request) {
            Ok(request) => request,
            Err(e) => return HomeReply::Refused(e.to_string()),
        };
        match request {
            HomeRequest::ArenaGrow { size } | HomeRequest::ArenaNew { size } => {
                // A new chunk of this thread's arena, or the first of an
                // arena for a thread it starts on its worker.
                let arena = matches!(request, HomeRequest::ArenaGrow { .. }).then_some(self.arena);
                match allocate_chunk(&self.process, chain, &self.parent, size, arena) {
                    Ok((start, len, dirty)) => {
                        book.chunks
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(start);
                        if dirty {
                            // The thread's memory is the worker's: zero the
                            // range in home's copy of its snapshot, and in
                            // the main memory when that is the parent
                            // (`allocate_chunk` did the other parents).
                            self.snapshot
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .zero_range(start, len);
                            if self.parent.origin.is_none() {
                                zero_along(&self.parent, start, len);
                            }
                        }
                        HomeReply::Chunk { start, len, dirty }
                    }
                    Err(e) => {
                        tracing::debug!(
                            tid = self.tid,
                            "remote arena-grow of {size} bytes refused: {e}"
                        );
                        HomeReply::NoChunk
                    }
                }
            }
            HomeRequest::ArenaRelease { start } => {
                // Only a chunk home handed to this call goes back.
                let mut chunks = book.chunks.lock().unwrap_or_else(|e| e.into_inner());
                let Some(at) = chunks.iter().position(|c| *c == start) else {
                    return HomeReply::Refused(format!(
                        "the chunk at {start:#x} is not one of this call's"
                    ));
                };
                chunks.swap_remove(at);
                drop(chunks);
                match release_arena_chunk(&self.process, start) {
                    Ok(()) => HomeReply::Done,
                    Err(e) => HomeReply::Refused(e.to_string()),
                }
            }
            HomeRequest::NewThread => match self.process.new_thread() {
                Ok(tid) => {
                    book.started.fetch_add(1, Ordering::SeqCst);
                    book.threads
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(tid);
                    HomeReply::Thread(tid)
                }
                Err(_) => HomeReply::NoThread,
            },
            HomeRequest::ThreadEnded { tid } => {
                let mut threads = book.threads.lock().unwrap_or_else(|e| e.into_inner());
                match threads.iter().position(|t| *t == tid) {
                    Some(at) => {
                        threads.swap_remove(at);
                        self.process.thread_ended();
                        HomeReply::Done
                    }
                    None => HomeReply::Refused(format!("thread {tid} is not one of this call's")),
                }
            }
            HomeRequest::FdStat { fd: fd @ (1 | 2) } => HomeReply::FdStat(
                crate::wasi::fdstat(&self.process, fd as i32).map(|bytes| bytes.to_vec()),
            ),
            HomeRequest::FdStat { fd } => {
                HomeReply::Refused(format!("fd_fdstat_get of fd {fd} away from home"))
            }
            HomeRequest::Chain(call) => {
                let answer = self.serve_chain(call, book);
                HomeReply::Chain(answer.map_err(|e| e as u8))
            }
            HomeRequest::Global(call) => {
                tracing::debug!(tid = self.tid, "a call home: {call:?}");
                if call.has_effects() {
                    book.effects.store(true, Ordering::SeqCst);
                }
                let state = self.process.state();
                // The owner the calling thread has at home
                // (`state_imports.rs`): this thread or one it started.
                let tid = call.thread().unwrap_or(self.tid);
                let ours = tid == self.tid
                    || book
                        .threads
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains(&tid);
                if !ours {
                    return HomeReply::Refused(format!("thread {tid} is not one of this call's"));
                }
                let owner = self.process.serial() << 32 | tid as u64;
                let answer = crate::home::serve_global(
                    &**state.global(),
                    owner,
                    call,
                    state.limits().lock_timeout,
                );
                HomeReply::Global(answer.map_err(|e| e as u8))
            }
        }
    }

    /// Merges the thread's changes (if it has a result) into its parent and
    /// runs libc's exit path there, which wakes its joiner.
    /// A `weft:chain` operation of this thread (or one it started on its
    /// worker): against this process's input, output and calls.
    fn serve_chain(&self, call: ChainCall, book: &RemoteBook) -> Result<ChainAnswer, CallError> {
        let process = &self.process;
        let config = process.start_config();
        let calls = process.calls();
        // Starting, awaiting (an await marks the call) and setting the
        // output change what others see: no re-run after them.
        let effects = || book.effects.store(true, Ordering::SeqCst);
        Ok(match call {
            ChainCall::Input => ChainAnswer::Bytes(
                config
                    .call_io
                    .as_ref()
                    .map_or_else(Vec::new, |io| io.input.to_vec()),
            ),
            ChainCall::SetOutput(data) => {
                effects();
                if let Some(io) = &config.call_io {
                    *io.output.lock().unwrap_or_else(|e| e.into_inner()) = data;
                }
                ChainAnswer::Done
            }
            ChainCall::Call { name, input } => {
                let Some(functions) = &config.functions else {
                    return Err(CallError::UnknownFunction);
                };
                let id = calls.call(functions.clone(), &name, input, config)?;
                effects();
                ChainAnswer::Id(id)
            }
            ChainCall::TryAwait { id } => {
                let code = calls.try_await(id);
                if matches!(code, Ok(Some(_)) | Err(CallError::Trapped)) {
                    effects();
                }
                ChainAnswer::Code(code?)
            }
            ChainCall::TryAwaitAll { ids } => {
                let codes = calls.try_await_all(&ids);
                if !matches!(
                    codes,
                    Ok(None) | Err(CallError::NoSuchCall | CallError::AlreadyAwaited)
                ) {
                    effects();
                }
                ChainAnswer::Codes(codes?)
            }
            ChainCall::Output { id } => ChainAnswer::Bytes(calls.output(id)?),
        })
    }

    fn merge_and_finish(self, result: Option<(u32, weft_snapshot::Diff)>) {
        let Some(chain) = support(&self.process) else {
            return;
        };
        {
            let mut merges = self.parent.merges.lock().unwrap_or_else(|e| e.into_inner());
            // A thread that failed away from home still ends (with 0), so
            // its joiner wakes; its call has failed already.
            let value = result
                .and_then(|(value, diff)| self.merge(chain, &mut merges, &diff).then_some(value))
                .unwrap_or(0);
            // The exit path runs the identity routine on the result.
            let mut args = [0u8; 8];
            args[..4].copy_from_slice(&self.identity.to_le_bytes());
            args[4..].copy_from_slice(&value.to_le_bytes());
            let data = self.parent.memory.data();
            let at = (self.start_arg + ARGS_START_FUNC) as usize;
            for (cell, byte) in data[at..at + 8].iter().zip(args) {
                // SAFETY: in bounds; a plain store into guest memory.
                unsafe { cell.get().write_volatile(byte) };
            }
        }
        // Home hears of the end before the exit path wakes the joiner: the
        // call this thread belongs to may finish right after.
        if let Some(remote) = &self.remote {
            remote.tell_thread_ended(self.tid);
        }
        self.process.run_thread(
            self.tid,
            self.start_arg as i32,
            self.parent.clone(),
            self.remote.clone(),
        );
    }

    /// Merges `diff` into the parent's memory (under its merge lock);
    /// false when it could not (away from home; at home the program ends).
    fn merge(&self, chain: &ChainSupport, merges: &mut Merges, diff: &weft_snapshot::Diff) -> bool {
        let tid = self.tid;
        if merges.closed {
            // Its parent (a chained thread) has ended and taken its own
            // diff: these changes would reach no one.
            return self.end(1, format!(
                "thread {tid} ended after the chained thread that created it; in chain mode a thread must end (be joined) before its creator does, or its changes are lost"
            ));
        }
        let memory = &self.parent.memory;
        if (diff.memory_pages as u64) > memory.size()
            && let Err(e) = memory.grow(diff.memory_pages as u64 - memory.size())
        {
            return self.end(
                TRAP_EXIT_CODE,
                format!("thread {tid} trapped: growing the parent memory for a merge: {e:#}"),
            );
        }
        let data = memory.data();
        // SAFETY: merges into one memory are serialised by its merge lock.
        // Other threads on this memory may run meanwhile; the merge's byte
        // writes are what another thread's stores would be to them.
        let base = unsafe {
            std::slice::from_raw_parts_mut(data.as_ptr().cast::<u8>().cast_mut(), data.len())
        };
        let snapshot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        let since = self.since.load(Ordering::SeqCst);
        let mut merger = Merger::with_log(&snapshot, &mut merges.log, since);
        let conflicts = match merger.merge(base, diff, tid) {
            Ok(conflicts) => conflicts,
            Err(e) => {
                return self.end(
                    TRAP_EXIT_CODE,
                    format!("thread {tid} trapped: merging the thread's changes: {e}"),
                );
            }
        };
        if self.parent.origin.is_none()
            && let Some(published) = chain
                .published
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
        {
            // A thread's end is a release: its last writes are published.
            published.memory_pages = published.memory_pages.max(diff.memory_pages);
            for run in &diff.runs {
                published.write_bytes(run.addr, &run.bytes);
            }
            chain.published_changed();
        }
        if !conflicts.is_empty() {
            if self.remote.is_some() {
                // Home runs the thread that started this one again and
                // reports the conflicts with its own policy.
                return self.end(
                    1,
                    format!("thread {tid}: {} conflicting write(s)", conflicts.len()),
                );
            }
            report_conflicts(
                tid,
                &conflicts,
                &chain.symbols,
                self.process.config().on_conflict,
            );
        }
        true
    }
}

pub(crate) enum ChildError {
    Exit(i32),
    Trap(wasmtime::Error),
}

impl From<wasmtime::Error> for ChildError {
    fn from(e: wasmtime::Error) -> Self {
        Self::Trap(e)
    }
}

/// What home keeps of a thread running on a peer while it runs.
#[derive(Debug, Default)]
struct RemoteBook {
    /// Set once the thread changed shared state: from then on it cannot
    /// run again.
    effects: AtomicBool,
    /// Threads it started on its worker that have not ended.
    threads: Mutex<Vec<u32>>,
    /// Threads it started on its worker, ended or not.
    started: std::sync::atomic::AtomicU64,
    /// Arena chunks home handed to it (the only ones it may give back).
    chunks: Mutex<Vec<u32>>,
}

/// A slot a thread holds until its store takes it over.
struct HeldSlot<'a>(Option<&'a Process>);

impl HeldSlot<'_> {
    fn hand_over(mut self) {
        self.0 = None;
    }
}

impl Drop for HeldSlot<'_> {
    fn drop(&mut self) {
        if let Some(process) = self.0 {
            process.release_slot();
        }
    }
}

/// Prints a remote thread's buffered output records (checked when they
/// arrived).
fn print_output(output: &[u8]) {
    let Ok(records) = crate::cluster::envelope::output_records(output) else {
        return;
    };
    for (fd, bytes) in records {
        // As a local thread's writes: a closed stream is not an error here.
        let _ = match fd {
            1 => std::io::stdout().lock().write_all(bytes),
            _ => std::io::stderr().lock().write_all(bytes),
        };
    }
    let _ = std::io::stdout().flush();
}

/// Runs chained thread `tid` of a program whose home is another host, on
/// this worker's `process`, from `snapshot`, as part of `call`: its
/// result and its changes. A failure of a thread it started here fails it
/// too (home then runs it itself).
pub(crate) fn run_remote(
    process: &Arc<Process>,
    thread: (u32, u32, u32),
    snapshot: Snapshot,
    call: &Arc<RemoteCall>,
) -> Result<(u32, weft_snapshot::Diff), ChildError> {
    let Some(parent) = process.main_memory() else {
        return Err(ChildError::Trap(wasmtime::Error::msg(
            "the module has no shared memory",
        )));
    };
    // Nothing runs on the worker's own main memory: it only stands for the
    // thread's origin (zeroing along a path ends there, harmlessly).
    process.acquire_slot();
    let _home = crate::home::HomeScope::enter(call.clone());
    let done = run_child(
        process,
        thread,
        &parent.clone(),
        (
            &Arc::new(Mutex::new(snapshot)),
            &Arc::new(AtomicU32::new(0)),
        ),
        Some(call.clone()),
    );
    // Threads it started here that outlive it (detached) still run: their
    // end decides whether the call succeeds (a late merge fails it).
    if done.is_err() {
        call.cancel();
    }
    call.wait_threads();
    let done = done?;
    match call.failure() {
        Some(why) => Err(ChildError::Trap(wasmtime::Error::new(
            crate::home::NeedsHome(why),
        ))),
        None => Ok(done),
    }
}

/// Runs chained thread `tid` from `snapshot` (of `parent`) in a fresh
/// instance on a memory of its own; returns its start routine's result and
/// what it changed.
fn run_child(
    process: &Arc<Process>,
    (tid, start_arg, arena): (u32, u32, u32),
    parent: &Arc<ThreadMemory>,
    (snapshot, since): (&Arc<Mutex<Snapshot>>, &Arc<AtomicU32>),
    remote: Option<Arc<RemoteCall>>,
) -> Result<(u32, weft_snapshot::Diff), ChildError> {
    let chain = support(process).expect("chain mode has chain support");
    // The slot this job was granted goes back if the thread cannot start.
    let slot = HeldSlot(Some(process));
    let t0 = std::time::Instant::now();
    let (mut child, globals) = {
        let snapshot = snapshot.lock().unwrap_or_else(|e| e.into_inner());
        snapshot
            .check_target(chain.layout.module, chain.memory_max_pages)
            .map_err(wasmtime::Error::msg)?;
        // Lazy restores keep the home host's memory near the guest's;
        // a worker's memory has a cap of its own (`--worker-memory`) and
        // its threads' faults would cost more than its copies.
        let lazy = !process.is_worker();
        let mut child = chain.memory(process.engine(), snapshot.memory_pages, lazy)?;
        child.restore(&snapshot).map_err(wasmtime::Error::msg)?;
        (child, snapshot.globals.clone())
    };
    let t1 = t0.elapsed();
    let memory = ThreadMemory::with_origin(
        child.memory.clone(),
        Some(Origin {
            parent: parent.clone(),
            snapshot: snapshot.clone(),
            since: since.clone(),
            published_seen: std::sync::atomic::AtomicU64::new(u64::MAX),
            last_sync: Mutex::new(std::time::Instant::now()),
            stall_warned: AtomicBool::new(false),
        }),
    );
    let (mut store, instance) = match child.instance.take() {
        Some(cached) => cached,
        None => {
            let mut store = process.new_store(tid, None);
            let instance = process.instantiate(&mut store, Some(&memory))?;
            (store, instance)
        }
    };
    if let Some(tracker) = child.tracker() {
        let _ = memory.writes.set(tracker);
    }
    if let Some(fill) = child.lazy_fill() {
        let _ = memory.lazy_fill.set(fill);
    }
    let _watched = chain.watch(process, tid, &memory);
    let state = store.data_mut();
    state.tid = tid;
    state.memory = Some(memory.clone());
    state.arena = arena;
    state.remote = remote;
    state.cpu_base = crate::cpu_clock::thread_cpu_time();
    state.holds_slot = true; // granted before this job ran
    let clock = process.clocks().enter(tid, state.cpu_base);
    slot.hand_over();
    let t2 = t0.elapsed();
    snapshot::restore_globals(&mut store, &instance, &globals).map_err(wasmtime::Error::msg)?;
    let start = instance.get_typed_func::<(i32, i32), ()>(&mut store, "wasi_thread_start")?;
    let ended = start.call(&mut store, (tid as i32, start_arg as i32));
    drop(clock);
    if let Some(remote) = &store.data().remote {
        remote.add_cpu(crate::cpu_clock::thread_cpu_time().saturating_sub(store.data().cpu_base));
    }
    if store.data().holds_slot {
        store.data_mut().holds_slot = false;
        process.release_slot();
    }
    let value = match ThreadEnd::classify(ended) {
        ThreadEnd::Result(value) => value,
        ThreadEnd::Finished => {
            return Err(ChildError::Trap(wasmtime::Error::msg(
                "chained thread ended without a result (was it built with weft-cc?)",
            )));
        }
        ThreadEnd::Exit(code) => return Err(ChildError::Exit(code)),
        ThreadEnd::Trap(e) => return Err(ChildError::Trap(e)),
    };
    let globals = snapshot::instance_globals(&mut store, &instance, &chain.layout)
        .map_err(wasmtime::Error::msg)?;
    let diff = {
        // Under the memory's merge lock: a thread of its own that merges
        // later finds the memory closed instead of losing its changes.
        let mut merges = memory.merges.lock().unwrap_or_else(|e| e.into_inner());
        let written = child.take_written();
        let snapshot = snapshot.lock().unwrap_or_else(|e| e.into_inner());
        let candidates = written.or_else(|| snapshot::candidate_pages(&memory.memory));
        // SAFETY: the child's only thread has finished.
        let diff = unsafe {
            snapshot::diff_pages(&mut store, &globals, &memory.memory, &snapshot, candidates)
        }
        .map_err(wasmtime::Error::msg)?;
        merges.closed = true;
        diff
    };
    store.data_mut().remote = None;
    // The instance stays with its memory for the next thread.
    store.data_mut().memory = None;
    child.instance = Some((store, instance));
    chain.recycle(memory, child);
    tracing::debug!(
        tid,
        restore_us = t1.as_micros() as u64,
        instantiate_us = (t2 - t1).as_micros() as u64,
        total_us = t0.elapsed().as_micros() as u64,
        "chain child"
    );
    Ok((value, diff))
}

fn report_conflicts(
    tid: u32,
    conflicts: &[weft_snapshot::Conflict],
    symbols: &DataSymbols,
    policy: ConflictPolicy,
) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "weft: merging thread {tid}: {} conflicting write(s){}",
        conflicts.len(),
        match policy {
            ConflictPolicy::Error => "",
            ConflictPolicy::Warn => " (kept the thread's values)",
        }
    );
    for conflict in conflicts.iter().take(20) {
        let _ = writeln!(
            err,
            "weft:   {}",
            snapshot::describe_conflict(conflict, symbols)
        );
    }
    if conflicts.len() > 20 {
        let _ = writeln!(err, "weft:   ... and {} more", conflicts.len() - 20);
    }
    drop(err);
    if policy == ConflictPolicy::Error {
        let _ = writeln!(
            std::io::stderr(),
            "weft: threads wrote the same memory without a merge region; ending the program (use --on-conflict=warn to continue)"
        );
        terminate(1, None);
    }
}

/// Chain mode's synchronisation objects (home's; see [`crate::sync`]).
pub(crate) fn sync_table(process: &Process) -> Option<&crate::sync::SyncTable> {
    support(process).map(|chain| &chain.sync)
}

/// A sync point (release consistency). Home keeps a *published* image
/// of the main memory: what the main thread had at its last sync point,
/// plus every change chained threads released since.
///
/// - Release: a chained thread's writes since its last sync point merge
///   into the main memory, the home of every byte, and into the published
///   image; the main thread publishes its memory as it is.
/// - Acquire (`pull`): a chained thread's copy becomes the published
///   image (in its memory and its snapshot, so its next diff holds only
///   its own writes), except its own `weft_chain_entry`. It never sees the
///   main thread's writes after that thread's last sync point, which in a
///   program without data races it cannot read (and which may be a libc
///   lock the main thread holds for a moment).
///
/// Only threads whose parent is the main memory synchronise: a thread that
/// a chained thread started merges into a copy the others do not see.
pub(crate) fn sync_point(
    process: &Process,
    tid: u32,
    memory: Option<&Arc<ThreadMemory>>,
    pull: bool,
) -> wasmtime::Result<()> {
    sync_point_with(process, tid, memory, pull, None).map(drop)
}

/// An atomic operation in chain mode (`sync-atomic`): a sync point with
/// the operation made on the main memory between its release and its
/// acquire, under the main memory's merge lock, which every other home
/// atomic of the program also holds: one value for every thread, and one
/// sync point instead of the two of a lock around the operation. Returns
/// what the operation returns.
pub(crate) fn atomic_at_home(
    process: &Process,
    tid: u32,
    memory: Option<&Arc<ThreadMemory>>,
    op: HomeAtomic,
) -> wasmtime::Result<u64> {
    sync_point_with(process, tid, memory, true, Some(op))?
        .ok_or_else(|| wasmtime::Error::msg("sync-atomic: the program does not run in chain mode"))
}

/// Makes `op` on `memory`; the caller holds its merge lock. Returns what
/// the operation returns and what it stored.
fn apply_atomic(memory: &SharedMemory, op: &HomeAtomic) -> wasmtime::Result<(u64, Option<u64>)> {
    let data = memory.data();
    let start = op.addr as usize;
    let cells = data.get(start..start + op.bytes as usize).ok_or_else(|| {
        wasmtime::Error::msg(format!(
            "an atomic operation at {:#x} is out of bounds",
            op.addr
        ))
    })?;
    let mut old = [0u8; 8];
    for (byte, cell) in old.iter_mut().zip(cells) {
        // SAFETY: in bounds; a byte read of shared memory through its
        // cell. Other atomics on these bytes wait for the merge lock the
        // caller holds, and plain writes to them would be a data race.
        *byte = unsafe { cell.get().read_volatile() };
    }
    let (result, store) = op.outcome(u64::from_le_bytes(old));
    if let Some(new) = store {
        for (byte, cell) in new.to_le_bytes().iter().zip(cells) {
            // SAFETY: as above, a byte write through the cell.
            unsafe { cell.get().write_volatile(*byte) };
        }
    }
    Ok((result, store))
}

fn sync_point_with(
    process: &Process,
    tid: u32,
    memory: Option<&Arc<ThreadMemory>>,
    pull: bool,
    atomic: Option<HomeAtomic>,
) -> wasmtime::Result<Option<u64>> {
    let (Some(chain), Some(main)) = (support(process), process.main_memory()) else {
        return Ok(None);
    };
    let Some(origin) = memory.and_then(|m| m.origin.as_ref()) else {
        // The main thread: the operation on its own memory, then publish.
        let _merges = main.merges.lock().unwrap_or_else(|e| e.into_inner());
        let result = atomic
            .map(|op| apply_atomic(&main.memory, &op).map(|(result, _)| result))
            .transpose()?;
        let image = chain.image_of_main(main);
        *chain.published.lock().unwrap_or_else(|e| e.into_inner()) = Some(image);
        chain.published_changed();
        return Ok(result);
    };
    let memory = memory.expect("a chained thread has a memory");
    if !Arc::ptr_eq(&origin.parent, main) {
        wasmtime::bail!(
            "thread {tid} synchronises with other threads, but it was started by a chained thread: in chain mode only threads that the main thread started can share locks, condition variables and barriers"
        );
    }
    // Lock order: the thread's own memory (merges of threads it started),
    // the main memory's, the published image, the thread's snapshot.
    let _own = memory.merges.lock().unwrap_or_else(|e| e.into_inner());
    let mut merges = main.merges.lock().unwrap_or_else(|e| e.into_inner());
    let mut published = chain.published.lock().unwrap_or_else(|e| e.into_inner());
    let published = published.get_or_insert_with(|| {
        chain.published_changed();
        chain.image_of_main(main)
    });
    let mut snapshot = origin.snapshot.lock().unwrap_or_else(|e| e.into_inner());
    let since = origin.since.load(Ordering::SeqCst);

    // Release. SAFETY: the thread is paused in this host call and the
    // other writers of its memory (merges of threads it started) wait for
    // the lock held above.
    let bytes = unsafe { snapshot::shared_bytes(&memory.memory) };
    // Only the pages written since the last look (the restore or the last
    // sync point) can differ from the snapshot; untracked, every page.
    let written = memory
        .writes
        .get()
        .and_then(|tracker| incremental::written(tracker, &memory.memory));
    let diff = weft_snapshot::Diff::between(&snapshot, bytes, written.as_deref(), &[]);
    if !diff.runs.is_empty() {
        let home = &main.memory;
        if (diff.memory_pages as u64) > home.size() {
            home.grow(diff.memory_pages as u64 - home.size())
                .map_err(|e| {
                    wasmtime::Error::msg(format!(
                        "thread {tid}: growing the main memory for a sync point: {e:#}"
                    ))
                })?;
        }
        let data = home.data();
        // SAFETY: merges into the main memory are serialised by its merge
        // lock; the main thread may run meanwhile, and the merge's byte
        // writes are what another thread's stores would be to it.
        let base = unsafe {
            std::slice::from_raw_parts_mut(data.as_ptr().cast::<u8>().cast_mut(), data.len())
        };
        let conflicts = Merger::with_log(&snapshot, &mut merges.log, since)
            .merge(base, &diff, tid)
            .map_err(|e| {
                wasmtime::Error::msg(format!("thread {tid}: merging at a sync point: {e}"))
            })?;
        if !conflicts.is_empty() {
            report_conflicts(
                tid,
                &conflicts,
                &chain.symbols,
                process.config().on_conflict,
            );
        }
        published.memory_pages = published.memory_pages.max(diff.memory_pages);
        chain.published_changed();
        snapshot.memory_pages = snapshot.memory_pages.max(diff.memory_pages);
        for run in &diff.runs {
            published.write_bytes(run.addr, &run.bytes);
            // Its next diff does not carry these again.
            snapshot.write_bytes(run.addr, &run.bytes);
        }
    }
    // The operation, on the main memory and what threads pull from it.
    let result = match atomic {
        Some(op) => {
            let (result, store) = apply_atomic(&main.memory, &op)
                .map_err(|e| wasmtime::Error::msg(format!("thread {tid}: {e:#}")))?;
            if let Some(new) = store {
                published.write_bytes(op.addr, &new.to_le_bytes()[..op.bytes as usize]);
                chain.published_changed();
            }
            Some(result)
        }
        None => None,
    };
    if !pull {
        return Ok(result);
    }

    // Acquire.
    let mut next = published.clone();
    next.globals = std::mem::take(&mut snapshot.globals);
    next.regions = std::mem::take(&mut snapshot.regions);
    let entry = snapshot.read_bytes::<16>(chain.entry).unwrap_or_default();
    next.write_bytes(chain.entry, &entry);
    if (next.memory_pages as u64) > memory.memory.size() {
        memory
            .memory
            .grow(next.memory_pages as u64 - memory.memory.size())
            .map_err(|e| {
                wasmtime::Error::msg(format!(
                    "thread {tid}: growing its memory at a sync point: {e:#}"
                ))
            })?;
    }
    let own = memory.memory.data();
    let zero = [0u8; weft_snapshot::PAGE_SIZE];
    for index in snapshot.changed_pages(&next) {
        let start = index as usize * weft_snapshot::PAGE_SIZE;
        if start + weft_snapshot::PAGE_SIZE > own.len() {
            continue;
        }
        let page = next.page(index).unwrap_or(&zero);
        // SAFETY: in bounds (checked above); the thread is paused and the
        // other writers of its memory wait for its merge lock.
        unsafe {
            std::ptr::copy_nonoverlapping(
                page.as_ptr(),
                own[start..].as_ptr().cast::<u8>().cast_mut(),
                weft_snapshot::PAGE_SIZE,
            )
        };
    }
    *snapshot = next;
    origin.since.store(merges.log.seq(), Ordering::SeqCst);
    origin
        .published_seen
        .store(chain.published_seq.load(Ordering::SeqCst), Ordering::SeqCst);
    synchronised(origin);
    Ok(result)
}

/// Notes that a chained thread synchronised now.
fn synchronised(origin: &Origin) {
    *origin.last_sync.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
}

/// What an atomic load needs in chain mode: an acquire, unless home has
/// published nothing since this thread's last one (then the copy already
/// holds what an acquire would bring). A load is no release, so the
/// thread's own writes may wait for its next release. Returns whether it
/// synchronised; the main thread, on the home memory itself, never needs
/// to.
pub(crate) fn load_point(
    process: &Process,
    tid: u32,
    memory: Option<&Arc<ThreadMemory>>,
) -> wasmtime::Result<bool> {
    let (Some(chain), Some(origin)) = (support(process), memory.and_then(|m| m.origin.as_ref()))
    else {
        return Ok(false);
    };
    if chain.published_seq.load(Ordering::SeqCst) == origin.published_seen.load(Ordering::SeqCst) {
        synchronised(origin);
        return Ok(false);
    }
    // An acquire overwrites whole pages: the thread's writes on them go
    // home first.
    sync_point(process, tid, memory, true)?;
    Ok(true)
}
