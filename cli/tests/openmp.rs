//! OpenMP programs through `weft-cc -fopenmp`: builds of several files,
//! the runtime's limits, constructs refused at link time or at run time,
//! the default team, and ordered loops in chain mode.
//! (Each OpenMP construct is a conformance case with gcc as the oracle.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use weft_conformance::Outcome;

const TIMEOUT: Duration = Duration::from_secs(60);

mod common;

fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guests/openmp")
        .join(name)
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openmp");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a compiler; panics with its output when it fails.
fn compile(program: &Path, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn weft_cc(args: &[&str]) {
    compile(&weft_conformance::weft_cc(), args);
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Builds `sources` for wasm with `-fopenmp` into `name.wasm`.
fn build(name: &str, sources: &[&str]) -> PathBuf {
    let wasm = out_dir().join(format!("{name}.wasm"));
    let sources: Vec<PathBuf> = sources.iter().map(|s| source(s)).collect();
    let mut args = vec!["-fopenmp", "-O2", "-Wall", "-Werror", "-o", path_str(&wasm)];
    args.extend(sources.iter().map(|s| path_str(s)));
    weft_cc(&args);
    wasm
}

fn run(wasm: &Path, options: &[&str]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.arg("run")
        .args(options)
        .arg(wasm)
        .env_remove("THREAD_MODE");
    let out = weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap();
    assert!(!out.timed_out, "weft hung: {out:?}");
    out
}

const TWO_FILES_OUTPUT: &str = "a: critical 4, reduction 499500, long double 1.00\nb: 6999000\n";

#[test]
fn two_files_with_unnamed_critical_sections_link_and_agree_with_gcc() {
    let wasm = build("two_files", &["main.c", "part_b.c"]);
    let out = run(&wasm, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, TWO_FILES_OUTPUT);

    let native = out_dir().join("two_files.native");
    compile(
        Path::new("cc"),
        &[
            "-fopenmp",
            "-O2",
            "-o",
            path_str(&native),
            path_str(&source("main.c")),
            path_str(&source("part_b.c")),
        ],
    );
    let out = weft_conformance::exec::run(&mut Command::new(&native), TIMEOUT).unwrap();
    assert_eq!(out.stdout, TWO_FILES_OUTPUT);
}

#[test]
fn objects_compiled_one_by_one_link_into_the_same_program() {
    let dir = out_dir();
    let (a, b, wasm) = (
        dir.join("main.o"),
        dir.join("part_b.o"),
        dir.join("objects.wasm"),
    );
    for (src, obj) in [("main.c", &a), ("part_b.c", &b)] {
        weft_cc(&[
            "-fopenmp",
            "-O2",
            "-c",
            path_str(&source(src)),
            "-o",
            path_str(obj),
        ]);
    }
    weft_cc(&[
        "-fopenmp",
        path_str(&a),
        path_str(&b),
        "-o",
        path_str(&wasm),
    ]);
    let out = run(&wasm, &[]);
    assert_eq!(out.stdout, TWO_FILES_OUTPUT, "{out:?}");
}

#[test]
fn ordered_loops_keep_their_order_in_every_mode() {
    let wasm = build("ordered", &["ordered.c"]);
    let expected = "53 entries, in order: 1\n";
    assert_eq!(run(&wasm, &[]).stdout, expected);
    let out = run(&wasm, &["--thread-mode", "chain"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), expected),
        "{out:?}"
    );
}

#[test]
fn a_region_with_more_shared_variables_than_supported_is_refused() {
    let wasm = build("many_shared", &["many_shared.c"]);
    let out = run(&wasm, &[]);
    assert_eq!(out.code, Some(134), "{out:?}");
    assert_eq!(
        out.stderr.lines().next(),
        Some("weft: OpenMP: a parallel region with 66 shared variables (at most 64 are supported)")
    );
}

#[test]
fn the_default_team_has_one_thread_per_core_and_the_environment_sets_it() {
    let wasm = build("team_size", &["team_size.c"]);
    let cores = std::thread::available_parallelism().unwrap().get();
    let out = run(&wasm, &[]);
    assert_eq!(
        out.stdout,
        format!("max {cores} team {cores} procs {cores} schedule 1,0\n"),
        "{out:?}"
    );
    let out = run(
        &wasm,
        &[
            "--env",
            "OMP_NUM_THREADS=3",
            "--env",
            "OMP_SCHEDULE=guided,4",
        ],
    );
    assert_eq!(
        out.stdout,
        format!("max 3 team 3 procs {cores} schedule 3,4\n"),
        "{out:?}"
    );
}

#[test]
fn a_construct_the_runtime_does_not_implement_is_refused_at_link_naming_it() {
    let wasm = out_dir().join("interop.wasm");
    let out = Command::new(weft_conformance::weft_cc())
        .args(["-fopenmp", "-O2", "-o", path_str(&wasm)])
        .arg(source("interop.c"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "weft-cc: OpenMP target offloading: not supported by Weft's OpenMP runtime \
         (undefined: __tgt_interop_destroy,__tgt_interop_init)"
    );
}

#[test]
fn a_detachable_task_in_a_team_of_one_is_refused_naming_it() {
    let wasm = build("detach", &["detach.c"]);
    assert_eq!(run(&wasm, &["--env", "OMP_NUM_THREADS=2"]).stdout, "1\n");
    let out = run(&wasm, &["--env", "OMP_NUM_THREADS=1"]);
    assert_eq!(out.code, Some(134), "{out:?}");
    assert_eq!(
        out.stderr.lines().next(),
        Some(
            "weft: OpenMP: a detachable task that is not deferred (in a team of one, \
             a final task or if(0)) is not supported"
        )
    );
}

/// A trap is reported as a trap wherever the thread runs: a team member
/// that traps on a peer after it synchronised cannot run again at home,
/// and its trap used to be buried in a line about that.
#[test]
fn a_member_that_traps_on_a_peer_is_reported_as_trapped() {
    let wasm = build("member_trap", &["member_trap.c"]);
    let expected = "weft: thread 1 trapped: wasm trap: wasm `unreachable` instruction executed";
    for options in common::EVERY_MODE {
        let out = run(&wasm, options);
        assert_eq!(out.code, Some(134), "{options:?}: {out:?}");
        assert_eq!(
            out.stderr.lines().next(),
            Some(expected),
            "{options:?}: {out:?}"
        );
        assert!(out.stderr.contains("omp_outlined"), "{options:?}: {out:?}");
    }
}

/// What gcc 12, the oracle, cannot build runs alike in every mode:
/// `uses_allocators` and the asynchronous device copies.
#[test]
fn uses_allocators_and_asynchronous_copies_run_in_every_mode() {
    let wasm = build("clang_only", &["clang_only.c"]);
    for options in common::EVERY_MODE {
        let out = run(&wasm, options);
        assert_eq!(out.code, Some(0), "{options:?}: {out:?}");
        assert_eq!(
            out.stdout, "aligned 1, copy 0: 1..8, rect 0: 1 2 3 / 5 6 7\n",
            "{options:?}"
        );
    }
}
