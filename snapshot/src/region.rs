//! Merge regions: ranges of memory the guest registered with the
//! operation their bytes merge by (a leaf of the crate: the snapshot
//! carries them, the merger applies them).

use serde::{Deserialize, Serialize};

/// How a region's bytes merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MergeOp {
    /// The child's bytes replace the base's; concurrent changes conflict.
    Bytewise,
    /// The child's changes are dropped (e.g. thread stacks, scratch space).
    Ignore,
    /// `base + (child - snapshot)`: children's contributions add up.
    Sum,
    /// `base - (snapshot - child)`: the same arithmetic as `Sum`, for
    /// counters that children decrement.
    Subtract,
    /// `base * (child / snapshot)`: children's factors multiply. For
    /// integers the factor must be exact; otherwise it is a conflict.
    Product,
    /// `min(base, child)`.
    Min,
    /// `max(base, child)`.
    Max,
    /// `base ^ (child ^ snapshot)`: children's flipped bits combine.
    Xor,
}

/// Element type of a typed region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ElemType {
    I32,
    I64,
    F32,
    F64,
}

impl ElemType {
    pub fn size(self) -> u32 {
        match self {
            ElemType::I32 | ElemType::F32 => 4,
            ElemType::I64 | ElemType::F64 => 8,
        }
    }
}

/// A registered region of memory with its merge operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MergeRegion {
    pub addr: u32,
    pub len: u32,
    pub op: MergeOp,
    /// Element type of the typed operations; unused by bytewise and ignore.
    pub ty: ElemType,
}

impl MergeRegion {
    pub fn end(&self) -> u64 {
        self.addr as u64 + self.len as u64
    }

    pub(crate) fn is_typed(&self) -> bool {
        !matches!(self.op, MergeOp::Bytewise | MergeOp::Ignore)
    }
}

/// What is wrong with a region (see [`validate_regions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegionFault {
    pub(crate) addr: u32,
    pub(crate) len: u32,
    pub(crate) why: &'static str,
}

/// Checks that regions are sorted, disjoint, inside `memory_len`, and that
/// typed regions are whole, aligned elements.
pub(crate) fn validate_regions(
    regions: &[MergeRegion],
    memory_len: u64,
) -> Result<(), RegionFault> {
    let bad = |r: &MergeRegion, why| RegionFault {
        addr: r.addr,
        len: r.len,
        why,
    };
    let mut previous_end = 0u64;
    for (i, region) in regions.iter().enumerate() {
        if region.len == 0 {
            return Err(bad(region, "empty"));
        }
        if i > 0 && (region.addr as u64) < previous_end {
            return Err(bad(region, "overlaps or precedes the previous region"));
        }
        if region.end() > memory_len {
            return Err(bad(region, "extends past the end of memory"));
        }
        if region.is_typed() {
            let size = region.ty.size();
            if !region.len.is_multiple_of(size) || !region.addr.is_multiple_of(size) {
                return Err(bad(region, "not whole, aligned elements of its type"));
            }
        }
        previous_end = region.end();
    }
    Ok(())
}
