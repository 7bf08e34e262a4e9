//! Checks that every conformance program has a case in `cases.toml` and
//! every case has a program, and generates `for_each_case!` so the test
//! harness gets one test per case.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time: the build script may be reused by another checkout
    // that shares the target directory.
    let dir_var = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir_var);
    println!("cargo::rerun-if-changed=cases.toml");
    println!("cargo::rerun-if-changed=programs");
    println!("cargo::rerun-if-changed=rust");

    let manifest = std::fs::read_to_string(dir.join("cases.toml")).expect("reading cases.toml");
    let table: toml::Table = manifest
        .parse()
        .unwrap_or_else(|e| panic!("cases.toml: {e}"));
    let cases: BTreeSet<String> = table.keys().cloned().collect();

    let mut programs = BTreeSet::new();
    for entry in std::fs::read_dir(dir.join("programs")).expect("reading programs/") {
        let path = entry.expect("reading programs/").path();
        if path.extension().is_some_and(|e| e == "c" || e == "cpp") {
            programs.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    for entry in std::fs::read_dir(dir.join("rust")).expect("reading rust/") {
        let path = entry.expect("reading rust/").path();
        if path.join("Cargo.toml").is_file() {
            programs.insert(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }

    let untested: Vec<_> = programs.difference(&cases).collect();
    let missing: Vec<_> = cases.difference(&programs).collect();
    if !untested.is_empty() || !missing.is_empty() {
        panic!(
            "conformance cases and programs disagree: programs without a case in cases.toml: {untested:?}; cases without a program: {missing:?}"
        );
    }

    let mut out = String::from(
        "/// Calls `$m!(case_name)` for every conformance case.\n#[macro_export]\nmacro_rules! for_each_case {\n    ($m:ident) => {\n",
    );
    for case in &cases {
        assert!(
            case.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "case name `{case}` must be a Rust identifier"
        );
        writeln!(out, "        $m!({case});").unwrap();
    }
    out.push_str("    };\n}\n");
    let out_dir = std::env::var("OUT_DIR").unwrap();
    std::fs::write(Path::new(&out_dir).join("cases.rs"), out).unwrap();
}
