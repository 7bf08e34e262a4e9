//! The core-ABI lowering of the `weft:chain/chain` WIT interface
//! (`wit/chain.wit`): a function's input and output, and its calls of
//! other functions by name (see `functions.rs`).

use wasmtime::Linker;

use crate::abi::{Call, guest_bytes, guest_string, list_result_area, result_area};
use crate::functions::{CallError, MAX_CALL_BYTES, MAX_NAME_LEN};
use crate::process::ThreadState;

/// Core import module of the `weft:chain/chain` interface.
pub const CHAIN_MODULE: &str = "weft:chain/chain@0.1.0";
pub const CHAIN_FUNCTIONS: &[&str] = &["input", "set-output", "call", "await", "output"];

fn error(result: Result<Vec<u8>, CallError>) -> Result<Vec<u8>, u8> {
    result.map_err(|e| e as u8)
}

pub fn add_to_linker(linker: &mut Linker<ThreadState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        CHAIN_MODULE,
        "input",
        |mut caller: Call<'_>, ret: i32| -> wasmtime::Result<()> {
            let process = caller.data().process.clone();
            let input = process
                .start_config()
                .call_io
                .as_ref()
                .map_or(&[][..], |io| &io.input[..]);
            let list = crate::abi::give_list(&mut caller, input)?;
            crate::threads::write_result_area(&mut caller, ret as u32, &list, 4)
        },
    )?;
    linker.func_wrap(
        CHAIN_MODULE,
        "set-output",
        |mut caller: Call<'_>, ptr: i32, len: i32, ret: i32| -> wasmtime::Result<()> {
            let result = match guest_bytes(&mut caller, ptr, len, MAX_CALL_BYTES as u64)? {
                None => Err(CallError::TooLarge),
                Some(data) => {
                    // Outside a function (`weft run`) the output goes nowhere.
                    if let Some(io) = &caller.data().process.start_config().call_io {
                        *io.output.lock().unwrap_or_else(|e| e.into_inner()) = data;
                    }
                    Ok(Vec::new())
                }
            };
            result_area(&mut caller, ret, error(result), 1)
        },
    )?;
    linker.func_wrap(
        CHAIN_MODULE,
        "call",
        |mut caller: Call<'_>, np: i32, nl: i32, ip: i32, il: i32, ret: i32| {
            let name = guest_string(&mut caller, np, nl, MAX_NAME_LEN as u64)?;
            let input = guest_bytes(&mut caller, ip, il, MAX_CALL_BYTES as u64)?;
            let process = caller.data().process.clone();
            let result = match (name, input) {
                (Some(name), Some(input)) => match &process.start_config().functions {
                    Some(functions) => process
                        .calls()
                        .call(functions, &name, input, process.start_config())
                        .map(|id| id.to_le_bytes().to_vec()),
                    None => Err(CallError::UnknownFunction),
                },
                _ => Err(CallError::TooLarge),
            };
            result_area(&mut caller, ret, error(result), 4)
        },
    )?;
    linker.func_wrap(
        CHAIN_MODULE,
        "await",
        |mut caller: Call<'_>, id: i32, ret: i32| -> wasmtime::Result<()> {
            let state = caller.data_mut();
            let process = state.process.clone();
            // A chained thread gives its slot up while it waits.
            let gave_slot = std::mem::take(&mut state.holds_slot);
            if gave_slot {
                process.release_slot();
            }
            let result = process.calls().await_call(id as u32);
            if gave_slot {
                process.acquire_slot();
                caller.data_mut().holds_slot = true;
            }
            let result = result.map(|code| code.to_le_bytes().to_vec());
            result_area(&mut caller, ret, error(result), 4)
        },
    )?;
    linker.func_wrap(
        CHAIN_MODULE,
        "output",
        |mut caller: Call<'_>, id: i32, ret: i32| -> wasmtime::Result<()> {
            let result = caller.data().process.calls().output(id as u32);
            list_result_area(&mut caller, ret, result.map_err(|e| e as u8))
        },
    )?;
    Ok(())
}
