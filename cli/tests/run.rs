//! `weft run` behaviour that is Weft's own: traps, exits, limits, bad
//! modules and the weft:threads interface. Each case runs the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use weft_conformance::{Outcome, Suite};

const TIMEOUT: Duration = Duration::from_secs(60);

mod common;

fn suite() -> Suite {
    Suite::new(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-guests"),
        env!("CARGO_BIN_EXE_weft"),
    )
}

/// Builds `tests/guests/NAME.c` for wasm.
fn guest(name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guests")
        .join(format!("{name}.c"));
    suite()
        .build_c_wasm(&source, &format!("host_test_{name}"))
        .unwrap()
}

fn weft(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.args(args).env_remove("THREAD_MODE");
    weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap()
}

fn run(wasm: &Path, options: &[&str]) -> Outcome {
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.push(wasm.to_str().unwrap());
    let outcome = weft(&args);
    assert!(!outcome.timed_out, "weft hung: {outcome:?}");
    outcome
}

/// Runs `wasm` and expects exit code 0 and exactly `stdout`.
fn expect_stdout(wasm: &Path, options: &[&str], stdout: &str) {
    let out = run(wasm, options);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, stdout);
}

/// A module from WAT text, written to a file.
fn wat_file(name: &str, wat: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    path
}

#[test]
fn trap_in_a_thread_ends_the_program_with_134() {
    let out = run(&guest("trap_in_thread"), &[]);
    assert_eq!(out.code, Some(134), "{out:?}");
    assert_eq!(out.stdout, "before the trap\n");
    assert!(
        out.stderr.starts_with("weft: thread 1 trapped: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("unreachable"), "{}", out.stderr);
}

#[test]
fn trap_in_main_names_the_main_thread() {
    let out = run(&guest("trap_in_main"), &[]);
    assert_eq!(out.code, Some(134), "{out:?}");
    assert!(
        out.stderr.starts_with("weft: the main thread trapped: "),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("out of bounds memory access"),
        "{}",
        out.stderr
    );
}

#[test]
fn exit_in_a_thread_ends_the_whole_program_with_its_code() {
    let out = run(&guest("exit_from_thread"), &[]);
    assert_eq!(out.code, Some(7), "{out:?}");
    assert_eq!(out.stdout, "thread calls exit(7)\n");
    assert_eq!(out.stderr, "");
}

#[test]
fn max_threads_makes_pthread_create_return_eagain() {
    expect_stdout(
        &guest("thread_limit"),
        &["--max-threads", "4"],
        "create 0: 0\ncreate 1: 0\ncreate 2: 0\ncreate 3: 0\ncreate 4: EAGAIN 1\ncreate after join: 0\n",
    );
}

fn memory_cap_blocks(out: &Outcome) -> u32 {
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.ends_with("enomem 2\n"), "{}", out.stdout);
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("blocks ")?.parse().ok())
        .unwrap()
}

#[test]
fn memory_cap_turns_into_enomem() {
    let wasm = guest("memory_cap");
    // 16 MiB of memory minus the program's own data and stacks.
    let capped = memory_cap_blocks(&run(&wasm, &["--max-memory", "16M"]));
    assert!((8..16).contains(&capped), "{capped} MiB under a 16 MiB cap");
    // The module's own maximum (weft-cc: 256 MiB) is the default cap.
    let uncapped = memory_cap_blocks(&run(&wasm, &[]));
    assert!(
        (240..256).contains(&uncapped),
        "{uncapped} MiB under 256 MiB"
    );
}

#[test]
fn weft_threads_interface_from_c() {
    expect_stdout(
        &guest("weft_api"),
        &[],
        "mode local\nmain id 0x3fffffff\nthread ids in range 1, distinct 1\n",
    );
}

/// `spawn` through the canonical-ABI lowering: the return area gets the
/// discriminant and the thread id; the new thread runs `wasi_thread_start`.
#[test]
fn weft_threads_spawn_abi() {
    let wasm = wat_file(
        "spawn_abi",
        r#"(module
          (import "env" "memory" (memory 1 1 shared))
          (import "weft:threads/threads@0.1.0" "spawn" (func $spawn (param i32 i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          ;; 0: return area; 16: id the child saw; 20: argument the child saw
          (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
            (i32.store (i32.const 20) (local.get $arg))
            (i32.atomic.store (i32.const 16) (local.get $tid))
            (drop (memory.atomic.notify (i32.const 16) (i32.const 1))))
          (func (export "_start")
            (call $spawn (i32.const 1234) (i32.const 0))
            (if (i32.ne (i32.load8_u (i32.const 0)) (i32.const 0))
              (then (call $exit (i32.const 10))))
            (block $seen
              (loop $wait
                (br_if $seen (i32.ne (i32.atomic.load (i32.const 16)) (i32.const 0)))
                (drop (memory.atomic.wait32 (i32.const 16) (i32.const 0) (i64.const -1)))
                (br $wait)))
            (if (i32.ne (i32.load (i32.const 16)) (i32.load (i32.const 4)))
              (then (call $exit (i32.const 11))))
            (if (i32.ne (i32.load (i32.const 20)) (i32.const 1234))
              (then (call $exit (i32.const 12))))
            (call $exit (i32.const 42))))"#,
    );
    let out = run(&wasm, &[]);
    assert_eq!(out.code, Some(42), "{out:?}");
}

/// A module without a shared memory cannot have threads: spawn reports
/// `not-supported` (errno case 1) instead of failing silently.
#[test]
fn spawn_without_shared_memory_is_not_supported() {
    let wasm = wat_file(
        "spawn_unshared",
        r#"(module
          (import "weft:threads/threads@0.1.0" "spawn" (func $spawn (param i32 i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "wasi_thread_start") (param i32 i32))
          (func (export "_start")
            (call $spawn (i32.const 0) (i32.const 8))
            (call $exit (i32.add
              (i32.mul (i32.load8_u (i32.const 8)) (i32.const 10))
              (i32.load (i32.const 12))))))"#,
    );
    let out = run(&wasm, &[]);
    assert_eq!(out.code, Some(11), "{out:?}");
}

fn assert_one_line_error(out: &Outcome, expected: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains(expected), "{}", out.stderr);
}

#[test]
fn bad_modules_get_one_clear_line() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let text = dir.join("not-wasm.wasm");
    std::fs::write(&text, "hello, I am not wasm\n").unwrap();
    assert_one_line_error(&run(&text, &[]), "not a WebAssembly module");

    let truncated = dir.join("truncated.wasm");
    std::fs::write(&truncated, b"\0asm\x01\0\0\0\x01\x05").unwrap();
    assert_one_line_error(&run(&truncated, &[]), "invalid WebAssembly module");

    // Cut inside its code section: the section's declared size runs past
    // the end of the file.
    let real = std::fs::read(guest("exit_from_thread")).unwrap();
    let code = wasmparser::Parser::new(0)
        .parse_all(&real)
        .find_map(|p| match p {
            Ok(wasmparser::Payload::CodeSectionStart { range, .. }) => Some(range),
            _ => None,
        })
        .unwrap();
    let cut = dir.join("cut.wasm");
    std::fs::write(&cut, &real[..(code.start + code.end) / 2]).unwrap();
    assert_one_line_error(&run(&cut, &[]), "the file is truncated");

    let unknown = wat_file(
        "unknown_import",
        r#"(module (import "env" "mystery" (func)) (func (export "_start")))"#,
    );
    assert_one_line_error(
        &run(&unknown, &[]),
        "module imports `env`.`mystery` (function), which Weft does not provide",
    );

    // Every missing import in one line, not the first alone.
    let unknowns = wat_file(
        "unknown_imports",
        r#"(module
          (import "env" "omp_get_num_threads" (func (result i32)))
          (import "env" "__kmpc_fork_call" (func (param i32 i32 i32 i32)))
          (import "env" "table" (table 1 funcref))
          (func (export "_start")))"#,
    );
    assert_one_line_error(
        &run(&unknowns, &[]),
        "module imports 3 things Weft does not provide: `env`.`omp_get_num_threads` (function), `env`.`__kmpc_fork_call` (function), `env`.`table` (table)",
    );

    let no_start = wat_file("no_start", r#"(module (memory (export "memory") 1))"#);
    assert_one_line_error(&run(&no_start, &[]), "exports no `_start` function");

    let no_thread_start = wat_file(
        "no_thread_start",
        r#"(module
          (import "env" "memory" (memory 1 1 shared))
          (import "wasi" "thread-spawn" (func (param i32) (result i32)))
          (func (export "_start")))"#,
    );
    assert_one_line_error(
        &run(&no_thread_start, &[]),
        "does not export `wasi_thread_start(i32, i32)`",
    );

    let unshared = wat_file(
        "unshared_import",
        r#"(module (import "env" "memory" (memory 1)) (func (export "_start")))"#,
    );
    assert_one_line_error(&run(&unshared, &[]), "that is not shared");

    let missing = dir.join("does-not-exist.wasm");
    assert_one_line_error(&run(&missing, &[]), "reading `");
}

#[test]
fn chain_mode_refuses_modules_without_libweft() {
    let wasm = wat_file(
        "threads_without_libweft",
        r#"(module
          (import "env" "memory" (memory 1 1 shared))
          (import "wasi" "thread-spawn" (func (param i32) (result i32)))
          (func (export "wasi_thread_start") (param i32 i32))
          (func (export "_start")))"#,
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.arg("run").arg(&wasm).env("THREAD_MODE", "chain");
    let out = weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap();
    assert_one_line_error(&out, "chain mode needs a guest linked with libweft");
}

/// Racing writes in chain mode: reported with the variable's name; the
/// default policy ends the program, `--on-conflict warn` goes on.
#[test]
fn chain_conflicts_are_reported_and_follow_the_policy() {
    let source = weft_conformance::root().join("programs/racing_writes.c");
    let wasm = suite()
        .build_c_wasm(&source, "host_test_racing_writes")
        .unwrap();
    let out = run(&wasm, &["--thread-mode", "chain"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("conflicting write(s)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`shared_value`): changed by threads"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("use --on-conflict=warn to continue"),
        "{}",
        out.stderr
    );

    let out = run(&wasm, &["--thread-mode", "chain", "--on-conflict", "warn"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "one writer won: 1\n");
    assert!(
        out.stderr.contains("(kept the thread's values)"),
        "{}",
        out.stderr
    );
}

/// In chain mode locks live at home, which sees every wait: a deadlock ends
/// the program with one line naming the waits, not a hang.
#[test]
fn chain_mode_reports_a_deadlock_instead_of_hanging() {
    let out = run(&guest("deadlock"), &["--thread-mode", "chain"]);
    assert_eq!(out.code, Some(134), "{out:?}");
    // The explanation is the first line, before the wasm backtrace.
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("weft: thread 1 trapped: deadlock: every thread of the program waits")
            && first.contains("thread 1 locks the mutex at 0x"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

/// In local mode threads block in the memory's own waits, which the host
/// routes through itself: when every thread waits with no time limit and
/// none has come back for a while, nobody is left to wake them, and the
/// program ends with one line naming the waits instead of hanging.
#[test]
fn local_mode_reports_a_deadlock_instead_of_hanging() {
    for wasm in [guest("deadlock"), guest("three_lockers_deadlock")] {
        let started = std::time::Instant::now();
        let out = run(&wasm, &["--thread-mode", "local", "--timeout", "30s"]);
        assert_eq!(out.code, Some(134), "{out:?}");
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains("trapped: deadlock: every thread of the program waits")
                && first.contains("the main thread waits at 0x")
                && first.contains("thread 1 waits at 0x")
                // The mutexes are named (`lock`, `locks+N`).
                && first.contains("(`lock"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stdout, "");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "found only after {:?}",
            started.elapsed()
        );
    }
}

/// Runs `wasm` in `mode` (20 s at most) with stdin a pipe this test holds
/// open and never writes.
fn run_with_silent_stdin(wasm: &Path, mode: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("run")
        .args(mode)
        .args(["--timeout", "20s"])
        .arg(wasm)
        .env_remove("THREAD_MODE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _input = child.stdin.take();
    child.wait_with_output().unwrap()
}

/// A thread blocked reading a pipe with no input holds nothing the others
/// need: main sleeps, writes, reads a clock and exits, in every mode (a
/// read used to hold the process's one WASI context while it waited).
#[test]
fn a_read_waiting_for_input_stalls_no_other_thread() {
    let wasm = guest("read_blocks_alone");
    for mode in common::EVERY_MODE {
        let out = run_with_silent_stdin(&wasm, mode);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            (out.status.code(), stdout.as_ref()),
            (
                Some(0),
                "main slept, wrote and read the clock while the reader waits\n"
            ),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Threads waiting in `poll` and `select` on a pipe with no input hold
/// nothing the others need: main sleeps, writes and reads a clock while
/// one waits with no limit, and the other's limit ends its wait in time,
/// in every mode (such a poll used to hold the process's one WASI
/// context while it waited).
#[test]
fn a_poll_waiting_for_input_stalls_no_other_thread() {
    let wasm = guest("poll_blocks_alone");
    for mode in common::EVERY_MODE {
        let out = run_with_silent_stdin(&wasm, mode);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            (out.status.code(), stdout.as_ref()),
            (
                Some(0),
                "main slept, wrote and read the clock while the others wait\n\
                 select returned 0 after its limit: yes\n"
            ),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `read`, `poll` and `select` that wait for input, and `poll` and
/// `select` on no descriptor with a timeout (a sleep in old code), are
/// cancellation points, as POSIX lists them: cancelled there, a thread
/// runs its cleanup handler and is joined as cancelled, in every mode; one
/// with cancellation disabled goes on waiting.
#[test]
fn reads_and_polls_that_wait_are_cancellation_points() {
    let wasm = guest("cancel_blocked_io");
    for mode in [
        &["--thread-mode", "local"][..],
        // More threads than slots: a thread waiting for input gives its
        // slot up.
        &["--thread-mode", "chain", "--slots", "2"],
        &[
            "--thread-mode",
            "chain",
            "--slots",
            "2",
            "--hosts",
            "3",
            "--placement",
            "peers",
        ],
    ] {
        let out = run_with_silent_stdin(&wasm, mode);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            (out.status.code(), stdout.as_ref()),
            (
                Some(0),
                "read: cancelled, cleanup ran\n\
                 poll: cancelled, cleanup ran\n\
                 select: cancelled, cleanup ran\n\
                 timed poll: cancelled, cleanup ran\n\
                 timed select: cancelled, cleanup ran\n\
                 the uncancellable reader still waits\n"
            ),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A thread asleep gives its slot up while it sleeps: threads polling a
/// flag with sleeps between looks, more than the slots, let the thread
/// that sets it start (they held every slot and the program hung).
#[test]
fn sleeping_threads_give_their_slot_to_queued_ones() {
    let wasm = guest("sleepers_give_their_slot");
    for mode in [
        &["--thread-mode", "chain", "--slots", "2"][..],
        &[
            "--thread-mode",
            "chain",
            "--slots",
            "1",
            "--peer-slots",
            "1",
            "--hosts",
            "3",
            "--placement",
            "peers",
        ],
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(mode);
        args.extend(["--timeout", "20s", wasm.to_str().unwrap()]);
        let out = weft(&args);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "the flag was set while the others slept\n"),
            "{mode:?}: {out:?}"
        );
    }
}

/// A thread function that calls nothing and keeps an array larger than
/// its stack is stopped as recursion is (LLVM writes the stack pointer
/// back for any leaf frame past its 128-byte red zone); with a stack that
/// holds it, it runs as natively.
#[test]
fn a_leaf_functions_large_frame_is_stopped_too() {
    let wasm = guest("leaf_frame_overflow");
    for mode in ["local", "chain"] {
        let out = weft(&["run", "--thread-mode", mode, wasm.to_str().unwrap()]);
        assert_eq!(out.code, Some(134), "{mode}: {out:?}");
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("weft: thread 1 trapped: stack overflow: "),
            "{mode}: {}",
            out.stderr
        );
        let out = weft(&["run", "--thread-mode", mode, wasm.to_str().unwrap(), "big"]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "sum 73725\n"),
            "{mode}: {out:?}"
        );
    }
}

/// The main thread's stack overflowing, by recursion or by a frame larger
/// than the guard region below it (which the check after each move of the
/// stack pointer cannot see), ends the program with one line that says so
/// and how to give main a larger stack; a frame that fits runs.
#[test]
fn the_main_threads_stack_overflow_is_named_whatever_the_frame() {
    let wasm = guest("main_frame_overflow");
    for mode in common::EVERY_MODE {
        for how in ["matrices", "recurse"] {
            let mut args = vec!["run"];
            args.extend_from_slice(mode);
            args.extend([wasm.to_str().unwrap(), how]);
            let out = weft(&args);
            assert_eq!(out.code, Some(134), "{mode:?} {how}: {out:?}");
            let first = out.stderr.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("weft: the main thread trapped: stack overflow: ")
                    && first.contains("below the bottom of the main thread's stack")
                    && first.contains("-Wl,-z,stack-size="),
                "{mode:?} {how}: {}",
                out.stderr
            );
        }
        let mut args = vec!["run"];
        args.extend_from_slice(mode);
        args.extend([wasm.to_str().unwrap(), "fits"]);
        let out = weft(&args);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "sum 32640\n"),
            "{mode:?}: {out:?}"
        );
    }
}

/// A thread that recurses far past its stack stops the program with one
/// line saying so, on every host, instead of writing over the heap below
/// its stack; a depth that fits runs as natively.
#[test]
fn a_thread_that_overflows_its_stack_is_stopped_with_one_line() {
    let wasm = guest("stack_overflow");
    for mode in common::EVERY_MODE {
        let mut args = vec!["run"];
        args.extend_from_slice(mode);
        args.extend([wasm.to_str().unwrap(), "2000"]);
        let out = weft(&args);
        assert_eq!(out.code, Some(134), "{mode:?}: {out:?}");
        assert_eq!(out.stdout, "", "{mode:?}");
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(
                "weft: thread 1 trapped: stack overflow: a function's frame would start "
            ) && first.contains("bytes below the bottom of the thread's stack (at 0x")
                && first.contains("pthread_attr_setstacksize"),
            "{mode:?}: {}",
            out.stderr
        );
        let mut args = vec!["run"];
        args.extend_from_slice(mode);
        args.extend([wasm.to_str().unwrap(), "20"]);
        let out = weft(&args);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "sum 210\n"),
            "{mode:?}: {out:?}"
        );
    }
}

/// Asynchronous cancellation acts as deferred: a thread computing with
/// no call runs on after the request. That must not pass in silence: the
/// first line on stderr says so, naming the thread (local mode; in chain
/// mode the stall watch speaks).
#[test]
fn an_asynchronous_cancel_that_cannot_act_is_said() {
    let wasm = guest("async_cancel_loop");
    let out = run(&wasm, &["--thread-mode", "local", "--timeout", "2s"]);
    assert_ne!(out.code, Some(0), "{out:?}");
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("weft: pthread_cancel of thread 1: its cancellation is asynchronous"),
        "{}",
        out.stderr
    );
}

#[test]
fn guest_arguments_and_environment() {
    let wasm = wat_file(
        "args_env",
        r#"(module
          (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_sizes_get" (func $envs (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (drop (call $args (i32.const 0) (i32.const 4)))
            (drop (call $envs (i32.const 8) (i32.const 12)))
            ;; exit code = argc * 10 + envc
            (call $exit (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 10))
                                 (i32.load (i32.const 8))))))"#,
    );
    let out = run(&wasm, &["--env", "A=1", "--env", "B=2"]);
    assert_eq!(out.code, Some(12), "argc 1, two variables: {out:?}");
    let out = weft(&["run", "--env", "A=1", wasm.to_str().unwrap(), "x", "--flag"]);
    assert_eq!(out.code, Some(31), "argc 3, one variable: {out:?}");
}

#[test]
fn merge_regions_are_registered_and_checked() {
    expect_stdout(
        &guest("merge_regions"),
        &[],
        "sum over totals: 0\noverlapping: 2\nempty: 1\nmisaligned: 4\nbytewise at any byte: 0\nout of bounds: 3\n",
    );
}

/// A conflict on bytes no symbol names still says where they lie: the
/// heap, or the main thread's stack.
#[test]
fn conflicts_without_a_symbol_say_where_they_lie() {
    let wasm = guest("unnamed_race");
    for (place, said) in [
        (
            "heap",
            "in the heap: a block of malloc's or a thread's stack): changed by threads",
        ),
        ("stack", "in the main thread's stack): changed by threads"),
    ] {
        let out = weft(&[
            "run",
            "--thread-mode",
            "chain",
            wasm.to_str().unwrap(),
            place,
        ]);
        assert_ne!(out.code, Some(0), "{out:?}");
        assert!(out.stderr.contains(said), "{place}: {}", out.stderr);
    }
}

/// Addresses in memory map back to the names of the variables there (for
/// merge-conflict reports).
#[test]
fn data_symbols_name_addresses() {
    let wasm = guest("symbols");
    let out = run(&wasm, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let engine = weft_runtime::engine().unwrap();
    let program = weft_runtime::Program::load(&engine, &std::fs::read(&wasm).unwrap()).unwrap();
    let symbols = program.data_symbols();
    for line in out.stdout.lines() {
        let (name, addr) = line.split_once(' ').unwrap();
        let addr: u32 = addr.parse().unwrap();
        assert_eq!(symbols.describe(addr).as_deref(), Some(name), "{line}");
    }
    let conflict = weft_snapshot::Conflict {
        addr: out
            .stdout
            .lines()
            .next()
            .unwrap()
            .split_once(' ')
            .unwrap()
            .1
            .parse()
            .unwrap(),
        len: 4,
        kind: weft_snapshot::ConflictKind::TwoWriters {
            first: 1,
            second: 2,
        },
    };
    let line = weft_runtime::snapshot::describe_conflict(&conflict, symbols);
    assert!(
        line.ends_with("(4 bytes, `counter`): changed by threads 1 and 2"),
        "{line}"
    );
}

#[test]
fn one_slot_runs_chained_threads_one_at_a_time_and_joins_free_it() {
    let wasm = guest("slots");
    let out = run(&wasm, &["--thread-mode", "chain", "--slots", "1"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "+-+-+-+-", "{out:?}");
    // Parents wait in joins without their slot: no deadlock, and at most
    // one mark-thread runs at a time.
    assert_eq!(lines[1], "+-".repeat(6), "{out:?}");
    assert_eq!(lines[2], "nested sum 21");
}

#[test]
fn slots_must_be_positive() {
    let out = weft(&["run", "--slots", "0", "x.wasm"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--slots"), "{}", out.stderr);
}

#[test]
fn chain_mode_without_write_tracking_gives_the_same_results() {
    // The full-copy path that hosts without userfaultfd take.
    for name in ["nested", "deep_heap", "malloc_threads"] {
        let source = weft_conformance::root().join(format!("programs/{name}.c"));
        let wasm = suite()
            .build_c_wasm(&source, &format!("host_test_full_{name}"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
        cmd.args(["run", "--thread-mode", "chain", wasm.to_str().unwrap()])
            .env("WEFT_WRITE_TRACKING", "off");
        let tracked_off = weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap();
        let tracked = run(&wasm, &["--thread-mode", "chain"]);
        assert_eq!(tracked_off.code, Some(0), "{name}: {tracked_off:?}");
        assert_eq!(tracked_off.stdout, tracked.stdout, "{name}");
    }
}

#[test]
fn a_thread_outliving_its_chained_creator_keeps_its_writes() {
    let wasm = guest("outlive");
    expect_stdout(&wasm, &[], "value 42\n");
    expect_stdout(&wasm, &["--thread-mode", "chain"], "value 42\n");
}

#[test]
fn cluster_certificates_are_made_once_and_keys_stay_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster-cli");
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_str().unwrap();
    let ok = |out: Outcome| assert_eq!(out.code, Some(0), "{out:?}");
    ok(weft(&["cluster", "init", dir_arg]));
    ok(weft(&["cluster", "add-node", dir_arg, "worker-1"]));
    for key in ["ca.key", "worker-1.key"] {
        let mode = std::fs::metadata(dir.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{key} is readable by others");
    }
    let again = weft(&["cluster", "add-node", dir_arg, "worker-1"]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    let bad = weft(&["cluster", "add-node", dir_arg, "../escape"]);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    let init_again = weft(&["cluster", "init", dir_arg]);
    assert_eq!(init_again.code, Some(1), "{init_again:?}");
}

#[test]
fn a_time_limit_ends_a_program_with_124_computing_or_waiting() {
    let wasm = guest("spin");
    // Computing in main, then blocked in a join no epoch would wake; in
    // both modes.
    for (mode, extra) in [
        ("local", None),
        ("local", Some("join")),
        ("chain", Some("join")),
    ] {
        let mut options = vec!["--timeout", "300ms", "--thread-mode", mode];
        let mut args = vec!["run"];
        args.append(&mut options);
        args.push(wasm.to_str().unwrap());
        args.extend(extra);
        let out = weft(&args);
        assert!(!out.timed_out, "weft hung: {out:?}");
        assert_eq!(out.code, Some(124), "{mode} {extra:?}: {out:?}");
        assert_eq!(out.stdout, "spinning\n");
        assert_eq!(out.stderr, "weft: time limit of 300ms reached\n");
    }
    let refused = weft(&["run", "--timeout", "5d", wasm.to_str().unwrap()]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    assert!(
        refused.stderr.contains("invalid duration unit in `5d`"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_chained_thread_spinning_on_a_plain_variable_gets_a_warning() {
    let wasm = guest("stale_flag");
    let wasm = wasm.to_str().unwrap();
    let local = weft(&["run", "--timeout", "20s", wasm]);
    assert_eq!(
        (local.code, local.stdout.as_str()),
        (Some(0), "done\n"),
        "{local:?}"
    );
    assert_eq!(local.stderr, "");
    let chain = weft(&[
        "run",
        "--thread-mode",
        "chain",
        "--stall-warning",
        "1s",
        "--timeout",
        "4s",
        wasm,
    ]);
    assert!(!chain.timed_out, "weft hung: {chain:?}");
    assert_eq!(chain.code, Some(124), "{chain:?}");
    let lines: Vec<&str> = chain.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", chain.stderr);
    assert!(
        lines[0].starts_with("weft: thread ")
            && lines[0].contains("without synchronising while every other thread waits"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "weft: time limit of 4s reached");
}

/// Several chained threads spinning on plain variables, none waiting at
/// home: the stall watch names them once no thread has synchronised for
/// three times its limit, instead of leaving the hang silent.
#[test]
fn chained_threads_spinning_together_get_a_warning() {
    let wasm = guest("stale_flags");
    let wasm = wasm.to_str().unwrap();
    let local = weft(&["run", "--timeout", "20s", wasm]);
    assert_eq!(
        (local.code, local.stdout.as_str()),
        (Some(0), "done\n"),
        "{local:?}"
    );
    let chain = weft(&[
        "run",
        "--thread-mode",
        "chain",
        "--slots",
        "2",
        "--stall-warning",
        "1s",
        "--timeout",
        "6s",
        wasm,
    ]);
    assert!(!chain.timed_out, "weft hung: {chain:?}");
    assert_eq!(chain.code, Some(124), "{chain:?}");
    let lines: Vec<&str> = chain.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", chain.stderr);
    assert!(
        lines[0].starts_with("weft: threads 1 and 2 have run ")
            && lines[0].contains("without synchronising, and no other thread has synchronised"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "weft: time limit of 6s reached");
}

#[test]
fn a_wait_on_memory_no_one_wakes_is_a_reported_deadlock_in_chain_mode() {
    // Local mode waits as natively (until --timeout); chain mode waits at
    // home, where the deadlock detector sees every thread wait.
    let wasm = guest("unwoken_wait");
    let wasm = wasm.to_str().unwrap();
    let local = weft(&["run", "--timeout", "500ms", wasm]);
    assert_eq!(local.code, Some(124), "{local:?}");
    let chain = weft(&["run", "--thread-mode", "chain", "--timeout", "20s", wasm]);
    assert!(!chain.timed_out, "weft hung: {chain:?}");
    assert_eq!(chain.code, Some(134), "{chain:?}");
    assert_eq!(chain.stdout, "waiting\n");
    let first = chain.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("weft: thread ")
            && first.contains("deadlock")
            && first.contains("waits for a wake-up of the memory at"),
        "{}",
        chain.stderr
    );
}

/// Peak resident memory of `weft ARGS` in KiB, its stdout and its stderr
/// (with debug logs of the restores).
#[expect(
    clippy::zombie_processes,
    reason = "reaped by wait4 below, which also reports its peak memory"
)]
fn peak_rss(args: &[&str]) -> (i64, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env_remove("THREAD_MODE")
        .env(
            "WEFT_LOG",
            "weft_runtime::incremental=debug,weft_runtime::chain=debug",
        )
        .env_remove("WEFT_WRITE_TRACKING")
        .env_remove("WEFT_LAZY_RESTORE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut { stderr }, &mut text).unwrap();
        text
    });
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let stderr = errors.join().unwrap();
    let mut status = 0;
    // SAFETY: plain syscall on our own child; `usage` is the kernel's
    // struct, alive for the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    (usage.ru_maxrss, stdout, stderr)
}

#[test]
fn chained_threads_cost_the_memory_they_touch_not_whole_copies() {
    let wasm = guest("sparse_heap");
    let wasm = wasm.to_str().unwrap();
    let (local, local_out, _) = peak_rss(&["run", wasm, "160", "2"]);
    let (chain, chain_out, log) = peak_rss(&["run", "--thread-mode", "chain", wasm, "160", "2"]);
    assert_eq!(chain_out, local_out);
    if log.contains("no lazy restore") || log.contains("no write tracking") {
        eprintln!("no lazy restores here (kernel or rights): chain mode copies whole memories");
        return;
    }
    // The main memory and its image, plus what the threads touch: about
    // twice local mode (whole copies for both threads made it four times).
    assert!(
        chain <= 3 * local,
        "chain mode peaked at {chain} KiB, local mode at {local} KiB"
    );
}

#[test]
fn max_memory_caps_a_memory_the_module_defines_itself() {
    // Grows its own (unshared) memory by 1 MiB until refused, and exits
    // with the MiB it got.
    let wasm = wat_file(
        "own_memory",
        r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 16)
          (func (export "_start")
            (block $full
              (loop $more
                (br_if $full (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
                (br_if $more (i32.lt_u (memory.size) (i32.const 8192)))))
            (call $exit (i32.div_u (memory.size) (i32.const 16)))))"#,
    );
    let out = run(&wasm, &["--max-memory", "64M"]);
    assert_eq!(out.code, Some(64), "{out:?}");
    // Without the cap it reaches the module's own bound (here 512 MiB).
    let out = run(&wasm, &[]);
    assert_eq!(out.code, Some(0), "512 MiB mod 256: {out:?}");
    // A minimum over the cap cannot even start: one clear line.
    let big = wat_file(
        "own_memory_big",
        r#"(module (memory (export "memory") 2048) (func (export "_start")))"#,
    );
    let out = run(&big, &["--max-memory", "64M"]);
    assert_eq!(out.code, Some(134), "{out:?}");
    assert!(out.stderr.starts_with("weft: "), "{}", out.stderr);
}

#[test]
fn more_threads_than_the_host_can_run_is_eagain_not_an_abort() {
    // --max-threads far above what the kernel allows (its mapping limit
    // stopped the runtime at about 10,900 threads here).
    let out = run(
        &guest("os_thread_limit"),
        &["--max-threads", "1000000", "--timeout", "120s"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.ends_with(", then EAGAIN\n"), "{}", out.stdout);
    assert!(
        out.stderr.contains("OS threads run already"),
        "{}",
        out.stderr
    );
}

#[test]
fn clock_settime_is_eperm() {
    expect_stdout(&guest("clock_settime"), &[], "clock_settime: -1 EPERM\n");
}

#[test]
fn a_function_too_large_to_compile_is_refused_at_load() {
    let module = common::giant_function_module();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("giant_function.wasm");
    std::fs::write(&path, module.finish()).unwrap();
    assert_one_line_error(
        &run(&path, &[]),
        "module too large to compile: defined function 0 has",
    );
}

#[test]
fn an_unhandled_signal_ends_the_program_with_128_plus_its_number() {
    let out = run(&guest("signal_default"), &[]);
    assert_eq!(out.code, Some(128 + 10), "{out:?}");
    assert_eq!(out.stdout, "", "a signal does not flush stdout");
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first == "weft: the main thread ended the program: signal 10, whose action is the default",
        "{}",
        out.stderr
    );
}

/// `sched_yield` gives the core away, as natively: on one core, two
/// threads passing a turn with a yield in their wait loops take a few
/// yields a pass. A yield that returns at once (wasmtime-wasi's does
/// nothing) leaves each waiter spinning until it is preempted, hundreds
/// of thousands of yields a pass.
#[test]
fn sched_yield_gives_the_core_to_a_thread_that_needs_it() {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.arg("run")
        .arg(guest("yield_handoff"))
        .env_remove("THREAD_MODE");
    // SAFETY: runs in the child between fork and exec; it only makes
    // the sched_setaffinity system call (async-signal-safe) on a set that
    // lives on this closure's stack, and touches no lock or allocation.
    unsafe {
        cmd.pre_exec(|| {
            let mut one_core: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut one_core);
            if libc::sched_setaffinity(0, std::mem::size_of_val(&one_core), &one_core) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap();
    assert_eq!(out.code, Some(0), "{out:?}");
    let yields: u64 = out
        .stdout
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    // 400 passes: a real yield needs about one a pass.
    assert!(yields < 40_000, "{yields} yields for 400 passes");
}
