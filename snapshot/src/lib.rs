//! Weft's snapshot model, as pure data: no wasmtime types, no I/O.
//!
//! - [`Snapshot`]: what lets a thread continue in a fresh instance (a
//!   "Proto-Faaslet"): the module it belongs to, the linear memory (only the
//!   pages that hold data), every mutable global, and the merge regions the
//!   guest registered.
//! - [`Diff`]: what an instance that started from a snapshot changed:
//!   page-granular detection, byte-exact runs inside each page.
//! - [`Merger`]: merges children's diffs into a base memory with the merge
//!   regions' operations, and reports conflicts instead of losing writes.
//! - [`wire`]: the hardened binary format (magic, version, bounded lengths,
//!   no trailing bytes) for snapshots and diffs.

mod diff;
pub mod fuzz;
mod image;
mod merge;
mod pages;
mod region;
pub mod wire;

pub use diff::{Diff, DiffError, Run, apply};
pub use image::{GlobalValue, ModuleHash, Snapshot, SnapshotError, SnapshotView};
pub use merge::{
    Conflict, ConflictKind, ElemType, MergeError, MergeOp, MergeRegion, Merger, WriteLog,
};

/// Granularity of snapshots and diffs: the host's page size, not wasm's.
pub const PAGE_SIZE: usize = 4096;
/// The size of a wasm page.
pub const WASM_PAGE_SIZE: u64 = 65536;
/// Snapshot pages in one wasm page.
pub const PAGES_PER_WASM_PAGE: u32 = (WASM_PAGE_SIZE / PAGE_SIZE as u64) as u32;
/// Wasm pages in a 4 GiB (32-bit) memory.
pub const MAX_WASM_PAGES: u32 = 65536;
