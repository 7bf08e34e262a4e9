//! Room on the native stack for guest code.
//!
//! A guest's call frames live on the native stack of the OS thread that
//! runs it. wasmtime ends a guest that uses more than the engine's
//! `max_wasm_stack` of it with a "call stack exhausted" trap, and counts
//! on the thread having that much room, plus what host calls made from
//! deep inside the guest need: past the thread's real stack a guest would
//! not trap but crash the process. Natively a program's main thread and
//! its threads get 8 MiB (glibc's default), and recursion that is fine
//! natively must be fine here; cranelift's frames are larger than gcc's
//! (a one-argument function called through a pointer: 32 bytes a call
//! against 16, so 261,000 calls deep in 8 MiB against 523,000), so guest
//! code gets twice as much, [`WASM_STACK`].
//!
//! Weft's own threads (the pool's, calls') are made with
//! [`THREAD_STACK`]. Every entry into guest code on a thread Weft did not
//! make (an embedder's, the CLI's main thread, an async runtime's blocking
//! thread) goes through [`with_room`], which measures the room left and,
//! when it is short, runs the call on a thread made for it.

/// The native stack guest code may use on any thread.
pub const WASM_STACK: usize = 16 << 20;

/// Room host calls need beyond the guest's frames, at least.
const HOST_ROOM: usize = 1 << 20;

/// The stack of a thread Weft makes to run guest code: the guest's, the
/// host's, and what the thread uses before it calls in.
pub const THREAD_STACK: usize = WASM_STACK + 2 * HOST_ROOM;

/// Runs `f`, which enters guest code, on this thread when it has room for
/// [`WASM_STACK`] and host calls, else on a thread made for it (and waits
/// for it). A panic in `f` goes on in the caller.
///
/// # Errors
///
/// A thread with room could not be made.
pub(crate) fn with_room<R: Send>(f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    if room_here().is_some_and(|room| room >= WASM_STACK + HOST_ROOM) {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("weft-guest".into())
            .stack_size(THREAD_STACK)
            .spawn_scoped(scope, f)?;
        Ok(thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// The stack left below this point on the calling thread, if the system
/// says where the thread's stack ends.
fn room_here() -> Option<usize> {
    let mut lowest: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: `attr` is zeroed plain data that pthread_getattr_np fills
    // for the calling thread (always a live thread); it is read only after
    // that succeeded and destroyed exactly once after. `lowest` and `size`
    // are valid places for pthread_attr_getstack to write.
    let got = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let got = libc::pthread_attr_getstack(&attr, &mut lowest, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        got
    };
    if got != 0 {
        return None;
    }
    // The stack grows down, from `lowest + size` towards `lowest`; a local
    // variable's address is where this thread's stack is now.
    let here = std::ptr::addr_of!(size) as usize;
    here.checked_sub(lowest as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_made_with_the_thread_stack_runs_guest_code_itself() {
        let spawned = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(|| {
                let caller = std::thread::current().id();
                with_room(|| std::thread::current().id() == caller).unwrap()
            })
            .unwrap();
        assert!(spawned.join().unwrap());
    }

    #[test]
    fn a_thread_with_a_small_stack_hands_guest_code_to_one_with_room() {
        let spawned = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let caller = std::thread::current().id();
                with_room(|| {
                    let room = room_here().unwrap();
                    (std::thread::current().id() != caller, room)
                })
                .unwrap()
            })
            .unwrap();
        let (moved, room) = spawned.join().unwrap();
        assert!(moved);
        assert!(room >= WASM_STACK + HOST_ROOM, "{room}");
    }

    #[test]
    fn the_room_measured_is_less_than_the_stack_and_most_of_it() {
        let spawned = std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn(room_here)
            .unwrap();
        let room = spawned.join().unwrap().unwrap();
        assert!(room < 4 << 20 && room > 3 << 20, "{room}");
    }

    #[test]
    fn a_panic_in_guest_code_on_another_thread_reaches_the_caller() {
        let spawned = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| with_room(|| -> () { panic!("in the guest") }));
        let ended = spawned.unwrap().join();
        let panic = ended.unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"in the guest"));
    }
}
