//! The base snapshots a worker keeps, so that a later call of the same
//! program may send only the pages that changed (sans IO: a pure store).
//!
//! A base is found by its module *and* its [`SnapshotId`], which names
//! the home that cut it (a random 128-bit identity each home draws at
//! start) and that home's counter: two programs, of one home or of
//! several, can never name each other's bases, so a delta is only ever
//! applied to the snapshot it was cut from. The store is bounded by bytes
//! (the least recently used base goes first), not only by count.

use std::collections::VecDeque;

use weft_snapshot::{PAGE_SIZE, Snapshot};

use weft_transport::envelope::SnapshotId;

/// Bases kept at most, whatever their size (a search is a scan).
const MAX_BASES: usize = 64;

#[derive(Debug)]
struct Base {
    module: [u8; 32],
    id: SnapshotId,
    snapshot: Snapshot,
    bytes: u64,
}

/// Base snapshots, most recently used last.
#[derive(Debug)]
pub struct BaseStore {
    budget: u64,
    used: u64,
    bases: VecDeque<Base>,
}

/// What a base costs to keep: its pages (shared pages counted in each
/// base that has them, so an upper bound).
pub fn footprint(snapshot: &Snapshot) -> u64 {
    snapshot.page_count() as u64 * PAGE_SIZE as u64
}

impl BaseStore {
    /// A store of at most `budget` bytes of pages.
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            used: 0,
            bases: VecDeque::new(),
        }
    }

    /// The base `id` of `module`, if kept (it becomes the most recent).
    pub fn find(&mut self, module: &[u8; 32], id: &SnapshotId) -> Option<&Snapshot> {
        let at = self
            .bases
            .iter()
            .position(|b| b.id == *id && b.module == *module)?;
        let base = self.bases.remove(at)?;
        self.bases.push_back(base);
        self.bases.back().map(|b| &b.snapshot)
    }

    /// The most recently used base of `module`, if any.
    pub fn latest(&self, module: &[u8; 32]) -> Option<&Snapshot> {
        self.bases
            .iter()
            .rev()
            .find(|b| b.module == *module)
            .map(|b| &b.snapshot)
    }

    /// Keeps `snapshot` as base `id` of `module`, dropping the least
    /// recently used bases past the budget. A snapshot larger than the
    /// whole budget is not kept (later calls send it whole).
    pub fn insert(&mut self, module: [u8; 32], id: SnapshotId, snapshot: Snapshot) {
        let bytes = footprint(&snapshot);
        if bytes > self.budget {
            return;
        }
        if let Some(at) = self.bases.iter().position(|b| b.id == id) {
            // A home never reuses an id; a repeat replaces the old one.
            if let Some(old) = self.bases.remove(at) {
                self.used -= old.bytes;
            }
        }
        while self.used + bytes > self.budget || self.bases.len() >= MAX_BASES {
            self.evict_one();
        }
        self.used += bytes;
        self.bases.push_back(Base {
            module,
            id,
            snapshot,
            bytes,
        });
    }

    /// Drops the least recently used base; false when none is left.
    pub fn evict_one(&mut self) -> bool {
        match self.bases.pop_front() {
            Some(old) => {
                self.used -= old.bytes;
                true
            }
            None => false,
        }
    }

    /// Drops every base of `module` (its program was evicted).
    pub fn forget_module(&mut self, module: &[u8; 32]) {
        let used = &mut self.used;
        self.bases.retain(|b| {
            let keep = b.module != *module;
            if !keep {
                *used -= b.bytes;
            }
            keep
        });
    }

    /// Bytes of pages kept.
    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn len(&self) -> usize {
        self.bases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bases.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use weft_snapshot::ModuleHash;

    use super::*;

    fn snapshot(module: u8, fill: u8, pages: u32) -> Snapshot {
        Snapshot::from_pages(
            ModuleHash([module; 32]),
            1,
            (0..pages).map(|i| (i, [fill; PAGE_SIZE])).collect(),
            Vec::new(),
            Vec::new(),
        )
    }

    fn id(home: u8, seq: u64) -> SnapshotId {
        SnapshotId {
            home: [home; 16],
            seq,
        }
    }

    #[test]
    fn two_homes_with_the_same_counter_never_share_a_base() {
        let mut store = BaseStore::new(1 << 20);
        store.insert([1; 32], id(0xa, 1), snapshot(1, 0xaa, 4));
        store.insert([1; 32], id(0xb, 1), snapshot(1, 0xbb, 4));
        let a = store.find(&[1; 32], &id(0xa, 1)).unwrap();
        assert_eq!(a.page(0).unwrap()[0], 0xaa);
        let b = store.find(&[1; 32], &id(0xb, 1)).unwrap();
        assert_eq!(b.page(0).unwrap()[0], 0xbb);
        // A third home whose counter is also at 1 finds nothing.
        assert!(store.find(&[1; 32], &id(0xc, 1)).is_none());
        // Nor does the right id under another module.
        assert!(store.find(&[2; 32], &id(0xa, 1)).is_none());
    }

    #[test]
    fn the_byte_budget_evicts_the_least_recently_used() {
        let page = PAGE_SIZE as u64;
        let mut store = BaseStore::new(10 * page);
        store.insert([1; 32], id(1, 1), snapshot(1, 1, 4));
        store.insert([1; 32], id(1, 2), snapshot(1, 2, 4));
        assert_eq!(store.used(), 8 * page);
        // Using the first makes the second the oldest.
        assert!(store.find(&[1; 32], &id(1, 1)).is_some());
        store.insert([1; 32], id(1, 3), snapshot(1, 3, 4));
        assert_eq!(store.used(), 8 * page);
        assert!(store.find(&[1; 32], &id(1, 2)).is_none());
        assert!(store.find(&[1; 32], &id(1, 1)).is_some());
        assert!(store.find(&[1; 32], &id(1, 3)).is_some());
        // Larger than the budget: not kept, nothing evicted for it.
        store.insert([1; 32], id(1, 4), snapshot(1, 4, 11));
        assert_eq!(store.len(), 2);
        store.forget_module(&[1; 32]);
        assert!(store.is_empty());
        assert_eq!(store.used(), 0);
        assert!(!store.evict_one());
    }

    #[test]
    fn a_repeated_id_replaces_its_base() {
        let mut store = BaseStore::new(1 << 20);
        store.insert([1; 32], id(1, 1), snapshot(1, 1, 2));
        store.insert([1; 32], id(1, 1), snapshot(1, 9, 3));
        assert_eq!(store.len(), 1);
        assert_eq!(store.used(), 3 * PAGE_SIZE as u64);
        let base = store.find(&[1; 32], &id(1, 1)).unwrap();
        assert_eq!(base.page(0).unwrap()[0], 9);
    }
}
