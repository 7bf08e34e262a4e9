//! Chain mode's synchronisation objects, kept by the home host: mutexes,
//! condition variables and barriers, named by their guest address. Every
//! thread of the program (the main one on the shared memory and each
//! chained thread on its copy) locks the same host object, so mutual
//! exclusion and barriers hold across copies; the memory effects of each
//! operation (a release merges the thread's writes home, an acquire brings
//! its copy up to date) are the caller's, around these calls.
//!
//! Waits have deadlines, or are untimed with a detector: when every live
//! thread of the program waits here, none can wake another, and the wait
//! ends with [`SyncError::Deadlock`] naming every wait.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often an untimed wait checks for a deadlock.
const DEADLOCK_CHECK: Duration = Duration::from_millis(50);

/// The kinds of mutex POSIX has (musl's type numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutexKind {
    Normal,
    Recursive,
    ErrorCheck,
}

impl MutexKind {
    pub(crate) fn from_flags(flags: u32) -> Self {
        match flags & 3 {
            1 => Self::Recursive,
            2 => Self::ErrorCheck,
            _ => Self::Normal,
        }
    }
}

/// Why a synchronisation call did not succeed; POSIX error numbers where
/// the guest gets one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SyncError {
    #[error("busy")]
    Busy,
    #[error("timed out")]
    TimedOut,
    #[error("the thread already holds the mutex")]
    WouldDeadlock,
    #[error("the thread does not hold the mutex")]
    NotOwner,
    #[error("recursive mutex locked too often")]
    TooDeep,
    #[error(
        "deadlock: every thread of the program waits on another, none can go on ({0}). Ending the program"
    )]
    Deadlock(String),
    #[error("{0}")]
    Failed(String),
}

impl SyncError {
    /// The POSIX error number a pthread call returns for it (WASI
    /// preview1's numbering, as wasi-libc uses).
    pub(crate) fn errno(&self) -> i32 {
        match self {
            Self::Busy => 10,          // EBUSY
            Self::TimedOut => 73,      // ETIMEDOUT
            Self::WouldDeadlock => 16, // EDEADLK
            Self::NotOwner => 63,      // EPERM
            Self::TooDeep => 6,        // EAGAIN
            Self::Deadlock(_) | Self::Failed(_) => 16,
        }
    }
}

#[derive(Debug, Default)]
struct MutexState {
    owner: Option<u32>,
    depth: u32,
}

#[derive(Debug, Default)]
struct BarrierState {
    arrived: u32,
    generation: u64,
}

#[derive(Debug, Default)]
struct CondState {
    /// Bumped by each signal or broadcast.
    wakeups: u64,
    /// Waiters that a signal may still wake (one each).
    tickets: u64,
    waiting: u32,
}

/// What a waiting thread waits for: enough to tell whether it could go
/// on now, and to name it in a deadlock report.
#[derive(Debug, Clone, Copy)]
enum Wait {
    Mutex(u32),
    /// The condition variable, and its wake-up count when the wait began.
    Cond(u32, u64),
    /// The barrier, and its generation when the thread arrived.
    Barrier(u32, u64),
}

impl State {
    /// Whether thread `tid` in `wait` cannot go on until another thread
    /// acts.
    fn blocked(&self, tid: u32, wait: Wait) -> bool {
        match wait {
            Wait::Mutex(addr) => self
                .mutexes
                .get(&addr)
                .is_some_and(|m| m.owner.is_some() && (m.owner != Some(tid) || m.depth > 0)),
            Wait::Cond(addr, seen) => self
                .conds
                .get(&addr)
                .is_none_or(|c| c.wakeups == seen || c.tickets == 0),
            Wait::Barrier(addr, generation) => self
                .barriers
                .get(&addr)
                .is_some_and(|b| b.generation == generation),
        }
    }

    fn blocked_count(&self) -> u32 {
        self.waits
            .iter()
            .filter(|(tid, wait)| self.blocked(**tid, **wait))
            .count() as u32
    }
}

#[derive(Debug, Default)]
struct State {
    mutexes: HashMap<u32, MutexState>,
    barriers: HashMap<u32, BarrierState>,
    conds: HashMap<u32, CondState>,
    /// Untimed waits in progress, by thread.
    waits: HashMap<u32, Wait>,
}

/// The synchronisation objects of one program.
#[derive(Debug, Default)]
pub(crate) struct SyncTable {
    state: Mutex<State>,
    changed: Condvar,
    /// Threads waiting in `pthread_join`: blocked while every other thread
    /// is, which the deadlock detector counts.
    joiners: std::sync::atomic::AtomicU32,
}

impl SyncTable {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a change of the table until `deadline`, or, untimed, until
    /// woken or a deadlock shows (`live` threads, all waiting here).
    fn wait<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        deadline: Option<Instant>,
        live: &dyn Fn() -> u32,
    ) -> Result<MutexGuard<'a, State>, SyncError> {
        let timeout = match deadline {
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(SyncError::TimedOut);
                }
                deadline - now
            }
            None => {
                let joiners = self.joiners.load(std::sync::atomic::Ordering::SeqCst);
                if guard.blocked_count() + joiners >= live() {
                    return Err(SyncError::Deadlock(describe_waits(&guard.waits)));
                }
                DEADLOCK_CHECK
            }
        };
        let (guard, _) = self
            .changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner());
        Ok(guard)
    }

    /// A thread starts or ends waiting in `pthread_join`.
    pub(crate) fn joining(&self, starts: bool) {
        use std::sync::atomic::Ordering::SeqCst;
        if starts {
            self.joiners.fetch_add(1, SeqCst);
        } else {
            self.joiners.fetch_sub(1, SeqCst);
        }
    }

    /// Locks mutex `addr` for thread `tid` (`try_only`: fails with `Busy`
    /// instead of waiting).
    pub(crate) fn lock_mutex(
        &self,
        tid: u32,
        addr: u32,
        kind: MutexKind,
        try_only: bool,
        deadline: Option<Instant>,
        live: &dyn Fn() -> u32,
    ) -> Result<(), SyncError> {
        let mut state = self.lock();
        loop {
            let m = state.mutexes.entry(addr).or_default();
            match m.owner {
                None => {
                    m.owner = Some(tid);
                    m.depth = 1;
                    state.waits.remove(&tid);
                    return Ok(());
                }
                Some(owner) if owner == tid => match kind {
                    MutexKind::Recursive => {
                        m.depth = m.depth.checked_add(1).ok_or(SyncError::TooDeep)?;
                        return Ok(());
                    }
                    MutexKind::ErrorCheck => return Err(SyncError::WouldDeadlock),
                    // A normal mutex locked twice by its owner deadlocks;
                    // with no other thread able to unlock it, the detector
                    // reports it.
                    MutexKind::Normal if try_only => return Err(SyncError::Busy),
                    MutexKind::Normal => {}
                },
                Some(_) if try_only => return Err(SyncError::Busy),
                Some(_) => {}
            }
            if deadline.is_none() {
                state.waits.insert(tid, Wait::Mutex(addr));
            }
            state = match self.wait(state, deadline, live) {
                Ok(state) => state,
                Err(e) => {
                    self.lock().waits.remove(&tid);
                    return Err(e);
                }
            };
        }
    }

    /// Unlocks mutex `addr`, held by `tid`.
    pub(crate) fn unlock_mutex(
        &self,
        tid: u32,
        addr: u32,
        kind: MutexKind,
    ) -> Result<(), SyncError> {
        let mut state = self.lock();
        Self::release_mutex(&mut state, tid, addr, kind)?;
        self.changed.notify_all();
        Ok(())
    }

    fn release_mutex(
        state: &mut State,
        tid: u32,
        addr: u32,
        kind: MutexKind,
    ) -> Result<(), SyncError> {
        let m = state.mutexes.entry(addr).or_default();
        match m.owner {
            Some(owner) if owner == tid => {
                m.depth -= 1;
                if m.depth == 0 {
                    m.owner = None;
                }
                Ok(())
            }
            // Unlocking a normal mutex one does not hold is undefined; it
            // unlocks, as musl does.
            Some(_) if kind == MutexKind::Normal => {
                m.owner = None;
                m.depth = 0;
                Ok(())
            }
            _ if kind == MutexKind::Normal => Ok(()),
            _ => Err(SyncError::NotOwner),
        }
    }

    /// Waits at barrier `addr` of `count` threads; true for the one thread
    /// that gets `PTHREAD_BARRIER_SERIAL_THREAD` (the last to arrive).
    pub(crate) fn barrier_wait(
        &self,
        tid: u32,
        addr: u32,
        count: u32,
        live: &dyn Fn() -> u32,
    ) -> Result<bool, SyncError> {
        let mut state = self.lock();
        let b = state.barriers.entry(addr).or_default();
        b.arrived += 1;
        if b.arrived >= count.max(1) {
            b.arrived = 0;
            b.generation += 1;
            self.changed.notify_all();
            return Ok(true);
        }
        let generation = b.generation;
        state.waits.insert(tid, Wait::Barrier(addr, generation));
        loop {
            state = match self.wait(state, None, live) {
                Ok(state) => state,
                Err(e) => {
                    self.lock().waits.remove(&tid);
                    return Err(e);
                }
            };
            if state
                .barriers
                .get(&addr)
                .is_none_or(|b| b.generation != generation)
            {
                state.waits.remove(&tid);
                return Ok(false);
            }
        }
    }

    /// `pthread_cond_wait`: unlocks `mutex` and starts waiting for a
    /// wake-up of `cond` in one step (a signal sent after the unlock wakes
    /// this thread), waits (or until the deadline), locks `mutex` again. A
    /// timeout still relocks and then reports `TimedOut`.
    pub(crate) fn cond_wait(
        &self,
        tid: u32,
        cond: u32,
        mutex: u32,
        kind: MutexKind,
        deadline: Option<Instant>,
        live: &dyn Fn() -> u32,
    ) -> Result<(), SyncError> {
        let woken = {
            let mut state = self.lock();
            Self::release_mutex(&mut state, tid, mutex, kind)?;
            self.changed.notify_all();
            let c = state.conds.entry(cond).or_default();
            c.waiting += 1;
            let seen = c.wakeups;
            if deadline.is_none() {
                state.waits.insert(tid, Wait::Cond(cond, seen));
            }
            let woken = loop {
                let c = state.conds.entry(cond).or_default();
                if c.wakeups != seen && c.tickets > 0 {
                    c.tickets -= 1;
                    break Ok(());
                }
                match self.wait(state, deadline, live) {
                    Ok(next) => state = next,
                    Err(e) => {
                        state = self.lock();
                        if matches!(e, SyncError::Deadlock(_)) {
                            let c = state.conds.entry(cond).or_default();
                            c.waiting -= 1;
                            state.waits.remove(&tid);
                            return Err(e);
                        }
                        break Err(e);
                    }
                }
            };
            let c = state.conds.entry(cond).or_default();
            c.waiting -= 1;
            state.waits.remove(&tid);
            woken
        };
        self.lock_mutex(tid, mutex, kind, false, None, live)?;
        woken
    }

    /// `pthread_cond_signal` (one waiter) or `_broadcast` (all).
    pub(crate) fn cond_wake(&self, cond: u32, all: bool) {
        let mut state = self.lock();
        let c = state.conds.entry(cond).or_default();
        if c.waiting == 0 {
            return;
        }
        c.wakeups += 1;
        c.tickets = if all {
            c.waiting as u64
        } else {
            (c.tickets + 1).min(c.waiting as u64)
        };
        self.changed.notify_all();
    }
}

fn describe_waits(waits: &HashMap<u32, Wait>) -> String {
    let mut waits: Vec<_> = waits.iter().collect();
    waits.sort_by_key(|(tid, _)| **tid);
    waits
        .iter()
        .map(|(tid, wait)| {
            let thread = if **tid == crate::process::MAIN_TID {
                "the main thread".to_string()
            } else {
                format!("thread {tid}")
            };
            match wait {
                Wait::Mutex(addr) => format!("{thread} locks the mutex at {addr:#x}"),
                Wait::Cond(addr, _) => {
                    format!("{thread} waits on the condition variable at {addr:#x}")
                }
                Wait::Barrier(addr, _) => format!("{thread} waits at the barrier at {addr:#x}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn many() -> u32 {
        100
    }

    #[test]
    fn recursive_and_errorcheck_mutexes_behave_as_posix_says() {
        let t = SyncTable::default();
        t.lock_mutex(1, 64, MutexKind::Recursive, false, None, &many)
            .unwrap();
        t.lock_mutex(1, 64, MutexKind::Recursive, false, None, &many)
            .unwrap();
        assert_eq!(
            t.lock_mutex(2, 64, MutexKind::Recursive, true, None, &many),
            Err(SyncError::Busy)
        );
        t.unlock_mutex(1, 64, MutexKind::Recursive).unwrap();
        assert_eq!(
            t.lock_mutex(2, 64, MutexKind::Recursive, true, None, &many),
            Err(SyncError::Busy)
        );
        t.unlock_mutex(1, 64, MutexKind::Recursive).unwrap();
        t.lock_mutex(2, 64, MutexKind::Recursive, true, None, &many)
            .unwrap();

        t.lock_mutex(1, 80, MutexKind::ErrorCheck, false, None, &many)
            .unwrap();
        assert_eq!(
            t.lock_mutex(1, 80, MutexKind::ErrorCheck, false, None, &many),
            Err(SyncError::WouldDeadlock)
        );
        assert_eq!(
            t.unlock_mutex(2, 80, MutexKind::ErrorCheck),
            Err(SyncError::NotOwner)
        );
    }

    #[test]
    fn a_timed_lock_times_out_while_another_thread_holds_it() {
        let t = SyncTable::default();
        t.lock_mutex(1, 8, MutexKind::Normal, false, None, &many)
            .unwrap();
        let deadline = Some(Instant::now() + Duration::from_millis(20));
        assert_eq!(
            t.lock_mutex(2, 8, MutexKind::Normal, false, deadline, &many),
            Err(SyncError::TimedOut)
        );
    }

    #[test]
    fn waiting_on_a_mutex_no_one_can_unlock_is_a_deadlock() {
        let t = SyncTable::default();
        t.lock_mutex(1, 8, MutexKind::Normal, false, None, &|| 1)
            .unwrap();
        // Thread 1 is the only live thread and waits for itself.
        let err = t
            .lock_mutex(1, 8, MutexKind::Normal, false, None, &|| 1)
            .unwrap_err();
        assert_eq!(
            err,
            SyncError::Deadlock("thread 1 locks the mutex at 0x8".into())
        );
    }

    #[test]
    fn a_barrier_releases_its_threads_together_with_one_serial_thread() {
        let t = Arc::new(SyncTable::default());
        let handles: Vec<_> = (1..=4)
            .map(|tid| {
                let t = t.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|_| t.barrier_wait(tid, 16, 4, &many).unwrap() as u32)
                        .sum::<u32>()
                })
            })
            .collect();
        let serial: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(serial, 50);
    }

    #[test]
    fn a_signal_wakes_a_waiter_which_holds_the_mutex_again() {
        let t = Arc::new(SyncTable::default());
        t.lock_mutex(1, 8, MutexKind::Normal, false, None, &many)
            .unwrap();
        let waiter = {
            let t = t.clone();
            std::thread::spawn(move || t.cond_wait(1, 32, 8, MutexKind::Normal, None, &many))
        };
        // Once the waiter released the mutex, thread 2 can take it and signal.
        t.lock_mutex(2, 8, MutexKind::Normal, false, None, &many)
            .unwrap();
        t.cond_wake(32, false);
        t.unlock_mutex(2, 8, MutexKind::Normal).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(
            t.lock_mutex(2, 8, MutexKind::Normal, true, None, &many),
            Err(SyncError::Busy)
        );
    }

    #[test]
    fn a_timed_cond_wait_times_out_and_holds_the_mutex() {
        let t = SyncTable::default();
        t.lock_mutex(1, 8, MutexKind::Normal, false, None, &many)
            .unwrap();
        let deadline = Some(Instant::now() + Duration::from_millis(10));
        assert_eq!(
            t.cond_wait(1, 32, 8, MutexKind::Normal, deadline, &many),
            Err(SyncError::TimedOut)
        );
        assert_eq!(
            t.lock_mutex(2, 8, MutexKind::Normal, true, None, &many),
            Err(SyncError::Busy)
        );
    }
}
