//! `weft bench`: local-mode costs against the same C program built natively,
//! measured in one run so the ratios compare like with like.
//!
//! - spawn: median `pthread_create` + `pthread_join` latency, wasm / native;
//! - speedup: a CPU-bound kernel on 2 threads vs 1 thread under weft (and
//!   natively, for reference).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{Mode, Suite, exec, root};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// create+join rounds per spawn measurement.
    #[arg(long, default_value_t = 2000)]
    pub rounds: u32,
    /// Integration steps of the kernel.
    #[arg(long, default_value_t = 400_000_000)]
    pub steps: u64,
    /// Repetitions of each measurement; the best is kept.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Where guest and native builds go.
    #[arg(long, default_value = "target/weft-guests")]
    pub out_dir: PathBuf,
}

pub fn main(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let suite = Suite::new(&args.out_dir, std::env::current_exe()?);
    let bench_dir = root().join("bench");
    let (spawn_wasm, spawn_native) =
        suite.build_c(&bench_dir.join("spawn_latency.c"), "bench_spawn_latency")?;
    let (kernel_wasm, kernel_native) =
        suite.build_c(&bench_dir.join("kernel.c"), "bench_kernel")?;

    let rounds = args.rounds.to_string();
    let best = |f: &dyn Fn() -> anyhow::Result<f64>| -> anyhow::Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..args.repeat.max(1) {
            best = best.min(f()?);
        }
        Ok(best)
    };

    let native_spawn = best(&|| value(&run_native(&spawn_native, &[&rounds])?, "median_ns"))?;
    let weft_spawn = best(&|| {
        value(
            &run_weft(&suite, &spawn_wasm, Mode::Local, &[&rounds])?,
            "median_ns",
        )
    })?;
    // Chain mode: the parent has filled 1 MiB or 64 MiB of heap; each child
    // writes one value.
    let chain_rounds = (args.rounds / 10).max(20).to_string();
    let chain_1 = best(&|| {
        value(
            &run_weft(&suite, &spawn_wasm, Mode::Chain, &[&chain_rounds, "1"])?,
            "median_ns",
        )
    })?;
    let chain_64 = best(&|| {
        value(
            &run_weft(&suite, &spawn_wasm, Mode::Chain, &[&chain_rounds, "64"])?,
            "median_ns",
        )
    })?;

    let steps = args.steps.to_string();
    let kernel = |threads: &str, wasm: bool| -> anyhow::Result<f64> {
        let out = if wasm {
            run_weft(&suite, &kernel_wasm, Mode::Local, &[threads, &steps])?
        } else {
            run_native(&kernel_native, &[threads, &steps])?
        };
        value(&out, "elapsed_ns")
    };
    let weft_1 = best(&|| kernel("1", true))?;
    let weft_2 = best(&|| kernel("2", true))?;
    let native_1 = best(&|| kernel("1", false))?;
    let native_2 = best(&|| kernel("2", false))?;

    println!("benchmark                               value        baseline     ratio");
    println!(
        "spawn+join median (weft local / native)  {:>9.1} us {:>9.1} us  {:>6.2}x",
        weft_spawn / 1e3,
        native_spawn / 1e3,
        weft_spawn / native_spawn
    );
    println!(
        "spawn+join median (chain 1 MiB / local)  {:>9.1} us {:>9.1} us  {:>6.2}x",
        chain_1 / 1e3,
        weft_spawn / 1e3,
        chain_1 / weft_spawn
    );
    println!(
        "spawn+join median (chain 64 / 1 MiB)     {:>9.1} us {:>9.1} us  {:>6.2}x",
        chain_64 / 1e3,
        chain_1 / 1e3,
        chain_64 / chain_1
    );
    println!(
        "kernel 2 threads vs 1 (weft local)       {:>9.1} ms {:>9.1} ms  {:>6.2}x speedup",
        weft_2 / 1e6,
        weft_1 / 1e6,
        weft_1 / weft_2
    );
    println!(
        "kernel 2 threads vs 1 (native)           {:>9.1} ms {:>9.1} ms  {:>6.2}x speedup",
        native_2 / 1e6,
        native_1 / 1e6,
        native_1 / native_2
    );
    println!(
        "kernel 1 thread (weft local / native)    {:>9.1} ms {:>9.1} ms  {:>6.2}x",
        weft_1 / 1e6,
        native_1 / 1e6,
        weft_1 / native_1
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn run_native(program: &Path, args: &[&str]) -> anyhow::Result<String> {
    checked(
        exec::run(Command::new(program).args(args), crate::RUN_TIMEOUT)?,
        program,
    )
}

fn run_weft(suite: &Suite, wasm: &Path, mode: Mode, args: &[&str]) -> anyhow::Result<String> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    checked(suite.run_weft(wasm, mode, &[], &args)?, wasm)
}

fn checked(outcome: exec::Outcome, program: &Path) -> anyhow::Result<String> {
    if outcome.code != Some(0) {
        bail!(
            "{} failed ({:?}): {}",
            program.display(),
            outcome.code,
            outcome.stderr
        );
    }
    Ok(outcome.stdout)
}

/// The number after `key` on a line `key N` of a benchmark's output.
fn value(output: &str, key: &str) -> anyhow::Result<f64> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
        .with_context(|| format!("no `{key}` in benchmark output {output:?}"))
}
