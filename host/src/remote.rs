//! Imports of a chained thread that runs on a worker host, away from its
//! home (the host of its program's main thread).
//!
//! A remote thread computes on its own copy of memory; what it may do
//! there is what needs nothing of its home: clocks, randomness, sleeping,
//! `weft:threads` `finish`, and writing to stdout and stderr (buffered and
//! printed by the home host when the thread's changes merge). A new arena
//! chunk is a call home over the thread's stream (the arena zone is
//! home's). Every other host call (a nested spawn, shared state, a chained
//! function, any other file operation, `exit`) ends the remote run with
//! [`NeedsHome`]; the home host then runs the thread itself from the same
//! snapshot, which computes the same result: a thread changes nothing
//! outside its own memory before it finishes, and its buffered output is
//! dropped with the run.

use wasmtime::{Caller, ExternType, Linker, Module};

use crate::chain;
use crate::cluster::envelope::{HomeReply, HomeRequest, decode_home, encode_home};
use crate::process::{ThreadState, read_guest, write_guest};
use crate::{call_imports, state_imports, threads, wasi};

/// Output a remote thread may buffer; past it, the thread runs at home.
pub const MAX_OUTPUT: usize = 1 << 20;

/// The error a remote thread's instance unwinds with when it calls an
/// import only its home host can serve.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` needs the thread's home host")]
pub struct NeedsHome(pub String);

/// Imports a remote thread runs on the worker as it would at home.
const RUN_ANYWHERE: &[(&str, &str)] = &[
    (wasi::MODULE, "clock_res_get"),
    (wasi::MODULE, "clock_time_get"),
    (wasi::MODULE, "random_get"),
    (wasi::MODULE, "sched_yield"),
    (threads::WEFT_MODULE, "mode"),
    (threads::WEFT_MODULE, "current-id"),
    (threads::WEFT_MODULE, "finish"),
    (threads::WEFT_MODULE, "exit-current"),
    (threads::WEFT_MODULE, "chain-unsupported"),
];

/// Replaces, in `linker`, every import of `module` that a remote thread
/// cannot serve away from home with one that ends the run with
/// [`NeedsHome`], and stdout/stderr writes and sleeps with remote versions.
pub(crate) fn shadow_home_imports(
    linker: &mut Linker<ThreadState>,
    module: &Module,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for import in module.imports() {
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let (module_name, name) = (import.module(), import.name());
        let ours = matches!(
            module_name,
            wasi::MODULE
                | threads::WASI_MODULE
                | threads::WEFT_MODULE
                | state_imports::STATE_MODULE
                | call_imports::CHAIN_MODULE
        );
        if !ours || RUN_ANYWHERE.contains(&(module_name, name)) {
            continue;
        }
        match (module_name, name) {
            (wasi::MODULE, "fd_write") => {
                linker.func_wrap(wasi::MODULE, "fd_write", remote_fd_write)?;
            }
            (wasi::MODULE, "poll_oneoff") => {
                linker.func_wrap(wasi::MODULE, "poll_oneoff", remote_poll_oneoff)?;
            }
            (threads::WEFT_MODULE, "arena-grow") => {
                linker.func_wrap(threads::WEFT_MODULE, "arena-grow", remote_arena_grow)?;
            }
            _ => {
                let what = format!("{module_name}.{name}");
                linker.func_new(module_name, name, ty, move |_, _, _| {
                    Err(wasmtime::Error::new(NeedsHome(what.clone())))
                })?;
            }
        }
    }
    Ok(())
}

/// Size of a preview1 `ciovec`.
const CIOVEC_SIZE: u32 = 8;
/// preview1 `errno.fault`.
const ERRNO_FAULT: i32 = 21;

/// `fd_write` on stdout or stderr appends to the thread's buffered output
/// (a record per write: fd, length, bytes); any other fd needs home.
fn remote_fd_write(
    mut caller: Caller<'_, ThreadState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    if fd != 1 && fd != 2 {
        return Err(NeedsHome(format!("fd_write to fd {fd}")).into());
    }
    let mut bytes = Vec::new();
    for i in 0..iovs_len.max(0) as u32 {
        let mut iov = [0u8; CIOVEC_SIZE as usize];
        let at = (iovs as u32).wrapping_add(i * CIOVEC_SIZE);
        if !read_guest(&mut caller, at, &mut iov) {
            return Ok(ERRNO_FAULT);
        }
        let ptr = u32::from_le_bytes(iov[..4].try_into().unwrap());
        let len = u32::from_le_bytes(iov[4..].try_into().unwrap()) as usize;
        if bytes.len() + len + caller.data().output.len() > MAX_OUTPUT {
            return Err(NeedsHome("more output than a remote thread buffers".into()).into());
        }
        let start = bytes.len();
        bytes.resize(start + len, 0);
        if !read_guest(&mut caller, ptr, &mut bytes[start..]) {
            return Ok(ERRNO_FAULT);
        }
    }
    if !write_guest(&mut caller, out as u32, &(bytes.len() as u32).to_le_bytes()) {
        return Ok(ERRNO_FAULT);
    }
    let output = &mut caller.data_mut().output;
    output.push(fd as u8);
    output.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    output.extend_from_slice(&bytes);
    Ok(0)
}

/// `arena-grow` away from home: home hands out the chunk from its zone;
/// the thread's memory is made to reach it (and zeroed where it held
/// data). Returns 0 (the guest's `malloc` fails) when memory is full.
fn remote_arena_grow(caller: Caller<'_, ThreadState>, size: i32) -> wasmtime::Result<i32> {
    let state = caller.data();
    let (Some(home), Some(memory)) = (state.home.clone(), state.memory.clone()) else {
        return Err(NeedsHome("arena-grow without a way home".into()).into());
    };
    let call = |request: &HomeRequest| -> wasmtime::Result<HomeReply> {
        let reply = home
            .call(encode_home(request))
            .map_err(|e| NeedsHome(format!("arena-grow: {e}")))?;
        decode_home(&reply).map_err(|e| NeedsHome(format!("arena-grow: {e}")).into())
    };
    match call(&HomeRequest::ArenaGrow { size: size as u32 })? {
        HomeReply::Chunk { start, len, dirty } => {
            match chain::adopt_remote_chunk(&memory, start, len, dirty) {
                Ok(()) => Ok(start as i32),
                Err(e) => {
                    tracing::debug!("remote arena-grow of {size} bytes: {e}");
                    call(&HomeRequest::ArenaRelease { start })?;
                    Ok(0)
                }
            }
        }
        HomeReply::NoChunk => Ok(0),
        other => Err(NeedsHome(format!("arena-grow: home answered {other:?}")).into()),
    }
}

/// Sleeping works anywhere; waiting on files needs home.
fn remote_poll_oneoff(
    mut caller: Caller<'_, ThreadState>,
    subs: i32,
    events: i32,
    nsubs: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    if nsubs == 1
        && let Some(errno) = wasi::sleep_only(&mut caller, subs, events, nevents)?
    {
        return Ok(errno);
    }
    Err(NeedsHome("poll_oneoff on files".into()).into())
}

/// Splits buffered output into its writes: `(fd, bytes)`. Refuses a
/// record that runs past the end or names another fd.
pub fn output_records(mut output: &[u8]) -> Result<Vec<(u8, &[u8])>, &'static str> {
    let mut records = Vec::new();
    while let [fd, rest @ ..] = output {
        if *fd != 1 && *fd != 2 {
            return Err("output for an fd other than stdout or stderr");
        }
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or("truncated output record")?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err("truncated output record");
        }
        records.push((*fd, &rest[..len]));
        output = &rest[len..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_records_round_trip_and_refuse_damage() {
        let mut output = Vec::new();
        for (fd, text) in [(1u8, &b"one"[..]), (2, b""), (1, b"three")] {
            output.push(fd);
            output.extend_from_slice(&(text.len() as u32).to_le_bytes());
            output.extend_from_slice(text);
        }
        assert_eq!(
            output_records(&output).unwrap(),
            vec![(1, &b"one"[..]), (2, &b""[..]), (1, &b"three"[..])]
        );
        for cut in 1..output.len() {
            let whole_records = [0, 8, 13, output.len()];
            assert_eq!(
                output_records(&output[..cut]).is_ok(),
                whole_records.contains(&cut),
                "cut at {cut}"
            );
        }
        assert!(output_records(&[3, 0, 0, 0, 0]).is_err());
        assert!(output_records(&[1, 255, 255, 255, 255]).is_err());
    }
}
