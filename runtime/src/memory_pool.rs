//! Memories kept between calls of a function (local mode): each with the
//! module already linked to it (an `InstancePre`), so a call takes one,
//! instantiates its threads from it and gives it back when its process is
//! gone, wiped.
//!
//! A call must never see another's bytes. A memory goes back only when
//! every store that could reach it is gone (its process dropped), only if
//! it is still the size it was made with (a grown memory cannot shrink,
//! and wasi-libc's allocator would grow it again past what it left), and
//! only after every page that holds anything was zeroed: pages the kernel
//! reports present or swapped out in `/proc/self/pagemap` are set to zero
//! in place (they stay mapped, so the next call does not fault them in
//! again); the others read as zero already (anonymous memory never
//! written). The module's data segments are copied in again by its own
//! start-up (`__wasm_init_memory`, guarded by a flag that is zero again).
//! A memory whose pages cannot be read is dropped, never reused.

use crate::locks::Locked as _;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use wasmtime::{InstancePre, SharedMemory};

use crate::process::ThreadState;

/// A memory and the module linked to it.
pub(crate) struct Pooled {
    pub(crate) memory: SharedMemory,
    pub(crate) pre: InstancePre<ThreadState>,
}

/// The idle memories of one function.
pub(crate) struct MemoryPool {
    idle: Mutex<Vec<Pooled>>,
    max_idle: usize,
}

impl std::fmt::Debug for MemoryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryPool")
            .field("idle", &self.idle.locked().len())
            .field("max_idle", &self.max_idle)
            .finish()
    }
}

/// Memories taken from a pool, and made because none was idle.
static REUSED: AtomicU64 = AtomicU64::new(0);
static MADE: AtomicU64 = AtomicU64::new(0);
/// Memories given back and dropped instead (grown, unreadable, or the
/// pool full).
static DISCARDED: AtomicU64 = AtomicU64::new(0);
/// Bytes of the idle memories of every pool.
static IDLE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Bytes of idle memories one pool keeps at most: a memory is kept whole
/// (its written pages stay mapped, zeroed), so this bounds what idle
/// memories cost.
pub const MAX_IDLE_BYTES: u64 = 256 << 20;

/// Counters of every pool of this OS process: memories reused, made anew,
/// discarded at the end of a call instead of kept, and the bytes kept idle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    pub reused: u64,
    pub made: u64,
    pub discarded: u64,
    pub idle_bytes: u64,
}

/// The counters now.
pub fn counts() -> PoolCounts {
    PoolCounts {
        reused: REUSED.load(Ordering::Relaxed),
        made: MADE.load(Ordering::Relaxed),
        discarded: DISCARDED.load(Ordering::Relaxed),
        idle_bytes: IDLE_BYTES.load(Ordering::Relaxed),
    }
}

/// Whether a memory of `size` bytes (`first_size` when made) given back
/// is kept beside `idle` memories of `idle_bytes`: still its first size,
/// and within the pool's count and bytes.
fn keeps(size: u64, first_size: u64, idle: usize, idle_bytes: u64, max_idle: usize) -> bool {
    size == first_size && idle < max_idle && idle_bytes.saturating_add(size) <= MAX_IDLE_BYTES
}

impl MemoryPool {
    pub(crate) fn new(max_idle: usize) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(Vec::new()),
            max_idle,
        })
    }

    /// An idle memory whose maximum is `max_pages` (a call's
    /// `--max-memory` is part of the memory's type), if one is kept.
    pub(crate) fn take(&self, max_pages: u64) -> Option<Pooled> {
        let mut idle = self.idle.locked();
        let at = idle
            .iter()
            .rposition(|p| p.memory.ty().maximum() == Some(max_pages))?;
        let pooled = idle.swap_remove(at);
        REUSED.fetch_add(1, Ordering::Relaxed);
        IDLE_BYTES.fetch_sub(pooled.memory.data_size() as u64, Ordering::Relaxed);
        Some(pooled)
    }

    /// Counts a memory made because none was idle.
    pub(crate) fn made(&self) {
        MADE.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps `pooled` for a later call if it is still its first size, the
    /// pool has room and it could be wiped; drops it otherwise. Only for a
    /// memory nothing else can reach (see [`Lease`]).
    fn give_back(&self, pooled: Pooled) {
        let size = pooled.memory.data_size() as u64;
        let first_size = pooled.memory.ty().minimum() * weft_snapshot::WASM_PAGE_SIZE;
        let room = |idle: &[Pooled]| {
            let idle_bytes = idle.iter().map(|p| p.memory.data_size() as u64).sum();
            keeps(size, first_size, idle.len(), idle_bytes, self.max_idle)
        };
        // Wiped outside the lock (it writes every page the call used).
        if room(&self.idle.locked()) && wipe(&pooled.memory).is_ok() {
            let mut idle = self.idle.locked();
            if room(&idle) {
                idle.push(pooled);
                IDLE_BYTES.fetch_add(size, Ordering::Relaxed);
                return;
            }
        }
        DISCARDED.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for MemoryPool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle.locked());
        let bytes: u64 = idle.iter().map(|p| p.memory.data_size() as u64).sum();
        IDLE_BYTES.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// A process's hold on a pooled memory: dropped with the process (after
/// every store of it, since each store holds the process), it gives the
/// memory back to its pool.
pub(crate) struct Lease {
    pool: Weak<MemoryPool>,
    pooled: Option<Pooled>,
}

impl Lease {
    pub(crate) fn new(pool: &Arc<MemoryPool>, pooled: Pooled) -> Self {
        Self {
            pool: Arc::downgrade(pool),
            pooled: Some(pooled),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(pool), Some(pooled)) = (self.pool.upgrade(), self.pooled.take()) {
            pool.give_back(pooled);
        }
    }
}

/// `/proc/self/pagemap`, opened once (`None` where it cannot be read).
fn pagemap() -> Option<&'static File> {
    static PAGEMAP: OnceLock<Option<File>> = OnceLock::new();
    PAGEMAP
        .get_or_init(|| File::open("/proc/self/pagemap").ok())
        .as_ref()
}

/// The host's page size.
fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system; no memory is touched.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// A pagemap entry's "present" and "swapped" bits (kernel
/// Documentation/admin-guide/mm/pagemap.rst): a page that may hold
/// something other than zeros.
const PAGE_PRESENT: u64 = 1 << 63;
const PAGE_SWAPPED: u64 = 1 << 62;

/// Sets every byte of `memory` to zero, writing only the pages that may
/// hold something.
fn wipe(memory: &SharedMemory) -> std::io::Result<()> {
    let pagemap = pagemap().ok_or_else(|| std::io::Error::other("no /proc/self/pagemap"))?;
    let data = memory.data();
    let (base, len) = (data.as_ptr() as usize, data.len());
    let page = page_size();
    if base % page != 0 || len % page != 0 {
        return Err(std::io::Error::other("memory not page-aligned"));
    }
    let pages = len / page;
    let mut entries = vec![0u8; pages * 8];
    let offset = (base / page) as u64 * 8;
    pagemap.read_exact_at(&mut entries, offset)?;
    for (i, entry) in entries.chunks_exact(8).enumerate() {
        let entry = u64::from_ne_bytes(entry.try_into().expect("8 bytes"));
        if entry & (PAGE_PRESENT | PAGE_SWAPPED) != 0 {
            // SAFETY: the page lies within the memory's accessible bytes
            // (`data()`), and nothing else reaches the memory now: the
            // process that ran on it is gone with all its stores, and the
            // pool hands it out only after this returns.
            unsafe { std::ptr::write_bytes((base + i * page) as *mut u8, 0, page) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_memories_of_their_first_size_are_kept_within_the_bounds() {
        let page = weft_snapshot::WASM_PAGE_SIZE;
        assert!(keeps(2 * page, 2 * page, 0, 0, 4));
        // Grown: its next call would grow it again past this one's heap.
        assert!(!keeps(3 * page, 2 * page, 0, 0, 4));
        // The pool's count, then its bytes.
        assert!(!keeps(2 * page, 2 * page, 4, 8 * page, 4));
        assert!(!keeps(2 * page, 2 * page, 0, 0, 0));
        assert!(keeps(page, page, 1, MAX_IDLE_BYTES - page, 4));
        assert!(!keeps(page, page, 1, MAX_IDLE_BYTES, 4));
    }

    #[test]
    fn a_wiped_memory_reads_zero_everywhere() {
        let mut config = wasmtime::Config::new();
        config.shared_memory(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let memory = SharedMemory::new(&engine, wasmtime::MemoryType::shared(4, 8)).unwrap();
        let data = memory.data();
        // Some pages written, one only read, the rest never touched.
        for at in [0, 70_000, 4 * 65536 - 1] {
            // SAFETY: in bounds; this test is the memory's only user.
            unsafe { *data[at].get() = 0xa5 };
        }
        // SAFETY: as above.
        let _ = unsafe { *data[150_000].get() };
        wipe(&memory).unwrap();
        // SAFETY: as above.
        assert!(data.iter().all(|b| unsafe { *b.get() } == 0));
    }
}
