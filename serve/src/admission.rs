//! Bounded admission (sans-IO): calls run in a fixed number of slots, a
//! bounded number more wait for one, and the rest are refused at once
//! with a hint of when to retry; while draining, nothing new is taken.
//! A taken call reads its body while it waits, so a slow client never
//! holds a slot.

/// Why a call was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken and the queue is full: answer 429.
    Full { retry_after_secs: u32 },
    /// The server is draining: answer 503.
    Draining,
}

/// The counts behind admission; the I/O layer holds one under a lock.
#[derive(Debug, Clone)]
pub struct Admission {
    slots: usize,
    queue: usize,
    running: usize,
    waiting: usize,
    draining: bool,
}

impl Admission {
    /// `slots` calls at once (at least one), `queue` more waiting.
    pub fn new(slots: usize, queue: usize) -> Self {
        Self {
            slots: slots.max(1),
            queue,
            running: 0,
            waiting: 0,
            draining: false,
        }
    }

    /// Takes a call into the queue (it reads its body there, then asks
    /// for a slot with [`Admission::dequeue`]), or refuses it.
    pub fn admit(&mut self) -> Result<(), Refusal> {
        if self.draining {
            return Err(Refusal::Draining);
        }
        if self.running + self.waiting < self.slots + self.queue {
            self.waiting += 1;
            return Ok(());
        }
        // A queue as long as this drains in about its length over the
        // slots rounds of calls; a second is the least a client can wait.
        let rounds = (self.waiting / self.slots).max(1);
        Err(Refusal::Full {
            retry_after_secs: u32::try_from(rounds).unwrap_or(u32::MAX).min(60),
        })
    }

    /// Whether a waiting call may take a slot now; if so it runs.
    pub fn dequeue(&mut self) -> bool {
        if self.waiting > 0 && self.running < self.slots {
            self.waiting -= 1;
            self.running += 1;
            true
        } else {
            false
        }
    }

    /// A waiting call gave up (its client went away) before it ran.
    pub fn abandon(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// A running call ended: its slot is free.
    pub fn finish(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// Stops taking calls; those taken still run.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Whether it takes calls (`/readyz`).
    pub fn ready(&self) -> bool {
        !self.draining
    }

    /// Whether every taken call has ended.
    pub fn idle(&self) -> bool {
        self.running == 0 && self.waiting == 0
    }

    pub fn running(&self) -> usize {
        self.running
    }

    pub fn waiting(&self) -> usize {
        self.waiting
    }

    pub fn slots(&self) -> usize {
        self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_then_queue_then_refusal() {
        let mut a = Admission::new(2, 1);
        for _ in 0..3 {
            assert_eq!(a.admit(), Ok(()));
        }
        assert!(matches!(a.admit(), Err(Refusal::Full { .. })));
        assert!(a.dequeue());
        assert!(a.dequeue());
        assert!(!a.dequeue(), "no slot is free yet");
        assert!(a.admit().is_err(), "two run and one waits");
        a.finish();
        assert!(a.dequeue());
        assert_eq!((a.running(), a.waiting()), (2, 0));
        a.finish();
        a.finish();
        assert!(a.idle());
    }

    #[test]
    fn abandoning_frees_the_queue() {
        let mut a = Admission::new(1, 1);
        a.admit().unwrap();
        assert!(a.dequeue());
        a.admit().unwrap();
        assert!(a.admit().is_err());
        a.abandon();
        assert_eq!(a.admit(), Ok(()));
        assert!(!a.dequeue());
    }

    #[test]
    fn draining_refuses_new_calls_and_waits_for_taken_ones() {
        let mut a = Admission::new(1, 4);
        a.admit().unwrap();
        a.drain();
        assert!(!a.ready());
        assert_eq!(a.admit(), Err(Refusal::Draining));
        assert!(!a.idle());
        assert!(a.dequeue(), "a call taken before the drain still runs");
        a.finish();
        assert!(a.idle());
    }

    #[test]
    fn retry_hint_grows_with_the_queue_and_is_bounded() {
        let mut a = Admission::new(1, 1000);
        for _ in 0..1001 {
            a.admit().unwrap();
        }
        assert_eq!(
            a.admit(),
            Err(Refusal::Full {
                retry_after_secs: 60
            })
        );
        let mut b = Admission::new(4, 0);
        for _ in 0..4 {
            b.admit().unwrap();
            assert!(b.dequeue());
        }
        assert_eq!(
            b.admit(),
            Err(Refusal::Full {
                retry_after_secs: 1
            })
        );
        assert_eq!(Admission::new(0, 0).slots(), 1);
    }
}
