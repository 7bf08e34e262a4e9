//! The QUIC layer over the sans-IO core: quinn endpoints with mutual TLS
//! (both ends present a certificate from the cluster CA; ring is the only
//! crypto provider), ALPN `weft/1`, one bidirectional stream per chained
//! call, driven by [`crate::call`]'s state machines.

pub mod cluster;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

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
/// sends no close): the requester then runs its calls elsewhere.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
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

/// Runs one chained call on `connection`: sends the snapshot, the module if
/// the worker asks for it, and returns how the call ended. A stream that
/// ends early is [`ProtocolError::Lost`]: run the call elsewhere.
pub async fn call(
    connection: &quinn::Connection,
    module: [u8; 32],
    module_bytes: &[u8],
    snapshot: &[u8],
    limits: Limits,
) -> Result<RequesterEvent, QuicError> {
    let (mut send, mut recv) = connection.open_bi().await?;
    let mut out = Vec::new();
    let mut requester = Requester::start_streamed(module, snapshot.len(), limits, &mut out);
    send.write_all(&out).await?;
    out.clear();
    // The snapshot goes out from where it lies, a frame at a time.
    for (header, chunk) in crate::call::data_frames(snapshot) {
        send.write_all(&header).await?;
        send.write_all(chunk).await?;
    }
    let mut decoder = FrameDecoder::new(limits);
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        match recv.read(&mut buffer).await? {
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
                    send.write_all(&out).await?;
                    out.clear();
                }
                Some(done) => {
                    let _ = send.finish();
                    return Ok(done);
                }
                None => {}
            }
        }
    }
}

/// What runs a chained thread for a worker: the module (hash, and bytes
/// when they came with the call) and the snapshot in, the result and the
/// diff out. It runs on a blocking thread.
pub type RunThread =
    Arc<dyn Fn(WorkerEvent) -> Result<(u32, Vec<u8>), (ErrorCode, String)> + Send + Sync>;

/// Whether the worker host has a module (by hash).
pub type HasModule = Arc<dyn Fn(&[u8; 32]) -> bool + Send + Sync>;

/// Serves chained calls on `endpoint` until it closes: each bidirectional
/// stream of each connection is one call.
pub async fn serve(
    endpoint: quinn::Endpoint,
    limits: Limits,
    has_module: HasModule,
    run: RunThread,
) {
    while let Some(incoming) = endpoint.accept().await {
        let (has_module, run) = (has_module.clone(), run.clone());
        tokio::spawn(async move {
            // A peer that fails the handshake (no certificate from the
            // cluster CA) is dropped here.
            let Ok(connection) = incoming.await else {
                return;
            };
            while let Ok((send, recv)) = connection.accept_bi().await {
                let (has_module, run) = (has_module.clone(), run.clone());
                tokio::spawn(async move {
                    let _ = serve_call(send, recv, limits, has_module, run).await;
                });
            }
        });
    }
}

async fn serve_call(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    limits: Limits,
    has_module: HasModule,
    run: RunThread,
) -> Result<(), QuicError> {
    let mut decoder = FrameDecoder::new(limits);
    let mut worker = Worker::new(limits);
    let mut out = Vec::new();
    let mut buffer = vec![0u8; 64 << 10];
    while !worker.is_done() {
        match recv.read(&mut buffer).await? {
            Some(n) => decoder.push(&buffer[..n]),
            None => break, // the requester is gone
        }
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    worker.fail(ErrorCode::Protocol, &e.to_string(), &mut out);
                    break;
                }
            };
            let message = match Message::decode(frame) {
                Ok(message) => message,
                Err(e) => {
                    worker.fail(ErrorCode::Protocol, &e.to_string(), &mut out);
                    break;
                }
            };
            if let Some(event @ WorkerEvent::Run { .. }) =
                worker.on_message(message, &*has_module, &mut out)
            {
                let run = run.clone();
                match tokio::task::spawn_blocking(move || run(event)).await {
                    Ok(Ok((value, diff))) => worker.finish(value, &diff, &mut out),
                    Ok(Err((code, message))) => worker.fail(code, &message, &mut out),
                    Err(e) => worker.fail(ErrorCode::Trapped, &e.to_string(), &mut out),
                }
            }
            if worker.is_done() {
                break;
            }
        }
        if !out.is_empty() {
            send.write_all(&out).await?;
            out.clear();
        }
    }
    send.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests;
