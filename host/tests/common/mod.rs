//! Helpers shared by the integration tests.

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
