//! The snapshot itself.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pages::PageTable;
use crate::region::MergeRegion;
use crate::{MAX_WASM_PAGES, PAGE_SIZE, PAGES_PER_WASM_PAGE, WASM_PAGE_SIZE};

/// SHA-256 of a module's bytes: names the module a snapshot belongs to.
/// Hosts exchange this, never compiled code: each compiles the module
/// itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModuleHash(pub [u8; 32]);

impl ModuleHash {
    pub fn of(module_bytes: &[u8]) -> Self {
        Self(Sha256::digest(module_bytes).into())
    }
}

impl std::fmt::Debug for ModuleHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…")
    }
}

/// The value of a global; floats are kept as bits so snapshots compare and
/// round-trip exactly (NaN payloads included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GlobalValue {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
}

/// Why a snapshot is not valid, or not valid for a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot belongs to module {found:?}, not {expected:?}")]
    WrongModule {
        expected: ModuleHash,
        found: ModuleHash,
    },
    #[error("snapshot memory of {pages} wasm pages exceeds the maximum of {max}")]
    MemoryTooLarge { pages: u32, max: u32 },
    #[error("snapshot page {index} is out of order or repeated")]
    PagesOutOfOrder { index: u32 },
    #[error("snapshot page {index} lies beyond the memory size of {memory_pages} wasm pages")]
    PageOutOfBounds { index: u32, memory_pages: u32 },
    #[error("snapshot global {index} is out of order or repeated")]
    GlobalsOutOfOrder { index: u32 },
    #[error("merge region at {addr:#x} (+{len}) is invalid: {why}")]
    BadRegion {
        addr: u32,
        len: u32,
        why: &'static str,
    },
}

/// The state that lets a thread continue in a fresh instance.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub module: ModuleHash,
    /// Size of the linear memory in wasm pages.
    pub memory_pages: u32,
    /// The pages with data; every other page is zero.
    pages: PageTable,
    /// Every mutable global, by increasing global index.
    pub globals: Vec<(u32, GlobalValue)>,
    /// Merge regions registered by the guest, by increasing address.
    pub regions: Vec<MergeRegion>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("module", &self.module)
            .field("memory_pages", &self.memory_pages)
            .field("pages", &self.pages)
            .field("globals", &self.globals)
            .field("regions", &self.regions)
            .finish()
    }
}

/// A snapshot borrowed from elsewhere (e.g. straight from wire bytes), so
/// restoring copies each page once: from the input into the memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotView<'a> {
    pub module: ModuleHash,
    pub memory_pages: u32,
    /// Pages with data, by increasing index.
    pub pages: Vec<(u32, &'a [u8; PAGE_SIZE])>,
    pub globals: Vec<(u32, GlobalValue)>,
    pub regions: Vec<MergeRegion>,
}

impl SnapshotView<'_> {
    /// Bytes of the memory this snapshot describes.
    pub fn memory_len(&self) -> usize {
        self.memory_pages as usize * WASM_PAGE_SIZE as usize
    }

    /// The bytes of page `index`, if the snapshot holds it.
    pub fn page(&self, index: u32) -> Option<&[u8; PAGE_SIZE]> {
        self.pages
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .map(|i| self.pages[i].1)
    }

    /// Checks that this snapshot belongs to `module` and fits a memory whose
    /// maximum is `max_pages` wasm pages.
    pub fn check_target(&self, module: ModuleHash, max_pages: u32) -> Result<(), SnapshotError> {
        check_target(self.module, self.memory_pages, module, max_pages)
    }

    /// Checks the invariants every snapshot must hold (decoding calls it).
    pub fn validate(&self) -> Result<(), SnapshotError> {
        if self.memory_pages > MAX_WASM_PAGES {
            return Err(SnapshotError::MemoryTooLarge {
                pages: self.memory_pages,
                max: MAX_WASM_PAGES,
            });
        }
        let page_limit = self.memory_pages as u64 * PAGES_PER_WASM_PAGE as u64;
        let mut previous = None;
        for &(index, _) in &self.pages {
            if previous.is_some_and(|p| p >= index) {
                return Err(SnapshotError::PagesOutOfOrder { index });
            }
            if index as u64 >= page_limit {
                return Err(SnapshotError::PageOutOfBounds {
                    index,
                    memory_pages: self.memory_pages,
                });
            }
            previous = Some(index);
        }
        let mut previous = None;
        for (index, _) in &self.globals {
            if previous.is_some_and(|p| p >= *index) {
                return Err(SnapshotError::GlobalsOutOfOrder { index: *index });
            }
            previous = Some(*index);
        }
        crate::region::validate_regions(&self.regions, self.memory_len() as u64).map_err(|f| {
            SnapshotError::BadRegion {
                addr: f.addr,
                len: f.len,
                why: f.why,
            }
        })
    }

    /// An owned copy.
    pub fn to_snapshot(&self) -> Snapshot {
        self.to_snapshot_sharing(None)
    }

    /// An owned copy that shares with `like` every page whose bytes are
    /// the same at the same index (a host that receives several snapshots
    /// of one memory keeps one copy of what they have in common).
    pub fn to_snapshot_sharing(&self, like: Option<&Snapshot>) -> Snapshot {
        let mut snapshot = Snapshot {
            module: self.module,
            memory_pages: self.memory_pages,
            pages: PageTable::default(),
            globals: self.globals.clone(),
            regions: self.regions.clone(),
        };
        for (index, data) in &self.pages {
            snapshot.insert_page_sharing(*index, data, like);
        }
        snapshot
    }
}

impl Snapshot {
    /// Captures `memory` (a whole linear memory, a whole number of wasm
    /// pages long), keeping only its non-zero pages. `candidates`, when
    /// given, lists the only page indices that can hold data (e.g. the pages
    /// the kernel reports as present), so the cost follows touched pages
    /// rather than memory size.
    pub fn capture(
        module: ModuleHash,
        memory: &[u8],
        candidates: Option<&[u32]>,
        globals: Vec<(u32, GlobalValue)>,
        regions: Vec<MergeRegion>,
    ) -> Self {
        let mut pages = PageTable::default();
        for index in pages_with_data(memory, candidates) {
            let start = index as usize * PAGE_SIZE;
            pages.insert(
                index,
                memory[start..start + PAGE_SIZE].try_into().expect("a page"),
            );
        }
        Self {
            module,
            memory_pages: (memory.len() as u64 / WASM_PAGE_SIZE) as u32,
            pages,
            globals,
            regions,
        }
    }

    /// A snapshot from its parts, unchecked (see [`Snapshot::validate`]);
    /// for tests and tools that build snapshots by hand.
    pub fn from_pages(
        module: ModuleHash,
        memory_pages: u32,
        pages: Vec<(u32, [u8; PAGE_SIZE])>,
        globals: Vec<(u32, GlobalValue)>,
        regions: Vec<MergeRegion>,
    ) -> Self {
        let mut table = PageTable::default();
        for (index, data) in &pages {
            table.insert(*index, data);
        }
        Self {
            module,
            memory_pages,
            pages: table,
            globals,
            regions,
        }
    }

    /// Sets page `index` to `data`, sharing `like`'s page at that index
    /// when it holds the same bytes (no second copy).
    pub(crate) fn insert_page_sharing(
        &mut self,
        index: u32,
        data: &[u8; PAGE_SIZE],
        like: Option<&Snapshot>,
    ) {
        let shared = like
            .filter(|like| like.page(index) == Some(data))
            .is_some_and(|like| self.pages.insert_shared(index, &like.pages));
        if !shared {
            self.pages.insert(index, data);
        }
    }

    /// Overwrites `bytes.len()` bytes at `addr` (adding pages as needed):
    /// for adjusting what a restored instance will see. Returns false when
    /// the range lies outside the memory.
    pub fn write_bytes(&mut self, addr: u32, bytes: &[u8]) -> bool {
        let end = addr as u64 + bytes.len() as u64;
        if end > self.memory_len() as u64 {
            return false;
        }
        let (mut at, mut rest) = (addr as usize, bytes);
        while !rest.is_empty() {
            let page = self.pages.page_mut((at / PAGE_SIZE) as u32);
            let in_page = at % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(rest.len());
            page[in_page..in_page + n].copy_from_slice(&rest[..n]);
            at += n;
            rest = &rest[n..];
        }
        true
    }

    /// Makes `len` bytes at `addr` zero (what lies outside the memory is
    /// zero already). Pages become no cheaper to hold: they stay listed.
    pub fn zero_range(&mut self, addr: u32, len: u32) {
        let start = addr as usize;
        let end = (start + len as usize).min(self.memory_len());
        if start >= end {
            return;
        }
        for index in start / PAGE_SIZE..end.div_ceil(PAGE_SIZE) {
            let page_start = index * PAGE_SIZE;
            let from = start.max(page_start) - page_start;
            let to = end.min(page_start + PAGE_SIZE) - page_start;
            if from == 0 && to == PAGE_SIZE {
                self.pages.remove(index as u32);
            } else if let Some(page) = self.pages.existing_page_mut(index as u32) {
                page[from..to].fill(0);
            }
        }
    }

    /// Reads `N` bytes at `addr` (zero where the snapshot holds no page).
    pub fn read_bytes<const N: usize>(&self, addr: u32) -> Option<[u8; N]> {
        if addr as u64 + N as u64 > self.memory_len() as u64 {
            return None;
        }
        let mut out = [0u8; N];
        for (k, byte) in out.iter_mut().enumerate() {
            let a = addr as usize + k;
            *byte = self
                .page((a / PAGE_SIZE) as u32)
                .map_or(0, |p| p[a % PAGE_SIZE]);
        }
        Some(out)
    }

    /// Borrows the snapshot as a view.
    pub fn view(&self) -> SnapshotView<'_> {
        SnapshotView {
            module: self.module,
            memory_pages: self.memory_pages,
            pages: self.pages().collect(),
            globals: self.globals.clone(),
            regions: self.regions.clone(),
        }
    }

    /// Shares with `like` every page that holds the same bytes at the
    /// same index (this snapshot's own copy of it goes); see
    /// [`SnapshotView::to_snapshot_sharing`].
    pub fn share_pages_with(&mut self, like: &Snapshot) {
        let same: Vec<u32> = self
            .pages()
            .filter(|(index, data)| like.page(*index) == Some(*data))
            .map(|(index, _)| index)
            .collect();
        for index in same {
            self.pages.insert_shared(index, &like.pages);
        }
    }

    /// Pages with data, by increasing index.
    pub fn pages(&self) -> impl Iterator<Item = (u32, &[u8; PAGE_SIZE])> + '_ {
        self.pages.iter()
    }

    /// Number of pages with data.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Sets page `index` (`None`: zero). For hosts that keep a running
    /// image of a memory.
    pub fn set_page(&mut self, index: u32, data: Option<&[u8; PAGE_SIZE]>) {
        match data {
            Some(data) => self.pages.insert(index, data),
            None => self.pages.remove(index),
        }
    }

    /// Indices of the pages `self` and `other` may differ in, found by
    /// identity: both copies of one snapshot, they share every page
    /// neither has set since.
    pub fn changed_pages(&self, other: &Snapshot) -> Vec<u32> {
        PageTable::changed_between(&self.pages, &other.pages)
    }

    /// Bytes of the memory this snapshot describes.
    pub fn memory_len(&self) -> usize {
        self.memory_pages as usize * WASM_PAGE_SIZE as usize
    }

    /// Writes the snapshot's pages into `memory`, which must be at least
    /// [`Self::memory_len`] long and zero outside those pages (a fresh
    /// memory is).
    pub fn write_pages_into(&self, memory: &mut [u8]) {
        for (index, data) in self.pages() {
            let start = index as usize * PAGE_SIZE;
            memory[start..start + PAGE_SIZE].copy_from_slice(&data[..]);
        }
    }

    /// The full memory image (for tests and small memories).
    pub fn to_memory(&self) -> Vec<u8> {
        let mut memory = vec![0; self.memory_len()];
        self.write_pages_into(&mut memory);
        memory
    }

    /// The bytes of page `index`, if the snapshot holds it.
    pub fn page(&self, index: u32) -> Option<&[u8; PAGE_SIZE]> {
        self.pages.get(index)
    }

    /// Checks that this snapshot belongs to `module` and fits a memory whose
    /// maximum is `max_pages` wasm pages.
    pub fn check_target(&self, module: ModuleHash, max_pages: u32) -> Result<(), SnapshotError> {
        check_target(self.module, self.memory_pages, module, max_pages)
    }

    /// Checks the invariants every snapshot must hold.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        self.view().validate()
    }
}

fn check_target(
    found: ModuleHash,
    memory_pages: u32,
    expected: ModuleHash,
    max_pages: u32,
) -> Result<(), SnapshotError> {
    if found != expected {
        return Err(SnapshotError::WrongModule { expected, found });
    }
    if memory_pages > max_pages {
        return Err(SnapshotError::MemoryTooLarge {
            pages: memory_pages,
            max: max_pages,
        });
    }
    Ok(())
}

/// Indices of the pages of `memory` that hold a non-zero byte, increasing;
/// only `candidates` are looked at when given.
pub(crate) fn pages_with_data(memory: &[u8], candidates: Option<&[u32]>) -> Vec<u32> {
    let page_count = (memory.len() / PAGE_SIZE) as u32;
    let has_data = |index: &u32| {
        let start = *index as usize * PAGE_SIZE;
        memory
            .get(start..start + PAGE_SIZE)
            .is_some_and(|bytes| !is_zero(bytes))
    };
    match candidates {
        Some(list) => {
            let mut list: Vec<u32> = list.iter().copied().filter(has_data).collect();
            list.sort_unstable();
            list.dedup();
            list
        }
        None => (0..page_count).filter(has_data).collect(),
    }
}

pub(crate) fn is_zero(bytes: &[u8]) -> bool {
    // Word-wise: the compiler vectorises this.
    let chunks = bytes.chunks_exact(8);
    let rest = chunks.remainder();
    chunks
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .fold(0, |acc, w| acc | w)
        == 0
        && rest.iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_only_nonzero_pages() {
        let mut memory = vec![0u8; 2 * WASM_PAGE_SIZE as usize];
        memory[5] = 1;
        memory[3 * PAGE_SIZE + 17] = 2;
        let snap = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![]);
        assert_eq!(snap.memory_pages, 2);
        assert_eq!(snap.pages().map(|(i, _)| i).collect::<Vec<_>>(), [0, 3]);
        assert_eq!(snap.to_memory(), memory);
        snap.validate().unwrap();

        // Candidates limit what is scanned.
        let only = Snapshot::capture(
            ModuleHash::of(b"m"),
            &memory,
            Some(&[3, 3, 9]),
            vec![],
            vec![],
        );
        assert_eq!(only.pages().map(|(i, _)| i).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn write_and_read_bytes() {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        memory[100] = 1;
        let mut snap = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![]);
        assert!(snap.write_bytes(PAGE_SIZE as u32 * 3 - 2, &[1, 2, 3, 4]));
        assert!(snap.write_bytes(98, &[7, 7]));
        assert!(!snap.write_bytes(WASM_PAGE_SIZE as u32 - 1, &[1, 2]));
        memory[PAGE_SIZE * 3 - 2..PAGE_SIZE * 3 + 2].copy_from_slice(&[1, 2, 3, 4]);
        memory[98..100].copy_from_slice(&[7, 7]);
        assert_eq!(snap.to_memory(), memory);
        assert_eq!(snap.pages().map(|(i, _)| i).collect::<Vec<_>>(), [0, 2, 3]);
        assert_eq!(
            snap.read_bytes::<4>(PAGE_SIZE as u32 * 3 - 2),
            Some([1, 2, 3, 4])
        );
        assert_eq!(snap.read_bytes::<2>(5000), Some([0, 0]));
        snap.validate().unwrap();
    }

    #[test]
    fn zero_range_clears_only_its_bytes() {
        let mut memory: Vec<u8> = (0..2 * WASM_PAGE_SIZE as usize)
            .map(|i| (i % 251) as u8 | 1)
            .collect();
        let mut snap = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![]);
        let (start, len) = (PAGE_SIZE * 2 + 100, PAGE_SIZE * 3);
        snap.zero_range(start as u32, len as u32);
        memory[start..start + len].fill(0);
        // Past the end of the memory: clipped.
        snap.zero_range((2 * WASM_PAGE_SIZE - 8) as u32, 64);
        let end = memory.len();
        memory[end - 8..].fill(0);
        snap.zero_range(u32::MAX - 4, 4);
        assert_eq!(snap.to_memory(), memory);
        snap.validate().unwrap();
    }

    #[test]
    fn target_checks() {
        let snap = Snapshot::capture(
            ModuleHash::of(b"a"),
            &vec![0; 65536 * 3],
            None,
            vec![],
            vec![],
        );
        assert!(snap.check_target(ModuleHash::of(b"a"), 3).is_ok());
        assert!(matches!(
            snap.check_target(ModuleHash::of(b"b"), 3),
            Err(SnapshotError::WrongModule { .. })
        ));
        assert_eq!(
            snap.check_target(ModuleHash::of(b"a"), 2),
            Err(SnapshotError::MemoryTooLarge { pages: 3, max: 2 })
        );
    }

    #[test]
    fn copies_share_the_pages_that_hold_the_same_bytes() {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        memory[0] = 1;
        memory[PAGE_SIZE * 2] = 2;
        let base = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![]);
        memory[PAGE_SIZE * 2] = 3;
        memory[PAGE_SIZE * 5] = 4;
        let next = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![]);
        // Decoded or captured separately, no page is shared...
        assert_eq!(base.changed_pages(&next), [0, 2, 5]);
        // ...until one shares with the other: only the equal page.
        let shared = next.view().to_snapshot_sharing(Some(&base));
        assert_eq!(shared, next);
        assert_eq!(base.changed_pages(&shared), [2, 5]);
        let mut again = next.clone();
        again.share_pages_with(&base);
        assert_eq!(again, next);
        assert_eq!(base.changed_pages(&again), [2, 5]);
    }

    #[test]
    fn zero_check_handles_unaligned_slices() {
        let mut bytes = [0u8; 100];
        assert!(is_zero(&bytes[3..97]));
        bytes[96] = 1;
        assert!(!is_zero(&bytes[3..97]));
        assert!(is_zero(&bytes[3..96]));
    }
}
