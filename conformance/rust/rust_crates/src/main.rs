//! Popular crates as cargo builds them: rayon's parallel iterators, sort,
//! join, scope and a pool of its own, and crossbeam's scoped threads. The
//! output does not depend on how many threads rayon's global pool has.

use rayon::prelude::*;

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = rayon::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

fn main() {
    let sum: u64 = (0..2_000_000u64).into_par_iter().map(|x| x % 7).sum();
    println!("par_iter sum {sum}");

    let mut values: Vec<u32> = (0..200_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761) ^ (i >> 3))
        .collect();
    values.par_sort_unstable();
    let sorted = values.windows(2).all(|w| w[0] <= w[1]);
    let checksum = values
        .iter()
        .fold(0u64, |acc, x| acc.wrapping_mul(31).wrapping_add(u64::from(*x)));
    println!("par_sort_unstable sorted {sorted} checksum {checksum}");

    println!("join fib(20) {}", fib(20));

    let mut parts = [0u64; 4];
    rayon::scope(|s| {
        for (i, part) in parts.iter_mut().enumerate() {
            s.spawn(move |_| *part = (0..100_000u64).map(|x| x * (i as u64 + 1)).sum());
        }
    });
    println!("scope {parts:?}");

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .expect("a pool of 4");
    let pooled: u64 = pool.install(|| {
        (1..=100_000u64)
            .into_par_iter()
            .map(|x| x * x % 1000)
            .sum()
    });
    println!("pool of {} sum {pooled}", pool.current_num_threads());

    let data: Vec<u64> = (1..=1_000_000).collect();
    let total: u64 = crossbeam_utils::thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(250_000)
            .map(|chunk| s.spawn(move |_| chunk.iter().sum::<u64>()))
            .collect();
        handles.into_iter().map(|h| h.join().expect("a sum")).sum()
    })
    .expect("scoped threads");
    println!("crossbeam scoped sum {total}");
}
