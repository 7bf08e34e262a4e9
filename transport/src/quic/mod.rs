//! The QUIC layer over the sans-IO core: quinn endpoints with mutual TLS
//! (both ends present a certificate from the cluster CA; ring is the only
//! crypto provider), ALPN `weft/1`, one bidirectional stream per chained
//! call, driven by [`crate::call`]'s state machines.

pub mod cluster;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::call::{ProtocolError, Requester, RequesterEvent, Worker, WorkerEvent};
use crate::frame::{FrameDecoder, FrameError, Limits};
use crate::message::{ErrorCode, Message, MessageError};

/// The application protocol on every connection.
pub const ALPN: &[u8] = b"weft/1";

/// The name every node certificate carries besides its own: connect to a
/// peer known only by its address with this name.
pub const NODE_ALIAS: &str = "weft-node";

/// A connection with no packet for this long is lost (a host that died
/// sends no close): the requester then runs its calls elsewhere, and the
/// worker stops the threads of calls whose requester is gone.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Keep-alives while a call runs long without traffic.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config
        .max_idle_timeout(Some(IDLE_TIMEOUT.try_into().expect("a small idle timeout")))
        .keep_alive_interval(Some(KEEP_ALIVE))
        // Snapshots are large: windows that let one call fill a fast link.
        .stream_receive_window((16u32 << 20).into())
        .receive_window((64u32 << 20).into())
        .send_window(64 << 20);
    Arc::new(config)
}

#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    #[error("reading {0}: {1}")]
    Pem(String, String),
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("tls client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("quic configuration: {0}")]
    Config(String),
    #[error("connecting: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream read: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("stream: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// A node's certificate and key, and the cluster CA it trusts.
#[derive(Debug)]
pub struct NodeIdentity {
    pub name: String,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Arc<RootCertStore>,
}

impl NodeIdentity {
    /// Node `name` of the cluster in `dir` (see [`cluster`]).
    pub fn load(dir: &Path, name: &str) -> Result<Self, QuicError> {
        let pem_error = |path: &Path, e: &dyn std::fmt::Display| {
            QuicError::Pem(path.display().to_string(), e.to_string())
        };
        let file = |file: String| dir.join(file);
        let cert_path = file(format!("{name}.pem"));
        let certs = CertificateDer::pem_file_iter(&cert_path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| pem_error(&cert_path, &e))?;
        let key_path = file(format!("{name}.key"));
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| pem_error(&key_path, &e))?;
        let ca_path = file("ca.pem".into());
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&ca_path).map_err(|e| pem_error(&ca_path, &e))? {
            roots.add(ca.map_err(|e| pem_error(&ca_path, &e))?)?;
        }
        Ok(Self {
            name: name.into(),
            certs,
            key,
            roots: Arc::new(roots),
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server that asks every client for a certificate from the cluster CA.
pub fn server_config(id: &NodeIdentity) -> Result<quinn::ServerConfig, QuicError> {
    server_config_with_alpn(id, ALPN)
}

/// [`server_config`] for another application protocol (benchmarks).
pub fn server_config_with_alpn(
    id: &NodeIdentity,
    alpn: &[u8],
) -> Result<quinn::ServerConfig, QuicError> {
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(id.roots.clone(), provider())
            .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(id.certs.clone(), id.key.clone_key())?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| QuicError::Config(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config());
    Ok(config)
}

/// A client that trusts only the cluster CA and shows its own certificate.
pub fn client_config(id: &NodeIdentity) -> Result<quinn::ClientConfig, QuicError> {
    client_config_with_alpn(id, ALPN)
}

/// [`client_config`] for another application protocol (benchmarks).
pub fn client_config_with_alpn(
    id: &NodeIdentity,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, QuicError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(id.roots.clone())
        .with_client_auth_cert(id.certs.clone(), id.key.clone_key())?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| QuicError::Config(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config());
    Ok(config)
}

/// An endpoint that serves calls and makes them (inside a tokio runtime).
pub fn endpoint(id: &NodeIdentity, listen: SocketAddr) -> Result<quinn::Endpoint, QuicError> {
    let mut endpoint = quinn::Endpoint::server(server_config(id)?, listen)?;
    endpoint.set_default_client_config(client_config(id)?);
    Ok(endpoint)
}

/// Connects to node `name` at `addr` (its certificate must name it).
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    name: &str,
) -> Result<quinn::Connection, QuicError> {
    Ok(endpoint.connect(addr, name)?.await?)
}

/// What a requester does with the running thread's calls home: the
/// request in, the reply out. It may block (it runs on the thread that
/// drives the call).
pub type HomeCalls<'a> = &'a mut (dyn FnMut(Vec<u8>) -> Vec<u8> + Send);

/// How often a running call looks whether its program still wants it.
const STOP_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs one chained call on `connection`: sends the snapshot, the module if
/// the worker asks for it, answers the thread's calls home with `home`, and
/// returns how the call ended. Once `stop` says the program no longer
/// needs the thread (it has ended), the worker is asked to cancel it; its
/// answer still ends the call. A stream that ends early is
/// [`ProtocolError::Lost`]: run the call elsewhere.
pub async fn call(
    connection: &quinn::Connection,
    module: [u8; 32],
    module_bytes: &[u8],
    packed: &crate::payload::Packed<'_>,
    limits: Limits,
    home: HomeCalls<'_>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<RequesterEvent, QuicError> {
    let (mut send, mut recv) = connection.open_bi().await?;
    let mut out = Vec::new();
    let mut requester = Requester::start_streamed(module, packed, limits, &mut out);
    // A worker that refuses the call (busy) or ends it stops reading: its
    // answer is then on the way back, and nothing more is sent.
    let mut stopped = write_unless_stopped(&mut send, &out, false).await?;
    out.clear();
    // The snapshot goes out from where it lies, a frame at a time.
    for (header, chunk) in crate::call::data_frames(packed) {
        stopped = write_unless_stopped(&mut send, &header, stopped).await?;
        stopped = write_unless_stopped(&mut send, chunk, stopped).await?;
        if stopped {
            break;
        }
    }
    let mut decoder = FrameDecoder::new(limits);
    let mut buffer = vec![0u8; 64 << 10];
    let mut cancel_sent = false;
    let mut check = tokio::time::interval(STOP_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let read = tokio::select! {
            read = recv.read(&mut buffer) => read?,
            _ = check.tick(), if !cancel_sent => {
                if stop() {
                    cancel_sent = true;
                    requester.cancel(&mut out);
                    stopped = write_unless_stopped(&mut send, &out, stopped).await?;
                    out.clear();
                }
                continue;
            }
        };
        match read {
            Some(n) => decoder.push(&buffer[..n]),
            None => {
                decoder.finish()?;
                requester.on_end()?;
                return Err(ProtocolError::Lost.into());
            }
        }
        while let Some(frame) = decoder.next_frame()? {
            match requester.on_message(Message::decode(frame)?)? {
                Some(RequesterEvent::NeedModule) => {
                    requester.send_module(module_bytes, &mut out)?;
                }
                Some(RequesterEvent::HomeCall(request)) => {
                    requester.reply_home(&home(request), &mut out)?;
                }
                Some(done) => {
                    let _ = send.finish();
                    return Ok(done);
                }
                None => {}
            }
            if !out.is_empty() {
                stopped = write_unless_stopped(&mut send, &out, stopped).await?;
                out.clear();
            }
        }
    }
}

/// Writes `bytes` unless the peer has stopped reading (`stopped`, or now):
/// whether it has.
async fn write_unless_stopped(
    send: &mut quinn::SendStream,
    bytes: &[u8],
    stopped: bool,
) -> Result<bool, QuicError> {
    if stopped {
        return Ok(true);
    }
    match send.write_all(bytes).await {
        Ok(()) => Ok(false),
        Err(quinn::WriteError::Stopped(_)) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Why a call home got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HomeCallError {
    #[error("the home host is gone (the call's stream ended)")]
    Lost,
    #[error("the call has ended (the protocol broke)")]
    Ended,
}

type PendingReply = tokio::sync::oneshot::Sender<Result<Vec<u8>, HomeCallError>>;

/// A running thread's way back to its home host, for the calls of the
/// threads of one call: in order, each answered in order.
#[derive(Debug, Clone)]
pub struct HomeLink {
    requests: tokio::sync::mpsc::UnboundedSender<(Vec<u8>, PendingReply)>,
    cancelled: Arc<AtomicBool>,
}

/// The answer to a call home sent with [`HomeLink::send`].
#[derive(Debug)]
pub struct HomeAnswer(tokio::sync::oneshot::Receiver<Result<Vec<u8>, HomeCallError>>);

impl HomeAnswer {
    /// Waits for the answer. Must not be called from inside the async
    /// runtime (it blocks).
    pub fn wait(self) -> Result<Vec<u8>, HomeCallError> {
        self.0.blocking_recv().map_err(|_| HomeCallError::Ended)?
    }
}

impl HomeLink {
    /// Set once the requester cancelled the call or is gone: the thread's
    /// result has nowhere to go, so it should stop.
    pub fn cancelled(&self) -> Arc<AtomicBool> {
        self.cancelled.clone()
    }

    /// Sends `request` home; its answer comes after those of the calls
    /// sent before it.
    pub fn send(&self, request: Vec<u8>) -> Result<HomeAnswer, HomeCallError> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        self.requests
            .send((request, reply))
            .map_err(|_| HomeCallError::Ended)?;
        Ok(HomeAnswer(wait))
    }

    /// Sends `request` home and waits for the reply. Must not be called
    /// from inside the async runtime (it blocks).
    pub fn call(&self, request: Vec<u8>) -> Result<Vec<u8>, HomeCallError> {
        self.send(request)?.wait()
    }
}

/// What runs a chained thread for a worker: the module (hash, and bytes
/// when they came with the call) and the snapshot in, the result and the
/// diff out. It runs on a blocking thread, and may call home through the
/// link it is given.
pub type RunThread =
    Arc<dyn Fn(WorkerEvent, HomeLink) -> Result<(u32, Vec<u8>), (ErrorCode, String)> + Send + Sync>;

/// Whether the worker host has a module (by hash).
pub type HasModule = Arc<dyn Fn(&[u8; 32]) -> bool + Send + Sync>;

/// What a worker holds for an admitted call until it ends (its slot).
pub type Admission = Box<dyn Send>;

/// Admits a call of a module with a snapshot of so many bytes, before its
/// bytes arrive, or refuses it (busy).
pub type Admit =
    Arc<dyn Fn(&[u8; 32], u64) -> Result<Admission, (ErrorCode, String)> + Send + Sync>;

/// What a worker host does for the calls it serves.
#[derive(Clone)]
pub struct WorkerHooks {
    pub admit: Admit,
    pub has_module: HasModule,
    pub run: RunThread,
}

impl std::fmt::Debug for WorkerHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHooks").finish_non_exhaustive()
    }
}

/// Serves chained calls on `endpoint` until it closes: each bidirectional
/// stream of each connection is one call.
pub async fn serve(endpoint: quinn::Endpoint, limits: Limits, hooks: WorkerHooks) {
    while let Some(incoming) = endpoint.accept().await {
        let hooks = hooks.clone();
        tokio::spawn(async move {
            // A peer that fails the handshake (no certificate from the
            // cluster CA) is dropped here.
            let Ok(connection) = incoming.await else {
                return;
            };
            while let Ok((send, recv)) = connection.accept_bi().await {
                let hooks = hooks.clone();
                tokio::spawn(async move {
                    let _ = serve_call(send, recv, limits, hooks).await;
                });
            }
        });
    }
}

/// One call's stream on a worker.
struct CallStream {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    worker: Worker,
    out: Vec<u8>,
    buffer: Vec<u8>,
}

impl CallStream {
    /// Reads what has arrived and feeds it to the worker; the events, or
    /// `None` when the stream has ended.
    async fn read(
        &mut self,
        has_module: &HasModule,
    ) -> Result<Option<Vec<WorkerEvent>>, QuicError> {
        let Some(n) = self.recv.read(&mut self.buffer).await? else {
            return Ok(None);
        };
        self.decoder.push(&self.buffer[..n]);
        let mut events = Vec::new();
        while !self.worker.is_done() {
            let message = match self.decoder.next_frame() {
                Ok(Some(frame)) => Message::decode(frame).map_err(|e| e.to_string()),
                Ok(None) => break,
                Err(e) => Err(e.to_string()),
            };
            match message {
                Ok(message) => events.extend(self.worker.on_message(
                    message,
                    &**has_module,
                    &mut self.out,
                )),
                Err(e) => self.worker.fail(ErrorCode::Protocol, &e, &mut self.out),
            }
        }
        Ok(Some(events))
    }

    async fn flush(&mut self) -> Result<(), QuicError> {
        if !self.out.is_empty() {
            self.send.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Ends a call that did not run: the answer goes out, and what the
    /// requester still sends is not read.
    async fn end_early(mut self) -> Result<(), QuicError> {
        self.flush().await?;
        self.send.finish()?;
        let _ = self.recv.stop(0u32.into());
        Ok(())
    }
}

async fn serve_call(
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    limits: Limits,
    hooks: WorkerHooks,
) -> Result<(), QuicError> {
    let mut stream = CallStream {
        send,
        recv,
        decoder: FrameDecoder::new(limits),
        worker: Worker::new(limits),
        out: Vec::new(),
        buffer: vec![0u8; 64 << 10],
    };
    // Until the thread can run: admission, the snapshot, and the module if
    // needed.
    let mut admission: Option<Admission> = None;
    let event = 'receive: loop {
        let Some(events) = stream.read(&hooks.has_module).await? else {
            return Ok(()); // the requester is gone
        };
        for event in events {
            match event {
                WorkerEvent::Admit {
                    module,
                    snapshot_len,
                } => match (hooks.admit)(&module, snapshot_len) {
                    Ok(admitted) => {
                        tracing::debug!(snapshot_len, "call admitted");
                        admission = Some(admitted);
                    }
                    Err((code, message)) => {
                        stream.worker.fail(code, &message, &mut stream.out);
                        return stream.end_early().await;
                    }
                },
                run @ WorkerEvent::Run { .. } if admission.is_some() => {
                    tracing::debug!("call received whole");
                    break 'receive run;
                }
                _ => {}
            }
        }
        if stream.worker.is_done() {
            return stream.end_early().await;
        }
        stream.flush().await?;
    };

    // The thread runs on a blocking thread; meanwhile its calls home go
    // out, and replies (or a cancel, or the end of the stream) come in.
    let (requests, mut calls) = tokio::sync::mpsc::unbounded_channel::<(Vec<u8>, PendingReply)>();
    let cancelled = Arc::new(AtomicBool::new(false));
    let link = HomeLink {
        requests,
        cancelled: cancelled.clone(),
    };
    let run = hooks.run.clone();
    let mut job = tokio::task::spawn_blocking(move || run(event, link));
    // Calls sent and not answered yet, oldest first.
    let mut pending: std::collections::VecDeque<PendingReply> = Default::default();
    let mut open = true;
    let ended = loop {
        tokio::select! {
            ended = &mut job => break ended,
            Some((request, reply)) = calls.recv() => {
                let sent = if open {
                    stream
                        .worker
                        .home_call(&request, &mut stream.out)
                        .map_err(|_| HomeCallError::Ended)
                } else {
                    Err(HomeCallError::Lost)
                };
                match sent {
                    Ok(()) => pending.push_back(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            read = stream.read(&hooks.has_module), if open => {
                match read {
                    Ok(Some(events)) => {
                        for event in events {
                            match event {
                                WorkerEvent::HomeReply(body) => {
                                    if let Some(reply) = pending.pop_front() {
                                        let _ = reply.send(Ok(body));
                                    }
                                }
                                WorkerEvent::Cancelled => cancelled.store(true, Ordering::SeqCst),
                                _ => {}
                            }
                        }
                    }
                    // The requester is gone: the thread's result has
                    // nowhere to go, its calls home no answer.
                    Ok(None) | Err(_) => {
                        open = false;
                        cancelled.store(true, Ordering::SeqCst);
                    }
                }
                if stream.worker.is_done() || !open {
                    let error = if open {
                        HomeCallError::Ended
                    } else {
                        HomeCallError::Lost
                    };
                    for reply in pending.drain(..) {
                        let _ = reply.send(Err(error));
                    }
                }
            }
        }
        if open {
            stream.flush().await?;
        }
    };
    // The slot is free once the thread has stopped.
    drop(admission);
    match ended {
        Ok(Ok((value, diff))) => stream.worker.finish(value, &diff, &mut stream.out),
        Ok(Err((code, message))) => stream.worker.fail(code, &message, &mut stream.out),
        Err(e) => stream
            .worker
            .fail(ErrorCode::Trapped, &e.to_string(), &mut stream.out),
    }
    if open {
        stream.flush().await?;
        stream.send.finish()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
