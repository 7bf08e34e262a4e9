//! `weft serve --http`: functions registered, invoked, listed and removed
//! over HTTP; each way a call can end has its status; bounds (413, 429,
//! 504) hold; hostile clients cannot end the server; SIGTERM drains;
//! `/metrics` passes `promtool check metrics`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::guest;

/// How long any one exchange with the server may take in these tests.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A `weft serve` child; it ends when this drops (its stdin closes).
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `weft serve --http 127.0.0.1:0 ARGS` on `registry`.
    fn start(registry: &Path, args: &[&str]) -> Self {
        Self::spawn(
            registry,
            &[
                &["serve", "--http", "127.0.0.1:0", "--exit-with-stdin"],
                args,
            ]
            .concat(),
            "serving functions over HTTP on ",
        )
    }

    fn spawn(registry: &Path, args: &[&str], banner: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(args)
            .env("WEFT_FUNCTIONS", registry)
            .env_remove("THREAD_MODE")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting weft serve");
        let stdin = child.stdin.take();
        let (found, stderr) = (
            Arc::new(Mutex::new(None)),
            Arc::new(Mutex::new(String::new())),
        );
        let lines = BufReader::new(child.stderr.take().unwrap());
        {
            let (found, stderr, banner) = (found.clone(), stderr.clone(), banner.to_string());
            std::thread::spawn(move || {
                for line in lines.lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split(&banner).nth(1) {
                        let addr = rest.trim_start_matches("http://");
                        let addr = addr.split('/').next().unwrap_or(addr);
                        *found.lock().unwrap() = addr.parse::<SocketAddr>().ok();
                    }
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let started = Instant::now();
        let addr = loop {
            if let Some(addr) = *found.lock().unwrap() {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("weft serve ended ({status}): {}", stderr.lock().unwrap());
            }
            assert!(started.elapsed() < IO_TIMEOUT, "weft serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            stdin,
            addr,
            stderr,
        }
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        request(self.addr, method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; server said: {}", self.stderr()))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn alive(&self) -> bool {
        let r = self.call("GET", "/healthz", b"");
        r.status == 200 && r.body == b"ok\n"
    }

    /// Sends SIGTERM and waits for the exit status (bounded).
    fn terminate(mut self) -> (Option<i32>, String) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.stderr());
            }
            assert!(
                started.elapsed() < IO_TIMEOUT,
                "weft serve did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 exchange on a connection of its own.
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    read_reply(&mut stream)
}

/// Reads a whole response (closed by the server, or Content-Length).
fn read_reply(stream: &mut TcpStream) -> std::io::Result<Reply> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad(&format!("no complete head in {} bytes", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = raw[split + 4..].to_vec();
    let reply = Reply {
        status,
        headers,
        body,
    };
    if let Some(len) = reply.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("content-length"))?;
        if len != reply.body.len() {
            return Err(bad(&format!(
                "body of {} bytes, {len} announced",
                reply.body.len()
            )));
        }
    }
    Ok(reply)
}

fn registry(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Registers guest `guest_name` as `name` over HTTP (`query`: options).
fn put(server: &Server, name: &str, guest_name: &str, query: &str) {
    let wasm = std::fs::read(guest(guest_name)).unwrap();
    let r = server.call("PUT", &format!("/f/{name}{query}"), &wasm);
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn register_invoke_list_remove() {
    let dir = registry("http-crud");
    let server = Server::start(&dir, &[]);
    assert!(server.alive());
    assert_eq!(server.call("GET", "/readyz", b"").status, 200);
    put(&server, "echo", "http_echo", "");
    put(
        &server,
        "square",
        "fn_square",
        "?thread_mode=local&timeout=30s",
    );

    let r = server.call("POST", "/f/echo", b"hello over http");
    assert_eq!((r.status, r.text().as_str()), (200, "hello over http"));
    assert_eq!(r.header("weft-exit-code"), Some("0"));
    let r = server.call("POST", "/f/square", b"12");
    assert_eq!((r.status, r.text().as_str()), (200, "144"));
    // An empty input is an input.
    assert_eq!(server.call("POST", "/f/echo", b"").status, 200);

    let listed = server.call("GET", "/f", b"").json();
    assert_eq!(listed["functions"], serde_json::json!(["echo", "square"]));
    let described = server.call("GET", "/f/square", b"").json();
    assert_eq!(described["options"]["thread_mode"], "local");
    assert_eq!(described["options"]["timeout_ms"], 30_000);

    // The same checks as `weft fn add`.
    let r = server.call("PUT", "/f/junk", b"\0asm but not really");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_program");
    let r = server.call("PUT", "/f/-bad", b"");
    assert_eq!(r.status, 400);
    let r = server.call("PUT", "/f/echo?thread_mode=fast", b"");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("bad_options"))
    );
    let r = server.call("POST", "/f/nothing", b"");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("unknown_function"))
    );
    let r = server.call("POST", "/f/bad.name", b"");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("bad_name"))
    );

    // What the registry holds is what `weft fn list` sees.
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["fn", "list"])
        .env("WEFT_FUNCTIONS", &dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo\nsquare\n");

    let r = server.call("DELETE", "/f/square", b"");
    assert_eq!(r.status, 200);
    assert_eq!(server.call("POST", "/f/square", b"2").status, 404);
    assert_eq!(server.call("DELETE", "/f/square", b"").status, 404);
    assert_eq!(server.call("PATCH", "/f/echo", b"").status, 405);
    assert_eq!(server.call("GET", "/nowhere", b"").status, 404);
}

/// The value of an unlabelled metric in a `/metrics` text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn every_call_starts_fresh_though_memories_are_reused() {
    let dir = registry("http-fresh");
    let server = Server::start(&dir, &["--slots", "2"]);
    put(&server, "fresh", "http_fresh", "");
    let first = server.call("POST", "/f/fresh", b"");
    assert_eq!(first.status, 200, "{}", first.text());
    let fresh = first.text();
    assert!(
        fresh.starts_with("counter=7 scratch=clean leftovers=0 pages="),
        "{fresh}"
    );
    // One after another, then from several clients at once, then after a
    // call that grew its memory: each call sees its program as it was
    // loaded (the initial global, a zero array, no marker left anywhere in
    // memory by an earlier call, the first memory size).
    for _ in 0..20 {
        assert_eq!(server.call("POST", "/f/fresh", b"").text(), fresh);
    }
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..10)
                        .map(|_| server.call("POST", "/f/fresh", b"").text())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for client in clients {
            for answer in client.join().unwrap() {
                assert_eq!(answer, fresh);
            }
        }
    });
    let before = server.call("GET", "/metrics", b"").text();
    assert_eq!(server.call("POST", "/f/fresh", b"grow").text(), fresh);
    assert_eq!(server.call("POST", "/f/fresh", b"").text(), fresh);
    // The calls did run on reused memories (else this test proves
    // nothing), and the grown one was not kept.
    let after = server.call("GET", "/metrics", b"").text();
    assert!(
        metric(&before, "weft_memories_reused_total") >= 20.0,
        "{before}"
    );
    assert_eq!(
        metric(&after, "weft_memories_discarded_total")
            - metric(&before, "weft_memories_discarded_total"),
        1.0,
        "{after}"
    );
    assert!(metric(&after, "weft_idle_memory_bytes") > 0.0);
}

/// A component function whose `run` computes for ever (a loop with no
/// host call in it).
const FOREVER_COMPONENT: &str = r#"
(component
  (core module $m
    (func (export "run") (result i32)
      (loop $again (br $again))
      i32.const 0))
  (core instance $i (instantiate $m))
  (func (export "run") (result (result))
    (canon lift (core func $i "run"))))
"#;

#[test]
fn a_component_past_its_time_limit_is_stopped_and_frees_its_slot() {
    let dir = registry("http-component-limit");
    let server = Server::start(&dir, &["--slots", "1"]);
    let wasm = wat::parse_str(FOREVER_COMPONENT).unwrap();
    let r = server.call("PUT", "/f/forever?timeout=1s", &wasm);
    assert_eq!(r.status, 201, "{}", r.text());
    put(&server, "echo", "http_echo", "");
    let r = server.call("POST", "/f/forever", b"");
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"], "timeout");
    assert_eq!(r.header("weft-exit-code"), Some("124"));
    assert!(
        r.json()["message"].as_str().unwrap().contains("time limit"),
        "{}",
        r.text()
    );
    // Stopped, not abandoned: the one slot is free and serves the next
    // call.
    let metrics = server.call("GET", "/metrics", b"").text();
    assert!(metrics.contains("weft_slots_in_use 0\n"), "{metrics}");
    assert!(
        metrics.contains("weft_calls_total{function=\"forever\",outcome=\"timeout\"} 1\n"),
        "{metrics}"
    );
    assert_eq!(server.call("POST", "/f/echo", b"next").text(), "next");
}

#[test]
fn each_end_of_a_call_has_its_status_and_the_server_goes_on() {
    let dir = registry("http-ends");
    let server = Server::start(&dir, &["--slots", "2"]);
    put(&server, "echo", "http_echo", "");
    put(&server, "trap", "fn_trap", "");
    put(&server, "exit", "http_exit", "");
    put(&server, "spin", "http_spin", "?timeout=1s");
    put(
        &server,
        "deadlock",
        "deadlock",
        "?thread_mode=chain&timeout=60s",
    );
    put(&server, "deadlock_local", "deadlock", "?timeout=60s");
    put(&server, "sum", "http_threads", "");
    put(&server, "sum_chain", "http_threads", "?thread_mode=chain");

    let r = server.call("POST", "/f/trap", b"");
    assert_eq!(r.status, 500, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "trap");
    assert!(
        body["message"].as_str().unwrap().contains("trapped"),
        "{body}"
    );
    assert_eq!(body["output"], "partial");
    assert_eq!(r.header("weft-exit-code"), Some("134"));

    let r = server.call("POST", "/f/exit", b"");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        (r.json()["error"].as_str(), r.json()["exit_code"].as_i64()),
        (Some("exit"), Some(3))
    );
    assert_eq!(r.json()["output"], "bye");

    let started = Instant::now();
    let r = server.call("POST", "/f/spin", b"");
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"], "timeout");
    assert!(started.elapsed() >= Duration::from_secs(1));

    for name in ["deadlock", "deadlock_local"] {
        let r = server.call("POST", &format!("/f/{name}"), b"");
        assert_eq!(r.status, 508, "{name}: {}", r.text());
        assert_eq!(r.json()["error"], "deadlock");
        assert!(
            r.json()["message"].as_str().unwrap().contains("deadlock"),
            "{name}: {}",
            r.text()
        );
    }

    for name in ["sum", "sum_chain"] {
        let r = server.call("POST", &format!("/f/{name}"), b"1000");
        assert_eq!((r.status, r.text().as_str()), (200, "500500"), "{name}");
    }
    // The spinning threads were stopped: both slots serve calls again.
    let metrics = server.call("GET", "/metrics", b"").text();
    assert!(metrics.contains("weft_slots_in_use 0\n"), "{metrics}");
    assert!(
        metrics.contains("weft_calls_total{function=\"spin\",outcome=\"timeout\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("weft_calls_total{function=\"trap\",outcome=\"trap\"} 1\n"));
    assert!(metrics.contains("weft_calls_total{function=\"sum_chain\",outcome=\"ok\"} 1\n"));
    assert_eq!(
        server.call("POST", "/f/echo", b"still here").text(),
        "still here"
    );
}

#[test]
fn bodies_over_the_limit_are_413_and_a_full_queue_is_429() {
    let dir = registry("http-bounds");
    let server = Server::start(&dir, &["--slots", "1", "--queue", "1", "--max-body", "1K"]);
    put(&server, "echo", "http_echo", "");
    put(&server, "sleep", "http_sleep", "");

    let r = server.call("POST", "/f/echo", &[b'x'; 1025]);
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (413, Some("too_large"))
    );
    assert_eq!(
        server.call("POST", "/f/echo", &[b'x'; 1024]).body.len(),
        1024
    );
    // A body larger than announced is cut at the limit too (chunked).
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
        .write_all(b"POST /f/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .unwrap();
    for _ in 0..4 {
        let _ = stream.write_all(b"200\r\n");
        let _ = stream.write_all(&[b'y'; 0x200]);
        let _ = stream.write_all(b"\r\n");
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    assert_eq!(read_reply(&mut stream).unwrap().status, 413);

    // One runs, one waits, the rest are refused with a retry hint; every
    // request gets an answer.
    let addr = server.addr;
    let clients: Vec<_> = (0..6)
        .map(|_| std::thread::spawn(move || request(addr, "POST", "/f/sleep", b"1500").unwrap()))
        .collect();
    let replies: Vec<Reply> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok + busy.len(), 6, "{replies:?}");
    assert!((1..=2).contains(&ok), "{replies:?}");
    assert!(busy.iter().all(|r| r.header("retry-after").is_some()));
    assert!(
        replies
            .iter()
            .filter(|r| r.status == 200)
            .all(|r| r.text() == "slept 1500")
    );
}

#[test]
fn hostile_clients_cannot_end_the_server() {
    let dir = registry("http-hostile");
    let server = Server::start(&dir, &["--max-body", "64K"]);
    put(&server, "echo", "http_echo", "");
    let send = |bytes: &[u8], wait_reply: bool| {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let _ = stream.write_all(bytes);
        if wait_reply {
            let mut out = Vec::new();
            let _ = stream.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        } else {
            String::new()
        }
    };
    // Garbage, a huge header, a bad length, a bad chunk, binary junk.
    let garbage = send(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",
        true,
    );
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage}"
    );
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let r = send(huge.as_bytes(), true);
    assert!(
        r.is_empty() || r.starts_with("HTTP/1.1 431") || r.starts_with("HTTP/1.1 400"),
        "{r}"
    );
    let r = send(b"POST /f/echo HTTP/1.1\r\nContent-Length: -5\r\n\r\n", true);
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 400"), "{r}");
    let r = send(
        b"POST /f/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
        true,
    );
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 400"), "{r}");
    let junk: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    send(&junk, true);
    // Aborted: a head and half a body, then gone; a full request whose
    // client leaves before the answer.
    send(
        b"POST /f/echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\nonly this",
        false,
    );
    send(
        b"POST /f/echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        false,
    );
    // Slow clients: half a head, and a body that stops; they hold their
    // connections, not the server.
    let mut slow: Vec<TcpStream> = Vec::new();
    for bytes in [
        &b"GET /healthz HTTP/1.1\r\nHost: "[..],
        &b"POST /f/echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc"[..],
    ] {
        for _ in 0..20 {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(bytes).unwrap();
            slow.push(s);
        }
    }
    // Meanwhile others are served at once.
    let started = Instant::now();
    for i in 0..20 {
        let text = format!("call {i}");
        assert_eq!(server.call("POST", "/f/echo", text.as_bytes()).text(), text);
    }
    assert!(started.elapsed() < IO_TIMEOUT);
    // The slow ones are given up after the read timeout (10 s): a slow
    // body gets 400, a slow head a closed connection.
    for mut s in slow.drain(20..) {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    }
    drop(slow);
    assert!(server.alive());
    let metrics = server.call("GET", "/metrics", b"").text();
    assert!(metrics.contains("weft_slots_in_use 0\n"), "{metrics}");
    assert!(metrics.contains("weft_queued_calls 0\n"), "{metrics}");
}

#[test]
fn sigterm_under_load_answers_every_accepted_call_and_exits_0() {
    let dir = registry("http-drain");
    let server = Server::start(&dir, &["--slots", "2", "--drain-timeout", "20s"]);
    put(&server, "sleep", "http_sleep", "");
    let addr = server.addr;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut answered, mut refused, mut lost) = (0, 0, Vec::new());
                let input = format!("{}", 100 + 20 * i);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match request(addr, "POST", "/f/sleep", input.as_bytes()) {
                        Ok(r) if r.status == 200 => {
                            assert_eq!(r.text(), format!("slept {input}"));
                            answered += 1;
                        }
                        Ok(r) if r.status == 503 || r.status == 429 => refused += 1,
                        Ok(r) => panic!("unexpected answer {r:?}"),
                        // Not taken: refused at connect, or closed unread
                        // while the listener was going away.
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                        Err(e) => lost.push(e.to_string()),
                    }
                }
                (answered, refused, lost)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let (code, stderr) = server.terminate();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answered = 0;
    let mut lost = Vec::new();
    for c in clients {
        let (a, _, l) = c.join().unwrap();
        answered += a;
        lost.extend(l);
    }
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("weft: drained"), "{stderr}");
    // The server's own count of calls it answered in full is the clients'.
    let served: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("weft: drained after answering "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of answered calls: {stderr}"));
    assert_eq!(
        served, answered,
        "answered {answered}, lost {lost:?}: {stderr}"
    );
    assert!(answered >= 8, "too little load: {answered}");
    // A connection closed before its request was read was never taken;
    // an error with a request taken would show in the counts above.
    for e in &lost {
        assert!(!e.contains("announced"), "a cut answer: {e}");
    }
}

fn promtool(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`, installed by .ci/run)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_of_a_front_and_of_a_worker_pass_promtool() {
    let dir = registry("http-metrics");
    let server = Server::start(&dir, &["--hosts", "2", "--placement", "peers"]);
    put(&server, "echo", "http_echo", "");
    put(&server, "sum", "http_threads", "?thread_mode=chain");
    put(&server, "trap", "fn_trap", "");
    server.call("POST", "/f/echo", b"x");
    assert_eq!(server.call("POST", "/f/sum", b"100").text(), "5050");
    server.call("POST", "/f/trap", b"");
    server.call("POST", "/f/unknown", b"");
    let r = server.call("GET", "/metrics", b"");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text();
    promtool(&text);
    for needle in [
        "weft_calls_total{function=\"echo\",outcome=\"ok\"} 1\n",
        "weft_calls_total{function=\"\",outcome=\"unknown_function\"} 1\n",
        "weft_call_duration_seconds_count{function=\"sum\"} 1\n",
        "weft_sync_operations_total{kind=\"mutex\"}",
        "weft_peers_up 1\n",
        "weft_remote_threads_total",
        "weft_snapshot_bytes_sent_total",
        "weft_slots_in_use 0\n",
    ] {
        assert!(text.contains(needle), "no `{needle}` in\n{text}");
    }
    let mutex_ops: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("weft_sync_operations_total{kind=\"mutex\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        mutex_ops >= 8.0,
        "four threads lock and unlock: {mutex_ops}"
    );

    // A worker without the front: `--metrics`.
    let cluster = dir.join("cluster");
    for args in [
        vec!["cluster", "init", cluster.to_str().unwrap()],
        vec!["cluster", "add-node", cluster.to_str().unwrap(), "w1"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let worker = Server::spawn(
        &dir,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cluster",
            cluster.to_str().unwrap(),
            "--node",
            "w1",
            "--metrics",
            "127.0.0.1:0",
            "--exit-with-stdin",
        ],
        "metrics on ",
    );
    let r = worker.call("GET", "/metrics", b"");
    assert_eq!(r.status, 200);
    promtool(&r.text());
    assert!(r.text().contains("weft_worker_slots_in_use 0\n"));
    assert!(worker.alive());
    assert_eq!(worker.call("GET", "/readyz", b"").status, 200);
}

#[test]
fn a_function_past_its_time_limit_has_its_threads_on_peers_stopped() {
    // A chain-mode function whose thread spins on a peer: past its time
    // limit the call is 504, and home asks the peer to stop the thread
    // (which runs with epoch checks, its program having a time limit), so
    // no thread of it stays on the peer.
    let dir = registry("http-peer-timeout");
    let server = Server::start(&dir, &["--hosts", "2", "--placement", "peers"]);
    put(
        &server,
        "spin",
        "http_spin",
        "?thread_mode=chain&timeout=2s",
    );
    let on_peers = |server: &Server| -> String {
        let text = server.call("GET", "/metrics", b"").text();
        text.lines()
            .find(|l| l.starts_with("weft_threads_on_peers "))
            .unwrap_or_default()
            .to_string()
    };
    std::thread::scope(|scope| {
        let call = scope.spawn(|| server.call("POST", "/f/spin", b""));
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(
            on_peers(&server),
            "weft_threads_on_peers 1",
            "while it spins"
        );
        let r = call.join().unwrap();
        assert_eq!(r.status, 504, "{}", r.text());
    });
    let stopped = Instant::now();
    while on_peers(&server) != "weft_threads_on_peers 0" {
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "the thread still runs on its peer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("stopped {:?} after the 504", stopped.elapsed());
}
