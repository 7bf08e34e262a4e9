//! WASI preview1 for every thread of a process over one shared context.
//!
//! `wasmtime_wasi::p1::add_to_linker_sync` wants a `&mut WasiP1Ctx` inside
//! each store, so each thread would get its own fd table: a file opened by one
//! thread would be `EBADF` in another. Native programs share one table, so
//! Weft defines every preview1 import itself: each call locks the process's
//! single `WasiP1Ctx` and runs wasmtime-wasi's implementation of that call
//! against the guest memory.
//!
//! Holding one lock per call serialises WASI calls, which is what a shared
//! fd table needs anyway. The one call that commonly blocks for long, a
//! `poll_oneoff` that only sleeps (`nanosleep`, `usleep`, `sleep`), is
//! served without the lock so a sleeping thread never stalls the others;
//! a read or poll that waits for input lets go of it between looks
//! (`until_input`, `wasi_poll`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wiggle::GuestMemory;

use crate::process::{ThreadState, read_guest, write_guest};
use crate::wasi_poll::{
    CLOCKID_MONOTONIC, CLOCKID_REALTIME, EVENT_SIZE, EVENTTYPE_CLOCK, EVENTTYPE_FD_READ, Look,
    PendingPoll, SUBCLOCKFLAGS_ABSTIME, SUBSCRIPTION_SIZE, event_bytes,
};

/// The module name of WASI preview1 imports.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// Runs `f` with the shared WASI context and a view of the caller's memory.
fn with_ctx<R>(
    caller: &mut Caller<'_, ThreadState>,
    f: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let process = caller.data().process.clone();
    if let Some(memory) = caller.data().memory.clone() {
        let mut mem = GuestMemory::Shared(memory.memory.data());
        let mut ctx = process.wasi().lock();
        return f(&mut ctx, &mut mem);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => {
            let mut mem = GuestMemory::Unshared(memory.data_mut(&mut *caller));
            let mut ctx = process.wasi().lock();
            f(&mut ctx, &mut mem)
        }
        _ => wasmtime::bail!("WASI call from a module that exports no memory named `memory`"),
    }
}

macro_rules! define_p1 {
    ($( $mode:ident $name:ident ( $($arg:ident : $ty:ty),* ) ; )*) => {
        /// Every preview1 function Weft defines.
        pub const FUNCTIONS: &[&str] = &[
            $(stringify!($name),)*
            "proc_exit",
            "sched_yield",
            "poll_oneoff",
            "clock_res_get",
            "clock_time_get",
        ];

        /// Defines the preview1 functions that need nothing but the shared
        /// context.
        fn add_plain_functions(linker: &mut Linker<ThreadState>) -> wasmtime::Result<()> {
        $(
            linker.func_wrap(
                MODULE,
                stringify!($name),
                move |mut caller: Caller<'_, ThreadState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                    with_ctx(&mut caller, |ctx, mem| {
                        define_p1!(@call $mode $name ctx mem ($($arg),*))
                    })
                },
            )?;
        )*
        Ok(())
        }

        /// Makes the plain preview1 call `name` (or `poll_oneoff`) with
        /// `args` (as wasm values, widened) on `ctx` over `mem`: how home
        /// makes a file call for a thread away from home, on a copy of its
        /// memory.
        /// `None` for a name that is not one of them or arguments that do
        /// not fit it.
        pub(crate) fn call_plain(
            ctx: &mut WasiP1Ctx,
            mem: &mut GuestMemory<'_>,
            name: &str,
            args: &[i64],
        ) -> Option<wasmtime::Result<i32>> {
            $(
            if name == stringify!($name) {
                let mut args = args.iter().copied();
                $(let $arg = <$ty>::try_from(args.next()?).ok()?;)*
                if args.next().is_some() {
                    return None;
                }
                return Some(define_p1!(@call $mode $name ctx mem ($($arg),*)));
            }
            )*
            if let ("poll_oneoff", &[subs, events, nsubs, nevents]) = (name, args) {
                let [subs, events, nsubs, nevents] =
                    [subs, events, nsubs, nevents].map(|a| i32::try_from(a).ok());
                return Some(wasmtime_wasi::runtime::in_tokio(p1::poll_oneoff(
                    ctx, mem, subs?, events?, nsubs?, nevents?,
                )));
            }
            None
        }
    };
    (@call sync $name:ident $ctx:ident $mem:ident ($($arg:ident),*)) => {
        p1::$name($ctx, $mem, $($arg),*)
    };
    (@call async $name:ident $ctx:ident $mem:ident ($($arg:ident),*)) => {
        wasmtime_wasi::runtime::in_tokio(p1::$name($ctx, $mem, $($arg),*))
    };
}

define_p1! {
        sync args_get(argv: i32, argv_buf: i32);
        sync args_sizes_get(argc: i32, argv_buf_size: i32);
        sync environ_get(environ: i32, environ_buf: i32);
        sync environ_sizes_get(count: i32, buf_size: i32);
        async fd_advise(fd: i32, offset: i64, len: i64, advice: i32);
        sync fd_allocate(fd: i32, offset: i64, len: i64);
        async fd_close(fd: i32);
        async fd_datasync(fd: i32);
        async fd_fdstat_get(fd: i32, out: i32);
        sync fd_fdstat_set_flags(fd: i32, flags: i32);
        sync fd_fdstat_set_rights(fd: i32, base: i64, inheriting: i64);
        async fd_filestat_get(fd: i32, out: i32);
        async fd_filestat_set_size(fd: i32, size: i64);
        async fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, flags: i32);
        async fd_pread(fd: i32, iovs: i32, iovs_len: i32, offset: i64, out: i32);
        sync fd_prestat_get(fd: i32, out: i32);
        sync fd_prestat_dir_name(fd: i32, path: i32, path_len: i32);
        async fd_pwrite(fd: i32, iovs: i32, iovs_len: i32, offset: i64, out: i32);
        async fd_read(fd: i32, iovs: i32, iovs_len: i32, out: i32);
        async fd_readdir(fd: i32, buf: i32, buf_len: i32, cookie: i64, out: i32);
        async fd_renumber(fd: i32, to: i32);
        async fd_seek(fd: i32, offset: i64, whence: i32, out: i32);
        async fd_sync(fd: i32);
        sync fd_tell(fd: i32, out: i32);
        async fd_write(fd: i32, iovs: i32, iovs_len: i32, out: i32);
        async path_create_directory(fd: i32, path: i32, path_len: i32);
        async path_filestat_get(fd: i32, flags: i32, path: i32, path_len: i32, out: i32);
        async path_filestat_set_times(fd: i32, flags: i32, path: i32, path_len: i32, atim: i64, mtim: i64, fst_flags: i32);
        async path_link(old_fd: i32, old_flags: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32);
        async path_open(fd: i32, dirflags: i32, path: i32, path_len: i32, oflags: i32, base: i64, inheriting: i64, fdflags: i32, out: i32);
        async path_readlink(fd: i32, path: i32, path_len: i32, buf: i32, buf_len: i32, out: i32);
        async path_remove_directory(fd: i32, path: i32, path_len: i32);
        async path_rename(fd: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32);
        async path_symlink(old_path: i32, old_path_len: i32, fd: i32, new_path: i32, new_path_len: i32);
        async path_unlink_file(fd: i32, path: i32, path_len: i32);
        sync proc_raise(sig: i32);
        sync random_get(buf: i32, buf_len: i32);
        sync sock_accept(fd: i32, flags: i32, out: i32);
        sync sock_recv(fd: i32, ri_data: i32, ri_data_len: i32, ri_flags: i32, out_len: i32, out_flags: i32);
        sync sock_send(fd: i32, si_data: i32, si_data_len: i32, si_flags: i32, out: i32);
        sync sock_shutdown(fd: i32, how: i32);
}

/// Adds all of WASI preview1 to `linker`, backed by the process's shared
/// context.
pub fn add_to_linker(linker: &mut Linker<ThreadState>) -> wasmtime::Result<()> {
    add_plain_functions(linker)?;

    // A read waits for input without the shared context (see
    // `input_would_block`): it replaces the plain one.
    linker.allow_shadowing(true);
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut caller: Caller<'_, ThreadState>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         out: i32|
         -> wasmtime::Result<i32> {
            let read = until_input_here(&mut caller, |caller| {
                let read = with_ctx(caller, |ctx, mem| {
                    if input_would_block(ctx, fd) {
                        return Ok(None);
                    }
                    wasmtime_wasi::runtime::in_tokio(p1::fd_read(ctx, mem, fd, iovs, iovs_len, out))
                        .map(Some)
                })?;
                Ok(match read {
                    Some(errno) => Input::Made(errno),
                    None if caller.data().home().is_cancelled() => Input::Ended,
                    None => Input::Waiting,
                })
            })?;
            read.ok_or_else(|| wasmtime::Error::new(crate::outcome::ProgramEnded))
        },
    )?;
    linker.allow_shadowing(false);

    // `proc_exit` ends the whole process: the thread runner recognises the
    // `I32Exit` error on any thread.
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |_caller: Caller<'_, ThreadState>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime_wasi::I32Exit(code).into())
        },
    )?;

    // wasmtime-wasi's `sched_yield` does nothing; a guest that yields in a
    // spin loop (a spin lock, a backoff, OpenMP's waits) expects the core
    // to go to a thread that needs it, as natively.
    linker.func_wrap(
        MODULE,
        "sched_yield",
        |_caller: Caller<'_, ThreadState>| -> wasmtime::Result<i32> {
            std::thread::yield_now();
            Ok(0)
        },
    )?;

    // CPU-time clocks are the host's: wasmtime-wasi has none.
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut caller: Caller<'_, ThreadState>, id: i32, out: i32| -> wasmtime::Result<i32> {
            if cpu_clock(id).is_some() {
                return Ok(write_u64(&mut caller, out, 1));
            }
            with_ctx(&mut caller, |ctx, mem| p1::clock_res_get(ctx, mem, id, out))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut caller: Caller<'_, ThreadState>,
         id: i32,
         precision: i64,
         out: i32|
         -> wasmtime::Result<i32> { clock_time_get(&mut caller, id, precision, out) },
    )?;

    // Sleeping is served without the shared context, and so is waiting
    // for descriptors (see `wasi_poll`); calls Weft does not wait for
    // itself go to wasmtime-wasi as they are.
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut caller: Caller<'_, ThreadState>,
         subs: i32,
         events: i32,
         nsubs: i32,
         nevents: i32|
         -> wasmtime::Result<i32> {
            if nsubs == 1
                && let Some(errno) = sleep_only(&mut caller, subs, events, nevents)?
            {
                return Ok(errno);
            }
            let made = Instant::now();
            let mut records = vec![0u8; SUBSCRIPTION_SIZE * usize::try_from(nsubs).unwrap_or(0)];
            if let Some(pending) = (nsubs > 0 && read_guest(&mut caller, subs as u32, &mut records))
                .then(|| PendingPoll::parse(&records, made))
                .flatten()
            {
                let process = caller.data().process.clone();
                let home = caller.data().home_handle();
                let answer = until_input_here(&mut caller, |_| {
                    look_at_poll(&process, &pending, || home.is_cancelled())
                })?;
                return match answer {
                    None => Err(wasmtime::Error::new(crate::outcome::ProgramEnded)),
                    Some(Err(errno)) => Ok(errno),
                    Some(Ok(ready)) => {
                        let written = write_guest(&mut caller, events as u32, &event_bytes(&ready))
                            && write_guest(
                                &mut caller,
                                nevents as u32,
                                &(ready.len() as u32).to_le_bytes(),
                            );
                        Ok(if written {
                            0
                        } else {
                            wasmtime_wasi::p1::types::Errno::Fault as i32
                        })
                    }
                };
            }
            with_ctx(&mut caller, |ctx, mem| {
                wasmtime_wasi::runtime::in_tokio(p1::poll_oneoff(
                    ctx, mem, subs, events, nsubs, nevents,
                ))
            })
        },
    )?;
    Ok(())
}

/// How long a read with no input waits before it looks again, at first and
/// at most: short enough for a terminal, long enough to cost nothing.
const INPUT_POLL_FIRST: Duration = Duration::from_millis(1);
const INPUT_POLL_MAX: Duration = Duration::from_millis(20);

/// What one try of a call that may wait for input came to.
pub(crate) enum Input<R> {
    /// The call was made (it would not wait).
    Made(R),
    /// It would wait: try again later.
    Waiting,
    /// It would wait, and is due within this long: try again by then.
    WaitingAtMost(Duration),
    /// The thread is to stop (its program ended).
    Ended,
}

/// Tries `attempt` (which takes the shared context for one look, see
/// [`input_would_block`]) until the call is made, sleeping between tries
/// without the context, 1 ms doubling up to 20 ms; `None` once the
/// thread is to stop.
pub(crate) fn until_input<R>(
    mut attempt: impl FnMut() -> wasmtime::Result<Input<R>>,
) -> wasmtime::Result<Option<R>> {
    let mut pause = INPUT_POLL_FIRST;
    loop {
        match attempt()? {
            Input::Made(answer) => return Ok(Some(answer)),
            Input::Ended => return Ok(None),
            Input::Waiting => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(INPUT_POLL_MAX);
            }
            Input::WaitingAtMost(due) => {
                std::thread::sleep(pause.min(due));
                pause = (pause * 2).min(INPUT_POLL_MAX);
            }
        }
    }
}

/// [`until_input`] for a thread of this host: the first try holds the
/// thread's slot, and a call that would wait gives it up until it is made
/// (a thread waiting for input runs nothing, and the thread that is to
/// give the input, or to cancel the waiting one, may be queued for a
/// slot).
fn until_input_here<R>(
    caller: &mut Caller<'_, ThreadState>,
    mut attempt: impl FnMut(&mut Caller<'_, ThreadState>) -> wasmtime::Result<Input<R>>,
) -> wasmtime::Result<Option<R>> {
    match attempt(caller)? {
        Input::Made(answer) => return Ok(Some(answer)),
        Input::Ended => return Ok(None),
        Input::Waiting | Input::WaitingAtMost(_) => {}
    }
    crate::process::without_slot(caller, |caller| until_input(|| attempt(caller)))
}

/// What one look at `pending` (see `wasi_poll`) came to, taking the
/// process's shared context for the look only; `ending` says whether the
/// thread is to stop.
fn look_at_poll(
    process: &crate::Process,
    pending: &PendingPoll,
    ending: impl Fn() -> bool,
) -> wasmtime::Result<Input<Result<Vec<[u8; EVENT_SIZE]>, i32>>> {
    let look = pending.look(&mut process.wasi().lock())?;
    Ok(match look {
        Look::Ready(events) => Input::Made(Ok(events)),
        Look::Errno(errno) => Input::Made(Err(errno)),
        Look::Waiting(_) if ending() => Input::Ended,
        Look::Waiting(Some(due)) => Input::WaitingAtMost(due),
        Look::Waiting(None) => Input::Waiting,
    })
}

/// A `poll_oneoff(args)` on descriptors made at home for a thread away
/// from home, on `memory` (a copy of the thread's), waited for as a
/// thread here waits: `None` for a call Weft leaves to wasmtime-wasi
/// as it is, else its errno, or `None` inside once `ending` says the
/// thread is to stop.
pub(crate) fn poll_in_copy(
    process: &crate::Process,
    memory: &mut [u8],
    args: &[i64],
    ending: impl Fn() -> bool,
) -> Option<wasmtime::Result<Option<i32>>> {
    let &[subs, events, nsubs, nevents] = args else {
        return None;
    };
    let [subs, events, nsubs, nevents] =
        [subs, events, nsubs, nevents].map(|a| u32::try_from(a).ok());
    let (subs, events, nevents) = (subs? as usize, events? as usize, nevents? as usize);
    let records =
        memory.get(subs..subs.checked_add(SUBSCRIPTION_SIZE.checked_mul(nsubs? as usize)?)?)?;
    let pending = PendingPoll::parse(records, Instant::now())?;
    let answer = match until_input(|| look_at_poll(process, &pending, &ending)) {
        Ok(answer) => answer,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(answer.map(|made| match made {
        Err(errno) => errno,
        Ok(ready) => {
            let bytes = event_bytes(&ready);
            let count = (ready.len() as u32).to_le_bytes();
            let fits = events
                .checked_add(bytes.len())
                .is_some_and(|end| end <= memory.len())
                && nevents
                    .checked_add(4)
                    .is_some_and(|end| end <= memory.len());
            if !fits {
                return wasmtime_wasi::p1::types::Errno::Fault as i32;
            }
            memory[events..events + bytes.len()].copy_from_slice(&bytes);
            memory[nevents..nevents + 4].copy_from_slice(&count);
            0
        }
    })))
}

// preview1's `filetype`, `fdflags` and `eventtype` values used here.
const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR_FILE: u8 = 4;
const FDFLAGS_NONBLOCK: u16 = 4;

/// Whether a read of `fd` would wait for input now: a pipe, terminal or
/// socket in blocking mode with nothing to read. Such a read must not be
/// made while holding the shared context, or every other thread's WASI
/// call (a `printf`, a clock, a sleep) would wait for the input too; the
/// caller lets go of it and looks again. Any doubt (a bad descriptor, a
/// failed look) says no: the read itself then answers.
pub(crate) fn input_would_block(ctx: &mut WasiP1Ctx, fd: i32) -> bool {
    // The records live in a scratch memory of the host's, not the guest's:
    // an fdstat at 0, two subscriptions at 64, their events at 160, the
    // event count at 224.
    let mut scratch = [0u8; 256];
    let mut mem = GuestMemory::Unshared(&mut scratch);
    let fdstat = wasmtime_wasi::runtime::in_tokio(p1::fd_fdstat_get(ctx, &mut mem, fd, 0));
    if !matches!(fdstat, Ok(0)) {
        return false;
    }
    let filetype = scratch[0];
    let flags = u16::from_le_bytes([scratch[2], scratch[3]]);
    if matches!(filetype, FILETYPE_DIRECTORY | FILETYPE_REGULAR_FILE)
        || flags & FDFLAGS_NONBLOCK != 0
    {
        return false;
    }
    // Input on `fd`, or a timeout of zero.
    let (subs, events, nevents) = (64usize, 160usize, 224usize);
    scratch[subs + 8] = EVENTTYPE_FD_READ;
    scratch[subs + 16..subs + 20].copy_from_slice(&fd.to_le_bytes());
    let clock = subs + SUBSCRIPTION_SIZE;
    scratch[clock..clock + 8].copy_from_slice(&1u64.to_le_bytes());
    scratch[clock + 8] = EVENTTYPE_CLOCK;
    scratch[clock + 16..clock + 20].copy_from_slice(&CLOCKID_MONOTONIC.to_le_bytes());
    let mut mem = GuestMemory::Unshared(&mut scratch);
    let polled = wasmtime_wasi::runtime::in_tokio(p1::poll_oneoff(
        ctx,
        &mut mem,
        subs as i32,
        events as i32,
        2,
        nevents as i32,
    ));
    if !matches!(polled, Ok(0)) {
        return false;
    }
    let count = u32::from_le_bytes(scratch[nevents..nevents + 4].try_into().unwrap()) as usize;
    // An event for `fd` (input, end of input or an error) means a read
    // returns at once.
    !(0..count.min(2)).any(|i| scratch[events + i * EVENT_SIZE + 10] == EVENTTYPE_FD_READ)
}

/// Makes the plain preview1 call `name` (or `poll_oneoff`) with `args`
/// for the thread calling from `caller`, on its own memory.
pub(crate) fn call_here(
    caller: &mut Caller<'_, ThreadState>,
    name: &str,
    args: &[i64],
) -> wasmtime::Result<i32> {
    with_ctx(caller, |ctx, mem| {
        call_plain(ctx, mem, name, args).unwrap_or_else(|| {
            wasmtime::bail!(
                "`{name}` with {} arguments is no WASI call Weft makes",
                args.len()
            )
        })
    })
}

/// Whether `name` is a preview1 function [`call_plain`] makes.
pub(crate) fn is_plain(name: &str) -> bool {
    FUNCTIONS.contains(&name)
        && !matches!(
            name,
            "proc_exit" | "poll_oneoff" | "clock_res_get" | "clock_time_get"
        )
}

/// Size of a preview1 `fdstat` record.
pub(crate) const FDSTAT_SIZE: usize = 24;

/// `fd_fdstat_get` of the process's descriptor `fd` as its record's bytes,
/// or the errno: what home answers a thread away from home.
pub(crate) fn fdstat(process: &crate::Process, fd: i32) -> Result<[u8; FDSTAT_SIZE], u16> {
    let mut bytes = [0u8; FDSTAT_SIZE];
    // Home serves it from inside its network runtime, where wasmtime-wasi
    // cannot start its own: on a thread of its own.
    let errno = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut ctx = process.wasi().lock();
                let mut mem = GuestMemory::Unshared(&mut bytes);
                wasmtime_wasi::runtime::in_tokio(p1::fd_fdstat_get(&mut *ctx, &mut mem, fd, 0))
            })
            .join()
    });
    match errno {
        Ok(Ok(0)) => Ok(bytes),
        Ok(Ok(errno)) => Err(errno as u16),
        Ok(Err(_)) | Err(_) => Err(wasmtime_wasi::p1::types::Errno::Io as u16),
    }
}

/// preview1's `clockid` of the process's and the calling thread's CPU time.
pub(crate) const CLOCKID_PROCESS_CPUTIME: i32 = 2;
const CLOCKID_THREAD_CPUTIME: i32 = 3;
/// Clock ids with this bit are the CPU clock of thread `id & !THREAD_CLOCK`
/// (libweft's `pthread_getcpuclockid`): a thread that runs on this host,
/// else `inval`.
const THREAD_CLOCK: u32 = 0x8000_0000;

/// `clock_time_get`: the CPU-time clocks from the host (a thread's from
/// its own start; the process's with what its threads used on peers), the
/// others from wasmtime-wasi.
pub(crate) fn clock_time_get(
    caller: &mut Caller<'_, ThreadState>,
    id: i32,
    precision: i64,
    out: i32,
) -> wasmtime::Result<i32> {
    if id as u32 & THREAD_CLOCK != 0 {
        // Another thread's CPU clock (libweft's `pthread_getcpuclockid`).
        let tid = id as u32 & !THREAD_CLOCK;
        return Ok(match caller.data().process.clocks().read(tid) {
            Some(nanos) => write_u64(caller, out, nanos),
            None => wasmtime_wasi::p1::types::Errno::Inval as i32,
        });
    }
    let Some(clock) = cpu_clock(id) else {
        return with_ctx(caller, |ctx, mem| {
            p1::clock_time_get(ctx, mem, id, precision, out)
        });
    };
    let state = caller.data();
    let (base, elsewhere) = match id {
        CLOCKID_THREAD_CPUTIME => (state.cpu_base, 0),
        _ => (0, state.process.cpu_elsewhere()),
    };
    Ok(match crate::cpu_clock::cpu_time(clock) {
        Some(nanos) => write_u64(caller, out, nanos.saturating_sub(base) + elsewhere),
        None => wasmtime_wasi::p1::types::Errno::Inval as i32,
    })
}

/// A CPU-time clock as home reads it for a thread away from home: the
/// process's (`CLOCKID_PROCESS_CPUTIME`, with its threads' time on peers)
/// or another thread's (`THREAD_CLOCK`); `None` for other ids and for a
/// thread that no longer runs.
pub(crate) fn cpu_clock_at_home(process: &crate::Process, id: u32) -> Option<u64> {
    if id & THREAD_CLOCK != 0 {
        return process.clocks().read(id & !THREAD_CLOCK);
    }
    (id == CLOCKID_PROCESS_CPUTIME as u32)
        .then(|| crate::cpu_clock::cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID))
        .flatten()
        .map(|nanos| nanos + process.cpu_elsewhere())
}

/// Whether clock `id` is one only home reads (see [`cpu_clock_at_home`]).
pub(crate) fn is_home_clock(id: i32) -> bool {
    id == CLOCKID_PROCESS_CPUTIME || id as u32 & THREAD_CLOCK != 0
}

/// The host clock behind a preview1 CPU-time clock id. A guest thread
/// runs on an OS thread of its own for as long as it runs (in either
/// mode), so the OS thread's CPU time is the guest thread's.
fn cpu_clock(id: i32) -> Option<libc::clockid_t> {
    match id {
        CLOCKID_PROCESS_CPUTIME => Some(libc::CLOCK_PROCESS_CPUTIME_ID),
        CLOCKID_THREAD_CPUTIME => Some(libc::CLOCK_THREAD_CPUTIME_ID),
        _ => None,
    }
}

/// Writes `value` at `out` in guest memory: errno 0, or `fault`.
fn write_u64(caller: &mut Caller<'_, ThreadState>, out: i32, value: u64) -> i32 {
    if write_guest(caller, out as u32, &value.to_le_bytes()) {
        0
    } else {
        wasmtime_wasi::p1::types::Errno::Fault as i32
    }
}

/// Sleeps this long or longer give the thread's slot up while they last
/// (shorter ones are yields, whose slot would go and come back for
/// nothing).
const SLEEP_WITHOUT_SLOT: Duration = Duration::from_micros(50);

/// If the single subscription at `subs` is a clock timeout, sleeps until it
/// expires, writes its event and returns `Some(errno)`; otherwise `None`.
pub(crate) fn sleep_only(
    caller: &mut Caller<'_, ThreadState>,
    subs: i32,
    events: i32,
    nevents: i32,
) -> wasmtime::Result<Option<i32>> {
    let mut sub = [0u8; SUBSCRIPTION_SIZE];
    if !read_guest(caller, subs as u32, &mut sub) {
        return Ok(None);
    }
    if sub[8] != EVENTTYPE_CLOCK {
        return Ok(None);
    }
    let clock = u32::from_le_bytes(sub[16..20].try_into().unwrap());
    let timeout = u64::from_le_bytes(sub[24..32].try_into().unwrap());
    let flags = u16::from_le_bytes(sub[40..42].try_into().unwrap());
    let duration = if flags & SUBCLOCKFLAGS_ABSTIME == 0 {
        match clock {
            CLOCKID_REALTIME | CLOCKID_MONOTONIC => Duration::from_nanos(timeout),
            _ => return Ok(None),
        }
    } else if clock == CLOCKID_REALTIME {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Duration::from_nanos(timeout).saturating_sub(now)
    } else {
        // Absolute monotonic deadlines are relative to wasmtime-wasi's
        // clock origin: let it handle them.
        return Ok(None);
    };
    let sleep = || {
        let start = Instant::now();
        while let Some(left) = duration.checked_sub(start.elapsed()) {
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left);
        }
    };
    // A sleeping thread runs nothing: its slot goes to a queued thread,
    // which may be the one it waits for (old-style polling of a flag).
    if duration >= SLEEP_WITHOUT_SLOT {
        crate::process::without_slot(caller, |_| sleep());
    } else {
        sleep();
    }
    let mut event = [0u8; EVENT_SIZE];
    event[0..8].copy_from_slice(&sub[0..8]);
    event[10] = EVENTTYPE_CLOCK;
    if !write_guest(caller, events as u32, &event)
        || !write_guest(caller, nevents as u32, &1u32.to_le_bytes())
    {
        return Ok(Some(wasmtime_wasi::p1::types::Errno::Fault as i32));
    }
    Ok(Some(0))
}
