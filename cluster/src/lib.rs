//! Chain mode over many hosts. The host that runs a program's main thread
//! is the thread's *home*; it places each chained thread on itself or on a
//! peer (`weft serve`), ships the thread's snapshot over QUIC, and merges
//! the diff that comes back exactly as it merges a local thread's.
//!
//! - Placement: `pack` (the default, as Faabric bin-packs) runs a thread at
//!   home while a slot is free there and sends it to the first peer with a
//!   free slot otherwise; `peers` prefers peers (every thread travels while
//!   they have room). With no room anywhere, the thread queues at home.
//! - Each peer keeps the last snapshots it got; a later spawn of the same
//!   program sends only the pages that changed since ([`envelope::delta`]).
//! - A peer that is busy, cannot be reached, or is lost while the thread
//!   runs (QUIC keep-alives and an idle timeout notice a dead host) gets
//!   the thread taken back: it runs on another peer, or at home, from the
//!   same snapshot, and computes the same result. So does a thread that
//!   makes a host call only home can serve (`remote.rs`).

pub mod bases;
mod orphans;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_runtime::locks::{Locked as _, RwLocked as _};

use weft_snapshot::{Diff, Snapshot, wire};
use weft_transport::call::RequesterEvent;
use weft_transport::frame::Limits;
use weft_transport::message::ErrorCode;
use weft_transport::quic::{self, NodeIdentity, QuicError};

pub use weft_runtime::placement::Placement;
use weft_runtime::placement::{HomeAgain, Placer, Remote, Wants};
use weft_transport::envelope::{self, CallHeader, SnapshotId};

use crate::worker::WorkerHost;

/// How long an unreachable or lost peer gets no new threads.
const PEER_PAUSE: Duration = Duration::from_secs(10);
/// How long a peer that said it was busy gets no new threads (its slots
/// free up as its threads end; other homes may share it).
const BUSY_PAUSE: Duration = Duration::from_millis(250);
/// How long a connection's handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("starting the network runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Quic(#[from] QuicError),
    #[error("making the embedded cluster's certificates: {0}")]
    Certificates(#[from] quic::cluster::ClusterError),
    #[error("creating the workers' engine: {0}")]
    Engine(wasmtime::Error),
}

/// A peer that is neither `HOST:PORT` nor `NAME@HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{addr}` is not an address (HOST:PORT): {error}")]
pub struct BadPeer {
    pub addr: String,
    pub error: std::net::AddrParseError,
}

/// A peer as given on the command line: `ADDR` or `NAME@ADDR` (then its
/// certificate must carry NAME).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub name: Option<String>,
    pub addr: SocketAddr,
}

impl FromStr for PeerSpec {
    type Err = BadPeer;
    fn from_str(s: &str) -> Result<Self, BadPeer> {
        let (name, addr) = match s.split_once('@') {
            Some((name, addr)) => (Some(name.to_string()), addr),
            None => (None, s),
        };
        let addr = addr.parse().map_err(|error| BadPeer {
            addr: addr.to_string(),
            error,
        })?;
        Ok(Self { name, addr })
    }
}

impl std::fmt::Display for PeerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}@{}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

struct Peer {
    spec: PeerSpec,
    /// Gone from the latest peer list: given no new threads.
    retired: AtomicBool,
    /// Threads sent and not finished.
    in_flight: AtomicUsize,
    connection: tokio::sync::Mutex<Option<quinn::Connection>>,
    /// No new threads before this (the peer was lost or busy).
    paused_until: Mutex<Option<Instant>>,
    /// The last snapshot this peer got of each module, and its id.
    bases: Mutex<HashMap<[u8; 32], (SnapshotId, Snapshot)>>,
}

/// What the transfers of remote threads cost, for `weft bench cluster`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TransferStats {
    /// Threads that ran on a peer (a thread a remote thread started on
    /// its worker included).
    pub remote_threads: u64,
    /// Threads that ran at home: placed there, or taken back.
    pub home_runs: u64,
    /// Of those, threads that began running on a peer and were taken
    /// back (the peer was lost, or the thread needed home) to run again
    /// from their snapshot.
    pub taken_back: u64,
    /// Calls that sent a whole snapshot, and their payload bytes.
    pub wholes: u64,
    pub whole_bytes: u64,
    /// Calls that sent a delta against a base, and their payload bytes.
    pub deltas: u64,
    pub delta_bytes: u64,
}

impl std::fmt::Display for TransferStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let average = |bytes: u64, calls: u64| bytes.checked_div(calls).unwrap_or(0);
        write!(
            f,
            "{} threads ran on peers, {} at home ({} taken back from a peer); sent {} whole snapshots (average {} bytes) and {} deltas (average {} bytes)",
            self.remote_threads,
            self.home_runs,
            self.taken_back,
            self.wholes,
            average(self.whole_bytes, self.wholes),
            self.deltas,
            average(self.delta_bytes, self.deltas),
        )
    }
}

/// A home host's view of its cluster: its QUIC endpoint, its peers, and
/// (for `--hosts N`) the worker hosts it runs itself.
pub struct Cluster {
    runtime: tokio::runtime::Runtime,
    endpoint: quinn::Endpoint,
    /// Append-only, so a peer's index stays its own; a peer gone from a
    /// new list ([`Cluster::set_peers`]) is retired, not removed.
    peers: std::sync::RwLock<Vec<Arc<Peer>>>,
    placement: Placement,
    /// Threads one peer runs at once.
    peer_slots: usize,
    /// Names this home's snapshots on every peer (see [`SnapshotId`]).
    home_id: [u8; 16],
    next_snapshot: AtomicU64,
    limits: Limits,
    stats: Mutex<TransferStats>,
    /// Set once the home's program has ended and its connections closed.
    closed: AtomicBool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field(
                "peers",
                &self
                    .peer_list()
                    .iter()
                    .map(|p| p.spec.clone())
                    .collect::<Vec<_>>(),
            )
            .field("placement", &self.placement)
            .finish_non_exhaustive()
    }
}

/// Why one attempt to run a thread on a peer failed (the thread then
/// runs on another peer or at home).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the peer was unreachable moments ago")]
    Paused,
    #[error("no handshake within {} s", CONNECT_TIMEOUT.as_secs())]
    HandshakeTimeout,
    /// The connection failed or was lost: the peer is lost.
    #[error(transparent)]
    Quic(#[from] QuicError),
    #[error("the worker refused the call ({code:?}): {message}")]
    Refused { code: ErrorCode, message: String },
    #[error("the call ended on a request")]
    EndedOnRequest,
    #[error("the result's envelope: {0}")]
    Envelope(#[from] envelope::EnvelopeError),
    #[error("the result's diff: {0}")]
    Diff(#[from] wire::WireError),
    #[error("the result's output: {0}")]
    Output(&'static str),
}

/// Why one attempt on a peer failed, as the attempt tells it.
enum CallFailure {
    /// No connection (the peer is paused already).
    Connect(PeerError),
    /// The call failed on a connection: the peer is lost.
    Quic(QuicError),
}

fn runtime() -> Result<tokio::runtime::Runtime, ClusterError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("weft-net")
        .enable_all()
        .build()
        .map_err(ClusterError::Runtime)
}

impl Cluster {
    /// The home host `identity` with `peers`, each running up to
    /// `peer_slots` threads at once.
    pub fn new(
        identity: &NodeIdentity,
        peers: Vec<PeerSpec>,
        placement: Placement,
        peer_slots: usize,
    ) -> Result<Arc<Self>, ClusterError> {
        let runtime = runtime()?;
        let endpoint = {
            let _guard = runtime.enter();
            quic::endpoint(identity, "0.0.0.0:0".parse().expect("an address"))?
        };
        Ok(Self::with(runtime, endpoint, peers, placement, peer_slots))
    }

    fn with(
        runtime: tokio::runtime::Runtime,
        endpoint: quinn::Endpoint,
        peers: Vec<PeerSpec>,
        placement: Placement,
        peer_slots: usize,
    ) -> Arc<Self> {
        let peers = peers
            .into_iter()
            .map(|spec| Peer::start(spec, &runtime, &endpoint))
            .collect();
        Arc::new(Self {
            runtime,
            endpoint,
            peers: std::sync::RwLock::new(peers),
            placement,
            peer_slots: peer_slots.max(1),
            home_id: random_home_id(),
            next_snapshot: AtomicU64::new(1),
            limits: Limits::default(),
            stats: Mutex::default(),
            closed: AtomicBool::new(false),
        })
    }

    /// `hosts` hosts in this process: this one (home) and `hosts - 1`
    /// workers, talking QUIC with mutual TLS on loopback. Their
    /// certificates are made in a temporary folder, removed once loaded.
    pub fn embedded(
        hosts: usize,
        placement: Placement,
        slots: usize,
    ) -> Result<Arc<Self>, ClusterError> {
        let dir = TempDir::new("hosts")?;
        quic::cluster::init(&dir.0)?;
        let names: Vec<String> = (0..hosts.max(1)).map(|i| format!("host-{i}")).collect();
        let mut identities = Vec::new();
        for name in &names {
            quic::cluster::add_node(&dir.0, name)?;
            identities.push(NodeIdentity::load(&dir.0, name)?);
        }
        drop(dir);
        let runtime = runtime()?;
        let _guard = runtime.enter();
        let loopback = "127.0.0.1:0".parse().expect("an address");
        let home = quic::endpoint(&identities[0], loopback)?;
        let mut peers = Vec::new();
        // The workers' engines, as `weft serve`'s.
        let engines = weft_runtime::WorkerEngines::new().map_err(ClusterError::Engine)?;
        for (identity, name) in identities[1..].iter().zip(&names[1..]) {
            let endpoint = quic::endpoint(identity, loopback)?;
            peers.push(PeerSpec {
                name: Some(name.clone()),
                addr: endpoint.local_addr().map_err(QuicError::Io)?,
            });
            // The worker lives in its serving task, on this runtime.
            let worker = WorkerHost::new(engines.clone(), slots, worker::DEFAULT_WORKER_MEMORY);
            runtime.spawn(serve(endpoint, worker));
        }
        drop(_guard);
        Ok(Self::with(runtime, home, peers, placement, slots))
    }

    pub fn stats(&self) -> TransferStats {
        *self.stats_mut()
    }

    /// Chained threads running on peers now.
    pub fn threads_on_peers(&self) -> usize {
        self.peer_list()
            .iter()
            .map(|p| p.in_flight.load(Ordering::Relaxed))
            .sum()
    }

    /// Peers that may be given threads now (not paused after a failure).
    pub fn peers_up(&self) -> usize {
        self.peer_list()
            .iter()
            .filter(|p| !p.paused() && !p.retired.load(Ordering::Relaxed))
            .count()
    }

    /// Every peer so far, retired ones included (an index into it names
    /// a peer for good).
    fn peer_list(&self) -> Vec<Arc<Peer>> {
        self.peers.read_locked().clone()
    }

    /// Peer `i` (an index [`Placer::reserve`] gave).
    fn peer(&self, i: usize) -> Arc<Peer> {
        self.peers.read_locked()[i].clone()
    }

    /// Makes `specs` the peers threads may go to (a list found by DNS):
    /// new ones are connected, ones not in it get no new threads (those
    /// they run finish or come home as when a peer is lost), and one that
    /// comes back is taken again.
    pub fn set_peers(&self, specs: &[PeerSpec]) {
        let mut peers = self.peers.write_locked();
        for peer in peers.iter() {
            let listed = specs.iter().any(|s| s.addr == peer.spec.addr);
            peer.retired.store(!listed, Ordering::SeqCst);
        }
        for spec in specs {
            if !peers.iter().any(|p| p.spec.addr == spec.addr) {
                peers.push(Peer::start(spec.clone(), &self.runtime, &self.endpoint));
            }
        }
    }

    /// Closes the connections to every peer, for a home whose program has
    /// ended: the calls its threads still hold there (members of a lasting
    /// OpenMP team, a detached thread) stop at once and free their slots,
    /// instead of when the peer finds the connection idle. Waits a moment
    /// (at most 200 ms) for the close to go out.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.endpoint.close(0u32.into(), b"the program has ended");
        let endpoint = self.endpoint.clone();
        // On a thread of its own: the caller may be inside the runtime.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                self.runtime.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_millis(200), endpoint.wait_idle())
                        .await;
                });
            });
        });
    }

    /// A peer with a free slot (the first, to keep a program's threads
    /// together), reserved for one thread.
    fn reserve_except(&self, skip: &[usize]) -> Option<usize> {
        self.peer_list().iter().enumerate().find_map(|(i, peer)| {
            if skip.contains(&i) {
                return None;
            }
            if peer.paused() || peer.retired.load(Ordering::SeqCst) {
                return None;
            }
            peer.in_flight
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < self.peer_slots).then_some(n + 1)
                })
                .ok()
                .map(|_| i)
        })
    }

    fn stats_mut(&self) -> std::sync::MutexGuard<'_, TransferStats> {
        self.stats.locked()
    }

    fn pause(&self, peer: usize, pause: Duration) {
        self.peer(peer).pause(pause);
    }

    /// One peer's attempt: `Err` means "try elsewhere".
    fn call(
        &self,
        peer: usize,
        (module, hash): (&[u8], [u8; 32]),
        (tid, start_arg, arena): (u32, u32, u32),
        snapshot: &Snapshot,
        home: quic::HomeCalls<'_>,
        wants: Wants<'_>,
    ) -> Result<Remote, PeerError> {
        let id = SnapshotId {
            home: self.home_id,
            seq: self.next_snapshot.fetch_add(1, Ordering::Relaxed),
        };
        let base = self.peer(peer).bases.locked().get(&hash).cloned();
        let mut delta = base.and_then(|(base_id, base)| {
            envelope::delta(&base, snapshot).map(|delta| (base_id, delta))
        });
        loop {
            let (base, sent) = match &delta {
                Some((base_id, delta)) => (Some(*base_id), delta),
                None => (None, snapshot),
            };
            let header = CallHeader {
                tid,
                start_arg,
                arena,
                snapshot_id: id,
                base,
                stoppable: wants.stoppable,
            };
            // Compressed straight from the pages where they compress: the
            // encoded snapshot, as large as the memory, never exists then.
            let packing = Instant::now();
            let payload = envelope::pack_call_snapshot(&header, sent);
            let packed_here;
            let packed = match &payload {
                envelope::CallPayload::Packed(packed, _) => packed,
                envelope::CallPayload::Encoded(bytes) => {
                    packed_here = weft_transport::payload::pack(bytes);
                    &packed_here
                }
            };
            tracing::debug!(
                tid,
                bytes = payload.len(),
                wire = packed.wire_len(),
                us = packing.elapsed().as_micros() as u64,
                "snapshot packed"
            );
            {
                let mut stats = self.stats_mut();
                if base.is_some() {
                    stats.deltas += 1;
                    stats.delta_bytes += payload.len() as u64;
                } else {
                    stats.wholes += 1;
                    stats.whole_bytes += payload.len() as u64;
                }
            }
            let sent_at = Instant::now();
            let ended = self.runtime.block_on(async {
                let connection = self.connection(peer).await.map_err(CallFailure::Connect)?;
                quic::call(
                    &connection,
                    hash,
                    module,
                    packed,
                    self.limits,
                    &mut *home,
                    wants.ended,
                )
                .await
                .map_err(CallFailure::Quic)
            });
            match ended {
                Ok(RequesterEvent::Finished { value, diff }) => {
                    tracing::debug!(
                        tid,
                        payload = payload.len(),
                        round_trip_us = sent_at.elapsed().as_micros() as u64,
                        "remote thread finished"
                    );
                    self.peer(peer)
                        .bases
                        .locked()
                        .insert(hash, (id, snapshot.clone()));
                    return decode_result(&diff).map(|(diff, output, cpu_ns)| Remote::Finished {
                        value,
                        diff,
                        output,
                        cpu_ns,
                    });
                }
                Ok(RequesterEvent::Failed {
                    code: ErrorCode::UnknownBase,
                    ..
                }) if delta.is_some() => delta = None,
                // A trap happens wherever the thread runs: home runs it
                // and reports it (no other peer tries).
                Ok(RequesterEvent::Failed {
                    code: code @ (ErrorCode::NeedsHome | ErrorCode::Trapped),
                    message,
                }) => {
                    let needs_home = code == ErrorCode::NeedsHome;
                    let why = match needs_home {
                        true => HomeAgain::PeerEnded(message),
                        false => HomeAgain::Trapped(message),
                    };
                    return Ok(Remote::Home {
                        needs_home,
                        ran: true,
                        why,
                    });
                }
                Ok(RequesterEvent::Failed { code, message }) => {
                    if code == ErrorCode::Busy {
                        self.pause(peer, BUSY_PAUSE);
                    }
                    return Err(PeerError::Refused { code, message });
                }
                Ok(RequesterEvent::NeedModule | RequesterEvent::HomeCall(_)) => {
                    return Err(PeerError::EndedOnRequest);
                }
                Err(CallFailure::Connect(e)) => return Err(e),
                Err(CallFailure::Quic(e)) if self.closed.load(Ordering::SeqCst) => {
                    return Err(PeerError::Quic(e));
                }
                Err(CallFailure::Quic(e)) => {
                    // Lost: no more threads for a while.
                    tracing::warn!(
                        peer = %self.peer(peer).spec,
                        "peer lost ({e}); its threads run elsewhere for {} s",
                        PEER_PAUSE.as_secs()
                    );
                    self.pause(peer, PEER_PAUSE);
                    return Err(PeerError::Quic(e));
                }
            }
        }
    }

    /// The connection to `peer`, made (again) when there is none.
    async fn connection(&self, peer: usize) -> Result<quinn::Connection, PeerError> {
        self.peer(peer).connection(&self.endpoint).await
    }
}

impl Placer for Cluster {
    fn placement(&self) -> Placement {
        self.placement
    }

    fn reserve(&self) -> Option<usize> {
        self.reserve_except(&[])
    }

    fn peer_slots(&self) -> usize {
        // Peers DNS discovery retired take no more threads.
        let peers = self
            .peer_list()
            .iter()
            .filter(|p| !p.retired.load(Ordering::Relaxed))
            .count();
        peers.saturating_mul(self.peer_slots)
    }

    /// Gives back a reservation [`Placer::reserve`] made for a thread that
    /// will not go to `peer` after all.
    fn unreserve(&self, peer: usize) {
        self.peer(peer).in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Runs a thread on `peer` (reserved by [`Placer::reserve`]), or on the
    /// next peer with room when that one is busy or lost; `Home` when none
    /// could. `module` is the program's wasm, `snapshot` the thread's.
    fn run(
        &self,
        mut peer: usize,
        module: &[u8],
        thread: (u32, u32, u32),
        snapshot: &Snapshot,
        home: &mut (dyn FnMut(Vec<u8>) -> Vec<u8> + Send),
        wants: Wants<'_>,
    ) -> Remote {
        let hash = snapshot.module.0;
        let mut tried = Vec::new();
        let mut ran = false;
        loop {
            let outcome = self.call(peer, (module, hash), thread, snapshot, &mut *home, wants);
            self.peer(peer).in_flight.fetch_sub(1, Ordering::SeqCst);
            let why = match outcome {
                Ok(remote) => return remote,
                Err(why) => why,
            };
            tracing::debug!(tid = thread.0, peer = %self.peer(peer).spec, "taking the thread back: {why}");
            // A peer that refused the call or could not be reached never
            // ran it; one lost during the call may have.
            ran |= !matches!(
                why,
                PeerError::Refused { .. } | PeerError::Paused | PeerError::HandshakeTimeout
            );
            if wants.effects.load(Ordering::SeqCst) || (wants.ended)() {
                // It changed shared state (the caller must not run it
                // again), or its program has ended (nothing wants it).
                return Remote::Home {
                    needs_home: false,
                    ran,
                    why: HomeAgain::NoPeer(Box::new(why)),
                };
            }
            tried.push(peer);
            match self.reserve_except(&tried) {
                Some(next) => peer = next,
                None => {
                    return Remote::Home {
                        needs_home: false,
                        ran,
                        why: HomeAgain::NoPeer(Box::new(why)),
                    };
                }
            }
        }
    }

    /// Counts a thread that ran at home.
    fn count_home_run(&self, taken_back: bool) {
        let mut stats = self.stats_mut();
        stats.home_runs += 1;
        stats.taken_back += u64::from(taken_back);
    }

    /// Counts `threads` that ran on a peer (a remote thread and the
    /// threads it started there).
    fn count_peer_runs(&self, threads: u64) {
        self.stats_mut().remote_threads += threads;
    }
}

impl Peer {
    /// A peer, connecting at once: the first thread finds the connection
    /// made, or the peer known unreachable.
    fn start(
        spec: PeerSpec,
        runtime: &tokio::runtime::Runtime,
        endpoint: &quinn::Endpoint,
    ) -> Arc<Self> {
        let peer = Arc::new(Peer {
            spec,
            retired: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            connection: tokio::sync::Mutex::new(None),
            paused_until: Mutex::new(None),
            bases: Mutex::default(),
        });
        let (early, endpoint) = (peer.clone(), endpoint.clone());
        runtime.spawn(async move { early.connection(&endpoint).await });
        peer
    }

    fn paused(&self) -> bool {
        self.paused_until
            .locked()
            .is_some_and(|until| until > Instant::now())
    }

    fn pause(&self, pause: Duration) {
        *self.paused_until.locked() = Some(Instant::now() + pause);
    }

    /// The connection to this peer, made (again) when there is none. A
    /// failure pauses the peer, so callers queued behind a failing attempt
    /// do not each wait for their own.
    async fn connection(&self, endpoint: &quinn::Endpoint) -> Result<quinn::Connection, PeerError> {
        let mut connection = self.connection.lock().await;
        if let Some(open) = connection.as_ref()
            && open.close_reason().is_none()
        {
            return Ok(open.clone());
        }
        if self.paused() {
            return Err(PeerError::Paused);
        }
        let name = self.spec.name.as_deref().unwrap_or(quic::NODE_ALIAS);
        let attempt = tokio::time::timeout(
            CONNECT_TIMEOUT,
            quic::connect(endpoint, self.spec.addr, name),
        )
        .await;
        let failure = match attempt {
            Ok(Ok(open)) => {
                *connection = Some(open.clone());
                return Ok(open);
            }
            Ok(Err(e)) => PeerError::Quic(e),
            Err(_) => PeerError::HandshakeTimeout,
        };
        tracing::warn!(
            peer = %self.spec,
            "peer unreachable ({failure}); its threads run elsewhere for {} s",
            PEER_PAUSE.as_secs()
        );
        self.pause(PEER_PAUSE);
        Err(failure)
    }
}

fn decode_result(payload: &[u8]) -> Result<(Diff, Vec<u8>, u64), PeerError> {
    let (diff, output, cpu_ns) = envelope::decode_result(payload)?;
    let diff = wire::decode_diff(diff, &wire::Limits::default())?;
    envelope::output_records(output).map_err(PeerError::Output)?;
    Ok((diff, output.to_vec(), cpu_ns))
}

/// Serves chained threads for other hosts on `endpoint` until it closes.
pub async fn serve(endpoint: quinn::Endpoint, host: Arc<WorkerHost>) {
    let (has, admits) = (host.clone(), host.clone());
    let hooks = quic::WorkerHooks {
        admit: Arc::new(move |_, _| admits.admit()),
        has_module: Arc::new(move |hash| has.has_module(hash)),
        run: Arc::new(move |event, home| host.run(event, home)),
    };
    quic::serve(endpoint, Limits::default(), hooks).await;
}

/// 128 bits no other home draws: from the OS's random source, or, when
/// that fails, a hash of what differs between two homes (process, time).
fn random_home_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    if getrandom::fill(&mut id).is_ok() {
        return id;
    }
    use sha2::Digest as _;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut hash = sha2::Sha256::new();
    hash.update(std::process::id().to_le_bytes());
    hash.update(now.as_nanos().to_le_bytes());
    hash.update((&id as *const _ as usize).to_le_bytes());
    id.copy_from_slice(&hash.finalize()[..16]);
    id
}

/// A folder removed when dropped.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new folder under the system's temporary folder, named after
    /// `what` and this process.
    pub fn new(what: &str) -> Result<Self, ClusterError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weft-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // Left over from a process that had this id and died.
        let _ = std::fs::remove_dir_all(&dir);
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Loads node `name` of the cluster in `dir`.
pub fn identity(dir: &Path, name: &str) -> Result<NodeIdentity, ClusterError> {
    Ok(NodeIdentity::load(dir, name)?)
}
