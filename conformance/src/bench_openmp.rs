//! `weft bench openmp`: OpenMP kernels (`bench/openmp.c`) at a fixed team
//! size, built with `weft-cc -fopenmp` and with `gcc -fopenmp` (libgomp),
//! all measured in one run:
//!
//! - weft local / native: the runtime and wasm against libgomp and x86;
//! - chain / local and chain over 3 hosts / local: what chain mode's teams
//!   (members parked at home between regions) and its sync points
//!   (barriers, reductions, flush, tasks) cost. A kernel chain mode refuses
//!   is shown as refused.
//!
//! Each kernel times itself without its set-up; the table shows medians.
//! The columns take turns, one run each per round, and a ratio is the
//! median of the ratios of runs made one after the other: this machine's
//! speed swings by 2x for seconds at a time, and columns measured one
//! after the other in blocks once showed 2x where there was none.
//! Then the task-parallel kernel (fib) on one thread against the team
//! size, natively and in local mode: the speed-up tasks give; and on one
//! thread, Weft against native: what the compiled code alone costs.

use std::path::Path;
use std::process::Command;

use anyhow::bail;

use crate::{Mode, Suite, exec, root};

#[derive(Debug, clap::Args)]
pub struct OpenmpBenchArgs {
    /// Threads per team.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Runs of each measurement; the median is shown.
    #[arg(long, default_value_t = 5)]
    pub repeat: u32,
    /// Skip the chain over 3 hosts column (it starts 3 `weft serve`).
    #[arg(long)]
    pub no_hosts: bool,
    /// Where guest and native builds go.
    #[arg(long, default_value = "target/weft-guests")]
    pub out_dir: std::path::PathBuf,
}

const KERNELS: &[&str] = &[
    "triad",
    "transpose",
    "dgemm",
    "dot",
    "stencil",
    "p2p",
    "fork",
    "barrier",
    "fib",
];

/// The task-parallel kernel whose speed-up over one thread is shown.
const TASK_KERNEL: &str = "fib";

/// What one column measured for a kernel.
enum Measured {
    Nanos(f64),
    /// Weft refused the program (chain mode).
    Refused,
}

pub fn main(args: OpenmpBenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let suite = Suite::new(&args.out_dir, std::env::current_exe()?);
    let (wasm, native) = suite.build_c_with(
        &root().join("bench/openmp.c"),
        "bench_openmp",
        &["-fopenmp".to_string()],
    )?;
    let threads = args.threads.to_string();
    let mut modes = vec![Mode::Local, Mode::Chain];
    if !args.no_hosts {
        modes.push(Mode::Chain3);
    }

    println!(
        "OpenMP kernels, {} threads, median of {} runs (ms; in parentheses the median of the ratios of runs made one after the other)",
        args.threads, args.repeat
    );
    println!("kernel      native    weft local (/native)   chain (/local)        chain3 (/local)");
    // Per kernel, the worst of weft local's ratios to native (a goal is
    // "within 1.2x in every run", not only in the median).
    let mut worst_local = Vec::new();
    for kernel in KERNELS {
        // One run of every column per round, so a machine that slows down
        // for a while (as shared ones do, by 2x for seconds) slows a
        // round's columns together, and each ratio compares runs made
        // seconds apart.
        let mut native_ns = Vec::new();
        let mut columns: Vec<Vec<Measured>> = modes.iter().map(|_| Vec::new()).collect();
        for _ in 0..args.repeat.max(1) {
            let out = exec::run(
                Command::new(&native).args([kernel, threads.as_str()]),
                crate::RUN_TIMEOUT,
            )?;
            let (ns, check) = parse(&out, &native)?;
            native_ns.push(ns);
            for (column, &mode) in columns.iter_mut().zip(&modes) {
                column.push(measure_once(&suite, &wasm, mode, kernel, &threads, &check)?);
            }
        }
        let mut line = format!("{kernel:<10} {:>8.2}", median(&native_ns) / 1e6);
        let local: Option<Vec<f64>> = columns[0].iter().map(Measured::nanos).collect();
        for (index, column) in columns.iter().enumerate() {
            let baseline = match index {
                0 => Some(native_ns.clone()),
                _ => local.clone(),
            };
            let width = if index == 0 { 12 } else { 10 };
            let times: Option<Vec<f64>> = column.iter().map(Measured::nanos).collect();
            match (times, baseline) {
                (Some(times), Some(baseline)) => {
                    let ratios: Vec<f64> =
                        times.iter().zip(&baseline).map(|(t, b)| t / b).collect();
                    if index == 0 {
                        let worst = ratios.iter().copied().fold(f64::MIN, f64::max);
                        worst_local.push(format!("{kernel} {worst:.2}x"));
                    }
                    line += &format!(
                        " {:>width$.2} ({:>5.2}x)",
                        median(&times) / 1e6,
                        median(&ratios),
                        width = width
                    );
                }
                _ => line += &format!(" {:>width$}", "refused", width = width + 9),
            }
        }
        println!("{line}");
    }
    println!("refused: chain mode ended the kernel with a clear message (e.g. an ordered loop)");
    println!(
        "weft local / native, the worst of the {} runs: {}",
        args.repeat.max(1),
        worst_local.join(", ")
    );
    if args.threads > 1 {
        task_speedup(&suite, &wasm, &native, &threads, args.repeat)?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The task-parallel kernel on one thread against the team size, natively
/// and in local mode: whether tasks run in parallel, as a ratio of medians.
fn task_speedup(
    suite: &Suite,
    wasm: &Path,
    native: &Path,
    threads: &str,
    repeat: u32,
) -> anyhow::Result<()> {
    let native_at = |n: &str| {
        median_of_runs(repeat, || {
            let out = exec::run(
                Command::new(native).args([TASK_KERNEL, n]),
                crate::RUN_TIMEOUT,
            )?;
            parse(&out, native)
        })
    };
    let (native_one, check) = native_at("1")?;
    let (native_team, _) = native_at(threads)?;
    let weft_at = |n: &str| measure(suite, wasm, Mode::Local, TASK_KERNEL, n, repeat, &check);
    let (Measured::Nanos(weft_one), Measured::Nanos(weft_team)) =
        (weft_at("1")?, weft_at(threads)?)
    else {
        bail!("{TASK_KERNEL} was refused in local mode");
    };
    println!(
        "{TASK_KERNEL} speed-up, 1 thread / {threads} threads (medians): native {:.2}x, weft local {:.2}x",
        native_one / native_team,
        weft_one / weft_team
    );
    // On one thread tasks run at once, without the queue: this ratio is
    // the compiled code's (wasm through cranelift against gcc -O2).
    println!(
        "{TASK_KERNEL} on 1 thread, weft local / native: {:.2}x (compiled code, no task queue)",
        weft_one / native_one
    );
    Ok(())
}

impl Measured {
    fn nanos(&self) -> Option<f64> {
        match self {
            Self::Nanos(ns) => Some(*ns),
            Self::Refused => None,
        }
    }
}

/// The median of `values` (not empty).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// One run of the kernel in `mode`, checked against the native checksum.
fn measure_once(
    suite: &Suite,
    wasm: &Path,
    mode: Mode,
    kernel: &str,
    threads: &str,
    check: &str,
) -> anyhow::Result<Measured> {
    let args = [kernel.to_string(), threads.to_string()];
    let out = suite.run_weft(wasm, mode, &[], &args)?;
    if out.timed_out {
        bail!("{kernel} in {mode} did not finish within the run time limit");
    }
    if mode != Mode::Local && out.code != Some(0) && out.stderr.contains("chain mode") {
        return Ok(Measured::Refused);
    }
    let (ns, got) = parse(&out, wasm)?;
    if got != check {
        bail!("{kernel} in {mode} printed checksum {got}, natively {check}");
    }
    Ok(Measured::Nanos(ns))
}

/// Runs the kernel `repeat` times in `mode`; the median time, after
/// checking that every run printed the native build's checksum.
fn measure(
    suite: &Suite,
    wasm: &Path,
    mode: Mode,
    kernel: &str,
    threads: &str,
    repeat: u32,
    check: &str,
) -> anyhow::Result<Measured> {
    let mut times = Vec::new();
    for _ in 0..repeat.max(1) {
        match measure_once(suite, wasm, mode, kernel, threads, check)? {
            Measured::Nanos(ns) => times.push(ns),
            Measured::Refused => return Ok(Measured::Refused),
        }
    }
    Ok(Measured::Nanos(median(&times)))
}

fn median_of_runs(
    repeat: u32,
    mut run: impl FnMut() -> anyhow::Result<(f64, String)>,
) -> anyhow::Result<(f64, String)> {
    let mut times = Vec::new();
    let mut check = String::new();
    for _ in 0..repeat.max(1) {
        let (ns, c) = run()?;
        times.push(ns);
        check = c;
    }
    Ok((median(&times), check))
}

/// `elapsed_ns` and `check` from a benchmark program's output.
pub(crate) fn parse(out: &exec::Outcome, program: &Path) -> anyhow::Result<(f64, String)> {
    if out.code != Some(0) {
        bail!(
            "{} failed ({:?}): {}",
            program.display(),
            out.code,
            out.stderr
        );
    }
    let field = |key: &str| {
        out.stdout
            .lines()
            .find_map(|line| line.strip_prefix(key).map(str::trim))
    };
    match (field("elapsed_ns"), field("check")) {
        (Some(ns), Some(check)) => Ok((ns.parse()?, check.to_string())),
        _ => bail!(
            "no timing in {}'s output {:?}",
            program.display(),
            out.stdout
        ),
    }
}
