//! A worker host (`weft serve`): runs chained threads for other hosts.
//!
//! It compiles each module it is sent itself (the call names the module by
//! content hash; the transport checks the bytes) and keeps it, with a
//! process of its own in chain mode whose imports are those of a remote
//! thread (`remote.rs`). It keeps the last snapshots of each module it
//! ran, so that a later call may send only the pages that changed.
//!
//! Guest code runs without epoch checks (`WorkerEngines::fast`, 1.2-1.4x
//! faster) unless a call must be stoppable anywhere: when its program has
//! a time limit, when the worker has one for calls (or has no fast
//! engine), or while a cancelled call's thread it could not stop still
//! runs. A cancelled thread on the fast engine stops at its next host
//! call; one that computes on without any is an orphan: it keeps its slot
//! until it ends (the slots stay an honest count of the CPUs in use), the
//! worker says so once, and its next calls run stoppable until every
//! orphan has ended (`orphans.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use weft_runtime::locks::Locked as _;

use weft_runtime::WorkerEngines;
use weft_snapshot::{Snapshot, wire};
use weft_transport::call::WorkerEvent;
use weft_transport::message::ErrorCode;
use weft_transport::quic::{Admission, HomeLink};

use weft_runtime::away::{self, ChildError, NeedsHome, RemoteCall};
use weft_runtime::process::Cancelled;
use weft_runtime::{Process, Program, StartConfig, ThreadMode};
use weft_transport::envelope::{self, CallHeader};
use weft_transport::payload::Arrived;

use crate::bases::BaseStore;
use crate::orphans::Orphans;

/// Compiled modules kept at most; past it (or past the memory budget) the
/// one used longest ago and not running goes (it is fetched and compiled
/// again if a call needs it).
const MODULES_KEPT: usize = 16;

/// What a worker keeps between calls, by default: base snapshots, compiled
/// modules and their warm memories (`weft serve --worker-memory`).
pub const DEFAULT_WORKER_MEMORY: u64 = 1 << 30;

/// A failed call: its code and what to say.
pub type CallFailure = (ErrorCode, String);

/// A compiled program is kept per module and per engine.
type ModuleKey = ([u8; 32], Stop);

/// Where a call's threads can be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Stop {
    /// At their next host call (no epoch checks in guest code).
    AtHostCall,
    /// Anywhere, within an epoch tick.
    Anywhere,
}

pub struct WorkerHost {
    engines: WorkerEngines,
    slots: usize,
    running: Arc<AtomicUsize>,
    modules: Mutex<HashMap<ModuleKey, Arc<WorkerModule>>>,
    /// Calls running on the fast engine, watched for orphans.
    orphans: Arc<Orphans>,
    /// Whole snapshots of one module decode one at a time, so that the
    /// next shares the pages of the one before (threads sent at once hold
    /// mostly the same pages) instead of holding a copy of each.
    decoding: Mutex<HashMap<[u8; 32], Arc<Mutex<()>>>>,
    /// Base snapshots of every program this worker serves, by module and
    /// snapshot id (see `bases.rs`).
    bases: Mutex<BaseStore>,
    /// Bytes the caches (bases, modules, warm memories) may hold.
    memory: u64,
    /// How long one call may run here.
    call_limit: Option<std::time::Duration>,
    limits: wire::Limits,
    uses: AtomicU64,
}

struct WorkerModule {
    process: Arc<Process>,
    /// The module's bytes, to compile it for the other engine.
    original: Arc<[u8]>,
    /// Its compiled code's size, for the memory budget.
    code_bytes: u64,
    /// When a call last used it (a counter, for eviction).
    last_used: AtomicU64,
}

impl WorkerModule {
    /// What keeping it costs: its code and its warm memories.
    fn footprint(&self) -> u64 {
        self.code_bytes + self.original.len() as u64 + self.process.pooled_memory_bytes()
    }
}

impl std::fmt::Debug for WorkerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHost")
            .field("slots", &self.slots)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

/// An admitted call's slot, given back when the call ends, however it
/// ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WorkerHost {
    /// A worker running at most `slots` threads at once and keeping at most
    /// `memory` bytes of caches between calls.
    pub fn new(engines: WorkerEngines, slots: usize, memory: u64) -> Arc<Self> {
        Self::with_call_limit(engines, slots, memory, None)
    }

    /// [`Self::new`], stopping any call that runs longer than `call_limit`
    /// (its home then runs the thread elsewhere or itself).
    pub fn with_call_limit(
        engines: WorkerEngines,
        slots: usize,
        memory: u64,
        call_limit: Option<std::time::Duration>,
    ) -> Arc<Self> {
        Arc::new(Self {
            call_limit,
            engines,
            orphans: Arc::default(),
            decoding: Mutex::default(),
            slots: slots.max(1),
            running: Arc::default(),
            modules: Mutex::default(),
            bases: Mutex::new(BaseStore::new(memory)),
            memory,
            limits: wire::Limits::default(),
            uses: AtomicU64::new(0),
        })
    }

    /// Calls begun here so far (each looks its module up once).
    pub fn calls_begun(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }

    /// Calls running now.
    pub fn slots_in_use(&self) -> usize {
        self.running.load(Ordering::Relaxed).min(self.slots)
    }

    /// Memory kept between calls: base snapshots, compiled programs and
    /// their warm memories.
    pub fn memory_kept(&self) -> u64 {
        let modules: u64 = self.lock_modules().values().map(|m| m.footprint()).sum();
        modules + self.lock_bases().used()
    }

    pub fn has_module(&self, hash: &[u8; 32]) -> bool {
        self.lock_modules().keys().any(|(h, _)| h == hash)
    }

    /// Threads of cancelled calls that compute on without calling the host
    /// (each keeps its slot until it ends).
    pub fn orphans(&self) -> usize {
        self.orphans.count()
    }

    /// Where the threads of a call that begins now can be stopped.
    fn stop_for_new_call(&self) -> Stop {
        if self.call_limit.is_some() || self.engines.fast.is_none() || self.orphans.count() > 0 {
            Stop::Anywhere
        } else {
            Stop::AtHostCall
        }
    }

    fn lock_modules(&self) -> std::sync::MutexGuard<'_, HashMap<ModuleKey, Arc<WorkerModule>>> {
        self.modules.locked()
    }

    fn lock_bases(&self) -> std::sync::MutexGuard<'_, BaseStore> {
        self.bases.locked()
    }

    /// Takes a slot for a call that begins, before its snapshot is sent;
    /// `Busy` when every slot is taken.
    pub fn admit(&self) -> Result<Admission, CallFailure> {
        if self.running.fetch_add(1, Ordering::SeqCst) >= self.slots {
            self.running.fetch_sub(1, Ordering::SeqCst);
            return Err((
                ErrorCode::Busy,
                format!("all {} slots are busy", self.slots),
            ));
        }
        Ok(Box::new(Slot(self.running.clone())))
    }

    /// Runs one admitted call: the thread's result and the result payload,
    /// or why not.
    pub fn run(&self, event: WorkerEvent, home: HomeLink) -> Result<(u32, Vec<u8>), CallFailure> {
        let WorkerEvent::Run {
            module: hash,
            module_bytes,
            snapshot,
        } = event
        else {
            return Err((ErrorCode::Cancelled, "cancelled by the requester".into()));
        };
        let started = Instant::now();
        // The payload is unpacked as it is decoded, and goes once decoded:
        // the thread runs long after.
        let (header, snapshot) = {
            let payload = snapshot;
            self.snapshot(hash, &payload)?
        };
        // A program with a time limit needs its threads stoppable anywhere.
        let stop = match header.stoppable {
            true => Stop::Anywhere,
            false => self.stop_for_new_call(),
        };
        let module = self.module(hash, module_bytes, stop)?;
        tracing::debug!(tid = header.tid, "running a remote thread");
        let call = RemoteCall::new(home, self.call_limit.map(|limit| started + limit));
        let _watched = (stop == Stop::AtHostCall).then(|| self.orphans.watch(&call, header.tid));
        let ran = away::run_remote(
            &module.process,
            (header.tid, header.start_arg, header.arena),
            snapshot,
            &call,
        );
        let output = call.take_output();
        tracing::debug!(
            tid = header.tid,
            us = started.elapsed().as_micros() as u64,
            "remote thread ran"
        );
        drop(module);
        self.trim();
        match ran {
            Ok((value, diff)) => Ok((
                value,
                envelope::encode_result(&wire::encode_diff(&diff), &output, call.cpu_ns()),
            )),
            Err(ChildError::Exit(code)) => Err((
                ErrorCode::NeedsHome,
                format!("the thread called exit({code})"),
            )),
            Err(ChildError::Trap(e)) if e.downcast_ref::<Cancelled>().is_some() => {
                tracing::debug!(tid = header.tid, "remote thread stopped: {e}");
                let why = match self.call_limit {
                    Some(limit) if call.past_deadline() => {
                        format!("the call ran past this worker's limit of {limit:?}")
                    }
                    _ => e.to_string(),
                };
                Err((ErrorCode::Cancelled, why))
            }
            Err(ChildError::Trap(e)) => match e.downcast_ref::<NeedsHome>() {
                Some(needs) => Err((ErrorCode::NeedsHome, needs.to_string())),
                None => Err((ErrorCode::Trapped, format!("{e:?}"))),
            },
        }
    }

    /// Keeps the caches within the memory budget: warm memories of idle
    /// programs go first, then the least recently used bases, then the
    /// least recently used idle programs.
    fn trim(&self) {
        let mut modules = self.lock_modules();
        let mut bases = self.lock_bases();
        let kept = |modules: &HashMap<ModuleKey, Arc<WorkerModule>>, bases: &BaseStore| {
            bases.used() + modules.values().map(|m| m.footprint()).sum::<u64>()
        };
        if kept(&modules, &bases) <= self.memory {
            return;
        }
        for module in modules.values().filter(|m| Arc::strong_count(m) == 1) {
            module.process.drop_pooled_memories();
        }
        while kept(&modules, &bases) > self.memory && bases.evict_one() {}
        while kept(&modules, &bases) > self.memory && evict_idle_module(&mut modules, &mut bases) {}
        tracing::debug!(
            bytes = kept(&modules, &bases),
            modules = modules.len(),
            bases = bases.len(),
            "worker caches trimmed"
        );
        drop((modules, bases));
        release_freed_memory();
    }

    /// The module by hash, compiled here the first time (from the bytes
    /// the transport checked against the hash).
    fn module(
        &self,
        hash: [u8; 32],
        bytes: Option<Vec<u8>>,
        stop: Stop,
    ) -> Result<Arc<WorkerModule>, CallFailure> {
        let now = self.uses.fetch_add(1, Ordering::Relaxed);
        if let Some(module) = self.lock_modules().get(&(hash, stop)) {
            module.last_used.store(now, Ordering::Relaxed);
            return Ok(module.clone());
        }
        // Kept for the other engine: compiled there when a call needs it.
        let kept_bytes = self
            .lock_modules()
            .iter()
            .find(|((h, _), _)| *h == hash)
            .map(|(_, module)| module.original.clone());
        let bytes: Arc<[u8]> = match (bytes, kept_bytes) {
            (Some(sent), _) => sent.into(),
            (None, Some(kept)) => kept,
            (None, None) => {
                return Err((ErrorCode::Protocol, "the module was not sent".into()));
            }
        };
        let refused = |stage: &str, e: &dyn std::fmt::Display| {
            (
                ErrorCode::Trapped,
                format!("{stage} the module on this worker: {e:#}"),
            )
        };
        let engine = match (stop, &self.engines.fast) {
            (Stop::AtHostCall, Some(fast)) => fast,
            _ => &self.engines.stoppable,
        };
        let program = Program::load(engine, &bytes).map_err(|e| refused("loading", &e))?;
        let config = StartConfig {
            args: vec!["remote".into()],
            mode: ThreadMode::Chain,
            inherit_stdin: false,
            slots: Some(self.slots),
            ..StartConfig::default()
        };
        let process = program
            .start_worker(&config)
            .map_err(|e| refused("starting", &e))?;
        let module = Arc::new(WorkerModule {
            code_bytes: program.code_bytes(),
            original: program.module_bytes(),
            process,
            last_used: AtomicU64::new(now),
        });
        let mut modules = self.lock_modules();
        if modules.len() >= MODULES_KEPT {
            evict_idle_module(&mut modules, &mut self.lock_bases());
        }
        Ok(modules.entry((hash, stop)).or_insert(module).clone())
    }

    /// The call's snapshot, rebuilt from its base when it is a delta (the
    /// base named by module and id, so only the snapshot the delta was cut
    /// from); it becomes a base for later calls.
    fn snapshot(
        &self,
        module: [u8; 32],
        payload: &Arrived,
    ) -> Result<(CallHeader, Snapshot), CallFailure> {
        let protocol = |e: &dyn std::fmt::Display| (ErrorCode::Protocol, e.to_string());
        let mut payload = payload.reader().map_err(|e| protocol(&e))?;
        let header = envelope::read_call_header(&mut payload).map_err(|e| protocol(&e))?;
        let turn = header.base.is_none().then(|| {
            let mut decoding = self.decoding.locked();
            decoding.retain(|_, turn| Arc::strong_count(turn) > 1);
            decoding.entry(module).or_default().clone()
        });
        let _my_turn = turn.as_ref().map(|turn| turn.locked());
        // A whole snapshot shares the pages it has in common with the
        // latest base of its program (threads sent at once each come
        // whole, and mostly hold the same pages).
        let like = match header.base {
            None => self.lock_bases().latest(&module).cloned(),
            Some(_) => None,
        };
        // Read page by page from the unpacking payload: neither the
        // payload nor its pages that equal the base's are held whole.
        let sent = wire::read_snapshot_sharing(&mut payload, &self.limits, like.as_ref())
            .map_err(wire_failure)?;
        if sent.module.0 != module {
            return Err(protocol(&"the snapshot is of another module than the call"));
        }
        let mut bases = self.lock_bases();
        let snapshot = match header.base {
            // Another call of the program may have brought its base while
            // this one was decoding.
            None if like.is_none() => {
                let mut sent = sent;
                if let Some(latest) = bases.latest(&module) {
                    sent.share_pages_with(latest);
                }
                sent
            }
            None => sent,
            Some(base_id) => {
                let Some(base) = bases.find(&module, &base_id) else {
                    return Err((
                        ErrorCode::UnknownBase,
                        format!("no base snapshot {} here", base_id.seq),
                    ));
                };
                envelope::apply_delta(base, &sent).map_err(|e| protocol(&e))?
            }
        };
        bases.insert(module, header.snapshot_id, snapshot.clone());
        Ok((header, snapshot))
    }
}

/// What a snapshot that could not be read is answered with: `TooLarge`
/// when its payload unpacked past the limit (a payload packed as a stream
/// declares no size, so only reading it finds out: the unpacking reader
/// fails with `FileTooLarge`), `Protocol` otherwise.
fn wire_failure(e: wire::WireError) -> CallFailure {
    let too_large = matches!(
        &e,
        wire::WireError::Read { kind, .. } if *kind == std::io::ErrorKind::FileTooLarge
    );
    let code = if too_large {
        ErrorCode::TooLarge
    } else {
        ErrorCode::Protocol
    };
    (code, e.to_string())
}

/// Drops the compiled program used longest ago that no call is running,
/// and its bases once no engine keeps the module: whether there was one.
fn evict_idle_module(
    modules: &mut HashMap<ModuleKey, Arc<WorkerModule>>,
    bases: &mut BaseStore,
) -> bool {
    let idle = modules
        .iter()
        .filter(|(_, m)| Arc::strong_count(m) == 1)
        .min_by_key(|(_, m)| m.last_used.load(Ordering::Relaxed))
        .map(|(key, _)| *key);
    let Some((hash, stop)) = idle else {
        return false;
    };
    modules.remove(&(hash, stop));
    if !modules.keys().any(|(kept, _)| *kept == hash) {
        bases.forget_module(&hash);
    }
    true
}

/// Gives the allocator's free pages back to the OS: a base is thousands of
/// page-sized blocks, whose holes the allocator would otherwise keep.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_snapshot::{ModuleHash, PAGE_SIZE};
    use weft_transport::envelope::{CallPayload, SnapshotId};

    /// A snapshot of `pages` pages that compress to almost nothing, as a
    /// home sends it: packed as a stream, which declares no size.
    fn packed_call(pages: u32) -> Vec<u8> {
        let snapshot = Snapshot::from_pages(
            ModuleHash([7; 32]),
            pages.div_ceil(weft_snapshot::PAGES_PER_WASM_PAGE),
            (0..pages).map(|i| (i, [1u8; PAGE_SIZE])).collect(),
            Vec::new(),
            Vec::new(),
        );
        let header = CallHeader {
            tid: 1,
            start_arg: 0,
            arena: 0,
            snapshot_id: SnapshotId {
                home: [0; 16],
                seq: 1,
            },
            base: None,
            stoppable: false,
        };
        let CallPayload::Packed(packed, _) = envelope::pack_call_snapshot(&header, &snapshot)
        else {
            panic!("pages of ones compress");
        };
        let (body, tag) = packed.pieces();
        [body, tag].concat()
    }

    fn read_sent(wire_bytes: Vec<u8>, limit: u64) -> Result<Snapshot, CallFailure> {
        let arrived = Arrived::check(wire_bytes, limit).expect("no size is declared");
        let mut payload = arrived.reader().expect("a zstd frame");
        envelope::read_call_header(&mut payload).expect("the header fits");
        wire::read_snapshot_sharing(&mut payload, &wire::Limits::default(), None)
            .map_err(wire_failure)
    }

    #[test]
    fn a_snapshot_that_unpacks_past_the_limit_is_too_large_not_malformed() {
        let bytes = packed_call(256);
        assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
        let (code, message) = read_sent(bytes.clone(), 64 << 10).unwrap_err();
        assert_eq!(code, ErrorCode::TooLarge, "{message}");
        assert!(read_sent(bytes, 4 << 20).is_ok());
    }

    #[test]
    fn a_snapshot_cut_short_is_a_protocol_error() {
        let mut encoded = wire::encode_snapshot(&Snapshot::from_pages(
            ModuleHash([7; 32]),
            1,
            vec![(0, [1u8; PAGE_SIZE])],
            Vec::new(),
            Vec::new(),
        ));
        encoded.truncate(encoded.len() / 2);
        let (code, _) =
            wire::read_snapshot_sharing(&mut &encoded[..], &wire::Limits::default(), None)
                .map(|_| ())
                .map_err(wire_failure)
                .unwrap_err();
        assert_eq!(code, ErrorCode::Protocol);
    }
}
