//! Prints what a Rust program learns of its processors: std's
//! `available_parallelism()` (0 when it fails) and the width of rayon's
//! global pool, which rayon sizes by it.

fn main() {
    let std_answer = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("{} {}", std_answer, rayon::current_num_threads());
}
