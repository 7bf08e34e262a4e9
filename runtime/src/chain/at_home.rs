//! Libweft routines a chained thread runs at home, on the main memory, as
//! itself (`sync-at-home`): creating, joining and detaching threads.
//!
//! libc's thread list, its thread count and the new thread's stack, TLS
//! and `struct pthread` must be the main memory's: done in a chained
//! thread's copy, they would race with the main thread's own updates of
//! them, and the new thread's exit path (which runs on its parent's
//! memory) would unlink it from a list main never saw. So the creator
//! releases, an instance on the main memory runs libc's `pthread_create`
//! with the creator's TLS (its `pthread_self` there) on a scratch chunk
//! of the arena zone, and the new thread is an ordinary
//! child of the main memory: it synchronises, may run on any host, and is
//! joined at home. Its snapshot is the published image (which holds the
//! creator's release) plus what libc wrote for it, and those bytes go
//! into the published image at the same moment, never the main memory as
//! it is (the main thread may be halfway through a libc call).
//!
//! The instance writes the main memory directly, so there the main memory
//! differs from the published image, and a release carries only the bytes
//! that differ from the thread's snapshot: home's main memory is no copy
//! of the creator's own data. So the request, the attributes and the
//! deadline come with the call and are written into the scratch chunk,
//! which nothing else uses while the routine runs.

use std::sync::Arc;

use wasmtime::SharedMemory;
use weft_snapshot::Snapshot;
use weft_transport::envelope::{ATTR_BYTES, AtHomeCall};

use super::arena::{allocate_chunk, release_arena_chunk};
use super::support::{pages_to_reach, support};
use super::sync_point::grow_to;
use crate::locks::Locked as _;
use crate::process::{AtHomeBase, Merges, Process, ThreadEnd, ThreadMemory};

/// The request a routine at home reads and answers (libweft's
/// `struct weft_home_request`): the result (`rc`, then a value), and the
/// byte ranges a create wrote for the new thread.
const REQUEST_RESULT: u32 = 0;
const REQUEST_RANGES: u32 = 8;
/// Ranges a request lists: the new thread's block (stack, TLS, `struct
/// pthread`) and its start arguments on a stack of the program's own.
const REQUEST_RANGE_COUNT: u32 = 2;
/// libweft's `HOME_CREATE`, the one call that may fail for want of memory.
const OP_CREATE: u32 = 0;
/// wasi-libc's `EAGAIN`.
const EAGAIN: u32 = 6;
/// How long a join or detach waits for room to run at home.
const SCRATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// A range larger than this is no thread's (the largest stack a program
/// may set is bounded by its memory; this bounds a hostile request).
const MAX_RANGE: u32 = 1 << 30;

/// Bytes of the scratch chunk a routine at home runs in: its stack, and
/// at the top its request, attributes, deadline and start arguments.
const SCRATCH: u32 = 64 * 1024;
/// Offsets from the chunk's top (libweft's `struct weft_home_request`:
/// rc, value, ranges, then op, thread, attr, start, arg, deadline).
const ARGS_FROM_TOP: u32 = 16;
const REQUEST_FROM_TOP: u32 = 64;
const ATTR_FROM_TOP: u32 = 112;
const DEADLINE_FROM_TOP: u32 = 128;

/// Runs `call` at home for thread `tid`, whose view of memory is `view`:
/// the request's result (low word `rc`, high word the value).
pub(super) fn run(process: &Arc<Process>, tid: u32, call: &AtHomeCall) -> wasmtime::Result<i64> {
    let (Some(chain), Some(main)) = (support(process), process.main_memory()) else {
        wasmtime::bail!("sync-at-home needs chain mode");
    };
    if call.attr.as_ref().is_some_and(|a| a.len() != ATTR_BYTES) {
        wasmtime::bail!("thread {tid}: sync-at-home attributes of the wrong size");
    }
    let (chunk, len) = match scratch_chunk(process, chain, main, tid, call.op)? {
        Some(chunk) => chunk,
        // No room for the new thread's call: as for its stack, EAGAIN.
        None => return Ok(i64::from(EAGAIN)),
    };
    tracing::trace!(tid, chunk, op = call.op, "scratch chunk");
    // A call for a peer's thread comes in on a network runtime's thread:
    // the guest code runs where there is room for its stack.
    let ran = crate::wasm_stack::with_room(|| run_in(process, tid, call, (chunk, len)))
        .unwrap_or_else(|e| {
            Err(wasmtime::Error::msg(format!(
                "thread {tid}: starting a thread for a call at home: {e}"
            )))
        });
    // The answer is read before the chunk goes back: another call may
    // take it at once.
    let answer = ran.and_then(|request| {
        let rc = read_u32(&main.memory, request.wrapping_add(REQUEST_RESULT));
        let value = read_u32(&main.memory, request.wrapping_add(REQUEST_RESULT + 4));
        rc.zip(value).ok_or_else(|| {
            wasmtime::Error::msg(format!(
                "thread {tid}: sync-at-home request at {request:#x} lies outside memory"
            ))
        })
    });
    keep_or_release(process, chain, (chunk, len))?;
    let (rc, value) = answer?;
    publish_main(chain, main);
    Ok(i64::from(value) << 32 | i64::from(rc))
}

/// A scratch chunk for a call at home: the one kept from an earlier call
/// when it is free, else a new one; `None` for a create when the memory is
/// full (it fails with EAGAIN). A join or detach cannot fail that way: it
/// waits for room, which the kept chunk's call or a thread's end gives
/// back (the thread it joins frees its arena when it ends), up to a
/// bound, then ends the program with one line.
fn scratch_chunk(
    process: &Process,
    chain: &super::support::ChainSupport,
    main: &Arc<ThreadMemory>,
    tid: u32,
    op: u32,
) -> wasmtime::Result<Option<(u32, u32)>> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        // The kept chunk first: it is free unless another call runs in it
        // (for a moment), and it needs no room.
        if let Some(kept) = chain.scratch_reserve.locked().take() {
            return Ok(Some(kept));
        }
        match allocate_chunk(process, chain, main, SCRATCH, None) {
            Ok((chunk, len, _)) => return Ok(Some((chunk, len))),
            Err(_) if op == OP_CREATE => return Ok(None),
            Err(e) if process.is_ending() || started.elapsed() >= SCRATCH_WAIT => {
                wasmtime::bail!("thread {tid}: no room to run a thread call at home: {e}")
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
        }
    }
}

/// Gives a scratch chunk back after its call: kept for the next call when
/// none is kept (so a join or detach in a full memory waits at most for
/// another call to end), else back to the zone.
fn keep_or_release(
    process: &Process,
    chain: &super::support::ChainSupport,
    chunk: (u32, u32),
) -> wasmtime::Result<()> {
    {
        let mut kept = chain.scratch_reserve.locked();
        if kept.is_none() {
            *kept = Some(chunk);
            return Ok(());
        }
    }
    release_arena_chunk(process, chunk.0)
}

/// Publishes the main memory as it is, as the main thread's sync points
/// do: what the call did there (a joined thread's exit path, its TSD
/// destructors and what they printed, libc's thread count) is what its
/// caller acquires next. libc's thread-list lock reads free, as in the
/// image a spawn publishes: another routine or exit path may hold it for
/// a moment.
fn publish_main(chain: &super::support::ChainSupport, main: &ThreadMemory) {
    let _merges = main.merges.locked();
    let mut image = chain.image_of_main(main);
    image.write_bytes(chain.thread_list_lock, &0u32.to_le_bytes());
    *chain.published.locked() = Some(image);
    chain.published_changed();
}

/// Writes the request into the scratch chunk `(start, len)` and runs the
/// routine there; the request's address.
fn run_in(
    process: &Arc<Process>,
    tid: u32,
    call: &AtHomeCall,
    (start, len): (u32, u32),
) -> wasmtime::Result<u32> {
    let Some(main) = process.main_memory() else {
        wasmtime::bail!("sync-at-home needs chain mode");
    };
    let top = start + len;
    grow_to(&main.memory, pages_to_reach(u64::from(top)))?;
    let (args, request, attr, deadline) = (
        top - ARGS_FROM_TOP,
        top - REQUEST_FROM_TOP,
        top - ATTR_FROM_TOP,
        top - DEADLINE_FROM_TOP,
    );
    let mut req = [0u8; 48];
    let fields = [
        call.op,
        call.thread,
        if call.attr.is_some() { attr } else { 0 },
        call.start,
        call.arg,
        if call.deadline_ns >= 0 { deadline } else { 0 },
    ];
    for (k, field) in fields.iter().enumerate() {
        req[24 + k * 4..28 + k * 4].copy_from_slice(&field.to_le_bytes());
    }
    // A `struct timespec` on wasm32: 64-bit seconds, 32-bit nanoseconds.
    let mut timespec = [0u8; 16];
    let deadline_ns = call.deadline_ns.max(0);
    timespec[..8].copy_from_slice(&(deadline_ns / 1_000_000_000).to_le_bytes());
    timespec[8..12].copy_from_slice(&((deadline_ns % 1_000_000_000) as i32).to_le_bytes());
    let stack_top = deadline & !15;
    let mut start_args = [0u8; 16];
    for (k, field) in [stack_top, call.tls, call.routine, request]
        .iter()
        .enumerate()
    {
        start_args[k * 4..k * 4 + 4].copy_from_slice(&field.to_le_bytes());
    }
    write_bytes(&main.memory, request, &req)?;
    write_bytes(&main.memory, deadline, &timespec)?;
    write_bytes(&main.memory, args, &start_args)?;
    if let Some(bytes) = &call.attr {
        write_bytes(&main.memory, attr, bytes)?;
    }
    let mut store = process.new_store(tid, Some(main.clone()));
    let instance = process.instantiate(&mut store, Some(main))?;
    store.data_mut().at_home = Some(Arc::new(AtHomeBase { request }));
    let result = instance
        .get_typed_func::<(i32, i32), ()>(&mut store, "wasi_thread_start")
        .and_then(|f| f.call(&mut store, (tid as i32, args as i32)));
    match ThreadEnd::classify(result) {
        ThreadEnd::Finished => {}
        ThreadEnd::Exit(code) => {
            wasmtime::bail!("thread {tid}: a thread call it made at home called exit({code})")
        }
        ThreadEnd::Result(_) => {
            wasmtime::bail!("thread {tid}: a thread call it made at home finished as a thread")
        }
        ThreadEnd::Trap(e) => return Err(e.context(format!("thread {tid}: a thread call at home"))),
    }
    Ok(request)
}

/// Writes `bytes` into `memory` at `addr` (the scratch chunk, which no
/// one else uses while the routine runs).
fn write_bytes(memory: &SharedMemory, addr: u32, bytes: &[u8]) -> wasmtime::Result<()> {
    let data = memory.data();
    let start = addr as usize;
    let cells = data.get(start..start + bytes.len()).ok_or_else(|| {
        wasmtime::Error::msg(format!("sync-at-home: {addr:#x} lies outside memory"))
    })?;
    for (cell, byte) in cells.iter().zip(bytes) {
        // SAFETY: in bounds; a plain store into guest memory, as a
        // thread's own store would be.
        unsafe { cell.get().write_volatile(*byte) };
    }
    Ok(())
}

/// Why a thread created at home could not get its snapshot.
#[derive(Debug, thiserror::Error)]
pub(super) enum NewThreadError {
    #[error("no published image to start a thread from")]
    NoImage,
    #[error("the new thread's memory at {0:#x} lies outside memory")]
    OutsideMemory(u32),
}

/// The snapshot a thread created at home starts from: the published image
/// (which holds what its creator released just before) with what libc
/// wrote for it on top, and its heap arena's first chunk zero (in the
/// main memory and the published image too); as of the
/// main memory's merge number now. What libc wrote goes into the
/// published image at once, under the same locks: a thread's acquire
/// brings every page where the published image and its snapshot differ,
/// so an image without the new thread's block would overwrite its stack
/// at its first sync point, and one that gained the block later would do
/// so at a later one. `merges` is the main memory's, locked.
pub(super) fn new_thread_snapshot(
    chain: &super::support::ChainSupport,
    parent: &ThreadMemory,
    merges: &mut Merges,
    base: &AtHomeBase,
    (arena, arena_len): (u32, u32),
) -> Result<Snapshot, NewThreadError> {
    let mut published = chain.published.locked();
    let Some(image) = published.as_mut() else {
        return Err(NewThreadError::NoImage);
    };
    for (addr, bytes) in new_thread_ranges(&parent.memory, base.request) {
        image.memory_pages = image
            .memory_pages
            .max(pages_to_reach(addr as u64 + bytes.len() as u64));
        if !image.write_bytes(addr, &bytes) {
            return Err(NewThreadError::OutsideMemory(addr));
        }
    }
    // The arena chunk reads zero everywhere the thread's writes meet: a
    // chunk taken for a thread of the main memory keeps what it held
    // there (a thread main starts takes it as it is), but this thread
    // starts from the published image, which may hold other bytes.
    crate::incremental::zero_memory(&parent.memory, arena, arena_len);
    merges.log.forget(arena, arena_len);
    if let Some(running) = parent.image.locked().as_mut() {
        running.zero_range(arena, arena_len);
    }
    image.zero_range(arena, arena_len);
    chain.published_changed();
    Ok(image.clone())
}

/// The byte ranges the request lists, read from the main memory (empty
/// and out-of-bounds ones left out).
fn new_thread_ranges(memory: &SharedMemory, request: u32) -> Vec<(u32, Vec<u8>)> {
    (0..REQUEST_RANGE_COUNT)
        .filter_map(|k| {
            let at = request.checked_add(REQUEST_RANGES + k * 8)?;
            let addr = read_u32(memory, at)?;
            let len = read_u32(memory, at.checked_add(4)?)?;
            if len == 0 || len > MAX_RANGE {
                return None;
            }
            Some((addr, read_bytes(memory, addr, len)?))
        })
        .collect()
}

fn read_u32(memory: &SharedMemory, addr: u32) -> Option<u32> {
    let bytes = read_bytes(memory, addr, 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// `len` bytes of `memory` at `addr`, or `None` out of bounds.
fn read_bytes(memory: &SharedMemory, addr: u32, len: u32) -> Option<Vec<u8>> {
    let data = memory.data();
    let start = addr as usize;
    let end = start.checked_add(len as usize)?;
    let cells = data.get(start..end)?;
    let mut out = vec![0u8; cells.len()];
    // SAFETY: `cells` is in bounds and `UnsafeCell<u8>` has the layout of
    // `u8`; the bytes are read as another thread's loads would read them
    // (no one but the new thread, which runs on a copy, writes its block).
    unsafe {
        std::ptr::copy_nonoverlapping(cells.as_ptr().cast::<u8>(), out.as_mut_ptr(), out.len());
    }
    Some(out)
}
