//! Where a run's time goes, as Chrome trace events: the JSON that Perfetto
//! and chrome://tracing open. Each span is a complete event (`"ph":"X"`)
//! on the track of one guest thread (`tid`) of one host (`pid`: 0 is home,
//! peer N is N + 1), with its start and length in microseconds and a few
//! numbers (bytes moved, pages). A run that is not traced pays one `None`
//! check per span.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::locks::Locked as _;
use crate::outcome::MAIN_TID;

/// The spans of one run.
#[derive(Debug)]
pub struct Tracer {
    start: Instant,
    events: Mutex<Vec<Event>>,
}

#[derive(Debug)]
struct Event {
    name: String,
    category: &'static str,
    host: u32,
    thread: u32,
    start_us: u64,
    length_us: u64,
    args: Vec<(&'static str, u64)>,
}

/// A span being measured; recorded when dropped.
#[derive(Debug)]
pub struct Span {
    tracer: Arc<Tracer>,
    name: String,
    category: &'static str,
    host: u32,
    thread: u32,
    start: Instant,
    args: Vec<(&'static str, u64)>,
}

impl Span {
    /// Adds a number to show with the span.
    pub fn arg(&mut self, key: &'static str, value: u64) {
        self.args.push((key, value));
    }

    /// The span now runs on another host's track (`0` home, `N + 1`
    /// peer `N`).
    pub fn on_host(&mut self, host: u32) {
        self.host = host;
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        let end = Instant::now();
        let micros = |at: Instant| at.duration_since(self.tracer.start).as_micros() as u64;
        let event = Event {
            name: std::mem::take(&mut self.name),
            category: self.category,
            host: self.host,
            thread: self.thread,
            start_us: micros(self.start),
            length_us: end.duration_since(self.start).as_micros() as u64,
            args: std::mem::take(&mut self.args),
        };
        self.tracer.events.locked().push(event);
    }
}

/// A span named `name` of `category` on thread `thread` at home, if the
/// run is traced.
pub fn span(
    tracer: Option<&Arc<Tracer>>,
    name: impl Into<String>,
    category: &'static str,
    thread: u32,
) -> Option<Span> {
    tracer.map(|tracer| Span {
        tracer: tracer.clone(),
        name: name.into(),
        category,
        host: 0,
        thread,
        start: Instant::now(),
        args: Vec::new(),
    })
}

impl Tracer {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            events: Mutex::default(),
        })
    }

    /// Spans recorded so far.
    pub fn len(&self) -> usize {
        self.events.locked().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every span so far as a Chrome trace (`{"traceEvents":[...]}`),
    /// with the names of hosts and threads.
    pub fn write_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let events = self.events.locked();
        let mut tracks: Vec<(u32, u32)> = events.iter().map(|e| (e.host, e.thread)).collect();
        tracks.sort_unstable();
        tracks.dedup();
        let mut hosts: Vec<u32> = tracks.iter().map(|t| t.0).collect();
        hosts.dedup();
        write!(out, "{{\"displayTimeUnit\":\"ms\",\"traceEvents\":[")?;
        let mut first = true;
        let mut comma = |out: &mut dyn Write| {
            let separator = if first { "" } else { "," };
            first = false;
            writeln!(out, "{separator}")
        };
        for host in hosts {
            comma(out)?;
            let name = match host {
                0 => "home".to_string(),
                peer => format!("peer {}", peer - 1),
            };
            write!(
                out,
                "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{host},\"tid\":0,\"args\":{{\"name\":{}}}}}",
                quoted(&name)
            )?;
        }
        for (host, thread) in tracks {
            comma(out)?;
            let name = if thread == MAIN_TID {
                "main".to_string()
            } else {
                format!("thread {thread}")
            };
            write!(
                out,
                "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{host},\"tid\":{thread},\"args\":{{\"name\":{}}}}}",
                quoted(&name)
            )?;
        }
        for event in events.iter() {
            comma(out)?;
            write!(
                out,
                "{{\"ph\":\"X\",\"name\":{},\"cat\":{},\"pid\":{},\"tid\":{},\"ts\":{},\"dur\":{},\"args\":{{",
                quoted(&event.name),
                quoted(event.category),
                event.host,
                event.thread,
                event.start_us,
                event.length_us
            )?;
            for (i, (key, value)) in event.args.iter().enumerate() {
                let separator = if i == 0 { "" } else { "," };
                write!(out, "{separator}{}:{value}", quoted(key))?;
            }
            write!(out, "}}}}")?;
        }
        writeln!(out, "\n]}}")
    }
}

/// `text` as a JSON string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_become_complete_events_on_named_tracks() {
        let tracer = Tracer::new();
        {
            let mut span = span(Some(&tracer), "sync-lock", "sync", 3).unwrap();
            span.arg("bytes", 4096);
        }
        {
            let mut span = span(Some(&tracer), "on \"peer\"", "remote", MAIN_TID).unwrap();
            span.on_host(2);
        }
        assert!(span(None, "untraced", "x", 1).is_none());
        let mut json = Vec::new();
        tracer.write_json(&mut json).unwrap();
        let json = String::from_utf8(json).unwrap();
        assert!(
            json.starts_with("{\"displayTimeUnit\":\"ms\",\"traceEvents\":["),
            "{json}"
        );
        assert!(
            json.contains("\"name\":\"sync-lock\",\"cat\":\"sync\",\"pid\":0,\"tid\":3"),
            "{json}"
        );
        assert!(json.contains("\"args\":{\"bytes\":4096}"), "{json}");
        assert!(json.contains("\"name\":\"on \\\"peer\\\"\""), "{json}");
        assert!(json.contains("\"args\":{\"name\":\"peer 1\"}"), "{json}");
        assert!(json.contains("\"args\":{\"name\":\"main\"}"), "{json}");
        assert!(json.trim_end().ends_with("]}"), "{json}");
        assert_eq!(tracer.len(), 2);
    }
}
