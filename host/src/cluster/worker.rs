//! A worker host (`weft serve`): runs chained threads for other hosts.
//!
//! It compiles each module it is sent itself (the call names the module by
//! content hash; the transport checks the bytes) and keeps it, with a
//! process of its own in chain mode whose imports are those of a remote
//! thread (`remote.rs`). It keeps the last snapshots of each module it
//! ran, so that a later call may send only the pages that changed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::Engine;
use weft_snapshot::{Snapshot, wire};
use weft_transport::call::WorkerEvent;
use weft_transport::message::ErrorCode;
use weft_transport::quic::HomeLink;

use super::envelope::{self, CallHeader};
use crate::chain::{self, ChildError};
use crate::remote::{HomeGlobal, NeedsHome, RemoteCall};
use crate::state::{StateHost, StateLimits};
use crate::{Process, Program, StartConfig, ThreadMode};

/// Base snapshots kept per module.
const BASES_KEPT: usize = 4;
/// Compiled modules kept; past it the one used longest ago and not running
/// goes (it is fetched and compiled again if a call needs it).
const MODULES_KEPT: usize = 16;

/// A failed call: its code and what to say.
pub type CallFailure = (ErrorCode, String);

pub struct WorkerHost {
    engine: Engine,
    slots: usize,
    running: AtomicUsize,
    modules: Mutex<HashMap<[u8; 32], Arc<WorkerModule>>>,
    limits: wire::Limits,
    /// This host's state: its own local tier over the global tier of each
    /// thread's home.
    state: Arc<StateHost>,
    uses: AtomicU64,
}

struct WorkerModule {
    process: Arc<Process>,
    bases: Mutex<VecDeque<(u64, Snapshot)>>,
    /// When a call last used it (a counter, for eviction).
    last_used: AtomicU64,
}

impl std::fmt::Debug for WorkerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHost")
            .field("slots", &self.slots)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

/// Gives a slot back when a call ends, however it ends.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WorkerHost {
    /// A worker running at most `slots` threads at once.
    pub fn new(engine: Engine, slots: usize) -> Arc<Self> {
        Arc::new(Self {
            engine,
            slots: slots.max(1),
            running: AtomicUsize::new(0),
            modules: Mutex::default(),
            limits: wire::Limits::default(),
            state: Arc::new(StateHost::new(Arc::new(HomeGlobal), StateLimits::default())),
            uses: AtomicU64::new(0),
        })
    }

    pub fn has_module(&self, hash: &[u8; 32]) -> bool {
        self.lock_modules().contains_key(hash)
    }

    fn lock_modules(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<WorkerModule>>> {
        self.modules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one call: the thread's result and the result payload, or why not.
    pub fn run(&self, event: WorkerEvent, home: HomeLink) -> Result<(u32, Vec<u8>), CallFailure> {
        let WorkerEvent::Run {
            module,
            module_bytes,
            snapshot,
        } = event
        else {
            return Err((ErrorCode::Cancelled, "cancelled by the requester".into()));
        };
        if self.running.fetch_add(1, Ordering::SeqCst) >= self.slots {
            self.running.fetch_sub(1, Ordering::SeqCst);
            return Err((
                ErrorCode::Busy,
                format!("all {} slots are busy", self.slots),
            ));
        }
        let _running = Running(&self.running);
        let started = std::time::Instant::now();
        let module = self.module(module, module_bytes)?;
        let (header, snapshot) = self.snapshot(&module, &snapshot)?;
        tracing::debug!(tid = header.tid, "running a remote thread");
        let call = RemoteCall::new(home);
        let ran = chain::run_remote(
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
        match ran {
            Ok((value, diff)) => Ok((
                value,
                envelope::encode_result(&wire::encode_diff(&diff), &output),
            )),
            Err(ChildError::Exit(code)) => Err((
                ErrorCode::NeedsHome,
                format!("the thread called exit({code})"),
            )),
            Err(ChildError::Trap(e)) => match e.downcast_ref::<NeedsHome>() {
                Some(needs) => Err((ErrorCode::NeedsHome, needs.to_string())),
                None => Err((ErrorCode::Trapped, format!("{e:?}"))),
            },
        }
    }

    /// The module by hash, compiled here the first time (from the bytes
    /// the transport checked against the hash).
    fn module(
        &self,
        hash: [u8; 32],
        bytes: Option<Vec<u8>>,
    ) -> Result<Arc<WorkerModule>, CallFailure> {
        let now = self.uses.fetch_add(1, Ordering::Relaxed);
        if let Some(module) = self.lock_modules().get(&hash) {
            module.last_used.store(now, Ordering::Relaxed);
            return Ok(module.clone());
        }
        let Some(bytes) = bytes else {
            return Err((ErrorCode::Protocol, "the module was not sent".into()));
        };
        let refused = |stage: &str, e: &dyn std::fmt::Display| {
            (
                ErrorCode::Trapped,
                format!("{stage} the module on this worker: {e:#}"),
            )
        };
        let program = Program::load(&self.engine, &bytes).map_err(|e| refused("loading", &e))?;
        let config = StartConfig {
            args: vec!["remote".into()],
            mode: ThreadMode::Chain,
            inherit_stdin: false,
            slots: Some(self.slots),
            state: Some(self.state.clone()),
            ..StartConfig::default()
        };
        let process = program
            .start_worker(&config)
            .map_err(|e| refused("starting", &e))?;
        let module = Arc::new(WorkerModule {
            process,
            bases: Mutex::default(),
            last_used: AtomicU64::new(now),
        });
        let mut modules = self.lock_modules();
        if modules.len() >= MODULES_KEPT {
            let idle = modules
                .iter()
                .filter(|(_, m)| Arc::strong_count(m) == 1)
                .min_by_key(|(_, m)| m.last_used.load(Ordering::Relaxed))
                .map(|(hash, _)| *hash);
            if let Some(idle) = idle {
                modules.remove(&idle);
            }
        }
        Ok(modules.entry(hash).or_insert(module).clone())
    }

    /// The call's snapshot, rebuilt from its base when it is a delta; it
    /// becomes a base for later calls.
    fn snapshot(
        &self,
        module: &WorkerModule,
        payload: &[u8],
    ) -> Result<(CallHeader, Snapshot), CallFailure> {
        let protocol = |e: &dyn std::fmt::Display| (ErrorCode::Protocol, e.to_string());
        let (header, bytes) = envelope::decode_call(payload).map_err(|e| protocol(&e))?;
        let sent = wire::decode_snapshot(bytes, &self.limits).map_err(|e| protocol(&e))?;
        let mut bases = module.bases.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = match header.base {
            None => sent,
            Some(base) => {
                let Some((_, base)) = bases.iter().find(|(id, _)| *id == base) else {
                    return Err((
                        ErrorCode::UnknownBase,
                        format!("no base snapshot {base} here"),
                    ));
                };
                envelope::apply_delta(base, &sent).map_err(|e| protocol(&e))?
            }
        };
        if bases.len() == BASES_KEPT {
            bases.pop_front();
        }
        bases.push_back((header.snapshot_id, snapshot.clone()));
        Ok((header, snapshot))
    }
}
