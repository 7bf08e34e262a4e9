//! A guest module as Weft runs it: [`Program::load`] compiles and checks
//! it (rewriting it for snapshots and lowered atomics), and
//! [`Program::start`] makes a [`Process`] over one shared memory.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::{Engine, ExternType, Linker, MemoryType, Module, SharedMemory};
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::WasiCtxBuilder;

use crate::memory_pool::{Lease, MemoryPool, Pooled};
use crate::process::{self, Process, ProcessConfig, ThreadState};
use crate::start::{StartConfig, ThreadMode};
use crate::{
    adapt_calls, call_imports, chain, incremental, lower_atomics, remote, rewrite, shared_wasi,
    snapshot, state_imports, std_answers, symbols, threads, waits, wasi,
};

/// Why a module cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly module (the file does not start with `\\0asm`)")]
    NotWasm,
    #[error(
        "a component, not a core module: run it as a function (`weft fn add NAME FILE`, then `weft invoke NAME`)"
    )]
    Component,
    #[error("invalid WebAssembly module: {0:#}")]
    Invalid(wasmtime::Error),
    #[error("invalid WebAssembly module: {0}")]
    Rewrite(rewrite::RewriteError),
    #[error("invalid WebAssembly module: lowering atomics: {0}")]
    LowerAtomics(#[from] lower_atomics::LowerError),
    #[error("invalid WebAssembly module: rerouting atomic waits: {0}")]
    RouteWaits(rewrite::ReencodeError),
    #[error("invalid WebAssembly module: adapting indirect calls of callbacks: {0}")]
    AdaptCalls(rewrite::ReencodeError),
    #[error("invalid WebAssembly module: answering available_parallelism: {0}")]
    StdAnswers(rewrite::ReencodeError),
    #[error("invalid WebAssembly module: checking stack moves: {0}")]
    StackCheck(rewrite::ReencodeError),
    #[error("invalid WebAssembly module: inlining recursive calls: {0}")]
    InlineRecursion(rewrite::ReencodeError),
    #[error("module too large to compile: {0}")]
    TooLarge(rewrite::RewriteError),
    #[error("module imports `{module}`.`{name}` ({kind}), which Weft does not provide")]
    UnknownImport {
        module: String,
        name: String,
        kind: &'static str,
    },
    /// Several imports at once, so a user porting a program learns of all
    /// of them from one run: each as `` `module`.`name` (kind) ``.
    #[error("module imports {} things Weft does not provide: {}", .0.len(), .0.join(", "))]
    UnknownImports(Vec<String>),
    #[error(
        "module imports memory `{module}`.`{name}` that is not shared: build it with shared memory (weft-cc does)"
    )]
    UnsharedMemoryImport { module: String, name: String },
    #[error("module exports no `_start` function: Weft runs WASI commands")]
    MissingStart,
    #[error(
        "module imports `wasi`.`thread-spawn` but does not export `wasi_thread_start(i32, i32)`"
    )]
    MissingThreadStart,
    #[error("module exports `{0}`, a name Weft reserves for itself")]
    ReservedExport(String),
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "thread mode `chain` cannot run this module: it imports no shared memory, so it has no threads"
    )]
    ChainWithoutMemory,
    #[error("thread mode `chain` cannot run this module: {0}")]
    ChainUnsupported(chain::MissingSymbol),
    #[error(
        "creating the shared memory ({pages} pages of 64 KiB, maximum {max} pages) failed: {error}"
    )]
    Memory {
        pages: u64,
        max: u64,
        error: MemoryError,
    },
    #[error("preopening `{host}` as `{guest}` failed: {error:#}")]
    Preopen {
        host: PathBuf,
        guest: String,
        error: wasmtime::Error,
    },
    #[error("linking the module failed: {0:#}")]
    Link(wasmtime::Error),
}

/// Why the shared memory of a process could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("the module needs at least {0} bytes, more than the cap")]
    BelowMinimum(u64),
    #[error("{0} too large")]
    TooLarge(&'static str),
    #[error("{0:#}")]
    Create(wasmtime::Error),
}

/// A compiled, checked guest module.
#[derive(Clone)]
pub struct Program {
    module: Module,
    memory_import: Option<(String, String, MemoryType)>,
    layout: snapshot::SnapshotLayout,
    /// The module as given, for symbol look-ups on demand.
    original: Arc<[u8]>,
    symbols: Arc<std::sync::OnceLock<symbols::DataSymbols>>,
    /// The host's imports, linked once (they do not depend on the
    /// process): for a program's own host, and for a worker's.
    linkers: Arc<[std::sync::OnceLock<Arc<Linker<ThreadState>>>; 2]>,
    /// Memories kept between local-mode processes ([`Program::pooled`]).
    pool: Option<Arc<MemoryPool>>,
    /// The module holds rayon: it starts with `RAYON_NUM_THREADS` set
    /// (std_answers.rs).
    uses_rayon: bool,
}

const WASM_PAGE: u64 = 64 * 1024;

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("module", &self.module)
            .field("memory_import", &self.memory_import)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Program {
    /// The module as it was given (to compile it again for another engine).
    pub fn module_bytes(&self) -> Arc<[u8]> {
        self.original.clone()
    }

    /// Bytes of the compiled code (what keeping the program costs).
    pub fn code_bytes(&self) -> u64 {
        let range = self.module.image_range();
        (range.end as usize).saturating_sub(range.start as usize) as u64
    }

    /// Compiles `bytes` and checks that Weft can run the module.
    pub fn load(engine: &Engine, bytes: &[u8]) -> Result<Self, LoadError> {
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm);
        }
        // Rust programs linked with libweft ask for their atomics to be
        // lowered (lower_atomics.rs); the rewrite starts from that module.
        let lowered = if wasmparser::Parser::is_core_wasm(bytes) {
            lower_atomics::lower_atomics(bytes)?
        } else {
            None
        };
        // Waits the program's end can reach (waits.rs).
        let routed = if wasmparser::Parser::is_core_wasm(bytes) {
            waits::route_waits(lowered.as_deref().unwrap_or(bytes))
                .map_err(LoadError::RouteWaits)?
        } else {
            None
        };
        let rewritten = routed.as_deref().or(lowered.as_deref()).unwrap_or(bytes);
        // Callbacks called through a pointer of another type (adapt_calls.rs).
        let adapted = if wasmparser::Parser::is_core_wasm(bytes) {
            adapt_calls::adapt_callbacks(rewritten).map_err(LoadError::AdaptCalls)?
        } else {
            None
        };
        let adapted = adapted.as_deref().unwrap_or(rewritten);
        // Rust's `available_parallelism()` asks the host, and rayon's pool
        // is sized (std_answers.rs).
        let (answered, uses_rayon) = if wasmparser::Parser::is_core_wasm(bytes) {
            std_answers::answer_std(adapted).map_err(LoadError::StdAnswers)?
        } else {
            (None, false)
        };
        let instrumented = rewrite::export_mutable_globals(answered.as_deref().unwrap_or(adapted))
            .map_err(|e| match e {
                rewrite::RewriteError::ReservedExport(name) => LoadError::ReservedExport(name),
                rewrite::RewriteError::Component => LoadError::Component,
                too_large @ rewrite::RewriteError::FunctionTooLarge { .. } => {
                    LoadError::TooLarge(too_large)
                }
                other => LoadError::Rewrite(other),
            })?;
        // Thread stacks that overflow stop (stack_check.rs); after the
        // globals a snapshot holds were listed, so the limit is no part.
        let checked = if wasmparser::Parser::is_core_wasm(bytes) {
            crate::stack_check::check_stacks(&instrumented.bytes).map_err(LoadError::StackCheck)?
        } else {
            None
        };
        let checked = checked.as_deref().unwrap_or(&instrumented.bytes);
        // Small recursive functions make fewer calls (inline_recursion.rs);
        // last, so the copies are the final code.
        let inlined = if wasmparser::Parser::is_core_wasm(bytes) {
            crate::inline_recursion::inline_recursion(checked)
                .map_err(LoadError::InlineRecursion)?
        } else {
            None
        };
        let module = Module::new(engine, inlined.as_deref().unwrap_or(checked))
            .map_err(LoadError::Invalid)?;
        let layout = snapshot::SnapshotLayout {
            module: weft_snapshot::ModuleHash::of(bytes),
            mutable_globals: instrumented.mutable_globals,
        };
        let mut memory_import = None;
        let mut imports_spawn = false;
        let mut unknown = Vec::new();
        for import in module.imports() {
            let (module_name, name) = (import.module(), import.name());
            let known = match import.ty() {
                ExternType::Memory(ty) => {
                    if !ty.is_shared() {
                        return Err(LoadError::UnsharedMemoryImport {
                            module: module_name.into(),
                            name: name.into(),
                        });
                    }
                    if memory_import.is_none() {
                        memory_import = Some((module_name.to_string(), name.to_string(), ty));
                        true
                    } else {
                        false
                    }
                }
                ExternType::Func(_) => match module_name {
                    wasi::MODULE => wasi::FUNCTIONS.contains(&name),
                    threads::WASI_MODULE if name == threads::WASI_SPAWN => {
                        imports_spawn = true;
                        true
                    }
                    threads::WEFT_MODULE => {
                        imports_spawn |= name == "spawn";
                        threads::WEFT_FUNCTIONS.contains(&name)
                    }
                    state_imports::STATE_MODULE => state_imports::STATE_FUNCTIONS.contains(&name),
                    call_imports::CHAIN_MODULE => call_imports::CHAIN_FUNCTIONS.contains(&name),
                    // The host's internal imports (the same module).
                    crate::stack_check::MODULE if name == crate::stack_check::FUNCTION => true,
                    waits::MODULE => waits::FUNCTIONS.contains(&name),
                    _ => false,
                },
                _ => false,
            };
            if !known {
                unknown.push((module_name, name, extern_kind(&import.ty())));
            }
        }
        match &unknown[..] {
            [] => {}
            [(module, name, kind)] => {
                return Err(LoadError::UnknownImport {
                    module: (*module).into(),
                    name: (*name).into(),
                    kind,
                });
            }
            all => {
                let listed = all
                    .iter()
                    .map(|(module, name, kind)| format!("`{module}`.`{name}` ({kind})"))
                    .collect();
                return Err(LoadError::UnknownImports(listed));
            }
        }
        let exports_func = |name: &str| {
            module
                .get_export(name)
                .is_some_and(|ty| matches!(ty, ExternType::Func(_)))
        };
        if !exports_func("_start") {
            return Err(LoadError::MissingStart);
        }
        if imports_spawn {
            let ok = match module.get_export("wasi_thread_start") {
                Some(ExternType::Func(ty)) => {
                    ty.params().len() == 2
                        && ty.params().all(|p| p.is_i32())
                        && ty.results().len() == 0
                }
                _ => false,
            };
            if !ok {
                return Err(LoadError::MissingThreadStart);
            }
        }
        Ok(Self {
            module,
            memory_import,
            layout,
            original: bytes.into(),
            symbols: Arc::default(),
            linkers: Arc::default(),
            pool: None,
            uses_rayon,
        })
    }

    /// This program, keeping up to `max_idle` memories between the
    /// local-mode processes it starts (a function invoked again and
    /// again): a process takes an idle memory with the module already
    /// linked to it, and gives it back wiped when it is gone
    /// (`memory_pool.rs`). Chain mode and workers always make new ones.
    pub fn pooled(mut self, max_idle: usize) -> Self {
        self.pool = (max_idle > 0).then(|| MemoryPool::new(max_idle));
        self
    }

    /// The linker of the host's imports (a worker's when `worker`), made
    /// on first use.
    fn linker(&self, worker: bool) -> Result<Arc<Linker<ThreadState>>, StartError> {
        let cell = &self.linkers[usize::from(worker)];
        if let Some(linker) = cell.get() {
            return Ok(linker.clone());
        }
        let mut linker = Linker::new(self.module.engine());
        (|| {
            wasi::add_to_linker(&mut linker)?;
            threads::add_to_linker(&mut linker)?;
            state_imports::add_to_linker(&mut linker)?;
            call_imports::add_to_linker(&mut linker)?;
            waits::add_to_linker(&mut linker)?;
            if worker {
                remote::shadow_home_imports(&mut linker, &self.module)?;
            }
            wasmtime::Result::<()>::Ok(())
        })()
        .map_err(StartError::Link)?;
        // Two first calls at once both link; either result is the same.
        Ok(cell.get_or_init(|| Arc::new(linker)).clone())
    }

    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Names of the module's data, for reports such as merge conflicts
    /// (parsed on first use).
    pub fn data_symbols(&self) -> &symbols::DataSymbols {
        self.symbols
            .get_or_init(|| symbols::DataSymbols::parse(&self.original))
    }

    /// The module's identity and mutable globals, for snapshots.
    pub fn snapshot_layout(&self) -> &snapshot::SnapshotLayout {
        &self.layout
    }

    /// Creates the process: its shared memory, WASI context and linker.
    pub fn start(&self, config: &StartConfig) -> Result<Arc<Process>, StartError> {
        self.start_as(config, false)
    }

    /// A process that runs chained threads of this program for its home
    /// host (see `cluster/worker.rs`): it never runs `_start`, and its
    /// threads get the imports of a remote thread (`remote.rs`).
    pub fn start_worker(&self, config: &StartConfig) -> Result<Arc<Process>, StartError> {
        self.start_as(config, true)
    }

    fn start_as(&self, config: &StartConfig, worker: bool) -> Result<Arc<Process>, StartError> {
        // A worker's threads are watched for stalls by their home, which
        // sees every thread of the program.
        let worker_config;
        let config = if worker && config.stall_warning.is_some() {
            worker_config = StartConfig {
                stall_warning: None,
                ..config.clone()
            };
            &worker_config
        } else {
            config
        };
        let engine = self.module.engine();
        let linker = self.linker(worker)?;
        // Local mode on a program's own host may reuse a memory; chain mode
        // prepares its memory for snapshots, and a worker's memory holds
        // another host's thread.
        let pool = match (&self.pool, &self.memory_import, config.mode, worker) {
            (Some(pool), Some(_), ThreadMode::Local, false) => Some(pool),
            _ => None,
        };
        let mut taken = None;
        let memory = match &self.memory_import {
            Some((_, _, ty)) => {
                let max_pages = memory_cap_pages(ty, config.max_memory);
                taken = pool.and_then(|pool| pool.take(max_pages));
                match &taken {
                    Some(pooled) => Some(pooled.memory.clone()),
                    None => Some(new_shared_memory(engine, ty, config.max_memory)?),
                }
            }
            None => None,
        };
        if let (Some(memory), ThreadMode::Chain) = (&memory, config.mode) {
            incremental::prepare_memory(memory);
        }

        let mut wasi = WasiCtxBuilder::new();
        wasi.args(&config.args).envs(&config.env);
        if self.uses_rayon && !config.env.iter().any(|(k, _)| k == "RAYON_NUM_THREADS") {
            // rayon's pool would have one thread where std's answer was
            // folded into it (std_answers.rs): it gets the count instead.
            let peers = config.placer.as_ref().map_or(0, |p| p.peer_slots());
            let slots = config.slots.unwrap_or_else(crate::parallelism::host_cores);
            let n = crate::parallelism::processors(
                config.mode,
                crate::parallelism::host_cores(),
                slots,
                peers,
            );
            wasi.env("RAYON_NUM_THREADS", n.to_string());
        }
        wasi.inherit_stdout().inherit_stderr();
        if config.inherit_stdin {
            wasi.inherit_stdin();
        }
        for (host, guest) in &config.dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
                .map_err(|e| StartError::Preopen {
                    host: host.clone(),
                    guest: guest.clone(),
                    error: e,
                })?;
        }
        let wasi = shared_wasi::SharedWasi::new(wasi.build_p1());
        // Chain mode is part of the process from its start.
        let chain: Option<Box<dyn process::Chaining>> = match (config.mode, &memory) {
            (ThreadMode::Local, _) => None,
            (ThreadMode::Chain, None) => {
                return Err(StartError::ChainWithoutMemory);
            }
            (ThreadMode::Chain, Some(memory)) => {
                let max_pages = memory.ty().maximum().unwrap_or(memory.ty().minimum());
                let chain = chain::ChainSupport::new(
                    self.layout.clone(),
                    self.data_symbols().clone(),
                    max_pages.min(u32::MAX as u64) as u32,
                    self.original.clone(),
                )
                .map_err(StartError::ChainUnsupported)?;
                Some(Box::new(chain))
            }
        };
        let process = Process::new(
            engine.clone(),
            memory.clone(),
            wasi,
            ProcessConfig {
                mode: config.mode,
                max_threads: config.max_threads,
                on_conflict: config.on_conflict,
                slots: config.slots.unwrap_or_else(crate::parallelism::host_cores),
            },
            config.state.clone().unwrap_or_default(),
            config.clone(),
            chain,
        );
        if worker {
            process.stop_at_host_calls();
        }
        process.name_data_with(process::DataNames {
            symbols: self.symbols.clone(),
            wasm: self.original.clone(),
        });
        let pre = match taken {
            Some(pooled) => pooled.pre,
            None => {
                let mut own = (*linker).clone();
                if let (Some((module, name, _)), Some(memory)) = (&self.memory_import, &memory) {
                    // The definition is not tied to this store: a shared
                    // memory belongs to the engine, and every thread's store
                    // imports it.
                    let store = process.new_store(process::MAIN_TID, None);
                    own.define(&store, module, name, memory.clone())
                        .map_err(StartError::Link)?;
                }
                let pre = own
                    .instantiate_pre(&self.module)
                    .map_err(StartError::Link)?;
                if let Some(pool) = pool {
                    pool.made();
                }
                pre
            }
        };
        if let (Some(pool), Some(memory)) = (pool, &memory) {
            let pooled = Pooled {
                memory: memory.clone(),
                pre: pre.clone(),
            };
            process.hold_until_dropped(Box::new(Lease::new(pool, pooled)));
        }
        process.set_linking(process::Linking {
            module: self.module.clone(),
            linker,
            pre,
            memory_import: self
                .memory_import
                .as_ref()
                .map(|(module, name, _)| (module.clone(), name.clone())),
        });
        Ok(process)
    }
}

/// Creates the shared memory a module imports, capped at `max_memory` bytes
/// when that is below the module's own maximum (an import may be given a
/// memory with a smaller maximum than it declares).
fn new_shared_memory(
    engine: &Engine,
    ty: &MemoryType,
    max_memory: Option<u64>,
) -> Result<SharedMemory, StartError> {
    let cap_pages = memory_cap_pages(ty, max_memory);
    let error = |error: MemoryError| StartError::Memory {
        pages: ty.minimum(),
        max: cap_pages,
        error,
    };
    if cap_pages < ty.minimum() {
        return Err(error(MemoryError::BelowMinimum(ty.minimum() * WASM_PAGE)));
    }
    let min = u32::try_from(ty.minimum()).map_err(|_| error(MemoryError::TooLarge("minimum")))?;
    let max = u32::try_from(cap_pages).map_err(|_| error(MemoryError::TooLarge("maximum")))?;
    SharedMemory::new(engine, MemoryType::shared(min, max))
        .map_err(|e| error(MemoryError::Create(e)))
}

/// The maximum in pages of the memory a process of a module importing
/// memory `ty` gets, under `max_memory` bytes.
fn memory_cap_pages(ty: &MemoryType, max_memory: Option<u64>) -> u64 {
    let declared_max = ty.maximum().unwrap_or(ty.minimum());
    max_memory.map_or(declared_max, |bytes| (bytes / WASM_PAGE).min(declared_max))
}

fn extern_kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "function",
        ExternType::Global(_) => "global",
        ExternType::Table(_) => "table",
        ExternType::Memory(_) => "memory",
        ExternType::Tag(_) => "tag",
    }
}
