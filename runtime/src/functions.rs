//! Functions (`wit/chain.wit`): wasm programs registered under a name,
//! invoked with input bytes, giving output bytes and an exit code, and
//! calling each other by name.
//!
//! A registry is a folder of `NAME.wasm` files. Each function is compiled
//! once per host and runs as a process of its own in this OS process,
//! sharing the host's state (`weft:state`). A call runs on a thread of its
//! own; the caller awaits it through its call table.

use crate::locks::Locked as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use wasmtime::Engine;

pub use crate::calls::{
    CallError, CallIo, CallTable, Finished, Invoke, MAX_CALL_BYTES, MAX_CALL_DEPTH, MAX_NAME_LEN,
    MAX_RUNNING_CALLS,
};
use crate::component::{ComponentFunction, TimeLimitReached};
use crate::outcome::Outcome;
use crate::program::{LoadError, Program, StartError};
use crate::start::StartConfig;
use crate::state::StateHost;

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
    #[error("loading function `{0}` (a component): {1:#}")]
    Component(String, wasmtime::Error),
    #[error("starting function `{0}`: {1}")]
    Start(String, StartError),
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
    /// Memories each core-module function keeps between its local-mode
    /// calls (`memory_pool.rs`).
    idle_memories: std::sync::atomic::AtomicUsize,
}

/// The default of [`Functions::keep_idle_memories`].
pub const DEFAULT_IDLE_MEMORIES: usize = 4;

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
    /// Compiles `bytes`; a core module keeps up to `idle_memories`
    /// memories between its calls.
    fn load(
        engine: &Engine,
        name: &str,
        bytes: &[u8],
        idle_memories: usize,
    ) -> Result<Self, RegistryError> {
        if wasmparser::Parser::is_component(bytes) {
            ComponentFunction::load(engine, bytes)
                .map(|c| Self::Component(Arc::new(c)))
                .map_err(|e| RegistryError::Component(name.into(), e))
        } else {
            Program::load(engine, bytes)
                .map(|program| Self::Module(program.pooled(idle_memories)))
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
            idle_memories: DEFAULT_IDLE_MEMORIES.into(),
        })
    }

    /// How many memories each function keeps between its local-mode calls
    /// (a server sets its slot count: as many as can run at once); 0
    /// keeps none. For functions compiled from now on.
    pub fn keep_idle_memories(&self, n: usize) {
        self.idle_memories
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn load(&self, name: &str, bytes: &[u8]) -> Result<Compiled, RegistryError> {
        let idle = self
            .idle_memories
            .load(std::sync::atomic::Ordering::Relaxed);
        Compiled::load(&self.engine, name, bytes, idle)
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
        self.load(name, &bytes)?;
        self.store(name, &target, &bytes)?;
        self.compiled.locked().remove(name);
        Ok(())
    }

    /// Removes function `name`; `Ok(false)` when none was registered.
    pub fn remove(&self, name: &str) -> Result<bool, RegistryError> {
        let path = self.path(name)?;
        self.compiled.locked().remove(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(RegistryError::Io(path, e)),
        }
    }

    /// Checks `bytes` as [`Functions::add`] does, and registers them as
    /// `name` (for a program that arrives over the network, not as a file).
    pub fn add_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let target = self.path(name)?;
        let compiled = self.load(name, bytes)?;
        self.store(name, &target, bytes)?;
        // The checked program is the compiled one: the next call is warm.
        self.compiled.locked().insert(name.into(), compiled);
        Ok(())
    }

    /// Writes a checked program into the registry.
    fn store(&self, name: &str, target: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| RegistryError::Io(self.dir.clone(), e))?;
        // Write then rename: a concurrent reader sees the old or the new.
        // Two writers of one name at once each write a file of their own.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial = self.dir.join(format!(".{name}.{n}.wasm.partial"));
        std::fs::write(&partial, bytes).map_err(|e| RegistryError::Io(partial.clone(), e))?;
        std::fs::rename(&partial, target).map_err(|e| RegistryError::Io(target.to_path_buf(), e))
    }

    /// Whether `name` is a registered function (compiled here, or in the
    /// registry's folder).
    pub fn is_registered(&self, name: &str) -> bool {
        valid_name(name)
            && (self.compiled.locked().contains_key(name)
                || self.dir.join(format!("{name}.wasm")).is_file())
    }

    /// The registry's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
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
        if let Some(program) = self.compiled.locked().get(name) {
            return Ok(program.clone());
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RegistryError::Unknown(name.into(), self.dir.clone()));
            }
            Err(e) => return Err(RegistryError::Io(path, e)),
        };
        let compiled = self.load(name, &bytes)?;
        self.compiled.locked().insert(name.into(), compiled.clone());
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
        self.invoke_observed(name, input, base, None)
    }

    /// [`Functions::invoke`], with `on_end` told how the function ended
    /// (a service reports the trap's message to its client); the base's
    /// own hook is never used: the caller's end is not this function's.
    pub fn invoke_observed(
        self: &Arc<Self>,
        name: &str,
        input: Vec<u8>,
        base: &StartConfig,
        on_end: Option<crate::OnEnd>,
    ) -> Result<Finished, RegistryError> {
        let io = Arc::new(CallIo {
            input,
            output: Mutex::new(Vec::new()),
        });
        let (code, trapped, end) = match self.compiled(name)? {
            Compiled::Component(component) => {
                let functions: Arc<dyn Invoke> = self.clone();
                let outcome =
                    match component.run(name, &functions, self.state.clone(), io.clone(), base) {
                        Ok(code) => Outcome::Exit(code),
                        Err(e) => match e.downcast_ref::<TimeLimitReached>() {
                            Some(TimeLimitReached(limit)) => Outcome::TimeLimit(*limit),
                            None => {
                                tracing::warn!("function `{name}` trapped: {e:#}");
                                Outcome::Trap {
                                    thread: crate::outcome::MAIN_TID,
                                    error: e,
                                }
                            }
                        },
                    };
                if let Some(hook) = &on_end {
                    (hook.0)(&outcome);
                }
                (outcome.exit_code(), outcome.trapped(), outcome.kind())
            }
            Compiled::Module(program) => {
                let config = StartConfig {
                    args: vec![name.to_string()],
                    inherit_stdin: false,
                    state: Some(self.state.clone()),
                    functions: Some(self.clone()),
                    call_io: Some(io.clone()),
                    on_end,
                    ..base.clone()
                };
                let process = program
                    .start(&config)
                    .map_err(|e| RegistryError::Start(name.into(), e))?;
                // The process reported a trap (or any other end) on stderr.
                let outcome = process.run_main();
                (outcome.exit_code(), outcome.trapped(), outcome.kind())
            }
        };
        let output = std::mem::take(&mut *io.output.locked());
        Ok(Finished {
            code,
            trapped,
            end,
            output,
        })
    }
}

impl Invoke for Functions {
    fn check(&self, name: &str) -> Result<(), CallError> {
        match self.compiled(name) {
            Ok(_) => Ok(()),
            Err(RegistryError::Unknown(..) | RegistryError::BadName(_)) => {
                Err(CallError::UnknownFunction)
            }
            Err(e) => {
                tracing::warn!("call of `{name}`: {e}");
                Err(CallError::FailedToStart)
            }
        }
    }

    fn admit(&self) -> Option<Box<dyn Send>> {
        self.running
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| (n < MAX_RUNNING_CALLS).then_some(n + 1),
            )
            .ok()?;
        Some(Box::new(RunningCall(self.running.clone())))
    }

    fn invoke(
        self: Arc<Self>,
        name: &str,
        input: Vec<u8>,
        base: &StartConfig,
    ) -> Result<Finished, CallError> {
        Functions::invoke(&self, name, input, base).map_err(|e| {
            tracing::warn!("call of `{name}`: {e}");
            CallError::FailedToStart
        })
    }
}
