//! Thread imports: the standard `wasi`.`thread-spawn` and the core-ABI
//! lowering of the `weft:threads/threads` WIT interface (`wit/threads.wit`).

use wasmtime::{Caller, Linker};
use weft_snapshot::{ElemType, MergeOp, MergeRegion};

use std::time::{Duration, Instant};

use crate::process::{ChainFinished, ThreadExited, ThreadState, write_guest};
use crate::start::{ThreadError, ThreadMode};
use crate::sync::{HomeAtomic, LockKind, MutexKind, SyncError, SyncTable};

/// Module and name of the wasi-threads spawn import.
pub const WASI_MODULE: &str = "wasi";
pub const WASI_SPAWN: &str = "thread-spawn";

/// Core import module of the `weft:threads/threads` interface.
pub const WEFT_MODULE: &str = "weft:threads/threads@0.1.0";
pub const WEFT_FUNCTIONS: &[&str] = &[
    "spawn",
    "mode",
    "current-id",
    "exit-current",
    "finish",
    "chain-unsupported",
    "register-merge-region",
    "arena-grow",
    "arena-release",
    "arena-lookup",
    "wait-begin",
    "wait-end",
    "available-parallelism",
    "sync-lock",
    "sync-unlock",
    "sync-barrier",
    "sync-cond-wait",
    "sync-cond-wake",
    "sync-sem-init",
    "sync-sem-wait",
    "sync-sem-post",
    "sync-sem-value",
    "sync-point",
    "sync-atomic",
    "sync-load",
];

/// `sync-lock` flags: the mutex kind (musl's type number) in bits 0-1,
/// and a try-lock.
const SYNC_TRY: u32 = 4;
/// `sync-cond-wait` flag: a wait on an address (`memory.atomic.wait`), for
/// reports.
const SYNC_FUTEX: u32 = 1 << 8;
/// `sync-lock`/`sync-unlock` flag: a FILE's lock, whose buffer may stay in
/// the thread's copy while it runs away from home (its output travels
/// with its call, see `remote.rs`).
pub(crate) const SYNC_FILE: u32 = 1 << 9;

/// wasi-threads reports a failed spawn as a negative number; libc turns any
/// of them into `EAGAIN`. Use preview1's errno values.
fn wasi_errno(error: ThreadError) -> i32 {
    match error {
        ThreadError::Again => -6,         // EAGAIN
        ThreadError::NotSupported => -58, // ENOTSUP
    }
}

pub fn add_to_linker(linker: &mut Linker<ThreadState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        WASI_MODULE,
        WASI_SPAWN,
        |mut caller: Caller<'_, ThreadState>, start_arg: i32| -> i32 {
            let process = caller.data().process.clone();
            match process.spawn(&mut caller, start_arg) {
                Ok(tid) => tid as i32,
                Err(e) => wasi_errno(e),
            }
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "spawn",
        |mut caller: Caller<'_, ThreadState>, start_arg: i32, ret: i32| -> wasmtime::Result<()> {
            let process = caller.data().process.clone();
            let (discriminant, payload) = match process.spawn(&mut caller, start_arg) {
                Ok(tid) => (0u8, tid),
                Err(e) => (1u8, e as u32),
            };
            let mut area = [0u8; 8];
            area[0] = discriminant;
            area[4..8].copy_from_slice(&payload.to_le_bytes());
            write_result_area(&mut caller, ret as u32, &area, 4)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "mode",
        |caller: Caller<'_, ThreadState>| -> i32 { caller.data().process.mode() as i32 },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "current-id",
        |caller: Caller<'_, ThreadState>| -> i32 { caller.data().tid as i32 },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "register-merge-region",
        |mut caller: Caller<'_, ThreadState>,
         addr: i32,
         len: i32,
         op: i32,
         ty: i32,
         ret: i32|
         -> wasmtime::Result<()> {
            let (Some(op), Some(ty)) = (merge_op(op), elem_type(ty)) else {
                wasmtime::bail!(
                    "weft:threads register-merge-region: invalid enum value (op {op}, type {ty})"
                );
            };
            let region = MergeRegion {
                addr: addr as u32,
                len: len as u32,
                op,
                ty,
            };
            let process = caller.data().process.clone();
            let area = match process.register_merge_region(region) {
                Ok(()) => [0u8, 0],
                Err(e) => [1u8, e as u8],
            };
            write_result_area(&mut caller, ret as u32, &area, 1)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "finish",
        |caller: Caller<'_, ThreadState>, result: i32| -> wasmtime::Result<()> {
            match caller.data().process.mode() {
                ThreadMode::Chain => Err(wasmtime::Error::new(ChainFinished(result as u32))),
                ThreadMode::Local => Err(wasmtime::Error::new(ThreadExited)),
            }
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "chain-unsupported",
        |_caller: Caller<'_, ThreadState>, op: i32| -> wasmtime::Result<()> {
            let what = sync_op(op).map_or("waits for another thread", SyncOp::what);
            wasmtime::bail!(
                "the thread {what}, which cannot work in chain mode: each chained thread runs on its own copy of memory. Share data through joins and merge regions, or run with --thread-mode local"
            )
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "arena-grow",
        |mut caller: Caller<'_, ThreadState>, size: i32| -> i32 {
            crate::chain::grow_arena(&mut caller, size as u32) as i32
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "arena-release",
        |caller: Caller<'_, ThreadState>, chunk: i32| -> wasmtime::Result<()> {
            crate::chain::release_arena_chunk(&caller.data().process, chunk as u32)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "arena-lookup",
        |caller: Caller<'_, ThreadState>, addr: i32| -> i32 {
            crate::chain::arena_of(&caller.data().process, addr as u32) as i32
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "wait-begin",
        |mut caller: Caller<'_, ThreadState>| {
            let state = caller.data_mut();
            if let Some(table) = crate::chain::sync_table(&state.process) {
                table.joining(state.tid, true);
            }
            if std::mem::take(&mut state.holds_slot) {
                state.process.clone().release_slot();
            }
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "wait-end",
        |mut caller: Caller<'_, ThreadState>| {
            let state = caller.data_mut();
            if let Some(table) = crate::chain::sync_table(&state.process) {
                table.joining(state.tid, false);
            }
            if state.arena != 0 && !state.holds_slot {
                state.process.clone().acquire_slot();
                caller.data_mut().holds_slot = true;
            }
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "available-parallelism",
        |_caller: Caller<'_, ThreadState>| -> i32 {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get().min(i32::MAX as usize) as i32)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-lock",
        |mut caller: Caller<'_, ThreadState>,
         addr: i32,
         flags: i32,
         timeout_ns: i64|
         -> wasmtime::Result<i32> {
            let _span = caller.data().span("sync-lock", "sync");
            let flags = flags as u32;
            let kind = LockKind::from_bits(flags);
            let deadline = deadline_after(timeout_ns);
            synchronise(&mut caller, false, |table, tid, live| {
                table.lock(tid, addr as u32, kind, true, None, live)
            })
            .or_else(|e| match e {
                SyncError::Busy if flags & SYNC_TRY == 0 => {
                    blocking(&mut caller, |table, tid, live| {
                        table.lock(tid, addr as u32, kind, false, deadline, live)
                    })
                }
                e => Err(e),
            })
            .map_or_else(errno_or_trap, |()| Ok(0))
            .and_then(|rc| acquire(&mut caller, rc))
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-unlock",
        |mut caller: Caller<'_, ThreadState>, addr: i32, flags: i32| -> wasmtime::Result<i32> {
            let _span = caller.data().span("sync-unlock", "sync");
            let kind = LockKind::from_bits(flags as u32);
            synchronise(&mut caller, true, |table, tid, _| {
                table.unlock(tid, addr as u32, kind)
            })
            .map_or_else(errno_or_trap, |()| Ok(0))
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-barrier",
        |mut caller: Caller<'_, ThreadState>, addr: i32, count: i32| -> wasmtime::Result<i32> {
            let _span = caller.data().span("sync-barrier", "sync");
            release(&mut caller)?;
            let serial = blocking(&mut caller, |table, tid, live| {
                table.barrier_wait(tid, addr as u32, count as u32, live)
            });
            match serial {
                Ok(serial) => acquire(&mut caller, serial as i32),
                Err(e) => errno_or_trap(e),
            }
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-cond-wait",
        |mut caller: Caller<'_, ThreadState>,
         cond: i32,
         mutex: i32,
         flags: i32,
         timeout_ns: i64|
         -> wasmtime::Result<i32> {
            let _span = caller.data().span("sync-cond-wait", "sync");
            let kind = MutexKind::from_flags(flags as u32);
            let deadline = deadline_after(timeout_ns);
            release(&mut caller)?;
            let woken = blocking(&mut caller, |table, tid, live| {
                table.cond_wait(
                    tid,
                    (cond as u32, flags as u32 & SYNC_FUTEX != 0),
                    mutex as u32,
                    kind,
                    deadline,
                    live,
                )
            });
            // Woken or timed out, the thread holds the mutex again.
            let rc = match woken {
                Ok(()) => 0,
                Err(SyncError::TimedOut) => SyncError::TimedOut.errno(),
                Err(e) => return errno_or_trap(e),
            };
            acquire(&mut caller, rc)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-atomic",
        |caller: Caller<'_, ThreadState>,
         op: i32,
         bytes: i32,
         addr: i32,
         value: i64,
         expected: i64|
         -> wasmtime::Result<i64> {
            let _span = caller.data().span("sync-atomic", "sync");
            let Some(op) = HomeAtomic::new(
                op as u32,
                bytes as u32,
                addr as u32,
                value as u64,
                expected as u64,
            ) else {
                wasmtime::bail!(
                    "weft:threads: sync-atomic {op} of {bytes} bytes at {addr:#x} is not an operation"
                );
            };
            let state = caller.data();
            crate::chain::atomic_at_home(&state.process, state.tid, state.memory.as_ref(), op)
                .map(|result| result as i64)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-cond-wake",
        |caller: Caller<'_, ThreadState>, cond: i32, all: i32| -> i32 {
            let _span = caller.data().span("sync-cond-wake", "sync");
            crate::chain::sync_table(&caller.data().process)
                .map_or(0, |table| table.cond_wake(cond as u32, all != 0) as i32)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-sem-init",
        |caller: Caller<'_, ThreadState>, addr: i32, value: i32| {
            let _span = caller.data().span("sync-sem-init", "sync");
            if let Some(table) = crate::chain::sync_table(&caller.data().process) {
                table.sem_init(addr as u32, value as u32);
            }
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-sem-wait",
        |mut caller: Caller<'_, ThreadState>,
         addr: i32,
         nonblocking: i32,
         timeout_ns: i64|
         -> wasmtime::Result<i32> {
            let _span = caller.data().span("sync-sem-wait", "sync");
            let deadline = deadline_after(timeout_ns);
            let taken = synchronise(&mut caller, false, |table, tid, live| {
                table.sem_wait(tid, addr as u32, true, None, live)
            })
            .or_else(|e| match e {
                SyncError::TooDeep if nonblocking == 0 => {
                    blocking(&mut caller, |table, tid, live| {
                        table.sem_wait(tid, addr as u32, false, deadline, live)
                    })
                }
                e => Err(e),
            });
            taken
                .map_or_else(errno_or_trap, |()| Ok(0))
                .and_then(|rc| acquire(&mut caller, rc))
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-sem-post",
        |mut caller: Caller<'_, ThreadState>, addr: i32| -> wasmtime::Result<i32> {
            let _span = caller.data().span("sync-sem-post", "sync");
            synchronise(&mut caller, true, |table, _, _| table.sem_post(addr as u32))
                .map_or_else(errno_or_trap, |()| Ok(0))
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-sem-value",
        |caller: Caller<'_, ThreadState>, addr: i32| -> i32 {
            let _span = caller.data().span("sync-sem-value", "sync");
            crate::chain::sync_table(&caller.data().process)
                .map_or(0, |table| table.sem_value(addr as u32) as i32)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-point",
        |mut caller: Caller<'_, ThreadState>| -> wasmtime::Result<()> {
            let _span = caller.data().span("sync-point", "sync");
            release(&mut caller)?;
            // A sync point with no object is how a thread waits for a flag
            // (OpenMP flush in a loop): it lets a queued thread, which may
            // be the one it waits for, have its slot for a while.
            if caller.data().holds_slot {
                caller.data().process.yield_slot();
            }
            acquire(&mut caller, 0).map(drop)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "sync-load",
        |caller: Caller<'_, ThreadState>| -> wasmtime::Result<()> {
            let _span = caller.data().span("sync-load", "sync");
            let state = caller.data();
            let synchronised =
                crate::chain::load_point(&state.process, state.tid, state.memory.as_ref())?;
            // A load that found nothing new is how a thread spins on a
            // flag: a queued thread, maybe the one it waits for, gets its
            // slot for a while.
            if !synchronised && state.holds_slot {
                state.process.yield_slot();
            }
            Ok(())
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "exit-current",
        |_caller: Caller<'_, ThreadState>| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(ThreadExited))
        },
    )?;
    Ok(())
}

/// A deadline `timeout_ns` from now; none for a negative timeout.
fn deadline_after(timeout_ns: i64) -> Option<Instant> {
    u64::try_from(timeout_ns)
        .ok()
        .map(|ns| Instant::now() + Duration::from_nanos(ns))
}

/// The calling thread's writes go home (see `chain::sync_point`).
fn release(caller: &mut Caller<'_, ThreadState>) -> wasmtime::Result<()> {
    let state = caller.data();
    crate::chain::sync_point(&state.process, state.tid, state.memory.as_ref(), false)
}

/// The calling thread's copy takes what home published; passes `rc` on.
fn acquire(caller: &mut Caller<'_, ThreadState>, rc: i32) -> wasmtime::Result<i32> {
    let state = caller.data();
    crate::chain::sync_point(&state.process, state.tid, state.memory.as_ref(), true)?;
    Ok(rc)
}

/// Runs `op` on the program's synchronisation table, after a release when
/// `release_first`, without waiting.
fn synchronise<T>(
    caller: &mut Caller<'_, ThreadState>,
    release_first: bool,
    op: impl FnOnce(&SyncTable, u32, &dyn Fn() -> u32) -> Result<T, SyncError>,
) -> Result<T, SyncError> {
    if release_first && let Err(e) = release(caller) {
        return Err(SyncError::Failed(format!("{e:#}")));
    }
    let state = caller.data();
    let process = state.process.clone();
    let Some(table) = crate::chain::sync_table(&process) else {
        return Err(SyncError::Failed(
            "synchronisation through the host needs chain mode".into(),
        ));
    };
    op(table, state.tid, &|| process.running_threads())
}

/// Runs `op`, which may wait, after giving the thread's slot up (a thread
/// it waits for may be queued for one); takes a slot again after.
fn blocking<T>(
    caller: &mut Caller<'_, ThreadState>,
    op: impl FnOnce(&SyncTable, u32, &dyn Fn() -> u32) -> Result<T, SyncError>,
) -> Result<T, SyncError> {
    crate::process::without_slot(caller, |caller| synchronise(caller, false, op))
}

/// A synchronisation error as the errno the guest gets, or as the trap that
/// ends the program (a deadlock, a failed sync point).
fn errno_or_trap(e: SyncError) -> wasmtime::Result<i32> {
    match e {
        SyncError::Ended => Err(wasmtime::Error::new(crate::outcome::ProgramEnded)),
        // Typed, so that the program's outcome names the deadlock.
        SyncError::Deadlock(_) => Err(wasmtime::Error::new(e)),
        SyncError::Failed(_) => Err(wasmtime::Error::msg(e.to_string())),
        e => Ok(e.errno()),
    }
}

/// Writes a `result` return area at `addr`, which must be `align`-aligned.
pub(crate) fn write_result_area(
    caller: &mut Caller<'_, ThreadState>,
    addr: u32,
    data: &[u8],
    align: u32,
) -> wasmtime::Result<()> {
    if !addr.is_multiple_of(align) {
        wasmtime::bail!("weft:threads: return area {addr:#x} is not {align}-byte aligned");
    }
    if !write_guest(caller, addr, data) {
        wasmtime::bail!("weft:threads: return area {addr:#x} is out of bounds");
    }
    Ok(())
}

/// The cases of the WIT enums of `weft:threads` as the host decodes them,
/// in order of their index: `(wit enum, Rust case names)`.
pub fn wit_enum_cases() -> Vec<(&'static str, Vec<String>)> {
    let errno = |i: i32| {
        [
            crate::start::ThreadError::Again,
            crate::start::ThreadError::NotSupported,
        ]
        .into_iter()
        .find(|e| *e as i32 == i)
    };
    let mode = |i: i32| {
        [
            crate::start::ThreadMode::Local,
            crate::start::ThreadMode::Chain,
        ]
        .into_iter()
        .find(|m| *m as i32 == i)
    };
    vec![
        ("thread-mode", cases(mode)),
        ("errno", cases(errno)),
        ("merge-op", cases(merge_op)),
        ("elem-type", cases(elem_type)),
        (
            "region-error",
            cases(|i| {
                u8::try_from(i)
                    .ok()
                    .and_then(crate::process::RegionError::from_code)
            }),
        ),
        ("sync-op", cases(sync_op)),
    ]
}

/// The Rust names of the cases `decode` knows, from index 0 up to the
/// first it does not.
pub(crate) fn cases<T: std::fmt::Debug>(decode: impl Fn(i32) -> Option<T>) -> Vec<String> {
    (0..)
        .map_while(decode)
        .map(|case| format!("{case:?}"))
        .collect()
}

/// The WIT `sync-op` case `index`: what a thread in chain mode was about
/// to wait for.
fn sync_op(index: i32) -> Option<SyncOp> {
    Some(match index {
        0 => SyncOp::CondWait,
        1 => SyncOp::BarrierWait,
        2 => SyncOp::MutexHeld,
        3 => SyncOp::OpenmpOrdered,
        4 => SyncOp::ThreadCancel,
        5 => SyncOp::ThreadSignal,
        _ => return None,
    })
}

/// The synchronisation `chain-unsupported` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncOp {
    CondWait,
    BarrierWait,
    MutexHeld,
    OpenmpOrdered,
    ThreadCancel,
    ThreadSignal,
}

impl SyncOp {
    fn what(self) -> &'static str {
        match self {
            Self::CondWait => "waits on a condition variable",
            Self::BarrierWait => "waits at a barrier",
            Self::MutexHeld => "locks a mutex that another thread holds",
            Self::OpenmpOrdered => "runs an OpenMP ordered loop with its team",
            Self::ThreadCancel => "cancels another thread (pthread_cancel)",
            Self::ThreadSignal => {
                "signals another thread (pthread_kill, or kill and timers from a chained thread)"
            }
        }
    }
}

/// The WIT `merge-op` case `index`.
fn merge_op(index: i32) -> Option<MergeOp> {
    Some(match index {
        0 => MergeOp::Bytewise,
        1 => MergeOp::Ignore,
        2 => MergeOp::Sum,
        3 => MergeOp::Subtract,
        4 => MergeOp::Product,
        5 => MergeOp::Min,
        6 => MergeOp::Max,
        7 => MergeOp::Xor,
        _ => return None,
    })
}

/// The WIT `elem-type` case `index`.
fn elem_type(index: i32) -> Option<ElemType> {
    Some(match index {
        0 => ElemType::I32,
        1 => ElemType::I64,
        2 => ElemType::F32,
        3 => ElemType::F64,
        _ => return None,
    })
}
