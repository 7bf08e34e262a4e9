//! `weft:state` from C guests: every operation, and the lost-update test
//! (threads incrementing a shared counter under the global lock) in both
//! thread modes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use weft_conformance::Outcome;

mod common;
use common::guest;

const TIMEOUT: Duration = Duration::from_secs(120);

fn run(wasm: &Path, mode: &str) -> Outcome {
    run_with(wasm, mode, &[])
}

fn run_with(wasm: &Path, mode: &str, options: &[&str]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.args(["run", "--thread-mode", mode])
        .args(options)
        .arg(wasm)
        .env_remove("THREAD_MODE")
        .env_remove("WEFT_STATE");
    let out = weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap();
    assert!(!out.timed_out, "weft hung: {out:?}");
    assert_eq!(out.code, Some(0), "{out:?}");
    out
}

#[test]
fn every_state_operation() {
    let out = run(&guest("state_ops"), "local");
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn no_lost_updates_under_the_global_lock() {
    let wasm = guest("state_counter");
    let redis = std::env::var("WEFT_TEST_REDIS").ok();
    let mut tiers = vec![vec![]];
    if let Some(url) = &redis {
        tiers.push(vec!["--state", url.as_str()]);
    }
    for options in &tiers {
        for mode in ["local", "chain"] {
            let out = run_with(&wasm, mode, options);
            assert_eq!(
                out.stdout, "counter 1600 (expected 1600), failed calls 0\n",
                "{mode} {options:?}"
            );
        }
    }
}
