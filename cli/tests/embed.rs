//! The runtime as a library inside a long-running process (a server that
//! invokes functions): a program whose thread traps or calls `exit` ends
//! with its typed outcome, its other threads stop (blocked in a wait or
//! computing), and the embedding process stays up, call after call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_runtime::outcome::{EndKind, MAIN_TID};
use weft_runtime::{Outcome, Program, StartConfig, ThreadMode};

mod common;

/// Threads of this OS process now.
fn os_threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Names of this OS process's threads, counted, for reports.
fn thread_names() -> std::collections::BTreeMap<String, usize> {
    let mut names = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        *names.entry(name.trim().to_string()).or_default() += 1;
    }
    names
}

/// Runs `program` with argument `how` `times` times in `mode`, checking
/// each outcome, then that the program's threads are gone.
fn run_many(
    program: &Program,
    (how, mode): (&str, ThreadMode),
    times: usize,
    check: impl Fn(&Outcome),
) {
    // One at a time: the count of OS threads is the whole test process's.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = os_threads();
    for i in 0..times {
        let config = StartConfig {
            args: vec![format!("run-{i}"), how.to_string()],
            mode,
            inherit_stdin: false,
            ..StartConfig::default()
        };
        let process = program.start(&config).expect("starting");
        let started = Instant::now();
        let outcome = process.run_main();
        check(&outcome);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{mode:?} run {i} took {:?}",
            started.elapsed()
        );
    }
    // Stopped threads go within an epoch tick or a wake at the end, and
    // an ended program's idle OS threads with it: nothing grows with the
    // number of runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    while os_threads() > before + 16 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        os_threads() <= before + 16,
        "{mode:?}: {} OS threads after {times} runs, {before} before: {:?}",
        os_threads(),
        thread_names()
    );
}

/// `tests/guests/thread_ends.c`, loaded as a server would.
fn load() -> Program {
    // The interruptible engine, as a server uses: threads that compute
    // forever stop at the next epoch tick once their program has ended.
    let engine = weft_runtime::worker_engine().expect("an engine");
    let bytes = std::fs::read(common::guest("thread_ends")).expect("the guest");
    Program::load(&engine, &bytes).expect("loading")
}

#[test]
fn a_trapping_thread_ends_its_program_not_the_embedding_process() {
    let program = load();
    let check = |outcome: &Outcome| {
        match outcome {
            Outcome::Trap { thread, error } => {
                assert_ne!(*thread, MAIN_TID, "the trapping thread is named");
                assert!(format!("{error:?}").contains("unreachable"), "{error:?}");
            }
            other => panic!("expected a trap, got {other:?}"),
        }
        assert_eq!(outcome.exit_code(), 134);
    };
    run_many(&program, ("trap", ThreadMode::Local), 100, check);
    run_many(&program, ("trap", ThreadMode::Chain), 100, check);
}

#[test]
fn exit_in_a_thread_ends_its_program_not_the_embedding_process() {
    let program = load();
    let check = |outcome: &Outcome| {
        assert!(matches!(outcome, Outcome::Exit(3)), "{outcome:?}");
        assert_eq!(outcome.kind(), EndKind::Exit);
    };
    run_many(&program, ("exit", ThreadMode::Local), 100, check);
    run_many(&program, ("exit", ThreadMode::Chain), 100, check);
}

#[test]
fn the_end_hook_runs_once_with_the_outcome() {
    let program = load();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let config = StartConfig {
        args: vec!["main".into(), "exit".into()],
        inherit_stdin: false,
        on_end: Some(weft_runtime::OnEnd(Arc::new(move |outcome| {
            record.lock().unwrap().push(outcome.exit_code());
        }))),
        ..StartConfig::default()
    };
    let outcome = program.start(&config).unwrap().run_main();
    assert_eq!(outcome.exit_code(), 3);
    assert_eq!(*seen.lock().unwrap(), vec![3]);
}

#[test]
fn a_time_limit_stops_a_program_that_never_ends() {
    let program = load();
    for mode in [ThreadMode::Local, ThreadMode::Chain] {
        let config = StartConfig {
            args: vec!["main".into(), "never".into()],
            mode,
            inherit_stdin: false,
            time_limit: Some(Duration::from_millis(200)),
            ..StartConfig::default()
        };
        let started = Instant::now();
        let outcome = program.start(&config).unwrap().run_main();
        assert!(
            matches!(outcome, Outcome::TimeLimit(_)),
            "{mode:?}: {outcome:?}"
        );
        assert_eq!(outcome.exit_code(), 124);
        assert!(started.elapsed() < Duration::from_secs(5), "{mode:?}");
    }
}
