//! Worker hosts for the "chain over 3 hosts" column: `weft serve`
//! processes on loopback, in a cluster made for them, and the `weft run`
//! options that send a program's chained threads to them.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};

/// Worker processes; they exit when this is dropped (or when the process
/// that holds it dies: they watch their stdin).
#[derive(Debug)]
pub struct ServeHosts {
    dir: PathBuf,
    peers: Vec<String>,
    workers: Vec<Worker>,
}

#[derive(Debug)]
struct Worker {
    child: Child,
    _stdin: ChildStdin,
    log: Arc<Mutex<String>>,
}

impl ServeHosts {
    /// Starts `count` workers of a new cluster in `dir` (replaced), each
    /// with `slots` slots; `env` is set for them (e.g. `WEFT_LOG`).
    pub fn start(
        weft: &Path,
        dir: &Path,
        count: usize,
        slots: usize,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start_with(weft, dir, count, slots, env, &[])
    }

    /// [`Self::start`] with more `weft serve` options.
    pub fn start_with(
        weft: &Path,
        dir: &Path,
        count: usize,
        slots: usize,
        env: &[(&str, &str)],
        options: &[&str],
    ) -> anyhow::Result<Self> {
        let _ = std::fs::remove_dir_all(dir);
        let cluster = |args: &[&str]| -> anyhow::Result<()> {
            let status = Command::new(weft)
                .arg("cluster")
                .args(args)
                .stdout(Stdio::null())
                .status()
                .context("running `weft cluster`")?;
            if !status.success() {
                bail!("`weft cluster {}` failed", args.join(" "));
            }
            Ok(())
        };
        let dir_arg = dir.to_str().context("a cluster folder with a UTF-8 path")?;
        cluster(&["init", dir_arg])?;
        cluster(&["add-node", dir_arg, "main"])?;
        let mut hosts = Self {
            dir: dir.to_path_buf(),
            peers: Vec::new(),
            workers: Vec::new(),
        };
        for i in 1..=count {
            let name = format!("host-{i}");
            cluster(&["add-node", dir_arg, &name])?;
            let mut child = Command::new(weft)
                .args(["serve", "--listen", "127.0.0.1:0", "--exit-with-stdin"])
                .args(["--cluster", dir_arg, "--node", &name])
                .args(["--slots", &slots.to_string()])
                .args(options)
                .envs(env.iter().copied())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting `weft serve`")?;
            let stdin = child.stdin.take().expect("piped stdin");
            let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
            let mut first = String::new();
            stderr.read_line(&mut first)?;
            let Some(addr) = first
                .split_whitespace()
                .find(|word| word.starts_with("127.0.0.1:"))
            else {
                let _ = child.kill();
                bail!("`weft serve` did not start: {first}");
            };
            hosts.peers.push(format!("{name}@{addr}"));
            // Keep reading, so a worker never blocks on a full pipe.
            let log = Arc::new(Mutex::new(String::new()));
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in stderr.lines() {
                    let Ok(line) = line else { break };
                    let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            });
            hosts.workers.push(Worker {
                child,
                _stdin: stdin,
                log,
            });
        }
        Ok(hosts)
    }

    /// `weft run` options that place chained threads on these workers
    /// first.
    pub fn run_options(&self) -> Vec<String> {
        vec![
            "--peers".into(),
            self.peers.join(","),
            "--cluster".into(),
            self.dir.display().to_string(),
            "--node".into(),
            "main".into(),
            "--placement".into(),
            "peers".into(),
        ]
    }

    /// [`Self::run_options`] for another home host of this cluster: node
    /// `name`, made now.
    pub fn run_options_as(&self, weft: &Path, name: &str) -> anyhow::Result<Vec<String>> {
        let status = Command::new(weft)
            .args(["cluster", "add-node"])
            .arg(&self.dir)
            .arg(name)
            .stdout(Stdio::null())
            .status()
            .context("running `weft cluster add-node`")?;
        if !status.success() {
            bail!("`weft cluster add-node {name}` failed");
        }
        let mut options = self.run_options();
        let at = options.iter().position(|o| o == "--node").expect("a node");
        options[at + 1] = name.into();
        Ok(options)
    }

    /// What worker `i` has written to stderr so far.
    pub fn log(&self, i: usize) -> String {
        self.workers[i]
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Worker `i`'s process id.
    pub fn pid(&self, i: usize) -> u32 {
        self.workers[i].child.id()
    }

    pub fn count(&self) -> usize {
        self.workers.len()
    }

    /// Kills worker `i` with SIGKILL: no goodbye to its peers.
    pub fn kill(&mut self, i: usize) -> std::io::Result<()> {
        self.workers[i].child.kill()?;
        self.workers[i].child.wait().map(drop)
    }
}

impl Drop for ServeHosts {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
    }
}
