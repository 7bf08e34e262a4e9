//! Worker slots: how many chained threads run at once (`--slots`). A thread
//! that cannot get a slot waits in a queue; it never fails.
//!
//! A thread gives its slot up while it waits for another thread (libweft
//! calls `wait-begin` before `pthread_join` and `wait-end` after): a parent
//! joining a queued child would otherwise hold the slot the child needs.
//! So slots are held only by threads that can make progress.

use crate::locks::Locked as _;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use crate::pool::Job;

/// Someone waiting for a slot.
enum Waiter {
    /// A chained thread not started yet: it starts when it gets a slot.
    Start(Job),
    /// A thread back from a wait, blocked until it gets a slot again.
    Resume(Arc<(Mutex<bool>, Condvar)>),
}

pub(crate) struct Slots {
    state: Mutex<State>,
}

struct State {
    free: usize,
    queue: VecDeque<Waiter>,
    /// The program has ended: nobody waits for a slot any more.
    closed: bool,
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Slots")
            .field("free", &state.free)
            .field("queued", &state.queue.len())
            .finish()
    }
}

impl Slots {
    pub(crate) fn new(count: usize) -> Self {
        Self {
            state: Mutex::new(State {
                free: count.max(1),
                queue: VecDeque::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.locked()
    }

    /// Asks a slot for thread `start`: returns it back when a slot is free
    /// (the caller runs it now), else queues it until one frees up (in the
    /// order threads asked). The thread must give its slot back with
    /// [`Self::release`].
    #[must_use]
    pub(crate) fn start(&self, start: Job) -> Option<Job> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        if state.free > 0 {
            state.free -= 1;
            Some(start)
        } else {
            state.queue.push_back(Waiter::Start(start));
            None
        }
    }

    /// Takes a free slot, if there is one and nobody waits for it.
    pub(crate) fn try_take(&self) -> bool {
        let mut state = self.lock();
        let free = state.free > 0 && state.queue.is_empty();
        if free {
            state.free -= 1;
        }
        free
    }

    /// Gives a slot back; the longest waiter gets it. Returns the thread to
    /// start with it, if that is who was waiting.
    #[must_use]
    pub(crate) fn release(&self) -> Option<Job> {
        let mut state = self.lock();
        match state.queue.pop_front() {
            Some(Waiter::Start(job)) => Some(job),
            Some(Waiter::Resume(waiter)) => {
                drop(state);
                let (granted, wake) = &*waiter;
                *granted.locked() = true;
                wake.notify_one();
                None
            }
            None => {
                state.free += 1;
                None
            }
        }
    }

    /// The program has ended: threads waiting to resume go on at once (to
    /// meet the end at their next wait), and threads not started yet never
    /// start.
    pub(crate) fn close(&self) {
        let queued = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.queue)
        };
        for waiter in queued {
            if let Waiter::Resume(waiter) = waiter {
                let (granted, wake) = &*waiter;
                *granted.locked() = true;
                wake.notify_one();
            }
        }
    }

    /// Blocks until the caller holds a slot again (at once once closed).
    pub(crate) fn acquire(&self) {
        let waiter = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            if state.free > 0 {
                state.free -= 1;
                return;
            }
            let waiter = Arc::new((Mutex::new(false), Condvar::new()));
            state.queue.push_back(Waiter::Resume(waiter.clone()));
            waiter
        };
        let (granted, wake) = &*waiter;
        let mut granted = granted.locked();
        while !*granted {
            granted = crate::locks::wait(wake, granted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn job(counter: &Arc<AtomicUsize>) -> Job {
        let counter = counter.clone();
        Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn queues_beyond_the_slots_and_hands_freed_slots_on_in_order() {
        let slots = Slots::new(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let run = |job: Option<Job>| job.map(|job| job());
        run(slots.start(job(&ran)));
        run(slots.start(job(&ran)));
        run(slots.start(job(&ran)));
        assert_eq!(ran.load(Ordering::SeqCst), 2, "the third waits");
        let next = slots.release().expect("the queued thread gets the slot");
        next();
        assert_eq!(ran.load(Ordering::SeqCst), 3);
        assert!(slots.release().is_none());
        assert!(slots.release().is_none());
        // Both slots are free again: two start at once.
        run(slots.start(job(&ran)));
        run(slots.start(job(&ran)));
        assert_eq!(ran.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn a_free_slot_is_taken_only_when_nobody_queues_for_it() {
        let slots = Slots::new(1);
        let ran = Arc::new(AtomicUsize::new(0));
        assert!(slots.try_take(), "the free slot");
        assert!(!slots.try_take(), "none left");
        assert!(slots.start(job(&ran)).is_none(), "queued");
        // The freed slot goes to the queued thread, not to a taker.
        let next = slots.release().expect("the queued thread");
        assert!(!slots.try_take());
        next();
        assert!(slots.release().is_none());
        assert!(slots.try_take());
    }

    #[test]
    fn a_thread_back_from_a_wait_gets_the_next_free_slot() {
        let slots = Arc::new(Slots::new(1));
        assert!(slots.start(Box::new(|| {})).is_some()); // takes the only slot
        let resumed = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (slots, resumed) = (slots.clone(), resumed.clone());
            std::thread::spawn(move || {
                slots.acquire();
                resumed.store(1, Ordering::SeqCst);
            })
        };
        while format!("{slots:?}").contains("queued: 0") {
            std::thread::yield_now();
        }
        assert_eq!(resumed.load(Ordering::SeqCst), 0);
        assert!(slots.release().is_none());
        waiter.join().unwrap();
        assert_eq!(resumed.load(Ordering::SeqCst), 1);
    }
}
