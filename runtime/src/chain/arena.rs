//! Heap arenas of chained threads: chunks of the arena zone, handed out
//! zero along the path their writes travel (see the module docs).

use crate::locks::Locked as _;
use std::sync::Arc;

use wasmtime::Caller;
use weft_snapshot::WASM_PAGE_SIZE;

use super::support::{ChainSupport, pages_to_reach, support};
use crate::incremental;
use crate::process::{Process, ThreadMemory, ThreadState};
use crate::zone;

/// The first chunk of a chained thread's heap arena; libweft asks for more
/// (`arena-grow`) when it is full.
pub(super) const FIRST_ARENA_CHUNK: u32 = 1 << 20;
/// The largest chunk one `arena-grow` may ask for.
pub(super) const MAX_ARENA_CHUNK: u32 = 1 << 30;

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
    #[error("libc's allocator held the heap lock for {0:?}")]
    HeapBusy(std::time::Duration),
    #[error("libweft's heap lock at {0:#x} is no aligned word of memory")]
    NoHeapLock(u32),
    #[error("asking home: {0}")]
    Home(#[from] crate::home::HomeError),
}

/// Hands out `len` bytes of the arena zone (rounded up to whole wasm
/// pages) for `arena`, or for a new arena when `None`; the range reads
/// zero in `path` and every memory and snapshot `path` came from. Returns
/// the range's start and length, and whether it held data before.
pub(super) fn allocate_chunk(
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
        let mut zone = chain.zone.locked();
        match zone.take(len, arena) {
            Some(taken) => taken,
            None => {
                let main = process.main_memory().ok_or(ArenaError::NoSharedMemory)?;
                let _held =
                    HeapLock::take(&main.memory, chain.heap_grow_lock, &|| process.is_ending())?;
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
        if let Some(published) = chain.published.locked().as_mut() {
            published.zero_range(taken.start, len);
            chain.published_changed();
        }
    }
    Ok((taken.start, len, taken.dirty))
}

/// Zeroes `len` bytes at `start` in `path`, the snapshot it was restored
/// from, its parent, and so on up to the main memory.
pub(super) fn zero_along(path: &Arc<ThreadMemory>, start: u32, len: u32) {
    let mut next = Some(path);
    while let Some(memory) = next {
        // The range belongs to a chunk being handed out: no thread uses it.
        incremental::zero_memory(&memory.memory, start, len);
        // Its previous owner's merges are history: a lineage older than
        // them that writes the range now is the new owner's.
        memory.merges.locked().log.forget(start, len);
        if let Some(image) = memory.image.locked().as_mut() {
            image.zero_range(start, len);
        }
        next = memory.origin.as_ref().map(|origin| {
            origin.snapshot.locked().zero_range(start, len);
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
                    chain.zone.locked().release(start).ok();
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

/// How long the host waits for libc's allocator to let go of the heap
/// lock (it holds it for one allocation).
const HEAP_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// libweft's `weft_heap_grow_lock`, held by the host while it grows the
/// main memory for the zone: libc's allocator takes memory in steps it
/// expects to be adjacent, under the same lock (see `arena.c`), so a
/// chunk is never grown between two of its steps and inside its heap.
struct HeapLock<'a> {
    word: &'a std::sync::atomic::AtomicU32,
    memory: &'a wasmtime::SharedMemory,
    addr: u32,
}

impl<'a> HeapLock<'a> {
    /// Waits for the lock (until `ending` says the program is over, or
    /// [`HEAP_LOCK_WAIT`]).
    fn take(
        memory: &'a wasmtime::SharedMemory,
        addr: u32,
        ending: &dyn Fn() -> bool,
    ) -> Result<Self, ArenaError> {
        use std::sync::atomic::Ordering;
        let data = memory.data();
        let start = addr as usize;
        let Some(cells) = data
            .get(start..start + 4)
            .filter(|_| addr.is_multiple_of(4))
        else {
            return Err(ArenaError::NoHeapLock(addr));
        };
        // SAFETY: four in-bounds bytes at a 4-aligned address (the memory's
        // base is page aligned), living as long as `memory`; guest atomics
        // on them are the same atomic operations, and the cells permit
        // shared mutation.
        let word = unsafe { &*cells.as_ptr().cast::<std::sync::atomic::AtomicU32>() };
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_micros(10);
        // Free is 0, held 1, held with waiters 2 (see `arena.c`): the host
        // only polls, so it never asks to be woken.
        while word
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            if ending() || started.elapsed() >= HEAP_LOCK_WAIT {
                return Err(ArenaError::HeapBusy(started.elapsed()));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(1));
        }
        Ok(Self { word, memory, addr })
    }
}

impl Drop for HeapLock<'_> {
    fn drop(&mut self) {
        if self.word.swap(0, std::sync::atomic::Ordering::Release) == 2 {
            // A guest thread waits for it.
            let _ = self.memory.atomic_notify(u64::from(self.addr), 1);
        }
    }
}

/// Grows a parent memory to `pages` for a merge; the main memory (whose
/// `heap_lock` is given) only under libweft's heap lock, as for the zone.
pub(super) fn grow_parent(
    memory: &wasmtime::SharedMemory,
    heap_lock: Option<u32>,
    pages: u32,
    ending: &dyn Fn() -> bool,
) -> Result<(), ArenaError> {
    let _held = heap_lock
        .map(|addr| HeapLock::take(memory, addr, ending))
        .transpose()?;
    let have = memory.size();
    if u64::from(pages) > have {
        memory
            .grow(u64::from(pages) - have)
            .map_err(|e| ArenaError::Full(format!("{e:#}")))?;
    }
    Ok(())
}

/// Grows `memory` (a thread's own) to reach the chunk at `start`.
pub(super) fn reach(memory: &ThreadMemory, start: u32, len: u32) -> Result<(), ArenaError> {
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
        .locked()
        .release(start)
        .map_err(|e| wasmtime::Error::msg(format!("weft:threads arena-release: {e}")))
}

/// `arena-lookup` (for home's own threads and for threads on peers): the
/// arena that heap address `addr` belongs to, or 0 for libc's heap. A
/// block of an arena whose chunks went back to the zone is a use after
/// free (a double free, or a block counted wrong), refused before the
/// guest's allocator takes it.
pub(crate) fn arena_of_checked(process: &Process, tid: u32, addr: u32) -> wasmtime::Result<u32> {
    let Some(chain) = support(process) else {
        return Ok(0);
    };
    let zone = chain.zone.locked();
    match zone.arena_of(addr) {
        Some(arena) => Ok(arena),
        None if zone.is_released(addr) => wasmtime::bail!(
            "thread {tid}: freeing {addr:#x}, a block of a heap arena that was given back"
        ),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    fn memory() -> wasmtime::SharedMemory {
        let mut config = wasmtime::Config::new();
        config.wasm_threads(true).shared_memory(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        wasmtime::SharedMemory::new(&engine, wasmtime::MemoryType::shared(1, 1)).unwrap()
    }

    fn word(memory: &wasmtime::SharedMemory, addr: usize) -> &AtomicU32 {
        let cells = &memory.data()[addr..addr + 4];
        // SAFETY: four aligned in-bounds bytes of a memory that outlives the
        // reference; only atomic operations touch them in this test.
        unsafe { &*cells.as_ptr().cast::<AtomicU32>() }
    }

    #[test]
    fn the_host_holds_the_heap_lock_only_once_the_guest_lets_go() {
        let memory = memory();
        let guest = word(&memory, 64);
        guest.store(1, Ordering::SeqCst);
        let released = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                released.store(true, Ordering::SeqCst);
                guest.store(0, Ordering::SeqCst);
            });
            let held = HeapLock::take(&memory, 64, &|| false).unwrap();
            assert!(
                released.load(Ordering::SeqCst),
                "taken while the guest held it"
            );
            assert_eq!(guest.load(Ordering::SeqCst), 1);
            drop(held);
        });
        assert_eq!(guest.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_guest_waiting_for_the_heap_lock_is_woken_when_the_host_lets_go() {
        let memory = memory();
        let held = HeapLock::take(&memory, 256, &|| false).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                // A guest's lock: marks the word contended, then waits.
                assert_eq!(word(&memory, 256).swap(2, Ordering::SeqCst), 1);
                memory
                    .atomic_wait32(256, 2, Some(std::time::Duration::from_secs(30)))
                    .unwrap()
            });
            while word(&memory, 256).load(Ordering::SeqCst) != 2 {
                std::thread::yield_now();
            }
            // Most likely asleep by now; if not, its wait sees the word
            // changed. Either way it must not sleep until its timeout.
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(held);
            assert_ne!(waiter.join().unwrap(), wasmtime::WaitResult::TimedOut);
        });
        assert_eq!(word(&memory, 256).load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_held_heap_lock_gives_way_to_the_program_end_and_a_bad_address_is_refused() {
        let memory = memory();
        word(&memory, 128).store(1, Ordering::SeqCst);
        assert!(matches!(
            HeapLock::take(&memory, 128, &|| true),
            Err(ArenaError::HeapBusy(_))
        ));
        assert_eq!(word(&memory, 128).load(Ordering::SeqCst), 1, "not taken");
        assert!(matches!(
            HeapLock::take(&memory, 130, &|| false),
            Err(ArenaError::NoHeapLock(130))
        ));
        assert!(matches!(
            HeapLock::take(&memory, 65_534, &|| false),
            Err(ArenaError::NoHeapLock(_))
        ));
    }
}
