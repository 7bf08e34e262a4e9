//! Canonical-ABI plumbing shared by the core-module lowerings of the WIT
//! interfaces (`state_imports.rs`, `call_imports.rs`): guest bytes in,
//! lists out through the guest's `cabi_realloc`, `result` return areas.

use wasmtime::{Caller, Extern};

use crate::process::{ThreadState, read_guest, write_guest};
use crate::threads::write_result_area;

pub(crate) type Call<'a> = Caller<'a, ThreadState>;

/// Guest bytes at `ptr..ptr + len`; `None` when longer than `max` (the
/// caller's `too-large` error, found before anything is allocated). Out of
/// bounds is a trap.
pub(crate) fn guest_bytes(
    caller: &mut Call<'_>,
    ptr: i32,
    len: i32,
    max: u64,
) -> wasmtime::Result<Option<Vec<u8>>> {
    let len = len as u32;
    if len as u64 > max {
        return Ok(None);
    }
    let mut bytes = vec![0u8; len as usize];
    if !read_guest(caller, ptr as u32, &mut bytes) {
        wasmtime::bail!("{len} bytes at {:#x} are out of bounds", ptr as u32);
    }
    Ok(Some(bytes))
}

/// A guest string of at most `max` bytes (`None` if longer); invalid UTF-8
/// is a trap.
pub(crate) fn guest_string(
    caller: &mut Call<'_>,
    ptr: i32,
    len: i32,
    max: u64,
) -> wasmtime::Result<Option<String>> {
    guest_bytes(caller, ptr, len, max)?
        .map(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| wasmtime::Error::msg("a string is not valid UTF-8"))
        })
        .transpose()
}

/// Copies `data` into a block the guest allocates with its `cabi_realloc`;
/// the (pointer, length) of the list, as return-area bytes.
pub(crate) fn give_list(caller: &mut Call<'_>, data: &[u8]) -> wasmtime::Result<Vec<u8>> {
    give_elements(caller, data, 1)
}

/// [`give_list`] for elements of `size` bytes (aligned to it); `data`
/// holds them little-endian, and the length returned counts elements.
pub(crate) fn give_elements(
    caller: &mut Call<'_>,
    data: &[u8],
    size: u32,
) -> wasmtime::Result<Vec<u8>> {
    let Some(Extern::Func(realloc)) = caller.get_export("cabi_realloc") else {
        wasmtime::bail!("the guest exports no `cabi_realloc` to receive a list");
    };
    let realloc = realloc.typed::<(i32, i32, i32, i32), i32>(&*caller)?;
    let len = u32::try_from(data.len())
        .map_err(|_| wasmtime::Error::msg("a list too large for the guest"))?;
    let ptr = realloc.call(&mut *caller, (0, 0, size as i32, len as i32))? as u32;
    if len > 0 && (ptr == 0 || !ptr.is_multiple_of(size) || !write_guest(caller, ptr, data)) {
        wasmtime::bail!("cabi_realloc gave no aligned room for {len} bytes");
    }
    Ok([ptr.to_le_bytes(), (len / size).to_le_bytes()].concat())
}

/// Writes a `result<T, E>` return area (E an enum): the discriminant at 0,
/// the payload (`ok`'s bytes, or the error's case index) at `align`, the
/// larger alignment of the two cases.
pub(crate) fn result_area(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<Vec<u8>, u8>,
    align: usize,
) -> wasmtime::Result<()> {
    let mut area = vec![0u8; align];
    match result {
        Ok(value) => area.extend_from_slice(&value),
        Err(e) => {
            area[0] = 1;
            area.push(e);
        }
    }
    // Whole return area: the payload's size rounded up to the alignment.
    let payload = area.len() - align;
    area.resize(align + payload.next_multiple_of(align).max(align), 0);
    write_result_area(caller, ret as u32, &area, align as u32)
}

/// A `result<list<u8>, E>`: the list is handed to the guest first.
pub(crate) fn list_result_area(
    caller: &mut Call<'_>,
    ret: i32,
    result: Result<Vec<u8>, u8>,
) -> wasmtime::Result<()> {
    let list = match result {
        Ok(data) => Ok(give_list(caller, &data)?),
        Err(e) => Err(e),
    };
    result_area(caller, ret, list, 4)
}
