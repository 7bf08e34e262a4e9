//! The `weft` command line.

mod bench_cluster;
mod bench_http;
mod bench_memory;
mod bench_scale;
mod bench_snapshot;
mod bench_transfer;
mod serve_http;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::io::{Read as _, Write as _};
use std::sync::Arc;

use weft_runtime::placement::Placer;
use weft_runtime::trace::Tracer;

use weft_runtime::functions::Functions;
use weft_runtime::state::StateHost;
use weft_runtime::{OnEnd, Outcome, Program, StartConfig, ThreadMode};

#[derive(Debug, Parser)]
#[command(
    name = "weft",
    version,
    about = "Run multi-threaded WebAssembly programs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a WASI program (a core module built for wasm32-wasip1-threads).
    Run(RunArgs),
    /// Invoke a registered function with input bytes; prints its output.
    Invoke(InvokeArgs),
    /// Manage the registered functions.
    #[command(subcommand)]
    Fn(FnCommand),
    /// Serve chained threads for other hosts (a worker of a cluster,
    /// `--listen`), or registered functions over HTTP (`--http`).
    Serve(ServeArgs),
    /// Manage a cluster's certificates (mutual TLS between hosts).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Build and run the conformance cases; print a table and a summary line.
    Conformance(weft_conformance::cli::ConformanceArgs),
    /// Benchmarks, each with ratios against a baseline measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Thread creation latency and parallel speedup, against native builds.
    Threads(weft_conformance::bench::BenchArgs),
    /// Snapshot capture and restore, against plain copies.
    Snapshot(bench_snapshot::SnapshotBenchArgs),
    /// Chained threads on another host over QUIC, against the home host
    /// and against plain quinn transfers.
    Cluster(bench_cluster::ClusterBenchArgs),
    /// OpenMP kernels against gcc and libgomp, and chain mode against local.
    Openmp(weft_conformance::bench_openmp::OpenmpBenchArgs),
    /// Chain mode's mutexes, barriers and condition variables against
    /// local mode.
    Sync(weft_conformance::bench_sync::SyncBenchArgs),
    /// Chain mode on 1, 2 (and more) hosts, one core each, against local
    /// mode on one core: speedups and sync latencies.
    Scale(bench_scale::ScaleBenchArgs),
    /// The HTTP front under wrk (a trivial and a threaded function),
    /// against `weft invoke` per call.
    Http(bench_http::HttpBenchArgs),
    /// Chain mode's peak memory against local mode's.
    Memory(bench_memory::MemoryBenchArgs),
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Create a cluster CA in DIR (`ca.pem`, `ca.key`).
    Init { dir: PathBuf },
    /// Sign a certificate for node NAME with the CA in DIR (`NAME.pem`,
    /// `NAME.key`).
    AddNode { dir: PathBuf, name: String },
}

#[derive(Debug, Subcommand)]
enum FnCommand {
    /// Register PROGRAM under NAME (replacing an earlier one).
    Add {
        name: String,
        program: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// List the registered functions.
    List {
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

#[derive(Debug, clap::Args)]
struct StateArgs {
    /// Where the global state tier lives: `redis://HOST:PORT[/DB]`
    /// (default: embedded in this process).
    #[arg(long = "state", env = "WEFT_STATE")]
    url: Option<String>,
}

impl StateArgs {
    fn host(&self) -> anyhow::Result<Arc<StateHost>> {
        Ok(Arc::new(match &self.url {
            None => StateHost::default(),
            Some(url) => StateHost::new(
                Arc::new(weft_runtime::redis::RedisGlobal::new(url)?),
                weft_runtime::state::StateLimits::default(),
            ),
        }))
    }
}

#[derive(Debug, clap::Args)]
struct RegistryArgs {
    /// Folder of registered functions (`NAME.wasm` files).
    #[arg(
        long = "functions",
        env = "WEFT_FUNCTIONS",
        default_value = "weft-functions"
    )]
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct InvokeArgs {
    /// The function's name.
    name: String,
    /// Input bytes: a file, or `-` for stdin (default: none); at most
    /// what a call between functions may carry (64 MiB).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Wall-clock limit, e.g. 10s, 500ms, 2m: past it the function's
    /// process ends with exit code 124.
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<TimeLimit>,
    /// Cap on each memory and table of the function and of the functions
    /// it calls, e.g. 16M or 1G (default: their own maxima).
    #[arg(long, value_parser = weft_serve::options::parse_size)]
    max_memory: Option<u64>,
    /// Threads (besides main) each program may have live at once.
    #[arg(long, default_value_t = 1024)]
    max_threads: u32,
    /// How threads run: `local` (shared memory) or `chain` (snapshots).
    #[arg(long, env = "THREAD_MODE", default_value = "local")]
    thread_mode: ThreadMode,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    state: StateArgs,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (UDP), e.g. 0.0.0.0:7300; port 0 picks one
    /// (printed on stderr).
    #[arg(long, required_unless_present = "http", conflicts_with = "http", requires_all = ["cluster", "node"])]
    listen: Option<std::net::SocketAddr>,
    /// The cluster's folder (`weft cluster init`).
    #[arg(long)]
    cluster: Option<PathBuf>,
    /// This node's name in the cluster (`weft cluster add-node`).
    #[arg(long)]
    node: Option<String>,
    /// Chained threads run at once; more calls are refused as busy and
    /// placed elsewhere (default: one per CPU core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    slots: Option<u32>,
    /// Memory the worker keeps between calls, e.g. 512M or 2G: base
    /// snapshots, compiled programs and their warm memories; past it the
    /// least recently used go (running calls are not counted).
    #[arg(long, value_parser = weft_serve::options::parse_size, default_value = "1G")]
    worker_memory: u64,
    /// Longest a call may run here, e.g. 10m: past it its threads stop and
    /// its home runs the thread elsewhere or itself (default: no limit).
    #[arg(long, value_parser = parse_duration)]
    call_timeout: Option<TimeLimit>,
    /// Compile every guest with epoch checks, so a cancelled call's thread
    /// stops anywhere within 10 ms. By default guest code runs without
    /// them (1.2-1.4x faster): a cancelled thread stops at its next host
    /// call, and one that computes on without any keeps its slot until it
    /// ends (said on stderr; calls run with the checks until then).
    #[arg(long)]
    always_stoppable: bool,
    /// Exit when stdin closes (for a parent that starts workers and must
    /// not leave them behind).
    #[arg(long, hide = true)]
    exit_with_stdin: bool,
    #[command(flatten)]
    http: serve_http::HttpArgs,
}

#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// Chain mode over many hosts: peers (`weft serve`) as ADDR or
    /// NAME@ADDR, comma-separated.
    #[arg(long, value_delimiter = ',', requires = "cluster")]
    peers: Vec<weft_cluster::PeerSpec>,
    /// The cluster's folder, with this host's certificate (`--node`).
    #[arg(long)]
    cluster: Option<PathBuf>,
    /// This host's node name in the cluster.
    #[arg(long, default_value = "main")]
    node: String,
    /// Chain mode on HOSTS hosts in this process (this one and HOSTS-1
    /// workers) talking QUIC on loopback.
    #[arg(long, conflicts_with = "peers", value_parser = clap::value_parser!(u32).range(1..=64))]
    hosts: Option<u32>,
    /// Where chained threads go first: `pack` (here while a slot is free)
    /// or `peers`.
    #[arg(long, default_value = "pack")]
    placement: weft_cluster::Placement,
    /// Chained threads each peer runs at once (default: one per CPU core
    /// of this host).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    peer_slots: Option<u32>,
    /// At exit, print on stderr where chained threads ran and what their
    /// snapshots cost on the wire.
    #[arg(long)]
    cluster_stats: bool,
}

impl ClusterArgs {
    fn cluster(&self, mode: ThreadMode) -> anyhow::Result<Option<Arc<weft_cluster::Cluster>>> {
        if self.peers.is_empty() && self.hosts.is_none() {
            return Ok(None);
        }
        anyhow::ensure!(
            mode == ThreadMode::Chain,
            "--peers and --hosts place chained threads: use --thread-mode chain"
        );
        let slots = self.peer_slots.map_or_else(default_slots, |n| n as usize);
        let cluster = match self.hosts {
            Some(hosts) => weft_cluster::Cluster::embedded(hosts as usize, self.placement, slots)
                .context("starting the embedded hosts")?,
            None => {
                let dir = self.cluster.as_deref().context("--peers needs --cluster")?;
                let identity = weft_cluster::identity(dir, &self.node).with_context(|| {
                    format!(
                        "loading node `{}` of the cluster in `{}`",
                        self.node,
                        dir.display()
                    )
                })?;
                weft_cluster::Cluster::new(&identity, self.peers.clone(), self.placement, slots)
                    .context("starting the cluster endpoint")?
            }
        };
        Ok(Some(cluster))
    }
}

fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// How threads run: `local` (shared memory) or `chain` (snapshots).
    #[arg(long, env = "THREAD_MODE", default_value = "local")]
    thread_mode: ThreadMode,
    /// Pass an environment variable to the guest: NAME=VALUE, or NAME to
    /// pass the host's value.
    #[arg(long = "env", value_name = "NAME[=VAL]")]
    envs: Vec<String>,
    /// Preopen a host directory: HOST or HOST::GUEST.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Threads (besides main) that may be live at once; more makes
    /// `pthread_create` return EAGAIN.
    #[arg(long, default_value_t = 1024)]
    max_threads: u32,
    /// Cap on the guest's memory, e.g. 16M or 1G (default: the module's own
    /// maximum).
    #[arg(long, value_parser = weft_serve::options::parse_size)]
    max_memory: Option<u64>,
    /// Chain mode: what writes of two threads to the same bytes (outside a
    /// merge region) do: `error` ends the program, `warn` reports and goes on.
    #[arg(long, default_value = "error", value_parser = parse_conflict_policy)]
    on_conflict: weft_runtime::ConflictPolicy,
    /// Chain mode: chained threads that run at once; more wait in a queue
    /// (default: one per CPU core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    slots: Option<u32>,
    /// Wall-clock limit, e.g. 10s, 500ms, 2m: past it the program ends
    /// with exit code 124 (as `timeout(1)`), its output flushed.
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<TimeLimit>,
    /// Chain mode: warn when a chained thread has run this long without
    /// synchronising while every other thread waits (it may spin on a
    /// plain variable); `off` never warns.
    #[arg(long, default_value = "10s", value_parser = parse_stall_warning)]
    stall_warning: StallWarning,
    /// Write where the run's time goes to FILE, as Chrome trace events
    /// (open it in Perfetto or chrome://tracing): a track per thread per
    /// host, spans for threads, sync points, snapshots, merges and runs on
    /// peers.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    state: StateArgs,
    /// The program.
    program: PathBuf,
    /// Arguments passed to the program.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn parse_conflict_policy(s: &str) -> Result<weft_runtime::ConflictPolicy, String> {
    match s {
        "error" => Ok(weft_runtime::ConflictPolicy::Error),
        "warn" => Ok(weft_runtime::ConflictPolicy::Warn),
        _ => Err(format!("`{s}`: expected `error` or `warn`")),
    }
}

/// At most this many glibc malloc arenas per core. glibc makes up to 8
/// per core, one per thread that allocates while the others hold theirs:
/// a chained program's OS threads each allocating snapshot pages and
/// diffs then keep a dozen arenas' worth of freed pages (Rust cases in
/// chain mode: 48 MB peak with the default, 36-39 MB with one or two).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS_PER_CORE: usize = 1;

/// Caps glibc's malloc arenas, unless the user set them.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cap_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let arenas = i32::try_from(cores * MALLOC_ARENAS_PER_CORE).unwrap_or(i32::MAX);
    // SAFETY: mallopt only sets a malloc tunable; it is called before any
    // other thread exists, and an unknown parameter is refused, not UB.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cap_malloc_arenas() {}

fn main() -> ExitCode {
    cap_malloc_arenas();
    // Hosts in one process (`--hosts`) compile a module at once; the
    // compile cache then warns of a file another wrote first.
    let quiet = "warn,wasmtime_internal_cache=error";
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(quiet)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if std::env::var_os("WEFT_CHECK_ARGS").is_some() {
        // Checks a command line (deployment manifests are tested so)
        // without running it.
        println!("{cli:?}");
        return ExitCode::SUCCESS;
    }
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Invoke(args) => invoke(args),
        Command::Fn(command) => manage_functions(command),
        Command::Serve(args) => serve(args),
        Command::Cluster(command) => manage_cluster(command),
        Command::Conformance(args) => weft_conformance::cli::main(args),
        Command::Bench(BenchCommand::Threads(args)) => weft_conformance::bench::main(args),
        Command::Bench(BenchCommand::Snapshot(args)) => bench_snapshot::main(args),
        Command::Bench(BenchCommand::Cluster(args)) => bench_cluster::main(args),
        Command::Bench(BenchCommand::Openmp(args)) => weft_conformance::bench_openmp::main(args),
        Command::Bench(BenchCommand::Sync(args)) => weft_conformance::bench_sync::main(args),
        Command::Bench(BenchCommand::Scale(args)) => bench_scale::main(args),
        Command::Bench(BenchCommand::Http(args)) => bench_http::main(args),
        Command::Bench(BenchCommand::Memory(args)) => bench_memory::main(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "weft: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A `--timeout`: the duration and how the user wrote it.
#[derive(Debug, Clone)]
struct TimeLimit(std::time::Duration, String);

impl TimeLimit {
    /// Ends the OS process once the limit has passed, whatever the
    /// program is doing (loading included).
    fn start(&self) {
        let (limit, shown) = (self.0, self.1.clone());
        let started = std::thread::Builder::new()
            .name("weft-time-limit".into())
            .spawn(move || {
                std::thread::sleep(limit);
                exit_process(
                    weft_runtime::process::TIMEOUT_EXIT_CODE,
                    Some(&format!("time limit of {shown} reached")),
                )
            });
        if let Err(e) = started {
            exit_process(1, Some(&format!("starting the time limit's thread: {e}")));
        }
    }
}

/// Ends the OS process with `code`, stdout flushed, after `line` on
/// stderr (`weft: {line}`) if there is one. The first caller wins; a
/// later one waits for the end, so the command has one exit status and
/// one message.
fn exit_process(code: i32, line: Option<&str>) -> ! {
    static EXITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if EXITING.swap(true, std::sync::atomic::Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    let _ = std::io::stdout().flush();
    if let Some(line) = line {
        // Printing may fail (stderr closed): exit anyway.
        let _ = writeln!(std::io::stderr(), "weft: {line}");
    }
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// A `--stall-warning`: a duration, or none.
#[derive(Debug, Clone)]
struct StallWarning(Option<std::time::Duration>);

fn parse_stall_warning(s: &str) -> Result<StallWarning, weft_serve::options::ValueError> {
    if s == "off" {
        return Ok(StallWarning(None));
    }
    parse_duration(s).map(|limit| StallWarning(Some(limit.0)))
}

/// `10s`, `500ms`, `2m`, `1h`, or plain seconds.
fn parse_duration(s: &str) -> Result<TimeLimit, weft_serve::options::ValueError> {
    weft_serve::options::parse_duration(s).map(|limit| TimeLimit(limit, s.to_string()))
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if let Some(limit) = &args.timeout {
        limit.start();
    }
    let bytes = std::fs::read(&args.program)
        .with_context(|| format!("reading `{}`", args.program.display()))?;
    let engine = engine()?;
    let program = Program::load(&engine, &bytes)
        .with_context(|| format!("loading `{}`", args.program.display()))?;
    let state = args.state.host()?;
    let cluster = args.cluster.cluster(args.thread_mode)?;
    // The program's end is the command's: its other threads end with it,
    // as natively (the runtime reported the outcome already).
    let cluster_stats = args.cluster.cluster_stats;
    let ending_cluster = cluster.clone();
    let tracer = args.trace.as_ref().map(|_| Tracer::new());
    let trace = args.trace.clone().zip(tracer.clone());
    let on_end = OnEnd(Arc::new(move |outcome: &Outcome| {
        if let Some(cluster) = &ending_cluster {
            if cluster_stats {
                let _ = writeln!(std::io::stderr(), "weft: cluster: {}", cluster.stats());
            }
            cluster.close();
        }
        if let Some((path, tracer)) = &trace
            && let Err(e) = write_trace(path, tracer)
        {
            let _ = writeln!(
                std::io::stderr(),
                "weft: writing the trace `{}`: {e}",
                path.display()
            );
        }
        exit_process(outcome.exit_code(), None)
    }));

    let mut env = Vec::new();
    for spec in &args.envs {
        match spec.split_once('=') {
            Some((name, value)) => env.push((name.to_string(), value.to_string())),
            None => {
                if let Ok(value) = std::env::var(spec) {
                    env.push((spec.clone(), value));
                }
            }
        }
    }
    let dirs = args
        .dirs
        .iter()
        .map(|spec| match spec.split_once("::") {
            Some((host, guest)) => (PathBuf::from(host), guest.to_string()),
            None => (PathBuf::from(spec), spec.clone()),
        })
        .collect();
    let name = args
        .program
        .file_name()
        .map_or_else(|| "main.wasm".into(), |n| n.to_string_lossy().into_owned());
    let config = StartConfig {
        args: std::iter::once(name).chain(args.args).collect(),
        env,
        dirs,
        mode: args.thread_mode,
        max_threads: args.max_threads,
        max_memory: args.max_memory,
        inherit_stdin: true,
        on_conflict: args.on_conflict,
        slots: args.slots.map(|n| n as usize),
        state: Some(state.clone()),
        functions: Some(Functions::new(engine.clone(), args.registry.dir, state)),
        call_io: None,
        placer: cluster.map(|cluster| cluster as Arc<dyn Placer>),
        call_depth: 0,
        stall_warning: args.stall_warning.0,
        time_limit: None,
        on_end: Some(on_end),
        trace: tracer,
    };
    let process = program.start(&config).context("starting the program")?;
    // The end hook exits; this is only reached if it did not run.
    let outcome = process.run_main();
    exit_process(outcome.exit_code(), None)
}

/// Writes `tracer`'s spans to `path`.
fn write_trace(path: &std::path::Path, tracer: &Tracer) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    tracer.write_json(&mut out)?;
    out.flush()
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.exit_with_stdin {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    let (Some(listen), Some(cluster), Some(node)) = (args.listen, &args.cluster, &args.node) else {
        let addr = args
            .http
            .http
            .context("`weft serve` needs --listen or --http")?;
        return serve_http::serve_http(
            addr,
            args.http,
            args.slots,
            args.call_timeout,
            args.cluster,
            args.node,
        );
    };
    let identity = weft_cluster::identity(cluster, node).with_context(|| {
        format!(
            "loading node `{node}` of the cluster in `{}`",
            cluster.display()
        )
    })?;
    let slots = args.slots.map_or_else(default_slots, |n| n as usize);
    let engines = if args.always_stoppable {
        weft_runtime::WorkerEngines::stoppable_only()
    } else {
        weft_runtime::WorkerEngines::new()
    }
    .map_err(anyhow::Error::from)
    .context("creating the engines")?;
    let worker = weft_cluster::worker::WorkerHost::with_call_limit(
        engines,
        slots,
        args.worker_memory,
        args.call_timeout.map(|limit| limit.0),
    );
    let runtime = serving_runtime()?;
    let endpoint = {
        let _guard = runtime.enter();
        weft_transport::quic::endpoint(&identity, listen)
            .with_context(|| format!("listening on {listen}"))?
    };
    if let Some(metrics) = args.http.metrics {
        serve_http::serve_probes(&runtime, metrics, worker.clone(), slots)?;
    }
    let addr = endpoint.local_addr().context("reading the bound address")?;
    let _ = writeln!(
        std::io::stderr(),
        "weft: serving on {addr} as `{node}` ({slots} slots)"
    );
    runtime.block_on(weft_cluster::serve(endpoint, worker));
    Ok(ExitCode::SUCCESS)
}

fn engine() -> anyhow::Result<wasmtime::Engine> {
    weft_runtime::engine()
        .map_err(anyhow::Error::from)
        .context("creating the engine")
}

fn manage_cluster(command: ClusterCommand) -> anyhow::Result<ExitCode> {
    use weft_transport::quic::cluster;
    match command {
        ClusterCommand::Init { dir } => {
            cluster::init(&dir)
                .with_context(|| format!("creating a cluster in `{}`", dir.display()))?;
            println!("cluster CA created in {}", dir.display());
        }
        ClusterCommand::AddNode { dir, name } => {
            cluster::add_node(&dir, &name)
                .with_context(|| format!("adding node `{name}` to `{}`", dir.display()))?;
            println!("node `{name}` added to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn manage_functions(command: FnCommand) -> anyhow::Result<ExitCode> {
    let engine = engine()?;
    match command {
        FnCommand::Add {
            name,
            program,
            registry,
        } => {
            let functions = Functions::new(engine, registry.dir, Arc::default());
            functions.add(&name, &program)?;
            println!("registered `{name}`");
        }
        FnCommand::List { registry } => {
            let functions = Functions::new(engine, registry.dir, Arc::default());
            for name in functions.list()? {
                println!("{name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn invoke(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    if let Some(limit) = &args.timeout {
        limit.start();
    }
    let input = match &args.input {
        None => Vec::new(),
        Some(path) if path.as_os_str() == "-" => {
            read_bounded(std::io::stdin().lock()).context("reading the input from stdin")?
        }
        Some(path) => std::fs::File::open(path)
            .map_err(anyhow::Error::from)
            .and_then(read_bounded)
            .with_context(|| format!("reading the input `{}`", path.display()))?,
    };
    let functions = Functions::new(engine()?, args.registry.dir, args.state.host()?);
    let base = StartConfig {
        mode: args.thread_mode,
        max_memory: args.max_memory,
        max_threads: args.max_threads,
        ..StartConfig::default()
    };
    let finished = functions.invoke(&args.name, input, &base)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&finished.output)
        .and_then(|()| stdout.flush())
        .context("writing the output")?;
    drop(stdout);
    if finished.trapped {
        let _ = writeln!(std::io::stderr(), "weft: function `{}` trapped", args.name);
    }
    // Threads the function left running end with it, as with `weft run`.
    exit_process(finished.code, None)
}

/// Reads a function's input, refusing more than a call may carry.
fn read_bounded(from: impl std::io::Read) -> anyhow::Result<Vec<u8>> {
    let max = weft_runtime::functions::MAX_CALL_BYTES as u64;
    let mut input = Vec::new();
    from.take(max + 1).read_to_end(&mut input)?;
    anyhow::ensure!(
        input.len() as u64 <= max,
        "the input is larger than {} MiB, the most a function takes",
        max >> 20
    );
    Ok(input)
}

/// The network runtime of `weft serve` and `weft serve-http`: guest code
/// runs on its blocking threads, so they get the stack guest code needs
/// (else every call would start a thread of its own for it).
fn serving_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(weft_runtime::wasm_stack::THREAD_STACK)
        .build()
        .context("starting the network runtime")
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        let secs = |s: &str| parse_duration(s).map(|t| t.0.as_millis());
        assert_eq!(secs("10s"), Ok(10_000));
        assert_eq!(secs("10"), Ok(10_000));
        assert_eq!(secs("250ms"), Ok(250));
        assert_eq!(secs("2m"), Ok(120_000));
        assert_eq!(secs("1h"), Ok(3_600_000));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("99999999999h").is_err());
    }
}
