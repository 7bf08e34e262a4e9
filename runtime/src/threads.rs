//! Thread imports: the standard `wasi`.`thread-spawn` and the core-ABI
//! lowering of the `weft:threads/threads` WIT interface (`wit/threads.wit`).

use wasmtime::{Caller, Extern, Linker, Val};
use weft_snapshot::{ElemType, MergeOp, MergeRegion};

use crate::process::{ChainFinished, ThreadExited, ThreadState, write_guest};
use crate::stack_check;
use crate::start::{ThreadError, ThreadMode};
use weft_transport::envelope::{ATTR_BYTES, AtHomeCall, SyncCall};

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
    "wait-slice",
    "available-parallelism",
    "set-stack-bottom",
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
    "sync-at-home",
    "sync-pause",
];

/// wasi-threads reports a failed spawn as a negative number; libc turns any
/// of them into `EAGAIN`. Use preview1's errno values.
fn wasi_errno(error: ThreadError) -> i32 {
    match error {
        ThreadError::Again => -6,         // EAGAIN
        ThreadError::NotSupported => -58, // ENOTSUP
    }
}

/// Defines sync import `$name` of `WEFT_MODULE`: its arguments become
/// `$call`, which the thread's home makes; the value narrows to the
/// import's result type (none: the value is dropped).
macro_rules! sync_import {
    ($linker:ident, $name:literal, ($($arg:ident: $ty:ty),*) -> $ret:ty, $call:expr) => {
        $linker.func_wrap(
            WEFT_MODULE,
            $name,
            |mut caller: Caller<'_, ThreadState>, $($arg: $ty),*| -> wasmtime::Result<$ret> {
                synchronise(&mut caller, $call).map(|value| value as $ret)
            },
        )?;
    };
    ($linker:ident, $name:literal, ($($arg:ident: $ty:ty),*), $call:expr) => {
        $linker.func_wrap(
            WEFT_MODULE,
            $name,
            |mut caller: Caller<'_, ThreadState>, $($arg: $ty),*| -> wasmtime::Result<()> {
                synchronise(&mut caller, $call).map(drop)
            },
        )?;
    };
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
            let region = merge_region(addr, len, op, ty)?;
            let state = caller.data();
            let result = state.home().register_merge_region(&state.process, region)?;
            write_region_result(&mut caller, ret, result)
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
        |mut caller: Caller<'_, ThreadState>, size: i32| -> wasmtime::Result<i32> {
            let home = caller.data().home_handle();
            home.arena_grow(&mut caller, size as u32)
                .map(|start| start as i32)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "arena-release",
        |caller: Caller<'_, ThreadState>, chunk: i32| -> wasmtime::Result<()> {
            tracing::trace!(tid = caller.data().tid, chunk, "arena-release");
            crate::chain::release_arena_chunk(&caller.data().process, chunk as u32)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "arena-lookup",
        |caller: Caller<'_, ThreadState>, addr: i32| -> wasmtime::Result<i32> {
            let state = caller.data();
            let arena = state
                .home()
                .arena_lookup(&state.process, state.tid, addr as u32)?;
            Ok(arena as i32)
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "set-stack-bottom",
        |mut caller: Caller<'_, ThreadState>, bottom: i32| -> wasmtime::Result<()> {
            // Nothing to set when the module was not rewritten.
            if let Some(Extern::Global(global)) = caller.get_export(stack_check::BOTTOM_EXPORT) {
                global.set(&mut caller, Val::I32(bottom))?;
            }
            Ok(())
        },
    )?;

    // The call the stack check adds (stack_check.rs): the program ends.
    linker.func_wrap(
        stack_check::MODULE,
        stack_check::FUNCTION,
        |mut caller: Caller<'_, ThreadState>, stack_pointer: i32| -> wasmtime::Result<()> {
            let bottom = match caller.get_export(stack_check::BOTTOM_EXPORT) {
                Some(Extern::Global(global)) => global.get(&mut caller).i32().unwrap_or(0) as u32,
                _ => 0,
            };
            Err(wasmtime::Error::new(stack_check::StackOverflow {
                stack_pointer: stack_pointer as u32,
                bottom,
            }))
        },
    )?;

    linker.func_wrap(
        WEFT_MODULE,
        "wait-slice",
        |caller: Caller<'_, ThreadState>, addr: i32, expected: i32, slice_ns: i64| {
            crate::waits::wait_slice(&caller, addr, expected, slice_ns)
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
        |caller: Caller<'_, ThreadState>| -> i32 {
            caller.data().process.processors().min(i32::MAX as usize) as i32
        },
    )?;

    // The sync imports: each argument list becomes a `SyncCall`, which the
    // thread's home makes (`synchronise`).
    sync_import!(linker, "sync-lock", (addr: i32, flags: i32, timeout_ns: i64) -> i32,
        SyncCall::Lock { addr: addr as u32, flags: flags as u32, timeout_ns });
    sync_import!(linker, "sync-unlock", (addr: i32, flags: i32) -> i32,
        SyncCall::Unlock { addr: addr as u32, flags: flags as u32 });
    sync_import!(linker, "sync-barrier", (addr: i32, count: i32) -> i32,
        SyncCall::Barrier { addr: addr as u32, count: count as u32 });
    sync_import!(linker, "sync-cond-wait", (cond: i32, mutex: i32, flags: i32, timeout_ns: i64) -> i32,
        SyncCall::CondWait { cond: cond as u32, mutex: mutex as u32, flags: flags as u32, timeout_ns });
    sync_import!(linker, "sync-atomic", (op: i32, bytes: i32, addr: i32, value: i64, expected: i64) -> i64,
    SyncCall::Atomic {
        op: op as u32,
        bytes: bytes as u32,
        addr: addr as u32,
        value: value as u64,
        expected: expected as u64,
    });
    sync_import!(linker, "sync-cond-wake", (cond: i32, all: i32) -> i32,
        SyncCall::CondWake { cond: cond as u32, all: all != 0 });
    sync_import!(linker, "sync-sem-init", (addr: i32, value: i32),
        SyncCall::SemInit { addr: addr as u32, value: value as u32 });
    sync_import!(linker, "sync-sem-wait", (addr: i32, nonblocking: i32, timeout_ns: i64) -> i32,
        SyncCall::SemWait { addr: addr as u32, nonblocking: nonblocking != 0, timeout_ns });
    sync_import!(linker, "sync-sem-post", (addr: i32) -> i32, SyncCall::SemPost { addr: addr as u32 });
    sync_import!(linker, "sync-sem-value", (addr: i32) -> i32, SyncCall::SemValue { addr: addr as u32 });
    sync_import!(linker, "sync-point", (), SyncCall::Point);
    sync_import!(linker, "sync-pause", (), SyncCall::Pause);
    sync_import!(linker, "sync-load", (), SyncCall::Load);
    linker.func_wrap(
        WEFT_MODULE,
        "sync-at-home",
        |mut caller: Caller<'_, ThreadState>,
         routine: i32,
         tls: i32,
         op: i32,
         thread: i32,
         start: i32,
         arg: i32,
         attr: i32,
         deadline_ns: i64|
         -> wasmtime::Result<i64> {
            // The attributes travel with the call: the thread's own copy
            // holds them, home's may not.
            let attr = if attr == 0 {
                None
            } else {
                let mut bytes = vec![0u8; ATTR_BYTES];
                if !crate::process::read_guest(&mut caller, attr as u32, &mut bytes) {
                    wasmtime::bail!("sync-at-home: attributes at {attr:#x} lie outside memory");
                }
                Some(bytes)
            };
            let call = AtHomeCall {
                routine: routine as u32,
                tls: tls as u32,
                op: op as u32,
                thread: thread as u32,
                start: start as u32,
                arg: arg as u32,
                attr,
                deadline_ns,
            };
            synchronise(&mut caller, SyncCall::AtHome(call))
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

/// A synchronisation call of the calling thread, made by its home (the
/// process, or over the stream of the call it runs for).
fn synchronise(caller: &mut Caller<'_, ThreadState>, call: SyncCall) -> wasmtime::Result<i64> {
    let home = caller.data().home_handle();
    home.synchronise(caller, &call)
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
/// The region `register-merge-region` names.
pub(crate) fn merge_region(addr: i32, len: i32, op: i32, ty: i32) -> wasmtime::Result<MergeRegion> {
    let (Some(op), Some(ty)) = (merge_op(op), elem_type(ty)) else {
        wasmtime::bail!(
            "weft:threads register-merge-region: invalid enum value (op {op}, type {ty})"
        );
    };
    Ok(MergeRegion {
        addr: addr as u32,
        len: len as u32,
        op,
        ty,
    })
}

/// Writes `register-merge-region`'s `result<_, region-error>` at `ret`.
pub(crate) fn write_region_result(
    caller: &mut Caller<'_, ThreadState>,
    ret: i32,
    result: Result<(), u8>,
) -> wasmtime::Result<()> {
    let area = match result {
        Ok(()) => [0u8, 0],
        Err(code) => [1u8, code],
    };
    write_result_area(caller, ret as u32, &area, 1)
}

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
