//! Weft's conformance cases: guest programs built for wasm with `weft-cc`
//! (or cargo, for Rust) and natively, run under `weft run` in each thread
//! mode and natively, and compared.
//!
//! A case is an entry of `cases.toml` naming a program in `programs/` (C)
//! or `rust/` (a Rust crate). The native build is the oracle: a case passes
//! in a mode when `weft run` prints the same stdout and exits with the same
//! code. Thread modes are columns ([`Mode`]); a later mode adds a column,
//! not a harness.

pub mod bench;
pub mod bench_openmp;
pub mod bench_sync;
pub mod cli;
pub mod exec;
pub mod hosts;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

pub use exec::Outcome;

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

/// How long one run may take before it counts as hung.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A thread mode that cases run in: a column of the conformance table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Local,
    Chain,
    /// Chain mode with threads placed on three `weft serve` processes.
    Chain3,
}

impl Mode {
    pub const ALL: &[Mode] = &[Mode::Local, Mode::Chain, Mode::Chain3];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::Chain => "chain",
            Mode::Chain3 => "chain3",
        }
    }

    /// The `--thread-mode` it runs with.
    fn thread_mode(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::Chain | Mode::Chain3 => "chain",
        }
    }
}

/// Workers of the `chain3` column, started once per process.
static HOSTS: std::sync::OnceLock<Result<hosts::ServeHosts, String>> = std::sync::OnceLock::new();

/// What a case must do in chain mode, where every thread runs on its own
/// copy of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainExpectation {
    /// Its threads communicate only through joins, disjoint writes and
    /// merge regions: the output must equal the native build's.
    #[default]
    Same,
    /// It relies on shared writes or synchronisation that chained threads
    /// cannot have: Weft must end it with a clear error (a reported
    /// conflict, or a refused wait), never a silent difference or a hang.
    Error,
    /// Its threads race, so whether they overlap in time decides: either
    /// the same output, or a clear error.
    SameOrError,
}

/// The messages by which Weft refuses a program in chain mode.
const CHAIN_ERRORS: &[&str] = &[
    "conflicting write",
    "cannot work in chain mode",
    "allocated more than its heap arena holds",
    "thread mode `chain` cannot run this module",
];

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Mode::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown mode `{s}`"))
    }
}

/// What language a case's program is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    C,
    /// C++ (programs/NAME.cpp): weft-c++ and the host's `c++`, C++20.
    Cxx,
    Rust,
}

/// One conformance case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(skip)]
    pub name: String,
    #[serde(skip, default = "default_lang")]
    pub lang: Lang,
    /// What the case checks, for the table.
    pub about: String,
    /// Arguments after the program name.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra `weft run` options, e.g. `--max-threads`.
    #[serde(default)]
    pub weft_options: Vec<String>,
    /// What the case must do in chain mode.
    #[serde(default)]
    pub chain: ChainExpectation,
    /// Extra compiler options for both builds, e.g. `-fopenmp`.
    #[serde(default)]
    pub cflags: Vec<String>,
    /// Environment variables of both runs (the guest's through `--env`),
    /// e.g. `OMP_SCHEDULE`.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

fn default_lang() -> Lang {
    Lang::C
}

/// The conformance folder of this source tree.
pub fn root() -> PathBuf {
    // A target directory shared by several checkouts can hold this crate
    // as compiled in another one; under cargo, the running package's
    // folder names the right checkout.
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) {
        for candidate in [
            dir.clone(),
            dir.join("conformance"),
            dir.join("../conformance"),
        ] {
            if candidate.join("cases.toml").is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `weft-cc` driver of this source tree.
pub fn weft_cc() -> PathBuf {
    root().join("../guest-libs/weft-cc")
}

/// All cases of `cases.toml`, by name.
pub fn cases() -> anyhow::Result<Vec<Case>> {
    let text = include_str!("../cases.toml");
    let table: BTreeMap<String, Case> = toml::from_str(text).context("parsing cases.toml")?;
    Ok(table
        .into_iter()
        .map(|(name, mut case)| {
            case.lang = if root().join("rust").join(&name).is_dir() {
                Lang::Rust
            } else if root()
                .join("programs")
                .join(format!("{name}.cpp"))
                .is_file()
            {
                Lang::Cxx
            } else {
                Lang::C
            };
            case.name = name;
            case
        })
        .collect())
}

pub fn case(name: &str) -> anyhow::Result<Case> {
    cases()?
        .into_iter()
        .find(|c| c.name == name)
        .with_context(|| format!("no conformance case named `{name}`"))
}

/// Where builds go and which `weft` runs the cases.
#[derive(Debug, Clone)]
pub struct Suite {
    pub out_dir: PathBuf,
    pub weft: PathBuf,
}

/// A case's result in one mode.
#[derive(Debug)]
pub struct CaseReport {
    pub case: String,
    pub mode: Mode,
    pub expectation: ChainExpectation,
    pub native: Outcome,
    pub weft: Outcome,
}

impl CaseReport {
    /// Same stdout and exit code as the native build.
    pub fn agrees(&self) -> bool {
        !self.weft.timed_out
            && !self.native.timed_out
            && self.weft.code == self.native.code
            && self.weft.stdout == self.native.stdout
    }

    /// Weft ended the program with one of its chain-mode errors.
    pub fn refused_clearly(&self) -> bool {
        !self.weft.timed_out
            && self.weft.code.is_some_and(|c| c != 0)
            && CHAIN_ERRORS.iter().any(|m| self.weft.stderr.contains(m))
    }

    /// In the `chain3` column: how many threads went to a peer and were
    /// taken back to run again at home (from the cluster statistics; 0
    /// for a program that started no chained thread).
    pub fn taken_back(&self) -> u64 {
        self.weft
            .stderr
            .lines()
            .filter_map(|line| line.strip_prefix("weft: cluster: "))
            .filter_map(|line| line.split_once(" at home (")?.1.split_once(' '))
            .filter_map(|(count, _)| count.parse::<u64>().ok())
            .sum()
    }

    /// Whether the case did what its mode requires. In the `chain3`
    /// column a thread sent to a peer must also finish there.
    pub fn passes(&self) -> bool {
        match (self.mode, self.expectation) {
            (Mode::Local, _) | (Mode::Chain, ChainExpectation::Same) => self.agrees(),
            (Mode::Chain3, ChainExpectation::Same) => self.agrees() && self.taken_back() == 0,
            (Mode::Chain | Mode::Chain3, ChainExpectation::Error) => self.refused_clearly(),
            (Mode::Chain, ChainExpectation::SameOrError) => self.agrees() || self.refused_clearly(),
            (Mode::Chain3, ChainExpectation::SameOrError) => {
                (self.agrees() && self.taken_back() == 0) || self.refused_clearly()
            }
        }
    }

    /// The normalised result of the wasm run, for snapshots.
    pub fn snapshot(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}",
            self.weft
                .code
                .map_or_else(|| "killed".to_string(), |c| c.to_string()),
            self.weft.stdout
        )
    }

    /// Why the case does not agree, with both outputs.
    pub fn explain(&self) -> String {
        format!(
            "case `{}` in mode {} (chain expectation {:?}): native exited {:?}{}, weft exited {:?}{}, {} thread(s) taken back from a peer\n--- native stdout\n{}\n--- weft stdout\n{}\n--- weft stderr\n{}",
            self.case,
            self.mode,
            self.expectation,
            self.native.code,
            if self.native.timed_out {
                " (timed out)"
            } else {
                ""
            },
            self.weft.code,
            if self.weft.timed_out {
                " (timed out)"
            } else {
                ""
            },
            self.taken_back(),
            self.native.stdout,
            self.weft.stdout,
            self.weft.stderr,
        )
    }
}

impl Suite {
    pub fn new(out_dir: impl Into<PathBuf>, weft: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            weft: weft.into(),
        }
    }

    /// Builds (if needed) and runs `case` natively and under `weft` in `mode`.
    pub fn check(&self, case: &Case, mode: Mode) -> anyhow::Result<CaseReport> {
        let (wasm, native) = self.build(case)?;
        let native = exec::run(
            Command::new(&native).args(&case.args).envs(&case.env),
            RUN_TIMEOUT,
        )
        .with_context(|| format!("running the native build of `{}`", case.name))?;
        let mut options = case.weft_options.clone();
        for (name, value) in &case.env {
            options.extend(["--env".to_string(), format!("{name}={value}")]);
        }
        let weft = self.run_weft(&wasm, mode, &options, &case.args)?;
        Ok(CaseReport {
            case: case.name.clone(),
            mode,
            expectation: case.chain,
            native,
            weft,
        })
    }

    /// Runs a wasm file under `weft run` in `mode`.
    pub fn run_weft(
        &self,
        wasm: &Path,
        mode: Mode,
        options: &[String],
        args: &[String],
    ) -> anyhow::Result<Outcome> {
        let hosts = match mode {
            Mode::Chain3 => {
                let mut options = self.hosts()?.run_options();
                options.push("--cluster-stats".into());
                options
            }
            _ => Vec::new(),
        };
        let mut cmd = Command::new(&self.weft);
        cmd.arg("run")
            .arg("--thread-mode")
            .arg(mode.thread_mode())
            .args(hosts)
            .args(options)
            .arg(wasm)
            .args(args)
            .env_remove("THREAD_MODE");
        exec::run(&mut cmd, RUN_TIMEOUT)
            .with_context(|| format!("running `{}` under weft", wasm.display()))
    }

    /// The three workers of the `chain3` column (started on first use).
    fn hosts(&self) -> anyhow::Result<&'static hosts::ServeHosts> {
        let dir = self.out_dir.join(format!("cluster-{}", std::process::id()));
        HOSTS
            .get_or_init(|| {
                hosts::ServeHosts::start(&self.weft, &dir, 3, 2, &[]).map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow::anyhow!("starting the worker hosts: {e}"))
    }

    /// Builds the wasm and native programs of `case`; returns their paths.
    pub fn build(&self, case: &Case) -> anyhow::Result<(PathBuf, PathBuf)> {
        match case.lang {
            Lang::C | Lang::Cxx => {
                let extension = if case.lang == Lang::Cxx { "cpp" } else { "c" };
                let source = root()
                    .join("programs")
                    .join(format!("{}.{extension}", case.name));
                self.build_c_with(&source, &case.name, &case.cflags)
            }
            Lang::Rust => self.build_rust(&case.name),
        }
    }

    /// Builds a C program for wasm (weft-cc) and natively (cc), or a C++
    /// one (a `.cpp` source: weft-c++ and c++, both C++20); rebuilds only
    /// when the source or the guest library changed.
    pub fn build_c(&self, source: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        self.build_c_with(source, name, &[])
    }

    /// `build_c` with extra compiler options for both builds.
    pub fn build_c_with(
        &self,
        source: &Path,
        name: &str,
        cflags: &[String],
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let wasm = self.build_c_wasm_with(source, name, cflags)?;
        let native = self.c_output(name, "native")?;
        let key = flags_key(inputs_key(&[source.to_path_buf()])?, cflags);
        if is_stale(&native, &key) {
            compile_to(&native, |out| {
                let mut cmd = Command::new(if is_cxx(source) { "c++" } else { "cc" });
                cmd.args(["-O2", "-Wall", "-Werror", "-pthread"])
                    .args(cxx_std(source))
                    .args(cflags)
                    .arg("-I")
                    .arg(root().join("../guest-libs/include"))
                    .arg("-o")
                    .arg(out)
                    .arg(source)
                    .arg("-lm");
                cmd
            })?;
            record_key(&native, &key)?;
        }
        Ok((wasm, native))
    }

    /// Builds a C program for wasm only (for programs whose behaviour is
    /// Weft's own, such as traps and limits).
    pub fn build_c_wasm(&self, source: &Path, name: &str) -> anyhow::Result<PathBuf> {
        self.build_c_wasm_with(source, name, &[])
    }

    /// `build_c_wasm` with extra compiler options.
    pub fn build_c_wasm_with(
        &self,
        source: &Path,
        name: &str,
        cflags: &[String],
    ) -> anyhow::Result<PathBuf> {
        let wasm = self.c_output(name, "wasm")?;
        let guest_libs = root().join("../guest-libs");
        let mut inputs = vec![
            source.to_path_buf(),
            guest_libs.join("weft-cc"),
            guest_libs.join("src"),
            guest_libs.join("include"),
            guest_libs.join("libc-overlay"),
        ];
        let compiler = if is_cxx(source) {
            // The C++ library is built into the sysroot by setup-toolchain.sh.
            let libdir = guest_libs.join("sysroot/lib/wasm32-wasi-threads");
            inputs.extend(
                ["libc++.a", "libc++abi.a"]
                    .into_iter()
                    .map(|lib| libdir.join(lib))
                    .filter(|lib| lib.is_file()),
            );
            guest_libs.join("weft-c++")
        } else {
            weft_cc()
        };
        let key = flags_key(inputs_key(&inputs)?, cflags);
        if is_stale(&wasm, &key) {
            compile_to(&wasm, |out| {
                let mut cmd = Command::new(&compiler);
                cmd.args(["-O2", "-Wall", "-Werror"])
                    .args(cxx_std(source))
                    .args(cflags)
                    .arg("-o")
                    .arg(out)
                    .arg(source);
                cmd
            })?;
            record_key(&wasm, &key)?;
        }
        Ok(wasm)
    }

    fn c_output(&self, name: &str, extension: &str) -> anyhow::Result<PathBuf> {
        let dir = self.out_dir.join("c");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir.join(format!("{name}.{extension}")))
    }

    fn build_rust(&self, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        self.build_rust_crate(&root().join("rust").join(name), name)
    }

    /// Builds the Rust crate in `dir` (package `name`) for wasm, linked with
    /// libweft, and natively: the wasm module and the native program.
    pub fn build_rust_crate(&self, dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let manifest = dir.join("Cargo.toml");
        let target_dir = self.out_dir.join("rust");
        for target in [Some("wasm32-wasip1-threads"), None] {
            let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            cmd.args(["build", "--release", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target_dir)
                // Settings of an enclosing cargo run are not this build's.
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("CARGO_BUILD_TARGET");
            if let Some(target) = target {
                // Linked with libweft, as `weft-cc --rustflags` says, so the
                // same module runs in local and in chain mode.
                cmd.args(["--target", target])
                    .env("RUSTFLAGS", rust_link_flags()?);
            }
            compile(&mut cmd, &target_dir)?;
        }
        Ok((
            target_dir.join(format!("wasm32-wasip1-threads/release/{name}.wasm")),
            target_dir.join(format!("release/{name}")),
        ))
    }
}

/// The flags that link a Rust guest with libweft (`weft-cc --rustflags`).
fn rust_link_flags() -> anyhow::Result<String> {
    let output = Command::new(weft_cc())
        .arg("--rustflags")
        .output()
        .context("starting weft-cc --rustflags")?;
    if !output.status.success() {
        bail!(
            "weft-cc --rustflags failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Whether `source` is C++ (built with weft-c++ and the host's `c++`).
fn is_cxx(source: &Path) -> bool {
    source.extension().is_some_and(|e| e == "cpp")
}

/// The language level of a C++ source's builds (std::barrier and
/// std::latch are C++20); nothing for C.
fn cxx_std(source: &Path) -> &'static [&'static str] {
    if is_cxx(source) { &["-std=c++20"] } else { &[] }
}

/// Builds into a temporary file and renames it into place, so concurrent
/// builds of the same program (two modes of one case) never see a partial
/// file.
fn compile_to(output: &Path, command: impl FnOnce(&Path) -> Command) -> anyhow::Result<()> {
    static UNIQUE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = UNIQUE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = output.with_extension(format!("tmp{}-{n}", std::process::id()));
    compile(&mut command(&tmp), output)?;
    std::fs::rename(&tmp, output).with_context(|| format!("renaming {}", tmp.display()))
}

fn compile(cmd: &mut Command, output: &Path) -> anyhow::Result<()> {
    let result = cmd
        .output()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !result.status.success() {
        bail!(
            "building {} failed ({}):\n{}",
            output.display(),
            result.status,
            String::from_utf8_lossy(&result.stderr)
        );
    }
    Ok(())
}

/// A build key that also covers the compiler options.
fn flags_key(key: String, cflags: &[String]) -> String {
    if cflags.is_empty() {
        key
    } else {
        format!("{key} {}", cflags.join(" "))
    }
}

/// A key of the contents of every file under `inputs` (and their paths
/// below the inputs): a build is current when its recorded key matches.
/// Contents, not times: a build directory shared by several checkouts
/// must not take one checkout's build for another's.
fn inputs_key(inputs: &[PathBuf]) -> anyhow::Result<String> {
    use std::hash::Hasher as _;
    fn add(
        path: &Path,
        hasher: &mut std::collections::hash_map::DefaultHasher,
    ) -> std::io::Result<()> {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            entries.sort();
            for entry in entries {
                hasher.write(entry.file_name().map_or(&[][..], |n| n.as_encoded_bytes()));
                add(&entry, hasher)?;
            }
        } else {
            let bytes = std::fs::read(path)?;
            hasher.write_usize(bytes.len());
            hasher.write(&bytes);
        }
        Ok(())
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for input in inputs {
        add(input, &mut hasher).with_context(|| format!("reading {}", input.display()))?;
    }
    Ok(format!("{:016x}", hasher.finish()))
}

fn key_file(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Whether `output` is missing or was built from other inputs than `key`.
fn is_stale(output: &Path, key: &str) -> bool {
    !output.exists() || std::fs::read_to_string(key_file(output)).ok().as_deref() != Some(key)
}

/// Records that `output` was built from inputs with `key`.
fn record_key(output: &Path, key: &str) -> anyhow::Result<()> {
    std::fs::write(key_file(output), key)
        .with_context(|| format!("writing {}", key_file(output).display()))
}
