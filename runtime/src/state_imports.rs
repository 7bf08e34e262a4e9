//! The core-ABI lowering of the `weft:state/state` WIT interface
//! (`wit/state.wit`) over [`StateHost`].
//!
//! Errors of the operation go back to the guest as `result` values; bad
//! pointers, invalid UTF-8 and enum values out of range are traps, as the
//! canonical ABI has them.

use wasmtime::Linker;

use crate::abi::{Call, guest_bytes, guest_string, list_result_area, result_area};
use crate::process::ThreadState;
use crate::state::{LockKind, StateError, StateHost, Tier};

/// Core import module of the `weft:state/state` interface.
pub const STATE_MODULE: &str = "weft:state/state@0.1.0";
pub const STATE_FUNCTIONS: &[&str] = &[
    "get",
    "get-range",
    "set",
    "set-range",
    "size",
    "push",
    "push-partial",
    "pull",
    "pull-range",
    "delete",
    "append",
    "appended-count",
    "read-appended",
    "clear-appended",
    "lock",
    "unlock",
];

fn guest_key(
    caller: &mut Call<'_>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Result<String, StateError>> {
    let state = caller.data();
    let max = state.home().state(&state.process).limits().max_key_len as u64;
    Ok(guest_string(caller, ptr, len, max)?.ok_or(StateError::TooLarge))
}

/// A value from the guest, or `too-large`.
fn guest_value(
    caller: &mut Call<'_>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Result<Vec<u8>, StateError>> {
    let state = caller.data();
    let max = state.home().state(&state.process).limits().max_value_len;
    Ok(guest_bytes(caller, ptr, len, max)?.ok_or(StateError::TooLarge))
}

fn unit_result(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<(), StateError>,
) -> wasmtime::Result<()> {
    result_area(
        caller,
        ret,
        result.map(|()| Vec::new()).map_err(|e| e as u8),
        1,
    )
}

fn list_result(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<Vec<u8>, StateError>,
) -> wasmtime::Result<()> {
    list_result_area(caller, ret, result.map_err(|e| e as u8))
}

/// A `result<u32, state-error>` or `result<u64, state-error>`: the number's
/// little-endian bytes, aligned to their size.
fn number_result<const N: usize>(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<[u8; N], StateError>,
) -> wasmtime::Result<()> {
    result_area(caller, ret, result.map(Vec::from).map_err(|e| e as u8), N)
}

/// The cases of the WIT enums of `weft:state` as the host decodes them,
/// in order of their index: `(wit enum, Rust case names)`.
pub fn wit_enum_cases() -> Vec<(&'static str, Vec<String>)> {
    use crate::threads::cases;
    vec![
        (
            "state-error",
            cases(|i| u8::try_from(i).ok().and_then(StateError::from_code)),
        ),
        ("tier", cases(|i| tier(i).ok())),
        ("lock-kind", cases(|i| lock_kind(i).ok())),
    ]
}

fn tier(index: i32) -> wasmtime::Result<Tier> {
    match index {
        0 => Ok(Tier::Local),
        1 => Ok(Tier::Global),
        _ => wasmtime::bail!("weft:state: invalid tier {index}"),
    }
}

fn lock_kind(index: i32) -> wasmtime::Result<LockKind> {
    match index {
        0 => Ok(LockKind::Read),
        1 => Ok(LockKind::Write),
        _ => wasmtime::bail!("weft:state: invalid lock kind {index}"),
    }
}

/// Runs `op` on the state with the key the guest passed; a bad key is the
/// operation's error.
fn with_key<R>(
    caller: &mut Call<'_>,
    key_ptr: i32,
    key_len: i32,
    op: impl FnOnce(&mut Call<'_>, &StateHost, &str) -> wasmtime::Result<Result<R, StateError>>,
) -> wasmtime::Result<Result<R, StateError>> {
    let key = match guest_key(caller, key_ptr, key_len)? {
        Ok(key) => key,
        Err(e) => return Ok(Err(e)),
    };
    // Held apart from the store, which `op` needs too.
    let (home, process) = (caller.data().home_handle(), caller.data().process.clone());
    op(caller, home.state(&process), &key)
}

/// Registers a `func(key: string) -> result<_, state-error>` import.
fn key_unit(
    linker: &mut Linker<ThreadState>,
    name: &str,
    op: fn(&StateHost, &str) -> Result<(), StateError>,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        STATE_MODULE,
        name,
        move |mut caller: Call<'_>, kp: i32, kl: i32, ret: i32| -> wasmtime::Result<()> {
            let result = with_key(&mut caller, kp, kl, |_, state, key| Ok(op(state, key)))?;
            unit_result(&mut caller, ret, result)
        },
    )?;
    Ok(())
}

/// Registers a `func(key: string, data: list<u8>) -> result<_, state-error>`
/// import.
fn key_data_unit(
    linker: &mut Linker<ThreadState>,
    name: &str,
    op: fn(&StateHost, &str, &[u8]) -> Result<(), StateError>,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        STATE_MODULE,
        name,
        move |mut caller: Call<'_>, kp: i32, kl: i32, dp: i32, dl: i32, ret: i32| {
            let result = with_key(&mut caller, kp, kl, |caller, state, key| {
                Ok(guest_value(caller, dp, dl)?.and_then(|data| op(state, key, &data)))
            })?;
            unit_result(&mut caller, ret, result)
        },
    )?;
    Ok(())
}

pub fn add_to_linker(linker: &mut Linker<ThreadState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        STATE_MODULE,
        "get",
        |mut caller: Call<'_>, kp: i32, kl: i32, ret: i32| -> wasmtime::Result<()> {
            let result = with_key(&mut caller, kp, kl, |_, state, key| Ok(state.get(key)))?;
            list_result(&mut caller, ret, result)
        },
    )?;
    linker.func_wrap(
        STATE_MODULE,
        "get-range",
        |mut caller: Call<'_>, kp: i32, kl: i32, offset: i64, len: i32, ret: i32| {
            let result = with_key(&mut caller, kp, kl, |_, state, key| {
                Ok(state.get_range(key, offset as u64, len as u32))
            })?;
            list_result(&mut caller, ret, result)
        },
    )?;
    key_data_unit(linker, "set", StateHost::set)?;
    linker.func_wrap(
        STATE_MODULE,
        "set-range",
        |mut caller: Call<'_>, kp: i32, kl: i32, offset: i64, dp: i32, dl: i32, ret: i32| {
            let result = with_key(&mut caller, kp, kl, |caller, state, key| {
                Ok(guest_value(caller, dp, dl)?
                    .and_then(|data| state.set_range(key, offset as u64, &data)))
            })?;
            unit_result(&mut caller, ret, result)
        },
    )?;
    linker.func_wrap(
        STATE_MODULE,
        "size",
        |mut caller: Call<'_>, kp: i32, kl: i32, ret: i32| -> wasmtime::Result<()> {
            let result = with_key(&mut caller, kp, kl, |_, state, key| Ok(state.size(key)))?;
            number_result(&mut caller, ret, result.map(u64::to_le_bytes))
        },
    )?;
    key_unit(linker, "push", StateHost::push)?;
    key_unit(linker, "push-partial", StateHost::push_partial)?;
    key_unit(linker, "pull", StateHost::pull)?;
    linker.func_wrap(
        STATE_MODULE,
        "pull-range",
        |mut caller: Call<'_>, kp: i32, kl: i32, offset: i64, len: i32, ret: i32| {
            let result = with_key(&mut caller, kp, kl, |_, state, key| {
                Ok(state.pull_range(key, offset as u64, len as u32))
            })?;
            unit_result(&mut caller, ret, result)
        },
    )?;
    key_unit(linker, "delete", StateHost::delete)?;
    key_data_unit(linker, "append", StateHost::append)?;
    linker.func_wrap(
        STATE_MODULE,
        "appended-count",
        |mut caller: Call<'_>, kp: i32, kl: i32, ret: i32| -> wasmtime::Result<()> {
            let result = with_key(&mut caller, kp, kl, |_, state, key| {
                Ok(state.appended_count(key))
            })?;
            number_result(&mut caller, ret, result.map(u32::to_le_bytes))
        },
    )?;
    linker.func_wrap(
        STATE_MODULE,
        "read-appended",
        |mut caller: Call<'_>, kp: i32, kl: i32, index: i32, ret: i32| {
            let result = with_key(&mut caller, kp, kl, |_, state, key| {
                Ok(state.read_appended(key, index as u32))
            })?;
            list_result(&mut caller, ret, result)
        },
    )?;
    key_unit(linker, "clear-appended", StateHost::clear_appended)?;
    for (name, locking) in [("lock", true), ("unlock", false)] {
        linker.func_wrap(
            STATE_MODULE,
            name,
            move |mut caller: Call<'_>, kp: i32, kl: i32, t: i32, k: i32, ret: i32| {
                let (tier, kind) = (tier(t)?, lock_kind(k)?);
                let result = with_key(&mut caller, kp, kl, |caller, state, key| {
                    let data = caller.data();
                    let owner = data.process.serial() << 32 | data.tid as u64;
                    if !locking {
                        return Ok(state.unlock(key, tier, kind, owner));
                    }
                    // A chained thread waiting for a lock gives its slot up,
                    // as it does in a join: the holder may need one.
                    Ok(crate::process::without_slot(caller, |_| {
                        state.lock(key, tier, kind, owner)
                    }))
                })?;
                unit_result(&mut caller, ret, result)
            },
        )?;
    }
    Ok(())
}
