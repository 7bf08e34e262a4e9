//! Function `fanout-rs`: the Rust twin of `fn_fanout.c`. Input N; calls the
//! function `square` for 1..N at once, awaits them, outputs the sum of the
//! squares and what the shared state says.

use weft_guest::{chain, state};

fn main() {
    let n: u64 = String::from_utf8_lossy(&chain::input()).trim().parse().unwrap_or(0);
    let calls: Vec<u32> = (1..=n)
        .map(|i| chain::call("square", i.to_string().as_bytes()).expect("call square"))
        .collect();
    let mut sum = 0u64;
    for id in calls {
        assert_eq!(chain::await_(id), Ok(0));
        let output = chain::output(id).expect("output");
        sum += String::from_utf8_lossy(&output).parse::<u64>().expect("a number");
    }
    let largest = state::get("largest").expect("state written by the calls");
    // A C `long`: 4 bytes on wasm32.
    let largest = i32::from_le_bytes(largest[..4].try_into().expect("4 bytes"));
    let unknown = chain::call("no-such-function", b"");
    let report = format!(
        "rust: sum of squares 1..{n}: {sum}; largest seen: {largest}; unknown: {unknown:?}\n"
    );
    chain::set_output(report.as_bytes()).expect("set output");
}
