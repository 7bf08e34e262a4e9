//! The core-ABI lowering of the `weft:state/state` WIT interface
//! (`wit/state.wit`) over [`StateHost`].
//!
//! Errors of the operation go back to the guest as `result` values; bad
//! pointers, invalid UTF-8 and enum values out of range are traps, as the
//! canonical ABI has them.

use wasmtime::{Caller, Extern, Linker};

use crate::process::{ThreadState, read_guest, write_guest};
use crate::state::{LockKind, StateError, StateHost, Tier};
use crate::threads::write_result_area;

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
    "delete",
    "append",
    "appended-count",
    "read-appended",
    "clear-appended",
    "lock",
    "unlock",
];

type Call<'a> = Caller<'a, ThreadState>;

/// Guest bytes at `ptr..ptr + len`, at most `max` long (longer: the
/// operation's `too-large` error, before anything is allocated).
fn guest_bytes(
    caller: &mut Call<'_>,
    ptr: i32,
    len: i32,
    max: u64,
) -> wasmtime::Result<Result<Vec<u8>, StateError>> {
    let len = len as u32;
    if len as u64 > max {
        return Ok(Err(StateError::TooLarge));
    }
    let mut bytes = vec![0u8; len as usize];
    if !read_guest(caller, ptr as u32, &mut bytes) {
        wasmtime::bail!(
            "weft:state: {len} bytes at {:#x} are out of bounds",
            ptr as u32
        );
    }
    Ok(Ok(bytes))
}

fn guest_key(
    caller: &mut Call<'_>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Result<String, StateError>> {
    let max = caller.data().process.state().limits().max_key_len as u64;
    Ok(match guest_bytes(caller, ptr, len, max)? {
        Ok(bytes) => Ok(String::from_utf8(bytes)
            .map_err(|_| wasmtime::Error::msg("weft:state: a key is not valid UTF-8"))?),
        Err(e) => Err(e),
    })
}

fn max_value(caller: &Call<'_>) -> u64 {
    caller.data().process.state().limits().max_value_len
}

/// Copies `data` into a block the guest allocates with its `cabi_realloc`.
fn give_list(caller: &mut Call<'_>, data: &[u8]) -> wasmtime::Result<(u32, u32)> {
    let Some(Extern::Func(realloc)) = caller.get_export("cabi_realloc") else {
        wasmtime::bail!("weft:state: the guest exports no `cabi_realloc` to receive a list");
    };
    let realloc = realloc.typed::<(i32, i32, i32, i32), i32>(&*caller)?;
    let len = u32::try_from(data.len())
        .map_err(|_| wasmtime::Error::msg("weft:state: a value too large for the guest"))?;
    let ptr = realloc.call(&mut *caller, (0, 0, 1, len as i32))? as u32;
    if len > 0 && (ptr == 0 || !write_guest(caller, ptr, data)) {
        wasmtime::bail!("weft:state: cabi_realloc gave no room for {len} bytes");
    }
    Ok((ptr, len))
}

fn unit_result(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<(), StateError>,
) -> wasmtime::Result<()> {
    let area = match result {
        Ok(()) => [0u8, 0],
        Err(e) => [1, e as u8],
    };
    write_result_area(caller, ret as u32, &area, 1)
}

/// Writes a `result<T, state-error>` return area: the discriminant at 0,
/// the payload (`ok`'s bytes or the error) at `align`, the larger
/// alignment of the two cases.
fn value_result(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<Vec<u8>, StateError>,
    align: usize,
) -> wasmtime::Result<()> {
    let mut area = vec![0u8; align];
    match result {
        Ok(value) => area.extend_from_slice(&value),
        Err(e) => {
            area[0] = 1;
            area.push(e as u8);
        }
    }
    // Whole return area: the payload's size rounded up to the alignment.
    let payload = area.len() - align;
    area.resize(align + payload.next_multiple_of(align).max(align), 0);
    write_result_area(caller, ret as u32, &area, align as u32)
}

fn list_result(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<Vec<u8>, StateError>,
) -> wasmtime::Result<()> {
    let list = match result {
        Ok(data) => {
            let (ptr, len) = give_list(caller, &data)?;
            Ok([ptr.to_le_bytes(), len.to_le_bytes()].concat())
        }
        Err(e) => Err(e),
    };
    value_result(caller, ret, list, 4)
}

fn u32_result(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<u32, StateError>,
) -> wasmtime::Result<()> {
    value_result(caller, ret, result.map(|v| v.to_le_bytes().to_vec()), 4)
}

fn u64_result(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<u64, StateError>,
) -> wasmtime::Result<()> {
    value_result(caller, ret, result.map(|v| v.to_le_bytes().to_vec()), 8)
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
    let process = caller.data().process.clone();
    op(caller, process.state(), &key)
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
                let max = max_value(caller);
                Ok(guest_bytes(caller, dp, dl, max)?.and_then(|data| op(state, key, &data)))
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
                let max = max_value(caller);
                Ok(guest_bytes(caller, dp, dl, max)?
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
            u64_result(&mut caller, ret, result)
        },
    )?;
    key_unit(linker, "push", StateHost::push)?;
    key_unit(linker, "push-partial", StateHost::push_partial)?;
    key_unit(linker, "pull", StateHost::pull)?;
    key_unit(linker, "delete", StateHost::delete)?;
    key_data_unit(linker, "append", StateHost::append)?;
    linker.func_wrap(
        STATE_MODULE,
        "appended-count",
        |mut caller: Call<'_>, kp: i32, kl: i32, ret: i32| -> wasmtime::Result<()> {
            let result = with_key(&mut caller, kp, kl, |_, state, key| {
                Ok(state.appended_count(key))
            })?;
            u32_result(&mut caller, ret, result)
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
                    let data = caller.data_mut();
                    let owner = data.process.serial() << 32 | data.tid as u64;
                    if !locking {
                        return Ok(state.unlock(key, tier, kind, owner));
                    }
                    // A chained thread waiting for a lock gives its slot up,
                    // as it does in a join: the holder may need one.
                    let gave_slot = std::mem::take(&mut data.holds_slot);
                    let process = data.process.clone();
                    if gave_slot {
                        process.release_slot();
                    }
                    let locked = state.lock(key, tier, kind, owner);
                    if gave_slot {
                        process.acquire_slot();
                        caller.data_mut().holds_slot = true;
                    }
                    Ok(locked)
                })?;
                unit_result(&mut caller, ret, result)
            },
        )?;
    }
    Ok(())
}
