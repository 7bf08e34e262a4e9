//! A memory full of heap arenas: in chain mode every thread's heap is an
//! arena of chunks of the shared memory, so a program that starts many
//! threads, or whose threads allocate until nothing is left, fills the
//! memory with arenas. `pthread_create` must then fail with EAGAIN and
//! `malloc` with ENOMEM, and the program must end, in every mode (a hang
//! ends the run at the time limit and fails the test).

use std::process::Command;
use std::time::Duration;

mod common;

const TIMEOUT: Duration = Duration::from_secs(120);

const EXPECTED: &str =
    "holders: failures EAGAIN or ENOMEM: yes\nnested: failures EAGAIN or ENOMEM: yes\n";

fn run(options: &[&str]) -> weft_conformance::Outcome {
    let wasm = common::guest("arena_full");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.arg("run")
        .args(options)
        .arg(&wasm)
        .env_remove("THREAD_MODE");
    weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap()
}

/// Under the smaller cap a join once found no room to run at home, and
/// the program ended after a minute's wait (with 8 MiB of it taken by a
/// main stack that large); it works down to 10M.
#[test]
fn a_memory_full_of_arenas_fails_creates_and_allocations_and_ends() {
    for cap in ["10M", "16M", "32M"] {
        // And over 3 hosts with the threads placed by load.
        let by_load: &[&str] = &["--thread-mode", "chain", "--hosts", "3"];
        for mode in common::EVERY_MODE.into_iter().chain([by_load]) {
            let mut options = mode.to_vec();
            options.extend(["--max-memory", cap]);
            let out = run(&options);
            assert_eq!(out.code, Some(0), "{options:?}: {out:?}");
            assert_eq!(out.stdout, EXPECTED, "{options:?}: {out:?}");
        }
    }
}

/// Threads started until `pthread_create` fails, under caps around 32M:
/// libc's heap (dlmalloc on `sbrk`) grows until one growth fails halfway,
/// and dlmalloc then gives back what it just got with a negative `sbrk`,
/// which wasi-libc answers with `abort`. It must be EAGAIN, never a trap.
#[test]
fn creating_threads_until_eagain_never_traps() {
    let wasm = common::guest("create_until_eagain");
    for cap in ["30M", "32M", "34M"] {
        for mode in ["local", "chain"] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
            cmd.args(["run", "--thread-mode", mode, "--max-memory", cap])
                .arg(&wasm)
                .env_remove("THREAD_MODE");
            let out = weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap();
            assert_eq!(
                (out.code, out.stdout.as_str()),
                (
                    Some(0),
                    "creates failed with EAGAIN after some threads: yes\n"
                ),
                "{mode} {cap}: {}",
                out.stderr
            );
        }
    }
}
