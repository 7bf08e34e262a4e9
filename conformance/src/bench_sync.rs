//! `weft bench sync`: what chain mode's synchronisation costs
//! (`bench/sync.c`: a contended and an uncontended mutex, C11 atomics, a
//! barrier, a condition-variable ping-pong; `bench/rust_sync`: Rust's
//! `Mutex`, atomics and channels), against local mode in the same run,
//! with the time per operation. Every run must print the native build's
//! checksum.

use std::process::Command;

use anyhow::bail;

use crate::{Mode, Suite, exec, root};

#[derive(Debug, clap::Args)]
pub struct SyncBenchArgs {
    /// Rounds per thread of each kind.
    #[arg(long, default_value_t = 2000)]
    pub rounds: u32,
    /// Runs of each measurement; the median is shown.
    #[arg(long, default_value_t = 5)]
    pub repeat: u32,
    /// Where guest and native builds go.
    #[arg(long, default_value = "target/weft-guests")]
    pub out_dir: std::path::PathBuf,
}

/// Each kind of `bench/sync.c` and how many synchronisation operations
/// one round is in all.
const KINDS: &[(&str, f64)] = &[
    ("mutex", 4.0 * 2.0),
    ("uncontended", 2.0),
    ("atomic", 4.0),
    ("barrier", 4.0),
    ("pingpong", 2.0 * 3.0),
];

/// The same for `bench/rust_sync` (Rust's std::sync, whose atomics Weft
/// lowers at load): a `Mutex` lock and unlock are an atomic each, a
/// message is counted as one operation.
const RUST_KINDS: &[(&str, f64)] = &[("mutex", 4.0 * 2.0), ("atomic", 4.0), ("channel", 4.0)];

pub fn main(args: SyncBenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let suite = Suite::new(&args.out_dir, std::env::current_exe()?);
    println!(
        "synchronisation, {} rounds, median of {} runs",
        args.rounds, args.repeat
    );
    let (wasm, native) = suite.build_c(&root().join("bench/sync.c"), "bench_sync")?;
    println!("C (pthreads, C11 atomics)");
    table(&suite, &args, &wasm, &native, KINDS)?;
    let (wasm, native) =
        suite.build_rust_crate(&root().join("bench/rust_sync"), "rust_sync_bench")?;
    println!("Rust (std::sync)");
    table(&suite, &args, &wasm, &native, RUST_KINDS)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs every kind natively, in local and in chain mode, and prints a row
/// each.
fn table(
    suite: &Suite,
    args: &SyncBenchArgs,
    wasm: &std::path::Path,
    native: &std::path::Path,
    kinds: &[(&str, f64)],
) -> anyhow::Result<()> {
    let rounds = args.rounds.to_string();
    println!("kind          native ms   local ms   chain ms   chain/local   chain us/op");
    for (kind, ops_per_round) in kinds {
        let run = |mode: Option<Mode>| -> anyhow::Result<(f64, String)> {
            let out = match mode {
                None => exec::run(
                    Command::new(native).args([*kind, rounds.as_str()]),
                    crate::RUN_TIMEOUT,
                )?,
                Some(mode) => {
                    suite.run_weft(wasm, mode, &[], &[kind.to_string(), rounds.clone()])?
                }
            };
            crate::bench_openmp::parse(&out, wasm)
        };
        let median = |mode: Option<Mode>| -> anyhow::Result<(f64, String)> {
            let mut times = Vec::new();
            let mut check = String::new();
            for _ in 0..args.repeat.max(1) {
                let (ns, c) = run(mode)?;
                times.push(ns);
                check = c;
            }
            times.sort_by(f64::total_cmp);
            Ok((times[times.len() / 2], check))
        };
        let (native_ns, check) = median(None)?;
        let (local_ns, local_check) = median(Some(Mode::Local))?;
        let (chain_ns, chain_check) = median(Some(Mode::Chain))?;
        if local_check != check || chain_check != check {
            bail!(
                "{kind}: checksums differ: native {check}, local {local_check}, chain {chain_check}"
            );
        }
        let ops = ops_per_round * args.rounds as f64;
        println!(
            "{kind:<13} {:>9.2} {:>10.2} {:>10.2} {:>12.1}x {:>13.1}",
            native_ns / 1e6,
            local_ns / 1e6,
            chain_ns / 1e6,
            chain_ns / local_ns,
            chain_ns / 1e3 / ops
        );
    }
    Ok(())
}
