//! Prometheus text format (sans-IO): counters of calls by function and
//! outcome, latency histograms in seconds, and the gauges and counters a
//! host adds (slots, threads, snapshots, sync operations, peers).
//!
//! Labels stay few: a registered function's name (validated, so a client
//! cannot mint series with names of its own) and an outcome from a fixed
//! set; never anything per request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::reply::CallOutcome;

/// Upper bounds of the call latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// A histogram of durations over fixed buckets, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations at or below each bound and above the one before (not
    /// cumulative; rendering sums them).
    buckets: Vec<u64>,
    /// All observations, those past the last bound included.
    count: u64,
    sum_seconds: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new(&LATENCY_BUCKETS)
    }
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: vec![0; bounds.len()],
            count: 0,
            sum_seconds: 0.0,
        }
    }

    pub fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|&b| secs <= b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_seconds += secs;
    }

    /// From counts kept elsewhere: per bucket of `bounds` (not
    /// cumulative), `count` all observations.
    pub fn from_parts(
        bounds: &'static [f64],
        buckets: &[u64],
        count: u64,
        sum_seconds: f64,
    ) -> Self {
        let mut b = vec![0; bounds.len()];
        for (to, from) in b.iter_mut().zip(buckets) {
            *to = *from;
        }
        Self {
            bounds,
            buckets: b,
            count,
            sum_seconds,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// What a front counts of its calls.
#[derive(Debug, Default)]
pub struct CallCounts {
    calls: BTreeMap<(String, CallOutcome), u64>,
    latency: BTreeMap<String, Histogram>,
}

impl CallCounts {
    /// A call of `function` ended with `outcome` after `took` (`function`
    /// empty when the request named none that is registered).
    pub fn record(&mut self, function: &str, outcome: CallOutcome, took: Duration) {
        *self.calls.entry((function.into(), outcome)).or_default() += 1;
        if outcome.ran() {
            self.latency
                .entry(function.into())
                .or_default()
                .observe(took);
        }
    }

    /// Calls of every function that ended with `outcome`.
    pub fn total(&self, outcome: CallOutcome) -> u64 {
        self.calls
            .iter()
            .filter(|((_, o), _)| *o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn calls(&self, function: &str, outcome: CallOutcome) -> u64 {
        self.calls
            .get(&(function.to_string(), outcome))
            .copied()
            .unwrap_or(0)
    }
}

/// A metric's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Writes Prometheus text format into a string.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
}

impl Text {
    pub fn new() -> Self {
        Self::default()
    }

    /// `# HELP` and `# TYPE` of a family; its samples follow.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the family just begun.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape_label(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: f64) {
        self.family(name, help, kind);
        self.sample(name, &[], value);
    }

    /// A histogram family, one histogram per value of `label`.
    pub fn histograms<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        histograms: impl IntoIterator<Item = (&'a str, &'a Histogram)>,
    ) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} histogram");
        for (value, h) in histograms {
            let mut cumulative = 0;
            for (bound, n) in h.bounds.iter().zip(&h.buckets) {
                cumulative += n;
                let le = number(*bound);
                self.sample(
                    &format!("{name}_bucket"),
                    &[(label, value), ("le", &le)],
                    cumulative as f64,
                );
            }
            self.sample(
                &format!("{name}_bucket"),
                &[(label, value), ("le", "+Inf")],
                h.count as f64,
            );
            self.sample(&format!("{name}_sum"), &[(label, value)], h.sum_seconds);
            self.sample(&format!("{name}_count"), &[(label, value)], h.count as f64);
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Renders a front's call counts.
pub fn render_calls(text: &mut Text, counts: &CallCounts) {
    text.family(
        "weft_calls_total",
        "Function calls over HTTP by function and outcome.",
        Kind::Counter,
    );
    for ((function, outcome), n) in &counts.calls {
        text.sample(
            "weft_calls_total",
            &[("function", function), ("outcome", outcome.label())],
            *n as f64,
        );
    }
    text.histograms(
        "weft_call_duration_seconds",
        "Time from a call's admission to its end, for calls that ran.",
        "function",
        counts.latency.iter().map(|(f, h)| (f.as_str(), h)),
    );
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut counts = CallCounts::default();
        counts.record("hello", CallOutcome::Ok, Duration::from_micros(300));
        counts.record("hello", CallOutcome::Ok, Duration::from_millis(3));
        counts.record("hello", CallOutcome::Trap, Duration::from_secs(100));
        // Refused before running: counted, not timed.
        counts.record("hello", CallOutcome::Busy, Duration::ZERO);
        assert_eq!(counts.calls("hello", CallOutcome::Ok), 2);
        let mut text = Text::new();
        render_calls(&mut text, &counts);
        let text = text.finish();
        assert!(text.contains("weft_calls_total{function=\"hello\",outcome=\"ok\"} 2\n"));
        assert!(text.contains("weft_calls_total{function=\"hello\",outcome=\"busy\"} 1\n"));
        assert!(
            text.contains(
                "weft_call_duration_seconds_bucket{function=\"hello\",le=\"0.0005\"} 1\n"
            )
        );
        assert!(
            text.contains("weft_call_duration_seconds_bucket{function=\"hello\",le=\"0.005\"} 2\n")
        );
        assert!(
            text.contains("weft_call_duration_seconds_bucket{function=\"hello\",le=\"60\"} 2\n")
        );
        assert!(
            text.contains("weft_call_duration_seconds_bucket{function=\"hello\",le=\"+Inf\"} 3\n")
        );
        assert!(text.contains("weft_call_duration_seconds_count{function=\"hello\"} 3\n"));
        assert!(text.contains("# TYPE weft_call_duration_seconds histogram\n"));
    }

    #[test]
    fn labels_and_help_are_escaped() {
        let mut text = Text::new();
        text.family("x_total", "a \\ b\nc", Kind::Counter);
        text.sample("x_total", &[("k", "a\"b\\c\nd")], 1.0);
        assert_eq!(
            text.finish(),
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{k=\"a\\\"b\\\\c\\nd\"} 1\n"
        );
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(0.5), "0.5");
    }
}
