//! Rust's synchronisation, which std builds on wasm atomics and
//! `memory.atomic.wait/notify` rather than pthreads: a bounded queue on
//! Mutex + Condvar, a sync_channel pipeline, an AtomicBool that publishes
//! plain data (release/acquire), atomic counters, OnceLock, park/unpark
//! and Arc counts.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;

const DONE: u64 = u64::MAX;

struct Queue {
    items: Mutex<VecDeque<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

impl Queue {
    fn push(&self, value: u64) {
        let mut items = self.items.lock().unwrap();
        while items.len() == self.capacity {
            items = self.not_full.wait(items).unwrap();
        }
        items.push_back(value);
        self.not_empty.notify_one();
    }

    fn pop(&self) -> u64 {
        let mut items = self.items.lock().unwrap();
        loop {
            if let Some(value) = items.pop_front() {
                self.not_full.notify_one();
                return value;
            }
            items = self.not_empty.wait(items).unwrap();
        }
    }
}

/// Plain data handed from one thread to another by a flag.
struct Mailbox {
    ready: AtomicBool,
    data: UnsafeCell<[u64; 64]>,
}

// SAFETY: `data` is written only before `ready` is set (release) and read
// only after it is seen set (acquire).
unsafe impl Sync for Mailbox {}

fn main() {
    // A bounded queue: two producers, two consumers, end markers.
    let queue = Arc::new(Queue {
        items: Mutex::new(VecDeque::new()),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
        capacity: 4,
    });
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let queue = queue.clone();
            thread::spawn(move || (1..=150).for_each(|i| queue.push(p * 1000 + i)))
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let queue = queue.clone();
            thread::spawn(move || {
                let (mut count, mut sum) = (0u64, 0u64);
                loop {
                    match queue.pop() {
                        DONE => return (count, sum),
                        value => (count, sum) = (count + 1, sum + value),
                    }
                }
            })
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    queue.push(DONE);
    queue.push(DONE);
    let (count, sum) = consumers
        .into_iter()
        .map(|c| c.join().unwrap())
        .fold((0, 0), |(c, s), (c2, s2)| (c + c2, s + s2));
    println!("queue: {count} items, sum {sum}, Arc count back to {}", Arc::strong_count(&queue));

    // A pipeline of bounded channels.
    let (to_square, squares_in) = mpsc::sync_channel::<u64>(2);
    let (to_add, adds_in) = mpsc::sync_channel::<u64>(2);
    let square = thread::spawn(move || {
        for n in squares_in {
            to_add.send(n * n).unwrap();
        }
    });
    let add = thread::spawn(move || adds_in.iter().map(|n| n + 1).sum::<u64>());
    for n in 0..100 {
        to_square.send(n).unwrap();
    }
    drop(to_square);
    square.join().unwrap();
    println!("pipeline: {}", add.join().unwrap());

    // A flag publishes plain data.
    let mailbox = Arc::new(Mailbox {
        ready: AtomicBool::new(false),
        data: UnsafeCell::new([0; 64]),
    });
    let reader = {
        let mailbox = mailbox.clone();
        thread::spawn(move || {
            while !mailbox.ready.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            // SAFETY: `ready` was set after the last write of `data`.
            unsafe { (*mailbox.data.get()).iter().sum::<u64>() }
        })
    };
    let writer = {
        let mailbox = mailbox.clone();
        thread::spawn(move || {
            // SAFETY: no one reads `data` before `ready` is set.
            let data = unsafe { &mut *mailbox.data.get() };
            for (i, slot) in data.iter_mut().enumerate() {
                *slot = i as u64 * 3;
            }
            mailbox.ready.store(true, Ordering::Release);
        })
    };
    writer.join().unwrap();
    println!("mailbox: reader summed {}", reader.join().unwrap());

    // Atomic counters and a maximum by compare-and-swap.
    let hits = Arc::new(AtomicU64::new(0));
    let highest = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4usize)
        .map(|id| {
            let (hits, highest) = (hits.clone(), highest.clone());
            thread::spawn(move || {
                for i in 0..200 {
                    hits.fetch_add(1, Ordering::Relaxed);
                    let candidate = id * 1000 + i;
                    let mut seen = highest.load(Ordering::Relaxed);
                    while candidate > seen {
                        match highest.compare_exchange(seen, candidate, Ordering::AcqRel, Ordering::Relaxed) {
                            Ok(_) => break,
                            Err(now) => seen = now,
                        }
                    }
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    println!(
        "atomics: {} hits, highest {}",
        hits.load(Ordering::SeqCst),
        highest.load(Ordering::SeqCst)
    );

    // OnceLock: racing initialisers, one wins.
    static CONFIG: OnceLock<u64> = OnceLock::new();
    static INITS: AtomicUsize = AtomicUsize::new(0);
    let racers: Vec<_> = (0..3u64)
        .map(|_| {
            thread::spawn(|| {
                *CONFIG.get_or_init(|| {
                    INITS.fetch_add(1, Ordering::SeqCst);
                    42
                })
            })
        })
        .collect();
    let values: Vec<u64> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    println!("once: values {values:?}, initialised {} time(s)", INITS.load(Ordering::SeqCst));

    // park/unpark: a thread sleeps until told to go on.
    let go = Arc::new(AtomicBool::new(false));
    let parked = {
        let go = go.clone();
        thread::spawn(move || {
            let mut parks = 0u32;
            while !go.load(Ordering::Acquire) {
                thread::park();
                parks += 1;
            }
            parks > 0 || go.load(Ordering::Acquire)
        })
    };
    go.store(true, Ordering::Release);
    parked.thread().unpark();
    println!("park: woke {}", parked.join().unwrap());
}
