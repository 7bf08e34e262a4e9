//! A thread's way home while it runs on a worker host: the call home sent
//! (`RemoteCall`), the threads a call starts there, and the requests only
//! home can answer (thread ids, arena chunks, the global state tier,
//! chained function calls). Nothing here knows the process or its imports:
//! the runtime below and the worker above both use it.

use crate::locks::Locked as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use weft_transport::quic::{HomeAnswer, HomeLink};

use crate::calls::CallError;
use crate::start::ThreadError;
use crate::state::{GlobalTier, LockKind, Owner, StateError, StateHost};
use weft_transport::envelope::{
    ChainAnswer, ChainCall, GlobalAnswer, GlobalCall, HomeReply, HomeRequest, decode_home,
    encode_home,
};

/// Calls home a call's threads may have sent without waiting for their
/// answers (below the transport's bound on calls in flight).
const MAX_DETACHED: usize = 32;

/// Output a remote thread may buffer; past it, the thread runs at home.
pub const MAX_OUTPUT: usize = 1 << 20;

/// The error a remote thread's instance unwinds with when it calls an
/// import only its home host can serve.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` needs the thread's home host")]
pub struct NeedsHome(pub String);

/// Why a call home got no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HomeError {
    #[error(transparent)]
    Link(#[from] weft_transport::quic::HomeCallError),
    #[error("home's answer: {0}")]
    Answer(#[from] weft_transport::envelope::EnvelopeError),
}

/// One call a worker runs: the way home of its threads (the one home sent
/// and the threads it starts here), their buffered output, and the first
/// failure among the threads it started, which fails the whole call (home
/// then runs the thread itself).
#[derive(Debug)]
pub struct RemoteCall {
    /// The way home; calls go in order (a call waits for its answer,
    /// which comes after those of the calls sent before it).
    home: Mutex<HomeLink>,
    /// Calls sent without waiting for their answers (what each was, and
    /// its answer to come): checked before the next call and at the end.
    detached: Mutex<Vec<(String, HomeAnswer)>>,
    output: Mutex<Vec<u8>>,
    failure: Mutex<Option<String>>,
    /// Set when the requester cancelled or is gone, or the call failed:
    /// its threads stop at their next epoch check.
    cancelled: Arc<AtomicBool>,
    /// Threads started on the worker for this call that have not ended.
    running: Mutex<usize>,
    ended: Condvar,
    /// The worker's time limit for a call: past it, the call is cancelled.
    deadline: Option<Instant>,
    /// CPU time the call's threads used here, in nanoseconds.
    cpu_ns: std::sync::atomic::AtomicU64,
    /// The call's own local state tier over its home's global tier: what
    /// a thread keeps locally on this worker no other call sees (another
    /// program, or another home, may use the same keys).
    state: StateHost,
}

/// How long a cancelled call's threads get to stop (a thread blocked in a
/// wait with no timeout does not see the cancel).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long threads a call started may run on after its own thread has
/// finished (a detached thread finishing its work) before the call is
/// given up and its thread runs at home.
const OUTLIVE_GRACE: Duration = Duration::from_secs(2);

impl RemoteCall {
    /// A call whose threads may run until `deadline`, if any.
    pub fn new(home: HomeLink, deadline: Option<Instant>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: StateHost::new(
                Arc::new(HomeGlobal(me.clone())),
                crate::state::StateLimits::default(),
            ),
            deadline,
            cpu_ns: std::sync::atomic::AtomicU64::new(0),
            cancelled: home.cancelled(),
            home: Mutex::new(home),
            detached: Mutex::default(),
            output: Mutex::default(),
            failure: Mutex::default(),
            running: Mutex::new(0),
            ended: Condvar::new(),
        })
    }

    /// Threads started on the worker for this call that have not ended.
    pub fn running_threads(&self) -> usize {
        *self.running.locked()
    }

    /// The call's local state tier.
    pub(crate) fn state(&self) -> &StateHost {
        &self.state
    }

    /// Counts CPU time one of the call's threads used.
    pub(crate) fn add_cpu(&self, nanos: u64) {
        self.cpu_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn cpu_ns(&self) -> u64 {
        self.cpu_ns.load(Ordering::Relaxed)
    }

    /// Stops the call's threads (at their next epoch check or host call).
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// Whether the call was cancelled, failed or ran past its time limit:
    /// its threads are being stopped.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.past_deadline()
    }

    /// Whether the call ran past the worker's time limit.
    pub fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|at| Instant::now() >= at)
    }

    /// Waits until every thread started on the worker for this call has
    /// ended. A thread that outlives the call's own thread by more than
    /// [`OUTLIVE_GRACE`] fails the call (home runs the thread itself, where
    /// a thread that outlives its creator is handled as in plain chain
    /// mode) and is stopped; once the call is cancelled, the wait is
    /// bounded by [`STOP_GRACE`].
    pub(crate) fn wait_threads(&self) {
        let started = Instant::now();
        let mut running = self.running.locked();
        let mut cancelled_at: Option<Instant> = None;
        while *running > 0 {
            if self.is_cancelled() {
                let since = *cancelled_at.get_or_insert_with(Instant::now);
                if since.elapsed() > STOP_GRACE {
                    self.fail(format!("{} thread(s) did not stop", *running));
                    return;
                }
            } else if started.elapsed() > OUTLIVE_GRACE {
                self.fail(format!(
                    "{} thread(s) it started outlive it: home runs it instead",
                    *running
                ));
                self.cancel();
            }
            running = crate::locks::wait_timeout(&self.ended, running, Duration::from_millis(50)).0;
        }
    }

    /// Asks home; a lost link or an answer that does not decode is `Err`.
    pub(crate) fn call(&self, request: &HomeRequest) -> Result<HomeReply, HomeError> {
        let home = self.home.locked();
        self.settle_detached();
        let reply = home.call(encode_home(request))?;
        Ok(decode_home(&reply)?)
    }

    /// Sends `request` (`what`, for messages) home without waiting for its
    /// answer, which must be a sync call's that brings nothing back
    /// (checked by the next call, or at the end: anything else fails the
    /// call).
    pub(crate) fn send_detached(&self, request: &HomeRequest, what: String) {
        let home = self.home.locked();
        // The stream takes a bounded number of calls in flight: a thread
        // that only posts waits for the earlier answers now and then.
        if self.detached.locked().len() >= MAX_DETACHED {
            self.settle_detached();
        }
        match home.send(encode_home(request)) {
            Ok(answer) => self.detached.locked().push((what, answer)),
            Err(e) => self.fail(format!("{what}: {e}")),
        }
    }

    /// Waits for the answers of the calls sent detached; fails the call on
    /// any that is not a plain success.
    pub(crate) fn settle_detached(&self) {
        let detached = std::mem::take(&mut *self.detached.locked());
        for (what, answer) in detached {
            let reply = answer
                .wait()
                .map_err(HomeError::from)
                .and_then(|bytes| Ok(decode_home::<HomeReply>(&bytes)?));
            match reply {
                Ok(HomeReply::Synced { value: 0, updates }) if updates.is_empty() => {}
                Ok(other) => self.fail(format!("{what}: home answered {other:?}")),
                Err(e) => self.fail(format!("{what}: {e}")),
            }
        }
    }

    /// Records why a thread of this call failed (the first reason wins).
    pub(crate) fn fail(&self, why: String) {
        let mut failure = self.failure.locked();
        if failure.is_none() {
            tracing::debug!("a remote call fails: {why}");
            *failure = Some(why);
        }
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.locked().clone()
    }

    /// A thread id from home for a thread this call starts here.
    pub(crate) fn new_thread_id(&self) -> Result<u32, ThreadError> {
        match self.call(&HomeRequest::NewThread) {
            Ok(HomeReply::Thread(tid)) => Ok(tid),
            Ok(HomeReply::NoThread) => Err(ThreadError::Again),
            other => {
                tracing::debug!("no thread id from home: {other:?}");
                Err(ThreadError::Again)
            }
        }
    }

    /// Tells home that thread `tid`, started here, has ended.
    pub(crate) fn tell_thread_ended(&self, tid: u32) {
        if let Err(e) = self.call(&HomeRequest::ThreadEnded { tid }) {
            self.fail(format!("telling home that thread {tid} ended: {e}"));
        }
    }

    /// Buffers `bytes` written to `fd` by one of the call's threads (home
    /// prints them when the thread's changes merge); false when the call
    /// has buffered [`MAX_OUTPUT`] bytes already.
    pub(crate) fn buffer_output(&self, fd: u8, bytes: &[u8]) -> bool {
        let mut output = self.output.locked();
        if output.len() + bytes.len() > MAX_OUTPUT {
            return false;
        }
        output.push(fd);
        output.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        output.extend_from_slice(bytes);
        true
    }

    pub fn take_output(&self) -> Vec<u8> {
        std::mem::take(&mut *self.output.locked())
    }
}

/// A thread started on a worker for a call, counted while it lives.
pub(crate) struct CallThread(Arc<RemoteCall>);

impl CallThread {
    pub(crate) fn new(call: Arc<RemoteCall>) -> Self {
        *call.running.locked() += 1;
        Self(call)
    }
}

impl Drop for CallThread {
    fn drop(&mut self) {
        let mut running = self.0.running.locked();
        *running -= 1;
        if *running == 0 {
            self.0.ended.notify_all();
        }
    }
}

/// The global state tier under a call's local tier on a worker: each
/// operation goes to the call's home over its stream; home applies it to
/// its own global tier (embedded or Redis) as the thread's lock owner
/// there.
#[derive(Debug)]
pub(crate) struct HomeGlobal(std::sync::Weak<RemoteCall>);

impl HomeGlobal {
    fn call(&self, call: GlobalCall) -> Result<GlobalAnswer, StateError> {
        let Some(remote) = self.0.upgrade() else {
            return Err(StateError::Unavailable);
        };
        match remote.call(&HomeRequest::Global(call)) {
            Ok(HomeReply::Global(Ok(answer))) => Ok(answer),
            Ok(HomeReply::Global(Err(code))) => {
                Err(StateError::from_code(code).unwrap_or(StateError::Unavailable))
            }
            _ => Err(StateError::Unavailable),
        }
    }

    fn done(&self, call: GlobalCall) -> Result<(), StateError> {
        match self.call(call)? {
            GlobalAnswer::Done => Ok(()),
            _ => Err(StateError::Unavailable),
        }
    }
}

impl GlobalTier for HomeGlobal {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match self.call(GlobalCall::Get { key: key.into() })? {
            GlobalAnswer::Value(value) => Ok(value),
            _ => Err(StateError::Unavailable),
        }
    }

    fn get_range(&self, key: &str, offset: u64, len: u32) -> Result<Vec<u8>, StateError> {
        let key = key.into();
        match self.call(GlobalCall::GetRange { key, offset, len })? {
            GlobalAnswer::Bytes(bytes) if bytes.len() == len as usize => Ok(bytes),
            _ => Err(StateError::Unavailable),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StateError> {
        self.done(GlobalCall::Set {
            key: key.into(),
            value: value.to_vec(),
        })
    }

    fn set_ranges(&self, key: &str, len: u64, ranges: &[(u64, &[u8])]) -> Result<(), StateError> {
        self.done(GlobalCall::SetRanges {
            key: key.into(),
            len,
            ranges: ranges
                .iter()
                .map(|(at, bytes)| (*at, bytes.to_vec()))
                .collect(),
        })
    }

    fn delete(&self, key: &str) -> Result<(), StateError> {
        self.done(GlobalCall::Delete { key: key.into() })
    }

    fn append(&self, key: &str, record: &[u8]) -> Result<(), StateError> {
        self.done(GlobalCall::Append {
            key: key.into(),
            record: record.to_vec(),
        })
    }

    fn appended_count(&self, key: &str) -> Result<u32, StateError> {
        match self.call(GlobalCall::AppendedCount { key: key.into() })? {
            GlobalAnswer::Count(n) => Ok(n),
            _ => Err(StateError::Unavailable),
        }
    }

    fn read_appended(&self, key: &str, index: u32) -> Result<Option<Vec<u8>>, StateError> {
        match self.call(GlobalCall::ReadAppended {
            key: key.into(),
            index,
        })? {
            GlobalAnswer::Value(value) => Ok(value),
            _ => Err(StateError::Unavailable),
        }
    }

    fn clear_appended(&self, key: &str) -> Result<(), StateError> {
        self.done(GlobalCall::ClearAppended { key: key.into() })
    }

    /// Tries at home without waiting there, and waits here between tries:
    /// the call's link stays free for its other threads meanwhile (one of
    /// them may hold the lock and need home to give it back).
    fn lock(
        &self,
        key: &str,
        kind: LockKind,
        owner: Owner,
        deadline: Instant,
    ) -> Result<(), StateError> {
        let mut pause = std::time::Duration::from_micros(50);
        loop {
            let tried = self.done(GlobalCall::Lock {
                key: key.into(),
                write: kind == LockKind::Write,
                wait_ms: 0,
                // Home makes the owner from the thread id (the low half).
                tid: owner as u32,
            });
            match tried {
                Err(StateError::TimedOut) if Instant::now() < deadline => {
                    std::thread::sleep(pause.min(deadline - Instant::now()));
                    pause = (pause * 2).min(std::time::Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    fn unlock(&self, key: &str, kind: LockKind, owner: Owner) -> Result<(), StateError> {
        self.done(GlobalCall::Unlock {
            key: key.into(),
            write: kind == LockKind::Write,
            tid: owner as u32,
        })
    }
}

/// Sends a `weft:chain` operation home; a lost link is `failed-to-start`
/// (nothing can run for a thread whose home is gone).
pub(crate) fn chain_call(remote: &RemoteCall, call: ChainCall) -> Result<ChainAnswer, CallError> {
    match remote.call(&HomeRequest::Chain(call)) {
        Ok(HomeReply::Chain(answer)) => {
            answer.map_err(|code| CallError::from_code(code).unwrap_or(CallError::FailedToStart))
        }
        other => {
            tracing::debug!("a chained call from away from home: {other:?}");
            Err(CallError::FailedToStart)
        }
    }
}

/// Polls `try_once` until it gives an answer, pausing longer each time (a
/// thread away from home waiting for a chained call).
pub(crate) fn poll<T>(
    mut try_once: impl FnMut() -> Result<Option<T>, CallError>,
) -> Result<T, CallError> {
    let mut pause = std::time::Duration::from_micros(100);
    loop {
        if let Some(done) = try_once()? {
            return Ok(done);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(10));
    }
}

/// Serves a remote thread's [`GlobalCall`] against `global`, as `owner`;
/// a lock waits at most `max_wait` (home's own bound, whatever the worker
/// asked).
pub(crate) fn serve_global(
    global: &dyn GlobalTier,
    owner: Owner,
    call: GlobalCall,
    max_wait: std::time::Duration,
) -> Result<GlobalAnswer, StateError> {
    let kind = |write| {
        if write {
            LockKind::Write
        } else {
            LockKind::Read
        }
    };
    Ok(match call {
        GlobalCall::Get { key } => GlobalAnswer::Value(global.get(&key)?),
        GlobalCall::GetRange { key, offset, len } => {
            GlobalAnswer::Bytes(global.get_range(&key, offset, len)?)
        }
        GlobalCall::Set { key, value } => {
            global.set(&key, &value)?;
            GlobalAnswer::Done
        }
        GlobalCall::SetRanges { key, len, ranges } => {
            let ranges: Vec<(u64, &[u8])> =
                ranges.iter().map(|(at, bytes)| (*at, &bytes[..])).collect();
            global.set_ranges(&key, len, &ranges)?;
            GlobalAnswer::Done
        }
        GlobalCall::Delete { key } => {
            global.delete(&key)?;
            GlobalAnswer::Done
        }
        GlobalCall::Append { key, record } => {
            global.append(&key, &record)?;
            GlobalAnswer::Done
        }
        GlobalCall::AppendedCount { key } => GlobalAnswer::Count(global.appended_count(&key)?),
        GlobalCall::ReadAppended { key, index } => {
            GlobalAnswer::Value(global.read_appended(&key, index)?)
        }
        GlobalCall::ClearAppended { key } => {
            global.clear_appended(&key)?;
            GlobalAnswer::Done
        }
        GlobalCall::Lock {
            key,
            write,
            wait_ms,
            ..
        } => {
            let wait = std::time::Duration::from_millis(wait_ms).min(max_wait);
            let deadline = Instant::now() + wait;
            global.lock(&key, kind(write), owner, deadline)?;
            GlobalAnswer::Done
        }
        GlobalCall::Unlock { key, write, .. } => {
            global.unlock(&key, kind(write), owner)?;
            GlobalAnswer::Done
        }
    })
}
