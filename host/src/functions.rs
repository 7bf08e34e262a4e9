//! Functions (`wit/chain.wit`): wasm programs registered under a name,
//! invoked with input bytes, giving output bytes and an exit code, and
//! calling each other by name.
//!
//! A registry is a folder of `NAME.wasm` files. Each function is compiled
//! once per host and runs as a process of its own in this OS process,
//! sharing the host's state (`weft:state`). A call runs on a thread of its
//! own; the caller awaits it through its call table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use wasmtime::Engine;

use crate::component::ComponentFunction;
use crate::process::{TRAP_EXIT_CODE, ThreadEnd};
use crate::state::StateHost;
use crate::{LoadError, Program, StartConfig};

/// Largest input or output a call carries.
pub const MAX_CALL_BYTES: usize = 64 << 20;
/// Longest function name.
pub const MAX_NAME_LEN: usize = 128;
/// Deepest chain of calls (a function calling a function ...); deeper
/// calls fail with `failed-to-start`.
pub const MAX_CALL_DEPTH: u32 = 64;
/// Calls running at once in one host; more fail with `failed-to-start`
/// (each is an OS thread and a process).
pub const MAX_RUNNING_CALLS: usize = 256;

/// Why a call failed; the discriminants are those of the WIT `call-error`
/// enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum CallError {
    #[error("no function is registered under that name")]
    UnknownFunction = 0,
    #[error("no call has that id")]
    NoSuchCall = 1,
    #[error("the call was awaited before")]
    AlreadyAwaited = 2,
    #[error("the call has not finished")]
    NotFinished = 3,
    #[error("the callee trapped")]
    Trapped = 4,
    #[error("the callee could not be started")]
    FailedToStart = 5,
    #[error("input or name too large")]
    TooLarge = 6,
}

impl CallError {
    /// The error with WIT discriminant `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        [
            Self::UnknownFunction,
            Self::NoSuchCall,
            Self::AlreadyAwaited,
            Self::NotFinished,
            Self::Trapped,
            Self::FailedToStart,
            Self::TooLarge,
        ]
        .into_iter()
        .find(|e| *e as u8 == code)
    }
}

/// Why the registry could not do something (for the CLI).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{0}` is not a function name (letters, digits, `-` and `_`, at most {MAX_NAME_LEN})")]
    BadName(String),
    #[error("no function `{0}` in {1}")]
    Unknown(String, PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("loading function `{0}`: {1}")]
    Load(String, LoadError),
    #[error("loading function `{0}` (a component): {1}")]
    Component(String, String),
    #[error("starting function `{0}`: {1}")]
    Start(String, String),
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub code: i32,
    pub trapped: bool,
    pub output: Vec<u8>,
}

/// A function's input and output, as its process sees them.
#[derive(Debug, Default)]
pub struct CallIo {
    pub input: Vec<u8>,
    pub output: Mutex<Vec<u8>>,
}

/// The registered functions of a host, compiled on first use.
#[derive(Debug)]
pub struct Functions {
    dir: PathBuf,
    engine: Engine,
    state: Arc<StateHost>,
    compiled: Mutex<HashMap<String, Compiled>>,
    /// Calls running now, within [`MAX_RUNNING_CALLS`].
    running: Arc<std::sync::atomic::AtomicUsize>,
}

/// A running call's place in [`Functions::running`].
struct RunningCall(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for RunningCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A function compiled for this host: a core module, or a component.
#[derive(Debug, Clone)]
enum Compiled {
    Module(Program),
    Component(Arc<ComponentFunction>),
}

impl Compiled {
    fn load(engine: &Engine, name: &str, bytes: &[u8]) -> Result<Self, RegistryError> {
        if wasmparser::Parser::is_component(bytes) {
            ComponentFunction::load(engine, bytes)
                .map(|c| Self::Component(Arc::new(c)))
                .map_err(|e| RegistryError::Component(name.into(), format!("{e:#}")))
        } else {
            Program::load(engine, bytes)
                .map(Self::Module)
                .map_err(|e| RegistryError::Load(name.into(), e))
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        // A name that reads as an option on a command line is refused.
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Functions {
    pub fn new(engine: Engine, dir: PathBuf, state: Arc<StateHost>) -> Arc<Self> {
        Arc::new(Self {
            dir,
            engine,
            state,
            compiled: Mutex::new(HashMap::new()),
            running: Arc::default(),
        })
    }

    fn path(&self, name: &str) -> Result<PathBuf, RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::BadName(name.into()));
        }
        Ok(self.dir.join(format!("{name}.wasm")))
    }

    /// Registers `program` (checked by loading it) as `name`.
    pub fn add(&self, name: &str, program: &Path) -> Result<(), RegistryError> {
        let target = self.path(name)?;
        let bytes =
            std::fs::read(program).map_err(|e| RegistryError::Io(program.to_path_buf(), e))?;
        Compiled::load(&self.engine, name, &bytes)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| RegistryError::Io(self.dir.clone(), e))?;
        // Write then rename: a concurrent reader sees the old or the new.
        let partial = self.dir.join(format!(".{name}.wasm.partial"));
        std::fs::write(&partial, &bytes).map_err(|e| RegistryError::Io(partial.clone(), e))?;
        std::fs::rename(&partial, &target).map_err(|e| RegistryError::Io(target.clone(), e))?;
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        Ok(())
    }

    /// Registered names, sorted.
    pub fn list(&self) -> Result<Vec<String>, RegistryError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RegistryError::Io(self.dir.clone(), e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let name = name.strip_suffix(".wasm")?.to_string();
                valid_name(&name).then_some(name)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// The compiled function `name`.
    fn compiled(&self, name: &str) -> Result<Compiled, RegistryError> {
        let path = self.path(name)?;
        if let Some(program) = self
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(program.clone());
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RegistryError::Unknown(name.into(), self.dir.clone()));
            }
            Err(e) => return Err(RegistryError::Io(path, e)),
        };
        let compiled = Compiled::load(&self.engine, name, &bytes)?;
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.into(), compiled.clone());
        Ok(compiled)
    }

    /// Runs function `name` with `input` on the calling thread until its
    /// main thread ends.
    pub fn invoke(
        self: &Arc<Self>,
        name: &str,
        input: Vec<u8>,
        base: &StartConfig,
    ) -> Result<Finished, RegistryError> {
        let io = Arc::new(CallIo {
            input,
            output: Mutex::new(Vec::new()),
        });
        let trap = |e: &dyn std::fmt::Display| {
            tracing::warn!("function `{name}` trapped: {e}");
            (TRAP_EXIT_CODE, true)
        };
        let (code, trapped) = match self.compiled(name)? {
            Compiled::Component(component) => {
                match component.run(name, self, self.state.clone(), io.clone(), base) {
                    Ok(code) => (code, false),
                    Err(e) => trap(&format_args!("{e:#}")),
                }
            }
            Compiled::Module(program) => {
                let config = StartConfig {
                    args: vec![name.to_string()],
                    inherit_stdin: false,
                    state: Some(self.state.clone()),
                    functions: Some(self.clone()),
                    call_io: Some(io.clone()),
                    ..base.clone()
                };
                let process = program
                    .start(&config)
                    .map_err(|e| RegistryError::Start(name.into(), format!("{e:#}")))?;
                match process.run_main() {
                    ThreadEnd::Finished | ThreadEnd::Result(_) => (0, false),
                    ThreadEnd::Exit(code) => (code, false),
                    ThreadEnd::Trap(e) => trap(&format_args!("{e:#}")),
                }
            }
        };
        let output = std::mem::take(&mut *io.output.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(Finished {
            code,
            trapped,
            output,
        })
    }
}

/// The calls a function has made, by id.
#[derive(Debug, Default)]
pub struct CallTable {
    calls: Mutex<CallsState>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct CallsState {
    next_id: u32,
    calls: HashMap<u32, Call>,
}

#[derive(Debug)]
enum Call {
    Running,
    Done {
        result: Result<Finished, CallError>,
        awaited: bool,
    },
}

impl CallTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallsState> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts function `name` with `input` on a thread of its own.
    pub fn call(
        self: &Arc<Self>,
        functions: &Arc<Functions>,
        name: &str,
        input: Vec<u8>,
        base: &StartConfig,
    ) -> Result<u32, CallError> {
        if name.len() > MAX_NAME_LEN || input.len() > MAX_CALL_BYTES {
            return Err(CallError::TooLarge);
        }
        if base.call_depth >= MAX_CALL_DEPTH {
            tracing::debug!("call of `{name}`: {MAX_CALL_DEPTH} calls deep already");
            return Err(CallError::FailedToStart);
        }
        // Unknown names fail here, not at await.
        match functions.compiled(name) {
            Ok(_) => {}
            Err(RegistryError::Unknown(..) | RegistryError::BadName(_)) => {
                return Err(CallError::UnknownFunction);
            }
            Err(e) => {
                tracing::warn!("call of `{name}`: {e}");
                return Err(CallError::FailedToStart);
            }
        }
        let counted = functions.running.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| (n < MAX_RUNNING_CALLS).then_some(n + 1),
        );
        if counted.is_err() {
            tracing::debug!("call of `{name}`: {MAX_RUNNING_CALLS} calls run already");
            return Err(CallError::FailedToStart);
        }
        let running = RunningCall(functions.running.clone());
        let id = {
            let mut state = self.lock();
            state.next_id = state.next_id.checked_add(1).ok_or(CallError::TooLarge)?;
            let id = state.next_id;
            state.calls.insert(id, Call::Running);
            id
        };
        let base = StartConfig {
            call_depth: base.call_depth + 1,
            ..base.clone()
        };
        let (table, functions, name) = (self.clone(), functions.clone(), name.to_string());
        let started = std::thread::Builder::new()
            .name(format!("weft-call-{name}"))
            .stack_size(4 << 20)
            .spawn(move || {
                let _running = running;
                let result = functions.invoke(&name, input, &base).map_err(|e| {
                    tracing::warn!("call of `{name}`: {e}");
                    CallError::FailedToStart
                });
                table.lock().calls.insert(
                    id,
                    Call::Done {
                        result,
                        awaited: false,
                    },
                );
                table.finished.notify_all();
            });
        if let Err(e) = started {
            tracing::warn!("call of a function: no OS thread: {e}");
            self.lock().calls.remove(&id);
            return Err(CallError::FailedToStart);
        }
        Ok(id)
    }

    /// Waits for call `id`; its exit code.
    pub fn await_call(&self, id: u32) -> Result<i32, CallError> {
        let mut state = self.lock();
        loop {
            match Self::take_result(&mut state, id) {
                Ok(None) => state = self.finished.wait(state).unwrap_or_else(|e| e.into_inner()),
                Ok(Some(code)) => return code,
                Err(e) => return Err(e),
            }
        }
    }

    /// Call `id`'s exit code if it has finished (it is then awaited), or
    /// `None`: an await that does not block (for threads on other hosts,
    /// which poll).
    pub fn try_await(&self, id: u32) -> Result<Option<i32>, CallError> {
        Self::take_result(&mut self.lock(), id)?.transpose()
    }

    fn take_result(
        state: &mut CallsState,
        id: u32,
    ) -> Result<Option<Result<i32, CallError>>, CallError> {
        match state.calls.get_mut(&id) {
            None => Err(CallError::NoSuchCall),
            Some(Call::Running) => Ok(None),
            Some(Call::Done { awaited: true, .. }) => Err(CallError::AlreadyAwaited),
            Some(Call::Done { result, awaited }) => {
                *awaited = true;
                Ok(Some(match result {
                    Ok(finished) if finished.trapped => Err(CallError::Trapped),
                    Ok(finished) => Ok(finished.code),
                    Err(e) => Err(*e),
                }))
            }
        }
    }

    /// Checks `ids` for `await-all`: each a call, none awaited, none twice.
    /// Whether all of them have finished.
    fn check_all(state: &CallsState, ids: &[u32]) -> Result<bool, CallError> {
        let mut seen = std::collections::HashSet::new();
        let mut finished = true;
        for id in ids {
            match state.calls.get(id) {
                None => return Err(CallError::NoSuchCall),
                Some(Call::Done { awaited: true, .. }) => return Err(CallError::AlreadyAwaited),
                Some(_) if !seen.insert(*id) => return Err(CallError::AlreadyAwaited),
                Some(Call::Running) => finished = false,
                Some(Call::Done { .. }) => {}
            }
        }
        Ok(finished)
    }

    /// Waits for every call in `ids` (see `await-all` in `wit/chain.wit`).
    pub fn await_all(&self, ids: &[u32]) -> Result<Vec<i32>, CallError> {
        Self::check_all(&self.lock(), ids)?;
        let results: Vec<Result<i32, CallError>> =
            ids.iter().map(|id| self.await_call(*id)).collect();
        results.into_iter().collect()
    }

    /// `await-all` that does not block: the exit codes once every call in
    /// `ids` has finished (they are then awaited), else `None`.
    pub fn try_await_all(&self, ids: &[u32]) -> Result<Option<Vec<i32>>, CallError> {
        let mut state = self.lock();
        if !Self::check_all(&state, ids)? {
            return Ok(None);
        }
        let results: Vec<Result<i32, CallError>> = ids
            .iter()
            .map(|id| Self::take_result(&mut state, *id)?.ok_or(CallError::NotFinished)?)
            .collect();
        results.into_iter().collect::<Result<Vec<_>, _>>().map(Some)
    }

    /// The output of finished call `id`.
    pub fn output(&self, id: u32) -> Result<Vec<u8>, CallError> {
        match self.lock().calls.get(&id) {
            None => Err(CallError::NoSuchCall),
            Some(Call::Running) => Err(CallError::NotFinished),
            Some(Call::Done { result, .. }) => {
                result.as_ref().map(|f| f.output.clone()).map_err(|e| *e)
            }
        }
    }
}
