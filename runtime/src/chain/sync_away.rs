//! Sync points of a thread that runs on a peer, over its call's stream
//! (home-based release consistency, as `sync_point` does at home).
//!
//! Both ends keep the same snapshot of the thread's copy of memory: the
//! worker in the thread's `Origin`, home in the `Origin` it keeps for the
//! call. At each sync call the worker sends what the thread wrote since
//! its last sync point as a diff against that snapshot and moves its
//! snapshot by it; home merges the diff into the main memory (moving its
//! snapshot the same way), makes the call (waiting at home if it must),
//! and answers with what the thread's acquire brings, as a diff from the
//! snapshot to the published image; the worker applies it to the
//! thread's memory and its snapshot. The two snapshots stay equal, so
//! every diff holds exactly the bytes that differ.

use crate::locks::Locked as _;
use std::sync::Arc;

use weft_snapshot::Diff;
use weft_snapshot::wire::{Limits, decode_diff, encode_diff};
use weft_transport::envelope::{HomeReply, SyncCall};

use super::support::support;
use super::sync_calls::{Side, perform};
use super::sync_point::{Away, Here, ThreadCopy as _, grow_to};
use crate::outcome::{Outcome, ProgramEnded};
use crate::process::{Origin, Process, ThreadMemory};
use crate::sync::HomeAtomic;
use crate::trace::Span;
use crate::wasi::Input;

/// Worker side, before a sync call goes home: what the thread wrote since
/// its last sync point, as a wire diff; its snapshot moves by it. The
/// thread's own links in libc's thread list are the shared ones here: its
/// libweft wrappers put them back around every sync point.
pub(crate) fn release_away(memory: &ThreadMemory) -> wasmtime::Result<Vec<u8>> {
    let Some(origin) = &memory.origin else {
        wasmtime::bail!("a sync call away from home from a thread with no snapshot");
    };

    let _own = memory.merges.locked();
    let mut snapshot = origin.snapshot.locked();
    let diff = Here(memory).released(0, &snapshot)?;
    snapshot.apply_runs(&diff);
    Ok(encode_diff(&diff))
}

/// Worker side, before a WASI call goes home: what the thread wrote since
/// its last sync point, as a wire diff, without releasing it (its
/// snapshot stays; every page is compared, so the write tracker keeps its
/// pages for the next sync point).
pub(crate) fn unreleased_away(memory: &ThreadMemory) -> wasmtime::Result<Vec<u8>> {
    let Some(origin) = &memory.origin else {
        wasmtime::bail!("a WASI call away from home from a thread with no snapshot");
    };
    let _own = memory.merges.locked();
    let snapshot = origin.snapshot.locked();
    // SAFETY: the thread is paused in this host call and the other
    // writers of its memory (merges of threads it started) wait for the
    // merge lock held above.
    let bytes = unsafe { crate::snapshot::shared_bytes(&memory.memory) };
    // A lazily filled memory equals its snapshot on every page it does not
    // hold: only those it holds can differ (reading the others would fill
    // them all).
    let held = memory.lazy_fill.get().and_then(|_| {
        crate::touched::present_pages(bytes.as_ptr(), bytes.len(), weft_snapshot::PAGE_SIZE)
    });
    Ok(encode_diff(&Diff::between(
        &snapshot,
        bytes,
        held.as_deref(),
        &[],
    )))
}

/// Worker side, with home's answer: the thread's memory and its snapshot
/// take what the acquire brought. A diff that does not fit the memory is
/// refused whole (a broken or hostile home).
pub(crate) fn acquire_away(memory: &ThreadMemory, updates: &[Vec<u8>]) -> wasmtime::Result<()> {
    let Some(origin) = &memory.origin else {
        wasmtime::bail!("a sync call away from home from a thread with no snapshot");
    };
    let _own = memory.merges.locked();
    let mut snapshot = origin.snapshot.locked();
    for bytes in updates {
        let diff = decode_diff(bytes, &Limits::default())
            .map_err(|e| wasmtime::Error::msg(format!("home's answer to a sync call: {e}")))?;
        grow_to(&memory.memory, diff.memory_pages)
            .map_err(|e| wasmtime::Error::msg(format!("growing memory for a sync point: {e:#}")))?;
        if !snapshot.apply_runs(&diff) {
            wasmtime::bail!("home's answer to a sync call writes past the thread's snapshot");
        }
        write_runs(&memory.memory, &diff, "a sync call")?;
    }
    Ok(())
}

/// Worker side, with home's answer to a WASI call: what the call wrote
/// goes into the thread's memory only (it is the thread's own write, which
/// its next sync point releases). A diff that does not fit the memory is
/// refused whole.
pub(crate) fn write_away(memory: &ThreadMemory, written: &[u8]) -> wasmtime::Result<()> {
    let diff = decode_diff(written, &Limits::default())
        .map_err(|e| wasmtime::Error::msg(format!("home's answer to a WASI call: {e}")))?;
    let _own = memory.merges.locked();
    write_runs(&memory.memory, &diff, "a WASI call")
}

/// Writes the runs of `diff` (home's answer to `what`) into `memory`,
/// whose thread is paused in a host call and whose merge lock the caller
/// holds; refused whole when a run lies past the memory.
fn write_runs(memory: &wasmtime::SharedMemory, diff: &Diff, what: &str) -> wasmtime::Result<()> {
    let data = memory.data();
    if diff.runs.iter().any(|run| run.end() > data.len() as u64) {
        wasmtime::bail!("home's answer to {what} writes past the thread's memory");
    }
    for run in &diff.runs {
        // SAFETY: in bounds (checked above); the thread is paused in this
        // host call, and the other writers of its memory (merges of
        // threads it started) wait for its merge lock, which the caller
        // holds.
        unsafe {
            std::ptr::copy_nonoverlapping(
                run.bytes.as_ptr(),
                data[run.addr as usize..].as_ptr().cast::<u8>().cast_mut(),
                run.bytes.len(),
            )
        };
    }
    Ok(())
}

/// A wire diff a peer sent for one of the program's threads, bounded by the
/// module's memory.
fn peer_diff(process: &Process, bytes: &[u8]) -> Result<Diff, weft_snapshot::wire::WireError> {
    let limits = Limits {
        max_memory_pages: support(process).map_or(0, |chain| chain.memory_max_pages),
        ..Limits::default()
    };
    decode_diff(bytes, &limits)
}

/// Home side: makes WASI call `name(args)` of thread `tid`, which runs on
/// peer `host`, with the process's descriptors, on a copy of the thread's
/// memory: home's copy of its snapshot with what it has not released yet
/// (`unreleased`) applied. Answers with the errno and the bytes the call
/// wrote. Nothing merges: a WASI call is no sync point. The copy costs
/// the thread's memory size per call.
pub(super) fn serve_wasi(
    process: &Arc<Process>,
    (tid, host): (u32, u32),
    origin: &Origin,
    (name, args): (&str, &[i64]),
    unreleased: &[u8],
) -> HomeReply {
    tracing::debug!(tid, host, "a WASI call home: {name}");
    let mut span = crate::trace::span(process.tracer(), name.to_string(), "wasi", tid);
    if let Some(span) = &mut span {
        span.on_host(host);
    }
    let diff = match peer_diff(process, unreleased) {
        Ok(diff) => diff,
        Err(e) => return HomeReply::Refused(format!("thread {tid}: its memory at {name}: {e}")),
    };
    let mut before = origin.snapshot.locked().clone();
    if !before.apply_runs(&diff) {
        return HomeReply::Refused(format!(
            "thread {tid}: its memory at {name} does not fit its snapshot"
        ));
    }
    let mut copy = before.to_memory();
    // wasmtime-wasi's calls need a runtime of their own, and home serves
    // this from inside the network's: on a thread of its own.
    let made = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // A poll on descriptors waits without the shared context,
                // as at home.
                if name == "poll_oneoff"
                    && let Some(made) =
                        crate::wasi::poll_in_copy(process, &mut copy, args, || process.is_ending())
                {
                    return match made {
                        Ok(Some(errno)) => Some(Ok(errno)),
                        Ok(None) => Some(Err(wasmtime::Error::new(ProgramEnded))),
                        Err(e) => Some(Err(e)),
                    };
                }
                let reads = match (name, args) {
                    ("fd_read", [fd, ..]) => i32::try_from(*fd).ok(),
                    _ => None,
                };
                // A read waits for input without the shared context, as
                // at home.
                let made = crate::wasi::until_input(|| {
                    let mut ctx = process.wasi().lock();
                    if reads.is_some_and(|fd| crate::wasi::input_would_block(&mut ctx, fd)) {
                        return Ok(match process.is_ending() {
                            true => Input::Ended,
                            false => Input::Waiting,
                        });
                    }
                    let mut mem = wiggle::GuestMemory::Unshared(&mut copy);
                    Ok(Input::Made(crate::wasi::call_plain(
                        &mut ctx, &mut mem, name, args,
                    )))
                });
                match made {
                    Ok(Some(made)) => made,
                    Ok(None) => Some(Err(wasmtime::Error::new(ProgramEnded))),
                    Err(e) => Some(Err(e)),
                }
            })
            .join()
    });
    let errno = match made {
        Ok(Some(Ok(errno))) => errno,
        Ok(Some(Err(e))) if e.is::<ProgramEnded>() => return HomeReply::ProgramEnded,
        Ok(Some(Err(e))) => {
            // A WASI call that traps traps the thread, as at home.
            process.end(Outcome::trap(tid, e));
            return HomeReply::ProgramEnded;
        }
        Ok(None) => {
            return HomeReply::Refused(format!(
                "thread {tid}: `{name}` with {} arguments is no WASI call home makes",
                args.len()
            ));
        }
        Err(_) => return HomeReply::Refused(format!("thread {tid}: `{name}` failed at home")),
    };
    let written = Diff::between(&before, &copy, None, &[]);
    HomeReply::Wasi {
        errno,
        written: encode_diff(&written),
    }
}

/// Home side: serves sync call `call` of thread `tid`, which runs on peer
/// `host` (for traces) and released `released`; `origin` is home's copy of
/// its snapshot. A failure ends the program as the same failure of a
/// thread at home would.
pub(super) fn serve_sync(
    process: &Arc<Process>,
    (tid, host): (u32, u32),
    origin: &Origin,
    call: &SyncCall,
    released: &[u8],
) -> HomeReply {
    tracing::debug!(tid, host, "a sync call home: {}", call.name());
    let mut span = crate::trace::span(process.tracer(), call.name(), "sync", tid);
    if let Some(span) = &mut span {
        span.on_host(host);
        span.arg("released_bytes", released.len() as u64);
    }
    // Calls that are no sync point at home (a wake, a semaphore's value)
    // release nothing: the thread's private bytes (its own thread-list
    // links) are not shareable then.
    let diff = match peer_diff(process, released) {
        _ if released.is_empty() => None,
        Ok(_) if !call.is_sync_point() => {
            return HomeReply::Refused(format!(
                "thread {tid}: {} is no sync point but carried a release",
                call.name()
            ));
        }
        Ok(diff) => Some(diff),
        Err(e) => {
            return HomeReply::Refused(format!(
                "thread {tid}: what it released at {}: {e}",
                call.name()
            ));
        }
    };
    let mut side = AwaySide {
        process: process.clone(),
        tid,
        away: Away {
            origin,
            released: diff,
            updates: Vec::new(),
        },
    };
    // The thread's writes go home first, whatever the call: its worker
    // moved its snapshot by them already. Releasing before an acquire or
    // a wake is never too early for a program without data races.
    let released_first = if side.away.released.is_some() {
        side.away.sync_point(process, tid, false, None).map(drop)
    } else {
        Ok(())
    };
    let done = released_first.and_then(|()| perform(&mut side, call));
    match done {
        Ok(value) => {
            let updates: Vec<Vec<u8>> = side.away.updates.iter().map(encode_diff).collect();
            if let Some(span) = &mut span {
                span.arg(
                    "acquired_bytes",
                    updates.iter().map(|u| u.len() as u64).sum(),
                );
            }
            HomeReply::Synced { value, updates }
        }
        Err(e) if e.is::<ProgramEnded>() => HomeReply::ProgramEnded,
        Err(e) => {
            // As a thread at home that traps here: the program ends, and
            // its outcome names the thread (and a deadlock as one).
            process.end(Outcome::trap(tid, e));
            HomeReply::ProgramEnded
        }
    }
}

/// A thread on a peer, as its home makes one of its sync calls: it holds
/// no slot here (its worker gave its own up for what may wait).
struct AwaySide<'a> {
    process: Arc<Process>,
    tid: u32,
    away: Away<'a>,
}

impl Side for AwaySide<'_> {
    fn process(&self) -> &Arc<Process> {
        &self.process
    }

    fn tid(&self) -> u32 {
        self.tid
    }

    fn release(&mut self) -> wasmtime::Result<()> {
        self.away
            .sync_point(&self.process, self.tid, false, None)
            .map(drop)
    }

    fn acquire(&mut self) -> wasmtime::Result<()> {
        self.away
            .sync_point(&self.process, self.tid, true, None)
            .map(drop)
    }

    fn atomic(&mut self, op: HomeAtomic) -> wasmtime::Result<u64> {
        self.away
            .sync_point(&self.process, self.tid, true, Some(op))?
            .ok_or_else(|| {
                wasmtime::Error::msg("sync-atomic: the program does not run in chain mode")
            })
    }

    fn load(&mut self) -> wasmtime::Result<bool> {
        self.away.load_point(&self.process, self.tid)
    }

    fn without_slot<T>(&mut self, wait: impl FnOnce() -> T) -> T {
        wait()
    }

    fn yield_slot(&mut self) {}

    fn span(&self, _: &'static str) -> Option<Span> {
        // `serve_sync` traces the call, on the thread's host.
        None
    }
}
