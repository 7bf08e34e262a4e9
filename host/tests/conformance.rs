//! The conformance cases (`conformance/cases.toml`), one test per case and
//! mode: the wasm run must agree with the native build, and its normalised
//! result must match the committed insta snapshot.

use std::path::Path;

use weft_conformance::{Mode, Suite, case};

fn check(name: &str, mode: Mode) {
    let suite = Suite::new(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-guests"),
        env!("CARGO_BIN_EXE_weft"),
    );
    let case = case(name).unwrap();
    let report = suite.check(&case, mode).unwrap();
    assert!(report.agrees(), "{}", report.explain());
    insta::assert_snapshot!(format!("{name}-{mode}"), report.snapshot());
}

macro_rules! conformance_case {
    ($name:ident) => {
        mod $name {
            #[test]
            fn local() {
                super::check(stringify!($name), weft_conformance::Mode::Local);
            }
        }
    };
}

weft_conformance::for_each_case!(conformance_case);
