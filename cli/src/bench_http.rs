//! `weft bench http`: the HTTP front under a real load generator (`wrk`)
//! against a trivial function and a threaded one, with `weft invoke` per
//! call as the baseline measured in the same run; then 4x the load on a
//! short queue (429s, nothing hung or lost) and the threaded function in
//! chain mode over 3 hosts under 50 clients, every answer checked.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use weft_conformance::{Suite, root};

#[derive(Debug, clap::Args)]
pub struct HttpBenchArgs {
    /// Seconds of load per measurement.
    #[arg(long, default_value_t = 5)]
    pub duration: u32,
    /// Open connections of the load generator.
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
    /// Runs of each measurement; the median is shown.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// `weft invoke` calls for the baseline.
    #[arg(long, default_value_t = 30)]
    pub invokes: u32,
    /// Where guest builds and the registry go.
    #[arg(long, default_value = "target/weft-guests")]
    pub out_dir: PathBuf,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Default)]
struct Load {
    requests_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    /// Answers other than 2xx/3xx.
    non_2xx: u64,
    /// Requests wrk gave up on (no answer within its timeout).
    timeouts: u64,
    /// From the checking script: answers as expected, busy, other.
    ok: u64,
    busy: u64,
    bad: u64,
}

/// A `weft serve --http` child, ended when dropped.
struct Front {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    addr: SocketAddr,
}

impl Front {
    fn start(weft: &Path, registry: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(weft)
            .args(["serve", "--http", "127.0.0.1:0", "--exit-with-stdin"])
            .args(args)
            .env("WEFT_FUNCTIONS", registry)
            .env_remove("THREAD_MODE")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting weft serve")?;
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let addr = loop {
            let line = lines
                .next()
                .context("weft serve ended before it listened")??;
            if let Some(addr) = line.strip_prefix("weft: serving functions over HTTP on ") {
                break addr.parse()?;
            }
        };
        // Keep reading its stderr (trap reports and the like) so it never
        // blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self { child, stdin, addr })
    }

    fn put(&self, name: &str, wasm: &Path, query: &str) -> anyhow::Result<()> {
        let body = std::fs::read(wasm)?;
        let (status, text) = exchange(self.addr, "PUT", &format!("/f/{name}{query}"), &body)?;
        anyhow::ensure!(status == 201, "registering {name}: {status} {text}");
        Ok(())
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a connection of its own: the status and body.
fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status")?;
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}

/// The wrk script: POST `input`, count answers that are `expected`, 429s
/// and anything else, and print the counts at the end.
fn script(input: &str, expected: &str) -> String {
    format!(
        r#"wrk.method = "POST"
wrk.body = "{input}"
wrk.headers["Content-Type"] = "application/octet-stream"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; busy = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body == "{expected}" then ok = ok + 1
  elseif status == 429 then busy = busy + 1
  else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b, x = 0, 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("busy"); x = x + t:get("bad") end
  io.write(string.format("weft-check ok=%d busy=%d bad=%d\n", o, b, x))
end
"#
    )
}

fn wrk(
    addr: SocketAddr,
    function: &str,
    script_path: &Path,
    connections: u32,
    seconds: u32,
) -> anyhow::Result<Load> {
    wrk_path(
        addr,
        &format!("/f/{function}"),
        script_path,
        connections,
        seconds,
    )
}

fn wrk_path(
    addr: SocketAddr,
    path: &str,
    script_path: &Path,
    connections: u32,
    seconds: u32,
) -> anyhow::Result<Load> {
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", &connections.to_string()])
        .args([
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "30s",
            "--latency",
            "-s",
        ])
        .arg(script_path)
        .arg(format!("http://{addr}{path}"))
        .output()
        .context("running wrk (Debian package `wrk`)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("reading wrk's report:\n{text}"))
}

/// A wrk latency such as `812.00us`, `1.20ms` or `2.01s`, in µs.
fn micros(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        _ => return None,
    })
}

fn parse_wrk(text: &str) -> Option<Load> {
    let mut load = Load::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => load.requests_per_sec = n.parse().ok()?,
            ["50%", t] => load.p50_us = micros(t)?,
            ["99%", t] => load.p99_us = micros(t)?,
            ["Non-2xx", "or", "3xx", "responses:", n] => load.non_2xx = n.parse().ok()?,
            ["Socket", "errors:", ..] => {
                let at = words.iter().position(|w| *w == "timeout")?;
                load.timeouts = words.get(at + 1)?.parse().ok()?;
            }
            ["weft-check", ok, busy, bad] => {
                load.ok = ok.strip_prefix("ok=")?.parse().ok()?;
                load.busy = busy.strip_prefix("busy=")?.parse().ok()?;
                load.bad = bad.strip_prefix("bad=")?.parse().ok()?;
            }
            _ => {}
        }
    }
    (load.requests_per_sec > 0.0).then_some(load)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median of `repeat` wrk runs (by requests/s) against function
/// `function`, checked.
fn measure(
    addr: SocketAddr,
    function: &str,
    script_path: &Path,
    connections: u32,
    args: &HttpBenchArgs,
) -> anyhow::Result<Load> {
    measure_path(
        addr,
        &format!("/f/{function}"),
        script_path,
        connections,
        args,
    )
}

/// The median of `repeat` wrk runs (by requests/s) against `path`.
fn measure_path(
    addr: SocketAddr,
    path: &str,
    script_path: &Path,
    connections: u32,
    args: &HttpBenchArgs,
) -> anyhow::Result<Load> {
    let mut runs = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let load = wrk_path(addr, path, script_path, connections, args.duration)?;
        anyhow::ensure!(
            load.bad == 0 && load.timeouts == 0 && load.non_2xx == 0,
            "{path}: {} wrong answers, {} not 2xx, {} timeouts",
            load.bad,
            load.non_2xx,
            load.timeouts
        );
        runs.push(load);
    }
    runs.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
    let mut mid = runs[runs.len() / 2].clone();
    mid.p50_us = median(runs.iter().map(|r| r.p50_us).collect());
    mid.p99_us = median(runs.iter().map(|r| r.p99_us).collect());
    Ok(mid)
}

/// Per-call latency of `weft invoke` (one process per call), in µs.
fn invoke_baseline(
    weft: &Path,
    registry: &Path,
    function: &str,
    input: &Path,
    calls: u32,
) -> anyhow::Result<f64> {
    let mut took = Vec::new();
    for _ in 0..calls.max(1) {
        let started = Instant::now();
        let out = Command::new(weft)
            .args(["invoke", function, "--input"])
            .arg(input)
            .env("WEFT_FUNCTIONS", registry)
            .env_remove("THREAD_MODE")
            .output()?;
        anyhow::ensure!(out.status.success(), "weft invoke {function}: {out:?}");
        took.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(median(took))
}

fn row(what: &str, load: &Load) {
    println!(
        "{what:<44} {:>10.0} req/s   p50 {:>9.0} us   p99 {:>9.0} us",
        load.requests_per_sec, load.p50_us, load.p99_us
    );
}

pub fn main(args: HttpBenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let weft = std::env::current_exe().context("finding the weft binary")?;
    let suite = Suite::new(&args.out_dir, &weft);
    // The test guests (conformance/ is where root() points).
    let guests = root().join("../cli/tests/guests");
    let echo = suite.build_c_wasm(&guests.join("http_echo.c"), "bench_http_echo")?;
    let sum = suite.build_c_wasm(&guests.join("http_threads.c"), "bench_http_threads")?;
    let registry = std::path::absolute(args.out_dir.join("bench-http-functions"))?;
    let _ = std::fs::remove_dir_all(&registry);
    std::fs::create_dir_all(&registry)?;
    let scripts = registry.join("scripts");
    std::fs::create_dir_all(&scripts)?;
    let write_script = |name: &str, input: &str, expected: &str| -> anyhow::Result<PathBuf> {
        let path = scripts.join(format!("{name}.lua"));
        std::fs::write(&path, script(input, expected))?;
        Ok(path)
    };
    let echo_script = write_script("echo", "ping", "ping")?;
    let sum_script = write_script("sum", "10000", "50005000")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "weft bench http: {} s per run, median of {}, {} connections, {cores} cores",
        args.duration, args.repeat, args.connections
    );

    let front = Front::start(&weft, &registry, &[])?;
    front.put("echo", &echo, "")?;
    front.put("sum", &sum, "")?;
    front.put("sum_chain", &sum, "?thread_mode=chain")?;
    // The HTTP layer alone: what the front costs without a call.
    let health_script = registry.join("scripts/health.lua");
    std::fs::write(&health_script, "wrk.method = \"GET\"\n")?;
    let http_only = measure_path(
        front.addr,
        "/healthz",
        &health_script,
        args.connections,
        &args,
    )?;
    row("HTTP alone (GET /healthz)", &http_only);
    let trivial = measure(front.addr, "echo", &echo_script, args.connections, &args)?;
    row("trivial (echo), HTTP", &trivial);
    // The same function with a new memory per call (no pool).
    let unpooled = {
        let bare = Front::start(&weft, &registry, &["--keep-memories", "0"])?;
        measure(bare.addr, "echo", &echo_script, args.connections, &args)?
    };
    row("trivial (echo), new memory per call", &unpooled);
    println!(
        "ratios: trivial / HTTP alone {:.2} (req/s); pooled / new memory per call {:.2} (req/s), {:.2} (p50)",
        trivial.requests_per_sec / http_only.requests_per_sec,
        trivial.requests_per_sec / unpooled.requests_per_sec,
        trivial.p50_us / unpooled.p50_us
    );
    let threaded = measure(front.addr, "sum", &sum_script, args.connections, &args)?;
    row("threaded (4 threads, local), HTTP", &threaded);
    let chained = measure(
        front.addr,
        "sum_chain",
        &sum_script,
        args.connections,
        &args,
    )?;
    row("threaded (4 threads, chain), HTTP", &chained);
    drop(front);

    let input = scripts.join("echo-input");
    std::fs::write(&input, "ping")?;
    let per_invoke = invoke_baseline(&weft, &registry, "echo", &input, args.invokes)?;
    let sum_input = scripts.join("sum-input");
    std::fs::write(&sum_input, "10000")?;
    let per_invoke_sum = invoke_baseline(&weft, &registry, "sum", &sum_input, args.invokes)?;
    println!(
        "{:<44} {:>10.0} calls/s (one at a time), {per_invoke:.0} us per call",
        "trivial, `weft invoke` per call",
        1e6 / per_invoke
    );
    println!(
        "{:<44} {:>10.0} calls/s (one at a time), {per_invoke_sum:.0} us per call",
        "threaded, `weft invoke` per call",
        1e6 / per_invoke_sum
    );
    println!(
        "ratios: trivial HTTP p50 / invoke {:.4}; HTTP req/s x invoke latency {:.0}",
        trivial.p50_us / per_invoke,
        trivial.requests_per_sec * per_invoke / 1e6
    );

    // 4x the load on a front whose queue is short: the excess is refused
    // with 429, nothing hangs, every answered call is right.
    let over = args.connections * 4;
    let front = Front::start(
        &weft,
        &registry,
        &["--queue", &args.connections.to_string()],
    )?;
    let overload = wrk(front.addr, "echo", &echo_script, over, args.duration)?;
    drop(front);
    println!(
        "4x load ({over} connections, queue {}): {:.0} req/s, {} answered, {} got 429, {} wrong, {} timed out",
        args.connections,
        overload.requests_per_sec,
        overload.ok,
        overload.busy,
        overload.bad,
        overload.timeouts
    );

    // The threaded function in chain mode over 3 hosts, 50 clients.
    let front = Front::start(&weft, &registry, &["--hosts", "3", "--placement", "peers"])?;
    let cluster = wrk(front.addr, "sum_chain", &sum_script, 50, args.duration)?;
    drop(front);
    println!(
        "chain mode, 3 hosts, 50 clients: {:.0} req/s, p50 {:.0} us, p99 {:.0} us, {} right, {} busy, {} wrong, {} timed out",
        cluster.requests_per_sec,
        cluster.p50_us,
        cluster.p99_us,
        cluster.ok,
        cluster.busy,
        cluster.bad,
        cluster.timeouts
    );

    let goals = [
        ("warm trivial p50 <= 1 ms", trivial.p50_us <= 1000.0),
        (
            "warm trivial >= 5000 req/s",
            trivial.requests_per_sec >= 5000.0,
        ),
        (
            "4x load: 429s, nothing wrong or hung",
            overload.busy > 0 && overload.bad == 0 && overload.timeouts == 0,
        ),
        (
            "chain over 3 hosts, 50 clients: all right",
            cluster.bad == 0 && cluster.timeouts == 0 && cluster.ok > 0,
        ),
    ];
    for (goal, met) in goals {
        println!("goal {goal}: {}", if met { "met" } else { "NOT met" });
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let text = "Running 5s test @ http://127.0.0.1:1/f/echo
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us  100.00us   5.00ms   90.00%
  Latency Distribution
     50%  790.00us
     75%    1.01ms
     90%    1.20ms
     99%    2.50ms
  40000 requests in 5.00s, 3.00MB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:   8000.50
Transfer/sec:    600.00KB
weft-check ok=39985 busy=12 bad=0
";
        let load = parse_wrk(text).unwrap();
        assert_eq!(load.requests_per_sec, 8000.5);
        assert_eq!((load.p50_us, load.p99_us), (790.0, 2500.0));
        assert_eq!((load.non_2xx, load.timeouts), (12, 3));
        assert_eq!((load.ok, load.busy, load.bad), (39985, 12, 0));
        assert_eq!(micros("2.5s"), Some(2.5e6));
        assert!(parse_wrk("nothing").is_none());
    }
}
