//! Diffs: what changed since a snapshot.

use crate::image::{GlobalValue, Snapshot};
use crate::{PAGE_SIZE, WASM_PAGE_SIZE};

/// A run of changed bytes at `addr`; runs never cross a page boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub addr: u32,
    pub bytes: Vec<u8>,
}

impl Run {
    pub fn end(&self) -> u64 {
        self.addr as u64 + self.bytes.len() as u64
    }
}

/// What an instance that started from a snapshot changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Size of the instance's memory in wasm pages (it may have grown).
    pub memory_pages: u32,
    /// Changed bytes, by increasing address, not overlapping.
    pub runs: Vec<Run>,
    /// Globals whose value differs from the snapshot's.
    pub globals: Vec<(u32, GlobalValue)>,
}

/// Why a diff is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("diff run at {addr:#x} is invalid: {why}")]
    BadRun { addr: u32, why: &'static str },
    #[error("diff memory of {pages} wasm pages exceeds 4 GiB")]
    MemoryTooLarge { pages: u32 },
    #[error("diff global {index} is out of order or repeated")]
    GlobalsOutOfOrder { index: u32 },
}

/// Two runs closer than this are kept as one (bytes in the gap are equal
/// in base and child, so including them changes nothing and saves a header).
const JOIN_GAP: usize = 8;

impl Diff {
    /// Compares `memory` (and `globals`) of an instance that started from
    /// `base` with `base`. `candidates`, when given, are the only page
    /// indices that may differ (e.g. the pages the kernel reports as
    /// present in the child's memory, which include every page it wrote).
    pub fn between(
        base: &Snapshot,
        memory: &[u8],
        candidates: Option<&[u32]>,
        globals: &[(u32, GlobalValue)],
    ) -> Self {
        let zero = [0u8; PAGE_SIZE];
        let page_count = (memory.len() / PAGE_SIZE) as u32;
        let mut runs = Vec::new();
        let mut compare = |index: u32| {
            let start = index as usize * PAGE_SIZE;
            let Some(now) = memory.get(start..start + PAGE_SIZE) else {
                return;
            };
            let before = base.page(index).unwrap_or(&zero);
            if now != &before[..] {
                push_runs(&mut runs, start, before, now);
            }
        };
        match candidates {
            Some(list) => {
                let mut list = list.to_vec();
                list.sort_unstable();
                list.dedup();
                list.into_iter().for_each(&mut compare);
            }
            None => (0..page_count).for_each(&mut compare),
        }
        let globals = globals
            .iter()
            .filter(|(index, value)| {
                base.globals
                    .binary_search_by_key(index, |(i, _)| *i)
                    .map_or(true, |i| base.globals[i].1 != *value)
            })
            .copied()
            .collect();
        Self {
            memory_pages: (memory.len() as u64 / WASM_PAGE_SIZE) as u32,
            runs,
            globals,
        }
    }

    /// What `next` holds that `base` does not, as byte runs (no globals):
    /// for bringing a copy of memory restored from `base` to `next`. Pages
    /// are compared only where the two may differ by identity (see
    /// [`Snapshot::changed_pages`]), so two images cut from one running
    /// image compare cheaply.
    pub fn between_snapshots(base: &Snapshot, next: &Snapshot) -> Self {
        let zero = [0u8; PAGE_SIZE];
        let mut runs = Vec::new();
        let mut pages = base.changed_pages(next);
        pages.sort_unstable();
        for index in pages {
            let before = base.page(index).unwrap_or(&zero);
            let now = next.page(index).unwrap_or(&zero);
            if before != now {
                push_runs(&mut runs, index as usize * PAGE_SIZE, before, now);
            }
        }
        Self {
            memory_pages: next.memory_pages.max(base.memory_pages),
            runs,
            globals: Vec::new(),
        }
    }

    /// Checks that runs are non-empty, sorted, disjoint, inside one page
    /// each and inside the memory, and that globals are sorted.
    pub fn validate(&self) -> Result<(), DiffError> {
        let memory_len = self.memory_pages as u64 * WASM_PAGE_SIZE;
        let mut previous_end = 0u64;
        for (i, run) in self.runs.iter().enumerate() {
            let bad = |why| DiffError::BadRun {
                addr: run.addr,
                why,
            };
            if run.bytes.is_empty() {
                return Err(bad("empty"));
            }
            if i > 0 && (run.addr as u64) < previous_end {
                return Err(bad("overlaps or precedes the previous run"));
            }
            if run.end() > memory_len {
                return Err(bad("extends past the end of memory"));
            }
            if (run.addr as u64 / PAGE_SIZE as u64) != (run.end() - 1) / PAGE_SIZE as u64 {
                return Err(bad("crosses a page boundary"));
            }
            previous_end = run.end();
        }
        if self.memory_pages > crate::MAX_WASM_PAGES {
            return Err(DiffError::MemoryTooLarge {
                pages: self.memory_pages,
            });
        }
        for pair in self.globals.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return Err(DiffError::GlobalsOutOfOrder { index: pair[1].0 });
            }
        }
        Ok(())
    }

    /// Number of changed bytes.
    pub fn changed_bytes(&self) -> usize {
        self.runs.iter().map(|r| r.bytes.len()).sum()
    }
}

/// Appends the runs of bytes that differ between `before` and `now` (one
/// page, at byte address `page_start`).
fn push_runs(runs: &mut Vec<Run>, page_start: usize, before: &[u8], now: &[u8]) {
    let mut i = 0;
    while i < PAGE_SIZE {
        if before[i] == now[i] {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1;
        // Extend over changed bytes and short equal gaps.
        let mut j = end;
        while j < PAGE_SIZE {
            if before[j] != now[j] {
                end = j + 1;
            } else if j - end >= JOIN_GAP {
                break;
            }
            j += 1;
        }
        runs.push(Run {
            addr: (page_start + start) as u32,
            bytes: now[start..end].to_vec(),
        });
        i = end;
    }
}

impl Snapshot {
    /// Writes every run of `diff` into the image, which grows to the
    /// diff's memory size (plain application, no merge semantics, globals
    /// untouched). False when a run lies outside that size (nothing is
    /// written then).
    pub fn apply_runs(&mut self, diff: &Diff) -> bool {
        let pages = self.memory_pages.max(diff.memory_pages);
        let len = pages as u64 * WASM_PAGE_SIZE;
        if diff.runs.iter().any(|run| run.end() > len) {
            return false;
        }
        self.memory_pages = pages;
        for run in &diff.runs {
            self.write_bytes(run.addr, &run.bytes);
        }
        true
    }
}

/// Writes every run of `diff` into `memory` (plain application, no merge
/// semantics). `memory` must hold the diff's memory size.
pub fn apply(memory: &mut [u8], diff: &Diff) {
    for run in &diff.runs {
        let start = run.addr as usize;
        memory[start..start + run.bytes.len()].copy_from_slice(&run.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModuleHash;

    #[test]
    fn a_diff_between_snapshots_brings_one_to_the_other() {
        let mut memory = vec![0u8; 2 * WASM_PAGE_SIZE as usize];
        memory[5] = 1;
        memory[PAGE_SIZE * 3 + 7] = 2;
        let base = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![]);
        let mut next = base.clone();
        assert!(Diff::between_snapshots(&base, &next).runs.is_empty());
        next.memory_pages = 3;
        next.write_bytes(5, &[9]);
        next.write_bytes(PAGE_SIZE as u32 * 3 + 7, &[0]);
        next.write_bytes(2 * WASM_PAGE_SIZE as u32 + 1, &[4, 4]);
        let diff = Diff::between_snapshots(&base, &next);
        assert_eq!(diff.memory_pages, 3);
        assert_eq!(diff.runs.len(), 3);
        diff.validate().unwrap();
        let mut copy = base.clone();
        assert!(copy.apply_runs(&diff));
        assert_eq!(copy.to_memory(), next.to_memory());
        // A run past the diff's own size is refused whole.
        let mut bad = diff.clone();
        bad.memory_pages = 1;
        bad.runs.truncate(0);
        bad.runs.push(Run {
            addr: 2 * WASM_PAGE_SIZE as u32,
            bytes: vec![1],
        });
        let mut copy = base.clone();
        assert!(!copy.apply_runs(&bad));
        assert!(copy == base);
    }

    #[test]
    fn runs_are_byte_exact_and_page_bounded() {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        memory[10] = 1;
        let base = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![]);
        let mut now = memory.clone();
        now[10] = 2; // changed
        now[12] = 3; // within the join gap: one run 10..13
        now[100] = 4; // far: its own run
        now[PAGE_SIZE - 1] = 5; // end of page 0
        now[PAGE_SIZE] = 6; // start of page 1: another run
        let diff = Diff::between(&base, &now, None, &[]);
        let runs: Vec<_> = diff
            .runs
            .iter()
            .map(|r| (r.addr, r.bytes.clone()))
            .collect();
        assert_eq!(
            runs,
            vec![
                (10, vec![2, 0, 3]),
                (100, vec![4]),
                (PAGE_SIZE as u32 - 1, vec![5]),
                (PAGE_SIZE as u32, vec![6]),
            ]
        );
        let mut rebuilt = memory.clone();
        apply(&mut rebuilt, &diff);
        assert_eq!(rebuilt, now);
    }

    #[test]
    fn changed_globals_only() {
        let base = Snapshot::capture(
            ModuleHash::of(b"m"),
            &[],
            None,
            vec![(0, GlobalValue::I32(1)), (2, GlobalValue::I64(5))],
            vec![],
        );
        let diff = Diff::between(
            &base,
            &[],
            None,
            &[(0, GlobalValue::I32(1)), (2, GlobalValue::I64(6))],
        );
        assert_eq!(diff.globals, vec![(2, GlobalValue::I64(6))]);
    }
}
