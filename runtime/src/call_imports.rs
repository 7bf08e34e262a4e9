//! The core-ABI lowering of the `weft:chain/chain` WIT interface
//! (`wit/chain.wit`): a function's input and output, and its calls of
//! other functions by name (see `functions.rs`).

use wasmtime::Linker;

use crate::abi::{Call, guest_bytes, guest_string, list_result_area, result_area};
use crate::calls::{CallError, MAX_CALL_BYTES, MAX_NAME_LEN};
use crate::process::ThreadState;
use weft_transport::envelope::{ChainAnswer, ChainCall};

/// Core import module of the `weft:chain/chain` interface.
pub const CHAIN_MODULE: &str = "weft:chain/chain@0.1.0";
pub const CHAIN_FUNCTIONS: &[&str] = &[
    "input",
    "set-output",
    "call",
    "await",
    "await-all",
    "output",
];

/// The cases of the WIT enums of `weft:chain` as the host encodes them, in
/// order of their index: `(wit enum, Rust case names)`.
pub fn wit_enum_cases() -> Vec<(&'static str, Vec<String>)> {
    let errors = (0..=u8::MAX)
        .map_while(CallError::from_code)
        .map(|e| format!("{e:?}"))
        .collect();
    vec![("call-error", errors)]
}

/// Most calls one `await-all` may name.
const MAX_AWAIT_ALL: u64 = 1 << 16;

fn error(result: Result<Vec<u8>, CallError>) -> Result<Vec<u8>, u8> {
    result.map_err(|e| e as u8)
}

/// A `weft:chain` operation of the calling thread, from wherever it runs
/// (its home answers it).
fn chain(caller: &Call<'_>, call: ChainCall) -> Result<ChainAnswer, CallError> {
    let state = caller.data();
    state.home().chain(&state.process, call)
}

/// An await, with the thread's slot given up while it waits.
fn chain_wait(caller: &mut Call<'_>, call: ChainCall) -> Result<ChainAnswer, CallError> {
    crate::process::without_slot(caller, |caller| {
        let state = caller.data();
        state.home().chain_wait(&state.process, call)
    })
}

fn unexpected<T>(answer: ChainAnswer) -> Result<T, CallError> {
    tracing::debug!("home answered a chained call with {answer:?}");
    Err(CallError::FailedToStart)
}

pub fn add_to_linker(linker: &mut Linker<ThreadState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        CHAIN_MODULE,
        "input",
        |mut caller: Call<'_>, ret: i32| -> wasmtime::Result<()> {
            let input = match chain(&caller, ChainCall::Input) {
                Ok(ChainAnswer::Bytes(input)) => input,
                // `input` has no error case: a thread whose home is gone
                // gets none.
                _ => Vec::new(),
            };
            let list = crate::abi::give_list(&mut caller, &input)?;
            crate::threads::write_result_area(&mut caller, ret as u32, &list, 4)
        },
    )?;
    linker.func_wrap(
        CHAIN_MODULE,
        "set-output",
        |mut caller: Call<'_>, ptr: i32, len: i32, ret: i32| -> wasmtime::Result<()> {
            let result = match guest_bytes(&mut caller, ptr, len, MAX_CALL_BYTES as u64)? {
                None => Err(CallError::TooLarge),
                Some(data) => chain(&caller, ChainCall::SetOutput(data)).map(|_| Vec::new()),
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
            let result = match (name, input) {
                (Some(name), Some(input)) => {
                    match chain(&caller, ChainCall::Call { name, input }) {
                        Ok(ChainAnswer::Id(id)) => Ok(id.to_le_bytes().to_vec()),
                        Ok(other) => unexpected(other),
                        Err(e) => Err(e),
                    }
                }
                _ => Err(CallError::TooLarge),
            };
            result_area(&mut caller, ret, error(result), 4)
        },
    )?;
    linker.func_wrap(
        CHAIN_MODULE,
        "await",
        |mut caller: Call<'_>, id: i32, ret: i32| -> wasmtime::Result<()> {
            let id = id as u32;
            let result = match chain_wait(&mut caller, ChainCall::TryAwait { id }) {
                Ok(ChainAnswer::Code(Some(code))) => Ok(code.to_le_bytes().to_vec()),
                Ok(other) => unexpected(other),
                Err(e) => Err(e),
            };
            result_area(&mut caller, ret, error(result), 4)
        },
    )?;
    linker.func_wrap(
        CHAIN_MODULE,
        "await-all",
        |mut caller: Call<'_>, ptr: i32, len: i32, ret: i32| -> wasmtime::Result<()> {
            if len as u32 as u64 > MAX_AWAIT_ALL {
                return result_area(&mut caller, ret, Err(CallError::TooLarge as u8), 4);
            }
            let bytes = guest_bytes(
                &mut caller,
                ptr,
                (len as u32).wrapping_mul(4) as i32,
                4 * MAX_AWAIT_ALL,
            )?
            .expect("bounded above");
            let ids: Vec<u32> = bytes
                .chunks_exact(4)
                .map(|id| u32::from_le_bytes(id.try_into().expect("4 bytes")))
                .collect();
            let result = match chain_wait(&mut caller, ChainCall::TryAwaitAll { ids }) {
                Ok(ChainAnswer::Codes(Some(codes))) => Ok(codes),
                Ok(other) => unexpected(other),
                Err(e) => Err(e),
            };
            let list = match result {
                Ok(codes) => {
                    let bytes: Vec<u8> = codes.iter().flat_map(|code| code.to_le_bytes()).collect();
                    Ok(crate::abi::give_elements(&mut caller, &bytes, 4)?)
                }
                Err(e) => Err(e as u8),
            };
            result_area(&mut caller, ret, list, 4)
        },
    )?;
    linker.func_wrap(
        CHAIN_MODULE,
        "output",
        |mut caller: Call<'_>, id: i32, ret: i32| -> wasmtime::Result<()> {
            let id = id as u32;
            let result = match chain(&caller, ChainCall::Output { id }) {
                Ok(ChainAnswer::Bytes(output)) => Ok(output),
                Ok(other) => unexpected(other),
                Err(e) => Err(e),
            };
            list_result_area(&mut caller, ret, result.map_err(|e| e as u8))
        },
    )?;
    Ok(())
}
