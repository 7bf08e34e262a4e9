//! What a program is told about its processors: the host's cores in local
//! mode; home's slots plus every peer's in chain mode.

mod common;

use std::process::Command;
use std::time::Duration;

fn processors(options: &[&str]) -> String {
    let wasm = common::guest("processors");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.arg("run")
        .args(options)
        .arg(&wasm)
        .env_remove("THREAD_MODE");
    let out = weft_conformance::exec::run(&mut cmd, Duration::from_secs(120)).unwrap();
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stdout
}

/// The same count from every call.
fn all(n: usize) -> String {
    format!("{n} {n} {n} {n} {n}\n")
}

#[test]
fn local_mode_answers_the_hosts_cores() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(processors(&[]), all(cores));
    // Slots are chain mode's: local threads are OS threads.
    assert_eq!(processors(&["--slots", "3"]), all(cores));
}

#[test]
fn chain_mode_answers_home_slots_and_every_peers() {
    assert_eq!(
        processors(&["--thread-mode", "chain", "--slots", "3"]),
        all(3)
    );
    // Three hosts: home's 3 slots and two workers of 2 slots each.
    assert_eq!(
        processors(&[
            "--thread-mode",
            "chain",
            "--hosts",
            "3",
            "--slots",
            "3",
            "--peer-slots",
            "2"
        ]),
        all(7)
    );
}
