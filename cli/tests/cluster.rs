//! Chain mode over many hosts with real processes: a worker killed while
//! it runs threads, a home host from another cluster, and the embedded
//! `--hosts` cluster. (Every conformance case also runs over three
//! `weft serve` processes: the `chain3` column of `tests/conformance.rs`.)

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weft_conformance::hosts::ServeHosts;
use weft_conformance::{Outcome, Suite};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");
const TIMEOUT: Duration = Duration::from_secs(90);

fn guest(name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guests")
        .join(format!("{name}.c"));
    Suite::new(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-guests"),
        WEFT,
    )
    .build_c_wasm(&source, &format!("host_test_{name}"))
    .unwrap()
}

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn weft(args: &[String], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(WEFT);
    cmd.args(args)
        .envs(env.iter().copied())
        .env_remove("THREAD_MODE");
    let out = weft_conformance::exec::run(&mut cmd, TIMEOUT).unwrap();
    assert!(!out.timed_out, "weft hung: {out:?}");
    out
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Long enough (about two seconds a thread here) to kill a host meanwhile.
const LONG: &str = "1000000000";

/// How a home host's run ended.
struct Ended {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `args` (after `weft run --thread-mode chain` and the options that
/// send threads to `hosts`), kills with SIGKILL the first worker that
/// starts a thread once the home host's log contains `after`, and waits
/// for the home host.
fn run_and_kill_a_worker(hosts: &mut ServeHosts, args: &[&str], after: &str) -> Ended {
    let mut main = Command::new(WEFT)
        .args(["run", "--thread-mode", "chain"])
        .args(hosts.run_options())
        .args(args)
        .env("WEFT_LOG", "weft_cluster=debug,weft_runtime::chain=debug")
        .env_remove("THREAD_MODE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = main.stdout.take().unwrap();
    let mut stderr = main.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    let err = std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        loop {
            match stderr.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n])),
            }
        }
    });

    let start = Instant::now();
    let victim = loop {
        let running =
            (0..hosts.count()).find(|&i| hosts.log(i).contains("running a remote thread"));
        if let Some(i) = running
            && log.lock().unwrap().contains(after)
        {
            break i;
        }
        assert!(start.elapsed() < TIMEOUT, "no worker got a thread");
        std::thread::sleep(Duration::from_millis(20));
    };
    hosts.kill(victim).unwrap();

    let status = loop {
        if let Some(status) = main.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = main.kill();
            panic!("the home host hung after losing a worker");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    err.join().unwrap();
    let stderr = log.lock().unwrap().clone();
    Ended {
        code: status.code(),
        stdout: out.join().unwrap().unwrap(),
        stderr,
    }
}

fn serve_hosts(name: &str, count: usize) -> ServeHosts {
    ServeHosts::start(
        Path::new(WEFT),
        &tmp(name),
        count,
        2,
        &[("WEFT_LOG", "weft_cluster=debug")],
    )
    .unwrap()
}

/// `weft run --thread-mode chain --cluster-stats PROGRAM...` with the
/// chained threads sent to `hosts`.
fn run_on(hosts: &ServeHosts, program: &[&str]) -> Outcome {
    let mut args = strings(&["run", "--thread-mode", "chain", "--cluster-stats"]);
    args.extend(hosts.run_options());
    args.extend(strings(program));
    weft(&args, &[])
}

/// `weft run --thread-mode chain --hosts 3 ARGS...`: three hosts in one
/// process.
fn on_three_hosts(args: &[&str]) -> Outcome {
    let mut all = strings(&["run", "--thread-mode", "chain", "--hosts", "3"]);
    all.extend(strings(args));
    weft(&all, &[])
}

/// Asserts that a run ended with 0 and that `peers` threads ran on peers
/// and `home` at home.
fn assert_placed(out: &Outcome, peers: u64, home: u64) {
    assert_eq!(out.code, Some(0), "{out:?}");
    let placed = format!("weft: cluster: {peers} threads ran on peers, {home} at home");
    assert!(out.stderr.contains(&placed), "{}", out.stderr);
}

#[test]
fn a_worker_killed_while_it_runs_threads_costs_time_not_the_result() {
    let wasm = guest("long_thread");
    let wasm_arg = wasm.to_str().unwrap();
    let expected = weft(&strings(&["run", wasm_arg, LONG]), &[]);
    assert_eq!(expected.code, Some(0), "{expected:?}");

    for round in 0..3 {
        let mut hosts = serve_hosts(&format!("cluster-kill-{round}"), 2);
        let ended = run_and_kill_a_worker(&mut hosts, &[wasm_arg, LONG], "");
        assert_eq!(ended.code, Some(0), "round {round}: {}", ended.stderr);
        assert_eq!(
            ended.stdout, expected.stdout,
            "round {round}: {}",
            ended.stderr
        );
        assert!(
            ended.stderr.contains("taking the thread back"),
            "round {round}: the lost threads were not taken back: {}",
            ended.stderr
        );
    }
}

#[test]
fn a_thread_lost_after_it_changed_shared_state_is_not_run_twice() {
    let wasm = guest("state_then_long");
    let mut hosts = serve_hosts("cluster-kill-state", 2);
    // Killed once home has served the thread's append.
    let ended = run_and_kill_a_worker(&mut hosts, &[wasm.to_str().unwrap(), LONG], "Append");
    assert_eq!(ended.code, Some(1), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("cannot finish") && ended.stderr.contains("changed shared state"),
        "{}",
        ended.stderr
    );
    assert!(ended.stdout.is_empty(), "{}", ended.stdout);
}

/// A worker killed while its thread holds a lock the main thread waits
/// for, and while its thread waits at home for a lock the main thread
/// holds: the thread has synchronised, so it cannot run again; the
/// program ends with one clear line, never a hang or a wrong result.
#[test]
fn a_thread_lost_at_a_lock_ends_the_program_clearly() {
    let wasm = guest("lock_on_peer");
    for mode in ["hold", "wait"] {
        let mut hosts = serve_hosts(&format!("cluster-kill-lock-{mode}"), 2);
        let ended = run_and_kill_a_worker(
            &mut hosts,
            &[wasm.to_str().unwrap(), mode, LONG],
            "a sync call home: sync-lock",
        );
        assert_eq!(ended.code, Some(1), "{mode}: {}", ended.stderr);
        assert!(
            ended.stderr.contains("cannot finish")
                && ended
                    .stderr
                    .contains("after it synchronised with other threads"),
            "{mode}: {}",
            ended.stderr
        );
        assert!(!ended.stdout.contains("shared"), "{mode}: {}", ended.stdout);
    }
}

/// A program that ends while its thread waits at home from a peer frees
/// the peer's slot at once (home closes its connections): the next
/// program's thread gets the slot instead of being refused as busy.
#[test]
fn an_ended_program_frees_its_threads_slots_on_peers_at_once() {
    let wasm = guest("parked_thread");
    let hosts = ServeHosts::start(
        Path::new(WEFT),
        &tmp("cluster-parked"),
        1,
        1,
        &[("WEFT_LOG", "weft_cluster=debug")],
    )
    .unwrap();
    for round in 0..3 {
        let out = run_on(&hosts, &[wasm.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "round {round}: {out:?}");
        assert_eq!(out.stdout, "the thread waits; main ends the program\n");
        assert!(
            out.stderr
                .contains("cluster: 1 threads ran on peers, 0 at home"),
            "round {round}: {}",
            out.stderr
        );
    }
}

/// A thread started by a chained thread takes a lock that others share:
/// it is created at home, so it synchronises like any thread, at home and
/// with both threads on peers (none taken back).
#[test]
fn a_thread_a_chained_thread_starts_synchronises_at_home_and_on_peers() {
    let wasm = guest("nested_lock");
    let wasm_arg = wasm.to_str().unwrap();
    let at_home = weft(&strings(&["run", "--thread-mode", "chain", wasm_arg]), &[]);
    assert_eq!(at_home.code, Some(0), "{at_home:?}");
    assert_eq!(at_home.stdout, "count 1\n");
    let on_peers = on_three_hosts(&["--placement", "peers", "--cluster-stats", wasm_arg]);
    assert_placed(&on_peers, 2, 0);
    assert_eq!(on_peers.stdout, at_home.stdout);
}

#[test]
fn threads_on_peers_share_state_through_the_home_global_tier() {
    // Eight threads add 200 each to one counter under the global write
    // lock (pull, read, write, push): four run on the two peers, four at
    // home, and no update is lost.
    let wasm = guest("state_counter");
    let hosts = serve_hosts("cluster-state", 2);
    let mut args = strings(&["run", "--thread-mode", "chain"]);
    args.extend(hosts.run_options());
    args.push("--cluster-stats".into());
    args.push(wasm.to_str().unwrap().into());
    let out = weft(&args, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "counter 1600 (expected 1600), failed calls 0\n");
    assert!(
        out.stderr.contains("cluster: 4 threads ran on peers"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_home_host_of_another_cluster_gets_no_thread_run() {
    let wasm = guest("long_thread");
    let hosts = serve_hosts("cluster-ours", 1);
    // A stranger: a node of its own cluster, pointed at our worker.
    let theirs = tmp("cluster-theirs");
    let _ = std::fs::remove_dir_all(&theirs);
    let theirs_arg = theirs.to_str().unwrap();
    for args in [
        vec!["cluster", "init", theirs_arg],
        vec!["cluster", "add-node", theirs_arg, "main"],
    ] {
        assert_eq!(weft(&strings(&args), &[]).code, Some(0));
    }
    let mut options = hosts.run_options();
    let at = options.iter().position(|o| o == "--cluster").unwrap();
    options[at + 1] = theirs_arg.into();
    let mut args = strings(&["run", "--thread-mode", "chain"]);
    args.extend(options);
    args.extend(strings(&[wasm.to_str().unwrap(), "1000"]));
    let out = weft(&args, &[("WEFT_LOG", "weft_cluster=debug")]);
    // The handshake failed on the certificate (not on a time-out), and the
    // threads ran at home.
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("thread 1 returned 101"), "{out:?}");
    assert!(
        out.stderr.contains("peer unreachable") && out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );
    assert!(
        !hosts.log(0).contains("running a remote thread"),
        "a stranger's thread ran: {}",
        hosts.log(0)
    );
}

#[test]
fn embedded_hosts_run_chained_threads_over_quic() {
    let wasm = guest("long_thread");
    let wasm_arg = wasm.to_str().unwrap();
    let expected = weft(&strings(&["run", wasm_arg, "100000"]), &[]);
    let out = weft(
        &strings(&[
            "run",
            "--thread-mode",
            "chain",
            "--hosts",
            "3",
            "--placement",
            "peers",
            wasm_arg,
            "100000",
        ]),
        &[("WEFT_LOG", "weft_cluster=debug")],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, expected.stdout);
    assert_eq!(
        out.stderr.matches("running a remote thread").count(),
        2,
        "both threads ran on workers: {}",
        out.stderr
    );
    let refused = weft(&strings(&["run", "--hosts", "3", wasm_arg]), &[]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("--thread-mode chain"),
        "{}",
        refused.stderr
    );
}

/// Runs conformance case `name` in chain mode at home and over `--hosts
/// 3` (threads to peers first): the same output, and every thread stayed
/// on the peer it was sent to (none ran at home, none was taken back).
fn stays_on_its_peer(name: &str) {
    let suite = Suite::new(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-guests"),
        WEFT,
    );
    let (wasm, _) = suite.build(&weft_conformance::case(name).unwrap()).unwrap();
    let wasm_arg = wasm.to_str().unwrap();
    let here = weft(&strings(&["run", "--thread-mode", "chain", wasm_arg]), &[]);
    assert_eq!(here.code, Some(0), "{name}: {here:?}");
    let away = weft(
        &strings(&[
            "run",
            "--thread-mode",
            "chain",
            "--hosts",
            "3",
            "--placement",
            "peers",
            wasm_arg,
        ]),
        &[("WEFT_LOG", "weft_cluster=debug,weft_runtime::chain=debug")],
    );
    assert_eq!(away.code, Some(0), "{name}: {away:?}");
    assert_eq!(away.stdout, here.stdout, "{name}");
    assert!(away.stderr.contains("running a remote thread"), "{name}");
    for sign in ["at home", "taking the thread back"] {
        assert!(!away.stderr.contains(sign), "{name}: {}", away.stderr);
    }
}

#[test]
fn a_thread_that_grows_its_heap_stays_on_its_peer() {
    // Its threads realloc past their first arena chunk: each new chunk is
    // a call home over the thread's stream, not a re-run at home.
    stays_on_its_peer("malloc_threads");
}

#[test]
fn a_remote_threads_own_threads_run_away_from_home_too() {
    // Trees of threads: a thread on a peer creates and joins its children
    // at home (a sync call on its stream); home places them like any
    // thread, and none runs again at home.
    stays_on_its_peer("nested");
    stays_on_its_peer("deep_heap");
}

#[test]
fn threads_started_on_a_worker_share_state_with_their_own_lock_owners() {
    // Two threads on peers each start four adders: eight lock owners, one
    // counter, no lost update. The adders are created at home and placed
    // like any thread (peers while they have slots, then home).
    let wasm = guest("state_counter");
    let hosts = serve_hosts("cluster-state-nested", 2);
    let out = run_on(&hosts, &[wasm.to_str().unwrap(), "nested"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "counter 1600 (expected 1600), failed calls 0\n");
    // The two and the eight they started, each counted once; none taken
    // back from a peer.
    let (peers, home) = (stat(&out.stderr, "threads"), stat(&out.stderr, "at"));
    assert_eq!(peers + home, 10, "{}", out.stderr);
    assert!(peers >= 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("(0 taken back from a peer)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_trap_in_a_thread_started_on_a_worker_ends_the_program_not_the_worker() {
    let wasm = guest("nested_trap");
    let hosts = serve_hosts("cluster-nested-trap", 2);
    let mut args = strings(&["run", "--thread-mode", "chain"]);
    args.extend(hosts.run_options());
    args.push(wasm.to_str().unwrap().into());
    let out = weft(&args, &[]);
    assert_eq!(out.code, Some(134), "{out:?}");
    assert!(out.stderr.contains("trapped"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    // The workers live on and serve the next program.
    let wasm = guest("long_thread");
    assert_placed(&run_on(&hosts, &[wasm.to_str().unwrap(), "1000"]), 2, 0);
}

#[test]
fn threads_on_peers_call_functions_through_home() {
    // Each thread calls `square` twice by name (await, await-all, a second
    // await refused, outputs): on a peer the calls go home, where the
    // functions are registered, and the thread stays on its peer.
    let functions = tmp("cluster-functions");
    let _ = std::fs::remove_dir_all(&functions);
    let functions_arg = functions.to_str().unwrap();
    let square = guest("fn_square");
    let added = weft(
        &strings(&[
            "fn",
            "add",
            "square",
            square.to_str().unwrap(),
            "--functions",
            functions_arg,
        ]),
        &[],
    );
    assert_eq!(added.code, Some(0), "{added:?}");
    let wasm = guest("thread_calls");
    let run = |extra: &[&str]| {
        let mut args = strings(&[
            "run",
            "--thread-mode",
            "chain",
            "--functions",
            functions_arg,
        ]);
        args.extend(strings(extra));
        args.push(wasm.to_str().unwrap().into());
        weft(
            &args,
            &[("WEFT_LOG", "weft_cluster=debug,weft_runtime::chain=debug")],
        )
    };
    let here = run(&[]);
    assert_eq!(here.code, Some(0), "{here:?}");
    assert_eq!(here.stdout, "thread 0: 5\nthread 1: 265\nthread 2: 925\n");
    let away = run(&["--hosts", "3", "--placement", "peers"]);
    assert_eq!(away.code, Some(0), "{away:?}");
    assert_eq!(away.stdout, here.stdout);
    assert!(
        away.stderr.contains("running a remote thread"),
        "{}",
        away.stderr
    );
    assert!(!away.stderr.contains("at home"), "{}", away.stderr);
}

/// Runs `weft run --thread-mode chain OPTIONS waves_sum VALUE WAVES` for
/// each `(options, value)` at once; each run's outcome.
fn concurrent_waves(runs: Vec<(Vec<String>, u32)>, waves: u32) -> Vec<Outcome> {
    let wasm = guest("waves_sum");
    let started: Vec<_> = runs
        .into_iter()
        .map(|(options, value)| {
            let mut args = strings(&["run", "--thread-mode", "chain", "--cluster-stats"]);
            args.extend(options);
            args.push(wasm.to_str().unwrap().into());
            args.extend([value.to_string(), waves.to_string()]);
            std::thread::spawn(move || weft(&args, &[]))
        })
        .collect();
    started.into_iter().map(|run| run.join().unwrap()).collect()
}

/// The number before `what` in a `--cluster-stats` line.
fn stat(stderr: &str, what: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("weft: cluster:"))
        .unwrap_or_else(|| panic!("no cluster stats: {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .windows(2)
        .position(|w| w[1] == what)
        .unwrap_or_else(|| panic!("no `{what}` in {line}"));
    words[at].parse().unwrap()
}

#[test]
fn homes_sharing_a_worker_never_see_each_others_memory() {
    // Three homes run one module with different inputs at once on one
    // worker: every wave sums its own program's array, although all
    // three homes number their snapshots alike.
    let hosts =
        ServeHosts::start(Path::new(WEFT), &tmp("cluster-shared-worker"), 1, 12, &[]).unwrap();
    let mut options = hosts.run_options();
    options.extend(strings(&["--peer-slots", "4"]));
    let runs = (1..=3).map(|value| (options.clone(), value)).collect();
    let mut deltas = 0;
    for (value, out) in (1..=3).zip(concurrent_waves(runs, 60)) {
        assert_eq!(out.code, Some(0), "value {value}: {out:?}");
        assert_eq!(out.stdout, format!("value {value}: 60 waves, 0 wrong\n"));
        deltas += stat(&out.stderr, "deltas");
    }
    assert!(deltas > 0, "no delta was sent: the test proves nothing");
}

#[test]
fn programs_sharing_a_worker_never_see_each_others_local_state() {
    // One program's thread sets a key in the worker's local tier (no
    // push); the next program's thread on the same worker looks it up:
    // its own home has no such key, so it finds none.
    let wasm = guest("state_apart");
    let wasm_arg = wasm.to_str().unwrap();
    let hosts = serve_hosts("cluster-state-apart", 1);
    let wrote = run_on(&hosts, &[wasm_arg, "write", "secret-of-the-first"]);
    assert_placed(&wrote, 1, 0);
    let read = run_on(&hosts, &[wasm_arg, "read"]);
    assert_placed(&read, 1, 0);
    assert_eq!(read.stdout, "apart: not found\n");
}

#[test]
fn a_worker_serving_two_home_hosts_keeps_their_programs_apart() {
    // Two home hosts with identities of their own (as two clusters of
    // programs would be) share one worker.
    let hosts = ServeHosts::start(Path::new(WEFT), &tmp("cluster-two-homes"), 1, 8, &[]).unwrap();
    let first = hosts.run_options();
    let second = hosts.run_options_as(Path::new(WEFT), "other-home").unwrap();
    let outs = concurrent_waves(vec![(first, 5), (second, 9)], 40);
    for (value, out) in [5, 9].into_iter().zip(outs) {
        assert_eq!(out.code, Some(0), "value {value}: {out:?}");
        assert_eq!(out.stdout, format!("value {value}: 40 waves, 0 wrong\n"));
        assert!(stat(&out.stderr, "threads") > 0, "{}", out.stderr);
    }
}

#[test]
fn the_default_placement_sends_threads_to_peers_in_every_wave() {
    // Two slots at home and threads that last: in each wave of four, the
    // threads that find no free slot at home go to the first peer (not
    // only in the first waves), and every thread is counted once.
    let wasm = guest("waves_sum");
    let out = on_three_hosts(&[
        "--slots",
        "2",
        "--peer-slots",
        "2",
        "--cluster-stats",
        wasm.to_str().unwrap(),
        "7",
        "10",
        "300",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "value 7: 10 waves, 0 wrong\n");
    let (peers, home) = (stat(&out.stderr, "threads"), stat(&out.stderr, "at"));
    assert_eq!(peers + home, 40, "{}", out.stderr);
    assert!(peers >= 10, "{}", out.stderr);
}

#[test]
fn a_detached_thread_outliving_its_creator_on_a_peer_ends_as_natively() {
    // Created at home, it is a child of the main memory: its end merges
    // there whenever its creator ends.
    let wasm = guest("outlive");
    let out = on_three_hosts(&["--placement", "peers", wasm.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "value 42\n");
}

#[test]
fn a_printing_destructor_on_a_worker_leaves_the_worker_serving() {
    // The destructor runs in the exit path of a thread started on the
    // worker: its output goes home with the call, and the worker lives.
    let suite = Suite::new(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-guests"),
        WEFT,
    );
    let (wasm, _) = suite
        .build(&weft_conformance::case("nested_destructors").unwrap())
        .unwrap();
    let wasm_arg = wasm.to_str().unwrap();
    let here = weft(&strings(&["run", wasm_arg]), &[]);
    assert_eq!(here.code, Some(0), "{here:?}");
    let hosts = serve_hosts("cluster-destructor", 2);
    for _ in 0..2 {
        let out = run_on(&hosts, &[wasm_arg]);
        assert_placed(&out, 2, 0);
        assert_eq!(out.stdout, here.stdout);
    }
}

/// Starts `long_thread` (two threads that compute without calling the
/// host) against `hosts`, waits until the worker runs `running` remote
/// threads in all, and kills the home.
fn kill_a_home_computing_on(hosts: &ServeHosts, running: usize) -> Instant {
    let wasm = guest("long_thread");
    let mut home = Command::new(WEFT)
        .args(["run", "--thread-mode", "chain"])
        .args(hosts.run_options())
        .args([wasm.to_str().unwrap(), "1000000000000000"])
        .env_remove("THREAD_MODE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while hosts.log(0).matches("running a remote thread").count() < running {
        assert!(start.elapsed() < TIMEOUT, "no thread reached the worker");
        std::thread::sleep(Duration::from_millis(20));
    }
    home.kill().unwrap();
    home.wait().unwrap();
    Instant::now()
}

/// Waits until the worker's log says `what` `count` times.
fn wait_for_log(hosts: &ServeHosts, what: &str, count: usize, since: Instant) {
    while hosts.log(0).matches(what).count() < count {
        assert!(
            since.elapsed() < TIMEOUT,
            "not {count} times `{what}`: {}",
            hosts.log(0)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_worker_stops_the_threads_of_a_home_that_died() {
    // The home is killed while both its threads spin on a worker whose
    // guest code has epoch checks: the worker notices (the connection goes
    // idle), stops them at their next epoch tick and frees their slots for
    // the next program.
    let hosts = ServeHosts::start_with(
        Path::new(WEFT),
        &tmp("cluster-orphans"),
        1,
        2,
        &[("WEFT_LOG", "weft_cluster=debug")],
        &["--always-stoppable"],
    )
    .unwrap();
    let killed = kill_a_home_computing_on(&hosts, 2);
    wait_for_log(&hosts, "remote thread stopped", 2, killed);
    eprintln!("orphans stopped {:?} after the kill", killed.elapsed());
    // Both slots are free again: the next program's threads run there.
    let wasm = guest("long_thread");
    assert_placed(&run_on(&hosts, &[wasm.to_str().unwrap(), "1000"]), 2, 0);
}

#[test]
fn a_worker_says_when_a_cancelled_thread_computes_on_and_then_runs_calls_stoppable() {
    // By default guest code on a worker has no epoch checks: threads of a
    // dead home that compute without calling the host run on. The worker
    // says so for each, they keep their slots, and the next calls' threads
    // can be stopped anywhere again.
    let hosts = ServeHosts::start(
        Path::new(WEFT),
        &tmp("cluster-orphans-fast"),
        1,
        4,
        &[("WEFT_LOG", "weft_cluster=debug")],
    )
    .unwrap();
    let killed = kill_a_home_computing_on(&hosts, 2);
    wait_for_log(&hosts, "computes on without calling the host", 2, killed);
    eprintln!("orphans found {:?} after the kill", killed.elapsed());
    let killed = kill_a_home_computing_on(&hosts, 4);
    wait_for_log(&hosts, "remote thread stopped", 2, killed);
    // The orphans still hold two of the four slots.
    let wasm = guest("long_thread");
    let out = run_on(&hosts, &[wasm.to_str().unwrap(), "1000"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(stat(&out.stderr, "threads"), 2, "{}", out.stderr);
}

#[test]
fn a_thread_that_prints_stays_on_its_peer() {
    // libc asks the fdstat of stdout before the first write: home answers
    // it over the call's stream, and the thread stays where it is.
    let wasm = guest("thread_printf");
    let wasm_arg = wasm.to_str().unwrap();
    let here = weft(&strings(&["run", "--thread-mode", "chain", wasm_arg]), &[]);
    assert_eq!(here.code, Some(0), "{here:?}");
    let away = on_three_hosts(&["--placement", "peers", "--cluster-stats", wasm_arg]);
    assert_placed(&away, 3, 0);
    assert_eq!(away.stdout, here.stdout);
    assert!(
        away.stderr.contains("thread 2: and to stderr"),
        "{}",
        away.stderr
    );
}

/// Resident memory of process `pid`, in bytes (Linux).
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb << 10
}

#[test]
fn an_idle_worker_keeps_no_more_than_its_memory_budget() {
    // Five runs of a program whose every snapshot carries 96 MiB of heap:
    // bases, compiled code and warm memories stay within 64 MiB (plus
    // the process's own), however many runs came before.
    let wasm = guest("big_heap");
    let hosts = ServeHosts::start_with(
        Path::new(WEFT),
        &tmp("cluster-worker-memory"),
        1,
        2,
        &[],
        &["--worker-memory", "64M"],
    )
    .unwrap();
    for _ in 0..5 {
        let out = run_on(&hosts, &[wasm.to_str().unwrap(), "96"]);
        assert_placed(&out, 2, 0);
        assert!(out.stdout.starts_with("sum "), "{out:?}");
    }
    let resident = resident_bytes(hosts.pid(0));
    eprintln!("idle worker: {} MiB resident", resident >> 20);
    // Without the budget it kept the runs' bases and memories (> 400 MiB).
    // With it, the process's own memory (code, runtime, allocator arenas
    // of its threads) measured 95-192 MiB here from run to run.
    assert!(resident < 256 << 20, "{} MiB resident", resident >> 20);
}

#[test]
fn a_worker_stops_a_call_past_its_time_limit_and_home_finishes_it() {
    let wasm = guest("long_thread");
    let wasm_arg = wasm.to_str().unwrap();
    let expected = weft(&strings(&["run", wasm_arg, LONG]), &[]);
    let hosts = ServeHosts::start_with(
        Path::new(WEFT),
        &tmp("cluster-call-timeout"),
        1,
        2,
        &[],
        &["--call-timeout", "300ms"],
    )
    .unwrap();
    let mut args = strings(&["run", "--thread-mode", "chain", "--cluster-stats"]);
    args.extend(hosts.run_options());
    args.extend(strings(&[wasm_arg, LONG]));
    let out = weft(&args, &[("WEFT_LOG", "weft_cluster=debug")]);
    assert_placed(&out, 0, 2);
    assert_eq!(out.stdout, expected.stdout);
    assert!(
        out.stderr
            .contains("the call ran past this worker's limit of 300ms"),
        "{}",
        out.stderr
    );
    // Short calls still run there.
    assert_placed(&run_on(&hosts, &[wasm_arg, "1000"]), 2, 0);
}

#[test]
fn home_refuses_a_peer_that_gives_back_a_chunk_it_never_got() {
    use std::sync::{Arc, Mutex};
    use weft_transport::envelope::{HomeReply, HomeRequest, decode_home, encode_home};
    use weft_transport::message::ErrorCode;
    use weft_transport::quic;

    // A hostile worker: each thread it is sent asks home to take back an
    // arena chunk home handed to another thread (the previous call's, or
    // one that does not exist) and to count another thread as ended, then
    // sends the thread home.
    let dir = tmp("cluster-hostile");
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_str().unwrap();
    for args in [
        vec!["cluster", "init", dir_arg],
        vec!["cluster", "add-node", dir_arg, "main"],
        vec!["cluster", "add-node", dir_arg, "hostile"],
    ] {
        assert_eq!(weft(&strings(&args), &[]).code, Some(0));
    }
    let replies: Arc<Mutex<Vec<HomeReply>>> = Arc::default();
    let seen = replies.clone();
    let previous_arena = Arc::new(Mutex::new(0x4000_0000u32));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let identity = quic::NodeIdentity::load(&dir, "hostile").unwrap();
    let endpoint = {
        let _guard = runtime.enter();
        quic::endpoint(&identity, "127.0.0.1:0".parse().unwrap()).unwrap()
    };
    let addr = endpoint.local_addr().unwrap();
    let hooks = quic::WorkerHooks {
        admit: Arc::new(|_, _| Ok(Box::new(()))),
        has_module: Arc::new(|_| true),
        run: Arc::new(move |event, home: quic::HomeLink| {
            let weft_transport::call::WorkerEvent::Run { snapshot, .. } = event else {
                return Err((ErrorCode::Protocol, "not a run".into()));
            };
            let header = snapshot
                .reader()
                .map_err(|e| e.to_string())
                .and_then(|mut payload| {
                    weft_transport::envelope::read_call_header(&mut payload)
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| (ErrorCode::Protocol, e))?;
            let other = std::mem::replace(&mut *previous_arena.lock().unwrap(), header.arena);
            for request in [
                HomeRequest::ArenaRelease { start: other },
                HomeRequest::ThreadEnded {
                    tid: header.tid + 1000,
                },
            ] {
                let reply = home
                    .call(encode_home(&request))
                    .map_err(|e| (ErrorCode::Trapped, e.to_string()))?;
                seen.lock().unwrap().push(decode_home(&reply).unwrap());
            }
            Err((ErrorCode::NeedsHome, "sent home by the test".into()))
        }),
    };
    runtime.spawn(quic::serve(
        endpoint,
        weft_transport::frame::Limits::default(),
        hooks,
    ));

    let wasm = guest("long_thread");
    let expected = weft(&strings(&["run", wasm.to_str().unwrap(), "1000"]), &[]);
    let out = weft(
        &strings(&[
            "run",
            "--thread-mode",
            "chain",
            "--cluster",
            dir_arg,
            "--node",
            "main",
            "--peers",
            &format!("hostile@{addr}"),
            "--placement",
            "peers",
            wasm.to_str().unwrap(),
            "1000",
        ]),
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, expected.stdout);
    let replies = replies.lock().unwrap();
    assert!(!replies.is_empty(), "no thread reached the hostile worker");
    for reply in replies.iter() {
        match reply {
            HomeReply::Refused(why) => assert!(why.contains("not one of this call's"), "{why}"),
            other => panic!("home served a foreign request: {other:?}"),
        }
    }
}

#[test]
fn a_detached_thread_that_never_ends_does_not_hold_its_creator_on_a_peer() {
    // On a worker the creator's call would wait for the thread it started
    // forever; it is given up after a grace period and runs at home,
    // where the program ends with main as natively.
    let wasm = guest("outlive_forever");
    let wasm_arg = wasm.to_str().unwrap();
    let here = weft(&strings(&["run", "--thread-mode", "chain", wasm_arg]), &[]);
    assert_eq!(here.code, Some(0), "{here:?}");
    assert_eq!(here.stdout, "creator returned 7\n");
    let away = on_three_hosts(&["--placement", "peers", wasm_arg]);
    assert_eq!(away.code, Some(0), "{away:?}");
    assert_eq!(away.stdout, here.stdout);
}
