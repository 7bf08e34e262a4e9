//! Rust's std::sync costs for `weft bench sync`:
//!   rust_sync_bench KIND ROUNDS
//! KIND is mutex (4 threads lock a `Mutex`, add and unlock), atomic (4
//! threads `fetch_add` an `AtomicU64`) or channel (4 threads send ROUNDS
//! messages each to the main thread over `mpsc`). Prints a checksum and
//! the time of the measured part, as `bench/sync.c` does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Instant;

const THREADS: u64 = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(kind), Some(Ok(rounds))) = (args.get(1), args.get(2).map(|r| r.parse::<u64>()))
    else {
        eprintln!("usage: rust_sync_bench mutex|atomic|channel ROUNDS");
        std::process::exit(2);
    };
    let start = Instant::now();
    let check = match kind.as_str() {
        "mutex" => {
            let counter = Arc::new(Mutex::new(0u64));
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let counter = counter.clone();
                    thread::spawn(move || {
                        for _ in 0..rounds {
                            *counter.lock().unwrap() += 1;
                        }
                    })
                })
                .collect();
            workers.into_iter().for_each(|w| w.join().unwrap());
            let total = *counter.lock().unwrap();
            total
        }
        "atomic" => {
            let counter = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let counter = counter.clone();
                    thread::spawn(move || {
                        for _ in 0..rounds {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            workers.into_iter().for_each(|w| w.join().unwrap());
            counter.load(Ordering::SeqCst)
        }
        "channel" => {
            let (tx, rx) = mpsc::channel();
            for id in 0..THREADS {
                let tx = tx.clone();
                thread::spawn(move || (0..rounds).for_each(|i| tx.send(id + i).unwrap()));
            }
            drop(tx);
            rx.iter().sum()
        }
        other => {
            eprintln!("unknown kind {other}");
            std::process::exit(2);
        }
    };
    println!("check {check}\nelapsed_ns {}", start.elapsed().as_nanos());
}
