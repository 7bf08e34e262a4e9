//! Property tests of the snapshot model.

use std::collections::BTreeSet;

use proptest::prelude::*;
use weft_snapshot::wire::{self, Limits};
use weft_snapshot::{
    ConflictKind, Diff, ElemType, GlobalValue, MergeOp, MergeRegion, Merger, ModuleHash, PAGE_SIZE,
    Snapshot, WASM_PAGE_SIZE, apply,
};

const MEMORY: usize = 2 * WASM_PAGE_SIZE as usize;

/// Sparse writes: (address, value) pairs.
fn writes(max: usize) -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((0..MEMORY, any::<u8>()), 0..max)
}

fn memory_with(writes: &[(usize, u8)]) -> Vec<u8> {
    let mut memory = vec![0u8; MEMORY];
    for &(addr, value) in writes {
        memory[addr] = value;
    }
    memory
}

fn global() -> impl Strategy<Value = GlobalValue> {
    prop_oneof![
        any::<i32>().prop_map(GlobalValue::I32),
        any::<i64>().prop_map(GlobalValue::I64),
        any::<u32>().prop_map(GlobalValue::F32),
        any::<u64>().prop_map(GlobalValue::F64),
        any::<u128>().prop_map(GlobalValue::V128),
    ]
}

proptest! {
    #[test]
    fn snapshot_round_trips(
        contents in writes(200),
        globals in prop::collection::btree_map(0u32..50, global(), 0..8),
        region_starts in prop::collection::btree_set(0u32..(MEMORY as u32 / 64), 0..6),
    ) {
        let regions = region_starts
            .into_iter()
            .map(|slot| MergeRegion { addr: slot * 64, len: 32, op: MergeOp::Sum, ty: ElemType::I64 })
            .collect();
        let snap = Snapshot::capture(
            ModuleHash::of(b"m"),
            &memory_with(&contents),
            None,
            globals.into_iter().collect(),
            regions,
        );
        let bytes = wire::encode_snapshot(&snap);
        prop_assert_eq!(wire::decode_snapshot(&bytes, &Limits::default()).unwrap(), snap.clone());
        let read = wire::read_snapshot_sharing(&mut &bytes[..], &Limits::default(), None);
        prop_assert_eq!(read.unwrap(), snap);
    }

    /// Reading an encoding as a stream accepts what decoding it whole
    /// accepts, with the same snapshot, whatever was changed in it: bytes
    /// overwritten, cut short or added.
    #[test]
    fn reading_a_stream_agrees_with_decoding_whole(
        contents in writes(3),
        globals in prop::collection::btree_map(0u32..50, global(), 0..4),
        changes in prop::collection::vec((0u8..3, any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        cut_kind in 0u8..3,
    ) {
        let snap = Snapshot::capture(
            ModuleHash::of(b"m"),
            &memory_with(&contents),
            None,
            globals.into_iter().collect(),
            vec![],
        );
        let mut bytes = wire::encode_snapshot(&snap);
        // Mostly where the structure is: the header and first page's
        // lengths, and the globals at the end; page bytes change nothing.
        for (place, at, value) in changes {
            let len = bytes.len();
            let at = match place {
                0 => at.index(len.min(64)),
                1 => len - 1 - at.index(len.min(128)),
                _ => at.index(len),
            };
            bytes[at] = value;
        }
        match cut_kind {
            0 => bytes.truncate(cut.index(bytes.len())),
            1 => bytes.push(cut.index(256) as u8),
            _ => {}
        }
        let limits = Limits::default();
        let whole = wire::decode_snapshot(&bytes, &limits).ok();
        let read = wire::read_snapshot_sharing(&mut &bytes[..], &limits, None).ok();
        prop_assert_eq!(read, whole);
    }

    #[test]
    fn applying_a_diff_rebuilds_the_memory(base in writes(300), changes in writes(300)) {
        let before = memory_with(&base);
        let snap = Snapshot::capture(ModuleHash::of(b"m"), &before, None, vec![], vec![]);
        let mut after = before.clone();
        for &(addr, value) in &changes {
            after[addr] = value;
        }
        let diff = Diff::between(&snap, &after, None, &[]);
        let decoded = wire::decode_diff(&wire::encode_diff(&diff), &Limits::default()).unwrap();
        prop_assert_eq!(&decoded, &diff);
        let mut rebuilt = before.clone();
        apply(&mut rebuilt, &decoded);
        prop_assert_eq!(rebuilt, after);
    }

    /// Children adding into an i64 sum region: any merge order gives the
    /// same base, equal to the snapshot plus every contribution.
    #[test]
    fn sum_merges_commute(
        start in prop::collection::vec(any::<i64>(), 8),
        deltas in prop::collection::vec(prop::collection::vec(any::<i64>(), 8), 1..5),
        order_seed in any::<u64>(),
    ) {
        let mut memory = vec![0u8; MEMORY];
        for (i, v) in start.iter().enumerate() {
            memory[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        let region = MergeRegion { addr: 0, len: 64, op: MergeOp::Sum, ty: ElemType::I64 };
        let snap = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![region]);
        let diffs: Vec<Diff> = deltas
            .iter()
            .map(|delta| {
                let mut child = memory.clone();
                for (i, d) in delta.iter().enumerate() {
                    let v = start[i].wrapping_add(*d);
                    child[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
                }
                Diff::between(&snap, &child, None, &[])
            })
            .collect();
        let mut forward = memory.clone();
        let mut merger = Merger::new(&snap);
        for (w, d) in diffs.iter().enumerate() {
            prop_assert!(merger.merge(&mut forward, d, w as u32).unwrap().is_empty());
        }
        let mut order: Vec<usize> = (0..diffs.len()).collect();
        let mut seed = order_seed;
        for i in (1..order.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let mut shuffled = memory.clone();
        let mut merger = Merger::new(&snap);
        for &w in &order {
            merger.merge(&mut shuffled, &diffs[w], w as u32).unwrap();
        }
        prop_assert_eq!(&forward, &shuffled);
        for i in 0..8 {
            let expected = deltas.iter().fold(start[i], |acc, d| acc.wrapping_add(d[i]));
            prop_assert_eq!(i64::from_le_bytes(forward[i * 8..i * 8 + 8].try_into().unwrap()), expected);
        }
    }

    #[test]
    fn ignore_regions_never_change_the_base(
        base in writes(100),
        changes in writes(400),
        start_page in 0usize..(MEMORY / PAGE_SIZE),
        pages in 1usize..4,
    ) {
        let memory = memory_with(&base);
        let addr = start_page * PAGE_SIZE;
        let len = (pages * PAGE_SIZE).min(MEMORY - addr);
        let region = MergeRegion { addr: addr as u32, len: len as u32, op: MergeOp::Ignore, ty: ElemType::I32 };
        let snap = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![region]);
        let mut child = memory.clone();
        for &(a, v) in &changes {
            child[a] = v;
        }
        let diff = Diff::between(&snap, &child, None, &[]);
        let mut merged = memory.clone();
        prop_assert!(Merger::new(&snap).merge(&mut merged, &diff, 0).unwrap().is_empty());
        prop_assert_eq!(&merged[addr..addr + len], &memory[addr..addr + len]);
        // Outside the region the child's bytes arrive.
        prop_assert_eq!(&merged[..addr], &child[..addr]);
        prop_assert_eq!(&merged[addr + len..], &child[addr + len..]);
    }

    /// Two children change bytes of a bytewise memory: the second merge
    /// reports conflicts on exactly the bytes both changed (even to the
    /// same value: each computed it from the old one, so an update may be
    /// lost).
    #[test]
    fn conflicts_exactly_where_both_wrote(
        base in writes(50),
        first in writes(200),
        second in writes(200),
    ) {
        let memory = memory_with(&base);
        let snap = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, vec![], vec![]);
        let child = |changes: &[(usize, u8)]| {
            let mut m = memory.clone();
            for &(a, v) in changes {
                m[a] = v;
            }
            let changed: BTreeSet<usize> = (0..MEMORY).filter(|&a| m[a] != memory[a]).collect();
            (Diff::between(&snap, &m, None, &[]), changed)
        };
        let (d1, c1) = child(&first);
        let (d2, c2) = child(&second);
        let mut merged = memory.clone();
        let mut merger = Merger::new(&snap);
        prop_assert!(merger.merge(&mut merged, &d1, 0).unwrap().is_empty());
        let conflicts = merger.merge(&mut merged, &d2, 1).unwrap();
        let mut reported = BTreeSet::new();
        for c in &conflicts {
            prop_assert_eq!(c.kind, ConflictKind::TwoWriters { first: 0, second: 1 });
            reported.extend(c.addr as usize..(c.addr + c.len) as usize);
        }
        let both: BTreeSet<usize> = c1.intersection(&c2).copied().collect();
        prop_assert_eq!(reported, both);
    }
}
