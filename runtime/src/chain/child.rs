//! A chained thread's run: restore, `wasi_thread_start`, the merge into
//! its parent and libc's exit path there; at home or for a peer.

use crate::locks::Locked as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use weft_snapshot::{Merger, Snapshot};

use super::arena::{allocate_chunk, release_arena_chunk, zero_along};
use super::support::{ARGS_START_FUNC, ChainSupport, report_conflicts, support};
use crate::calls::CallError;
use crate::home::RemoteCall;
use crate::outcome::Outcome;
use crate::placement::{HomeAgain, Placer, Remote};
use crate::process::Home;
use crate::process::{Merges, Origin, Process, TRAP_EXIT_CODE, ThreadEnd, ThreadMemory};
use crate::snapshot;
use weft_transport::envelope::{
    ChainAnswer, ChainCall, HomeReply, HomeRequest, decode_home, encode_home,
};

pub(super) struct ChildStart {
    pub(super) process: Arc<Process>,
    pub(super) tid: u32,
    pub(super) start_arg: u32,
    pub(super) arena: u32,
    pub(super) parent: Arc<ThreadMemory>,
    /// Shared with the child's memory's origin: a reused arena chunk is
    /// zeroed in it too.
    pub(super) snapshot: Arc<Mutex<Snapshot>>,
    /// The parent memory's merge sequence number the snapshot is current
    /// to (shared with the child's memory, whose sync points move it).
    pub(super) since: Arc<AtomicU32>,
    pub(super) identity: u32,
    /// The thread's start routine (a function table index).
    pub(super) start_func: u32,
    /// The home of its creator: the process, or on a worker the creator's
    /// call.
    pub(super) home: Arc<dyn Home>,
}

impl ChildStart {
    /// Runs the thread here; it holds a slot.
    pub(super) fn run(self) {
        self.home.chained_thread_runs(&self.process);
        let result = self.run_here();
        self.merge_and_finish(result);
    }

    /// The thread's result and changes; `None` when it failed away from
    /// home (its call fails; the program's end is home's to decide).
    fn run_here(&self) -> Option<(u32, weft_snapshot::Diff)> {
        let ran = run_child(
            &self.process,
            (self.tid, self.start_arg, self.arena),
            &self.parent,
            (&self.snapshot, &self.since),
            self.home.clone(),
        );
        let end = match ran {
            Ok(done) => return Some(done),
            Err(ChildError::Exit(code)) => Ok(code),
            Err(ChildError::Trap(e)) => Err(e),
        };
        self.home
            .chained_thread_failed(&self.process, self.tid, end);
        None
    }

    /// Ends the program with `code` at home; away from home, fails the
    /// call instead (home runs the thread that started this one again).
    /// False: the thread's changes did not merge.
    fn end(&self, code: i32, why: String) -> bool {
        self.home.refuse(&self.process, code, why);
        false
    }

    /// Runs the thread on `peer` (or wherever the cluster takes it back
    /// to); it holds no slot here.
    pub(super) fn run_away(self, placer: &dyn Placer, peer: usize) {
        let Some(chain) = support(&self.process) else {
            return;
        };
        let snapshot = self.snapshot.locked().clone();
        let thread = (self.tid, self.start_arg, self.arena);
        let book = RemoteBook::default();
        // Home's copy of the snapshot the thread's copy of memory is
        // current to: its sync calls move it (`sync_away.rs`), and its
        // final diff merges against it.
        let origin = Origin {
            parent: self.parent.clone(),
            snapshot: self.snapshot.clone(),
            since: self.since.clone(),
            published_seen: std::sync::atomic::AtomicU64::new(u64::MAX),
            last_sync: Mutex::new(std::time::Instant::now()),
            stall_warned: AtomicBool::new(false),
        };
        let away = Away {
            book: &book,
            origin: &origin,
            host: peer as u32 + 1,
        };
        let mut home = |request: Vec<u8>| encode_home(&self.serve_home(chain, &request, &away));
        let mut span = crate::trace::span(self.process.tracer(), "on a peer", "remote", self.tid);
        if let Some(span) = &mut span {
            span.on_host(peer as u32 + 1);
            span.arg("snapshot_pages", snapshot.page_count() as u64);
        }
        let process = self.process.clone();
        let ended = move || process.is_ending();
        let outcome = placer.run(
            peer,
            &chain.module_bytes,
            thread,
            &snapshot,
            &mut home,
            crate::placement::Wants {
                effects: &book.effects,
                stoppable: self.process.start_config().time_limit.is_some(),
                ended: &ended,
            },
        );
        drop(span);
        self.process.clocks().forget_away(self.tid);
        // Threads it started on a peer it lost never end there.
        for _ in book.threads.locked().drain(..) {
            self.process.thread_ended();
        }
        let effects = book.effects;
        let lost_after_effects = |why: &str| {
            self.process.end(Outcome::Refused {
                code: 1,
                message: format!(
                    "thread {} cannot finish: {why}, after it synchronised with other threads, changed shared state or started or awaited a function call, so running it again could repeat those changes",
                    self.tid
                ),
            });
        };
        match outcome {
            Remote::Finished {
                value,
                diff,
                output,
                cpu_ns,
            } => {
                self.process.add_cpu_elsewhere(cpu_ns);
                let counted = u64::from(book.counted.swap(true, Ordering::SeqCst));
                placer.count_peer_runs(1 - counted + book.started.load(Ordering::SeqCst));
                print_output(&output);
                self.merge_and_finish(Some((value, diff)));
            }
            Remote::Home { .. } if self.process.is_ending() => {
                // The program ended while the thread was away: nothing
                // waits for it any more.
                self.process.thread_ended();
            }
            // A trap is the same wherever the thread runs: reported as
            // it is, though the thread cannot run again at home.
            Remote::Home {
                why: HomeAgain::Trapped(words),
                ..
            } if effects.load(Ordering::SeqCst) => {
                self.process
                    .end(Outcome::trap(self.tid, trap_told_by_peer(&words)));
            }
            Remote::Home { why, .. } if effects.load(Ordering::SeqCst) => {
                lost_after_effects(&format!("it left its peer ({why})"))
            }
            Remote::Home {
                needs_home,
                ran,
                why,
            } => {
                tracing::debug!(tid = self.tid, "running the thread at home: {why}");
                if needs_home {
                    chain.home_only.locked().insert(self.start_func);
                }
                placer.count_home_run(ran);
                self.process.acquire_slot();
                let result = self.run_here();
                self.merge_and_finish(result);
            }
        }
    }

    /// Serves a call home from this thread running on a peer.
    fn serve_home(&self, chain: &ChainSupport, request: &[u8], away: &Away<'_>) -> HomeReply {
        let book = away.book;
        if !book.counted.swap(true, Ordering::SeqCst)
            && let Some(placer) = &self.process.start_config().placer
        {
            placer.count_peer_runs(1);
        }
        let request = match decode_home::<HomeRequest>(request) {
            Ok(request) => request,
            Err(e) => return HomeReply::Refused(e.to_string()),
        };
        match request {
            HomeRequest::ArenaGrow { size } | HomeRequest::ArenaNew { size } => {
                // A new chunk of this thread's arena, or the first of an
                // arena for a thread it starts on its worker.
                let arena = matches!(request, HomeRequest::ArenaGrow { .. }).then_some(self.arena);
                match allocate_chunk(&self.process, chain, &self.parent, size, arena) {
                    Ok((start, len, dirty)) => {
                        book.chunks.locked().push(start);
                        if dirty {
                            // The thread's memory is the worker's: zero the
                            // range in home's copy of its snapshot, and in
                            // the main memory when that is the parent
                            // (`allocate_chunk` did the other parents).
                            self.snapshot.locked().zero_range(start, len);
                            if self.parent.origin.is_none() {
                                zero_along(&self.parent, start, len);
                            }
                        }
                        HomeReply::Chunk { start, len, dirty }
                    }
                    Err(e) => {
                        tracing::debug!(
                            tid = self.tid,
                            "remote arena-grow of {size} bytes refused: {e}"
                        );
                        HomeReply::NoChunk
                    }
                }
            }
            HomeRequest::ArenaRelease { start } => {
                // Only a chunk home handed to this call goes back.
                let mut chunks = book.chunks.locked();
                let Some(at) = chunks.iter().position(|c| *c == start) else {
                    return HomeReply::Refused(format!(
                        "the chunk at {start:#x} is not one of this call's"
                    ));
                };
                chunks.swap_remove(at);
                drop(chunks);
                match release_arena_chunk(&self.process, start) {
                    Ok(()) => HomeReply::Done,
                    Err(e) => HomeReply::Refused(e.to_string()),
                }
            }
            HomeRequest::NewThread => match self.process.new_thread() {
                Ok(tid) => {
                    book.started.fetch_add(1, Ordering::SeqCst);
                    book.threads.locked().push(tid);
                    HomeReply::Thread(tid)
                }
                Err(_) => HomeReply::NoThread,
            },
            HomeRequest::ThreadEnded { tid } => {
                let mut threads = book.threads.locked();
                match threads.iter().position(|t| *t == tid) {
                    Some(at) => {
                        threads.swap_remove(at);
                        self.process.thread_ended();
                        HomeReply::Done
                    }
                    None => HomeReply::Refused(format!("thread {tid} is not one of this call's")),
                }
            }
            HomeRequest::FdStat { fd: fd @ (1 | 2) } => HomeReply::FdStat(
                crate::wasi::fdstat(&self.process, fd as i32).map(|bytes| bytes.to_vec()),
            ),
            HomeRequest::FdStat { fd } => {
                HomeReply::Refused(format!("fd_fdstat_get of fd {fd} away from home"))
            }
            HomeRequest::Sync { tid, call, .. } if tid != self.tid => {
                // As at home: the program ends with one line naming the
                // thread and what it did.
                let ours = book.threads.locked().contains(&tid);
                if ours {
                    self.process.end(Outcome::trap(
                        tid,
                        wasmtime::Error::msg(format!(
                            "thread {tid} synchronises with other threads ({}), but it was started by a chained thread: in chain mode only threads that the main thread started can share locks, condition variables and barriers",
                            call.name()
                        )),
                    ));
                    return HomeReply::ProgramEnded;
                }
                HomeReply::Refused(format!("thread {tid} is not one of this call's"))
            }
            HomeRequest::Sync {
                tid,
                call,
                released,
                output,
                cpu_ns,
                detached,
            } => {
                if weft_transport::envelope::output_records(&output).is_err() {
                    return HomeReply::Refused(format!(
                        "thread {tid}: the output it sent with {} is malformed",
                        call.name()
                    ));
                }
                // Home's sync state changes and its output is out: the
                // thread cannot run again.
                book.effects.store(true, Ordering::SeqCst);
                print_output(&output);
                self.process.clocks().report_away(tid, cpu_ns);
                let reply = super::sync_away::serve_sync(
                    &self.process,
                    (tid, away.host),
                    away.origin,
                    &call,
                    &released,
                );
                match reply {
                    // The thread went on: an error it cannot see ends the
                    // program here.
                    HomeReply::Synced { value, .. } if detached && value != 0 => {
                        self.process.end(Outcome::Refused {
                            code: 1,
                            message: format!(
                                "thread {tid}: {} failed (error {value}) on a peer after the thread went on",
                                call.name()
                            ),
                        });
                        HomeReply::ProgramEnded
                    }
                    reply => reply,
                }
            }
            HomeRequest::Exit { tid, code, output } => {
                if weft_transport::envelope::output_records(&output).is_err() {
                    return HomeReply::Refused(format!(
                        "thread {tid}: the output it sent with exit is malformed"
                    ));
                }
                let ours = tid == self.tid || book.threads.locked().contains(&tid);
                if !ours {
                    return HomeReply::Refused(format!("thread {tid} is not one of this call's"));
                }
                book.effects.store(true, Ordering::SeqCst);
                print_output(&output);
                tracing::debug!(tid, "exit({code}) on a peer");
                self.process.end(Outcome::Exit(code));
                HomeReply::ProgramEnded
            }
            HomeRequest::ArenaLookup { addr } => {
                // As for home's own threads: a free of a block in a chunk
                // already given back is refused, not handed to libc.
                match super::arena_of_checked(&self.process, self.tid, addr) {
                    Ok(arena) => HomeReply::Arena(arena),
                    Err(e) => HomeReply::Refused(e.to_string()),
                }
            }
            HomeRequest::MergeRegion(region) => {
                // It changes how every later thread merges: no re-run.
                book.effects.store(true, Ordering::SeqCst);
                HomeReply::Region(
                    self.process
                        .register_merge_region(region)
                        .map_err(|e| e as u8),
                )
            }
            HomeRequest::CpuClock { id } => {
                HomeReply::Nanos(crate::wasi::cpu_clock_at_home(&self.process, id))
            }
            HomeRequest::Wasi { tid, .. } if tid != self.tid => HomeReply::Refused(format!(
                "thread {tid}, started on a peer by a chained thread, makes a WASI call only home can make"
            )),
            HomeRequest::Wasi {
                tid,
                name,
                args,
                unreleased,
                output,
            } => {
                if weft_transport::envelope::output_records(&output).is_err() {
                    return HomeReply::Refused(format!(
                        "thread {tid}: the output it sent with {name} is malformed"
                    ));
                }
                // The call changes what others see (a file, a descriptor):
                // the thread cannot run again.
                book.effects.store(true, Ordering::SeqCst);
                print_output(&output);
                super::sync_away::serve_wasi(
                    &self.process,
                    (tid, away.host),
                    away.origin,
                    (&name, &args),
                    &unreleased,
                )
            }
            HomeRequest::Chain(call) => {
                let answer = self.serve_chain(call, book);
                HomeReply::Chain(answer.map_err(|e| e as u8))
            }
            HomeRequest::Global(call) => {
                tracing::debug!(tid = self.tid, "a call home: {call:?}");
                if call.has_effects() {
                    book.effects.store(true, Ordering::SeqCst);
                }
                let state = self.process.state();
                // The owner the calling thread has at home
                // (`state_imports.rs`): this thread or one it started.
                let tid = call.thread().unwrap_or(self.tid);
                let ours = tid == self.tid || book.threads.locked().contains(&tid);
                if !ours {
                    return HomeReply::Refused(format!("thread {tid} is not one of this call's"));
                }
                let owner = self.process.serial() << 32 | tid as u64;
                let answer = crate::home::serve_global(
                    &**state.global(),
                    owner,
                    call,
                    state.limits().lock_timeout,
                );
                HomeReply::Global(answer.map_err(|e| e as u8))
            }
        }
    }

    /// A `weft:chain` operation of this thread (or one it started on its
    /// worker): against this process's input, output and calls; one that
    /// changes what others see forbids a re-run.
    fn serve_chain(&self, call: ChainCall, book: &RemoteBook) -> Result<ChainAnswer, CallError> {
        let (answer, effect) =
            crate::calls::serve_chain(self.process.start_config(), self.process.calls(), call);
        if effect {
            book.effects.store(true, Ordering::SeqCst);
        }
        answer
    }

    /// Merges the thread's changes (if it has a result) into its parent and
    /// runs libc's exit path there, which wakes its joiner.
    fn merge_and_finish(self, result: Option<(u32, weft_snapshot::Diff)>) {
        let Some(chain) = support(&self.process) else {
            return;
        };
        {
            let mut merges = self.parent.merges.locked();
            // A thread that failed away from home still ends (with 0), so
            // its joiner wakes; its call has failed already.
            let value = result
                .and_then(|(value, diff)| self.merge(chain, &mut merges, &diff).then_some(value))
                .unwrap_or(0);
            // The exit path runs the identity routine on the result.
            let mut args = [0u8; 8];
            args[..4].copy_from_slice(&self.identity.to_le_bytes());
            args[4..].copy_from_slice(&value.to_le_bytes());
            let data = self.parent.memory.data();
            let at = (self.start_arg + ARGS_START_FUNC) as usize;
            for (cell, byte) in data[at..at + 8].iter().zip(args) {
                // SAFETY: in bounds; a plain store into guest memory.
                unsafe { cell.get().write_volatile(byte) };
            }
        }
        if self.process.is_ending() {
            // The program has ended: its joiner must not go on (it stops
            // at its next wait instead).
            self.process.thread_ended();
            return;
        }
        // Home hears of the end before the exit path wakes the joiner: the
        // call this thread belongs to may finish right after.
        self.home.chained_thread_exiting(self.tid);
        self.process.run_thread(
            self.tid,
            self.start_arg as i32,
            self.parent.clone(),
            self.home.clone(),
        );
    }

    /// Merges `diff` into the parent's memory (under its merge lock);
    /// false when it could not (away from home; at home the program ends).
    fn merge(&self, chain: &ChainSupport, merges: &mut Merges, diff: &weft_snapshot::Diff) -> bool {
        let tid = self.tid;
        let mut span = crate::trace::span(self.process.tracer(), "merge", "merge", tid);
        if let Some(span) = &mut span {
            span.arg(
                "bytes",
                diff.runs.iter().map(|r| r.bytes.len() as u64).sum(),
            );
        }
        if merges.closed {
            // Its parent (a chained thread) has ended and taken its own
            // diff: these changes would reach no one.
            return self.end(1, format!(
                "thread {tid} ended after the chained thread that created it; in chain mode a thread must end (be joined) before its creator does, or its changes are lost"
            ));
        }
        let memory = &self.parent.memory;
        if (diff.memory_pages as u64) > memory.size()
            && let Err(e) = super::arena::grow_parent(
                memory,
                self.parent.origin.is_none().then_some(chain.heap_grow_lock),
                diff.memory_pages,
                &|| self.process.is_ending(),
            )
        {
            return self.end(
                TRAP_EXIT_CODE,
                format!("thread {tid} trapped: growing the parent memory for a merge: {e:#}"),
            );
        }
        let data = memory.data();
        // SAFETY: merges into one memory are serialised by its merge lock.
        // Other threads on this memory may run meanwhile; the merge's byte
        // writes are what another thread's stores would be to them.
        let base = unsafe {
            std::slice::from_raw_parts_mut(data.as_ptr().cast::<u8>().cast_mut(), data.len())
        };
        let snapshot = self.snapshot.locked();
        let since = self.since.load(Ordering::SeqCst);
        let mut merger = Merger::with_log(&snapshot, &mut merges.log, since);
        let conflicts = match merger.merge(base, diff, tid) {
            Ok(conflicts) => conflicts,
            Err(e) => {
                return self.end(
                    TRAP_EXIT_CODE,
                    format!("thread {tid} trapped: merging the thread's changes: {e}"),
                );
            }
        };
        if self.parent.origin.is_none()
            && let Some(published) = chain.published.locked().as_mut()
        {
            // A thread's end is a release: its last writes are published.
            published.memory_pages = published.memory_pages.max(diff.memory_pages);
            for run in &diff.runs {
                published.write_bytes(run.addr, &run.bytes);
            }
            chain.published_changed();
        }
        if !conflicts.is_empty() {
            if !self.home.decides_conflicts() {
                // Home runs the thread that started this one again and
                // reports the conflicts with its own policy.
                return self.end(
                    1,
                    format!("thread {tid}: {} conflicting write(s)", conflicts.len()),
                );
            }
            if report_conflicts(&self.process, tid, &conflicts, &chain.symbols) {
                return false;
            }
        }
        true
    }
}

/// Why a chained thread did not finish: it called `exit(code)`, or it
/// trapped (or was stopped).
#[derive(Debug)]
pub enum ChildError {
    Exit(i32),
    Trap(wasmtime::Error),
}

impl From<wasmtime::Error> for ChildError {
    fn from(e: wasmtime::Error) -> Self {
        Self::Trap(e)
    }
}

/// What home keeps of a thread running on a peer while it runs.
#[derive(Debug, Default)]
pub(super) struct RemoteBook {
    /// Set once the thread changed shared state: from then on it cannot
    /// run again.
    pub(super) effects: AtomicBool,
    /// Threads it started on its worker that have not ended.
    pub(super) threads: Mutex<Vec<u32>>,
    /// Threads it started on its worker, ended or not.
    pub(super) started: std::sync::atomic::AtomicU64,
    /// Arena chunks home handed to it (the only ones it may give back).
    pub(super) chunks: Mutex<Vec<u32>>,
    /// Whether the thread was counted as running on a peer (at its first
    /// call home: a member of a lasting OpenMP team may never finish
    /// before the program does).
    pub(super) counted: AtomicBool,
}

/// What home serves a thread on a peer with: its book, home's copy of its
/// snapshot, and the peer's number in traces.
struct Away<'a> {
    book: &'a RemoteBook,
    origin: &'a Origin,
    host: u32,
}

/// A slot a thread holds until its store takes it over.
pub(super) struct HeldSlot<'a>(Option<&'a Process>);

impl HeldSlot<'_> {
    fn hand_over(mut self) {
        self.0 = None;
    }
}

impl Drop for HeldSlot<'_> {
    fn drop(&mut self) {
        if let Some(process) = self.0 {
            process.release_slot();
        }
    }
}

/// Prints a remote thread's buffered output records (checked when they
/// arrived).
pub(super) fn print_output(output: &[u8]) {
    let Ok(records) = weft_transport::envelope::output_records(output) else {
        return;
    };
    for (fd, bytes) in records {
        // As a local thread's writes: a closed stream is not an error here.
        let _ = match fd {
            1 => std::io::stdout().lock().write_all(bytes),
            _ => std::io::stderr().lock().write_all(bytes),
        };
    }
    let _ = std::io::stdout().flush();
}

/// Runs chained thread `tid` of a program whose home is another host, on
/// this worker's `process`, from `snapshot`, as part of `call`: its
/// result and its changes. A failure of a thread it started here fails it
/// too (home then runs it itself).
pub fn run_remote(
    process: &Arc<Process>,
    thread: (u32, u32, u32),
    snapshot: Snapshot,
    call: &Arc<RemoteCall>,
) -> Result<(u32, weft_snapshot::Diff), ChildError> {
    let Some(parent) = process.main_memory() else {
        return Err(ChildError::Trap(wasmtime::Error::msg(
            "the module has no shared memory",
        )));
    };
    // Nothing runs on the worker's own main memory: it only stands for the
    // thread's origin (zeroing along a path ends there, harmlessly).
    process.acquire_slot();
    let done = run_child(
        process,
        thread,
        &parent.clone(),
        (
            &Arc::new(Mutex::new(snapshot)),
            &Arc::new(AtomicU32::new(0)),
        ),
        call.clone(),
    );
    // Threads it started here that outlive it (detached) still run: their
    // end decides whether the call succeeds (a late merge fails it).
    if done.is_err() {
        call.cancel();
    }
    call.wait_threads();
    // Home has answered every call the threads went on from.
    call.settle_detached();
    let done = done?;
    match call.failure() {
        Some(why) => Err(ChildError::Trap(wasmtime::Error::new(
            crate::home::NeedsHome(why),
        ))),
        None => Ok(done),
    }
}

/// Runs chained thread `tid` from `snapshot` (of `parent`) in a fresh
/// instance on a memory of its own; returns its start routine's result and
/// what it changed.
pub(super) fn run_child(
    process: &Arc<Process>,
    thread: (u32, u32, u32),
    parent: &Arc<ThreadMemory>,
    from: (&Arc<Mutex<Snapshot>>, &Arc<AtomicU32>),
    home: Arc<dyn Home>,
) -> Result<(u32, weft_snapshot::Diff), ChildError> {
    // A worker runs a peer's thread on the thread its call came in on.
    crate::wasm_stack::with_room(|| run_child_here(process, thread, parent, from, home))
        .unwrap_or_else(|e| {
            Err(ChildError::Trap(wasmtime::Error::msg(format!(
                "thread {}: starting a thread for its stack: {e}",
                thread.0
            ))))
        })
}

fn run_child_here(
    process: &Arc<Process>,
    (tid, start_arg, arena): (u32, u32, u32),
    parent: &Arc<ThreadMemory>,
    (snapshot, since): (&Arc<Mutex<Snapshot>>, &Arc<AtomicU32>),
    home: Arc<dyn Home>,
) -> Result<(u32, weft_snapshot::Diff), ChildError> {
    let chain = support(process).expect("chain mode has chain support");
    // A run away from home is traced at home, as one span on the peer (a
    // worker's process has no tracer).
    let _span = crate::trace::span(process.tracer(), "chained thread", "thread", tid);
    // The slot this job was granted goes back if the thread cannot start.
    let slot = HeldSlot(Some(process));
    let t0 = std::time::Instant::now();
    let (mut child, globals) = {
        let snapshot = snapshot.locked();
        snapshot
            .check_target(chain.layout.module, chain.memory_max_pages)
            .map_err(wasmtime::Error::msg)?;
        // Lazy restores keep a host's memory near what its threads touch:
        // a worker's threads share the pages of the snapshot it keeps as
        // a base instead of each holding a whole copy.
        let lazy = true;
        let mut child = chain.memory(process.engine(), snapshot.memory_pages, lazy)?;
        child.restore(&snapshot).map_err(wasmtime::Error::msg)?;
        (child, snapshot.globals.clone())
    };
    let t1 = t0.elapsed();
    let memory = ThreadMemory::with_origin(
        child.memory.clone(),
        Some(Origin {
            parent: parent.clone(),
            snapshot: snapshot.clone(),
            since: since.clone(),
            published_seen: std::sync::atomic::AtomicU64::new(u64::MAX),
            last_sync: Mutex::new(std::time::Instant::now()),
            stall_warned: AtomicBool::new(false),
        }),
    );
    let (mut store, instance) = match child.instance.take() {
        Some(cached) => cached,
        None => {
            let mut store = process.new_store(tid, None);
            let instance = process.instantiate(&mut store, Some(&memory))?;
            (store, instance)
        }
    };
    if let Some(tracker) = child.tracker() {
        let _ = memory.writes.set(tracker);
    }
    if let Some(fill) = child.lazy_fill() {
        let _ = memory.lazy_fill.set(fill);
    }
    let _watched = chain.watch(process, tid, &memory);
    let state = store.data_mut();
    state.tid = tid;
    state.memory = Some(memory.clone());
    state.arena = arena;
    state.home = home;
    state.cpu_base = crate::cpu_clock::thread_cpu_time();
    state.holds_slot = true; // granted before this job ran
    let clock = process.clocks().enter(tid, state.cpu_base);
    slot.hand_over();
    let t2 = t0.elapsed();
    snapshot::restore_globals(&mut store, &instance, &globals).map_err(wasmtime::Error::msg)?;
    crate::stack_check::forget_bounds(&mut store, &instance)?;
    let start = instance.get_typed_func::<(i32, i32), ()>(&mut store, "wasi_thread_start")?;
    let ended = start.call(&mut store, (tid as i32, start_arg as i32));
    drop(clock);
    let state = store.data();
    state
        .home
        .add_cpu(crate::cpu_clock::thread_cpu_time().saturating_sub(state.cpu_base));
    if store.data().holds_slot {
        store.data_mut().holds_slot = false;
        process.release_slot();
    }
    let value = match ThreadEnd::classify(ended) {
        ThreadEnd::Result(value) => value,
        ThreadEnd::Finished => {
            return Err(ChildError::Trap(wasmtime::Error::msg(
                "chained thread ended without a result (was it built with weft-cc?)",
            )));
        }
        ThreadEnd::Exit(code) => return Err(ChildError::Exit(code)),
        ThreadEnd::Trap(e) => return Err(ChildError::Trap(e)),
    };
    let globals = snapshot::instance_globals(&mut store, &instance, &chain.layout)
        .map_err(wasmtime::Error::msg)?;
    let diff = {
        // Under the memory's merge lock: a thread of its own that merges
        // later finds the memory closed instead of losing its changes.
        let mut merges = memory.merges.locked();
        let written = child.take_written();
        let snapshot = snapshot.locked();
        let candidates = written.or_else(|| snapshot::candidate_pages(&memory.memory));
        // SAFETY: the child's only thread has finished.
        let diff = unsafe {
            snapshot::diff_pages(&mut store, &globals, &memory.memory, &snapshot, candidates)
        }
        .map_err(wasmtime::Error::msg)?;
        merges.closed = true;
        diff
    };
    store.data_mut().home = process.clone();
    // The instance stays with its memory for the next thread.
    store.data_mut().memory = None;
    child.instance = Some((store, instance));
    chain.recycle(memory, child);
    tracing::debug!(
        tid,
        restore_us = t1.as_micros() as u64,
        instantiate_us = (t2 - t1).as_micros() as u64,
        total_us = t0.elapsed().as_micros() as u64,
        "chain child"
    );
    Ok((value, diff))
}

/// A trap as a peer tells it (`{error:?}` of the trap: the wasm backtrace,
/// then "Caused by:" and the trap itself), as an error that reports the
/// same as the trap would have at home.
fn trap_told_by_peer(words: &str) -> wasmtime::Error {
    match words.split_once("\n\nCaused by:") {
        Some((backtrace, cause)) => {
            wasmtime::Error::msg(cause.trim().to_string()).context(backtrace.trim_end().to_string())
        }
        None => wasmtime::Error::msg(words.trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trap_told_by_a_peer_reports_as_the_same_trap_at_home() {
        let words = "error while executing at wasm backtrace:\n    0:   0x1406 - p.wasm!work\n\nCaused by:\n    wasm trap: integer divide by zero";
        let mut report = Vec::new();
        Outcome::trap(3, trap_told_by_peer(words)).report(&mut report);
        assert_eq!(
            String::from_utf8(report).unwrap(),
            "weft: thread 3 trapped: wasm trap: integer divide by zero\n\
             error while executing at wasm backtrace:\n    0:   0x1406 - p.wasm!work\n"
        );
    }

    #[test]
    fn words_without_a_cause_are_the_trap() {
        let mut report = Vec::new();
        Outcome::trap(3, trap_told_by_peer("stack overflow\n")).report(&mut report);
        assert_eq!(
            String::from_utf8(report).unwrap(),
            "weft: thread 3 trapped: stack overflow\n"
        );
    }
}
