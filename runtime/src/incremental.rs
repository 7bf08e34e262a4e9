//! Incremental snapshots for chain mode: costs that follow what was written
//! rather than how much memory a program uses.
//!
//! - A parent memory keeps a running image ([`MemoryImage`]): a snapshot of
//!   its pages, brought up to date at each spawn with the pages written
//!   since the last one (the kernel tracks writes, see
//!   [`touched::WriteTracker`]). A child's snapshot is a copy of the image,
//!   which shares its pages ([`weft_snapshot::Snapshot`] is persistent).
//! - A child memory from the pool ([`ChildMemory`]) remembers the snapshot it
//!   was restored from and the pages its thread wrote, so restoring the next
//!   snapshot rewrites only the pages where the two snapshots differ (found
//!   by page identity) and the pages written in between.
//! - A child's diff compares only the pages its thread wrote.
//! - A new child memory at home is restored lazily when the kernel allows
//!   ([`touched::LazyFill`]): pages come in from the snapshot when first
//!   touched, so a thread costs the memory it touches.
//!
//! Without write tracking (an older kernel, no userfaultfd rights) every
//! step falls back to the full copy and compare of `snapshot.rs`.

use std::sync::Arc;

use wasmtime::SharedMemory;
use weft_snapshot::{ModuleHash, PAGE_SIZE, Snapshot, WASM_PAGE_SIZE};

use crate::snapshot::{self, RestoreError};
use crate::touched::{self, WriteTracker};

/// The whole address range a memory may grow into (tracked from the start,
/// so growth needs no new registration).
fn reservation(memory: &SharedMemory) -> (*const u8, usize) {
    let max_pages = memory.ty().maximum().unwrap_or(memory.ty().minimum());
    let len = (max_pages * WASM_PAGE_SIZE).max(memory.data().len() as u64) as usize;
    (memory.data().as_ptr().cast::<u8>(), len)
}

fn tracker_for(memory: &SharedMemory) -> Option<WriteTracker> {
    let (base, len) = reservation(memory);
    touched::advise_no_huge_pages(base, len);
    WriteTracker::new(base, len)
}

/// Prepares a new memory for chain mode, before anything is written to it:
/// huge pages would make write tracking count 2 MiB for every write.
pub(crate) fn prepare_memory(memory: &SharedMemory) {
    let (base, len) = reservation(memory);
    touched::advise_no_huge_pages(base, len);
}

/// The pages of `memory` written since the tracker last looked.
pub(crate) fn written(tracker: &WriteTracker, memory: &SharedMemory) -> Option<Vec<u32>> {
    tracker.take_written(memory.data().len(), PAGE_SIZE)
}

/// Page `index` of `memory`, read with volatile loads (other threads may
/// write it meanwhile; what was written after the tracker looked is picked
/// up at the next look).
fn read_page(memory: &SharedMemory, index: u32) -> Option<[u8; PAGE_SIZE]> {
    let start = index as usize * PAGE_SIZE;
    let cells = memory.data().get(start..start + PAGE_SIZE)?;
    let mut page = [0u8; PAGE_SIZE];
    // SAFETY: in bounds; a plain copy out of shared guest memory.
    unsafe {
        std::ptr::copy_nonoverlapping(cells.as_ptr().cast::<u8>(), page.as_mut_ptr(), PAGE_SIZE)
    };
    Some(page)
}

fn is_zero(page: &[u8; PAGE_SIZE]) -> bool {
    page.chunks_exact(8)
        .all(|word| u64::from_ne_bytes(word.try_into().expect("8 bytes")) == 0)
}

/// A parent memory's running image.
#[derive(Debug)]
pub(crate) struct MemoryImage {
    tracker: WriteTracker,
    image: Snapshot,
}

impl MemoryImage {
    /// Starts tracking `memory` and copies its pages once. `None` without
    /// write tracking.
    pub(crate) fn new(memory: &SharedMemory, module: ModuleHash) -> Option<Self> {
        // Tracking first: whatever is written during the copy is copied
        // again at the first update.
        let tracker = tracker_for(memory)?;
        let pages = snapshot::candidate_pages(memory)
            .unwrap_or_else(|| (0..(memory.data().len() / PAGE_SIZE) as u32).collect());
        let mut image = Self {
            tracker,
            image: Snapshot::from_pages(module, 0, Vec::new(), Vec::new(), Vec::new()),
        };
        image.image.memory_pages = (memory.data().len() as u64 / WASM_PAGE_SIZE) as u32;
        image.copy_pages(memory, &pages);
        Some(image)
    }

    fn copy_pages(&mut self, memory: &SharedMemory, pages: &[u32]) {
        for &index in pages {
            match read_page(memory, index) {
                Some(page) if !is_zero(&page) => self.image.set_page(index, Some(&page)),
                _ => self.image.set_page(index, None),
            }
        }
    }

    /// Brings the image up to date with `memory`, and returns a snapshot of
    /// it (a cheap copy). `None` if the kernel stopped answering; the caller
    /// then drops the image.
    pub(crate) fn snapshot(&mut self, memory: &SharedMemory) -> Option<Snapshot> {
        let pages = written(&self.tracker, memory)?;
        self.image.memory_pages = (memory.data().len() as u64 / WASM_PAGE_SIZE) as u32;
        self.copy_pages(memory, &pages);
        Some(self.image.clone())
    }

    /// The memory's bytes at `start..start + len` were zeroed behind the
    /// tracker's back (dropped pages need not count as written).
    pub(crate) fn zero_range(&mut self, start: u32, len: u32) {
        self.image.zero_range(start, len);
    }
}

/// A memory a chained thread runs on, kept for the next thread with what
/// the last thread ran in (`C`: its store and instance, which this module
/// does not look into).
pub(crate) struct ChildMemory<C> {
    pub(crate) memory: SharedMemory,
    /// Shared with the thread's sync points, which look at it too.
    tracker: Option<Arc<WriteTracker>>,
    /// What the memory holds, apart from the pages in `written`.
    holds: Option<Snapshot>,
    written: Vec<u32>,
    /// Whether to track writes (when the kernel allows).
    track: bool,
    /// The instance the last thread ran in, kept with its memory: the next
    /// thread restores its globals instead of instantiating anew.
    pub(crate) instance: Option<C>,
    /// Fills the pages no thread touched yet, from the snapshot the first
    /// one was restored from; shared with the memory's `ThreadMemory`, so
    /// it lives while anything may touch the memory.
    lazy: Option<Arc<touched::LazyFill>>,
    /// Whether a first restore may be lazy.
    lazy_allowed: bool,
}

impl<C> std::fmt::Debug for ChildMemory<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildMemory")
            .field("pages", &self.memory.size())
            .field("tracked", &self.tracker.is_some())
            .field("instance", &self.instance.is_some())
            .finish_non_exhaustive()
    }
}

impl<C> ChildMemory<C> {
    /// A memory for chained threads; `track`: track writes when the kernel
    /// allows; `lazy`: restore the first snapshot lazily when it can.
    pub(crate) fn new(memory: SharedMemory, track: bool, lazy: bool) -> Self {
        Self {
            memory,
            tracker: None,
            holds: None,
            written: Vec::new(),
            track,
            instance: None,
            lazy: None,
            lazy_allowed: lazy,
        }
    }

    /// Makes the memory equal to `snapshot` and starts tracking writes.
    pub(crate) fn restore(&mut self, snapshot: &Snapshot) -> Result<(), RestoreError> {
        let incremental = match (&self.tracker, self.holds.take()) {
            (Some(_), Some(held)) if held.module == snapshot.module => Some(held),
            _ => None,
        };
        match incremental {
            Some(held) => {
                // The pages rewritten here count as written by the thread
                // too: its diff compares them, finds them equal, and the
                // tracker's look then protects them again. One look (one
                // TLB flush) is cheaper than protecting them now.
                self.restore_changes(&held, snapshot)?;
            }
            None if self.restore_lazily(snapshot)? => {}
            None => {
                snapshot::restore_memory_with(
                    &self.memory,
                    snapshot.module,
                    &snapshot.view(),
                    false,
                )?;
                match &self.tracker {
                    // The restore's own writes are not the thread's.
                    Some(tracker) if written(tracker, &self.memory).is_none() => {
                        self.tracker = None;
                    }
                    Some(_) => {}
                    None if self.track => self.tracker = tracker_for(&self.memory).map(Arc::new),
                    None => {}
                }
            }
        }
        // What the memory holds is recorded when it goes back to the pool
        // (`settle`), from the snapshot as later adjusted.
        self.written.clear();
        Ok(())
    }

    /// A fresh memory that will be tracked takes `snapshot` lazily: each
    /// page is filled from it when first touched (by the thread, or by the
    /// host reading the memory), so the memory costs what the thread
    /// touches. `false` when it cannot (a used memory, no tracking, the
    /// kernel or rights do not allow it, `WEFT_LAZY_RESTORE=off`): the
    /// caller copies the whole snapshot.
    fn restore_lazily(&mut self, snapshot: &Snapshot) -> Result<bool, RestoreError> {
        if !self.track
            || !self.lazy_allowed
            || self.tracker.is_some()
            || self.lazy.is_some()
            || self.memory.size() != 0
                && touched::present_pages(
                    self.memory.data().as_ptr().cast(),
                    self.memory.data().len(),
                    PAGE_SIZE,
                )
                .is_none_or(|pages| !pages.is_empty())
            || std::env::var_os("WEFT_LAZY_RESTORE").is_some_and(|v| v == "off")
        {
            return Ok(false);
        }
        let max_pages = self
            .memory
            .ty()
            .maximum()
            .unwrap_or(self.memory.ty().minimum());
        snapshot.check_target(snapshot.module, max_pages.min(u32::MAX as u64) as u32)?;
        self.grow_to(snapshot.memory_pages)?;
        let (base, len) = reservation(&self.memory);
        let Some(lazy) = touched::LazyFill::new(base, len, page_source(snapshot.clone())) else {
            tracing::debug!("no lazy restore: the kernel or the process's rights do not allow it");
            return Ok(false);
        };
        let Some(tracker) = lazy.tracker() else {
            return Ok(false);
        };
        self.tracker = Some(Arc::new(tracker));
        self.lazy = Some(Arc::new(lazy));
        Ok(true)
    }

    /// Grows the memory to `pages` wasm pages; larger already is an error
    /// (a snapshot never shrinks a memory).
    fn grow_to(&self, pages: u32) -> Result<(), RestoreError> {
        let have = self.memory.size();
        if have > pages as u64 {
            return Err(RestoreError::MemoryNotFresh {
                pages: have,
                expected: pages,
            });
        }
        if have < pages as u64 {
            self.memory
                .grow(pages as u64 - have)
                .map_err(|e| RestoreError::Grow {
                    pages,
                    error: format!("{e:#}"),
                })?;
        }
        Ok(())
    }

    /// What fills the memory's untouched pages, if it was restored lazily.
    pub(crate) fn lazy_fill(&self) -> Option<Arc<touched::LazyFill>> {
        self.lazy.clone()
    }

    /// Rewrites the pages where the memory may differ from `snapshot`
    /// (a lazily filled memory rewrites only those it holds: the others
    /// come from `snapshot` when touched).
    fn restore_changes(
        &mut self,
        held: &Snapshot,
        snapshot: &Snapshot,
    ) -> Result<(), RestoreError> {
        self.grow_to(snapshot.memory_pages)?;
        let mut pages = held.changed_pages(snapshot);
        pages.append(&mut self.written);
        pages.sort_unstable();
        pages.dedup();
        if let Some(lazy) = &self.lazy {
            // SAFETY: no thread runs on this memory now; every missing
            // page reads as `snapshot`, and the pages held are rewritten
            // to it (it held `held` outside those pages).
            unsafe { lazy.update_from(page_source(snapshot.clone()), &pages, PAGE_SIZE) };
            return Ok(());
        }
        let data = self.memory.data();
        let zero = [0u8; PAGE_SIZE];
        for index in pages {
            let start = index as usize * PAGE_SIZE;
            let Some(cells) = data.get(start..start + PAGE_SIZE) else {
                continue; // beyond the memory: zero already
            };
            let page = snapshot.page(index).unwrap_or(&zero);
            // SAFETY: in bounds; no thread runs on this memory now.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    page.as_ptr(),
                    cells.as_ptr().cast::<u8>().cast_mut(),
                    PAGE_SIZE,
                )
            };
        }
        Ok(())
    }

    /// The tracker of the memory's writes, for the sync points of the
    /// thread that runs on it: a look there takes what was written since
    /// the last look. (The memory then equals the thread's updated
    /// snapshot on every page written before it, so the pages a sync point
    /// saw need not be rewritten when the memory is reused.)
    pub(crate) fn tracker(&self) -> Option<Arc<WriteTracker>> {
        self.tracker.clone()
    }

    /// The pages the thread may have written since the restore or its last
    /// sync point (`None`: not tracked, compare every present page).
    pub(crate) fn take_written(&mut self) -> Option<Vec<u32>> {
        let pages = written(self.tracker.as_ref()?, &self.memory)?;
        self.written.extend_from_slice(&pages);
        Some(pages)
    }

    /// Before the memory goes back to the pool: what it holds now, apart
    /// from the pages written (`snapshot` is the one it was restored from,
    /// with any later adjustments such as zeroed arena chunks).
    pub(crate) fn settle(&mut self, snapshot: &Snapshot) {
        // Nothing writes the memory after its thread's diff looked.
        if self.tracker.is_some() {
            self.holds = Some(snapshot.clone());
        }
    }
}

/// What a lazily filled memory's missing pages read as: `snapshot`'s
/// pages (zero where it has none).
pub(crate) fn page_source(snapshot: Snapshot) -> touched::PageSource {
    Box::new(move |offset, page| {
        match u32::try_from(offset / PAGE_SIZE)
            .ok()
            .and_then(|i| snapshot.page(i))
        {
            Some(bytes) => page.copy_from_slice(&bytes[..page.len().min(PAGE_SIZE)]),
            None => page.fill(0),
        }
    })
}

/// Brings a lazily filled thread memory from `held` to `next` (both
/// copies of one image, so they differ only where their pages are not
/// shared): of the pages whose bytes changed, those the memory holds are
/// rewritten, the others fill from `next` when touched. An acquire then
/// costs the thread what it reads of the others' writes, not all of them.
///
/// # Safety
/// Nothing runs on the memory, and it holds `held` on every page it has
/// not written since its write tracker last looked (so those pages can be
/// left alone).
pub(crate) unsafe fn refill(lazy: &touched::LazyFill, held: &Snapshot, next: &Snapshot) {
    let zero = [0u8; PAGE_SIZE];
    let pages: Vec<u32> = held
        .changed_pages(next)
        .into_iter()
        // Pages the thread itself just released differ by identity only:
        // keeping them spares it a fault when it touches them again.
        .filter(|&i| held.page(i).unwrap_or(&zero) != next.page(i).unwrap_or(&zero))
        .collect();
    // SAFETY: forwarded to the caller; every missing page reads as `next`
    // from now on, and the pages held are rewritten to it.
    unsafe { lazy.update_from(page_source(next.clone()), &pages, PAGE_SIZE) };
}

/// Releases of at least this many pages leave the thread's memory once
/// home has them: large writes are seldom all read again by their writer
/// soon, and a thread that keeps them would hold a copy of everything it
/// ever wrote. Smaller releases (a stack page, a counter) stay, so a
/// thread that synchronises often does not fault them in again each time.
pub(crate) const DOWNGRADE_PAGES: usize = 64;

/// After a release of `diff` from a lazily filled thread memory, whose
/// snapshot now holds those writes: if the release is large (see
/// [`DOWNGRADE_PAGES`]), its pages are dropped from the memory and fill
/// from `snapshot` when touched again. The thread then costs what it is
/// working on, not what it has written.
///
/// # Safety
/// Nothing runs on the memory, and it equals `snapshot` on every page
/// (what the thread wrote went into `snapshot` with this release; the
/// lazy fill keeps the rest equal to it).
pub(crate) unsafe fn downgrade(
    lazy: &touched::LazyFill,
    snapshot: &Snapshot,
    diff: &weft_snapshot::Diff,
) {
    let mut pages: Vec<u32> = Vec::new();
    for run in &diff.runs {
        if run.bytes.is_empty() {
            continue;
        }
        let first = run.addr / PAGE_SIZE as u32;
        let last = ((run.end() - 1) / PAGE_SIZE as u64) as u32;
        for page in first..=last {
            if pages.last() != Some(&page) {
                pages.push(page);
            }
        }
    }
    if pages.len() < DOWNGRADE_PAGES {
        return;
    }
    // SAFETY: forwarded to the caller: the memory reads as `snapshot`
    // everywhere, on the pages dropped and on the missing ones.
    unsafe { lazy.refill_from(page_source(snapshot.clone()), &pages, PAGE_SIZE) };
}

/// Zeroes `len` bytes at `start` of `memory` (in bounds only).
pub(crate) fn zero_memory(memory: &SharedMemory, start: u32, len: u32) {
    let data = memory.data();
    let from = (start as usize).min(data.len());
    let n = (len as usize).min(data.len() - from);
    // SAFETY: in bounds of the memory's mapping. Callers zero ranges no
    // thread uses.
    unsafe { touched::zero(data.as_ptr().cast::<u8>().cast_mut().add(from), n) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::MemoryType;

    /// Writes `byte` at `addr` of `memory`.
    fn poke(memory: &SharedMemory, addr: usize, byte: u8) {
        // SAFETY: in bounds (the slice index checks it); nothing else runs.
        unsafe { memory.data()[addr].get().write(byte) };
    }

    fn bytes(memory: &SharedMemory, len: usize) -> Vec<u8> {
        memory.data()[..len]
            .iter()
            // SAFETY: as in `poke`.
            .map(|cell| unsafe { cell.get().read() })
            .collect()
    }

    #[test]
    fn incremental_snapshots_and_restores_match_full_copies() {
        let engine = crate::engine::engine().unwrap();
        let shared = |pages| SharedMemory::new(&engine, MemoryType::shared(pages, 64)).unwrap();
        let parent = shared(4);
        prepare_memory(&parent);
        let module = ModuleHash::of(b"module");
        let Some(mut image) = MemoryImage::new(&parent, module) else {
            eprintln!("no write tracking here: nothing to test");
            return;
        };
        let mut child = ChildMemory::<()>::new(shared(1), true, true);
        let mut seed = 0x2545_f491_u32;
        let mut next = |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % below
        };
        for round in 0..24 {
            for _ in 0..next(40) {
                let len = parent.data().len();
                poke(&parent, next(len), next(256) as u8);
            }
            if round % 5 == 2 {
                parent.grow(1).unwrap();
            }
            if round % 7 == 4 {
                // Dropped pages read as zero; the image must follow.
                zero_memory(&parent, PAGE_SIZE as u32 * 3, PAGE_SIZE as u32 * 9);
                image.zero_range(PAGE_SIZE as u32 * 3, PAGE_SIZE as u32 * 9);
            }
            let snapshot = image.snapshot(&parent).unwrap();
            let len = parent.data().len();
            assert_eq!(snapshot.memory_len(), len);
            assert_eq!(
                snapshot.to_memory(),
                bytes(&parent, len),
                "round {round}: image"
            );

            child.restore(&snapshot).unwrap();
            assert_eq!(
                bytes(&child.memory, len),
                snapshot.to_memory(),
                "round {round}: restore"
            );
            let mut wrote = Vec::new();
            for _ in 0..next(6) {
                let at = next(len);
                poke(&child.memory, at, 1 + next(255) as u8);
                wrote.push((at / PAGE_SIZE) as u32);
            }
            let written = child.take_written().unwrap();
            for page in wrote {
                assert!(
                    written.contains(&page),
                    "round {round}: page {page} not seen"
                );
            }
            child.settle(&snapshot);
        }
    }
}
