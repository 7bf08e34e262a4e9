//! Truncated and damaged modules: the loader answers with an error or a
//! module, never a panic (`Program::load`, and the symbol table chain mode
//! reads).

mod common;

use proptest::prelude::*;

fn real_guest() -> Vec<u8> {
    std::fs::read(common::guest("exit_from_thread")).unwrap()
}

fn engine() -> &'static wasmtime::Engine {
    static ENGINE: std::sync::OnceLock<wasmtime::Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| weft_runtime::engine().unwrap())
}

/// Loads `bytes` as `weft run` would, and reads the symbols chain mode
/// needs; panics only if the loader does.
fn load(engine: &wasmtime::Engine, bytes: &[u8]) {
    if let Ok(program) = weft_runtime::Program::load(engine, bytes) {
        let _ = program.data_symbols();
    }
    let _ = weft_runtime::symbols::DataSymbols::parse(bytes);
}

#[test]
fn every_prefix_of_a_real_guest_is_refused_cleanly() {
    let wasm = real_guest();
    // Each prefix through the rewrite (what a truncated file broke), a
    // sample of them through the symbol parser and the whole loader
    // (which compiles).
    for cut in 0..wasm.len() {
        let _ = weft_runtime::rewrite::export_mutable_globals(&wasm[..cut]);
        if cut % 61 == 0 {
            let _ = weft_runtime::symbols::DataSymbols::parse(&wasm[..cut]);
        }
        if cut % 1021 == 0 {
            load(engine(), &wasm[..cut]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn flipped_bytes_in_a_real_guest_never_panic(
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
    ) {
        let mut wasm = real_guest();
        for (at, flip) in flips {
            let at = at % wasm.len();
            wasm[at] ^= flip;
        }
        load(engine(), &wasm);
    }
}
