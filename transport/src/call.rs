//! The two ends of a chained call on one stream: the [`Requester`] (the
//! host whose thread spawns) and the [`Worker`] (the host that runs it).
//! Each takes decoded messages and appends the frames it wants sent to an
//! output buffer; what the host must do (run the thread, send the module,
//! hand back the result) comes out as events.

use sha2::{Digest, Sha256};

use crate::frame::Limits;
use crate::message::{ErrorCode, Message, MessageError};
use crate::payload::{self, Arrived, Packed, PayloadError};

/// Bytes per `Data` frame of a snapshot, module or diff.
pub const CHUNK: usize = 256 << 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("unexpected {got} while {state}")]
    Unexpected {
        got: &'static str,
        state: &'static str,
    },
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("more data than was announced")]
    Overrun,
    #[error("the stream ended before the call finished: run it elsewhere")]
    Lost,
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

fn name(message: &Message) -> &'static str {
    match message {
        Message::Run { .. } => "run",
        Message::Data(_) => "data",
        Message::NeedModule => "need-module",
        Message::Module { .. } => "module",
        Message::Finished { .. } => "finished",
        Message::Failed { .. } => "failed",
        Message::Cancel => "cancel",
        Message::HomeCall { .. } => "home-call",
        Message::HomeReply { .. } => "home-reply",
    }
}

/// Sends the header `header` makes of the packed length, then `bytes`
/// packed (see [`payload`]) in `Data` chunks.
fn send_payload(header: impl FnOnce(u64) -> Message, bytes: &[u8], out: &mut Vec<u8>) {
    let packed = payload::pack(bytes);
    header(packed.wire_len() as u64).encode(out);
    for (frame_header, chunk) in data_frames(&packed) {
        out.extend_from_slice(&frame_header);
        out.extend_from_slice(chunk);
    }
}

/// The `Data` frames that carry a packed payload: each frame's header and
/// the piece that is its body, so a sender writes them without a copy.
pub fn data_frames<'a>(
    packed: &'a Packed<'_>,
) -> impl Iterator<Item = ([u8; crate::frame::HEADER_LEN], &'a [u8])> + 'a {
    let (body, tag) = packed.pieces();
    body.chunks(CHUNK)
        .chain((!tag.is_empty()).then_some(tag))
        .map(|chunk| {
            (
                crate::frame::header(crate::message::DATA, chunk.len()),
                chunk,
            )
        })
}

/// A payload being received: never preallocated from the announced length.
#[derive(Debug)]
struct Incoming {
    len: u64,
    data: Vec<u8>,
}

impl Incoming {
    fn new(what: &'static str, len: u64, limits: &Limits) -> Result<Self, ProtocolError> {
        if len > limits.max_payload {
            return Err(ProtocolError::TooLarge {
                what,
                len,
                max: limits.max_payload,
            });
        }
        Ok(Self {
            len,
            data: Vec::new(),
        })
    }

    /// Adds a chunk; true when the payload is complete.
    fn add(&mut self, bytes: &[u8]) -> Result<bool, ProtocolError> {
        if self.data.len() as u64 + bytes.len() as u64 > self.len {
            return Err(ProtocolError::Overrun);
        }
        self.data.extend_from_slice(bytes);
        Ok(self.data.len() as u64 == self.len)
    }

    fn complete(&self) -> bool {
        self.data.len() as u64 == self.len
    }

    /// The payload its bytes carry, unpacked within `limits`.
    fn unpack(self, limits: &Limits) -> Result<Vec<u8>, ProtocolError> {
        Ok(payload::unpack(self.data, limits.max_payload)?)
    }

    /// The payload its bytes carry, checked but still packed: unpacked
    /// within `limits` as it is read.
    fn arrived(self, limits: &Limits) -> Result<Arrived, ProtocolError> {
        Ok(Arrived::check(self.data, limits.max_payload)?)
    }
}

/// Where one end is in a call home: the request (or reply) may arrive in
/// several `Data` frames.
#[derive(Debug, Default)]
enum HomeCallState {
    #[default]
    Idle,
    /// Its bytes are arriving.
    Receiving(Incoming),
    /// Sent (worker) or delivered (requester): the answer is awaited.
    Outstanding,
}

impl HomeCallState {
    /// Goes on receiving `incoming`: its payload once its bytes are all
    /// there (the state is then `whole`), else `None`.
    fn receive(
        &mut self,
        incoming: Incoming,
        whole: Self,
        limits: &Limits,
    ) -> Result<Option<Vec<u8>>, ProtocolError> {
        if incoming.complete() {
            *self = whole;
            incoming.unpack(limits).map(Some)
        } else {
            *self = Self::Receiving(incoming);
            Ok(None)
        }
    }

    /// Adds `bytes` to the payload being received (see [`Self::receive`]).
    fn add(
        &mut self,
        bytes: &[u8],
        whole: Self,
        limits: &Limits,
    ) -> Result<Option<Vec<u8>>, ProtocolError> {
        let Self::Receiving(mut incoming) = std::mem::take(self) else {
            return Err(ProtocolError::Overrun);
        };
        incoming.add(bytes)?;
        self.receive(incoming, whole, limits)
    }
}

/// What the requesting host must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequesterEvent {
    /// The worker lacks the module: call [`Requester::send_module`].
    NeedModule,
    /// The thread finished with `value`; merge `diff` (a `weft-snapshot`
    /// wire diff) into the parent.
    Finished { value: u32, diff: Vec<u8> },
    /// The worker could not run the call.
    Failed { code: ErrorCode, message: String },
    /// The running thread asks its home for something: answer with
    /// [`Requester::reply_home`].
    HomeCall(Vec<u8>),
}

#[derive(Debug)]
enum RequesterState {
    Waiting,
    Diff { value: u32, diff: Incoming },
    Done,
}

/// The requesting end of a chained call.
#[derive(Debug)]
pub struct Requester {
    state: RequesterState,
    limits: Limits,
    module_asked: bool,
    module_sent: bool,
    home_call: HomeCallState,
}

impl Requester {
    /// Starts a call of `module` from `snapshot` (its wire bytes).
    pub fn start(module: [u8; 32], snapshot: &[u8], limits: Limits, out: &mut Vec<u8>) -> Self {
        send_payload(
            |snapshot_len| Message::Run {
                module,
                snapshot_len,
            },
            snapshot,
            out,
        );
        Self {
            state: RequesterState::Waiting,
            limits,
            module_asked: false,
            module_sent: false,
            home_call: HomeCallState::Idle,
        }
    }

    /// Starts a call like [`Self::start`] but writes only the `Run`
    /// message: the caller sends the [`data_frames`] of `snapshot` next.
    pub fn start_streamed(
        module: [u8; 32],
        snapshot: &Packed<'_>,
        limits: Limits,
        out: &mut Vec<u8>,
    ) -> Self {
        Message::Run {
            module,
            snapshot_len: snapshot.wire_len() as u64,
        }
        .encode(out);
        Self {
            state: RequesterState::Waiting,
            limits,
            module_asked: false,
            module_sent: false,
            home_call: HomeCallState::Idle,
        }
    }

    /// Sends the module's wasm bytes, once the worker asked for them.
    pub fn send_module(&mut self, module: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        if !self.module_asked || self.module_sent {
            return Err(ProtocolError::Unexpected {
                got: "a module to send",
                state: "the worker has not asked for one",
            });
        }
        self.module_sent = true;
        send_payload(|len| Message::Module { len }, module, out);
        Ok(())
    }

    /// Answers the outstanding `HomeCall`.
    pub fn reply_home(&mut self, reply: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        if !matches!(self.home_call, HomeCallState::Outstanding) {
            return Err(ProtocolError::Unexpected {
                got: "a reply to send",
                state: "no home call is outstanding",
            });
        }
        self.home_call = HomeCallState::Idle;
        send_payload(|len| Message::HomeReply { len }, reply, out);
        Ok(())
    }

    /// Asks the worker to stop; its answer still arrives as `Failed`.
    pub fn cancel(&mut self, out: &mut Vec<u8>) {
        if !self.is_done() {
            Message::Cancel.encode(out);
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, RequesterState::Done)
    }

    pub fn on_message(
        &mut self,
        message: Message,
    ) -> Result<Option<RequesterEvent>, ProtocolError> {
        let unexpected = |message: &Message, state| ProtocolError::Unexpected {
            got: name(message),
            state,
        };
        match (&mut self.state, message) {
            (RequesterState::Waiting, Message::NeedModule) if !self.module_asked => {
                self.module_asked = true;
                Ok(Some(RequesterEvent::NeedModule))
            }
            (RequesterState::Waiting, Message::HomeCall { len })
                if matches!(self.home_call, HomeCallState::Idle) =>
            {
                let request = Incoming::new("home call", len, &self.limits)?;
                let whole =
                    self.home_call
                        .receive(request, HomeCallState::Outstanding, &self.limits)?;
                Ok(whole.map(RequesterEvent::HomeCall))
            }
            (RequesterState::Waiting, Message::Data(bytes))
                if matches!(self.home_call, HomeCallState::Receiving(_)) =>
            {
                let whole = self
                    .home_call
                    .add(&bytes, HomeCallState::Outstanding, &self.limits)?;
                Ok(whole.map(RequesterEvent::HomeCall))
            }
            (RequesterState::Waiting, Message::Finished { value, diff_len })
                if matches!(self.home_call, HomeCallState::Idle) =>
            {
                let diff = Incoming::new("diff", diff_len, &self.limits)?;
                if diff.complete() {
                    self.state = RequesterState::Done;
                    return Ok(Some(RequesterEvent::Finished {
                        value,
                        diff: Vec::new(),
                    }));
                }
                self.state = RequesterState::Diff { value, diff };
                Ok(None)
            }
            (RequesterState::Diff { value, diff }, Message::Data(bytes)) => {
                if !diff.add(&bytes)? {
                    return Ok(None);
                }
                let value = *value;
                let RequesterState::Diff { diff, .. } =
                    std::mem::replace(&mut self.state, RequesterState::Done)
                else {
                    unreachable!("matched above");
                };
                let diff = diff.unpack(&self.limits)?;
                Ok(Some(RequesterEvent::Finished { value, diff }))
            }
            (RequesterState::Waiting, Message::Failed { code, message }) => {
                self.state = RequesterState::Done;
                self.home_call = HomeCallState::Idle;
                Ok(Some(RequesterEvent::Failed { code, message }))
            }
            (RequesterState::Waiting, message) => {
                Err(unexpected(&message, "waiting for the result"))
            }
            (RequesterState::Diff { .. }, message) => {
                Err(unexpected(&message, "receiving the diff"))
            }
            (RequesterState::Done, message) => Err(unexpected(&message, "done")),
        }
    }

    /// The stream ended. Before the call finished, it is lost (the worker
    /// or the connection died): the caller runs it again elsewhere from the
    /// same snapshot, which gives the same diff.
    pub fn on_end(&self) -> Result<(), ProtocolError> {
        if self.is_done() {
            Ok(())
        } else {
            Err(ProtocolError::Lost)
        }
    }
}

/// What the worker host must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// A call of `module` with a snapshot of `snapshot_len` bytes on the
    /// wire (packed, see [`payload`]) begins:
    /// before its bytes arrive, admit it or refuse it with
    /// [`Worker::fail`] (a busy worker then never receives them).
    Admit { module: [u8; 32], snapshot_len: u64 },
    /// Run a thread of `module` from `snapshot`, then call
    /// [`Worker::finish`] or [`Worker::fail`]. `module_bytes` is set when
    /// the module came with the call (checked against its hash): compile
    /// and keep it.
    Run {
        module: [u8; 32],
        module_bytes: Option<Vec<u8>>,
        /// The snapshot's payload, unpacked as it is read.
        snapshot: Arrived,
    },
    /// The requester cancelled: stop the thread if it runs.
    Cancelled,
    /// Home's answer to the thread's outstanding [`Worker::home_call`].
    HomeReply(Vec<u8>),
}

#[derive(Debug)]
enum WorkerState {
    AwaitRun,
    Snapshot {
        module: [u8; 32],
        snapshot: Incoming,
    },
    AwaitModule {
        module: [u8; 32],
        snapshot: Arrived,
    },
    ModuleBytes {
        module: [u8; 32],
        snapshot: Arrived,
        bytes: Incoming,
    },
    Running,
    Done,
}

/// Calls home a running thread may have sent without their answers yet
/// (answers come in the order of the calls).
pub const MAX_HOME_CALLS_IN_FLIGHT: u32 = 64;

/// The working end of a chained call.
#[derive(Debug)]
pub struct Worker {
    state: WorkerState,
    limits: Limits,
    /// The answer being received (`Receiving`), else `Idle`.
    home_call: HomeCallState,
    /// Calls home sent and not answered yet.
    in_flight: u32,
}

impl Worker {
    pub fn new(limits: Limits) -> Self {
        Self {
            state: WorkerState::AwaitRun,
            limits,
            home_call: HomeCallState::Idle,
            in_flight: 0,
        }
    }

    /// The running thread asks its home for something; the answer comes
    /// as [`WorkerEvent::HomeReply`], answers in the order of the calls.
    /// Only while running, at most [`MAX_HOME_CALLS_IN_FLIGHT`] at once.
    pub fn home_call(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let running = matches!(self.state, WorkerState::Running);
        if !running || self.in_flight >= MAX_HOME_CALLS_IN_FLIGHT {
            return Err(ProtocolError::Unexpected {
                got: "a home call to send",
                state: if running {
                    "as many home calls as may be in flight are"
                } else {
                    "no thread is running"
                },
            });
        }
        self.in_flight += 1;
        send_payload(|len| Message::HomeCall { len }, request, out);
        Ok(())
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, WorkerState::Done)
    }

    /// Takes a message; `has_module` tells whether this host already has a
    /// module (by hash). A broken protocol, a payload over the limits or a
    /// module that does not match its hash is answered with `Failed` (in
    /// `out`) and ends the call.
    pub fn on_message(
        &mut self,
        message: Message,
        has_module: &dyn Fn(&[u8; 32]) -> bool,
        out: &mut Vec<u8>,
    ) -> Option<WorkerEvent> {
        if matches!(self.state, WorkerState::Done) {
            return None;
        }
        if message == Message::Cancel {
            let running = matches!(self.state, WorkerState::Running);
            self.fail(ErrorCode::Cancelled, "cancelled by the requester", out);
            return running.then_some(WorkerEvent::Cancelled);
        }
        match self.step(message, has_module, out) {
            Ok(event) => event,
            Err((code, error)) => {
                // `step` has already ended the call.
                Message::Failed {
                    code,
                    message: error.to_string(),
                }
                .encode(out);
                None
            }
        }
    }

    fn step(
        &mut self,
        message: Message,
        has_module: &dyn Fn(&[u8; 32]) -> bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<WorkerEvent>, (ErrorCode, ProtocolError)> {
        let protocol = |e| (ErrorCode::Protocol, e);
        let too_large = |e: ProtocolError| match e {
            ProtocolError::TooLarge { .. } | ProtocolError::Payload(PayloadError::TooLarge(_)) => {
                (ErrorCode::TooLarge, e)
            }
            other => (ErrorCode::Protocol, other),
        };
        let state = std::mem::replace(&mut self.state, WorkerState::Done);
        let (next, event) = match (state, message) {
            (
                WorkerState::AwaitRun,
                Message::Run {
                    module,
                    snapshot_len,
                },
            ) => {
                let snapshot =
                    Incoming::new("snapshot", snapshot_len, &self.limits).map_err(too_large)?;
                if snapshot.complete() {
                    return Err(protocol(ProtocolError::Unexpected {
                        got: "an empty snapshot",
                        state: "starting a call",
                    }));
                }
                let admit = WorkerEvent::Admit {
                    module,
                    snapshot_len,
                };
                (WorkerState::Snapshot { module, snapshot }, Some(admit))
            }
            (
                WorkerState::Snapshot {
                    module,
                    mut snapshot,
                },
                Message::Data(bytes),
            ) => {
                if snapshot.add(&bytes).map_err(protocol)? {
                    let snapshot = snapshot.arrived(&self.limits).map_err(too_large)?;
                    if snapshot.is_empty() {
                        return Err(protocol(ProtocolError::Unexpected {
                            got: "an empty snapshot",
                            state: "starting a call",
                        }));
                    }
                    self.snapshot_complete(module, snapshot, has_module, out)
                } else {
                    (WorkerState::Snapshot { module, snapshot }, None)
                }
            }
            (WorkerState::AwaitModule { module, snapshot }, Message::Module { len }) => {
                let bytes = Incoming::new("module", len, &self.limits).map_err(too_large)?;
                if bytes.complete() {
                    module_complete(module, snapshot, Vec::new())?
                } else {
                    (
                        WorkerState::ModuleBytes {
                            module,
                            snapshot,
                            bytes,
                        },
                        None,
                    )
                }
            }
            (
                WorkerState::ModuleBytes {
                    module,
                    snapshot,
                    mut bytes,
                },
                Message::Data(data),
            ) => {
                if bytes.add(&data).map_err(protocol)? {
                    module_complete(
                        module,
                        snapshot,
                        bytes.unpack(&self.limits).map_err(too_large)?,
                    )?
                } else {
                    (
                        WorkerState::ModuleBytes {
                            module,
                            snapshot,
                            bytes,
                        },
                        None,
                    )
                }
            }
            (WorkerState::Running, Message::HomeReply { len })
                if self.in_flight > 0 && matches!(self.home_call, HomeCallState::Idle) =>
            {
                self.in_flight -= 1;
                let reply = Incoming::new("home reply", len, &self.limits).map_err(too_large)?;
                let whole = self
                    .home_call
                    .receive(reply, HomeCallState::Idle, &self.limits)
                    .map_err(too_large)?;
                (WorkerState::Running, whole.map(WorkerEvent::HomeReply))
            }
            (WorkerState::Running, Message::Data(bytes))
                if matches!(self.home_call, HomeCallState::Receiving(_)) =>
            {
                let whole = self
                    .home_call
                    .add(&bytes, HomeCallState::Idle, &self.limits)
                    .map_err(too_large)?;
                (WorkerState::Running, whole.map(WorkerEvent::HomeReply))
            }
            (state, message) => {
                let state_name = match state {
                    WorkerState::AwaitRun => "waiting for a run",
                    WorkerState::Snapshot { .. } => "receiving the snapshot",
                    WorkerState::AwaitModule { .. } => "waiting for the module",
                    WorkerState::ModuleBytes { .. } => "receiving the module",
                    WorkerState::Running => "running",
                    WorkerState::Done => "done",
                };
                return Err(protocol(ProtocolError::Unexpected {
                    got: name(&message),
                    state: state_name,
                }));
            }
        };
        self.state = next;
        Ok(event)
    }

    fn snapshot_complete(
        &self,
        module: [u8; 32],
        snapshot: Arrived,
        has_module: &dyn Fn(&[u8; 32]) -> bool,
        out: &mut Vec<u8>,
    ) -> (WorkerState, Option<WorkerEvent>) {
        if has_module(&module) {
            let event = WorkerEvent::Run {
                module,
                module_bytes: None,
                snapshot,
            };
            (WorkerState::Running, Some(event))
        } else {
            Message::NeedModule.encode(out);
            (WorkerState::AwaitModule { module, snapshot }, None)
        }
    }

    /// The thread finished: sends its result and diff.
    pub fn finish(&mut self, value: u32, diff: &[u8], out: &mut Vec<u8>) {
        if matches!(self.state, WorkerState::Running) {
            send_payload(|diff_len| Message::Finished { value, diff_len }, diff, out);
            self.state = WorkerState::Done;
        }
    }

    /// The call failed: says why and ends it.
    pub fn fail(&mut self, code: ErrorCode, message: &str, out: &mut Vec<u8>) {
        if !matches!(self.state, WorkerState::Done) {
            Message::Failed {
                code,
                message: message.into(),
            }
            .encode(out);
            self.state = WorkerState::Done;
        }
    }
}

/// Checks received module bytes against the hash the call named.
fn module_complete(
    module: [u8; 32],
    snapshot: Arrived,
    bytes: Vec<u8>,
) -> Result<(WorkerState, Option<WorkerEvent>), (ErrorCode, ProtocolError)> {
    if <[u8; 32]>::from(Sha256::digest(&bytes)) != module {
        return Err((
            ErrorCode::ModuleMismatch,
            ProtocolError::Unexpected {
                got: "module bytes",
                state: "they do not hash to the module the call names",
            },
        ));
    }
    let event = WorkerEvent::Run {
        module,
        module_bytes: Some(bytes),
        snapshot,
    };
    Ok((WorkerState::Running, Some(event)))
}

#[cfg(test)]
mod tests;
