//! Merging children's diffs into a base memory.
//!
//! Each child started from the same [`Snapshot`]. A byte a child changed is
//! a byte whose value in the child differs from the snapshot's. Outside any
//! merge region bytes merge bytewise: the child's value is written, and it
//! is a conflict when another child of the same merge also changed that
//! byte, or when the base no longer holds the snapshot's value there (the
//! parent changed it meanwhile). Conflicts are reported, never dropped: the
//! caller decides whether they fail the program. Merge regions give typed
//! elements an operation instead (sum, product, min, ...), which makes
//! concurrent updates of the same element well defined.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

pub use crate::region::{ElemType, MergeOp, MergeRegion};
use crate::{Diff, PAGE_SIZE, Snapshot};

/// Who changed the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictKind {
    /// Two diffs of the same merge changed these bytes (`first` merged
    /// earlier; `second` is the diff being merged).
    TwoWriters { first: u32, second: u32 },
    /// The base changed these bytes after the snapshot, and so did the
    /// diff `writer`.
    BaseChanged { writer: u32 },
    /// A product region's factor is not an exact integer (or the
    /// snapshot's value is 0 and the child's is not).
    InexactProduct { writer: u32 },
}

/// A range of bytes that more than one writer changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub addr: u32,
    pub len: u32,
    pub kind: ConflictKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("diff covers {needed} bytes of memory but the base has only {have}")]
    BaseTooSmall { needed: u64, have: u64 },
    #[error("diff run at {addr:#x} lies outside its own memory size")]
    RunOutOfBounds { addr: u32 },
}

/// Which merge last wrote each byte of a base memory: lets merges of
/// children that started from different snapshots of the same base find
/// each other's writes. Keep one per base memory.
///
/// Its size follows what was merged: 4 bytes for each byte a merge
/// changed, per 4 KiB page touched. A write only matters while some
/// thread that may still merge took its snapshot before it; threads
/// whose `since` the log watches ([`WriteLog::watch`]) let it forget the
/// writes older than all of them, so a program that synchronises often
/// keeps a small log however much it writes over its life.
#[derive(Debug, Default)]
pub struct WriteLog {
    seq: u32,
    /// Per page: the sequence number of the merge that last wrote each
    /// byte; 0 = none.
    owners: HashMap<u32, Box<[u32; PAGE_SIZE]>>,
    /// The writer of each merge, by sequence number (index 0: none).
    writers: Vec<u32>,
    /// The `since` of the threads that may still merge: each is the
    /// log's sequence number at that thread's latest snapshot.
    readers: Vec<Weak<AtomicU32>>,
    /// Pages held after the last pruning: the next one waits until the
    /// log doubles, so pruning costs no more than the merges that filled it.
    pruned_pages: usize,
    /// The merges the log forgot, up to this sequence number.
    forgotten: u32,
}

impl WriteLog {
    /// The sequence number of the latest merge. A snapshot taken now
    /// should remember it: later merges are the ones its child can
    /// conflict with.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Pages the log holds writers for.
    pub fn pages(&self) -> usize {
        self.owners.len()
    }

    /// Watches a thread's `since` (the sequence number its merges are
    /// checked from, updated at each of its sync points) for as long as
    /// the thread holds it. Once a log watches any thread, it forgets the
    /// writes older than every watched thread's `since` (and, with none
    /// alive, every write): watch every thread that merges into this log,
    /// or a merge could miss a conflict with a forgotten write.
    pub fn watch(&mut self, since: &Arc<AtomicU32>) {
        self.readers.push(Arc::downgrade(since));
    }

    /// Forgets the writes no watched thread can conflict with, when the
    /// log has doubled since it last did.
    fn prune(&mut self) {
        if self.readers.is_empty() || self.owners.len() < 2 * self.pruned_pages.max(16) {
            return;
        }
        let seq = self.seq;
        let mut oldest = seq;
        self.readers.retain(|reader| match reader.upgrade() {
            Some(since) => {
                oldest = oldest.min(since.load(Ordering::SeqCst));
                true
            }
            None => false,
        });
        if self.readers.is_empty() {
            // Keep watching: the next thread may start from a snapshot
            // older than what merges before then write.
            self.readers.push(Weak::new());
        }
        if oldest > self.forgotten {
            self.forget_up_to(oldest);
            self.forgotten = oldest;
            self.pruned_pages = self.owners.len();
        }
    }

    /// Forgets the writes of merges up to sequence number `oldest`.
    fn forget_up_to(&mut self, oldest: u32) {
        self.owners.retain(|_, page| {
            let mut kept = false;
            for owner in page.iter_mut() {
                if *owner <= oldest {
                    *owner = 0;
                } else {
                    kept = true;
                }
            }
            kept
        });
    }

    /// The writer of merge `seq`.
    fn writer(&self, seq: u32) -> u32 {
        self.writers.get(seq as usize).copied().unwrap_or(0)
    }

    /// Forgets who wrote `len` bytes at `addr`: the range was handed to a
    /// new owner (and zeroed), so a later merge that writes it does not
    /// conflict with its previous owner's merges.
    pub fn forget(&mut self, addr: u32, len: u32) {
        let end = addr as u64 + len as u64;
        let mut at = addr as u64;
        while at < end {
            let page = (at / PAGE_SIZE as u64) as u32;
            let from = (at % PAGE_SIZE as u64) as usize;
            let to = (end - page as u64 * PAGE_SIZE as u64).min(PAGE_SIZE as u64) as usize;
            if from == 0 && to == PAGE_SIZE {
                self.owners.remove(&page);
            } else if let Some(owners) = self.owners.get_mut(&page) {
                owners[from..to].fill(0);
            }
            at = (page as u64 + 1) * PAGE_SIZE as u64;
        }
    }
}

enum LogSlot<'a> {
    Owned(WriteLog),
    Borrowed(&'a mut WriteLog),
}

impl std::fmt::Debug for LogSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteLog")
    }
}

/// Merges diffs of children that started from `snapshot` into a base.
#[derive(Debug)]
pub struct Merger<'a> {
    snapshot: &'a Snapshot,
    log: LogSlot<'a>,
    /// Merges after this sequence number happened after the snapshot.
    since: u32,
}

impl<'a> Merger<'a> {
    /// A merger for children of one snapshot, merged one after another.
    pub fn new(snapshot: &'a Snapshot) -> Self {
        Self {
            snapshot,
            log: LogSlot::Owned(WriteLog::default()),
            since: 0,
        }
    }

    /// A merger that records into (and checks against) the base memory's
    /// own `log`; `since` is the log's [`WriteLog::seq`] when `snapshot`
    /// was taken.
    pub fn with_log(snapshot: &'a Snapshot, log: &'a mut WriteLog, since: u32) -> Self {
        Self {
            snapshot,
            log: LogSlot::Borrowed(log),
            since,
        }
    }

    fn log(&mut self) -> &mut WriteLog {
        match &mut self.log {
            LogSlot::Owned(log) => log,
            LogSlot::Borrowed(log) => log,
        }
    }

    /// Merges `diff`, made by `writer`, into `base` (the memory the
    /// children's parent lives on), using the snapshot's merge regions.
    /// Returns the conflicts, coalesced into ranges.
    pub fn merge(
        &mut self,
        base: &mut [u8],
        diff: &Diff,
        writer: u32,
    ) -> Result<Vec<Conflict>, MergeError> {
        let needed = diff.memory_pages as u64 * crate::WASM_PAGE_SIZE;
        if needed > base.len() as u64 {
            return Err(MergeError::BaseTooSmall {
                needed,
                have: base.len() as u64,
            });
        }
        let mut conflicts = Conflicts::default();
        let log = self.log();
        log.prune();
        log.seq += 1;
        let seq = log.seq;
        if log.writers.is_empty() {
            log.writers.push(0);
        }
        log.writers.push(writer);
        let regions = &self.snapshot.regions;
        let mut last_element = None;
        for run in &diff.runs {
            if run.end() > needed {
                return Err(MergeError::RunOutOfBounds { addr: run.addr });
            }
            let mut addr = run.addr as u64;
            while addr < run.end() {
                // The region covering `addr`, or the gap up to the next one.
                let next = regions.partition_point(|r| r.end() <= addr);
                let (op_region, span_end) = match regions.get(next) {
                    Some(r) if (r.addr as u64) <= addr => (Some(*r), r.end().min(run.end())),
                    Some(r) => (None, (r.addr as u64).min(run.end())),
                    None => (None, run.end()),
                };
                match op_region {
                    None => {
                        self.merge_bytes(base, run, addr, span_end, (seq, writer), &mut conflicts)
                    }
                    Some(r) if r.op == MergeOp::Bytewise => {
                        self.merge_bytes(base, run, addr, span_end, (seq, writer), &mut conflicts)
                    }
                    Some(r) if r.op == MergeOp::Ignore => {}
                    Some(r) => {
                        let span = ElementSpan {
                            region: r,
                            start: addr,
                            end: span_end,
                        };
                        self.merge_elements(
                            base,
                            &diff.runs,
                            span,
                            &mut last_element,
                            writer,
                            &mut conflicts,
                        )
                    }
                }
                addr = span_end;
            }
        }
        Ok(conflicts.finish())
    }

    fn snapshot_byte(&self, addr: u64) -> u8 {
        let index = (addr / PAGE_SIZE as u64) as u32;
        self.snapshot
            .page(index)
            .map_or(0, |p| p[addr as usize % PAGE_SIZE])
    }

    fn merge_bytes(
        &mut self,
        base: &mut [u8],
        run: &crate::Run,
        start: u64,
        end: u64,
        (seq, writer): (u32, u32),
        conflicts: &mut Conflicts,
    ) {
        let since = self.since;
        for addr in start..end {
            let value = run.bytes[(addr - run.addr as u64) as usize];
            let original = self.snapshot_byte(addr);
            if value == original {
                continue; // not a change (a byte inside a run's gap)
            }
            let page = (addr / PAGE_SIZE as u64) as u32;
            let log = self.log();
            let owners = log
                .owners
                .entry(page)
                .or_insert_with(|| Box::new([0; PAGE_SIZE]));
            let owner = &mut owners[addr as usize % PAGE_SIZE];
            let last = *owner;
            *owner = seq;
            let first = log.writer(last);
            let current = base[addr as usize];
            if last > since && first != writer {
                // Another child merged a change here after our snapshot.
                conflicts.add(
                    addr,
                    ConflictKind::TwoWriters {
                        first,
                        second: writer,
                    },
                );
            } else if current != original && current != value {
                // The base changed it since the snapshot, to another value.
                conflicts.add(addr, ConflictKind::BaseChanged { writer });
            }
            base[addr as usize] = value;
        }
    }

    /// Merges the elements of a typed region that overlap `span`. An
    /// element's child value comes from every run that covers part of it;
    /// `last_element` keeps an element that two runs touch from merging
    /// twice.
    fn merge_elements(
        &self,
        base: &mut [u8],
        runs: &[crate::Run],
        span: ElementSpan,
        last_element: &mut Option<u64>,
        writer: u32,
        conflicts: &mut Conflicts,
    ) {
        let region = span.region;
        let size = region.ty.size() as u64;
        let mut elem = region.addr as u64 + (span.start - region.addr as u64) / size * size;
        while elem < span.end {
            if last_element.is_some_and(|done| done >= elem) {
                elem += size;
                continue;
            }
            *last_element = Some(elem);
            // The child's element: the snapshot's bytes patched with the runs.
            let mut original = [0u8; 8];
            let mut child = [0u8; 8];
            for k in 0..size as usize {
                let addr = elem + k as u64;
                original[k] = self.snapshot_byte(addr);
                child[k] = byte_in_runs(runs, addr).unwrap_or(original[k]);
            }
            let n = size as usize;
            let at = elem as usize..elem as usize + n;
            if child[..n] != original[..n] {
                let mut current = [0u8; 8];
                current[..n].copy_from_slice(&base[at.clone()]);
                match combine(region.op, region.ty, &current, &child, &original) {
                    Some(value) => base[at].copy_from_slice(&value[..n]),
                    None => {
                        conflicts.add_range(elem, size, ConflictKind::InexactProduct { writer })
                    }
                }
            }
            elem += size;
        }
    }
}

/// The part of a typed region that one run overlaps.
#[derive(Clone, Copy)]
struct ElementSpan {
    region: MergeRegion,
    start: u64,
    end: u64,
}

/// The byte a diff writes at `addr`, if any of its (sorted) runs covers it.
fn byte_in_runs(runs: &[crate::Run], addr: u64) -> Option<u8> {
    let i = runs.partition_point(|r| r.end() <= addr);
    let run = runs.get(i)?;
    (run.addr as u64 <= addr).then(|| run.bytes[(addr - run.addr as u64) as usize])
}

macro_rules! int_op {
    ($t:ty, $op:expr, $base:expr, $child:expr, $snap:expr) => {{
        let (b, c, s) = (
            <$t>::from_le_bytes($base),
            <$t>::from_le_bytes($child),
            <$t>::from_le_bytes($snap),
        );
        let v: Option<$t> = match $op {
            MergeOp::Sum | MergeOp::Subtract => Some(b.wrapping_add(c.wrapping_sub(s))),
            MergeOp::Product => {
                if s == 0 {
                    (c == 0).then_some(b)
                } else if c.wrapping_rem(s) == 0 {
                    Some(b.wrapping_mul(c.wrapping_div(s)))
                } else {
                    None
                }
            }
            MergeOp::Min => Some(b.min(c)),
            MergeOp::Max => Some(b.max(c)),
            MergeOp::Xor => Some(b ^ c ^ s),
            MergeOp::Bytewise | MergeOp::Ignore => unreachable!("not a typed op"),
        };
        v.map(|v| v.to_le_bytes())
    }};
}

macro_rules! float_op {
    ($t:ty, $op:expr, $base:expr, $child:expr, $snap:expr) => {{
        let (b, c, s) = (
            <$t>::from_le_bytes($base),
            <$t>::from_le_bytes($child),
            <$t>::from_le_bytes($snap),
        );
        let v: Option<$t> = match $op {
            MergeOp::Sum | MergeOp::Subtract => Some(b + (c - s)),
            MergeOp::Product => {
                if s == 0.0 {
                    (c == 0.0).then_some(b)
                } else {
                    Some(b * (c / s))
                }
            }
            MergeOp::Min => Some(b.min(c)),
            MergeOp::Max => Some(b.max(c)),
            MergeOp::Xor => Some(<$t>::from_bits(b.to_bits() ^ c.to_bits() ^ s.to_bits())),
            MergeOp::Bytewise | MergeOp::Ignore => unreachable!("not a typed op"),
        };
        v.map(|v| v.to_le_bytes())
    }};
}

/// `op(base, child, snapshot)` on one element; `None` when the result is
/// not well defined (an inexact integer product).
fn combine(
    op: MergeOp,
    ty: ElemType,
    base: &[u8; 8],
    child: &[u8; 8],
    snap: &[u8; 8],
) -> Option<[u8; 8]> {
    let four = |b: &[u8; 8]| -> [u8; 4] { b[..4].try_into().unwrap() };
    let widen4 = |v: [u8; 4]| {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&v);
        out
    };
    match ty {
        ElemType::I32 => int_op!(i32, op, four(base), four(child), four(snap)).map(widen4),
        ElemType::F32 => float_op!(f32, op, four(base), four(child), four(snap)).map(widen4),
        ElemType::I64 => int_op!(i64, op, *base, *child, *snap),
        ElemType::F64 => float_op!(f64, op, *base, *child, *snap),
    }
}

/// Collects conflicting bytes into ranges of the same kind.
#[derive(Default)]
struct Conflicts {
    list: Vec<Conflict>,
}

impl Conflicts {
    fn add(&mut self, addr: u64, kind: ConflictKind) {
        self.add_range(addr, 1, kind);
    }

    fn add_range(&mut self, addr: u64, len: u64, kind: ConflictKind) {
        if let Some(last) = self.list.last_mut()
            && last.kind == kind
            && last.addr as u64 + last.len as u64 == addr
        {
            last.len += len as u32;
            return;
        }
        self.list.push(Conflict {
            addr: addr as u32,
            len: len as u32,
            kind,
        });
    }

    fn finish(self) -> Vec<Conflict> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::validate_regions;
    use crate::{ModuleHash, WASM_PAGE_SIZE};

    fn region(addr: u32, len: u32, op: MergeOp, ty: ElemType) -> MergeRegion {
        MergeRegion { addr, len, op, ty }
    }

    fn snapshot(memory: &[u8], regions: Vec<MergeRegion>) -> Snapshot {
        Snapshot::capture(ModuleHash::of(b"m"), memory, None, vec![], regions)
    }

    fn child(base: &Snapshot, f: impl FnOnce(&mut [u8])) -> Diff {
        let mut memory = base.to_memory();
        f(&mut memory);
        Diff::between(base, &memory, None, &[])
    }

    #[test]
    fn sum_region_adds_contributions() {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        memory[64..68].copy_from_slice(&10i32.to_le_bytes());
        let region = region(64, 4, MergeOp::Sum, ElemType::I32);
        let snap = snapshot(&memory, vec![region]);
        let a = child(&snap, |m| m[64..68].copy_from_slice(&13i32.to_le_bytes()));
        let b = child(&snap, |m| m[64..68].copy_from_slice(&5i32.to_le_bytes()));
        let mut merger = Merger::new(&snap);
        assert!(merger.merge(&mut memory, &a, 0).unwrap().is_empty());
        assert!(merger.merge(&mut memory, &b, 1).unwrap().is_empty());
        assert_eq!(
            i32::from_le_bytes(memory[64..68].try_into().unwrap()),
            10 + 3 - 5
        );
    }

    #[test]
    fn bytewise_conflicts_are_reported_with_ranges() {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        let snap = snapshot(&memory, vec![]);
        let a = child(&snap, |m| m[100..104].fill(1));
        let b = child(&snap, |m| m[102..106].fill(2));
        let mut merger = Merger::new(&snap);
        assert!(merger.merge(&mut memory, &a, 0).unwrap().is_empty());
        let conflicts = merger.merge(&mut memory, &b, 1).unwrap();
        assert_eq!(
            conflicts,
            vec![Conflict {
                addr: 102,
                len: 2,
                kind: ConflictKind::TwoWriters {
                    first: 0,
                    second: 1
                }
            }]
        );
        // Nothing is lost silently: the later writer's bytes are in place.
        assert_eq!(&memory[100..106], &[1, 1, 2, 2, 2, 2]);
    }

    /// Merges, as thread `writer` whose snapshot is `snap` taken at
    /// `since`, a write of `fill` over `pages` pages from `first`.
    fn merge_pages(
        memory: &mut [u8],
        log: &mut WriteLog,
        (snap, since): (&Snapshot, u32),
        writer: u32,
        (first, pages, fill): (usize, usize, u8),
    ) -> Vec<Conflict> {
        let diff = child(snap, |m| {
            m[first * PAGE_SIZE..(first + pages) * PAGE_SIZE].fill(fill)
        });
        Merger::with_log(snap, log, since)
            .merge(memory, &diff, writer)
            .unwrap()
    }

    #[test]
    fn a_watched_log_forgets_writes_older_than_every_thread_and_keeps_the_rest() {
        let mut memory = vec![0u8; 16 * WASM_PAGE_SIZE as usize];
        let mut log = WriteLog::default();
        let start = snapshot(&memory, vec![]);
        // Thread 1 keeps the snapshot it took at the start.
        let old = Arc::new(AtomicU32::new(log.seq()));
        log.watch(&old);
        assert!(merge_pages(&mut memory, &mut log, (&start, 0), 2, (0, 40, 1)).is_empty());
        // Thread 2's later sync points: 40 pages, then 40 more.
        let mut view = snapshot(&memory, vec![]);
        let young = Arc::new(AtomicU32::new(log.seq()));
        log.watch(&young);
        let since = log.seq();
        let conflicts = merge_pages(&mut memory, &mut log, (&view, since), 3, (40, 40, 2));
        assert!(conflicts.is_empty());
        young.store(log.seq(), Ordering::SeqCst);
        view = snapshot(&memory, vec![]);
        // Thread 1 is still watched: nothing is forgotten, and its write
        // over thread 2's is a conflict.
        let since = log.seq();
        let conflicts = merge_pages(&mut memory, &mut log, (&view, since), 3, (100, 1, 3));
        assert!(conflicts.is_empty());
        assert_eq!(log.pages(), 81);
        let conflicts = merge_pages(&mut memory.clone(), &mut log, (&start, 0), 1, (0, 1, 9));
        assert_eq!(conflicts.len(), 1, "thread 1 meets thread 2's merge");

        // Thread 1 ends: the next merge forgets what thread 2's snapshot
        // already holds, and keeps what came after it.
        drop(old);
        let since = log.seq() - 1;
        young.store(since, Ordering::SeqCst);
        let conflicts = merge_pages(&mut memory, &mut log, (&view, since), 3, (101, 1, 4));
        assert!(conflicts.is_empty());
        assert!(log.pages() <= 3, "{} pages kept", log.pages());
        // What stays is enough to find a conflict with thread 2's writes
        // after its snapshot.
        let behind = snapshot(&memory, vec![]);
        let since = young.load(Ordering::SeqCst);
        let conflicts = merge_pages(&mut memory, &mut log, (&behind, since), 5, (101, 1, 6));
        assert_eq!(conflicts.len(), 1);
    }

    #[test]
    fn an_unwatched_log_forgets_nothing() {
        let mut memory = vec![0u8; 16 * WASM_PAGE_SIZE as usize];
        let mut log = WriteLog::default();
        let start = snapshot(&memory, vec![]);
        for round in 0..4 {
            let since = log.seq();
            let conflicts = merge_pages(
                &mut memory,
                &mut log,
                (&start, since),
                1,
                (round * 50, 50, 1),
            );
            assert!(conflicts.is_empty());
        }
        assert_eq!(log.pages(), 200);
        let conflicts = merge_pages(&mut memory, &mut log, (&start, 0), 2, (0, 1, 2));
        assert_eq!(conflicts.len(), 1);
    }

    #[test]
    fn a_forgotten_range_takes_a_new_owner_without_conflict() {
        // Thread 1 merges into a range; the range is then handed to a new
        // owner whose lineage started before that merge (a reused arena
        // chunk, zeroed along the new owner's path).
        let mut memory = vec![0u8; 2 * WASM_PAGE_SIZE as usize];
        let mut log = WriteLog::default();
        let older = snapshot(&memory, vec![]);
        let since = log.seq();
        let first = child(&older, |m| m[4090..4200].fill(1));
        let mut merger = Merger::with_log(&older, &mut log, since);
        assert!(merger.merge(&mut memory, &first, 1).unwrap().is_empty());
        let reused = child(&older, |m| m[4096..4104].fill(2));
        let conflicts = Merger::with_log(&older, &mut log, since)
            .merge(&mut memory.clone(), &reused, 2)
            .unwrap();
        assert_eq!(
            conflicts.len(),
            1,
            "without forgetting, the reuse conflicts"
        );

        log.forget(4096, 8192);
        memory[4096..12288].fill(0);
        let conflicts = Merger::with_log(&older, &mut log, since)
            .merge(&mut memory, &reused, 2)
            .unwrap();
        assert!(conflicts.is_empty());
        assert_eq!(&memory[4094..4106], &[1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0]);
        // Bytes outside the forgotten range still remember their writer.
        let outside = child(&older, |m| m[4090] = 3);
        let conflicts = Merger::with_log(&older, &mut log, since)
            .merge(&mut memory, &outside, 3)
            .unwrap();
        assert_eq!(conflicts.len(), 1);
    }

    #[test]
    fn base_changes_since_the_snapshot_conflict() {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        let snap = snapshot(&memory, vec![]);
        memory[7] = 9; // the parent wrote after the snapshot
        let a = child(&snap, |m| m[7] = 1);
        let conflicts = Merger::new(&snap).merge(&mut memory, &a, 4).unwrap();
        assert_eq!(
            conflicts,
            vec![Conflict {
                addr: 7,
                len: 1,
                kind: ConflictKind::BaseChanged { writer: 4 }
            }]
        );
    }

    #[test]
    fn ignore_regions_never_change_the_base() {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        let region = region(0, 4096, MergeOp::Ignore, ElemType::I32);
        let snap = snapshot(&memory, vec![region]);
        let a = child(&snap, |m| m[..5000].fill(3));
        Merger::new(&snap).merge(&mut memory, &a, 0).unwrap();
        assert!(memory[..4096].iter().all(|b| *b == 0));
        assert!(memory[4096..5000].iter().all(|b| *b == 3));
    }

    #[test]
    fn typed_ops() {
        let cases: &[(MergeOp, i64, i64, i64)] = &[
            // (op, snapshot, child, expected with base = snapshot)
            (MergeOp::Product, 3, 12, 12),
            (MergeOp::Min, 5, 2, 2),
            (MergeOp::Max, 5, 2, 5),
            (MergeOp::Xor, 0b1100, 0b1010, 0b1010),
            (MergeOp::Subtract, 10, 7, 7),
        ];
        for &(op, snap_value, child_value, expected) in cases {
            let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
            memory[8..16].copy_from_slice(&snap_value.to_le_bytes());
            let snap = snapshot(
                &memory,
                vec![MergeRegion {
                    addr: 8,
                    len: 8,
                    op,
                    ty: ElemType::I64,
                }],
            );
            let d = child(&snap, |m| {
                m[8..16].copy_from_slice(&child_value.to_le_bytes())
            });
            assert!(
                Merger::new(&snap)
                    .merge(&mut memory, &d, 0)
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(
                i64::from_le_bytes(memory[8..16].try_into().unwrap()),
                expected,
                "{op:?}"
            );
        }
    }

    #[test]
    fn inexact_integer_product_is_a_conflict() {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        memory[0..4].copy_from_slice(&4i32.to_le_bytes());
        let snap = snapshot(&memory, vec![region(0, 4, MergeOp::Product, ElemType::I32)]);
        let d = child(&snap, |m| m[0..4].copy_from_slice(&6i32.to_le_bytes()));
        let conflicts = Merger::new(&snap).merge(&mut memory, &d, 2).unwrap();
        assert_eq!(
            conflicts,
            vec![Conflict {
                addr: 0,
                len: 4,
                kind: ConflictKind::InexactProduct { writer: 2 }
            }]
        );
    }

    #[test]
    fn float_sum() {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        memory[0..8].copy_from_slice(&1.5f64.to_le_bytes());
        let snap = snapshot(&memory, vec![region(0, 8, MergeOp::Sum, ElemType::F64)]);
        let d = child(&snap, |m| m[0..8].copy_from_slice(&4.0f64.to_le_bytes()));
        let mut merger = Merger::new(&snap);
        merger.merge(&mut memory, &d, 0).unwrap();
        merger.merge(&mut memory, &d, 1).unwrap();
        assert_eq!(f64::from_le_bytes(memory[0..8].try_into().unwrap()), 6.5);
    }

    #[test]
    fn region_validation() {
        let ok = region(0, 8, MergeOp::Sum, ElemType::I64);
        assert!(validate_regions(&[ok], 64).is_ok());
        let misaligned = region(4, 8, MergeOp::Sum, ElemType::I64);
        assert!(validate_regions(&[misaligned], 64).is_err());
        let overlap = region(4, 4, MergeOp::Bytewise, ElemType::I32);
        assert!(validate_regions(&[ok, overlap], 64).is_err());
        assert!(validate_regions(&[ok], 4).is_err());
    }

    #[test]
    fn base_too_small() {
        let snap = snapshot(&vec![0; WASM_PAGE_SIZE as usize * 2], vec![]);
        let d = child(&snap, |m| m[70000] = 1);
        assert!(matches!(
            Merger::new(&snap).merge(&mut [0u8; 10], &d, 0),
            Err(MergeError::BaseTooSmall { .. })
        ));
    }
}
