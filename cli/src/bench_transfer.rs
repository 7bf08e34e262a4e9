//! Transfer measurements for `weft bench cluster`: a chained call's
//! snapshot through Weft's protocol against the same bytes over a plain
//! quinn stream, between the same two endpoints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use weft_transport::call::{RequesterEvent, WorkerEvent};
use weft_transport::frame::Limits;
use weft_transport::quic::{self, NodeIdentity};

use anyhow::{anyhow, bail};
use weft_cluster::TempDir;

/// Best times of a bulk transfer, both ways.
#[derive(Debug, Clone, Copy)]
pub struct Bulk {
    /// A chained call carrying the bytes as its snapshot (the worker
    /// receives them whole and answers with an empty diff).
    pub call: Duration,
    /// The same bytes on one plain quinn stream, answered with one byte.
    pub plain: Duration,
}

const PLAIN_ALPN: &[u8] = b"weft-bench-plain";

/// Sends `payload` `repeat` times each way on loopback; the best of each.
pub fn bulk(payload: &[u8], repeat: usize) -> anyhow::Result<Bulk> {
    let dir = TempDir::new("bench")?;
    quic::cluster::init(&dir.0)?;
    quic::cluster::add_node(&dir.0, "home")?;
    quic::cluster::add_node(&dir.0, "worker")?;
    let home = NodeIdentity::load(&dir.0, "home")?;
    let worker = NodeIdentity::load(&dir.0, "worker")?;
    drop(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("weft-net")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let loopback = "127.0.0.1:0".parse().expect("an address");
        let server = quic::endpoint(&worker, loopback)?;
        let addr = server.local_addr().map_err(quic::QuicError::Io)?;
        let has_module: quic::HasModule = Arc::new(|_| true);
        let run: quic::RunThread = Arc::new(|event, _| match event {
            // Unpacked whole, as a worker reading it would.
            WorkerEvent::Run { snapshot, .. } => snapshot
                .unpack()
                .map(|bytes| (bytes.len() as u32, Vec::new()))
                .map_err(|e| (weft_transport::message::ErrorCode::Protocol, e.to_string())),
            _ => Err((weft_transport::message::ErrorCode::Protocol, String::new())),
        });
        let admit: quic::Admit = Arc::new(|_, _| Ok(Box::new(())));
        let hooks = quic::WorkerHooks {
            admit,
            has_module,
            run,
        };
        tokio::spawn(quic::serve(server, Limits::default(), hooks));
        let client = quic::endpoint(&home, loopback)?;
        let connection = quic::connect(&client, addr, "worker").await?;
        let module: [u8; 32] = Sha256::digest(b"").into();
        let mut call = Duration::MAX;
        for _ in 0..repeat.max(1) {
            let start = Instant::now();
            let ended = quic::call(
                &connection,
                module,
                b"",
                &weft_transport::payload::pack(payload),
                Limits::default(),
                &mut |request| request,
                &|| false,
            )
            .await?;
            call = call.min(start.elapsed());
            if ended
                != (RequesterEvent::Finished {
                    value: payload.len() as u32,
                    diff: Vec::new(),
                })
            {
                bail!("the call ended with {ended:?}");
            }
        }

        // Plain quinn: same certificates and transport settings, own ALPN.
        let server_config = quic::server_config_with_alpn(&worker, PLAIN_ALPN)?;
        let client_config = quic::client_config_with_alpn(&home, PLAIN_ALPN)?;
        let plain_server =
            quinn::Endpoint::server(server_config, loopback).map_err(quic::QuicError::Io)?;
        let plain_addr = plain_server.local_addr().map_err(quic::QuicError::Io)?;
        tokio::spawn(async move {
            while let Some(incoming) = plain_server.accept().await {
                let Ok(connection) = incoming.await else {
                    continue;
                };
                while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                    let Ok(bytes) = recv.read_to_end(usize::MAX).await else {
                        break;
                    };
                    let _ = send.write_all(&[bytes.len() as u8]).await;
                    let _ = send.finish();
                }
            }
        });
        let mut plain_client = quinn::Endpoint::client(loopback).map_err(quic::QuicError::Io)?;
        plain_client.set_default_client_config(client_config);
        let connection = plain_client
            .connect(plain_addr, "worker")
            .map_err(quic::QuicError::Connect)?
            .await
            .map_err(quic::QuicError::Connection)?;
        let mut plain = Duration::MAX;
        for _ in 0..repeat.max(1) {
            let start = Instant::now();
            let (mut send, mut recv) = connection
                .open_bi()
                .await
                .map_err(quic::QuicError::Connection)?;
            send.write_all(payload)
                .await
                .map_err(quic::QuicError::Write)?;
            send.finish().map_err(quic::QuicError::Closed)?;
            let reply = recv.read_to_end(16).await.map_err(|e| anyhow!("{e}"))?;
            plain = plain.min(start.elapsed());
            if reply != [payload.len() as u8] {
                bail!("the plain transfer lost bytes");
            }
        }
        Ok(Bulk { call, plain })
    })
}
