//! A new thread in chain mode: the parent's snapshot, adjusted for the
//! child, and where the child runs (home, a peer, the queue).

use crate::locks::Locked as _;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use wasmtime::Caller;
use weft_snapshot::Snapshot;

use super::arena::{ArenaError, FIRST_ARENA_CHUNK, zero_along};
use super::child::ChildStart;
use super::support::{ARGS_START_ARG, ARGS_START_FUNC, ChainSupport, pages_to_reach};
use crate::home::RemoteCall;
use crate::placement::{self, Place};
use crate::process::{Process, ThreadMemory, ThreadState};
use crate::snapshot;
use crate::start::ThreadError;
use weft_transport::envelope::{HomeReply, HomeRequest};

/// The `u32` at `base + offset` (a guest-given address: overflow is `None`).
pub(super) fn u32_at(snapshot: &Snapshot, base: u32, offset: u32) -> Option<u32> {
    snapshot
        .read_bytes::<4>(base.checked_add(offset)?)
        .map(u32::from_le_bytes)
}

/// Starts chained thread `tid` for the parent calling from `caller`, which
/// runs on `parent`.
pub(super) fn spawn(
    chain: &ChainSupport,
    process: &Arc<Process>,
    caller: &mut Caller<'_, ThreadState>,
    parent: Arc<ThreadMemory>,
    tid: u32,
    start_arg: u32,
) -> Result<(), ThreadError> {
    // From now on the main memory may hold arena blocks (a no-op in a
    // chained parent, whose copy has the flag already).
    if !crate::process::write_guest(caller, chain.heap_active, &1u32.to_le_bytes()) {
        return Err(ThreadError::NotSupported);
    }
    // Before the snapshot: a reused chunk is zeroed in the parent's memory.
    let chunk = caller.data().home().first_arena_chunk(process, &parent);
    let (arena, arena_len) = chunk.map_err(|e| {
        tracing::warn!("chain spawn of thread {tid}: no heap arena: {e}");
        ThreadError::Again
    })?;
    tracing::trace!(tid, arena, "first arena chunk");
    let thread = NewThread {
        tid,
        start_arg,
        arena,
        arena_len,
    };
    let spawned = spawn_with_arena(process, chain, caller, parent, thread);
    if spawned.is_err() {
        caller.data().home().give_back_arena_chunk(process, arena);
    }
    spawned
}

/// The first arena chunk of a thread that a remote thread starts on its
/// worker: home hands it out of its zone; a chunk that held data is zeroed
/// here along the parent's path (home did its side).
pub(crate) fn home_chunk(
    remote: &RemoteCall,
    parent: &Arc<ThreadMemory>,
) -> Result<(u32, u32), ArenaError> {
    match remote.call(&HomeRequest::ArenaNew {
        size: FIRST_ARENA_CHUNK,
    })? {
        HomeReply::Chunk { start, len, dirty } => {
            if dirty {
                zero_along(parent, start, len);
            }
            Ok((start, len))
        }
        HomeReply::NoChunk => Err(ArenaError::Full("home has no room".into())),
        other => Err(ArenaError::HomeAnswered(format!("{other:?}"))),
    }
}

/// A chained thread being started: its id, wasi-libc's start arguments and
/// the first chunk of its heap arena.
pub(super) struct NewThread {
    pub(super) tid: u32,
    pub(super) start_arg: u32,
    pub(super) arena: u32,
    pub(super) arena_len: u32,
}

pub(super) fn spawn_with_arena(
    process: &Arc<Process>,
    chain: &ChainSupport,
    caller: &mut Caller<'_, ThreadState>,
    parent: Arc<ThreadMemory>,
    thread: NewThread,
) -> Result<(), ThreadError> {
    let NewThread {
        tid,
        start_arg,
        arena,
        arena_len,
    } = thread;
    let fail = |what: String| {
        tracing::error!("chain spawn of thread {tid}: {what}");
        ThreadError::Again
    };
    let started = std::time::Instant::now();
    let mut span = caller.data().span("snapshot", "snapshot");
    let globals =
        snapshot::caller_globals(caller, &chain.layout).map_err(|e| fail(e.to_string()))?;
    let at_home = caller.data().at_home.clone();
    let (mut snap, since) = if let Some(base) = &at_home {
        // A chained thread creates this one at home: it starts from the
        // published image, not from the main memory as it is now.
        let mut merges = parent.merges.locked();
        let mut snap = super::at_home::new_thread_snapshot(
            chain,
            &parent,
            &mut merges,
            base,
            (arena, arena_len),
        )
        .map_err(|e| fail(e.to_string()))?;
        snap.globals =
            snapshot::read_globals(&mut *caller, &globals).map_err(|e| fail(e.to_string()))?;
        snap.regions = caller.data().home().merge_regions(process, &parent);
        let since = Arc::new(AtomicU32::new(merges.log.seq()));
        merges.log.watch(&since);
        (snap, since)
    } else {
        let regions = caller.data().home().merge_regions(process, &parent);
        let mut merges = parent.merges.locked();
        let snap = match chain.snapshot_from_image(&parent) {
            Some(mut snap) => {
                snap.globals = snapshot::read_globals(&mut *caller, &globals)
                    .map_err(|e| fail(e.to_string()))?;
                snap.regions = regions;
                snap
            }
            // SAFETY: the parent thread is paused in this host call and
            // merges into its memory wait for the lock we hold.
            None => unsafe {
                snapshot::capture(
                    &mut *caller,
                    &globals,
                    &parent.memory,
                    &chain.layout,
                    regions,
                )
            }
            .map_err(|e| fail(e.to_string()))?,
        };
        if parent.origin.is_none() {
            // Starting a thread is a release of the main thread: what the
            // new thread starts from is what every chained thread takes at
            // its next acquire (older, it would undo the spawn's own writes
            // in their copies).
            // The spawn holds libc's thread-list lock (the spawner's id):
            // a thread taking this image must see it free, as it will be
            // once the spawn returns, or its own spawns and exit wait for a
            // holder that never releases its copy.
            let mut published = chain.published.locked();
            if published.is_some() {
                let mut image = snap.clone();
                image.write_bytes(chain.thread_list_lock, &0u32.to_le_bytes());
                *published = Some(image);
                chain.published_changed();
            }
        }
        // The log forgets writes older than every watched thread's
        // snapshot: this thread's counter is watched from the moment it
        // is read, under the same lock.
        let since = Arc::new(AtomicU32::new(merges.log.seq()));
        merges.log.watch(&since);
        (snap, since)
    };
    let (Some(start_func), Some(start_routine_arg), Some(trampoline), Some(identity)) = (
        u32_at(&snap, start_arg, ARGS_START_FUNC),
        // Checked here, so `start_arg + ARGS_*` below cannot overflow.
        u32_at(&snap, start_arg, ARGS_START_ARG),
        u32_at(&snap, chain.functions, 0),
        u32_at(&snap, chain.functions, 4),
    ) else {
        return Err(fail("start arguments out of bounds".into()));
    };
    let mut entry = [0u8; 16];
    entry[..4].copy_from_slice(&start_func.to_le_bytes());
    entry[4..8].copy_from_slice(&start_routine_arg.to_le_bytes());
    entry[8..12].copy_from_slice(&arena.to_le_bytes());
    entry[12..].copy_from_slice(&arena_len.to_le_bytes());
    // The child's memory reaches its arena (the zone may lie past the
    // parent's memory; the merge grows the parent as far).
    snap.memory_pages = snap
        .memory_pages
        .max(pages_to_reach(arena as u64 + arena_len as u64));
    let adjusted = snap.write_bytes(chain.thread_list_lock, &0u32.to_le_bytes())
        && snap.write_bytes(start_arg + ARGS_START_FUNC, &trampoline.to_le_bytes())
        && snap.write_bytes(chain.entry, &entry);
    if !adjusted {
        return Err(fail("libweft's chain symbols lie outside memory".into()));
    }
    tracing::debug!(
        tid,
        captured_us = started.elapsed().as_micros() as u64,
        pages = snap.page_count(),
        "chain snapshot"
    );
    if let Some(span) = &mut span {
        span.arg("pages", snap.page_count() as u64);
        span.arg("new_thread", tid as u64);
    }
    drop(span);
    let child = ChildStart {
        home: caller.data().home_handle(),
        process: process.clone(),
        tid,
        start_arg,
        arena,
        parent,
        snapshot: Arc::new(Mutex::new(snap)),
        since,
        identity,
        start_func,
    };
    let home_only = chain.home_only.locked().contains(&start_func);
    let started = match process.start_config().placer.clone() {
        Some(placer) if !home_only => {
            let place = placement::place(
                placer.placement(),
                || process.try_take_slot(),
                || placer.reserve(),
            );
            match place {
                Place::Home => process.execute(Box::new(move || child.run())),
                Place::Peer(peer) => {
                    let away = placer.clone();
                    let started = process.execute(Box::new(move || child.run_away(&*away, peer)));
                    if started.is_err() {
                        placer.unreserve(peer);
                    }
                    started
                }
                Place::Queue => process.start_with_slot(Box::new(move || child.run())),
            }
        }
        _ => {
            // A thread started on a worker counts from now until its exit
            // path is done: its call waits for it.
            let running = child.home.clone().running_thread();
            process.start_with_slot(Box::new(move || {
                let _running = running;
                child.run()
            }))
        }
    };
    started.map_err(|e| fail(format!("no OS thread: {e}")))
}
