//! `weft bench memory`: chain mode's peak memory against local mode's,
//! both measured in the same run (peak resident set of the `weft run`
//! process, from the kernel's accounting of the finished child).
//!
//! - `memory_cap.c`: two threads taking a lock around each 1 MiB `malloc`
//!   until the memory is full (a sync point per block), under several
//!   `--max-memory` caps;
//! - the `rust_crates` conformance case (rayon and crossbeam, cargo's
//!   default release profile).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use weft_conformance::{Suite, root};

#[derive(Debug, clap::Args)]
pub struct MemoryBenchArgs {
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Where guest builds go.
    #[arg(long, default_value = "target/weft-guests")]
    pub out_dir: PathBuf,
}

/// Peak RSS in bytes of `weft run OPTIONS WASM`, which must succeed.
fn peak_rss(weft: &Path, options: &[&str], wasm: &Path) -> anyhow::Result<u64> {
    let child = Command::new(weft)
        .arg("run")
        .args(options)
        .arg(wasm)
        .env_remove("THREAD_MODE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting weft run")?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not waited for yet; `status` and
    // `usage` outlive the call. `child` is never waited for afterwards.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid {
        bail!("waiting for weft run: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!(
            "weft run {options:?} {} failed ({status:#x})",
            wasm.display()
        );
    }
    // Linux reports kilobytes.
    Ok(usage.ru_maxrss as u64 * 1024)
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

pub fn main(args: MemoryBenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let weft = std::env::current_exe()?;
    let suite = Suite::new(&args.out_dir, &weft);
    let memory_cap = suite.build_c_wasm(
        &root().join("../cli/tests/guests/memory_cap.c"),
        "bench_memory_cap",
    )?;
    let (rust_crates, _) =
        suite.build_rust_crate(&root().join("rust/rust_crates"), "rust_crates")?;
    let mut cases: Vec<(String, PathBuf, Vec<&str>)> = ["16M", "64M", "128M"]
        .into_iter()
        .map(|cap| {
            (
                format!("memory_cap --max-memory {cap}"),
                memory_cap.clone(),
                vec!["--max-memory", cap],
            )
        })
        .collect();
    cases.push(("rust_crates".into(), rust_crates, vec![]));
    println!(
        "peak RSS of weft run, median of {} runs:",
        args.repeat.max(1)
    );
    for (name, wasm, options) in &cases {
        let mut local = Vec::new();
        let mut chain = Vec::new();
        for _ in 0..args.repeat.max(1) {
            local.push(peak_rss(&weft, options, wasm)?);
            let mut chained = vec!["--thread-mode", "chain"];
            chained.extend(options);
            chain.push(peak_rss(&weft, &chained, wasm)?);
        }
        let (local, chain) = (median(local), median(chain));
        println!(
            "  {name}: local {} MB, chain {} MB, chain/local {:.2}",
            local >> 20,
            chain >> 20,
            chain as f64 / local as f64
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
