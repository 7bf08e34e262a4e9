//! The HTTP front's I/O: hyper connections on tokio, each request routed
//! ([`crate::route`]), admitted ([`crate::admission`]), run on a blocking
//! thread and answered ([`crate::reply`]); a drain on shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use weft_runtime::locks::Locked as _;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use weft_runtime::functions::{Functions, RegistryError};
use weft_runtime::{OnEnd, StartConfig};

use crate::admission::{Admission, Refusal};
use crate::metrics::{CallCounts, Kind, Text};
use crate::options::FunctionOptions;
use crate::reply::{CallOutcome, default_message, error_body};
use crate::route::{Route, route};

/// The header that carries a function's exit code.
pub const EXIT_CODE_HEADER: &str = "weft-exit-code";

/// How long past its time limit a call may take to stop before its client
/// gets the 504 anyway (its slot stays taken until it has stopped).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a front is configured with.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// Largest input of a call, in bytes (413 past it).
    pub max_body: u64,
    /// Largest module or component a `PUT` may register.
    pub max_module: u64,
    /// Calls that run at once.
    pub slots: usize,
    /// Calls that may wait for a slot (429 past them).
    pub queue: usize,
    /// Time limit of a call whose function sets none.
    pub time_limit: Duration,
    /// How long a client may take to send a request's head, and its body.
    pub read_timeout: Duration,
    /// Connections served at once; more are closed as they come.
    pub max_connections: usize,
    /// How a drain waits for running calls before giving up on them.
    pub drain_timeout: Duration,
    /// What every call starts from (thread mode, limits, cluster placer,
    /// state); a function's options override its limits.
    pub base: StartConfig,
}

impl Default for FrontConfig {
    fn default() -> Self {
        Self {
            max_body: 16 << 20,
            max_module: 256 << 20,
            slots: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue: 256,
            time_limit: Duration::from_secs(300),
            read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            drain_timeout: Duration::from_secs(25),
            base: StartConfig::default(),
        }
    }
}

/// Metrics a host adds to `/metrics` (runtime and cluster counters).
pub type ExtraMetrics = Arc<dyn Fn(&mut Text) + Send + Sync>;

/// The HTTP front of a host's functions.
pub struct Front {
    functions: Arc<Functions>,
    config: FrontConfig,
    admission: Mutex<Admission>,
    /// Woken when a slot frees.
    freed: Notify,
    counts: Mutex<CallCounts>,
    options: Mutex<HashMap<String, FunctionOptions>>,
    /// Registrations compile at most this many at once.
    compiling: Semaphore,
    extra: Option<ExtraMetrics>,
    connections: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere left counts that are still counts: go on.
    m.locked()
}

/// A call's place: in the queue, then in a slot; given back on drop,
/// wherever the call ended (its client may have gone long before).
struct Ticket {
    front: Arc<Front>,
    running: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut admission = lock(&self.front.admission);
        if self.running {
            admission.finish();
        } else {
            admission.abandon();
        }
        drop(admission);
        self.front.freed.notify_waiters();
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json(status: u16, value: &serde_json::Value) -> Reply {
    let mut text = value.to_string();
    text.push('\n');
    reply(status, "application/json", text)
}

fn failure(outcome: CallOutcome, message: &str) -> Reply {
    reply(
        outcome.status(),
        "application/json",
        error_body(outcome, message, None, b""),
    )
}

/// The name under which a call is counted: a registered function's, or
/// none (a client cannot mint label values).
fn label(front: &Front, name: &str) -> String {
    if front.functions.is_registered(name) {
        name.to_string()
    } else {
        String::new()
    }
}

impl Front {
    pub fn new(
        functions: Arc<Functions>,
        config: FrontConfig,
        extra: Option<ExtraMetrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            functions,
            admission: Mutex::new(Admission::new(config.slots, config.queue)),
            config,
            freed: Notify::new(),
            counts: Mutex::default(),
            options: Mutex::default(),
            compiling: Semaphore::new(1),
            extra,
            connections: Arc::default(),
        })
    }

    /// Whether it takes calls.
    pub fn ready(&self) -> bool {
        lock(&self.admission).ready()
    }

    /// Stops taking calls (`/readyz` turns 503).
    pub fn drain(&self) {
        lock(&self.admission).drain();
    }

    /// `/metrics`.
    pub fn render_metrics(&self) -> String {
        let mut text = Text::new();
        let (slots, running, waiting, ready) = {
            let a = lock(&self.admission);
            (a.slots(), a.running(), a.waiting(), a.ready())
        };
        text.single(
            "weft_slots",
            "Calls this front runs at once.",
            Kind::Gauge,
            slots as f64,
        );
        text.single(
            "weft_slots_in_use",
            "Calls running now.",
            Kind::Gauge,
            running as f64,
        );
        text.single(
            "weft_queued_calls",
            "Calls waiting for a slot (or still sending their input).",
            Kind::Gauge,
            waiting as f64,
        );
        text.single(
            "weft_ready",
            "1 while the front takes calls, 0 while it drains.",
            Kind::Gauge,
            if ready { 1.0 } else { 0.0 },
        );
        text.single(
            "weft_http_connections",
            "Open HTTP connections.",
            Kind::Gauge,
            self.connections.load(Ordering::Relaxed) as f64,
        );
        crate::metrics::render_calls(&mut text, &lock(&self.counts));
        if let Some(extra) = &self.extra {
            extra(&mut text);
        }
        text.finish()
    }

    /// Calls so far that ended with `outcome`.
    pub fn calls_ended(&self, outcome: CallOutcome) -> u64 {
        lock(&self.counts).total(outcome)
    }

    fn record(&self, function: &str, outcome: CallOutcome, took: Duration) {
        lock(&self.counts).record(function, outcome, took);
    }

    /// The options of `name` (none when it has no file of them).
    fn function_options(&self, name: &str) -> Result<FunctionOptions, OptionsFileError> {
        if let Some(o) = lock(&self.options).get(name) {
            return Ok(o.clone());
        }
        let path = options_path(&self.functions, name);
        let options = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| OptionsFileError::Malformed { path, source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FunctionOptions::default(),
            Err(source) => return Err(OptionsFileError::Io { path, source }),
        };
        lock(&self.options).insert(name.into(), options.clone());
        Ok(options)
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Reply {
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        match route(&method, &path) {
            Route::Health => reply(200, "text/plain", "ok\n"),
            Route::Ready if self.ready() => reply(200, "text/plain", "ready\n"),
            Route::Ready => reply(503, "text/plain", "draining\n"),
            Route::Metrics => reply(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.render_metrics(),
            ),
            Route::List => self.list().await,
            Route::Describe(name) => self.describe(name).await,
            Route::Invoke(name) => self.invoke(name, request).await,
            Route::Register(name) => self.register(name, request).await,
            Route::Remove(name) => self.remove(name).await,
            Route::MethodNotAllowed { allow } => {
                let mut r = json(
                    405,
                    &serde_json::json!({"error": "method_not_allowed", "message": format!("{method} is not allowed on {path}")}),
                );
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                r
            }
            Route::NotFound => json(
                404,
                &serde_json::json!({"error": "not_found", "message": "no such endpoint (functions are under /f/NAME)"}),
            ),
        }
    }

    /// Reads a body of at most `max` bytes within the read timeout.
    async fn read_body(&self, request: Request<Incoming>, max: u64) -> Result<Bytes, CallOutcome> {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max) {
            return Err(CallOutcome::TooLarge);
        }
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        let body = Limited::new(request.into_body(), limit).collect();
        match tokio::time::timeout(self.config.read_timeout, body).await {
            Err(_) => Err(CallOutcome::BadRequest),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(CallOutcome::TooLarge),
            Ok(Err(_)) => Err(CallOutcome::BadRequest),
        }
    }

    async fn invoke(self: Arc<Self>, name: String, request: Request<Incoming>) -> Reply {
        let admitted = Instant::now();
        let refused = lock(&self.admission).admit();
        if let Err(refusal) = refused {
            let label = label(&self, &name);
            return match refusal {
                Refusal::Full { retry_after_secs } => {
                    self.record(&label, CallOutcome::Busy, Duration::ZERO);
                    let mut r = failure(
                        CallOutcome::Busy,
                        "every slot is taken and the queue is full; retry later",
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                    r
                }
                Refusal::Draining => {
                    self.record(&label, CallOutcome::Draining, Duration::ZERO);
                    failure(CallOutcome::Draining, "the server is shutting down")
                }
            };
        }
        let mut ticket = Ticket {
            front: self.clone(),
            running: false,
        };
        let input = match self.read_body(request, self.config.max_body).await {
            Ok(input) => input,
            Err(outcome) => {
                self.record(&label(&self, &name), outcome, Duration::ZERO);
                let message = match outcome {
                    CallOutcome::TooLarge => {
                        format!("the input is larger than {} bytes", self.config.max_body)
                    }
                    _ => "the request's body did not arrive in time or was cut".into(),
                };
                return failure(outcome, &message);
            }
        };
        // Wait for a slot: each running call has a time limit, so this
        // wait has one too.
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if lock(&self.admission).dequeue() {
                ticket.running = true;
                break;
            }
            freed.await;
        }
        let front = self.clone();
        let call_name = name.clone();
        // The call keeps its ticket: its slot is free once it has stopped,
        // whether or not its client still waits.
        let call = tokio::task::spawn_blocking(move || {
            let result = front.run(&call_name, input.to_vec());
            drop(ticket);
            result
        });
        let limit = self
            .function_options(&name)
            .ok()
            .and_then(|o| o.time_limit())
            .unwrap_or(self.config.time_limit);
        let ran = match tokio::time::timeout(limit + STOP_GRACE, call).await {
            Ok(Ok(ran)) => ran,
            Ok(Err(join)) => {
                tracing::error!("call of `{name}` panicked: {join}");
                Ran::Failed(
                    CallOutcome::Crashed,
                    "the host failed running the call".into(),
                )
            }
            Err(_) => {
                tracing::warn!(
                    "call of `{name}` did not stop within {STOP_GRACE:?} of its time limit"
                );
                Ran::Ended {
                    outcome: CallOutcome::Timeout,
                    code: weft_runtime::outcome::TIMEOUT_EXIT_CODE,
                    message: Some(format!("time limit of {limit:?} reached")),
                    output: Vec::new(),
                }
            }
        };
        let took = admitted.elapsed();
        match ran {
            Ran::Ended {
                outcome,
                code,
                message,
                output,
            } => {
                self.record(&name, outcome, took);
                let mut r = if outcome == CallOutcome::Ok {
                    reply(200, "application/octet-stream", output)
                } else {
                    let message = message.unwrap_or_else(|| default_message(outcome, code));
                    reply(
                        outcome.status(),
                        "application/json",
                        error_body(outcome, &message, Some(code), &output),
                    )
                };
                r.headers_mut()
                    .insert(EXIT_CODE_HEADER, HeaderValue::from(code));
                r
            }
            Ran::Failed(outcome, message) => {
                let label = if matches!(outcome, CallOutcome::Unknown | CallOutcome::BadName) {
                    String::new()
                } else {
                    name
                };
                self.record(&label, outcome, took);
                failure(outcome, &message)
            }
        }
    }

    /// Runs a call on this (blocking) thread.
    fn run(&self, name: &str, input: Vec<u8>) -> Ran {
        let options = match self.function_options(name) {
            Ok(o) => o,
            Err(e) => return Ran::Failed(CallOutcome::StartFailed, e.to_string()),
        };
        let base = &self.config.base;
        let config = StartConfig {
            mode: options.mode().unwrap_or(base.mode),
            max_memory: options.max_memory.or(base.max_memory),
            max_threads: options.max_threads.unwrap_or(base.max_threads),
            time_limit: Some(options.time_limit().unwrap_or(self.config.time_limit)),
            ..base.clone()
        };
        let said: Arc<Mutex<Option<String>>> = Arc::default();
        let hook = {
            let said = said.clone();
            OnEnd(Arc::new(move |outcome| {
                let mut text = Vec::new();
                outcome.report(&mut text);
                let text = String::from_utf8_lossy(&text);
                if let Some(line) = text.lines().next() {
                    let line = line.strip_prefix("weft: ").unwrap_or(line);
                    *lock(&said) = Some(line.to_string());
                }
            }))
        };
        match self
            .functions
            .invoke_observed(name, input, &config, Some(hook))
        {
            Ok(finished) => Ran::Ended {
                outcome: CallOutcome::of_end(finished.end, finished.code),
                code: finished.code,
                message: lock(&said).take(),
                output: finished.output,
            },
            Err(e) => {
                let outcome = match e {
                    RegistryError::Unknown(..) => CallOutcome::Unknown,
                    RegistryError::BadName(_) => CallOutcome::BadName,
                    _ => CallOutcome::StartFailed,
                };
                Ran::Failed(outcome, e.to_string())
            }
        }
    }

    async fn register(self: Arc<Self>, name: String, request: Request<Incoming>) -> Reply {
        let options = match FunctionOptions::from_query(request.uri().query().unwrap_or("")) {
            Ok(o) => o,
            Err(e) => {
                return json(
                    400,
                    &serde_json::json!({"error": "bad_options", "message": e.to_string()}),
                );
            }
        };
        let bytes = match self.read_body(request, self.config.max_module).await {
            Ok(bytes) => bytes,
            Err(CallOutcome::TooLarge) => {
                return failure(
                    CallOutcome::TooLarge,
                    &format!(
                        "the program is larger than {} bytes",
                        self.config.max_module
                    ),
                );
            }
            Err(outcome) => {
                return failure(
                    outcome,
                    "the request's body did not arrive in time or was cut",
                );
            }
        };
        // Compiling takes a core for a while: one at a time.
        let Ok(_permit) = self.compiling.acquire().await else {
            return failure(CallOutcome::Draining, "the server is shutting down");
        };
        let front = self.clone();
        let stored = options.clone();
        let name2 = name.clone();
        let done =
            tokio::task::spawn_blocking(move || -> Result<(), (u16, &'static str, String)> {
                front
                    .functions
                    .add_bytes(&name2, &bytes)
                    .map_err(|e| match e {
                        RegistryError::BadName(_) => (400, "bad_name", e.to_string()),
                        RegistryError::Load(..) | RegistryError::Component(..) => {
                            (422, "invalid_program", e.to_string())
                        }
                        _ => (500, "registry", e.to_string()),
                    })?;
                write_options(&front.functions, &name2, &stored)
                    .map_err(|e| (500, "registry", e.to_string()))?;
                lock(&front.options).insert(name2, stored);
                Ok(())
            })
            .await;
        match done {
            Ok(Ok(())) => json(
                201,
                &serde_json::json!({"registered": name, "options": options}),
            ),
            Ok(Err((status, error, message))) => json(
                status,
                &serde_json::json!({"error": error, "message": message}),
            ),
            Err(join) => {
                tracing::error!("registering `{name}` panicked: {join}");
                failure(
                    CallOutcome::Crashed,
                    "the host failed registering the program",
                )
            }
        }
    }

    async fn remove(self: Arc<Self>, name: String) -> Reply {
        let front = self.clone();
        let name2 = name.clone();
        let done = tokio::task::spawn_blocking(move || {
            lock(&front.options).remove(&name2);
            let removed = front.functions.remove(&name2)?;
            match std::fs::remove_file(options_path(&front.functions, &name2)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("removing the options of `{name2}`: {e}"),
            }
            Ok::<_, RegistryError>(removed)
        })
        .await;
        match done {
            Ok(Ok(true)) => json(200, &serde_json::json!({"removed": name})),
            Ok(Ok(false)) => failure(CallOutcome::Unknown, &format!("no function `{name}`")),
            Ok(Err(e @ RegistryError::BadName(_))) => failure(CallOutcome::BadName, &e.to_string()),
            Ok(Err(e)) => json(
                500,
                &serde_json::json!({"error": "registry", "message": e.to_string()}),
            ),
            Err(_) => failure(
                CallOutcome::Crashed,
                "the host failed removing the function",
            ),
        }
    }

    async fn list(self: Arc<Self>) -> Reply {
        let front = self.clone();
        match tokio::task::spawn_blocking(move || front.functions.list()).await {
            Ok(Ok(names)) => json(200, &serde_json::json!({"functions": names})),
            Ok(Err(e)) => json(
                500,
                &serde_json::json!({"error": "registry", "message": e.to_string()}),
            ),
            Err(_) => failure(
                CallOutcome::Crashed,
                "the host failed listing the functions",
            ),
        }
    }

    async fn describe(self: Arc<Self>, name: String) -> Reply {
        let front = self.clone();
        let name2 = name.clone();
        let found = tokio::task::spawn_blocking(move || {
            if !front.functions.is_registered(&name2) {
                return Ok(None);
            }
            front.function_options(&name2).map(Some)
        })
        .await;
        match found {
            Ok(Ok(Some(options))) => {
                json(200, &serde_json::json!({"name": name, "options": options}))
            }
            Ok(Ok(None)) => failure(CallOutcome::Unknown, &format!("no function `{name}`")),
            Ok(Err(e)) => json(
                500,
                &serde_json::json!({"error": "registry", "message": e.to_string()}),
            ),
            Err(_) => failure(CallOutcome::Crashed, "the host failed reading the function"),
        }
    }
}

/// How a call that was run ended.
enum Ran {
    /// The function ran (its exit code goes in a header).
    Ended {
        outcome: CallOutcome,
        code: i32,
        message: Option<String>,
        output: Vec<u8>,
    },
    /// It never ran.
    Failed(CallOutcome, String),
}

fn options_path(functions: &Functions, name: &str) -> std::path::PathBuf {
    functions.dir().join(format!("{name}.options.json"))
}

/// Why a function's options file could not be read or written.
#[derive(Debug, thiserror::Error)]
enum OptionsFileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: malformed options: {source}", path.display())]
    Malformed {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
}

fn write_options(
    functions: &Functions,
    name: &str,
    options: &FunctionOptions,
) -> Result<(), OptionsFileError> {
    let path = options_path(functions, name);
    if *options == FunctionOptions::default() {
        return match std::fs::remove_file(&path) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                Err(OptionsFileError::Io { path, source })
            }
            _ => Ok(()),
        };
    }
    let text =
        serde_json::to_string_pretty(options).map_err(|source| OptionsFileError::Malformed {
            path: path.clone(),
            source,
        })?;
    let partial = functions
        .dir()
        .join(format!(".{name}.options.json.partial"));
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|source| OptionsFileError::Io { path, source })
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Connections still open when the grace period ended (their calls
    /// were cut off); 0 after a clean drain.
    pub cut_off: usize,
}

/// A request handler: a path and method in, a response out.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, request: Request<Incoming>) -> impl Future<Output = Reply> + Send;
    /// Stops taking work (before connections are closed).
    fn drain(&self);
}

impl Handler for Front {
    fn handle(self: Arc<Self>, request: Request<Incoming>) -> impl Future<Output = Reply> + Send {
        Front::handle(self, request)
    }

    fn drain(&self) {
        Front::drain(self);
    }
}

/// The settings of the connection loop.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub read_timeout: Duration,
    pub max_connections: usize,
    pub drain_timeout: Duration,
}

impl FrontConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            read_timeout: self.read_timeout,
            max_connections: self.max_connections,
            drain_timeout: self.drain_timeout,
        }
    }
}

/// Serves `handler` on `listener` until `shutdown` resolves, then drains:
/// no new connection is taken, the handler stops taking work, each
/// connection ends after the request it is serving, and this returns once
/// all have ended or the drain timeout has passed.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: Limits,
    connections: Option<Arc<AtomicUsize>>,
    shutdown: impl Future<Output = ()>,
) -> Drained {
    let (stop, stopped) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: pause, never spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "refusing a connection from {peer}: {} open",
                limits.max_connections
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let mut stopped = stopped.clone();
        let connections = connections.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let _open = connections.map(Open::new);
            let service = hyper::service::service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler.handle(request).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.read_timeout)
                .max_buf_size(64 << 10);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                }
                () = async {
                    // The guard wait_for gives is not Send: drop it here.
                    let _ = stopped.wait_for(|s| *s).await.map(drop);
                } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    handler.drain();
    let _ = stop.send(true);
    let all_ended = async { while tasks.join_next().await.is_some() {} };
    let cut_off = match tokio::time::timeout(limits.drain_timeout, all_ended).await {
        Ok(()) => 0,
        Err(_) => tasks.len(),
    };
    tasks.abort_all();
    Drained { cut_off }
}

/// An open connection, counted while it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Binds `addr` for [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Resolves on SIGTERM or SIGINT (what Kubernetes and a terminal send).
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            // Without the handler the default action ends the process:
            // nothing to drain, wait for ever as before.
            tracing::warn!("cannot watch for SIGTERM: {e}");
            std::future::pending::<()>().await;
        }
    }
}

/// The endpoints of a worker without the HTTP front (`--metrics`):
/// `/metrics`, `/healthz` and `/readyz`.
pub struct Probes {
    render: ExtraMetrics,
    draining: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes").finish_non_exhaustive()
    }
}

impl Probes {
    pub fn new(render: ExtraMetrics) -> Arc<Self> {
        Arc::new(Self {
            render,
            draining: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl Handler for Probes {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Reply {
        let ready = !self.draining.load(Ordering::Relaxed);
        match route(request.method().as_str(), request.uri().path()) {
            Route::Health => reply(200, "text/plain", "ok\n"),
            Route::Ready if ready => reply(200, "text/plain", "ready\n"),
            Route::Ready => reply(503, "text/plain", "draining\n"),
            Route::Metrics => {
                let mut text = Text::new();
                (self.render)(&mut text);
                reply(
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    text.finish(),
                )
            }
            _ => json(
                404,
                &serde_json::json!({"error": "not_found", "message": "this port serves /metrics, /healthz and /readyz"}),
            ),
        }
    }

    fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}

impl Front {
    /// The counter of open connections [`serve`] keeps for `/metrics`.
    pub fn connection_counter(&self) -> Arc<AtomicUsize> {
        self.connections.clone()
    }
}
