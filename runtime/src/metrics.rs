//! Counters the runtime feeds for a host's metrics: process-wide plain
//! atomics, one line at each call site, read as a [`Snapshot`] by the
//! service layer that renders them (no metrics library down here).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bounds of the sync latency buckets, in nanoseconds.
pub const SYNC_BUCKETS_NANOS: [u64; 12] = [
    1_000,
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    60_000_000_000,
];

/// The kinds of chain-mode sync operation the home host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Mutex,
    Condvar,
    Barrier,
    Semaphore,
}

impl SyncKind {
    pub const ALL: [Self; 4] = [Self::Mutex, Self::Condvar, Self::Barrier, Self::Semaphore];

    pub fn label(self) -> &'static str {
        match self {
            Self::Mutex => "mutex",
            Self::Condvar => "condvar",
            Self::Barrier => "barrier",
            Self::Semaphore => "semaphore",
        }
    }
}

struct SyncCounters {
    /// Per bucket, not cumulative; past the last bound only in `count`.
    buckets: [AtomicU64; SYNC_BUCKETS_NANOS.len()],
    count: AtomicU64,
    nanos: AtomicU64,
}

impl SyncCounters {
    const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; SYNC_BUCKETS_NANOS.len()],
            count: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        if let Some(i) = SYNC_BUCKETS_NANOS.iter().position(|&b| nanos <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

static SYNC: [SyncCounters; 4] = [const { SyncCounters::new() }; 4];
static THREADS_LIVE: AtomicU64 = AtomicU64::new(0);

/// Times one sync operation until dropped.
#[derive(Debug)]
#[must_use = "the operation is timed until the guard drops"]
pub struct SyncTimer {
    kind: SyncKind,
    started: Instant,
}

impl Drop for SyncTimer {
    fn drop(&mut self) {
        SYNC[self.kind as usize].observe(self.started.elapsed());
    }
}

/// Starts timing a sync operation of `kind`.
pub fn time_sync(kind: SyncKind) -> SyncTimer {
    SyncTimer {
        kind,
        started: Instant::now(),
    }
}

/// A thread (besides main) of a program in this OS process began.
pub fn thread_began() {
    THREADS_LIVE.fetch_add(1, Ordering::Relaxed);
}

/// Such a thread ended.
pub fn thread_ended() {
    // Never below zero, even if an end were counted twice.
    let _ = THREADS_LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}

/// A program whose `n` threads were still counted live is gone.
pub fn threads_gone(n: u64) {
    let _ = THREADS_LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |live| {
        Some(live.saturating_sub(n))
    });
}

/// Sync operations of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSnapshot {
    pub buckets: [u64; SYNC_BUCKETS_NANOS.len()],
    pub count: u64,
    pub nanos: u64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Threads (besides main) of the programs in this OS process, live
    /// now (a thread on a peer counts at its home).
    pub threads_live: u64,
    /// By [`SyncKind`] order.
    pub sync: [SyncSnapshot; 4],
}

/// Reads the counters.
pub fn snapshot() -> Snapshot {
    let mut s = Snapshot {
        threads_live: THREADS_LIVE.load(Ordering::Relaxed),
        ..Snapshot::default()
    };
    for (out, counters) in s.sync.iter_mut().zip(&SYNC) {
        for (b, c) in out.buckets.iter_mut().zip(&counters.buckets) {
            *b = c.load(Ordering::Relaxed);
        }
        out.count = counters.count.load(Ordering::Relaxed);
        out.nanos = counters.nanos.load(Ordering::Relaxed);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_count_by_kind() {
        let before = snapshot();
        drop(time_sync(SyncKind::Barrier));
        SYNC[SyncKind::Barrier as usize].observe(Duration::from_secs(120));
        let after = snapshot();
        let (b, a) = (&before.sync[2], &after.sync[2]);
        assert_eq!(a.count - b.count, 2);
        // The long one is past every bound: counted, in no bucket.
        assert_eq!(
            a.buckets.iter().sum::<u64>() - b.buckets.iter().sum::<u64>(),
            1
        );
        assert!(a.nanos - b.nanos >= 120_000_000_000);
    }
}
