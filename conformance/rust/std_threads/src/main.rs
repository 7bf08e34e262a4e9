//! Rust's std::thread on Weft: spawn + join with results, Arc<Mutex>,
//! channels, scoped threads, RwLock, Barrier, Condvar and thread_local!.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex, RwLock};
use std::thread;

thread_local! {
    static CALLS: Cell<u32> = const { Cell::new(0) };
}

fn main() {
    // Join handles carry results.
    let handles: Vec<_> = (1..=6u64)
        .map(|i| thread::spawn(move || (1..=i * 1000).sum::<u64>()))
        .collect();
    let sums: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    println!("sums: {sums:?}");

    // Shared counter behind Arc<Mutex>.
    let counter = Arc::new(Mutex::new(0u64));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..10_000 {
                    *counter.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    println!("mutex counter: {}", *counter.lock().unwrap());

    // Channels: many producers, one consumer.
    let (tx, rx) = mpsc::channel();
    for id in 0..4u64 {
        let tx = tx.clone();
        thread::spawn(move || {
            for i in 0..250 {
                tx.send(id * 1000 + i).unwrap();
            }
        });
    }
    drop(tx);
    let mut received: Vec<u64> = rx.iter().collect();
    received.sort_unstable();
    println!(
        "channel: {} messages, sum {}",
        received.len(),
        received.iter().sum::<u64>()
    );

    // Scoped threads borrow from the stack.
    let mut data = vec![1u32; 1000];
    thread::scope(|s| {
        for (i, chunk) in data.chunks_mut(250).enumerate() {
            s.spawn(move || chunk.iter_mut().for_each(|x| *x += i as u32));
        }
    });
    println!("scoped: sum {}", data.iter().sum::<u32>());

    // RwLock, Barrier and Condvar.
    let table = Arc::new(RwLock::new(vec![0u32; 8]));
    let barrier = Arc::new(Barrier::new(4));
    let leaders = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4usize)
        .map(|id| {
            let (table, barrier, leaders) = (table.clone(), barrier.clone(), leaders.clone());
            thread::spawn(move || {
                table.write().unwrap()[id] = id as u32 + 1;
                if barrier.wait().is_leader() {
                    leaders.fetch_add(1, Ordering::SeqCst);
                }
                table.read().unwrap().iter().sum::<u32>()
            })
        })
        .collect();
    let seen: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    println!("rwlock+barrier: every thread saw {seen:?}, leaders {}", leaders.load(Ordering::SeqCst));

    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let waiter = {
        let pair = pair.clone();
        thread::spawn(move || {
            let (lock, cvar) = &*pair;
            let mut ready = lock.lock().unwrap();
            while !*ready {
                ready = cvar.wait(ready).unwrap();
            }
            "woken"
        })
    };
    {
        let (lock, cvar) = &*pair;
        *lock.lock().unwrap() = true;
        cvar.notify_one();
    }
    println!("condvar: {}", waiter.join().unwrap());

    // thread_local! is per thread.
    let per_thread: Vec<u32> = (0..3)
        .map(|n| {
            thread::spawn(move || {
                for _ in 0..=n {
                    CALLS.with(|c| c.set(c.get() + 1));
                }
                CALLS.with(Cell::get)
            })
            .join()
            .unwrap()
        })
        .collect();
    println!("thread_local: {per_thread:?}, main {}", CALLS.with(Cell::get));

    // Threads that start threads: each of two spawned threads starts a
    // scope of three that share a Mutex and an atomic with everyone, and
    // a grandchild starts one more.
    let shared = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let parents: Vec<_> = (0..2)
        .map(|p| {
            let shared = Arc::clone(&shared);
            let hits = Arc::clone(&hits);
            thread::spawn(move || {
                thread::scope(|s| {
                    for c in 0..3 {
                        let shared = &shared;
                        let hits = &hits;
                        s.spawn(move || {
                            for k in 0..50 {
                                shared.lock().unwrap().push(p * 1000 + c * 100 + k);
                                hits.fetch_add(1, Ordering::SeqCst);
                            }
                            if c == 0 {
                                let inner = thread::spawn(|| 7usize).join().unwrap();
                                hits.fetch_add(inner, Ordering::SeqCst);
                            }
                        });
                    }
                });
                p + 1
            })
        })
        .collect();
    let returned: usize = parents.into_iter().map(|t| t.join().unwrap()).sum();
    let mut all = shared.lock().unwrap().clone();
    all.sort_unstable();
    let sum: usize = all.iter().sum();
    println!(
        "nested: {} pushes summing to {sum}, {} hits, parents returned {returned}",
        all.len(),
        hits.load(Ordering::SeqCst)
    );
}
