//! Sync points of release consistency, and the atomics and loads chain
//! mode makes at home.

use crate::locks::Locked as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use wasmtime::SharedMemory;
use weft_snapshot::{Diff, Merger, Snapshot};

use super::support::{report_conflicts, support};
use crate::incremental;
use crate::process::{Origin, Process, ThreadMemory};
use crate::sync::HomeAtomic;

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
pub(super) fn apply_atomic(
    memory: &SharedMemory,
    op: &HomeAtomic,
) -> wasmtime::Result<(u64, Option<u64>)> {
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

pub(super) fn sync_point_with(
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
        let _merges = main.merges.locked();
        let result = atomic
            .map(|op| apply_atomic(&main.memory, &op).map(|(result, _)| result))
            .transpose()?;
        let image = chain.image_of_main(main);
        *chain.published.locked() = Some(image);
        chain.published_changed();
        return Ok(result);
    };
    let memory = memory.expect("a chained thread has a memory");
    // Lock order: the thread's own memory (merges of threads it started),
    // the main memory's, the published image, the thread's snapshot.
    let _own = memory.merges.locked();
    exchange(process, tid, origin, &mut Here(memory), pull, atomic)
}

/// A chained thread's copy of memory, as a sync point sees it.
pub(super) trait ThreadCopy {
    /// What the thread wrote since its last sync point, against
    /// `snapshot` (the copy of memory it started from, kept current at
    /// each sync point).
    fn released(&mut self, tid: u32, snapshot: &Snapshot) -> wasmtime::Result<Diff>;
    /// Brings the copy from `snapshot` to `next`.
    fn acquire(&mut self, tid: u32, snapshot: &Snapshot, next: &Snapshot) -> wasmtime::Result<()>;
    /// After a release of `diff`, which `snapshot` now holds: the copy may
    /// let go of what it released.
    fn released_home(&mut self, _snapshot: &Snapshot, _diff: &Diff) {}
}

/// A chained thread's memory on this host; the caller holds its merge
/// lock.
pub(super) struct Here<'a>(pub(super) &'a ThreadMemory);

impl ThreadCopy for Here<'_> {
    fn released(&mut self, _: u32, snapshot: &Snapshot) -> wasmtime::Result<Diff> {
        let memory = self.0;
        // SAFETY: the thread is paused in this host call and the other
        // writers of its memory (merges of threads it started) wait for
        // the merge lock the caller holds.
        let bytes = unsafe { crate::snapshot::shared_bytes(&memory.memory) };
        // Only the pages written since the last look (the restore or the
        // last sync point) can differ from the snapshot; untracked, every
        // page.
        let written = memory
            .writes
            .get()
            .and_then(|tracker| incremental::written(tracker, &memory.memory));
        Ok(Diff::between(snapshot, bytes, written.as_deref(), &[]))
    }

    fn released_home(&mut self, snapshot: &Snapshot, diff: &Diff) {
        if let Some(lazy) = self.0.lazy_fill.get() {
            // SAFETY: the thread is paused and the other writers of its
            // memory wait for its merge lock; the release made its memory
            // equal `snapshot` on the pages it wrote, and the lazy fill
            // keeps the others equal to it.
            unsafe { incremental::downgrade(lazy, snapshot, diff) };
        }
    }

    fn acquire(&mut self, tid: u32, snapshot: &Snapshot, next: &Snapshot) -> wasmtime::Result<()> {
        let memory = &self.0.memory;
        grow_to(memory, next.memory_pages).map_err(|e| {
            wasmtime::Error::msg(format!(
                "thread {tid}: growing its memory at a sync point: {e:#}"
            ))
        })?;
        if let Some(lazy) = self.0.lazy_fill.get() {
            // SAFETY: the thread is paused and the other writers of its
            // memory wait for its merge lock; its release just made its
            // memory equal `snapshot` on every page it wrote, and the
            // lazy fill keeps the others equal to it.
            unsafe { incremental::refill(lazy, snapshot, next) };
            return Ok(());
        }
        let own = memory.data();
        let zero = [0u8; weft_snapshot::PAGE_SIZE];
        for index in snapshot.changed_pages(next) {
            let start = index as usize * weft_snapshot::PAGE_SIZE;
            if start + weft_snapshot::PAGE_SIZE > own.len() {
                continue;
            }
            let page = next.page(index).unwrap_or(&zero);
            // SAFETY: in bounds (checked above); the thread is paused and
            // the other writers of its memory wait for its merge lock.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    page.as_ptr(),
                    own[start..].as_ptr().cast::<u8>().cast_mut(),
                    weft_snapshot::PAGE_SIZE,
                )
            };
        }
        Ok(())
    }
}

/// Grows `memory` to at least `pages` wasm pages.
pub(super) fn grow_to(memory: &SharedMemory, pages: u32) -> wasmtime::Result<()> {
    if (pages as u64) > memory.size() {
        memory.grow(pages as u64 - memory.size())?;
    }
    Ok(())
}

/// A thread running on a peer, as its home sees it at one sync call: home
/// keeps a copy of the snapshot the peer's copy of memory is current to
/// (in `origin`); the call brings the thread's writes as a diff against
/// it, and the answer takes back what the thread's acquires bring.
pub(super) struct Away<'a> {
    pub(super) origin: &'a Origin,
    /// What the thread released with this call (taken by its first
    /// release).
    pub(super) released: Option<Diff>,
    /// What its acquires bring, in order.
    pub(super) updates: Vec<Diff>,
}

impl ThreadCopy for Away<'_> {
    fn released(&mut self, _: u32, snapshot: &Snapshot) -> wasmtime::Result<Diff> {
        Ok(self.released.take().unwrap_or_else(|| Diff {
            memory_pages: snapshot.memory_pages,
            ..Diff::default()
        }))
    }

    fn acquire(&mut self, _: u32, snapshot: &Snapshot, next: &Snapshot) -> wasmtime::Result<()> {
        self.updates.push(Diff::between_snapshots(snapshot, next));
        Ok(())
    }
}

impl Away<'_> {
    /// A sync point of the thread away from home (see [`sync_point`]).
    pub(super) fn sync_point(
        &mut self,
        process: &Process,
        tid: u32,
        pull: bool,
        atomic: Option<HomeAtomic>,
    ) -> wasmtime::Result<Option<u64>> {
        if support(process).is_none() || process.main_memory().is_none() {
            return Ok(None);
        }
        let origin = self.origin;
        exchange(process, tid, origin, self, pull, atomic)
    }

    /// An atomic load of the thread away from home (see [`load_point`]).
    pub(super) fn load_point(&mut self, process: &Process, tid: u32) -> wasmtime::Result<bool> {
        let Some(chain) = support(process) else {
            return Ok(false);
        };
        let seen = self.origin.published_seen.load(Ordering::SeqCst);
        let released = self.released.as_ref().is_some_and(|d| !d.runs.is_empty());
        if chain.published_seq.load(Ordering::SeqCst) == seen && !released {
            synchronised(self.origin);
            return Ok(false);
        }
        self.sync_point(process, tid, true, None)?;
        Ok(true)
    }
}

/// The release, the operation and the acquire of a chained thread's sync
/// point on the main memory; `copy` is the thread's memory, here or on a
/// peer.
fn exchange(
    process: &Process,
    tid: u32,
    origin: &Origin,
    copy: &mut dyn ThreadCopy,
    pull: bool,
    atomic: Option<HomeAtomic>,
) -> wasmtime::Result<Option<u64>> {
    let (Some(chain), Some(main)) = (support(process), process.main_memory()) else {
        return Ok(None);
    };
    if !Arc::ptr_eq(&origin.parent, main) {
        wasmtime::bail!(
            "thread {tid} synchronises with other threads, but it was started by a chained thread: in chain mode only threads that the main thread started can share locks, condition variables and barriers"
        );
    }
    let mut merges = main.merges.locked();
    let mut published = chain.published.locked();
    let published = published.get_or_insert_with(|| {
        chain.published_changed();
        chain.image_of_main(main)
    });
    let mut snapshot = origin.snapshot.locked();
    let since = origin.since.load(Ordering::SeqCst);

    // Release.
    let diff = copy.released(tid, &snapshot)?;
    if diff.memory_pages > chain.memory_max_pages {
        wasmtime::bail!(
            "thread {tid}: a sync point released {} wasm pages of memory, more than the module's maximum",
            diff.memory_pages
        );
    }
    if !diff.runs.is_empty() {
        let home = &main.memory;
        grow_to(home, diff.memory_pages).map_err(|e| {
            wasmtime::Error::msg(format!(
                "thread {tid}: growing the main memory for a sync point: {e:#}"
            ))
        })?;
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
        if !conflicts.is_empty() && report_conflicts(process, tid, &conflicts, &chain.symbols) {
            return Err(wasmtime::Error::new(crate::outcome::ProgramEnded));
        }
        published.memory_pages = published.memory_pages.max(diff.memory_pages);
        chain.published_changed();
        snapshot.memory_pages = snapshot.memory_pages.max(diff.memory_pages);
        for run in &diff.runs {
            published.write_bytes(run.addr, &run.bytes);
            // Its next diff does not carry these again.
            snapshot.write_bytes(run.addr, &run.bytes);
        }
        copy.released_home(&snapshot, &diff);
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
    if let Err(e) = copy.acquire(tid, &snapshot, &next) {
        // The copy did not move: it keeps its snapshot.
        snapshot.globals = std::mem::take(&mut next.globals);
        snapshot.regions = std::mem::take(&mut next.regions);
        return Err(e);
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
pub(super) fn synchronised(origin: &Origin) {
    *origin.last_sync.locked() = std::time::Instant::now();
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
