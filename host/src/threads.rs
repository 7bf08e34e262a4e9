//! Thread imports: the standard `wasi`.`thread-spawn` and the core-ABI
//! lowering of the `weft:threads/threads` WIT interface (`wit/threads.wit`).

use wasmtime::{Caller, Linker};

use crate::ThreadError;
use crate::process::{ThreadExited, ThreadState, write_guest};

/// Module and name of the wasi-threads spawn import.
pub const WASI_MODULE: &str = "wasi";
pub const WASI_SPAWN: &str = "thread-spawn";

/// Core import module of the `weft:threads/threads` interface.
pub const WEFT_MODULE: &str = "weft:threads/threads@0.1.0";
pub const WEFT_FUNCTIONS: &[&str] = &["spawn", "mode", "current-id", "exit-current"];

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
        |caller: Caller<'_, ThreadState>, start_arg: i32| -> i32 {
            let process = caller.data().process.clone();
            match process.spawn(start_arg) {
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
            let (discriminant, payload) = match process.spawn(start_arg) {
                Ok(tid) => (0u8, tid),
                Err(e) => (1u8, e as u32),
            };
            let mut area = [0u8; 8];
            area[0] = discriminant;
            area[4..8].copy_from_slice(&payload.to_le_bytes());
            write_return_area(&mut caller, ret as u32, &area)
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
        "exit-current",
        |_caller: Caller<'_, ThreadState>| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(ThreadExited))
        },
    )?;
    Ok(())
}

fn write_return_area(
    caller: &mut Caller<'_, ThreadState>,
    addr: u32,
    data: &[u8],
) -> wasmtime::Result<()> {
    if !addr.is_multiple_of(4) {
        wasmtime::bail!("weft:threads spawn: return area {addr:#x} is not 4-byte aligned");
    }
    if !write_guest(caller, addr, data) {
        wasmtime::bail!("weft:threads spawn: return area {addr:#x} is out of bounds");
    }
    Ok(())
}
