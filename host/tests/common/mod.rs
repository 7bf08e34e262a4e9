//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test crate uses only some of them")]

use std::path::{Path, PathBuf};

/// Builds `tests/guests/NAME.c` for wasm with weft-cc (cached).
pub fn guest(name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guests")
        .join(format!("{name}.c"));
    weft_conformance::Suite::new(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-guests"),
        env!("CARGO_BIN_EXE_weft"),
    )
    .build_c_wasm(&source, &format!("host_test_{name}"))
    .unwrap()
}

/// Builds the Rust guest crate `tests/rust/NAME` for wasm32-wasip1-threads
/// (with its committed lock file).
pub fn rust_guest(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rust")
        .join(name)
        .join("Cargo.toml");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rust-guests");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--locked"])
        .args(["--target", "wasm32-wasip1-threads", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        // Settings of the enclosing cargo run are not this build's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("running cargo");
    assert!(status.success(), "building the Rust guest {name}");
    target_dir.join(format!("wasm32-wasip1-threads/release/{name}.wasm"))
}
