//! Nodes over real QUIC on loopback: mutual TLS with the cluster CA, a
//! chained call with a module fetch, and strangers refused.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::*;

const MODULE: &[u8] = b"\0asm\x01\0\0\0 the module";

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-quic-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A worker that "runs" a thread by asking home twice (with the
/// snapshot's length, then with home's first answer) and reversing the
/// snapshot; its value adds the module's length and home's last answer.
fn reverse_worker(known: bool) -> WorkerHooks {
    hooks_with_slots(known, usize::MAX)
}

/// [`reverse_worker`] admitting at most `slots` calls at once.
fn hooks_with_slots(known: bool, slots: usize) -> WorkerHooks {
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let admit: Admit = Arc::new(move |_, _| {
        struct Slot(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for Slot {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if running.fetch_add(1, Ordering::SeqCst) >= slots {
            running.fetch_sub(1, Ordering::SeqCst);
            return Err((ErrorCode::Busy, format!("all {slots} slots are busy")));
        }
        Ok(Box::new(Slot(running.clone())))
    });
    let has_module: HasModule = Arc::new(move |_| known);
    let run: RunThread = Arc::new(|event, home: HomeLink| match event {
        WorkerEvent::Run {
            snapshot,
            module_bytes,
            ..
        } => {
            let snapshot = snapshot
                .unpack()
                .map_err(|e| (ErrorCode::Protocol, e.to_string()))?;
            let first = home
                .call((snapshot.len() as u32).to_le_bytes().to_vec())
                .map_err(|e| (ErrorCode::Trapped, e.to_string()))?;
            let second = home
                .call(first)
                .map_err(|e| (ErrorCode::Trapped, e.to_string()))?;
            let answer = u32::from_le_bytes(second.try_into().unwrap_or_default());
            let value = module_bytes.map_or(0, |bytes| bytes.len() as u32) + answer;
            Ok((value, snapshot.into_iter().rev().collect()))
        }
        other => Err((ErrorCode::Protocol, format!("unexpected {other:?}"))),
    });
    WorkerHooks {
        admit,
        has_module,
        run,
    }
}

/// Home's side of `reverse_worker`'s calls: adds one.
fn add_one(request: Vec<u8>) -> Vec<u8> {
    let n = u32::from_le_bytes(request.try_into().unwrap_or_default());
    (n + 1).to_le_bytes().to_vec()
}

/// A new cluster with nodes `worker-1` and `main`.
fn two_node_cluster(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    cluster::init(&dir).unwrap();
    cluster::add_node(&dir, "worker-1").unwrap();
    cluster::add_node(&dir, "main").unwrap();
    dir
}

/// Node `worker-1` of the cluster in `dir` serving with `hooks`, and node
/// `main`'s endpoint and connection to it.
async fn serve_and_connect(
    dir: &std::path::Path,
    hooks: WorkerHooks,
) -> (quinn::Endpoint, quinn::Connection) {
    let worker_id = NodeIdentity::load(dir, "worker-1").unwrap();
    let server = endpoint(&worker_id, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(serve(server, Limits::default(), hooks));
    let main_id = NodeIdentity::load(dir, "main").unwrap();
    let client = endpoint(&main_id, "127.0.0.1:0".parse().unwrap()).unwrap();
    let connection = connect(&client, addr, "worker-1").await.unwrap();
    (client, connection)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chained_call_between_cluster_nodes() {
    let dir = two_node_cluster("cluster");
    assert!(matches!(
        cluster::init(&dir),
        Err(cluster::ClusterError::Exists(_))
    ));
    assert!(matches!(
        cluster::add_node(&dir, "../x"),
        Err(cluster::ClusterError::BadName(_))
    ));

    let (_client, connection) = serve_and_connect(&dir, reverse_worker(false)).await;
    let snapshot: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
    let hash: [u8; 32] = Sha256::digest(MODULE).into();
    let mut calls = 0;
    let mut home = |request| {
        calls += 1;
        add_one(request)
    };
    let done = call(
        &connection,
        hash,
        MODULE,
        &crate::payload::pack(&snapshot),
        Limits::default(),
        &mut home,
        &|| false,
    )
    .await
    .unwrap();
    assert_eq!(calls, 2, "the thread called home twice");
    let expected: Vec<u8> = snapshot.iter().rev().copied().collect();
    assert_eq!(
        done,
        RequesterEvent::Finished {
            value: MODULE.len() as u32 + snapshot.len() as u32 + 2,
            diff: expected
        },
        "the module was fetched, checked and used, home answered"
    );
    // A module that does not match its hash is refused by the worker.
    let done = call(
        &connection,
        [9; 32],
        MODULE,
        &crate::payload::pack(b"s"),
        Limits::default(),
        &mut add_one,
        &|| false,
    )
    .await
    .unwrap();
    assert!(matches!(
        done,
        RequesterEvent::Failed {
            code: ErrorCode::ModuleMismatch,
            ..
        }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_is_refused() {
    let ours = temp_dir("ours");
    cluster::init(&ours).unwrap();
    cluster::add_node(&ours, "worker-1").unwrap();
    let theirs = temp_dir("theirs");
    cluster::init(&theirs).unwrap();
    cluster::add_node(&theirs, "intruder").unwrap();

    let worker_id = NodeIdentity::load(&ours, "worker-1").unwrap();
    let server = endpoint(&worker_id, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(serve(server, Limits::default(), reverse_worker(true)));

    let intruder = NodeIdentity::load(&theirs, "intruder").unwrap();
    let client = endpoint(&intruder, "127.0.0.1:0".parse().unwrap()).unwrap();
    // The intruder does not trust our worker's certificate, and our worker
    // does not trust the intruder's: no connection, no call.
    let refused = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        match connect(&client, addr, "worker-1").await {
            Err(e) => Err(e),
            Ok(connection) => call(
                &connection,
                [0; 32],
                b"",
                &crate::payload::pack(b"s"),
                Limits::default(),
                &mut add_one,
                &|| false,
            )
            .await
            .map(|_| ()),
        }
    })
    .await
    .expect("refused, not hung");
    assert!(refused.is_err(), "a stranger must not get a call through");
    let _ = std::fs::remove_dir_all(&ours);
    let _ = std::fs::remove_dir_all(&theirs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_worker_refuses_before_the_snapshot_is_sent() {
    let dir = two_node_cluster("busy");
    let (_client, connection) = serve_and_connect(&dir, hooks_with_slots(true, 0)).await;
    let snapshot = vec![7u8; 64 << 20];
    let hash: [u8; 32] = Sha256::digest(MODULE).into();
    let done = call(
        &connection,
        hash,
        MODULE,
        &crate::payload::pack(&snapshot),
        Limits::default(),
        &mut add_one,
        &|| false,
    )
    .await
    .unwrap();
    assert_eq!(
        done,
        RequesterEvent::Failed {
            code: ErrorCode::Busy,
            message: "all 0 slots are busy".into()
        }
    );
    // The worker's flow-control window (16 MiB) is all that could leave
    // before the refusal: not the 64 MiB snapshot.
    let sent = connection.stats().udp_tx.bytes;
    assert!(sent < 24 << 20, "{sent} bytes sent for a refused call");
    let _ = std::fs::remove_dir_all(&dir);
}
