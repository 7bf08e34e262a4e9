//! Property tests: random fork-join programs (thread counts, slice
//! layouts, per-element work, merge operations) and random programs that
//! synchronise (mutexes, barriers, condition variables, C11 atomics) print
//! the same in chain mode, in local mode and natively.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use weft_conformance::{Mode, Suite};

fn suite() -> Suite {
    Suite::new(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-guests"),
        env!("CARGO_BIN_EXE_weft"),
    )
}

fn builds() -> &'static (PathBuf, PathBuf) {
    static BUILDS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/forkjoin.c");
        suite().build_c(&source, "host_test_forkjoin").unwrap()
    })
}

fn synced_builds() -> &'static (PathBuf, PathBuf) {
    static BUILDS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/synced.c");
        suite().build_c(&source, "host_test_synced").unwrap()
    })
}

/// Runs the native build and the wasm build in local and chain mode with
/// `args`; all must exit 0 with the same output.
fn agree((wasm, native): &(PathBuf, PathBuf), args: &[u32]) -> Result<(), TestCaseError> {
    let args: Vec<String> = args.iter().map(|v| v.to_string()).collect();
    let expected =
        weft_conformance::exec::run(Command::new(native).args(&args), Duration::from_secs(60))
            .unwrap();
    prop_assert_eq!(expected.code, Some(0));
    for mode in [Mode::Local, Mode::Chain] {
        let got = suite().run_weft(wasm, mode, &[], &args).unwrap();
        prop_assert_eq!(
            &got.stdout,
            &expected.stdout,
            "{} mode, stderr: {}",
            mode,
            got.stderr
        );
        prop_assert_eq!(got.code, Some(0));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn chain_local_and_native_agree(
        threads in 1u32..=6,
        elements in 1u32..=3000,
        work in 0u32..=50,
        layout in 0u32..=1,
        op in 0u32..=3,
        seed in any::<u32>(),
    ) {
        agree(builds(), &[threads, elements, work, layout, op, seed])?;
    }

    #[test]
    fn programs_that_synchronise_agree_in_chain_local_and_native(
        threads in 1u32..=6,
        phases in 1u32..=6,
        kinds in 0u32..=15,
        work in 0u32..=20,
        seed in any::<u32>(),
    ) {
        agree(synced_builds(), &[threads, phases, kinds, work, seed])?;
    }
}
