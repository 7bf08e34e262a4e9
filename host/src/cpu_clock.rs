//! CPU time of the calling OS thread and of the process (a guest thread
//! runs on one OS thread for as long as it runs, so the OS thread's clock
//! is the guest thread's).

/// Nanoseconds of `clock`.
pub(crate) fn cpu_time(clock: libc::clockid_t) -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into memory we own.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    Some(now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64)
}

/// The calling OS thread's CPU time in nanoseconds (0 if unknown).
pub(crate) fn thread_cpu_time() -> u64 {
    cpu_time(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0)
}
