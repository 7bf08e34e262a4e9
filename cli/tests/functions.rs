//! `weft:chain`: functions registered by name (`weft fn add`), invoked with
//! input bytes (`weft invoke`), calling each other by name (fan-out and
//! fan-in), with typed errors, sharing state.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use weft_conformance::Outcome;

mod common;
use common::{guest, python_component, rust_guest};

const TIMEOUT: Duration = Duration::from_secs(120);

fn weft(registry: &Path, args: &[&str], stdin: Option<&str>) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.args(args)
        .env("WEFT_FUNCTIONS", registry)
        .env_remove("THREAD_MODE");
    let input_file;
    if let Some(text) = stdin {
        input_file = registry.join("input.txt");
        std::fs::write(&input_file, text).unwrap();
        cmd.args(["--input", input_file.to_str().unwrap()]);
    }
    let out = weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap();
    assert!(!out.timed_out, "weft hung: {out:?}");
    out
}

fn registry(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (function, guest_name) in [
        ("square", "fn_square"),
        ("trap", "fn_trap"),
        ("fanout", "fn_fanout"),
    ] {
        let wasm = guest(guest_name);
        let out = weft(&dir, &["fn", "add", function, wasm.to_str().unwrap()], None);
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    dir
}

#[test]
fn fan_out_and_in_by_name_with_typed_errors() {
    let dir = registry("functions-fanout");
    let listed = weft(&dir, &["fn", "list"], None);
    assert_eq!(listed.stdout, "fanout\nsquare\ntrap\n");
    for mode in ["local", "chain"] {
        let out = weft(
            &dir,
            &["invoke", "fanout", "--thread-mode", mode],
            Some("10"),
        );
        assert_eq!(out.code, Some(0), "{mode}: {out:?}");
        assert_eq!(
            out.stdout,
            "sum of squares 1..10: 385\n\
             largest seen by the calls: 10\n\
             unknown function: 1\n\
             bad name: 1\n\
             await again: 3\n\
             no such call: 2\n\
             exit code: 0 3\n\
             trapped: 5, output 0 'partial'\n\
             await-all: 0 codes 0 3 0\n\
             await-all again: 3\n\
             await-all repeated: 3\n",
            "{mode}"
        );
    }
}

#[test]
fn invoke_reports_what_the_function_did() {
    let dir = registry("functions-invoke");
    let out = weft(&dir, &["invoke", "square"], Some("12"));
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "144"), "{out:?}");
    let out = weft(&dir, &["invoke", "square"], Some("-2"));
    assert_eq!((out.code, out.stdout.as_str()), (Some(3), "4"), "{out:?}");
    let out = weft(&dir, &["invoke", "trap"], None);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(134), "partial"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("function `trap` trapped"),
        "{}",
        out.stderr
    );
    let out = weft(&dir, &["invoke", "missing"], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("no function `missing`"),
        "{}",
        out.stderr
    );
    let out = weft(&dir, &["fn", "add", "bad/name", "x.wasm"], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("is not a function name"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_rust_guest_calls_c_functions_and_reads_their_state() {
    let dir = registry("functions-rust");
    let wasm = rust_guest("fanout_rs");
    let out = weft(
        &dir,
        &["fn", "add", "fanout-rs", wasm.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = weft(&dir, &["invoke", "fanout-rs"], Some("6"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "rust: sum of squares 1..6: 91; largest seen: 6; unknown: Err(CallError { code: 0, \
         name: \"unknown-function\", message: \"No function is registered under that name.\" })\n"
    );
}

#[test]
fn a_python_component_calls_c_functions_and_shares_state() {
    let dir = registry("functions-python");
    let wasm = python_component("fanout_py");
    let out = weft(
        &dir,
        &["fn", "add", "fanout-py", wasm.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    // `weft run` points at the way to run a component.
    let out = weft(&dir, &["run", wasm.to_str().unwrap()], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("run it as a function"),
        "{}",
        out.stderr
    );
    let out = weft(&dir, &["invoke", "fanout-py"], Some("5"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "python: sum of squares 1..5: 55; largest seen: 5; unknown: UNKNOWN_FUNCTION; \
         await again: ALREADY_AWAITED\n"
    );
}

#[test]
fn invoke_has_a_time_limit_and_a_bounded_input() {
    let dir = registry("functions-limits");
    let spin = guest("spin");
    let out = weft(&dir, &["fn", "add", "spin", spin.to_str().unwrap()], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = weft(&dir, &["invoke", "spin", "--timeout", "300ms"], None);
    assert_eq!(out.code, Some(124), "{out:?}");
    assert_eq!(out.stderr, "weft: time limit of 300ms reached\n");
    // One byte over what a call between functions may carry.
    let big = dir.join("big-input");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len((64 << 20) + 1).unwrap();
    let out = weft(
        &dir,
        &["invoke", "square", "--input", big.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("larger than 64 MiB"), "{}", out.stderr);
}

#[test]
fn fn_add_refuses_what_could_not_run_as_a_function() {
    let dir = registry("functions-add-checks");
    // A component that exports no `run`: refused when added, not
    // "trapped" at its first invocation.
    let empty = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-component.wasm");
    std::fs::write(&empty, wat::parse_str("(component)").unwrap()).unwrap();
    let out = weft(&dir, &["fn", "add", "empty", empty.to_str().unwrap()], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("run"), "{}", out.stderr);
    // A name that reads as an option.
    let square = guest("fn_square");
    let out = weft(
        &dir,
        &["fn", "add", "--", "-rf", square.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("-rf"), "{}", out.stderr);
    let listed = weft(&dir, &["fn", "list"], None);
    assert_eq!(listed.stdout, "fanout\nsquare\ntrap\n");
}

#[test]
fn a_function_calling_itself_forever_is_stopped_by_a_typed_error() {
    // Each call starts the next: the chain stops at the depth limit with
    // `failed-to-start` (5), never by exhausting the host's threads.
    let dir = registry("functions-recurse");
    let recurse = guest("fn_recurse");
    let out = weft(
        &dir,
        &["fn", "add", "recurse", recurse.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = weft(&dir, &["invoke", "recurse"], Some("0"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "depth 64, error 5");
}

#[test]
fn a_component_too_large_to_compile_is_refused_when_added() {
    // A component whose core module has 4.5 MiB of code in one function.
    let module = common::giant_function_module();
    let mut component = wasm_encoder::Component::new();
    component.section(&wasm_encoder::ModuleSection(&module));
    let dir = registry("functions-giant");
    // Outside the registry folder, whose `*.wasm` files are its functions.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("giant_component.wasm");
    std::fs::write(&path, component.finish()).unwrap();
    let out = weft(&dir, &["fn", "add", "giant", path.to_str().unwrap()], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("component too large to compile: defined function 0 has"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    let listed = weft(&dir, &["fn", "list"], None);
    assert!(!listed.stdout.contains("giant"), "{}", listed.stdout);
}
