//! CPU time of the calling OS thread and of the process (a guest thread
//! runs on one OS thread for as long as it runs, so the OS thread's clock
//! is the guest thread's).

use crate::locks::Locked as _;

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

/// The CPU clocks of a program's threads while they run, by thread id, so
/// one thread can read another's (`pthread_getcpuclockid`).
#[derive(Debug, Default)]
pub(crate) struct ThreadClocks {
    running: std::sync::Mutex<std::collections::HashMap<u32, RunningClock>>,
    /// Threads running on peers: the CPU time each reported at its last
    /// sync point.
    away: std::sync::Mutex<std::collections::HashMap<u32, u64>>,
}

#[derive(Debug, Clone, Copy)]
struct RunningClock {
    /// The CPU clock of the OS thread the guest thread runs on.
    os_clock: libc::clockid_t,
    /// That clock's reading when the guest thread began running there.
    base: u64,
}

impl ThreadClocks {
    /// Guest thread `tid` runs on the calling OS thread from CPU time
    /// `base` until the guard drops.
    pub(crate) fn enter(&self, tid: u32, base: u64) -> RunningGuard<'_> {
        let mut os_clock: libc::clockid_t = 0;
        // SAFETY: pthread_getcpuclockid writes one clockid_t we own, for
        // the calling thread, which is alive.
        let known =
            unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut os_clock) } == 0;
        if known {
            let mut running = self.running.locked();
            running.insert(tid, RunningClock { os_clock, base });
        }
        RunningGuard { clocks: self, tid }
    }

    /// Nanoseconds of CPU time thread `tid` has used, if it runs here now
    /// (or on a peer: as of its last sync point).
    pub(crate) fn read(&self, tid: u32) -> Option<u64> {
        let running = self.running.locked();
        let Some(clock) = running.get(&tid) else {
            return self.away.locked().get(&tid).copied();
        };
        // Read under the lock: the OS thread stays this guest thread's
        // until its guard takes the entry out.
        cpu_time(clock.os_clock).map(|now| now.saturating_sub(clock.base))
    }

    /// Thread `tid`, on a peer, had used `nanos` of CPU time at its latest
    /// sync point.
    pub(crate) fn report_away(&self, tid: u32, nanos: u64) {
        self.away.locked().insert(tid, nanos);
    }

    /// Thread `tid` no longer runs on a peer.
    pub(crate) fn forget_away(&self, tid: u32) {
        self.away.locked().remove(&tid);
    }
}

/// While it lives, a guest thread's CPU clock can be read by others.
pub(crate) struct RunningGuard<'a> {
    clocks: &'a ThreadClocks,
    tid: u32,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut running = self.clocks.running.locked();
        running.remove(&self.tid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_reads_another_threads_clock_only_while_it_runs() {
        let clocks = std::sync::Arc::new(ThreadClocks::default());
        let (ready, wait) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = clocks.clone();
        let worker = std::thread::spawn(move || {
            let _guard = other.enter(7, thread_cpu_time());
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_millis(30) {
                std::hint::spin_loop();
            }
            ready.send(()).unwrap();
            stopped.recv().unwrap();
        });
        wait.recv().unwrap();
        let used = clocks.read(7).expect("thread 7 runs");
        assert!(
            used >= 10_000_000,
            "spun 30 ms of wall time, clock says {used} ns"
        );
        assert!(clocks.read(8).is_none());
        stop.send(()).unwrap();
        worker.join().unwrap();
        assert!(clocks.read(7).is_none(), "an ended thread has no clock");
    }
}
