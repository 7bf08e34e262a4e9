//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the
//! smoke tests that run them under `cargo test`. Each takes arbitrary bytes
//! and must return without panicking.

use crate::wire::{self, Limits};
use crate::{Diff, Merger, WASM_PAGE_SIZE, apply};

/// Largest memory the fuzz entry points materialise.
const FUZZ_MAX_PAGES: u32 = 16;

/// Decodes a snapshot, whole and as a stream (both must agree); a decoded
/// one must re-encode to the same bytes.
pub fn decode_snapshot(data: &[u8]) -> bool {
    let limits = Limits {
        max_memory_pages: FUZZ_MAX_PAGES,
        ..Limits::default()
    };
    let decoded = wire::decode_snapshot(data, &limits);
    let read = wire::read_snapshot_sharing(&mut &data[..], &limits, None);
    assert_eq!(
        read.as_ref().ok(),
        decoded.as_ref().ok(),
        "reading as a stream disagrees"
    );
    match decoded {
        Ok(snapshot) => {
            assert_eq!(
                wire::encode_snapshot(&snapshot),
                data,
                "re-encoding differs"
            );
            true
        }
        Err(_) => false,
    }
}

/// Decodes a diff and applies it (plainly and through a merge) to a base
/// made from the same input; valid diffs must apply without panicking.
pub fn apply_diff(data: &[u8]) -> bool {
    let limits = Limits {
        max_memory_pages: FUZZ_MAX_PAGES,
        ..Limits::default()
    };
    let Ok(diff) = wire::decode_diff(data, &limits) else {
        return false;
    };
    let len = diff.memory_pages as usize * WASM_PAGE_SIZE as usize;
    let mut memory = vec![0u8; len];
    apply(&mut memory, &diff);
    let base = crate::Snapshot::capture(
        crate::ModuleHash([0; 32]),
        &vec![0u8; len],
        None,
        vec![],
        vec![],
    );
    let mut merged = vec![0u8; len];
    let mut merger = Merger::new(&base);
    merger
        .merge(&mut merged, &diff, 0)
        .expect("a valid diff fits its own memory");
    assert_eq!(
        merged, memory,
        "merging into the snapshot's memory equals applying"
    );
    let again = Diff::between(&base, &memory, None, &[]);
    let mut rebuilt = vec![0u8; len];
    apply(&mut rebuilt, &again);
    assert_eq!(rebuilt, memory);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_diff, encode_snapshot};
    use crate::{GlobalValue, ModuleHash, Run, Snapshot};

    /// A small deterministic generator, so the smoke test needs no crate.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn seeds() -> Vec<Vec<u8>> {
        let mut memory = vec![0u8; WASM_PAGE_SIZE as usize];
        memory[3] = 1;
        memory[5000] = 2;
        let snap = Snapshot::capture(
            ModuleHash::of(b"m"),
            &memory,
            None,
            vec![(0, GlobalValue::I32(1))],
            vec![],
        );
        let diff = Diff {
            memory_pages: 1,
            runs: vec![
                Run {
                    addr: 1,
                    bytes: vec![1, 2, 3],
                },
                Run {
                    addr: 4096,
                    bytes: vec![9],
                },
            ],
            globals: vec![],
        };
        vec![encode_snapshot(&snap), encode_diff(&diff)]
    }

    /// Runs both entry points over the seeds and thousands of mutations of
    /// them (bit flips, truncations, insertions): the smoke test CI runs.
    #[test]
    fn smoke() {
        let mut rng = Lcg(0x5eed);
        let mut decoded = 0;
        for seed in seeds() {
            assert!(decode_snapshot(&seed) || apply_diff(&seed));
            for _ in 0..3000 {
                let mut input = seed.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let at = rng.next() as usize % input.len().max(1);
                    match rng.next() % 4 {
                        0 => input[at] ^= 1 << (rng.next() % 8),
                        1 => input.truncate(at),
                        2 => input.insert(at, rng.next() as u8),
                        _ => input[at] = rng.next() as u8,
                    }
                    if input.is_empty() {
                        break;
                    }
                }
                decoded += decode_snapshot(&input) as u32 + apply_diff(&input) as u32;
            }
        }
        // Some mutations must still decode, or the smoke test tests little.
        assert!(decoded > 0);
    }
}
