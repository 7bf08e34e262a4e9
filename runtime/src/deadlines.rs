//! Time limits of every process of this OS process, watched by one thread:
//! [`after`] registers what to do once a limit has passed, and the
//! [`Deadline`] it returns takes it back when dropped (the program ended
//! first, the common case). A server starting thousands of calls a second
//! thus starts no thread per call, and keeps no entry past its call.

use crate::locks::Locked as _;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What runs when a limit passes.
pub(crate) type Expired = Box<dyn FnOnce() + Send>;

/// Limits not yet reached, by when, then by a number of their own.
struct Watched {
    due: BTreeMap<(Instant, u64), Expired>,
    /// When the watcher wakes next: only a limit before it wakes it
    /// sooner (calls come and go thousands of times a second, with limits
    /// minutes away).
    wakes_at: Instant,
}

/// How long the watcher sleeps with no limit to watch.
const IDLE_SLEEP: Duration = Duration::from_secs(1);

struct Watcher {
    watched: Mutex<Watched>,
    /// Signalled when a limit earlier than every other is added.
    changed: Condvar,
    next: AtomicU64,
}

/// A registered limit; dropping it before the limit passes cancels it.
#[must_use = "dropping the deadline cancels it"]
pub struct Deadline {
    watcher: Arc<Watcher>,
    key: (Instant, u64),
}

impl std::fmt::Debug for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline").field("at", &self.key.0).finish()
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        // Dropped outside the lock: it may own anything.
        let gone = self.watcher.watched.locked().due.remove(&self.key);
        drop(gone);
    }
}

/// The watcher and its thread, started on first use.
fn watcher() -> std::io::Result<Arc<Watcher>> {
    static WATCHER: OnceLock<Arc<Watcher>> = OnceLock::new();
    static START: Mutex<()> = Mutex::new(());
    if let Some(w) = WATCHER.get() {
        return Ok(w.clone());
    }
    // One start at a time, so a failed start can be tried again later.
    let _starting = START.locked();
    if let Some(w) = WATCHER.get() {
        return Ok(w.clone());
    }
    let w = Arc::new(Watcher {
        watched: Mutex::new(Watched {
            due: BTreeMap::new(),
            wakes_at: Instant::now(),
        }),
        changed: Condvar::new(),
        next: AtomicU64::new(0),
    });
    let watching = w.clone();
    std::thread::Builder::new()
        .name("weft-time-limit".into())
        .spawn(move || watch(&watching))?;
    Ok(WATCHER.get_or_init(|| w).clone())
}

/// The watcher thread: sleeps until the earliest limit (or a while, with
/// none), runs what is due.
fn watch(w: &Watcher) {
    let mut watched = w.watched.locked();
    loop {
        let now = Instant::now();
        let first = watched.due.first_key_value().map(|(key, _)| key.0);
        if first.is_some_and(|at| at <= now) {
            let (_, expired) = watched.due.pop_first().expect("an entry");
            // Run without the lock: ending a program takes other locks, and
            // may drop deadlines.
            drop(watched);
            expired();
            watched = w.watched.locked();
            continue;
        }
        let wake = first.unwrap_or(now + IDLE_SLEEP);
        watched.wakes_at = wake;
        watched = crate::locks::wait_timeout(&w.changed, watched, wake - now).0;
    }
}

/// Runs `expired` once `limit` has passed, unless the returned deadline
/// is dropped first. Fails only if the watcher thread cannot be started.
pub(crate) fn after(limit: Duration, expired: Expired) -> std::io::Result<Deadline> {
    let w = watcher()?;
    let now = Instant::now();
    // A limit too far to represent is no limit at all in practice.
    let at = now
        .checked_add(limit)
        .unwrap_or(now + Duration::from_secs(1 << 40));
    let key = (at, w.next.fetch_add(1, Ordering::Relaxed));
    let mut watched = w.watched.locked();
    let sooner = at < watched.wakes_at;
    watched.due.insert(key, expired);
    drop(watched);
    if sooner {
        w.changed.notify_all();
    }
    Ok(Deadline { watcher: w, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_passed_limit_runs_and_a_dropped_one_never_does() {
        let (tx, rx) = mpsc::channel();
        let later = tx.clone();
        let cancelled = after(
            Duration::from_millis(30),
            Box::new(move || later.send("cancelled").unwrap()),
        )
        .unwrap();
        let kept = after(
            Duration::from_millis(60),
            Box::new(move || tx.send("kept").unwrap()),
        )
        .unwrap();
        drop(cancelled);
        // Had it not been cancelled, the earlier limit would have sent
        // first.
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), "kept");
        drop(kept);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn an_earlier_limit_added_later_wakes_the_watcher() {
        let (tx, rx) = mpsc::channel();
        let slow = tx.clone();
        let _far = after(
            Duration::from_secs(3600),
            Box::new(move || slow.send("far").unwrap()),
        )
        .unwrap();
        let _near = after(
            Duration::from_millis(10),
            Box::new(move || tx.send("near").unwrap()),
        )
        .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), "near");
    }
}
