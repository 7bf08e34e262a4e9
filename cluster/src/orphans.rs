//! Threads of cancelled calls that a worker could not stop.
//!
//! Guest code on a worker's fast engine has no epoch checks: a cancelled
//! call's thread stops at its next host call. One that computes on without
//! calling the host is an orphan once [`ORPHAN_GRACE`] has passed since its
//! call was cancelled: it keeps its slot until it ends, the worker says so
//! once, and the worker's next calls run on the stoppable engine while any
//! orphan runs. A call stays watched while threads it started on this
//! worker run, after its own thread has returned. So a home that dies (or
//! a program that ends) while its threads compute costs a worker at most
//! the CPUs those threads use, and only until they end; it never makes the
//! worker slower for others for longer than that.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use weft_runtime::away::RemoteCall;
use weft_runtime::locks::Locked as _;

/// How long a cancelled call's thread gets to reach a host call before it
/// counts as an orphan (a thread blocked in a wait stops within 2 s).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3);

/// How often the watcher looks.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// The calls a worker runs on its fast engine, and how many of their
/// threads are orphans now.
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    watched: Mutex<Vec<Watched>>,
    next_id: AtomicU64,
    count: AtomicUsize,
    watcher: OnceLock<()>,
}

#[derive(Debug)]
struct Watched {
    id: u64,
    tid: u32,
    call: Weak<RemoteCall>,
    /// When the watcher first saw the call cancelled.
    cancelled_seen: Option<Instant>,
    orphan: bool,
    /// The call's own thread has returned; threads it started on this
    /// worker still run (watched until they end).
    returned: bool,
}

/// A watched call; its end (however the call ends) ends the watch.
#[derive(Debug)]
pub(crate) struct Watch {
    orphans: Arc<Orphans>,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = self.orphans.watched.locked();
        if let Some(entry) = watched.iter_mut().find(|w| w.id == self.id) {
            entry.returned = true;
        }
        self.orphans.prune(&mut watched);
    }
}

/// Whether a watched call has nothing running here any more.
fn finished(w: &Watched) -> bool {
    w.returned
        && w.call
            .upgrade()
            .is_none_or(|call| call.running_threads() == 0)
}

impl Orphans {
    /// Forgets the calls that have finished, counting their orphans out.
    fn prune(&self, watched: &mut Vec<Watched>) {
        watched.retain(|w| {
            if !finished(w) {
                return true;
            }
            if w.orphan {
                self.count.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(
                    tid = w.tid,
                    "the orphaned thread {} of a cancelled call has ended; its slot is free",
                    w.tid
                );
            }
            false
        });
    }

    /// Orphans running now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Watches `call` (running thread `tid`) until the returned guard goes.
    pub(crate) fn watch(self: &Arc<Self>, call: &Arc<RemoteCall>, tid: u32) -> Watch {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.watched.locked().push(Watched {
            id,
            tid,
            call: Arc::downgrade(call),
            cancelled_seen: None,
            orphan: false,
            returned: false,
        });
        self.watcher.get_or_init(|| {
            let weak = Arc::downgrade(self);
            let started = std::thread::Builder::new()
                .name("weft-orphans".into())
                .spawn(move || {
                    while let Some(orphans) = weak.upgrade() {
                        orphans.look(Instant::now());
                        drop(orphans);
                        std::thread::sleep(WATCH_EVERY);
                    }
                });
            if let Err(e) = started {
                // Nothing is then ever counted as an orphan: a cancelled
                // thread that never calls the host keeps its slot silently.
                tracing::warn!("no orphan watcher thread: {e}");
            }
        });
        Watch {
            orphans: self.clone(),
            id,
        }
    }

    fn look(&self, now: Instant) {
        let mut watched = self.watched.locked();
        self.prune(&mut watched);
        let cancelled = |w: &Watched| w.call.upgrade().is_some_and(|call| call.is_cancelled());
        for tid in find_orphans(&mut watched, now, cancelled) {
            self.count.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(
                tid,
                "thread {tid} of a cancelled call computes on without calling the host: \
                 it keeps its slot until it ends, and calls run with epoch checks until then"
            );
        }
    }
}

/// Marks the watched threads whose call has been cancelled for longer than
/// [`ORPHAN_GRACE`] as orphans; the thread ids newly marked.
fn find_orphans(
    watched: &mut [Watched],
    now: Instant,
    cancelled: impl Fn(&Watched) -> bool,
) -> Vec<u32> {
    let mut found = Vec::new();
    for w in watched.iter_mut().filter(|w| !w.orphan) {
        if !cancelled(w) {
            continue;
        }
        let seen = *w.cancelled_seen.get_or_insert(now);
        if now.saturating_duration_since(seen) >= ORPHAN_GRACE {
            w.orphan = true;
            found.push(w.tid);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(id: u64) -> Watched {
        Watched {
            id,
            tid: id as u32 + 10,
            call: Weak::new(),
            cancelled_seen: None,
            orphan: false,
            returned: false,
        }
    }

    #[test]
    fn a_cancelled_thread_is_an_orphan_only_after_the_grace_and_once() {
        let t0 = Instant::now();
        let mut all = vec![watched(1), watched(2)];
        let only_first = |w: &Watched| w.id == 1;
        assert!(find_orphans(&mut all, t0, only_first).is_empty());
        let later = t0 + ORPHAN_GRACE - Duration::from_millis(1);
        assert!(find_orphans(&mut all, later, only_first).is_empty());
        assert_eq!(find_orphans(&mut all, t0 + ORPHAN_GRACE, only_first), [11]);
        // Said once.
        assert!(find_orphans(&mut all, t0 + 2 * ORPHAN_GRACE, only_first).is_empty());
        assert!(!all[1].orphan && all[1].cancelled_seen.is_none());
    }

    #[test]
    fn the_grace_counts_from_when_the_cancel_was_first_seen() {
        let t0 = Instant::now();
        let mut all = vec![watched(1)];
        assert!(find_orphans(&mut all, t0, |_| false).is_empty());
        let cancel_seen = t0 + Duration::from_secs(10);
        assert!(find_orphans(&mut all, cancel_seen, |_| true).is_empty());
        assert_eq!(
            find_orphans(&mut all, cancel_seen + ORPHAN_GRACE, |_| true),
            [11]
        );
    }

    #[test]
    fn an_ended_watch_frees_its_orphan_count() {
        let orphans = Arc::new(Orphans::default());
        orphans.watched.locked().push(Watched {
            orphan: true,
            ..watched(7)
        });
        orphans.watched.locked().push(watched(8));
        orphans.count.store(1, Ordering::SeqCst);
        drop(Watch {
            orphans: orphans.clone(),
            id: 7,
        });
        assert_eq!(orphans.count(), 0);
        // Its call is gone, so nothing of it runs: forgotten; the other
        // call is still watched.
        let left: Vec<u64> = orphans.watched.locked().iter().map(|w| w.id).collect();
        assert_eq!(left, [8]);
    }
}
