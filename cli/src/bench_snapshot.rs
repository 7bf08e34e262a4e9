//! `weft bench snapshot`: snapshot capture and restore costs, with ratios
//! against baselines measured in the same run.
//!
//! - throughput: capture + encode, and decode + restore into a fresh
//!   memory, of a fully written memory, against copying the same bytes
//!   into a fresh buffer (what a naive snapshot does);
//! - size independence: the same round trip for 1 MiB and 64 MiB memories
//!   with one page written.

use std::time::{Duration, Instant};

use wasmtime::{Engine, MemoryType, SharedMemory, Store};
use weft_runtime::snapshot::{
    SnapshotLayout, candidate_pages, capture_encoded, restore_memory, shared_bytes,
};
use weft_snapshot::{ModuleHash, wire};

#[derive(Debug, clap::Args)]
pub struct SnapshotBenchArgs {
    /// Rounds per measurement (the median is reported).
    #[arg(long, default_value_t = 50)]
    pub rounds: u32,
    /// Size of the fully written memory for the throughput test, in MiB.
    #[arg(long, default_value_t = 16)]
    pub full_mib: u32,
}

const MIB: usize = 1 << 20;
const WASM_PAGE: usize = 65536;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn fresh_memory(engine: &Engine, bytes: usize) -> anyhow::Result<SharedMemory> {
    let pages = (bytes / WASM_PAGE) as u32;
    Ok(SharedMemory::new(
        engine,
        MemoryType::shared(pages, pages.max(1024)),
    )?)
}

fn write(memory: &SharedMemory, at: usize, bytes: &[u8]) {
    let data = memory.data();
    for (cell, byte) in data[at..at + bytes.len()].iter().zip(bytes) {
        // SAFETY: no other thread uses this memory.
        unsafe { cell.get().write(*byte) };
    }
}

/// One capture + encode, then decode + restore into a fresh memory.
fn round_trip(
    engine: &Engine,
    store: &mut Store<()>,
    source: &SharedMemory,
    layout: &SnapshotLayout,
) -> anyhow::Result<(Duration, Duration)> {
    let start = Instant::now();
    // SAFETY: nothing else writes `source` during the benchmark.
    let encoded = unsafe { capture_encoded(&mut *store, &[], source, layout, &[]) }?;
    let captured = start.elapsed();

    let start = Instant::now();
    let decoded = wire::decode_snapshot_view(&encoded, &Default::default())?;
    let target = fresh_memory(engine, decoded.memory_len())?;
    restore_memory(&target, layout.module, &decoded)?;
    let restored = start.elapsed();
    drop(target);
    Ok((captured, restored))
}

fn measure(
    engine: &Engine,
    source: &SharedMemory,
    layout: &SnapshotLayout,
    rounds: u32,
) -> anyhow::Result<(Duration, Duration)> {
    let mut store = Store::new(engine, ());
    store.set_epoch_deadline(weft_runtime::NEVER);
    let mut capture = Vec::new();
    let mut restore = Vec::new();
    for _ in 0..rounds.max(1) {
        let (c, r) = round_trip(engine, &mut store, source, layout)?;
        capture.push(c);
        restore.push(r);
    }
    Ok((median(capture), median(restore)))
}

pub fn main(args: SnapshotBenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let engine = weft_runtime::engine().map_err(anyhow::Error::from)?;
    let layout = SnapshotLayout {
        module: ModuleHash::of(b"benchmark"),
        mutable_globals: vec![],
    };
    let kernel = if candidate_pages(&fresh_memory(&engine, MIB)?).is_some() {
        "kernel page scan"
    } else {
        "full scan (no PAGEMAP_SCAN)"
    };

    // Throughput over a fully written memory.
    let full = args.full_mib as usize * MIB;
    let source = fresh_memory(&engine, full)?;
    let pattern: Vec<u8> = (0..full).map(|i| (i * 7 + 1) as u8).collect();
    write(&source, 0, &pattern);
    let (capture, restore) = measure(&engine, &source, &layout, args.rounds.clamp(1, 20))?;
    let mut copies = Vec::new();
    for _ in 0..args.rounds.clamp(1, 20) {
        let start = Instant::now();
        // SAFETY: nothing else writes `source`.
        let copy = unsafe { shared_bytes(&source) }.to_vec();
        copies.push(start.elapsed());
        drop(std::hint::black_box(copy));
    }
    let memcpy = median(copies);

    // One written page in a small and a large memory.
    let mut one_page = Vec::new();
    for mib in [1usize, 64] {
        let source = fresh_memory(&engine, mib * MIB)?;
        write(&source, 12345, b"one page of data");
        one_page.push(measure(&engine, &source, &layout, args.rounds)?);
    }

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let gbps = |d: Duration| full as f64 / d.as_secs_f64() / 1e9;
    println!("snapshot benchmark ({kernel}), medians");
    println!(
        "{} MiB written: copy into a fresh buffer      {:>9.0} us  {:>5.2} GB/s  (baseline)",
        args.full_mib,
        us(memcpy),
        gbps(memcpy)
    );
    println!(
        "{} MiB written: capture + encode              {:>9.0} us  {:>5.2} GB/s  {:.2}x baseline",
        args.full_mib,
        us(capture),
        gbps(capture),
        memcpy.as_secs_f64() / capture.as_secs_f64()
    );
    println!(
        "{} MiB written: decode + restore              {:>9.0} us  {:>5.2} GB/s  {:.2}x baseline",
        args.full_mib,
        us(restore),
        gbps(restore),
        memcpy.as_secs_f64() / restore.as_secs_f64()
    );
    let total = |(c, r): (Duration, Duration)| c + r;
    println!(
        "1 page written, 1 MiB memory: capture {:.1} us + restore {:.1} us = {:.1} us",
        us(one_page[0].0),
        us(one_page[0].1),
        us(total(one_page[0]))
    );
    println!(
        "1 page written, 64 MiB memory: capture {:.1} us + restore {:.1} us = {:.1} us  ({:.2}x the 1 MiB case)",
        us(one_page[1].0),
        us(one_page[1].1),
        us(total(one_page[1])),
        total(one_page[1]).as_secs_f64() / total(one_page[0]).as_secs_f64()
    );
    Ok(std::process::ExitCode::SUCCESS)
}
