//! `weft run --trace FILE`: the run as Chrome trace events that parse as
//! JSON, with a span per sync point of each thread, its snapshot and its
//! merge, on named tracks.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

mod common;

/// Runs the `three_lockers` guest in chain mode with `options`, traced to
/// `file`; checks its output and gives its stderr and the trace's events.
fn traced_three_lockers(file: &str, options: &[&str]) -> (String, Vec<serde_json::Value>) {
    let wasm = common::guest("three_lockers");
    let trace = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
    let _ = std::fs::remove_file(&trace);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.args(["run", "--thread-mode", "chain"])
        .args(options)
        .arg("--trace")
        .arg(&trace)
        .arg(&wasm)
        .env_remove("THREAD_MODE");
    let out = weft_conformance::exec::run(&mut cmd, Duration::from_secs(60)).unwrap();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "total 6\n");
    let text = std::fs::read_to_string(&trace).expect("the trace file");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let events = json["traceEvents"].as_array().expect("traceEvents").clone();
    (out.stderr, events)
}

#[test]
fn a_chain_mode_run_traces_every_sync_point_snapshot_and_merge() {
    let (_, events) = traced_three_lockers("three_lockers.json", &[]);
    // Spans by name, each with the thread it ran on.
    let mut spans: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut named_threads = 0;
    for event in events {
        match event["ph"].as_str() {
            Some("X") => {
                assert!(event["ts"].is_u64() && event["dur"].is_u64(), "{event}");
                assert!(event["pid"].is_u64() && event["cat"].is_string(), "{event}");
                spans
                    .entry(event["name"].as_str().unwrap().to_string())
                    .or_default()
                    .push(event["tid"].as_u64().unwrap());
            }
            Some("M") => named_threads += usize::from(event["name"] == "thread_name"),
            other => panic!("unexpected event kind {other:?}: {event}"),
        }
    }
    let main = weft_runtime::outcome::MAIN_TID as u64;
    let of_threads = |name: &str| {
        let mut tids: Vec<u64> = spans
            .get(name)
            .map(|t| t.iter().copied().filter(|t| *t != main).collect())
            .unwrap_or_default();
        tids.sort_unstable();
        tids
    };
    // Each of the three threads locks and unlocks once: a span each.
    let lockers = of_threads("sync-lock");
    assert_eq!(lockers.len(), 3, "{spans:?}");
    assert_eq!(of_threads("sync-unlock"), lockers, "{spans:?}");
    assert_eq!(of_threads("chained thread"), lockers, "{spans:?}");
    assert_eq!(of_threads("merge"), lockers, "{spans:?}");
    // Main cut a snapshot for each and ran as one span.
    assert_eq!(spans["snapshot"].len(), 3, "{spans:?}");
    assert_eq!(spans["main"], vec![main]);
    assert!(named_threads >= 4, "{named_threads} named threads");
}

/// Threads on peers: each sync call is a span on the thread's track of its
/// peer (`pid` > 0), with the bytes it released.
#[test]
fn sync_calls_of_threads_on_peers_are_traced_on_their_peers() {
    let options = ["--hosts", "3", "--placement", "peers", "--cluster-stats"];
    let (stderr, events) = traced_three_lockers("three_lockers_peers.json", &options);
    assert!(
        stderr.contains("3 threads ran on peers, 0 at home (0 taken back"),
        "{stderr}"
    );
    let on_peers = |name: &str| {
        let mut tids: Vec<u64> = events
            .iter()
            .filter(|e| e["ph"] == "X" && e["name"] == name && e["pid"].as_u64() > Some(0))
            .map(|e| {
                assert!(e["args"]["released_bytes"].is_u64(), "{e}");
                e["tid"].as_u64().unwrap()
            })
            .collect();
        tids.sort_unstable();
        tids
    };
    let lockers = on_peers("sync-lock");
    assert_eq!(lockers.len(), 3, "{events:?}");
    assert_eq!(on_peers("sync-unlock"), lockers, "{events:?}");
}
