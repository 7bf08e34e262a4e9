//! The conformance cases (`conformance/cases.toml`), one test per case and
//! mode. Local mode must agree with the native build and match the
//! committed insta snapshot; chain mode must do what the case expects
//! (agree with native, or end with a clear error), on one host and with
//! its threads placed on three `weft serve` processes.

use std::path::Path;

use weft_conformance::{Mode, Suite, case};

fn check(name: &str, mode: Mode) {
    let suite = Suite::new(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-guests"),
        env!("CARGO_BIN_EXE_weft"),
    );
    let case = case(name).unwrap();
    let report = suite.check(&case, mode).unwrap();
    assert!(report.passes(), "{}", report.explain());
    if mode == Mode::Local {
        insta::assert_snapshot!(format!("{name}-{mode}"), report.snapshot());
    }
}

macro_rules! conformance_case {
    ($name:ident) => {
        mod $name {
            #[test]
            fn local() {
                super::check(stringify!($name), weft_conformance::Mode::Local);
            }

            #[test]
            fn chain() {
                super::check(stringify!($name), weft_conformance::Mode::Chain);
            }

            #[test]
            fn chain3() {
                super::check(stringify!($name), weft_conformance::Mode::Chain3);
            }
        }
    };
}

weft_conformance::for_each_case!(conformance_case);
