//! What each synchronisation import of `weft:threads` does, written once
//! for every thread that synchronises through its home: a chained thread
//! on this host (`Here`, over its caller) and a thread on a peer whose
//! call home this host serves (`chain::Away`). Threads in local mode use
//! the memory's own atomics and never get here.
//!
//! The guest-facing part (decoding arguments into a [`SyncCall`]) is in
//! `threads.rs`; where the call goes is the thread's `Home`: the process
//! runs it with [`perform`] (through `Chaining`), a thread away from home
//! sends it over its call's stream (`remote.rs`), and its home serves it
//! with [`perform`] too (`sync_away.rs`).

use std::sync::Arc;

use std::time::{Duration, Instant};

use wasmtime::Caller;
use weft_transport::envelope::SyncCall;

use crate::process::{Process, ThreadState};
use crate::sync::{HomeAtomic, LockKind, MutexKind, SyncError};
use crate::trace::Span;

/// `sync-lock` flags: the mutex kind (musl's type number) in bits 0-1,
/// and a try-lock.
const SYNC_TRY: u32 = 4;
/// `sync-cond-wait` flag: a wait on an address (`memory.atomic.wait`), for
/// reports.
const SYNC_FUTEX: u32 = 1 << 8;

/// The thread that synchronises, as its home sees it.
pub(crate) trait Side {
    fn process(&self) -> &Arc<Process>;
    fn tid(&self) -> u32;
    /// The thread's writes since its last sync point go home.
    fn release(&mut self) -> wasmtime::Result<()>;
    /// The thread's copy takes what home published.
    fn acquire(&mut self) -> wasmtime::Result<()>;
    /// An atomic operation on the value every thread shares, as a sync
    /// point (a release, the operation, an acquire).
    fn atomic(&mut self, op: HomeAtomic) -> wasmtime::Result<u64>;
    /// An atomic load's acquire, if home published anything since the
    /// thread's last one: whether it synchronised.
    fn load(&mut self) -> wasmtime::Result<bool>;
    /// Runs `wait` (which may block for another thread) with the thread's
    /// slot on this host given up.
    fn without_slot<T>(&mut self, wait: impl FnOnce() -> T) -> T;
    /// Lets a queued thread have the slot for a while (the thread spins
    /// on a flag).
    fn yield_slot(&mut self);
    fn span(&self, name: &'static str) -> Option<Span>;
}

/// Makes `call` for `side`: the value the import returns (an errno, a
/// count, an atomic's result), or the trap that stops the thread (the
/// program ended, a deadlock, a sync point that failed).
pub(crate) fn perform(side: &mut impl Side, call: &SyncCall) -> wasmtime::Result<i64> {
    let _span = side.span(call.name());
    let process = side.process().clone();
    let tid = side.tid();
    let live = || process.running_threads();
    let table = || super::sync_table(&process).ok_or(SyncError::NotChainMode);
    match *call {
        SyncCall::Lock {
            addr,
            flags,
            timeout_ns,
        } => {
            let kind = LockKind::from_bits(flags);
            let deadline = deadline_after(timeout_ns);
            let locked = match table().and_then(|t| t.lock(tid, addr, kind, true, None, &live)) {
                Err(SyncError::Busy) if flags & SYNC_TRY == 0 => {
                    // The thread's writes so far go home before it blocks:
                    // what it wrote before the call is visible while it
                    // waits, as natively.
                    side.release()?;
                    side.without_slot(|| {
                        table().and_then(|t| t.lock(tid, addr, kind, false, deadline, &live))
                    })
                }
                first => first,
            };
            let rc = errno_or_trap(locked.map(|()| 0))?;
            side.acquire()?;
            Ok(rc)
        }
        SyncCall::Unlock { addr, flags } => {
            side.release()?;
            let kind = LockKind::from_bits(flags);
            errno_or_trap(table().and_then(|t| t.unlock(tid, addr, kind)).map(|()| 0))
        }
        SyncCall::Barrier { addr, count } => {
            side.release()?;
            let serial =
                side.without_slot(|| table().and_then(|t| t.barrier_wait(tid, addr, count, &live)));
            let rc = errno_or_trap(serial.map(i64::from))?;
            side.acquire()?;
            Ok(rc)
        }
        SyncCall::CondWait {
            cond,
            mutex,
            flags,
            timeout_ns,
        } => {
            let kind = MutexKind::from_flags(flags);
            let deadline = deadline_after(timeout_ns);
            side.release()?;
            let woken = side.without_slot(|| {
                table().and_then(|t| {
                    t.cond_wait(
                        tid,
                        (cond, flags & SYNC_FUTEX != 0),
                        mutex,
                        kind,
                        deadline,
                        &live,
                    )
                })
            });
            // Woken or timed out, the thread holds the mutex again.
            let rc = match woken {
                Ok(()) => 0,
                Err(SyncError::TimedOut) => i64::from(SyncError::TimedOut.errno()),
                Err(e) => return errno_or_trap(Err(e)),
            };
            side.acquire()?;
            Ok(rc)
        }
        SyncCall::CondWake { cond, all } => {
            Ok(table().map_or(0, |t| t.cond_wake(cond, all)).into())
        }
        SyncCall::SemInit { addr, value } => {
            if let Ok(t) = table() {
                t.sem_init(addr, value);
            }
            Ok(0)
        }
        SyncCall::SemWait {
            addr,
            nonblocking,
            timeout_ns,
        } => {
            let deadline = deadline_after(timeout_ns);
            let taken = match table().and_then(|t| t.sem_wait(tid, addr, true, None, &live)) {
                Err(SyncError::TooDeep) if !nonblocking => {
                    // As for a lock: released before it blocks.
                    side.release()?;
                    side.without_slot(|| {
                        table().and_then(|t| t.sem_wait(tid, addr, false, deadline, &live))
                    })
                }
                first => first,
            };
            let rc = errno_or_trap(taken.map(|()| 0))?;
            side.acquire()?;
            Ok(rc)
        }
        SyncCall::SemPost { addr } => {
            side.release()?;
            errno_or_trap(table().and_then(|t| t.sem_post(addr)).map(|()| 0))
        }
        SyncCall::SemValue { addr } => Ok(table().map_or(0, |t| t.sem_value(addr)).into()),
        SyncCall::Point => {
            side.release()?;
            // A sync point with no object is how a thread waits for a flag
            // (OpenMP flush in a loop): it lets a queued thread, which may
            // be the one it waits for, have its slot for a while.
            side.yield_slot();
            side.acquire()?;
            Ok(0)
        }
        SyncCall::Atomic {
            op,
            bytes,
            addr,
            value,
            expected,
        } => {
            let Some(atomic) = HomeAtomic::new(op, bytes, addr, value, expected) else {
                wasmtime::bail!(
                    "weft:threads: sync-atomic {op} of {bytes} bytes at {addr:#x} is not an operation"
                );
            };
            side.atomic(atomic).map(|result| result as i64)
        }
        SyncCall::Pause => {
            // An acquire releases first.
            side.acquire()?;
            Ok(0)
        }
        SyncCall::AtHome(ref at_home) => {
            // A release first: a thread it creates starts from the
            // published image, which then holds what it wrote before.
            side.release()?;
            // A join may wait for another thread: the slot is free meanwhile.
            let value = side.without_slot(|| super::at_home::run(&process, tid, at_home))?;
            side.acquire()?;
            Ok(value)
        }
        SyncCall::Load => {
            // A load that found nothing new is how a thread spins on a
            // flag: a queued thread, maybe the one it waits for, gets its
            // slot for a while.
            if !side.load()? {
                side.yield_slot();
            }
            Ok(0)
        }
    }
}

/// A deadline `timeout_ns` from now; none for a negative timeout.
fn deadline_after(timeout_ns: i64) -> Option<Instant> {
    u64::try_from(timeout_ns)
        .ok()
        .map(|ns| Instant::now() + Duration::from_nanos(ns))
}

/// A synchronisation result as the value the guest gets (an errno for
/// what POSIX reports), or as the trap that ends the program (a deadlock,
/// a failed sync point).
fn errno_or_trap(result: Result<i64, SyncError>) -> wasmtime::Result<i64> {
    match result {
        Ok(value) => Ok(value),
        Err(SyncError::Ended) => Err(wasmtime::Error::new(crate::outcome::ProgramEnded)),
        // Typed, so that the program's outcome names the deadlock.
        Err(e @ SyncError::Deadlock(_)) => Err(wasmtime::Error::new(e)),
        Err(e @ SyncError::NotChainMode) => Err(wasmtime::Error::new(e)),
        Err(e) => Ok(e.errno().into()),
    }
}

/// A chained thread on this host, inside one of its imports.
pub(crate) struct Here<'a, 'b> {
    pub(crate) caller: &'a mut Caller<'b, ThreadState>,
    pub(crate) process: Arc<Process>,
}

impl Side for Here<'_, '_> {
    fn process(&self) -> &Arc<Process> {
        &self.process
    }

    fn tid(&self) -> u32 {
        self.caller.data().tid
    }

    fn release(&mut self) -> wasmtime::Result<()> {
        let state = self.caller.data();
        super::sync_point(&self.process, state.tid, state.memory.as_ref(), false)
    }

    fn acquire(&mut self) -> wasmtime::Result<()> {
        let state = self.caller.data();
        super::sync_point(&self.process, state.tid, state.memory.as_ref(), true)
    }

    fn atomic(&mut self, op: HomeAtomic) -> wasmtime::Result<u64> {
        let state = self.caller.data();
        super::atomic_at_home(&self.process, state.tid, state.memory.as_ref(), op)
    }

    fn load(&mut self) -> wasmtime::Result<bool> {
        let state = self.caller.data();
        super::load_point(&self.process, state.tid, state.memory.as_ref())
    }

    fn without_slot<T>(&mut self, wait: impl FnOnce() -> T) -> T {
        crate::process::without_slot(self.caller, |_| wait())
    }

    fn yield_slot(&mut self) {
        if self.caller.data().holds_slot {
            self.process.yield_slot();
        }
    }

    fn span(&self, name: &'static str) -> Option<Span> {
        self.caller.data().span(name, "sync")
    }
}
