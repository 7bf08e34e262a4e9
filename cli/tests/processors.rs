//! What a program is told about its processors: the host's cores in local
//! mode; home's slots plus every peer's in chain mode.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn processors(options: &[&str]) -> String {
    run(&common::guest("processors"), options)
}

fn run(wasm: &Path, options: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.arg("run")
        .args(options)
        .arg(wasm)
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

/// Builds `tests/rust/parallelism_rs` for wasm32-wasip1-threads, linked
/// with libweft (`weft-cc --rustflags`), in the dev profile (`release`
/// false): there std's `available_parallelism` stays a function of its
/// own, which Weft answers at load; in a release build LLVM folds std's
/// constant error into each caller, and rayon's pool is sized by the
/// `RAYON_NUM_THREADS` Weft starts it with.
fn rust_guest(release: bool) -> PathBuf {
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rust/parallelism_rs/Cargo.toml");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rust-parallelism");
    let flags = Command::new(weft_conformance::weft_cc())
        .arg("--rustflags")
        .output()
        .expect("running weft-cc --rustflags");
    assert!(flags.status.success(), "{flags:?}");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--locked"])
        .args(release.then_some("--release"))
        .args(["--target", "wasm32-wasip1-threads", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", String::from_utf8_lossy(&flags.stdout).trim())
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("running cargo");
    assert!(status.success(), "building the Rust guest parallelism_rs");
    let profile = if release { "release" } else { "debug" };
    target_dir.join(format!(
        "wasm32-wasip1-threads/{profile}/parallelism_rs.wasm"
    ))
}

/// std's answer and rayon's pool width, both `n`.
fn rust_both(n: usize) -> String {
    format!("{n} {n}\n")
}

/// In a release build std's answer is folded into its callers (so `0`,
/// its error, may be all std can say), but rayon's pool has the width
/// C programs are told, in every mode, and a width the program sets
/// itself wins.
#[test]
fn rayons_pool_in_a_release_build_has_the_processors_c_is_told() {
    let wasm = rust_guest(true);
    let width = |options: &[&str]| {
        let out = run(&wasm, options);
        out.split_whitespace()
            .nth(1)
            .map(str::to_string)
            .unwrap_or(out)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(width(&[]), cores.to_string());
    assert_eq!(width(&["--thread-mode", "chain", "--slots", "3"]), "3");
    assert_eq!(
        width(&[
            "--thread-mode",
            "chain",
            "--hosts",
            "3",
            "--slots",
            "3",
            "--peer-slots",
            "2"
        ]),
        "7"
    );
    assert_eq!(width(&["--env", "RAYON_NUM_THREADS=5"]), "5");
}

#[test]
fn rusts_available_parallelism_and_rayons_pool_agree_with_c() {
    let wasm = rust_guest(false);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(processors(&[]), all(cores));
    assert_eq!(run(&wasm, &[]), rust_both(cores));
    assert_eq!(
        run(&wasm, &["--thread-mode", "chain", "--slots", "3"]),
        rust_both(3)
    );
    assert_eq!(
        run(
            &wasm,
            &[
                "--thread-mode",
                "chain",
                "--hosts",
                "3",
                "--slots",
                "3",
                "--peer-slots",
                "2"
            ]
        ),
        rust_both(7)
    );
}
