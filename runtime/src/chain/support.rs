//! What chain mode knows of a program and keeps for it (`ChainSupport`):
//! libweft's addresses, the memory pool, the arena zone, the home's
//! synchronisation table and published image; and conflict reports.

use crate::locks::Locked as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::{MemoryType, SharedMemory};
use weft_snapshot::{Snapshot, WASM_PAGE_SIZE};

use crate::incremental::{self, ChildMemory, MemoryImage};
use crate::outcome::Outcome;
use crate::process::{Process, ThreadMemory, ThreadState};
use crate::snapshot::{self, SnapshotLayout};
use crate::start::ConflictPolicy;
use crate::symbols::DataSymbols;
use crate::zone::Zone;

/// Child memories kept for reuse: a recycled memory is already faulted in,
/// so restoring into it costs copies, not page faults.
/// Offsets in wasi-libc's `struct start_args` (wasm32).
pub(super) const ARGS_START_FUNC: u32 = 8;
pub(super) const ARGS_START_ARG: u32 = 12;

pub(super) const POOLED_MEMORIES: usize = 8;

/// A pooled child memory with the store and instance its last thread ran
/// in.
pub(super) type PooledMemory = ChildMemory<(wasmtime::Store<ThreadState>, wasmtime::Instance)>;

/// What chain mode needs to know about a module, and its memory pool.
#[derive(Debug)]
pub(crate) struct ChainSupport {
    pub(super) layout: SnapshotLayout,
    pub(super) symbols: DataSymbols,
    /// Address of libc's `__thread_list_lock`.
    pub(super) thread_list_lock: u32,
    /// Address of libweft's `weft_chain_entry` (start routine, argument).
    pub(super) entry: u32,
    /// Address of libweft's `weft_chain_functions` (trampoline, identity).
    pub(super) functions: u32,
    /// Address of libweft's `weft_chain_heap_active` flag.
    pub(super) heap_active: u32,
    /// Address of libweft's `weft_heap_grow_lock`.
    pub(super) heap_grow_lock: u32,
    pub(super) memory_max_pages: u32,
    /// The module's wasm, for hosts that run this program's threads.
    pub(super) module_bytes: Arc<[u8]>,
    /// Start routines (function table indices) whose threads made a host
    /// call only home serves: later ones run at home from the start.
    pub(super) home_only: Mutex<std::collections::HashSet<u32>>,
    pub(super) memories: Mutex<Vec<PooledMemory>>,
    pub(super) zone: Mutex<Zone>,
    /// Locks, condition variables and barriers shared by every copy.
    pub(super) sync: crate::sync::SyncTable,
    /// The main memory as chained threads see it at an acquire (see
    /// [`sync_point`]); made at the first sync point.
    pub(super) published: Mutex<Option<Snapshot>>,
    /// Bumped at every change of `published`, under its lock.
    pub(super) published_seq: std::sync::atomic::AtomicU64,
    /// Whether parents keep running images (write tracking works here).
    pub(super) incremental: AtomicBool,
    /// Chained threads running at home, for the stall watch.
    pub(super) running: Mutex<std::collections::HashMap<u32, std::sync::Weak<ThreadMemory>>>,
    /// Whether the stall watch runs.
    pub(super) watching: std::sync::Once,
    /// Whether the stall watch named threads that spin together.
    pub(super) all_quiet_warned: AtomicBool,
    /// A scratch chunk kept for calls at home (`at_home`) once one was
    /// taken: a join or detach then always finds room, even when the
    /// program's heaps have filled the memory.
    pub(super) scratch_reserve: Mutex<Option<(u32, u32)>>,
}

impl ChainSupport {
    /// A memory for a child of `pages` wasm pages: a recycled one no larger,
    /// or a new one.
    /// Lazily filled (`lazy`) at its first restore when it is new.
    pub(super) fn memory(
        &self,
        engine: &wasmtime::Engine,
        pages: u32,
        lazy: bool,
    ) -> wasmtime::Result<PooledMemory> {
        let mut pool = self.memories.locked();
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
    pub(super) fn recycle(&self, thread_memory: Arc<ThreadMemory>, mut child: PooledMemory) {
        let Ok(thread_memory) = Arc::try_unwrap(thread_memory) else {
            return;
        };
        if let Some(origin) = &thread_memory.origin {
            child.settle(&origin.snapshot.locked());
        }
        drop(thread_memory);
        let mut pool = self.memories.locked();
        // An ended program's memories are not kept (their stores refer
        // back to the process).
        if pool.len() < POOLED_MEMORIES && !self.sync.is_closed() {
            pool.push(child);
        }
    }

    /// Bytes of the warm memories kept for reuse.
    pub(crate) fn pooled_bytes(&self) -> u64 {
        let pool = self.memories.locked();
        pool.iter().map(|m| m.memory.data_size() as u64).sum()
    }

    /// Lets the warm memories go (a worker over its memory budget).
    pub(crate) fn drop_pooled(&self) {
        let pooled = std::mem::take(&mut *self.memories.locked());
        // Unmapping takes a while: not under the pool's lock.
        drop(pooled);
    }

    /// The main memory as it is now, without globals or regions (the
    /// caller holds its merge lock).
    /// Notes a change of `published` (its lock held).
    pub(super) fn published_changed(&self) {
        self.published_seq.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn image_of_main(&self, main: &ThreadMemory) -> Snapshot {
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
    pub(super) fn snapshot_from_image(&self, parent: &ThreadMemory) -> Option<Snapshot> {
        if !self.incremental.load(Ordering::Relaxed) {
            return None;
        }
        let mut image = parent.image.locked();
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
            heap_grow_lock: find("weft_heap_grow_lock")?,
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
            all_quiet_warned: AtomicBool::new(false),
            scratch_reserve: Mutex::new(None),
            // Off: every snapshot, restore and diff copies or compares
            // whole memories (for comparing the two ways).
            incremental: AtomicBool::new(
                std::env::var_os("WEFT_WRITE_TRACKING").is_none_or(|v| v != "off"),
            ),
        })
    }
}

/// The chain support of a process in chain mode.
pub(crate) fn support(process: &Process) -> Option<&ChainSupport> {
    let chaining: &dyn std::any::Any = process.chaining()?;
    chaining.downcast_ref()
}

/// Chain mode cannot run a module without libweft's symbols.
#[derive(Debug, thiserror::Error)]
#[error(
    "the module has no symbol `{0}`: chain mode needs a guest linked with libweft and its symbol table: C built with weft-cc, Rust built with RUSTFLAGS=\"$(weft-cc --rustflags)\""
)]
pub struct MissingSymbol(&'static str);

/// Wasm pages a memory needs to hold `end` bytes.
pub(super) fn pages_to_reach(end: u64) -> u32 {
    end.div_ceil(WASM_PAGE_SIZE) as u32
}

/// Reports `conflicts` of thread `tid` on stderr; under
/// [`ConflictPolicy::Error`] the program then ends. True when it did.
pub(super) fn report_conflicts(
    process: &Process,
    tid: u32,
    conflicts: &[weft_snapshot::Conflict],
    symbols: &DataSymbols,
) -> bool {
    let policy = process.config().on_conflict;
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
    let zone = support(process).map(|chain| chain.zone.locked());
    for conflict in conflicts.iter().take(20) {
        let arena = zone.as_ref().and_then(|zone| zone.arena_of(conflict.addr));
        let _ = writeln!(
            err,
            "weft:   {}",
            snapshot::describe_conflict_in(conflict, symbols, arena)
        );
    }
    drop(zone);
    if conflicts.len() > 20 {
        let _ = writeln!(err, "weft:   ... and {} more", conflicts.len() - 20);
    }
    drop(err);
    if policy == ConflictPolicy::Error {
        let _ = writeln!(
            std::io::stderr(),
            "weft: threads wrote the same memory without a merge region; ending the program (use --on-conflict=warn to continue)"
        );
        process.end(Outcome::Conflict {
            thread: tid,
            conflicts: conflicts.len(),
        });
        return true;
    }
    false
}

/// Chain mode's synchronisation objects (home's; see [`crate::sync`]).
pub(crate) fn sync_table(process: &Process) -> Option<&crate::sync::SyncTable> {
    support(process).map(|chain| &chain.sync)
}
