//! `weft serve --http ADDR`: registered functions over HTTP, and `weft
//! serve --metrics ADDR`: a worker's metrics and probes.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use weft_runtime::ThreadMode;
use weft_runtime::functions::Functions;
use weft_runtime::placement::Placer;
use weft_serve::metrics::{Kind, Text};
use weft_serve::server::{ExtraMetrics, Limits};
use weft_serve::{Front, FrontConfig, Probes};

use crate::{ClusterArgs, RegistryArgs, StateArgs, TimeLimit, parse_duration};
use weft_serve::options::parse_size;

/// The flags of `weft serve` for the HTTP front and metrics.
#[derive(Debug, clap::Args)]
pub(crate) struct HttpArgs {
    /// Serve the registered functions over HTTP on ADDR, e.g.
    /// 0.0.0.0:8080: `POST /f/NAME` invokes, `PUT /f/NAME` registers,
    /// `GET /f` lists, `DELETE /f/NAME` removes; `/healthz`, `/readyz`,
    /// `/metrics`.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Serve `/metrics`, `/healthz` and `/readyz` on ADDR (a worker
    /// without `--http`).
    #[arg(long, value_name = "ADDR", conflicts_with = "http")]
    pub metrics: Option<SocketAddr>,
    /// Largest input of a call (413 past it); at most 64M.
    #[arg(long, value_parser = parse_size, default_value = "16M")]
    pub max_body: u64,
    /// Largest program a `PUT /f/NAME` may register.
    #[arg(long, value_parser = parse_size, default_value = "256M")]
    pub max_module: u64,
    /// Calls that may wait for a slot; more get 429.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// On SIGTERM: how long running calls may go on before the server
    /// exits anyway (keep it below the pod's grace period).
    #[arg(long, value_parser = parse_duration, default_value = "25s")]
    pub drain_timeout: TimeLimit,
    /// Open connections at most; more are closed as they come.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// How threads of invoked functions run (a function's own option
    /// wins): `local` or `chain`.
    #[arg(long, env = "THREAD_MODE", default_value = "local")]
    pub thread_mode: ThreadMode,
    /// Cap on each function's memory, e.g. 256M (a function's own option
    /// wins).
    #[arg(long, value_parser = parse_size)]
    pub max_memory: Option<u64>,
    /// Threads (besides main) a function may have live at once (a
    /// function's own option wins).
    #[arg(long, default_value_t = 1024)]
    pub max_threads: u32,
    /// Memories each function keeps between its local-mode calls, wiped,
    /// with the module linked to them (default: the slot count); 0 makes
    /// a new memory for every call.
    #[arg(long, value_name = "N")]
    pub keep_memories: Option<usize>,
    /// Chain mode over many hosts: peers (`weft serve --listen`) as ADDR
    /// or NAME@ADDR, comma-separated; needs `--cluster` and `--node`.
    #[arg(long, value_delimiter = ',', requires = "http")]
    pub peers: Vec<weft_cluster::PeerSpec>,
    /// Chain mode over many hosts, peers found by DNS: every A and AAAA
    /// record of NAME (a Kubernetes headless Service over the workers) on
    /// PORT, looked up again every `--dns-interval`; needs `--cluster`
    /// and `--node`.
    #[arg(long, value_name = "NAME:PORT", conflicts_with_all = ["peers", "hosts"], requires = "http")]
    pub peers_dns: Option<weft_serve::dns::Target>,
    /// The DNS server `--peers-dns` asks (default: the first nameserver
    /// of /etc/resolv.conf).
    #[arg(long, value_name = "ADDR", requires = "peers_dns")]
    pub dns_server: Option<SocketAddr>,
    /// How often `--peers-dns` looks again.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub dns_interval: TimeLimit,
    /// Chain mode on HOSTS hosts in this process (this one and HOSTS-1
    /// workers) talking QUIC on loopback.
    #[arg(long, conflicts_with = "peers", requires = "http", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub hosts: Option<u32>,
    /// Where chained threads go first: `pack` or `peers`.
    #[arg(long, default_value = "pack")]
    pub placement: weft_cluster::Placement,
    /// Chained threads each peer runs at once (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub peer_slots: Option<u32>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Gives `cluster` the peers `target` names in DNS, now and every
/// `interval`; a failed lookup keeps the last list.
async fn follow_dns(
    cluster: Arc<weft_cluster::Cluster>,
    target: weft_serve::dns::Target,
    server: SocketAddr,
    interval: std::time::Duration,
) {
    use weft_serve::dns::{Change, Discovery, resolve};
    let mut discovery = Discovery::default();
    let timeout = interval.clamp(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(5),
    );
    loop {
        let looked_up = resolve(server, &target.name, timeout)
            .await
            .map_err(|e| e.to_string());
        let failed = looked_up.as_ref().err().cloned();
        match discovery.update(target.port, looked_up) {
            Change::Same => {}
            Change::Kept { failures } => {
                tracing::warn!(
                    "looking up {target} at {server}: {} ({failures} in a row); keeping the peers found before",
                    failed.unwrap_or_default()
                );
            }
            Change::Peers {
                list,
                added,
                removed,
            } => {
                let _ = writeln!(
                    std::io::stderr(),
                    "weft: peers from {target}: {} (added {}, removed {})",
                    list.len(),
                    added.len(),
                    removed.len()
                );
                let specs: Vec<weft_cluster::PeerSpec> = list
                    .into_iter()
                    .map(|addr| weft_cluster::PeerSpec { name: None, addr })
                    .collect();
                cluster.set_peers(&specs);
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Runs the HTTP front until SIGTERM, then drains.
pub(crate) fn serve_http(
    addr: SocketAddr,
    args: HttpArgs,
    slots: Option<u32>,
    call_timeout: Option<TimeLimit>,
    cluster_dir: Option<std::path::PathBuf>,
    node: Option<String>,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.max_body <= weft_runtime::functions::MAX_CALL_BYTES as u64,
        "--max-body: at most {} MiB, the most a function takes",
        weft_runtime::functions::MAX_CALL_BYTES >> 20
    );
    // The workers' engine: a call past its time limit must stop, and only
    // epoch checks stop a thread that computes without calling the host.
    let engine = weft_runtime::worker_engine()
        .map_err(anyhow::Error::from)
        .context("creating the engine")?;
    let state = args.state.host()?;
    let functions = Functions::new(engine, args.registry.dir.clone(), state.clone());
    let node = node.unwrap_or_else(|| "main".into());
    let runtime = crate::serving_runtime()?;
    let cluster = match &args.peers_dns {
        None => ClusterArgs {
            peers: args.peers.clone(),
            cluster: cluster_dir,
            node,
            hosts: args.hosts,
            placement: args.placement,
            peer_slots: args.peer_slots,
            cluster_stats: false,
        }
        .cluster(ThreadMode::Chain)?,
        Some(target) => {
            let dir = cluster_dir.context("--peers-dns needs --cluster and --node")?;
            let identity = weft_cluster::identity(&dir, &node).with_context(|| {
                format!(
                    "loading node `{node}` of the cluster in `{}`",
                    dir.display()
                )
            })?;
            let slots = args
                .peer_slots
                .map_or_else(crate::default_slots, |n| n as usize);
            let cluster = weft_cluster::Cluster::new(&identity, Vec::new(), args.placement, slots)
                .context("starting the cluster endpoint")?;
            let server = match args.dns_server {
                Some(server) => server,
                None => std::fs::read_to_string("/etc/resolv.conf")
                    .ok()
                    .as_deref()
                    .and_then(weft_serve::dns::nameserver)
                    .context("no nameserver in /etc/resolv.conf: give --dns-server")?,
            };
            runtime.spawn(follow_dns(
                cluster.clone(),
                target.clone(),
                server,
                args.dns_interval.0,
            ));
            Some(cluster)
        }
    };
    let mut config = FrontConfig {
        max_body: args.max_body,
        max_module: args.max_module,
        queue: args.queue,
        drain_timeout: args.drain_timeout.0,
        max_connections: args.max_connections,
        ..FrontConfig::default()
    };
    if let Some(slots) = slots {
        config.slots = slots as usize;
    }
    // By default as many memories kept per function as calls can run at
    // once.
    functions.keep_idle_memories(args.keep_memories.unwrap_or(config.slots));
    if let Some(limit) = call_timeout {
        config.time_limit = limit.0;
    }
    config.base.mode = args.thread_mode;
    config.base.max_memory = args.max_memory;
    config.base.max_threads = args.max_threads;
    config.base.state = Some(state);
    config.base.functions = Some(functions.clone());
    config.base.placer = cluster.clone().map(|cluster| cluster as Arc<dyn Placer>);
    let limits = config.limits();
    let extra: ExtraMetrics = {
        let cluster = cluster.clone();
        Arc::new(move |text: &mut Text| host_metrics(text, cluster.as_deref()))
    };
    let front = Front::new(functions, config, Some(extra));
    let counted = front.clone();
    let drained = runtime.block_on(async {
        let listener = weft_serve::server::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let _ = writeln!(
            std::io::stderr(),
            "weft: serving functions over HTTP on {bound}"
        );
        let connections = front.connection_counter();
        anyhow::Ok(
            weft_serve::serve(
                listener,
                front,
                limits,
                Some(connections),
                weft_serve::terminated(),
            )
            .await,
        )
    })?;
    if let Some(cluster) = &cluster {
        cluster.close();
    }
    report_drain(
        drained,
        limits,
        counted.calls_ended(weft_serve::reply::CallOutcome::Ok),
    );
    // Calls cut off by the drain's end may still hold threads: the
    // process ends with them, as a pod's would.
    crate::exit_process(0, None)
}

fn report_drain(drained: weft_serve::server::Drained, limits: Limits, answered: u64) {
    let _ = if drained.cut_off > 0 {
        writeln!(
            std::io::stderr(),
            "weft: drain timeout of {:?} reached with {} connections still busy",
            limits.drain_timeout,
            drained.cut_off
        )
    } else {
        writeln!(
            std::io::stderr(),
            "weft: drained after answering {answered} calls"
        )
    };
}

/// Serves a worker's `/metrics` and probes on `addr` from a thread of
/// `runtime` until the process ends.
pub(crate) fn serve_probes(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    worker: Arc<weft_cluster::worker::WorkerHost>,
    slots: usize,
) -> anyhow::Result<()> {
    let listener = runtime
        .block_on(weft_serve::server::bind(addr))
        .with_context(|| format!("listening for metrics on {addr}"))?;
    if let Ok(bound) = listener.local_addr() {
        let _ = writeln!(std::io::stderr(), "weft: metrics on http://{bound}/metrics");
    }
    let render: ExtraMetrics = Arc::new(move |text: &mut Text| {
        text.single(
            "weft_worker_slots",
            "Chained threads this worker runs at once.",
            Kind::Gauge,
            slots as f64,
        );
        text.single(
            "weft_worker_slots_in_use",
            "Chained threads running on this worker now.",
            Kind::Gauge,
            worker.slots_in_use() as f64,
        );
        text.single(
            "weft_worker_calls_total",
            "Chained threads this worker began running.",
            Kind::Counter,
            worker.calls_begun() as f64,
        );
        text.single(
            "weft_worker_memory_kept_bytes",
            "Memory the worker keeps between calls (bases, programs, warm memories).",
            Kind::Gauge,
            worker.memory_kept() as f64,
        );
        host_metrics(text, None);
    });
    let limits = Limits {
        read_timeout: std::time::Duration::from_secs(10),
        max_connections: 64,
        drain_timeout: std::time::Duration::from_secs(1),
    };
    runtime.spawn(weft_serve::serve(
        listener,
        Probes::new(render),
        limits,
        None,
        std::future::pending(),
    ));
    Ok(())
}

/// What every host reports: the runtime's counters and its cluster's.
fn host_metrics(text: &mut Text, cluster: Option<&weft_cluster::Cluster>) {
    weft_serve::runtime_metrics::render(text, &weft_runtime::metrics::snapshot());
    weft_serve::runtime_metrics::render_pool(text, &weft_runtime::memory_pool::counts());
    if let Some(cluster) = cluster {
        text.single(
            "weft_peers_up",
            "Peers this host may place chained threads on now.",
            Kind::Gauge,
            cluster.peers_up() as f64,
        );
        text.single(
            "weft_threads_on_peers",
            "Chained threads of this host's programs running on peers now.",
            Kind::Gauge,
            cluster.threads_on_peers() as f64,
        );
        let stats = cluster.stats();
        let counters = [
            (
                "weft_remote_threads_total",
                "Threads that ran on a peer.",
                stats.remote_threads,
            ),
            (
                "weft_snapshots_sent_total",
                "Whole snapshots sent to peers.",
                stats.wholes,
            ),
            (
                "weft_snapshot_bytes_sent_total",
                "Payload bytes of whole snapshots sent to peers.",
                stats.whole_bytes,
            ),
            (
                "weft_deltas_sent_total",
                "Snapshot deltas (against a base the peer keeps) sent to peers.",
                stats.deltas,
            ),
            (
                "weft_delta_bytes_sent_total",
                "Payload bytes of snapshot deltas sent to peers.",
                stats.delta_bytes,
            ),
        ];
        for (name, help, value) in counters {
            text.single(name, help, Kind::Counter, value as f64);
        }
    }
}
