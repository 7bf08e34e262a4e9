//! Message passing and a concurrent map as cargo builds them: a
//! three-stage crossbeam-channel pipeline, a concurrent map (scc) filled
//! by four threads, and std::sync::mpsc with many senders. Every printed line is
//! a total that does not depend on how the threads interleave.

use std::sync::{Arc, mpsc};
use std::thread;

use crossbeam_channel::bounded;

/// Numbers flow from a source through two squaring workers to a sink that
/// adds them up; the channels are bounded, so stages wait for each other.
fn pipeline() {
    const N: u64 = 5_000;
    let (numbers_tx, numbers_rx) = bounded::<u64>(64);
    let (squares_tx, squares_rx) = bounded::<u64>(64);
    let source = thread::spawn(move || {
        for i in 1..=N {
            numbers_tx.send(i).expect("the workers are listening");
        }
    });
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let rx = numbers_rx.clone();
            let tx = squares_tx.clone();
            thread::spawn(move || {
                let mut handled = 0u64;
                for n in rx {
                    tx.send(n * n % 1_000_003).expect("the sink is listening");
                    handled += 1;
                }
                handled
            })
        })
        .collect();
    drop(numbers_rx);
    drop(squares_tx);
    let sink = thread::spawn(move || {
        let mut sum = 0u64;
        let mut count = 0u64;
        for s in squares_rx {
            sum += s;
            count += 1;
        }
        (count, sum)
    });
    source.join().expect("the source");
    let handled: u64 = workers.into_iter().map(|w| w.join().expect("a worker")).sum();
    let (count, sum) = sink.join().expect("the sink");
    println!("crossbeam pipeline: {handled} handled, {count} received, sum {sum}");
}

/// Four threads count words into one map; each word is counted once per
/// thread that sees it.
fn concurrent_map() {
    let map: Arc<scc::HashMap<u32, u64>> = Arc::new(scc::HashMap::new());
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                for i in 0..2_000u32 {
                    let word = (i * 7 + t * 13) % 1_000;
                    map.entry(word)
                        .and_modify(|v| *v += u64::from(t + 1))
                        .or_insert(u64::from(t + 1));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a counter");
    }
    let mut entries: Vec<(u32, u64)> = Vec::new();
    map.scan(|k, v| entries.push((*k, *v)));
    entries.sort_unstable();
    let total: u64 = entries.iter().map(|(_, v)| v).sum();
    let checksum = entries
        .iter()
        .fold(0u64, |acc, (k, v)| acc.wrapping_mul(1_000_003).wrapping_add(u64::from(*k) * 31 + v));
    println!(
        "scc map: {} keys, total {total}, checksum {checksum}",
        entries.len()
    );
}

/// Eight senders on an unbounded channel and four on a bounded one.
fn mpsc_at_scale() {
    let (tx, rx) = mpsc::channel::<u64>();
    let senders: Vec<_> = (0..8u64)
        .map(|s| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..2_500u64 {
                    tx.send(s * 1_000_000 + i).expect("the receiver is alive");
                }
            })
        })
        .collect();
    drop(tx);
    let (mut count, mut sum) = (0u64, 0u64);
    for v in rx {
        count += 1;
        sum += v;
    }
    for s in senders {
        s.join().expect("a sender");
    }
    println!("mpsc channel: {count} messages, sum {sum}");

    let (tx, rx) = mpsc::sync_channel::<u64>(16);
    let senders: Vec<_> = (0..4u64)
        .map(|s| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..1_500u64 {
                    tx.send(i * (s + 1)).expect("the receiver is alive");
                }
            })
        })
        .collect();
    drop(tx);
    let (count, sum) = rx.iter().fold((0u64, 0u64), |(c, s), v| (c + 1, s + v));
    for s in senders {
        s.join().expect("a sender");
    }
    println!("mpsc sync_channel: {count} messages, sum {sum}");
}

fn main() {
    pipeline();
    concurrent_map();
    mpsc_at_scale();
}
