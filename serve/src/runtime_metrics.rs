//! The runtime's counters ([`weft_runtime::metrics`]) in Prometheus text.

use weft_runtime::memory_pool::PoolCounts;
use weft_runtime::metrics::{SYNC_BUCKETS_NANOS, Snapshot, SyncKind};

use crate::metrics::{Histogram, Kind, Text};

/// [`SYNC_BUCKETS_NANOS`] in seconds.
static SYNC_BUCKETS_SECONDS: std::sync::LazyLock<Vec<f64>> =
    std::sync::LazyLock::new(|| SYNC_BUCKETS_NANOS.iter().map(|&n| n as f64 / 1e9).collect());

/// Renders `snapshot`.
pub fn render(text: &mut Text, snapshot: &Snapshot) {
    text.single(
        "weft_threads_live",
        "Threads (besides main) of the programs in this host process, live now; a thread on a peer counts at its home.",
        Kind::Gauge,
        snapshot.threads_live as f64,
    );
    text.family(
        "weft_sync_operations_total",
        "Chain-mode sync operations served by the home host, by kind.",
        Kind::Counter,
    );
    for (kind, s) in SyncKind::ALL.iter().zip(&snapshot.sync) {
        text.sample(
            "weft_sync_operations_total",
            &[("kind", kind.label())],
            s.count as f64,
        );
    }
    let bounds: &'static [f64] = SYNC_BUCKETS_SECONDS.as_slice();
    let histograms: Vec<(&str, Histogram)> = SyncKind::ALL
        .iter()
        .zip(&snapshot.sync)
        .map(|(kind, s)| {
            (
                kind.label(),
                Histogram::from_parts(bounds, &s.buckets, s.count, s.nanos as f64 / 1e9),
            )
        })
        .collect();
    text.histograms(
        "weft_sync_duration_seconds",
        "Time a chain-mode sync operation took at home, waiting included.",
        "kind",
        histograms.iter().map(|(k, h)| (*k, h)),
    );
}

/// Renders the counters of the memories functions keep between calls.
pub fn render_pool(text: &mut Text, counts: &PoolCounts) {
    let families = [
        (
            "weft_memories_reused_total",
            "Calls that ran on a memory kept from an earlier call of their function (wiped).",
            Kind::Counter,
            counts.reused,
        ),
        (
            "weft_memories_made_total",
            "Calls that needed a new memory (none idle, or not pooled).",
            Kind::Counter,
            counts.made,
        ),
        (
            "weft_memories_discarded_total",
            "Memories dropped after a call instead of kept (grown, pool full, or not wipeable).",
            Kind::Counter,
            counts.discarded,
        ),
        (
            "weft_idle_memory_bytes",
            "Bytes of the memories kept idle for later calls.",
            Kind::Gauge,
            counts.idle_bytes,
        ),
    ];
    for (name, help, kind, value) in families {
        text.single(name, help, kind, value as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_counters_are_rendered() {
        let mut text = Text::new();
        render_pool(
            &mut text,
            &PoolCounts {
                reused: 7,
                made: 2,
                discarded: 1,
                idle_bytes: 131072,
            },
        );
        let text = text.finish();
        assert!(text.contains("weft_memories_reused_total 7\n"), "{text}");
        assert!(text.contains("weft_memories_made_total 2\n"));
        assert!(text.contains("weft_memories_discarded_total 1\n"));
        assert!(
            text.contains("# TYPE weft_idle_memory_bytes gauge\nweft_idle_memory_bytes 131072\n")
        );
    }

    #[test]
    fn every_kind_has_a_counter_and_a_histogram() {
        let mut snapshot = Snapshot {
            threads_live: 3,
            ..Snapshot::default()
        };
        snapshot.sync[0].count = 5;
        snapshot.sync[0].buckets[0] = 4;
        snapshot.sync[0].nanos = 2_000_000_000;
        let mut text = Text::new();
        render(&mut text, &snapshot);
        let text = text.finish();
        assert!(text.contains("weft_threads_live 3\n"));
        assert!(text.contains("weft_sync_operations_total{kind=\"mutex\"} 5\n"));
        assert!(
            text.contains("weft_sync_duration_seconds_bucket{kind=\"mutex\",le=\"0.000001\"} 4\n")
        );
        assert!(text.contains("weft_sync_duration_seconds_bucket{kind=\"mutex\",le=\"+Inf\"} 5\n"));
        assert!(text.contains("weft_sync_duration_seconds_sum{kind=\"mutex\"} 2\n"));
        for kind in SyncKind::ALL {
            assert!(text.contains(&format!(
                "weft_sync_duration_seconds_count{{kind=\"{}\"}}",
                kind.label()
            )));
        }
    }
}
