//! `weft bench cluster`: chained threads on another host, with ratios
//! against baselines measured in the same run.
//!
//! - remote spawn+join: a chained thread whose parent has 1 MiB of heap,
//!   placed on a worker host over QUIC on loopback (`--hosts 2`), against
//!   the same thread on the home host;
//! - deltas: snapshot bytes on the wire for later spawns (a delta against
//!   the base the worker kept) against the first, whole snapshot;
//! - bulk: a large snapshot through Weft's protocol against the same bytes
//!   on a plain quinn stream between the same endpoints.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use weft_conformance::{Mode, Suite, root};

#[derive(Debug, clap::Args)]
pub struct ClusterBenchArgs {
    /// create+join rounds per spawn measurement.
    #[arg(long, default_value_t = 200)]
    pub rounds: u32,
    /// Size of the bulk transfer, in MiB.
    #[arg(long, default_value_t = 64)]
    pub bulk_mib: usize,
    /// Repetitions of each measurement; the best is kept.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Where guest builds go.
    #[arg(long, default_value = "target/weft-guests")]
    pub out_dir: PathBuf,
}

/// The number after `key` on a line `key N` of the guest's output.
fn value(output: &str, key: &str) -> anyhow::Result<f64> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
        .with_context(|| format!("no `{key}` in benchmark output {output:?}"))
}

/// The number after `before` in `text`.
fn number_after(text: &str, before: &str) -> anyhow::Result<f64> {
    let at = text
        .find(before)
        .with_context(|| format!("no `{before}` in {text:?}"))?;
    text[at + before.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no number after `{before}` in {text:?}"))
}

pub fn main(args: ClusterBenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let suite = Suite::new(&args.out_dir, std::env::current_exe()?);
    let (wasm, _) = suite.build_c(&root().join("bench/spawn_latency.c"), "bench_spawn_latency")?;
    let rounds = args.rounds.to_string();
    let run = |options: &[&str]| -> anyhow::Result<(f64, String)> {
        let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        let out = suite.run_weft(&wasm, Mode::Chain, &options, &[rounds.clone(), "1".into()])?;
        if out.code != Some(0) {
            bail!(
                "the spawn benchmark failed ({:?}): {}",
                out.code,
                out.stderr
            );
        }
        Ok((value(&out.stdout, "median_ns")?, out.stderr))
    };
    let (mut home, mut remote, mut stats) = (f64::INFINITY, f64::INFINITY, String::new());
    for _ in 0..args.repeat.max(1) {
        home = home.min(run(&[])?.0);
        let (ns, stderr) = run(&["--hosts", "2", "--placement", "peers", "--cluster-stats"])?;
        if ns < remote {
            (remote, stats) = (ns, stderr);
        }
    }
    let on_peers = number_after(&stats, "cluster: ")?;
    let whole = number_after(&stats, "whole snapshots (average ")?;
    let delta = number_after(&stats, "deltas (average ")?;

    let payload: Vec<u8> = (0..args.bulk_mib << 20)
        .map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()[7])
        .collect();
    let bulk = crate::bench_transfer::bulk(&payload, args.repeat.max(1) as usize)?;
    let rate = |d: Duration| payload.len() as f64 / d.as_secs_f64() / (1 << 20) as f64;

    println!("benchmark                                     value         baseline      ratio");
    println!(
        "spawn+join median, 1 MiB (peer / home)        {:>9.1} us  {:>9.1} us  {:>6.2}x",
        remote / 1e3,
        home / 1e3,
        remote / home
    );
    println!(
        "snapshot on the wire (later delta / first)    {:>9.0} B   {:>9.0} B   {:>6.4}x",
        delta,
        whole,
        delta / whole
    );
    println!(
        "bulk {} MiB (weft call / plain quinn)          {:>7.0} MiB/s {:>7.0} MiB/s {:>6.2}x",
        args.bulk_mib,
        rate(bulk.call),
        rate(bulk.plain),
        bulk.plain.as_secs_f64() / bulk.call.as_secs_f64()
    );
    println!("({on_peers} threads of the best remote run ran on the peer)");
    Ok(std::process::ExitCode::SUCCESS)
}
