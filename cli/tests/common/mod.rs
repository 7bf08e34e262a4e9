//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test crate uses only some of them")]

use std::path::{Path, PathBuf};

/// Local mode, chain mode, and chain mode over 3 hosts with threads on
/// the peers.
pub const EVERY_MODE: [&[&str]; 3] = [
    &["--thread-mode", "local"],
    &["--thread-mode", "chain"],
    &[
        "--thread-mode",
        "chain",
        "--hosts",
        "3",
        "--placement",
        "peers",
    ],
];

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
    // One target directory per checkout: cargo would take another
    // checkout's build for current while its sources exist.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "rust-guests-{:016x}",
        hash(&[env!("CARGO_MANIFEST_DIR").as_bytes()])
    ));
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

/// Builds the Python component guest `tests/python/NAME` (module `app`,
/// world `app` of `wit/function`) with componentize-py from
/// `guest-libs/setup-toolchain.sh`; rebuilt only when its sources change.
pub fn python_component(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name);
    let output = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.wasm"));
    let inputs = [
        source.join("app.py"),
        root.join("wit/chain.wit"),
        root.join("wit/state.wit"),
        root.join("wit/function/world.wit"),
    ];
    // Keyed by contents, not times: the output directory may be shared by
    // several checkouts.
    let contents: Vec<Vec<u8>> = inputs
        .iter()
        .map(|input| std::fs::read(input).unwrap())
        .collect();
    let key = format!(
        "{:016x}",
        hash(&contents.iter().map(Vec::as_slice).collect::<Vec<_>>())
    );
    let key_file = output.with_extension("key");
    if output.exists() && std::fs::read_to_string(&key_file).ok().as_deref() == Some(key.as_str()) {
        return output;
    }
    let tool = root.join("guest-libs/python/bin/componentize-py");
    let status = std::process::Command::new(&tool)
        .arg("-d")
        .arg(root.join("wit/function"))
        .args(["-w", "app", "componentize", "-p"])
        .arg(&source)
        .arg("app")
        .arg("-o")
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "running {} (guest-libs/setup-toolchain.sh installs it): {e}",
                tool.display()
            )
        });
    assert!(status.success(), "building the Python component {name}");
    std::fs::write(&key_file, key).unwrap();
    output
}

fn hash(parts: &[&[u8]]) -> u64 {
    use std::hash::Hasher as _;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for part in parts {
        hasher.write_usize(part.len());
        hasher.write(part);
    }
    hasher.finish()
}

/// A core module whose one function is 4.5 MiB of straight-line code,
/// over Weft's per-function compile budget.
pub fn giant_function_module() -> wasm_encoder::Module {
    let mut module = wasm_encoder::Module::new();
    let mut types = wasm_encoder::TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut functions = wasm_encoder::FunctionSection::new();
    functions.function(0);
    module.section(&functions);
    let mut exports = wasm_encoder::ExportSection::new();
    exports.export("_start", wasm_encoder::ExportKind::Func, 0);
    module.section(&exports);
    let mut body = wasm_encoder::Function::new([]);
    for _ in 0..1_600_000 {
        body.instructions().i32_const(1).drop();
    }
    body.instructions().end();
    let mut code = wasm_encoder::CodeSection::new();
    code.function(&body);
    module.section(&code);
    module
}
