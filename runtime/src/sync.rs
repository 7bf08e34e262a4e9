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

use crate::locks::Locked as _;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often an untimed wait checks for a deadlock.
const DEADLOCK_CHECK: Duration = Duration::from_millis(50);
/// How long every thread must have looked blocked, with no thread starting
/// or ending a join, before that is a deadlock: a joiner whose thread has
/// just ended still counts as blocked until it runs again.
const DEADLOCK_CONFIRM: Duration = Duration::from_millis(250);

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

/// What a lock call locks: a mutex of a kind, or a readers-writer lock for
/// reading or for writing. Encoded for `sync-lock` as bits 0-1 the mutex
/// kind, bits 3-4 the lock (0 mutex, 1 read, 2 write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    Mutex(MutexKind),
    Read,
    Write,
}

impl LockKind {
    pub(crate) fn from_bits(bits: u32) -> Self {
        match (bits >> 3) & 3 {
            1 => Self::Read,
            2 => Self::Write,
            _ => Self::Mutex(MutexKind::from_flags(bits)),
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
    #[error("semaphore value overflow")]
    Overflow,
    #[error(
        "deadlock: every thread of the program waits on another, none can go on ({0}). Ending the program"
    )]
    Deadlock(String),
    /// A sync call of a program that does not run in chain mode (its
    /// threads use the memory's own atomics).
    #[error("synchronisation through the host needs chain mode")]
    NotChainMode,
    /// The program has ended while the thread waited.
    #[error("the program has ended")]
    Ended,
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
            Self::Overflow => 61,      // EOVERFLOW
            Self::Deadlock(_) | Self::NotChainMode | Self::Ended => 16,
        }
    }
}

#[derive(Debug, Default)]
struct MutexState {
    owner: Option<u32>,
    depth: u32,
}

#[derive(Debug, Default)]
struct RwState {
    /// Read locks held, by thread.
    readers: HashMap<u32, u32>,
    writer: Option<u32>,
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
    Read(u32),
    Write(u32),
    Semaphore(u32),
    /// The condition variable, its wake-up count when the wait began, and
    /// whether it is a wait on an address (`memory.atomic.wait`, which
    /// libweft waits at home on a condition variable named by the address).
    Cond(u32, u64, bool),
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
            Wait::Read(addr) => self.rwlocks.get(&addr).is_some_and(|r| r.writer.is_some()),
            Wait::Write(addr) => self
                .rwlocks
                .get(&addr)
                .is_some_and(|r| r.writer.is_some() || !r.readers.is_empty()),
            Wait::Semaphore(addr) => self.semaphores.get(&addr).is_none_or(|v| *v == 0),
            Wait::Cond(addr, seen, _) => self
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
    rwlocks: HashMap<u32, RwState>,
    semaphores: HashMap<u32, u32>,
    barriers: HashMap<u32, BarrierState>,
    conds: HashMap<u32, CondState>,
    /// Untimed waits in progress, by thread.
    waits: HashMap<u32, Wait>,
    /// Since when every live thread has looked blocked.
    all_blocked_since: Option<Instant>,
    /// Threads waiting in `pthread_join` (a thread may appear twice if it
    /// joins inside a join's exit path): blocked while every other thread
    /// is, which the deadlock detector counts and names.
    joining: Vec<u32>,
}

/// The synchronisation objects of one program.
#[derive(Debug, Default)]
pub(crate) struct SyncTable {
    /// The main thread's id, for reports.
    main_tid: u32,
    state: Mutex<State>,
    changed: Condvar,
    /// Set when the program ends: every wait ends with [`SyncError::Ended`].
    ended: std::sync::atomic::AtomicBool,
    /// When a thread last made a call here, as nanoseconds since
    /// [`CALLS_BASE`] (the stall watch's looks do not count).
    last_call: std::sync::atomic::AtomicU64,
}

/// The origin of [`SyncTable::quiet_for`]'s clock.
static CALLS_BASE: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

fn nanos_since_base() -> u64 {
    CALLS_BASE.elapsed().as_nanos().min(u64::MAX as u128) as u64
}

impl SyncTable {
    pub(crate) fn new(main_tid: u32) -> Self {
        Self {
            main_tid,
            ..Self::default()
        }
    }

    /// The table's state, for a call of a thread's.
    fn state(&self) -> MutexGuard<'_, State> {
        self.last_call
            .fetch_max(nanos_since_base(), std::sync::atomic::Ordering::Relaxed);
        self.state.locked()
    }

    /// How long no thread has made a call here (the stall watch's own
    /// looks aside).
    pub(crate) fn quiet_for(&self) -> Duration {
        let last = self.last_call.load(std::sync::atomic::Ordering::Relaxed);
        Duration::from_nanos(nanos_since_base().saturating_sub(last))
    }

    /// Whether the program has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.ended.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The program has ended: wakes every waiter, whose wait then fails.
    pub(crate) fn close(&self) {
        self.ended.store(true, std::sync::atomic::Ordering::SeqCst);
        let _guard = self.state();
        self.changed.notify_all();
    }

    /// [`Self::wait`] for thread `tid`, which stops counting as waiting
    /// when the wait fails.
    fn wait_as<'a>(
        &self,
        tid: u32,
        guard: MutexGuard<'a, State>,
        deadline: Option<Instant>,
        live: &dyn Fn() -> u32,
    ) -> Result<MutexGuard<'a, State>, SyncError> {
        self.wait(guard, deadline, live).inspect_err(|_| {
            self.state().waits.remove(&tid);
        })
    }

    /// Waits for a change of the table until `deadline`, or, untimed, until
    /// woken or a deadlock shows (`live` threads, all waiting here).
    fn wait<'a>(
        &self,
        mut guard: MutexGuard<'a, State>,
        deadline: Option<Instant>,
        live: &dyn Fn() -> u32,
    ) -> Result<MutexGuard<'a, State>, SyncError> {
        if self.ended.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SyncError::Ended);
        }
        let timeout = match deadline {
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(SyncError::TimedOut);
                }
                deadline - now
            }
            None => {
                if guard.blocked_count() + guard.joining.len() as u32 >= live() {
                    let since = *guard.all_blocked_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= DEADLOCK_CONFIRM {
                        return Err(SyncError::Deadlock(describe_waits(
                            &guard.waits,
                            &guard.joining,
                            self.main_tid,
                        )));
                    }
                } else {
                    guard.all_blocked_since = None;
                }
                DEADLOCK_CHECK
            }
        };
        let (guard, _) = crate::locks::wait_timeout(&self.changed, guard, timeout);
        Ok(guard)
    }

    /// The wait loop of every lock and semaphore: `attempt` looks at the
    /// table and answers (`Some`) or says the thread must wait (`None`);
    /// then a try fails with its error (`try_fails`), a timed wait waits
    /// until `deadline`,
    /// and an untimed one waits as `wait` (what the deadlock detector
    /// reports) until a change of the table or a deadlock.
    fn wait_for<T>(
        &self,
        tid: u32,
        (wait, mut try_fails, deadline): (Wait, Option<SyncError>, Option<Instant>),
        live: &dyn Fn() -> u32,
        mut attempt: impl FnMut(&mut State) -> Option<Result<T, SyncError>>,
    ) -> Result<T, SyncError> {
        let mut state = self.state();
        loop {
            if let Some(answer) = attempt(&mut state) {
                state.waits.remove(&tid);
                return answer;
            }
            if let Some(error) = try_fails.take() {
                return Err(error);
            }
            if deadline.is_none() {
                state.waits.insert(tid, wait);
            }
            state = self.wait_as(tid, state, deadline, live)?;
        }
    }

    /// Whether every live thread but one (of `live`) waits here, untimed,
    /// or in `pthread_join`: the one left is all the program's progress.
    pub(crate) fn all_others_wait(&self, live: u32) -> bool {
        let state = self.state.locked();
        state.blocked_count() + state.joining.len() as u32 + 1 >= live
    }

    /// Whether thread `tid` waits here, untimed.
    pub(crate) fn is_waiting(&self, tid: u32) -> bool {
        self.state.locked().waits.contains_key(&tid)
    }

    /// Thread `tid` starts or ends waiting in `pthread_join`.
    pub(crate) fn joining(&self, tid: u32, starts: bool) {
        let mut state = self.state();
        if starts {
            state.joining.push(tid);
        } else if let Some(at) = state.joining.iter().position(|t| *t == tid) {
            state.joining.swap_remove(at);
        }
        state.all_blocked_since = None;
    }

    /// Locks the lock at `addr` of `kind` for thread `tid`.
    pub(crate) fn lock(
        &self,
        tid: u32,
        addr: u32,
        kind: LockKind,
        try_only: bool,
        deadline: Option<Instant>,
        live: &dyn Fn() -> u32,
    ) -> Result<(), SyncError> {
        match kind {
            LockKind::Mutex(kind) => self.lock_mutex(tid, addr, kind, try_only, deadline, live),
            LockKind::Read | LockKind::Write => {
                self.lock_rw(tid, addr, kind == LockKind::Write, try_only, deadline, live)
            }
        }
    }

    /// Unlocks the lock at `addr` of `kind`, held by `tid`.
    pub(crate) fn unlock(&self, tid: u32, addr: u32, kind: LockKind) -> Result<(), SyncError> {
        match kind {
            LockKind::Mutex(kind) => self.unlock_mutex(tid, addr, kind),
            LockKind::Read | LockKind::Write => {
                let mut state = self.state();
                let rw = state.rwlocks.entry(addr).or_default();
                if rw.writer == Some(tid) {
                    rw.writer = None;
                } else if let Some(held) = rw.readers.get_mut(&tid) {
                    *held -= 1;
                    if *held == 0 {
                        rw.readers.remove(&tid);
                    }
                } else {
                    return Err(SyncError::NotOwner);
                }
                self.changed.notify_all();
                Ok(())
            }
        }
    }

    /// Read- or write-locks the rwlock at `addr`. A thread may hold many
    /// read locks; one that holds it for writing, or asks for writing while
    /// it reads, would deadlock (`EDEADLK`).
    fn lock_rw(
        &self,
        tid: u32,
        addr: u32,
        write: bool,
        try_only: bool,
        deadline: Option<Instant>,
        live: &dyn Fn() -> u32,
    ) -> Result<(), SyncError> {
        let wait = if write {
            Wait::Write(addr)
        } else {
            Wait::Read(addr)
        };
        let try_fails = try_only.then_some(SyncError::Busy);
        self.wait_for(tid, (wait, try_fails, deadline), live, |state| {
            let rw = state.rwlocks.entry(addr).or_default();
            if rw.writer == Some(tid) || (write && rw.readers.contains_key(&tid)) {
                return Some(Err(SyncError::WouldDeadlock));
            }
            let free = rw.writer.is_none() && (!write || rw.readers.is_empty());
            free.then(|| {
                if write {
                    rw.writer = Some(tid);
                } else {
                    *rw.readers.entry(tid).or_default() += 1;
                }
                Ok(())
            })
        })
    }

    /// `sem_init`: the semaphore at `addr` holds `value`.
    pub(crate) fn sem_init(&self, addr: u32, value: u32) {
        self.state().semaphores.insert(addr, value);
        self.changed.notify_all();
    }

    /// `sem_wait`: takes one from the semaphore at `addr` (which reads 0
    /// if `sem_init` never named it), waiting while it is 0.
    pub(crate) fn sem_wait(
        &self,
        tid: u32,
        addr: u32,
        try_only: bool,
        deadline: Option<Instant>,
        live: &dyn Fn() -> u32,
    ) -> Result<(), SyncError> {
        let _timed = crate::metrics::time_sync(crate::metrics::SyncKind::Semaphore);
        // A try on a semaphore at 0 is `EAGAIN`.
        let try_fails = try_only.then_some(SyncError::TooDeep);
        let wait = (Wait::Semaphore(addr), try_fails, deadline);
        self.wait_for(tid, wait, live, |state| {
            let value = state.semaphores.entry(addr).or_default();
            (*value > 0).then(|| {
                *value -= 1;
                Ok(())
            })
        })
    }

    /// `sem_post`: adds one.
    pub(crate) fn sem_post(&self, addr: u32) -> Result<(), SyncError> {
        let _timed = crate::metrics::time_sync(crate::metrics::SyncKind::Semaphore);
        let mut state = self.state();
        let value = state.semaphores.entry(addr).or_default();
        if *value >= i32::MAX as u32 {
            return Err(SyncError::Overflow);
        }
        *value += 1;
        self.changed.notify_all();
        Ok(())
    }

    /// `sem_getvalue`.
    pub(crate) fn sem_value(&self, addr: u32) -> u32 {
        self.state().semaphores.get(&addr).copied().unwrap_or(0)
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
        let _timed = crate::metrics::time_sync(crate::metrics::SyncKind::Mutex);
        let try_fails = try_only.then_some(SyncError::Busy);
        let wait = (Wait::Mutex(addr), try_fails, deadline);
        self.wait_for(tid, wait, live, |state| {
            let m = state.mutexes.entry(addr).or_default();
            match m.owner {
                None => {
                    m.owner = Some(tid);
                    m.depth = 1;
                    Some(Ok(()))
                }
                Some(owner) if owner == tid => match kind {
                    MutexKind::Recursive => Some(
                        m.depth
                            .checked_add(1)
                            .map(|depth| m.depth = depth)
                            .ok_or(SyncError::TooDeep),
                    ),
                    MutexKind::ErrorCheck => Some(Err(SyncError::WouldDeadlock)),
                    // A normal mutex locked twice by its owner deadlocks;
                    // with no other thread able to unlock it, the detector
                    // reports it.
                    MutexKind::Normal => None,
                },
                Some(_) => None,
            }
        })
    }

    /// Unlocks mutex `addr`, held by `tid`.
    pub(crate) fn unlock_mutex(
        &self,
        tid: u32,
        addr: u32,
        kind: MutexKind,
    ) -> Result<(), SyncError> {
        let _timed = crate::metrics::time_sync(crate::metrics::SyncKind::Mutex);
        let mut state = self.state();
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
        let _timed = crate::metrics::time_sync(crate::metrics::SyncKind::Barrier);
        let mut state = self.state();
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
                    self.state().waits.remove(&tid);
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
        (cond, futex): (u32, bool),
        mutex: u32,
        kind: MutexKind,
        deadline: Option<Instant>,
        live: &dyn Fn() -> u32,
    ) -> Result<(), SyncError> {
        let _timed = crate::metrics::time_sync(crate::metrics::SyncKind::Condvar);
        let woken = {
            let mut state = self.state();
            Self::release_mutex(&mut state, tid, mutex, kind)?;
            self.changed.notify_all();
            let c = state.conds.entry(cond).or_default();
            c.waiting += 1;
            let seen = c.wakeups;
            if deadline.is_none() {
                state.waits.insert(tid, Wait::Cond(cond, seen, futex));
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
                        state = self.state();
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

    /// `pthread_cond_signal` (one waiter) or `_broadcast` (all); how many
    /// waiters this call woke (a waiter already woken counts once).
    pub(crate) fn cond_wake(&self, cond: u32, all: bool) -> u32 {
        let _timed = crate::metrics::time_sync(crate::metrics::SyncKind::Condvar);
        let mut state = self.state();
        let c = state.conds.entry(cond).or_default();
        if c.waiting == 0 {
            return 0;
        }
        c.wakeups += 1;
        let before = c.tickets;
        c.tickets = if all {
            c.waiting as u64
        } else {
            (c.tickets + 1).min(c.waiting as u64)
        };
        let woken = c.tickets.saturating_sub(before) as u32;
        self.changed.notify_all();
        woken
    }
}

/// One atomic operation that chain mode makes on the main memory, the
/// home of every byte (`sync-atomic`): the same numbering as libweft's
/// `__weft_atomic_*` read-modify-write operations, plus compare-and-swap
/// and store. Pure: the caller reads and writes the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HomeAtomic {
    pub(crate) op: u32,
    /// 1, 2, 4 or 8.
    pub(crate) bytes: u32,
    pub(crate) addr: u32,
    pub(crate) value: u64,
    /// What compare-and-swap compares with.
    pub(crate) expected: u64,
}

impl HomeAtomic {
    pub(crate) const CAS: u32 = 16;
    pub(crate) const STORE: u32 = 18;

    /// Checks the operation and its width; `None` for one libweft never
    /// sends.
    pub(crate) fn new(op: u32, bytes: u32, addr: u32, value: u64, expected: u64) -> Option<Self> {
        let known = op <= 10 || op == Self::CAS || op == Self::STORE;
        (known && matches!(bytes, 1 | 2 | 4 | 8) && addr.is_multiple_of(bytes)).then_some(Self {
            op,
            bytes,
            addr,
            value,
            expected,
        })
    }

    fn mask(&self) -> u64 {
        if self.bytes == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.bytes)) - 1
        }
    }

    /// Given the value at the address (zero-extended), what the operation
    /// returns and what it stores, if anything.
    pub(crate) fn outcome(&self, old: u64) -> (u64, Option<u64>) {
        let mask = self.mask();
        let (old, v) = (old & mask, self.value & mask);
        let shift = 64 - 8 * self.bytes;
        let signed = |x: u64| ((x << shift) as i64) >> shift;
        let new = match self.op {
            0 => v,
            1 => old.wrapping_add(v),
            2 => old.wrapping_sub(v),
            3 => old & v,
            4 => !(old & v),
            5 => old | v,
            6 => old ^ v,
            7 => {
                if signed(old) > signed(v) {
                    old
                } else {
                    v
                }
            }
            8 => {
                if signed(old) < signed(v) {
                    old
                } else {
                    v
                }
            }
            9 => old.max(v),
            10 => old.min(v),
            Self::CAS => {
                if old != self.expected & mask {
                    return (old, None);
                }
                v
            }
            _ => v, // STORE
        };
        (old, Some(new & mask))
    }
}

fn describe_waits(waits: &HashMap<u32, Wait>, joining: &[u32], main_tid: u32) -> String {
    let name = |tid: u32| {
        if tid == main_tid {
            "the main thread".to_string()
        } else {
            format!("thread {tid}")
        }
    };
    let mut joiners = joining.to_vec();
    joiners.sort_unstable();
    joiners.dedup();
    let mut waits: Vec<_> = waits.iter().collect();
    waits.sort_by_key(|(tid, _)| **tid);
    joiners
        .iter()
        .map(|tid| format!("{} joins a thread", name(*tid)))
        .chain(waits.iter().map(|(tid, wait)| {
            let thread = name(**tid);
            match wait {
                Wait::Mutex(addr) => format!("{thread} locks the mutex at {addr:#x}"),
                Wait::Read(addr) => format!("{thread} read-locks the rwlock at {addr:#x}"),
                Wait::Write(addr) => format!("{thread} write-locks the rwlock at {addr:#x}"),
                Wait::Semaphore(addr) => format!("{thread} waits on the semaphore at {addr:#x}"),
                Wait::Cond(addr, _, false) => {
                    format!("{thread} waits on the condition variable at {addr:#x}")
                }
                Wait::Cond(addr, _, true) => {
                    format!("{thread} waits for a wake-up of the memory at {addr:#x}")
                }
                Wait::Barrier(addr, _) => format!("{thread} waits at the barrier at {addr:#x}"),
            }
        }))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The main thread's id in `SyncTable::default()`.
    const MAIN: u32 = 0;

    #[test]
    fn a_deadlock_report_names_the_joiners_too() {
        let t = SyncTable::default();
        t.joining(MAIN, true);
        t.lock_mutex(2, 8, MutexKind::Normal, false, None, &|| 2)
            .unwrap();
        let err = t
            .lock_mutex(2, 8, MutexKind::Normal, false, None, &|| 2)
            .unwrap_err();
        assert_eq!(
            err,
            SyncError::Deadlock(
                "the main thread joins a thread; thread 2 locks the mutex at 0x8".into()
            )
        );
    }

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
    fn readers_share_an_rwlock_and_a_writer_excludes_them() {
        let t = SyncTable::default();
        let (read, write) = (LockKind::Read, LockKind::Write);
        t.lock(1, 8, read, false, None, &many).unwrap();
        t.lock(2, 8, read, false, None, &many).unwrap();
        t.lock(1, 8, read, false, None, &many).unwrap();
        assert_eq!(t.lock(3, 8, write, true, None, &many), Err(SyncError::Busy));
        assert_eq!(
            t.lock(1, 8, write, false, None, &many),
            Err(SyncError::WouldDeadlock)
        );
        for tid in [1, 2, 1] {
            t.unlock(tid, 8, read).unwrap();
        }
        t.lock(3, 8, write, true, None, &many).unwrap();
        assert_eq!(t.lock(1, 8, read, true, None, &many), Err(SyncError::Busy));
        assert_eq!(t.unlock(1, 8, read), Err(SyncError::NotOwner));
        t.unlock(3, 8, write).unwrap();
        t.lock(1, 8, read, true, None, &many).unwrap();
    }

    #[test]
    fn a_semaphore_counts_posts_and_waits() {
        let t = Arc::new(SyncTable::default());
        t.sem_init(4, 1);
        t.sem_wait(1, 4, true, None, &many).unwrap();
        assert_eq!(t.sem_wait(1, 4, true, None, &many), Err(SyncError::TooDeep));
        let waiter = {
            let t = t.clone();
            std::thread::spawn(move || t.sem_wait(2, 4, false, None, &many))
        };
        t.sem_post(4).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(t.sem_value(4), 0);
        // Nobody else can post: waiting is a deadlock.
        assert!(matches!(
            t.sem_wait(1, 4, false, None, &|| 1),
            Err(SyncError::Deadlock(_))
        ));
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
            std::thread::spawn(move || {
                t.cond_wait(1, (32, false), 8, MutexKind::Normal, None, &many)
            })
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
            t.cond_wait(1, (32, false), 8, MutexKind::Normal, deadline, &many),
            Err(SyncError::TimedOut)
        );
        assert_eq!(
            t.lock_mutex(2, 8, MutexKind::Normal, true, None, &many),
            Err(SyncError::Busy)
        );
    }

    #[test]
    fn a_joiner_whose_thread_just_ended_is_not_a_deadlock() {
        // Thread 2 waits on a condition variable; the main thread joins a
        // thread that has just ended (live: the main thread and thread 2),
        // so for a moment every live thread looks blocked.
        let t = Arc::new(SyncTable::default());
        t.joining(MAIN, true);
        t.lock_mutex(2, 8, MutexKind::Normal, false, None, &|| 2)
            .unwrap();
        let waiter = {
            let t = t.clone();
            std::thread::spawn(move || {
                t.cond_wait(2, (32, false), 8, MutexKind::Normal, None, &|| 2)
            })
        };
        std::thread::sleep(DEADLOCK_CONFIRM / 2);
        // The join returns, and the main thread wakes the waiter.
        t.joining(MAIN, false);
        t.cond_wake(32, false);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }

    #[test]
    fn home_atomics_compute_as_the_instructions_do() {
        let op =
            |op, bytes, value, expected| HomeAtomic::new(op, bytes, 8, value, expected).unwrap();
        // A byte-wide add wraps at the byte.
        assert_eq!(op(1, 1, 0x1ff, 0).outcome(0x01), (0x01, Some(0x00)));
        assert_eq!(op(2, 4, 1, 0).outcome(0), (0, Some(0xffff_ffff)));
        assert_eq!(op(0, 8, 7, 0).outcome(u64::MAX), (u64::MAX, Some(7)));
        // Signed and unsigned maximum at 16 bits.
        assert_eq!(op(7, 2, 0xffff, 0).outcome(1), (1, Some(1)));
        assert_eq!(op(9, 2, 0xffff, 0).outcome(1), (1, Some(0xffff)));
        assert_eq!(op(4, 4, 0xf0, 0).outcome(0xff), (0xff, Some(0xffff_ff0f)));
        // Compare-and-swap compares at its width.
        assert_eq!(op(HomeAtomic::CAS, 1, 9, 0x105).outcome(5), (5, Some(9)));
        assert_eq!(op(HomeAtomic::CAS, 4, 9, 6).outcome(5), (5, None));
        assert_eq!(
            op(HomeAtomic::STORE, 2, 0x12345, 0).outcome(1),
            (1, Some(0x2345))
        );
        // Misaligned, unknown or of a width wasm has not: refused.
        assert!(HomeAtomic::new(1, 4, 6, 0, 0).is_none());
        assert!(HomeAtomic::new(12, 4, 8, 0, 0).is_none());
        assert!(HomeAtomic::new(1, 3, 9, 0, 0).is_none());
    }
}
