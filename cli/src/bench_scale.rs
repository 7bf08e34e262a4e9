//! `weft bench scale`: whether more hosts make chain mode faster.
//!
//! The kernels of `bench/scale.c` (2 threads each) run natively, in local
//! mode and in chain mode on one host, every process pinned to one core,
//! then in chain mode on 2 hosts: the home `weft run` on one core and a
//! `weft serve` worker on another, one thread each (3 and 4 hosts too when
//! there are cores for them, with as many threads). The table shows the
//! medians of each kernel's own timing of its parallel part, and the
//! speedup of 2 hosts over local mode on one core, next to its goal. Every
//! run must print the native build's `check` line, and `--cluster-stats`
//! says how many threads ran on peers.
//!
//! `--netem-delay-ms` adds a 2-host column with that delay on loopback, in
//! a network namespace made for it.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use weft_conformance::{Suite, exec, root};

#[derive(Debug, clap::Args)]
pub struct ScaleBenchArgs {
    /// Runs of each measurement; the median is shown.
    #[arg(long, default_value_t = 5)]
    pub repeat: u32,
    /// Where guest and native builds, and the cluster's certificates, go.
    #[arg(long, default_value = "target/weft-guests")]
    pub out_dir: PathBuf,
    /// Also measure 2 hosts with this delay added to loopback (both ways),
    /// in a network namespace made for it (needs CAP_NET_ADMIN and tc's
    /// netem); skipped with a line saying why where that is not possible.
    #[arg(long)]
    pub netem_delay_ms: Option<u32>,
}

/// What a kernel must reach on 2 hosts.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// Local mode on one core / chain mode on 2 hosts, at least.
    Speedup(f64),
    /// Microseconds per operation (named), at most.
    Micros(f64, &'static str),
    None,
}

#[derive(Debug)]
struct Kernel {
    name: &'static str,
    label: &'static str,
    goal: Goal,
}

const KERNELS: &[Kernel] = &[
    Kernel {
        name: "primes",
        label: "primes, no sync",
        goal: Goal::Speedup(1.8),
    },
    Kernel {
        name: "primes_lock",
        label: "primes, 1 lock/thread",
        goal: Goal::Speedup(1.8),
    },
    Kernel {
        name: "stencil",
        label: "omp stencil",
        goal: Goal::Speedup(1.5),
    },
    Kernel {
        name: "dgemm",
        label: "omp dgemm",
        goal: Goal::Speedup(1.7),
    },
    Kernel {
        name: "reduce",
        label: "omp reduction",
        goal: Goal::None,
    },
    Kernel {
        name: "counter",
        label: "mutex counter",
        goal: Goal::None,
    },
];

/// Kernels that print `ops`: shown in microseconds per operation.
const LATENCIES: &[Kernel] = &[
    Kernel {
        name: "handoff",
        label: "mutex handoff",
        goal: Goal::Micros(150.0, "handoff"),
    },
    Kernel {
        name: "barrier",
        label: "barrier",
        goal: Goal::Micros(200.0, "barrier"),
    },
];

/// One column of the table: how the kernels run.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    Native,
    Local,
    /// Chain mode on `hosts` hosts (home and `hosts - 1` workers), with
    /// `delay_ms` on loopback when set.
    Chain {
        hosts: usize,
        delay_ms: Option<u32>,
    },
}

impl Column {
    fn title(&self) -> String {
        match self {
            Column::Native => "native 1 core".into(),
            Column::Local => "local 1 core".into(),
            Column::Chain {
                hosts: 1,
                delay_ms: None,
            } => "chain 1 host".into(),
            Column::Chain {
                hosts,
                delay_ms: None,
            } => format!("chain {hosts} hosts"),
            Column::Chain {
                hosts,
                delay_ms: Some(ms),
            } => format!("{hosts} hosts +{ms}ms"),
        }
    }

    /// Threads of the program: one per host, 2 on one core.
    fn threads(&self) -> usize {
        match self {
            Column::Chain { hosts, .. } => (*hosts).max(2),
            _ => 2,
        }
    }

    fn peers(&self) -> usize {
        match self {
            Column::Chain { hosts, .. } => hosts - 1,
            _ => 0,
        }
    }
}

/// What one run printed.
#[derive(Debug)]
struct Sample {
    ns: f64,
    ops: Option<f64>,
    check: String,
    /// Chained threads that ran on peers, and all chained threads.
    on_peers: Option<(u64, u64)>,
    taken_back: u64,
}

/// A column's measurements of one kernel, or why it failed.
#[derive(Debug, Default)]
struct Cell {
    samples: Vec<Sample>,
    failure: Option<String>,
}

impl Cell {
    fn median_ns(&self) -> Option<f64> {
        if self.failure.is_some() || self.samples.is_empty() {
            return None;
        }
        let mut ns: Vec<f64> = self.samples.iter().map(|s| s.ns).collect();
        ns.sort_by(f64::total_cmp);
        Some(ns[ns.len() / 2])
    }

    /// Median microseconds per operation.
    fn median_op_us(&self) -> Option<f64> {
        let ops = self.samples.first()?.ops?;
        Some(self.median_ns()? / 1e3 / ops)
    }

    /// "peers/all" threads, the range over the runs when they differ.
    fn placement(&self) -> String {
        let counts: Vec<(u64, u64)> = self.samples.iter().filter_map(|s| s.on_peers).collect();
        let (Some(low), Some(high)) = (
            counts.iter().min_by_key(|c| c.0),
            counts.iter().max_by_key(|c| c.0),
        ) else {
            return "-".into();
        };
        let back: u64 = self.samples.iter().map(|s| s.taken_back).sum();
        let mut text = if low.0 == high.0 {
            format!("{}/{}", low.0, low.1)
        } else {
            format!("{}..{}/{}", low.0, high.0, high.1)
        };
        if back > 0 {
            text += &format!(" ({back} back)");
        }
        text
    }
}

pub fn main(args: ScaleBenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let weft = std::env::current_exe()?;
    let suite = Suite::new(&args.out_dir, &weft);
    let (wasm, native) = suite.build_c_with(
        &root().join("bench/scale.c"),
        "bench_scale",
        &["-fopenmp".to_string()],
    )?;
    let cpus = allowed_cpus()?;
    let load_before = load_average();
    let hosts = cpus.len().min(4);
    let mut notes = Vec::new();

    let mut columns = vec![
        Column::Native,
        Column::Local,
        Column::Chain {
            hosts: 1,
            delay_ms: None,
        },
    ];
    columns.extend((2..=hosts).map(|hosts| Column::Chain {
        hosts,
        delay_ms: None,
    }));
    if hosts < 2 {
        notes.push("only one core may be used: no column with more hosts".to_string());
    }
    let dir = args
        .out_dir
        .join(format!("scale-cluster-{}", std::process::id()));
    let workers = if hosts >= 2 {
        Some(Workers::start(&weft, &dir, &cpus[1..hosts], None)?)
    } else {
        None
    };
    // Declared before its workers, so they are gone when it is deleted.
    let mut netns = None;
    let mut delayed_workers = None;
    if let Some(ms) = args.netem_delay_ms {
        match (hosts >= 2).then(|| Netns::create(ms)) {
            None => println!("netem: skipped: no second core for a worker"),
            Some(Err(why)) => println!("netem: skipped: {why}"),
            Some(Ok(ns)) => {
                let dir = args
                    .out_dir
                    .join(format!("scale-netem-{}", std::process::id()));
                delayed_workers = Some(Workers::start(&weft, &dir, &cpus[1..2], Some(&ns.name))?);
                netns = Some(ns);
                columns.push(Column::Chain {
                    hosts: 2,
                    delay_ms: Some(ms),
                });
            }
        }
    }
    let bench = Bench {
        weft: &weft,
        wasm: &wasm,
        native: &native,
        cpu: cpus[0],
        workers: workers.as_ref(),
        delayed: delayed_workers
            .as_ref()
            .zip(netns.as_ref().map(|ns| ns.name.as_str())),
    };

    // The first call of a module on a worker compiles it there; local
    // runs fill the compile cache at home.
    for column in &columns[1..] {
        match bench.run(column, "warmup") {
            Ok(sample) if column.peers() > 0 && sample.on_peers.is_none_or(|p| p.0 == 0) => notes
                .push(format!(
                    "warm-up in `{}`: no thread ran on a peer",
                    column.title()
                )),
            Ok(_) => {}
            Err(e) => notes.push(format!("warm-up in `{}`: {e:#}", column.title())),
        }
    }

    let kernels: Vec<&Kernel> = KERNELS.iter().chain(LATENCIES).collect();
    let mut cells: Vec<Vec<Cell>> = kernels
        .iter()
        .map(|_| columns.iter().map(|_| Cell::default()).collect())
        .collect();
    let mut reference: Vec<Option<String>> = vec![None; kernels.len()];
    // Rounds over every kernel and column, so that a slow spell of the
    // machine touches all of them alike.
    for _ in 0..args.repeat.max(1) {
        for (k, kernel) in kernels.iter().enumerate() {
            for (c, column) in columns.iter().enumerate() {
                let cell = &mut cells[k][c];
                if cell.failure.is_some() {
                    continue;
                }
                match bench.run(column, kernel.name) {
                    Ok(sample) => {
                        if *column == Column::Native {
                            reference[k] = Some(sample.check.clone());
                        }
                        match &reference[k] {
                            Some(native) if *native == sample.check => cell.samples.push(sample),
                            Some(native) => {
                                cell.failure = Some(format!(
                                    "printed check {}, natively {native}",
                                    sample.check
                                ))
                            }
                            None => cell.failure = Some("no native check to compare".into()),
                        }
                    }
                    Err(e) => cell.failure = Some(format!("{e:#}")),
                }
            }
        }
    }

    print_tables(&columns, &kernels, &cells, args.repeat.max(1));
    // Other processes on these cores slow the pinned ones down.
    println!(
        "load average (1 min): {} before, {} after",
        load_before,
        load_average()
    );
    for (k, kernel) in kernels.iter().enumerate() {
        for (c, column) in columns.iter().enumerate() {
            let cell = &cells[k][c];
            if let Some(why) = &cell.failure {
                notes.push(format!(
                    "{} in `{}` failed: {why}",
                    kernel.name,
                    column.title()
                ));
            } else if column.peers() > 0
                && cell
                    .samples
                    .iter()
                    .any(|s| s.on_peers.is_none_or(|p| p.0 == 0))
            {
                notes.push(format!(
                    "{} in `{}`: a run had no thread on a peer",
                    kernel.name,
                    column.title()
                ));
            }
        }
    }
    for note in &notes {
        println!("note: {note}");
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn print_tables(columns: &[Column], kernels: &[&Kernel], cells: &[Vec<Cell>], repeat: u32) {
    let multi: Vec<usize> = (0..columns.len())
        .filter(|&c| matches!(columns[c], Column::Chain { hosts, delay_ms: None } if hosts >= 2))
        .collect();
    let local = 1;
    let two = multi.first().copied();
    let head = |first: &str| {
        let mut line = format!("{first:<22}");
        for column in columns {
            line += &format!(" {:>14}", column.title());
        }
        line
    };
    // The goal, whether the 2-host value meets it, and where threads ran.
    let tail = |goal_met: String, row: &[Cell]| {
        let placements: Vec<String> = multi.iter().map(|&c| row[c].placement()).collect();
        format!("  {goal_met:<14} {}", placements.join(" "))
    };
    let is_latency = |kernel: &Kernel| matches!(kernel.goal, Goal::Micros(..));

    println!(
        "scale: median of {repeat} runs; one core per process (native, local, chain 1 host: 2 threads on one core; N hosts: N threads, one per host); on peers: chained threads that ran on peers / all"
    );
    let mut line = head("kernel (ms)");
    for &c in &multi {
        line += &format!(" {:>9}", format!("x{}h", columns[c].peers() + 1));
    }
    println!("{line}  {:<14} on peers", "goal (x2h)");
    for (k, kernel) in kernels.iter().enumerate() {
        if is_latency(kernel) {
            continue;
        }
        let row = &cells[k];
        let mut line = format!("{:<22}", kernel.label);
        for cell in row {
            line += &format!(" {:>14}", show(cell.median_ns().map(|ns| ns / 1e6), 1));
        }
        let speedup = |c: usize| Some(row[local].median_ns()? / row[c].median_ns()?);
        for &c in &multi {
            let x = speedup(c);
            let decimals = if x.is_some_and(|x| x < 0.1) { 4 } else { 2 };
            line += &format!(" {:>9}", show(x, decimals) + "x");
        }
        println!(
            "{line}{}",
            tail(goal(kernel.goal, two.and_then(speedup)), row)
        );
    }

    println!();
    println!(
        "{}  {:<14} on peers",
        head("latency (us per op)"),
        "goal (2h)"
    );
    for (k, kernel) in kernels.iter().enumerate() {
        if !is_latency(kernel) {
            continue;
        }
        let row = &cells[k];
        let mut line = format!("{:<22}", kernel.label);
        for cell in row {
            line += &format!(" {:>14}", show(cell.median_op_us(), 2));
        }
        let us = two.and_then(|c| row[c].median_op_us());
        println!("{line}{}", tail(goal(kernel.goal, us), row));
    }
    for (k, kernel) in kernels.iter().enumerate() {
        if let (Goal::Micros(limit, op), Some(us)) =
            (kernel.goal, two.and_then(|c| cells[k][c].median_op_us()))
        {
            println!(
                "{} between 2 threads on 2 hosts: {us:.1} us per {op} (goal <= {limit:.0} us)",
                kernel.label
            );
        }
    }
}

fn show(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "failed".into(), |v| format!("{v:.decimals$}"))
}

/// The goal and whether `value` meets it.
fn goal(goal: Goal, value: Option<f64>) -> String {
    let (text, met) = match goal {
        Goal::Speedup(x) => (format!(">= {x}x"), value.map(|v| v >= x)),
        Goal::Micros(us, _) => (format!("<= {us:.0} us"), value.map(|v| v <= us)),
        Goal::None => return "-".into(),
    };
    match met {
        Some(true) => format!("{text} met"),
        Some(false) => format!("{text} missed"),
        None => text,
    }
}

/// How to run the kernels in each column.
struct Bench<'a> {
    weft: &'a Path,
    wasm: &'a Path,
    native: &'a Path,
    /// The core of the home process (and of the one-core columns).
    cpu: usize,
    workers: Option<&'a Workers>,
    /// Workers inside the delayed network namespace, and its name.
    delayed: Option<(&'a Workers, &'a str)>,
}

impl Bench<'_> {
    fn run(&self, column: &Column, kernel: &str) -> anyhow::Result<Sample> {
        let threads = column.threads().to_string();
        let mut cmd = match column {
            Column::Native => pinned(self.cpu, None, self.native),
            Column::Local => {
                let mut cmd = pinned(self.cpu, None, self.weft);
                cmd.args(["run", "--thread-mode", "local"]);
                cmd
            }
            Column::Chain { hosts: 1, .. } => {
                let mut cmd = pinned(self.cpu, None, self.weft);
                cmd.args(["run", "--thread-mode", "chain", "--slots", &threads]);
                cmd
            }
            Column::Chain { hosts, delay_ms } => {
                let (workers, netns) = match delay_ms {
                    None => (self.workers.context("no workers")?, None),
                    Some(_) => self
                        .delayed
                        .map(|(w, ns)| (w, Some(ns)))
                        .context("no delayed workers")?,
                };
                let mut cmd = pinned(self.cpu, netns, self.weft);
                // `peers` placement: the first threads go to the workers
                // (one slot each) and the last runs at home; an OpenMP
                // team's master is the main thread, at home. With `pack`,
                // a thread that blocks before the next one starts would
                // give that one its home slot.
                cmd.args(["run", "--thread-mode", "chain", "--slots", "1"])
                    .args(["--placement", "peers", "--peer-slots", "1"])
                    .args(workers.run_options(hosts - 1))
                    .arg("--cluster-stats");
                cmd
            }
        };
        if *column != Column::Native {
            cmd.arg(self.wasm).env_remove("THREAD_MODE");
        }
        cmd.args([kernel, threads.as_str()]);
        let out = exec::run(&mut cmd, weft_conformance::RUN_TIMEOUT)
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        if out.timed_out {
            bail!(
                "no end within {:?}; stderr: {}",
                weft_conformance::RUN_TIMEOUT,
                out.stderr.trim()
            );
        }
        if out.code != Some(0) {
            bail!("exit {:?}: {}", out.code, out.stderr.trim());
        }
        let field = |key: &str| {
            out.stdout.lines().find_map(|line| {
                let (k, v) = line.split_once(' ')?;
                (k == key).then(|| v.trim().to_string())
            })
        };
        let number = |key: &str| -> anyhow::Result<Option<f64>> {
            field(key)
                .map(|v| v.parse().with_context(|| format!("`{key} {v}`")))
                .transpose()
        };
        let stats = out
            .stderr
            .lines()
            .find_map(|line| line.strip_prefix("weft: cluster: "));
        Ok(Sample {
            ns: number("elapsed_ns")?.with_context(|| format!("no time in {:?}", out.stdout))?,
            ops: number("ops")?,
            check: field("check").with_context(|| format!("no check in {:?}", out.stdout))?,
            on_peers: stats.and_then(|s| {
                let remote = leading_number(s)?;
                let home = leading_number(s.split_once(" on peers, ")?.1)?;
                Some((remote, remote + home))
            }),
            taken_back: stats
                .and_then(|s| leading_number(s.split_once(" at home (")?.1))
                .unwrap_or(0),
        })
    }
}

/// The 1-minute load average, as the kernel shows it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn leading_number(text: &str) -> Option<u64> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// A command for `program` that runs on `cpu` only, inside network
/// namespace `netns` when given.
fn pinned(cpu: usize, netns: Option<&str>, program: &Path) -> Command {
    let mut cmd = match netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns]).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    // SAFETY: the closure runs in the forked child before exec and only
    // makes a system call on a set on its stack: no allocation, no lock.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    // SAFETY: the set is a plain bit array that the kernel fills in.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect();
        if cpus.is_empty() {
            bail!("no CPU in this process's affinity mask");
        }
        Ok(cpus)
    }
}

/// How long a helper command (`weft cluster`, `ip`, `tc`) may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a helper command to its end; its stderr on failure.
fn tool(cmd: &mut Command) -> Result<(), String> {
    let line = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    match exec::run(cmd, TOOL_TIMEOUT) {
        Ok(out) if out.code == Some(0) => Ok(()),
        Ok(out) if out.timed_out => Err(format!("`{line}` did not end")),
        Ok(out) => Err(format!("`{line}` failed: {}", out.stderr.trim())),
        Err(e) => Err(format!("`{line}` could not start: {e}")),
    }
}

/// `weft serve` workers, one per core, each with one slot, in a cluster of
/// their own; killed and waited for when dropped.
struct Workers {
    dir: PathBuf,
    /// `NAME@ADDR` of each.
    peers: Vec<String>,
    children: Vec<(Child, Option<ChildStdin>)>,
}

impl Workers {
    fn start(weft: &Path, dir: &Path, cpus: &[usize], netns: Option<&str>) -> anyhow::Result<Self> {
        let _ = std::fs::remove_dir_all(dir);
        let mut workers = Self {
            dir: dir.to_path_buf(),
            peers: Vec::new(),
            children: Vec::new(),
        };
        let add = |args: &[&str]| -> anyhow::Result<()> {
            let mut cmd = Command::new(weft);
            cmd.arg("cluster").arg(args[0]).arg(dir).args(&args[1..]);
            tool(&mut cmd).map_err(anyhow::Error::msg)
        };
        add(&["init"])?;
        add(&["add-node", "main"])?;
        for (i, &cpu) in cpus.iter().enumerate() {
            let name = format!("w{}", i + 1);
            add(&["add-node", &name])?;
            let mut cmd = pinned(cpu, netns, weft);
            cmd.args(["serve", "--listen", "127.0.0.1:0", "--exit-with-stdin"])
                .arg("--cluster")
                .arg(dir)
                .args(["--node", &name, "--slots", "1"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().context("starting `weft serve`")?;
            let stdin = child.stdin.take();
            let stderr = child.stderr.take().context("piped stderr")?;
            workers.children.push((child, stdin));
            let (first, addr) = mpsc::channel();
            let prefix = name.clone();
            // Its first line has the address; later ones (e.g. with
            // WEFT_LOG) go to this stderr, so the pipe never fills up.
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stderr).lines();
                let _ = first.send(lines.next().and_then(Result::ok).unwrap_or_default());
                for line in lines.map_while(Result::ok) {
                    eprintln!("weft serve {prefix}: {line}");
                }
            });
            let line = addr
                .recv_timeout(TOOL_TIMEOUT)
                .context("`weft serve` did not say its address")?;
            let Some(addr) = line
                .split_whitespace()
                .find(|word| word.starts_with("127.0.0.1:"))
            else {
                bail!("`weft serve` did not start: {line}");
            };
            workers.peers.push(format!("{name}@{addr}"));
        }
        Ok(workers)
    }

    /// `weft run` options for home with the first `count` workers.
    fn run_options(&self, count: usize) -> Vec<String> {
        vec![
            "--peers".into(),
            self.peers[..count].join(","),
            "--cluster".into(),
            self.dir.display().to_string(),
            "--node".into(),
            "main".into(),
        ]
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (child, stdin) in &mut self.children {
            drop(stdin.take());
            let _ = child.kill();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A network namespace with `delay` added to its loopback; deleted when
/// dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn create(delay_ms: u32) -> Result<Self, String> {
        let name = format!("weft-scale-{}", std::process::id());
        tool(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Self { name };
        let in_ns = |args: &[&str]| {
            tool(
                Command::new("ip")
                    .args(["netns", "exec", &ns.name])
                    .args(args),
            )
        };
        in_ns(&["ip", "link", "set", "lo", "up"])?;
        in_ns(&[
            "tc",
            "qdisc",
            "add",
            "dev",
            "lo",
            "root",
            "netem",
            "delay",
            &format!("{delay_ms}ms"),
        ])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = tool(Command::new("ip").args(["netns", "delete", &self.name]));
    }
}
