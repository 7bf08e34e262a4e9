//! `weft serve --http --peers-dns NAME:PORT` against a real DNS server
//! (dnsmasq on loopback, answering 127.0.0.x addresses where workers
//! listen): a worker added to the name gets threads, one removed gets none,
//! while calls run all along and every answer is right.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::guest;

const WAIT: Duration = Duration::from_secs(60);

/// A child process killed when dropped, its stderr collected.
struct Proc {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let lines = BufReader::new(child.stderr.take().unwrap());
        let all = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let mut all = all.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Self { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr has a line holding `needle`; returns that line.
    fn wait_for(&mut self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.stderr().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ended ({status}) before `{needle}`: {}", self.stderr());
            }
            assert!(
                started.elapsed() < WAIT,
                "no `{needle}` in: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the `n`th line holding `needle`.
    fn wait_count(&mut self, needle: &str, n: usize) {
        let started = Instant::now();
        while self.stderr().lines().filter(|l| l.contains(needle)).count() < n {
            assert!(
                started.elapsed() < WAIT,
                "not {n} `{needle}` in: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn weft() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.env_remove("THREAD_MODE");
    cmd
}

fn exchange(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw.split_once("\r\n\r\n").unwrap().1.to_string())
}

/// The value of an unlabelled sample in a metrics text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dnsmasq() -> PathBuf {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("dnsmasq (Debian package `dnsmasq-base`, installed by .ci/run)")
}

fn write_hosts(path: &Path, ips: &[&str]) {
    let text: String = ips
        .iter()
        .map(|ip| format!("{ip} workers.weft.test\n"))
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn workers_follow_the_dns_name_while_calls_run() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dns-peers");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = dir.join("cluster");
    for args in [
        vec!["cluster", "init", cluster.to_str().unwrap()],
        vec!["cluster", "add-node", cluster.to_str().unwrap(), "worker"],
        vec!["cluster", "add-node", cluster.to_str().unwrap(), "front"],
    ] {
        assert!(weft().args(&args).output().unwrap().status.success());
    }

    // Two workers on one port, at 127.0.0.2 and 127.0.0.3.
    let port = free_udp_port();
    let mut workers: Vec<(Proc, SocketAddr)> = ["127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|ip| {
            let mut w = Proc::spawn(weft().args([
                "serve",
                "--listen",
                &format!("{ip}:{port}"),
                "--cluster",
                cluster.to_str().unwrap(),
                "--node",
                "worker",
                "--slots",
                "4",
                "--metrics",
                &format!("{ip}:0"),
                "--exit-with-stdin",
            ]));
            let line = w.wait_for("metrics on http://");
            let addr = line
                .split("http://")
                .nth(1)
                .unwrap()
                .trim_end_matches("/metrics")
                .parse()
                .unwrap();
            (w, addr)
        })
        .collect();
    let calls_on = |metrics: SocketAddr| {
        sample(
            &exchange(metrics, "GET", "/metrics", b"").1,
            "weft_worker_calls_total",
        )
    };

    // The name answers the first worker only.
    let hosts = dir.join("hosts");
    write_hosts(&hosts, &["127.0.0.2"]);
    let dns_port = free_udp_port();
    let mut dns = Proc::spawn(Command::new(dnsmasq()).args([
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--user=root",
        "--log-facility=-",
        &format!("--port={dns_port}"),
        &format!("--addn-hosts={}", hosts.display()),
        "--pid-file=",
        // Answers for the test's domain alone (no upstream to ask).
        "--local=/weft.test/",
    ]));
    // dnsmasq answers once it has read the hosts file.
    dns.wait_for("read ");

    let mut front = Proc::spawn(
        weft()
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--cluster",
                cluster.to_str().unwrap(),
                "--node",
                "front",
                "--peers-dns",
                &format!("workers.weft.test:{port}"),
                "--dns-server",
                &format!("127.0.0.1:{dns_port}"),
                "--dns-interval",
                "300ms",
                "--placement",
                "peers",
                "--exit-with-stdin",
            ])
            .env("WEFT_FUNCTIONS", dir.join("functions")),
    );
    let line = front.wait_for("serving functions over HTTP on ");
    let addr: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    front.wait_for("(added 1, removed 0)");
    let wasm = std::fs::read(guest("http_threads")).unwrap();
    assert_eq!(
        exchange(addr, "PUT", "/f/sum?thread_mode=chain", &wasm).0,
        201
    );

    // Calls run all along; each answer is checked.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut calls = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = exchange(addr, "POST", "/f/sum", b"2000");
                    assert_eq!((status, body.as_str()), (200, "2001000"));
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < WAIT, "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let (a, b) = (workers[0].1, workers[1].1);
    wait_until("the first worker gets threads", &|| calls_on(a) > 0.0);
    assert_eq!(calls_on(b), 0.0, "the second worker is not in DNS yet");

    // Add the second worker to the name (dnsmasq rereads on SIGHUP).
    write_hosts(&hosts, &["127.0.0.2", "127.0.0.3"]);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(dns.child.id() as i32, libc::SIGHUP) };
    front.wait_for("(added 1, removed 0)");
    front.wait_count("peers from", 2);
    wait_until("the added worker gets threads", &|| calls_on(b) > 0.0);

    // Remove the first: it gets no new threads.
    write_hosts(&hosts, &["127.0.0.3"]);
    // SAFETY: as above.
    unsafe { libc::kill(dns.child.id() as i32, libc::SIGHUP) };
    front.wait_for("(added 0, removed 1)");
    // Threads placed before the change finish there.
    std::thread::sleep(Duration::from_millis(500));
    let (a_then, b_then) = (calls_on(a), calls_on(b));
    wait_until("the remaining worker keeps getting threads", &|| {
        calls_on(b) > b_then + 8.0
    });
    assert_eq!(calls_on(a), a_then, "the removed worker got threads");

    stop.store(true, Ordering::Relaxed);
    let calls: u32 = callers.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(calls > 0);
    let metrics = exchange(addr, "GET", "/metrics", b"").1;
    assert_eq!(sample(&metrics, "weft_peers_up"), 1.0, "{metrics}");
    drop(workers.drain(..));
}
