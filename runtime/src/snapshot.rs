//! Capturing a wasmtime instance into a [`Snapshot`] and restoring one into
//! a fresh instance: the thin glue over the pure `weft-snapshot` model.

use wasmtime::{AsContextMut, Caller, Extern, Global, Instance, SharedMemory, Val};
use weft_snapshot::{
    Diff, GlobalValue, MergeRegion, ModuleHash, PAGE_SIZE, Snapshot, SnapshotError, SnapshotView,
    wire,
};

/// Restores of at least this much data ask the kernel for huge pages on
/// the target memory: a fault per 2 MiB instead of per 4 KiB is several
/// times faster for large, dense copies.
const HUGE_PAGE_THRESHOLD: usize = 4 << 20;

use crate::rewrite::global_export;
use crate::touched;

/// What a snapshot of a module's instances holds besides memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLayout {
    /// Hash of the module's original bytes.
    pub module: ModuleHash,
    /// Mutable globals the module defines, exported by the load-time rewrite.
    pub mutable_globals: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "capturing: the instance does not export global {index} (was the module rewritten at load?)"
    )]
    MissingGlobal { index: u32 },
    #[error("capturing: global {index} holds a reference, which a snapshot cannot carry")]
    ReferenceGlobal { index: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("restoring: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("restoring: growing memory to {pages} wasm pages failed: {error}")]
    Grow { pages: u32, error: String },
    #[error("restoring: global {index}: {error}")]
    Global { index: u32, error: String },
    #[error(
        "restoring: the target memory is not fresh ({pages} wasm pages, expected at most {expected})"
    )]
    MemoryNotFresh { pages: u64, expected: u32 },
}

/// Handles to the mutable globals of `instance`, by global index.
pub fn instance_globals(
    mut store: impl AsContextMut,
    instance: &Instance,
    layout: &SnapshotLayout,
) -> Result<Vec<(u32, Global)>, CaptureError> {
    layout
        .mutable_globals
        .iter()
        .map(|&index| {
            instance
                .get_global(&mut store, &global_export(index))
                .map(|g| (index, g))
                .ok_or(CaptureError::MissingGlobal { index })
        })
        .collect()
}

/// Handles to the mutable globals of the instance calling a host function.
pub fn caller_globals<T>(
    caller: &mut Caller<'_, T>,
    layout: &SnapshotLayout,
) -> Result<Vec<(u32, Global)>, CaptureError> {
    layout
        .mutable_globals
        .iter()
        .map(|&index| match caller.get_export(&global_export(index)) {
            Some(Extern::Global(g)) => Ok((index, g)),
            _ => Err(CaptureError::MissingGlobal { index }),
        })
        .collect()
}

/// Reads the values of `globals`.
pub fn read_globals(
    mut store: impl AsContextMut,
    globals: &[(u32, Global)],
) -> Result<Vec<(u32, GlobalValue)>, CaptureError> {
    let mut values = Vec::with_capacity(globals.len());
    for &(index, global) in globals {
        let value = match global.get(&mut store) {
            Val::I32(v) => GlobalValue::I32(v),
            Val::I64(v) => GlobalValue::I64(v),
            Val::F32(v) => GlobalValue::F32(v),
            Val::F64(v) => GlobalValue::F64(v),
            Val::V128(v) => GlobalValue::V128(v.as_u128()),
            _ => return Err(CaptureError::ReferenceGlobal { index }),
        };
        values.push((index, value));
    }
    Ok(values)
}

/// Sets mutable globals of `instance` to `globals`.
pub fn restore_globals(
    mut store: impl AsContextMut,
    instance: &Instance,
    globals: &[(u32, GlobalValue)],
) -> Result<(), RestoreError> {
    for &(index, value) in globals {
        let global = instance
            .get_global(&mut store, &global_export(index))
            .ok_or_else(|| RestoreError::Global {
                index,
                error: "not exported by the instance".into(),
            })?;
        let value = match value {
            GlobalValue::I32(v) => Val::I32(v),
            GlobalValue::I64(v) => Val::I64(v),
            GlobalValue::F32(v) => Val::F32(v),
            GlobalValue::F64(v) => Val::F64(v),
            GlobalValue::V128(v) => Val::V128(v.into()),
        };
        global
            .set(&mut store, value)
            .map_err(|e| RestoreError::Global {
                index,
                error: format!("{e:#}"),
            })?;
    }
    Ok(())
}

/// The bytes of a shared memory as a slice.
///
/// # Safety
/// No thread may write the memory while the slice is alive (the thread
/// being snapshotted is paused in a host call, and the host serialises its
/// own writes such as merges).
pub unsafe fn shared_bytes(memory: &SharedMemory) -> &[u8] {
    let data = memory.data();
    // SAFETY: `UnsafeCell<u8>` has the layout of `u8`; the caller rules out
    // concurrent writes for the slice's lifetime.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), data.len()) }
}

/// The pages of `memory` that may hold data, if the kernel can tell.
pub fn candidate_pages(memory: &SharedMemory) -> Option<Vec<u32>> {
    let data = memory.data();
    touched::present_pages(data.as_ptr().cast::<u8>(), data.len(), PAGE_SIZE)
}

/// Captures `globals` (see [`instance_globals`], [`caller_globals`]) and
/// `memory` into a snapshot.
///
/// # Safety
/// As [`shared_bytes`]: nothing writes `memory` during the call.
pub unsafe fn capture(
    store: impl AsContextMut,
    globals: &[(u32, Global)],
    memory: &SharedMemory,
    layout: &SnapshotLayout,
    regions: Vec<MergeRegion>,
) -> Result<Snapshot, CaptureError> {
    let globals = read_globals(store, globals)?;
    let candidates = candidate_pages(memory);
    // SAFETY: forwarded to the caller.
    let bytes = unsafe { shared_bytes(memory) };
    Ok(Snapshot::capture(
        layout.module,
        bytes,
        candidates.as_deref(),
        globals,
        regions,
    ))
}

/// Captures `globals` and `memory` straight into the snapshot wire format
/// (the bytes `encode_snapshot(&capture(..))` gives, with one copy of each
/// page instead of two).
///
/// # Safety
/// As [`shared_bytes`]: nothing writes `memory` during the call.
pub unsafe fn capture_encoded(
    store: impl AsContextMut,
    globals: &[(u32, Global)],
    memory: &SharedMemory,
    layout: &SnapshotLayout,
    regions: &[MergeRegion],
) -> Result<Vec<u8>, CaptureError> {
    let globals = read_globals(store, globals)?;
    let candidates = candidate_pages(memory);
    // SAFETY: forwarded to the caller.
    let bytes = unsafe { shared_bytes(memory) };
    let most_pages = candidates
        .as_ref()
        .map_or(bytes.len() / PAGE_SIZE, |c| c.len());
    let capacity = wire::encoded_capture_len(most_pages, globals.len(), regions.len());
    let mut out = Vec::with_capacity(capacity);
    if capacity >= HUGE_PAGE_THRESHOLD {
        touched::advise_huge_pages(out.as_ptr(), capacity);
    }
    wire::encode_capture(
        &mut out,
        layout.module,
        bytes,
        candidates.as_deref(),
        &globals,
        regions,
    );
    Ok(out)
}

/// Restores `snapshot` into `instance` and its `memory`, which no thread
/// uses yet (a fresh instantiation may have initialised data segments).
pub fn restore(
    mut store: impl AsContextMut,
    instance: &Instance,
    memory: &SharedMemory,
    layout: &SnapshotLayout,
    snapshot: &Snapshot,
) -> Result<(), RestoreError> {
    restore_memory(memory, layout.module, &snapshot.view())?;
    let globals =
        instance_globals(&mut store, instance, layout).map_err(|e| RestoreError::Global {
            index: match e {
                CaptureError::MissingGlobal { index } | CaptureError::ReferenceGlobal { index } => {
                    index
                }
            },
            error: e.to_string(),
        })?;
    if globals.len() != snapshot.globals.len()
        || globals
            .iter()
            .zip(&snapshot.globals)
            .any(|((a, _), (b, _))| a != b)
    {
        return Err(RestoreError::Global {
            index: 0,
            error: "the snapshot's globals do not match the module's mutable globals".into(),
        });
    }
    restore_globals(store, instance, &snapshot.globals)
}

/// Makes `memory` (of module `module`, used by no thread yet) equal to the
/// snapshot's: grows it to the snapshot's size, zeroes pages with data the
/// snapshot does not have, and writes the snapshot's pages. The cost
/// follows the pages involved, not the memory size.
pub fn restore_memory(
    memory: &SharedMemory,
    module: ModuleHash,
    snapshot: &SnapshotView<'_>,
) -> Result<(), RestoreError> {
    restore_memory_with(memory, module, snapshot, true)
}

/// [`restore_memory`]; `huge_pages`: ask for transparent huge pages when
/// the snapshot is large (faster to fill, but no good for write tracking).
pub fn restore_memory_with(
    memory: &SharedMemory,
    module: ModuleHash,
    snapshot: &SnapshotView<'_>,
    huge_pages: bool,
) -> Result<(), RestoreError> {
    let max_pages = memory.ty().maximum().unwrap_or(memory.ty().minimum());
    snapshot.check_target(module, max_pages.min(u32::MAX as u64) as u32)?;
    let have = memory.size();
    if have > snapshot.memory_pages as u64 {
        return Err(RestoreError::MemoryNotFresh {
            pages: have,
            expected: snapshot.memory_pages,
        });
    }
    let data = memory.data();
    let stale: Vec<u32> = candidate_pages(memory)
        .unwrap_or_else(|| (0..(data.len() / PAGE_SIZE) as u32).collect())
        .into_iter()
        .filter(|index| snapshot.page(*index).is_none())
        .collect();
    for index in stale {
        let start = index as usize * PAGE_SIZE;
        let dst = &data[start..start + PAGE_SIZE];
        // SAFETY: in bounds; no other user of the memory yet.
        unsafe { std::ptr::write_bytes(dst.as_ptr().cast::<u8>().cast_mut(), 0, PAGE_SIZE) };
    }
    if have < snapshot.memory_pages as u64 {
        memory
            .grow(snapshot.memory_pages as u64 - have)
            .map_err(|e| RestoreError::Grow {
                pages: snapshot.memory_pages,
                error: format!("{e:#}"),
            })?;
    }
    let data = memory.data();
    if huge_pages && snapshot.pages.len() * PAGE_SIZE >= HUGE_PAGE_THRESHOLD {
        touched::advise_huge_pages(data.as_ptr().cast::<u8>(), data.len());
    }
    for &(index, page) in &snapshot.pages {
        let start = index as usize * PAGE_SIZE;
        let dst = &data[start..start + PAGE_SIZE];
        // SAFETY: in bounds (checked by the slice above); no other user of
        // the memory yet.
        unsafe {
            std::ptr::copy_nonoverlapping(
                page.as_ptr(),
                dst.as_ptr().cast::<u8>().cast_mut(),
                PAGE_SIZE,
            );
        }
    }
    Ok(())
}

/// What an instance restored from `base` changed in `memory` and its
/// `globals`.
///
/// # Safety
/// As [`shared_bytes`].
pub unsafe fn diff(
    store: impl AsContextMut,
    globals: &[(u32, Global)],
    memory: &SharedMemory,
    base: &Snapshot,
) -> Result<Diff, CaptureError> {
    // SAFETY: forwarded to the caller.
    unsafe { diff_pages(store, globals, memory, base, candidate_pages(memory)) }
}

/// [`diff`] looking only at `candidates` (e.g. the pages a write tracker
/// reports), or at every page when `None`.
///
/// # Safety
/// As [`shared_bytes`].
pub unsafe fn diff_pages(
    store: impl AsContextMut,
    globals: &[(u32, Global)],
    memory: &SharedMemory,
    base: &Snapshot,
    candidates: Option<Vec<u32>>,
) -> Result<Diff, CaptureError> {
    let globals = read_globals(store, globals)?;
    // SAFETY: forwarded to the caller.
    let bytes = unsafe { shared_bytes(memory) };
    Ok(Diff::between(base, bytes, candidates.as_deref(), &globals))
}

/// One line describing a merge conflict, with the variable's name when the
/// module has symbols, e.g. ``0x1040..0x1044 (4 bytes, `counter`): changed by
/// threads 1 and 2``. Writer numbers are the ones given to the `Merger`
/// (thread ids).
pub fn describe_conflict(
    conflict: &weft_snapshot::Conflict,
    symbols: &crate::symbols::DataSymbols,
) -> String {
    describe_conflict_in(conflict, symbols, None)
}

/// [`describe_conflict`], naming where an address no symbol holds lies:
/// `arena`, the heap arena of a chained thread holding it (chain mode's
/// zone knows), else the stack or heap by the program's layout.
pub fn describe_conflict_in(
    conflict: &weft_snapshot::Conflict,
    symbols: &crate::symbols::DataSymbols,
    arena: Option<u32>,
) -> String {
    use weft_snapshot::ConflictKind;
    let end = conflict.addr as u64 + conflict.len as u64;
    let name = match (symbols.describe(conflict.addr), arena) {
        (Some(symbol), _) => format!(", `{symbol}`"),
        (None, Some(arena)) => format!(", in the heap arena at {arena:#x} of a chained thread"),
        (None, None) => symbols
            .region(conflict.addr)
            .map(|region| format!(", in {region}"))
            .unwrap_or_default(),
    };
    let what = match conflict.kind {
        ConflictKind::TwoWriters { first, second } => {
            format!("changed by threads {first} and {second}")
        }
        ConflictKind::BaseChanged { writer } => {
            format!("changed by thread {writer} and, since it started, by its parent")
        }
        ConflictKind::InexactProduct { writer } => {
            format!("thread {writer}'s product factor is not an exact integer")
        }
    };
    format!(
        "{:#x}..{end:#x} ({} bytes{name}): {what}",
        conflict.addr, conflict.len
    )
}
