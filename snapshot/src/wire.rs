//! The wire format of snapshots and diffs.
//!
//! ```text
//! magic (4 bytes: "WFSN" snapshot, "WFDF" diff) | version (u16 LE) | postcard body
//! ```
//!
//! postcard has no size limits and ignores trailing bytes, so decoding:
//! checks magic and version first; never preallocates from a length read
//! off the wire (sequences grow as elements actually decode, so memory
//! follows input size); bounds every count by [`Limits`]; rejects trailing
//! bytes; and validates the decoded value's invariants. Any input gives
//! `Ok` or a [`WireError`], never a panic.

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::diff::DiffError;
use crate::image::SnapshotError;
use crate::merge::MergeRegion;
use crate::{Diff, GlobalValue, ModuleHash, PAGE_SIZE, Run, Snapshot, SnapshotView};

pub const SNAPSHOT_MAGIC: [u8; 4] = *b"WFSN";
pub const DIFF_MAGIC: [u8; 4] = *b"WFDF";
pub const VERSION: u16 = 1;
const HEADER_LEN: usize = 6;

/// Caps applied when decoding; the defaults admit any 4 GiB memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest memory, in wasm pages.
    pub max_memory_pages: u32,
    /// Most globals.
    pub max_globals: u32,
    /// Most merge regions.
    pub max_regions: u32,
    /// Most runs in a diff.
    pub max_runs: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_pages: crate::MAX_WASM_PAGES,
            max_globals: 100_000,
            max_regions: 100_000,
            max_runs: 1 << 24,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("input ends inside the {0} header")]
    Truncated(&'static str),
    #[error("not a {expected}: magic {found:02x?}")]
    BadMagic {
        expected: &'static str,
        found: [u8; 4],
    },
    #[error("{what} format version {found} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion { what: &'static str, found: u16 },
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("{count} bytes follow the end of the {what}")]
    TrailingBytes { what: &'static str, count: usize },
    #[error("{what} has {count} {item}, more than the limit of {limit}")]
    TooMany {
        what: &'static str,
        item: &'static str,
        count: u64,
        limit: u64,
    },
    /// The input failed other than by ending (an unpacking payload that
    /// went past its limit, say): its kind, for the caller to look at.
    #[error("reading the {what}: {detail}")]
    Read {
        what: &'static str,
        kind: std::io::ErrorKind,
        detail: String,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Diff(#[from] DiffError),
}

// ---- wire types ---------------------------------------------------------

#[derive(Serialize)]
struct SnapshotOut<'a> {
    module: [u8; 32],
    memory_pages: u32,
    pages: Vec<PageOut<'a>>,
    globals: &'a [(u32, GlobalValue)],
    regions: &'a [MergeRegion],
}

#[derive(Serialize)]
struct PageOut<'a> {
    index: u32,
    #[serde(with = "serde_bytes")]
    data: &'a [u8],
}

#[derive(Deserialize)]
struct SnapshotIn<'a> {
    module: [u8; 32],
    memory_pages: u32,
    #[serde(borrow)]
    pages: Grown<PageIn<'a>>,
    globals: Grown<(u32, GlobalValue)>,
    regions: Grown<MergeRegion>,
}

#[derive(Deserialize)]
struct PageIn<'a> {
    index: u32,
    #[serde(borrow, with = "serde_bytes")]
    data: &'a [u8],
}

#[derive(Serialize)]
struct DiffOut<'a> {
    memory_pages: u32,
    runs: Vec<RunOut<'a>>,
    globals: &'a [(u32, GlobalValue)],
}

#[derive(Serialize)]
struct RunOut<'a> {
    addr: u32,
    #[serde(with = "serde_bytes")]
    bytes: &'a [u8],
}

#[derive(Deserialize)]
struct DiffIn<'a> {
    memory_pages: u32,
    #[serde(borrow)]
    runs: Grown<RunIn<'a>>,
    globals: Grown<(u32, GlobalValue)>,
}

#[derive(Deserialize)]
struct RunIn<'a> {
    addr: u32,
    #[serde(borrow, with = "serde_bytes")]
    bytes: &'a [u8],
}

/// A sequence decoded without trusting its length prefix for allocation:
/// it grows only as elements decode.
struct Grown<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Grown<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Seq<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Seq<T> {
            type Value = Grown<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Grown<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Grown(items))
            }
        }
        deserializer.deserialize_seq(Seq(std::marker::PhantomData))
    }
}

// ---- encoding -----------------------------------------------------------

/// Appends the header and the postcard body of `value` to `out`.
fn encode_into<T: Serialize>(magic: [u8; 4], value: &T, mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&magic);
    out.extend_from_slice(&VERSION.to_le_bytes());
    // Serialising into a Vec cannot fail for these types.
    postcard::to_extend(value, out).expect("postcard into Vec")
}

pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    // One allocation of the final size: page bytes dominate.
    let out = Vec::with_capacity(encoded_len_bound(snapshot));
    encode_snapshot_onto(snapshot, out)
}

/// An upper bound of the size of `snapshot`'s encoding.
pub fn encoded_len_bound(snapshot: &Snapshot) -> usize {
    encoded_capture_len(
        snapshot.page_count(),
        snapshot.globals.len(),
        snapshot.regions.len(),
    )
}

/// Appends `snapshot`'s encoding to `out` (e.g. after an envelope's
/// header), so a large snapshot is not encoded once and then copied.
pub fn encode_snapshot_onto(snapshot: &Snapshot, out: Vec<u8>) -> Vec<u8> {
    let body = snapshot_out(snapshot);
    encode_into(SNAPSHOT_MAGIC, &body, out)
}

/// The body of `snapshot`'s encoding, borrowing its pages.
fn snapshot_out(snapshot: &Snapshot) -> SnapshotOut<'_> {
    SnapshotOut {
        module: snapshot.module.0,
        memory_pages: snapshot.memory_pages,
        pages: snapshot
            .pages()
            .map(|(index, data)| PageOut {
                index,
                data: &data[..],
            })
            .collect(),
        globals: &snapshot.globals,
        regions: &snapshot.regions,
    }
}

/// Writes `snapshot`'s encoding (the bytes of [`encode_snapshot`]) through
/// `flavor`, a piece at a time: into a compressor, say, so that the whole
/// encoding never exists at once.
pub fn encode_snapshot_with<F: postcard::ser_flavors::Flavor>(
    snapshot: &Snapshot,
    mut flavor: F,
) -> postcard::Result<F::Output> {
    let body = snapshot_out(snapshot);
    flavor.try_extend(&SNAPSHOT_MAGIC)?;
    flavor.try_extend(&VERSION.to_le_bytes())?;
    postcard::serialize_with_flavor(&body, flavor)
}

/// Encodes a snapshot of `memory` straight into `out`: the same bytes as
/// `encode_snapshot(&Snapshot::capture(..))`, without the intermediate copy
/// of every page. `out` is cleared first; reserve its capacity (see
/// [`encoded_capture_len`]) to control where the bytes land.
pub fn encode_capture(
    out: &mut Vec<u8>,
    module: ModuleHash,
    memory: &[u8],
    candidates: Option<&[u32]>,
    globals: &[(u32, GlobalValue)],
    regions: &[MergeRegion],
) {
    let indices = crate::image::pages_with_data(memory, candidates);
    let body = SnapshotOut {
        module: module.0,
        memory_pages: (memory.len() as u64 / crate::WASM_PAGE_SIZE) as u32,
        pages: indices
            .iter()
            .map(|&index| {
                let start = index as usize * PAGE_SIZE;
                PageOut {
                    index,
                    data: &memory[start..start + PAGE_SIZE],
                }
            })
            .collect(),
        globals,
        regions,
    };
    let mut buffer = std::mem::take(out);
    buffer.clear();
    buffer.reserve(encoded_capture_len(
        indices.len(),
        globals.len(),
        regions.len(),
    ));
    *out = encode_into(SNAPSHOT_MAGIC, &body, buffer);
}

/// An upper bound of the encoded size of a snapshot with `pages` pages of
/// data (for reserving the output of [`encode_capture`]).
pub fn encoded_capture_len(pages: usize, globals: usize, regions: usize) -> usize {
    // Varints: at most 5 bytes per u32, 19 per u128; page length prefix 2.
    HEADER_LEN
        + 32
        + 5
        + 5
        + pages * (PAGE_SIZE + 5 + 2)
        + 5
        + globals * (5 + 1 + 19)
        + 5
        + regions * (5 + 5 + 1 + 1)
}

pub fn encode_diff(diff: &Diff) -> Vec<u8> {
    let body = DiffOut {
        memory_pages: diff.memory_pages,
        runs: diff
            .runs
            .iter()
            .map(|r| RunOut {
                addr: r.addr,
                bytes: &r.bytes,
            })
            .collect(),
        globals: &diff.globals,
    };
    let bytes: usize = diff.runs.iter().map(|r| r.bytes.len() + 10).sum();
    encode_into(
        DIFF_MAGIC,
        &body,
        Vec::with_capacity(HEADER_LEN + 16 + bytes),
    )
}

// ---- decoding -----------------------------------------------------------

fn body<'a>(input: &'a [u8], magic: [u8; 4], what: &'static str) -> Result<&'a [u8], WireError> {
    let header = input.get(..HEADER_LEN).ok_or(WireError::Truncated(what))?;
    let found: [u8; 4] = header[..4].try_into().unwrap();
    if found != magic {
        return Err(WireError::BadMagic {
            expected: what,
            found,
        });
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version != VERSION {
        return Err(WireError::UnsupportedVersion {
            what,
            found: version,
        });
    }
    Ok(&input[HEADER_LEN..])
}

fn decode_exact<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    what: &'static str,
) -> Result<T, WireError> {
    let (value, rest) = postcard::take_from_bytes::<T>(body).map_err(|e| WireError::Malformed {
        what,
        detail: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes {
            what,
            count: rest.len(),
        });
    }
    Ok(value)
}

fn bound(
    what: &'static str,
    item: &'static str,
    count: usize,
    limit: u32,
) -> Result<(), WireError> {
    if count as u64 > limit as u64 {
        return Err(WireError::TooMany {
            what,
            item,
            count: count as u64,
            limit: limit as u64,
        });
    }
    Ok(())
}

fn check_memory(pages: u32, limits: &Limits) -> Result<(), WireError> {
    if pages > limits.max_memory_pages {
        return Err(SnapshotError::MemoryTooLarge {
            pages,
            max: limits.max_memory_pages,
        }
        .into());
    }
    Ok(())
}

/// Decodes a snapshot without copying its pages: they borrow from `input`.
pub fn decode_snapshot_view<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<SnapshotView<'a>, WireError> {
    const WHAT: &str = "snapshot";
    let raw: SnapshotIn<'a> = decode_exact(body(input, SNAPSHOT_MAGIC, WHAT)?, WHAT)?;
    check_memory(raw.memory_pages, limits)?;
    bound(WHAT, "globals", raw.globals.0.len(), limits.max_globals)?;
    bound(
        WHAT,
        "merge regions",
        raw.regions.0.len(),
        limits.max_regions,
    )?;
    let mut pages = Vec::with_capacity(raw.pages.0.len());
    for page in raw.pages.0 {
        let data: &[u8; PAGE_SIZE] = page.data.try_into().map_err(|_| WireError::Malformed {
            what: WHAT,
            detail: format!(
                "page {} holds {} bytes, not {PAGE_SIZE}",
                page.index,
                page.data.len()
            ),
        })?;
        pages.push((page.index, data));
    }
    let view = SnapshotView {
        module: ModuleHash(raw.module),
        memory_pages: raw.memory_pages,
        pages,
        globals: raw.globals.0,
        regions: raw.regions.0,
    };
    view.validate()?;
    Ok(view)
}

/// Decodes a snapshot into an owned value.
pub fn decode_snapshot(input: &[u8], limits: &Limits) -> Result<Snapshot, WireError> {
    decode_snapshot_view(input, limits).map(|view| view.to_snapshot())
}

/// [`decode_snapshot`], sharing with `like` the pages that hold the same
/// bytes (see [`SnapshotView::to_snapshot_sharing`]).
pub fn decode_snapshot_sharing(
    input: &[u8],
    limits: &Limits,
    like: Option<&Snapshot>,
) -> Result<Snapshot, WireError> {
    decode_snapshot_view(input, limits).map(|view| view.to_snapshot_sharing(like))
}

/// What follows the pages in a snapshot's encoding.
#[derive(Deserialize)]
struct SnapshotTail {
    globals: Grown<(u32, GlobalValue)>,
    regions: Grown<MergeRegion>,
}

/// The most bytes a snapshot's globals and regions take within `limits`,
/// with every varint at its widest (postcard reads varints that are not
/// the shortest): a global is an index, a variant and at most a u128; a
/// region two u32s and two variants.
fn tail_len_bound(limits: &Limits) -> u64 {
    10 + limits.max_globals as u64 * (5 + 5 + 19) + 10 + limits.max_regions as u64 * (5 * 4)
}

/// [`decode_snapshot_sharing`] from a reader (a decompressor, say), a
/// page at a time: the encoding never exists whole, and a page that
/// equals `like`'s at its index is never held twice. Accepts exactly the
/// inputs [`decode_snapshot`] accepts, with the same snapshot (a refused
/// input may be refused for another of its faults).
pub fn read_snapshot_sharing(
    input: &mut impl std::io::Read,
    limits: &Limits,
    like: Option<&Snapshot>,
) -> Result<Snapshot, WireError> {
    const WHAT: &str = "snapshot";
    let mut reader = Reader { input };
    let mut header = [0u8; HEADER_LEN];
    reader
        .exact(&mut header)
        .map_err(|_| WireError::Truncated(WHAT))?;
    body(&header, SNAPSHOT_MAGIC, WHAT)?;
    let mut module = [0u8; 32];
    reader.exact(&mut module)?;
    let memory_pages = reader.varint_u32()?;
    check_memory(memory_pages, limits)?;
    let mut snapshot = Snapshot::from_pages(
        ModuleHash(module),
        memory_pages,
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let page_limit = memory_pages as u64 * crate::PAGES_PER_WASM_PAGE as u64;
    let count = reader.varint_usize()?;
    let mut previous = None;
    let mut data = Box::new([0u8; PAGE_SIZE]);
    for _ in 0..count {
        let index = reader.varint_u32()?;
        let len = reader.varint_usize()?;
        if len != PAGE_SIZE as u64 {
            return Err(WireError::Malformed {
                what: WHAT,
                detail: format!("page {index} holds {len} bytes, not {PAGE_SIZE}"),
            });
        }
        reader.exact(&mut data[..])?;
        // The checks `SnapshotView::validate` makes, made as pages come.
        if previous.is_some_and(|p| p >= index) {
            return Err(SnapshotError::PagesOutOfOrder { index }.into());
        }
        if index as u64 >= page_limit {
            return Err(SnapshotError::PageOutOfBounds {
                index,
                memory_pages,
            }
            .into());
        }
        previous = Some(index);
        snapshot.insert_page_sharing(index, &data, like);
    }
    // Globals and regions are small and bounded: decoded as a whole.
    let mut tail = Vec::new();
    let cap = tail_len_bound(limits);
    use std::io::Read as _;
    (&mut *reader.input)
        .take(cap + 1)
        .read_to_end(&mut tail)
        .map_err(|e| reader.failed(e))?;
    if tail.len() as u64 > cap {
        return Err(WireError::TooMany {
            what: WHAT,
            item: "bytes of globals and merge regions",
            count: tail.len() as u64,
            limit: cap,
        });
    }
    let SnapshotTail { globals, regions } = decode_exact(&tail, WHAT)?;
    bound(WHAT, "globals", globals.0.len(), limits.max_globals)?;
    bound(WHAT, "merge regions", regions.0.len(), limits.max_regions)?;
    snapshot.globals = globals.0;
    snapshot.regions = regions.0;
    snapshot.validate()?;
    Ok(snapshot)
}

/// Reads postcard's pieces off a reader: LEB128 varints with postcard's
/// limits (5 bytes for a u32, 10 for a usize, the last byte's unused bits
/// zero) and plain bytes.
struct Reader<'a, R> {
    input: &'a mut R,
}

impl<R: std::io::Read> Reader<'_, R> {
    fn failed(&self, e: std::io::Error) -> WireError {
        const WHAT: &str = "snapshot";
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => WireError::Malformed {
                what: WHAT,
                detail: "the input ends too soon".to_string(),
            },
            kind => WireError::Read {
                what: WHAT,
                kind,
                detail: e.to_string(),
            },
        }
    }

    fn exact(&mut self, out: &mut [u8]) -> Result<(), WireError> {
        self.input.read_exact(out).map_err(|e| self.failed(e))
    }

    fn varint(&mut self, max_bytes: u32, last_max: u8) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let mut byte = [0u8];
            self.exact(&mut byte)?;
            value |= u64::from(byte[0] & 0x7f) << (7 * i);
            if byte[0] & 0x80 == 0 {
                if i == max_bytes - 1 && byte[0] > last_max {
                    break;
                }
                return Ok(value);
            }
        }
        Err(WireError::Malformed {
            what: "snapshot",
            detail: "a bad varint".to_string(),
        })
    }

    fn varint_u32(&mut self) -> Result<u32, WireError> {
        // 4 x 7 bits, then 4 more.
        self.varint(5, 0x0f).map(|v| v as u32)
    }

    fn varint_usize(&mut self) -> Result<u64, WireError> {
        if usize::BITS == 32 {
            return self.varint_u32().map(u64::from);
        }
        // 9 x 7 bits, then 1 more.
        self.varint(10, 0x01)
    }
}

pub fn decode_diff(input: &[u8], limits: &Limits) -> Result<Diff, WireError> {
    const WHAT: &str = "diff";
    let raw: DiffIn<'_> = decode_exact(body(input, DIFF_MAGIC, WHAT)?, WHAT)?;
    check_memory(raw.memory_pages, limits)?;
    bound(WHAT, "runs", raw.runs.0.len(), limits.max_runs)?;
    bound(WHAT, "globals", raw.globals.0.len(), limits.max_globals)?;
    let diff = Diff {
        memory_pages: raw.memory_pages,
        runs: raw
            .runs
            .0
            .into_iter()
            .map(|r| Run {
                addr: r.addr,
                bytes: r.bytes.to_vec(),
            })
            .collect(),
        globals: raw.globals.0,
    };
    diff.validate()?;
    Ok(diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ElemType, MergeOp, WASM_PAGE_SIZE};

    fn sample() -> Snapshot {
        let mut memory = vec![0u8; 2 * WASM_PAGE_SIZE as usize];
        memory[10] = 7;
        memory[70000] = 9;
        Snapshot::capture(
            ModuleHash::of(b"module"),
            &memory,
            None,
            vec![
                (0, GlobalValue::I32(65536)),
                (3, GlobalValue::F64(1.5f64.to_bits())),
            ],
            vec![MergeRegion {
                addr: 64,
                len: 16,
                op: MergeOp::Sum,
                ty: ElemType::I32,
            }],
        )
    }

    #[test]
    fn round_trip() {
        let snap = sample();
        let bytes = encode_snapshot(&snap);
        assert_eq!(decode_snapshot(&bytes, &Limits::default()).unwrap(), snap);
    }

    #[test]
    fn encoding_onto_a_prefix_appends_the_same_bytes() {
        let snap = sample();
        let whole = encode_snapshot(&snap);
        let onto = encode_snapshot_onto(&snap, vec![1, 2, 3]);
        assert_eq!(onto[..3], [1, 2, 3]);
        assert_eq!(onto[3..], whole[..]);
        assert!(whole.len() <= encoded_len_bound(&snap));
        let shared = decode_snapshot_sharing(&whole, &Limits::default(), Some(&snap)).unwrap();
        assert_eq!(shared, snap);
        assert!(shared.changed_pages(&snap).is_empty(), "every page shared");
    }

    #[test]
    fn encoding_through_a_flavor_writes_the_same_bytes() {
        let snap = sample();
        let streamed = encode_snapshot_with(&snap, postcard::ser_flavors::AllocVec::new()).unwrap();
        assert_eq!(streamed, encode_snapshot(&snap));
    }

    #[test]
    fn capture_straight_to_bytes_matches() {
        let mut memory = vec![0u8; 2 * WASM_PAGE_SIZE as usize];
        memory[10] = 7;
        memory[70000] = 9;
        let globals = vec![(0, GlobalValue::I32(1))];
        let snap = Snapshot::capture(ModuleHash::of(b"m"), &memory, None, globals.clone(), vec![]);
        let mut out = vec![1, 2, 3];
        encode_capture(
            &mut out,
            ModuleHash::of(b"m"),
            &memory,
            Some(&[17, 0, 5]),
            &globals,
            &[],
        );
        assert_eq!(out, encode_snapshot(&snap));
        assert!(out.len() <= encoded_capture_len(2, 1, 0));
    }

    #[test]
    fn rejects_bad_headers() {
        let bytes = encode_snapshot(&sample());
        let limits = Limits::default();
        assert_eq!(
            decode_snapshot(&bytes[..3], &limits),
            Err(WireError::Truncated("snapshot"))
        );
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert!(matches!(
            decode_snapshot(&wrong, &limits),
            Err(WireError::BadMagic { .. })
        ));
        let mut future = bytes.clone();
        future[4] = 2;
        assert_eq!(
            decode_snapshot(&future, &limits),
            Err(WireError::UnsupportedVersion {
                what: "snapshot",
                found: 2
            })
        );
        assert!(matches!(
            decode_diff(&bytes, &limits),
            Err(WireError::BadMagic { .. })
        ));
    }

    #[test]
    fn rejects_trailing_and_truncated_bodies() {
        let mut bytes = encode_snapshot(&sample());
        let limits = Limits::default();
        bytes.push(0);
        assert_eq!(
            decode_snapshot(&bytes, &limits),
            Err(WireError::TrailingBytes {
                what: "snapshot",
                count: 1
            })
        );
        bytes.pop();
        for cut in HEADER_LEN..bytes.len() {
            assert!(
                decode_snapshot(&bytes[..cut], &limits).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_stream_shares_the_pages_it_has_in_common() {
        let like = sample();
        let mut memory = like.to_memory();
        memory[70000] = 10;
        let next = Snapshot::capture(like.module, &memory, None, like.globals.clone(), vec![]);
        let bytes = encode_snapshot(&next);
        let read = read_snapshot_sharing(&mut &bytes[..], &Limits::default(), Some(&like)).unwrap();
        assert_eq!(read, next);
        // Page 0 is the same `Arc` as `like`'s; page 17 (byte 70000) is new.
        assert_eq!(read.changed_pages(&like), vec![17]);
        // Cut anywhere, the stream is refused as decoding refuses it.
        for len in 0..bytes.len() {
            assert!(read_snapshot_sharing(&mut &bytes[..len], &Limits::default(), None).is_err());
        }
    }

    #[test]
    fn huge_lengths_fail_without_allocating() {
        // A header, a module hash, memory_pages = 1, then a page count of
        // u32::MAX (varint) and nothing else.
        let mut bytes = Vec::from(SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&[0; 32]);
        bytes.push(1);
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            decode_snapshot(&bytes, &Limits::default()),
            Err(WireError::Malformed { .. })
        ));
        // A byte string claiming 4 GiB.
        let mut bytes = Vec::from(SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&[0; 32]);
        bytes.extend_from_slice(&[1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode_snapshot(&bytes, &Limits::default()).is_err());
        assert!(read_snapshot_sharing(&mut &bytes[..], &Limits::default(), None).is_err());
        // A u32 varint whose fifth byte sets bits past 32: refused by both,
        // while the widest valid one (u32::MAX pages, over the limit) is
        // read as a number.
        for (last, pages_error) in [(0x1f, false), (0x0f, true)] {
            let mut bytes = Vec::from(SNAPSHOT_MAGIC);
            bytes.extend_from_slice(&VERSION.to_le_bytes());
            bytes.extend_from_slice(&[0; 32]);
            bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, last, 0, 0, 0]);
            let whole = decode_snapshot(&bytes, &Limits::default());
            let read = read_snapshot_sharing(&mut &bytes[..], &Limits::default(), None);
            for result in [whole, read] {
                let too_large = matches!(
                    result,
                    Err(WireError::Snapshot(SnapshotError::MemoryTooLarge { .. }))
                );
                assert_eq!(too_large, pages_error, "{result:?}");
            }
        }
    }

    #[test]
    fn limits_apply() {
        let bytes = encode_snapshot(&sample());
        let tight = Limits {
            max_memory_pages: 1,
            ..Limits::default()
        };
        assert_eq!(
            decode_snapshot(&bytes, &tight),
            Err(WireError::Snapshot(SnapshotError::MemoryTooLarge {
                pages: 2,
                max: 1
            }))
        );
        let tight = Limits {
            max_globals: 1,
            ..Limits::default()
        };
        assert!(matches!(
            decode_snapshot(&bytes, &tight),
            Err(WireError::TooMany { .. })
        ));
    }

    #[test]
    fn invariants_are_checked() {
        let snap = sample();
        // Snapshots keep pages in order; only hand-made bytes can break it.
        let mut pages: Vec<PageOut<'_>> = snap
            .pages()
            .map(|(index, data)| PageOut {
                index,
                data: &data[..],
            })
            .collect();
        assert!(pages.len() >= 2);
        pages.reverse();
        let body = SnapshotOut {
            module: snap.module.0,
            memory_pages: snap.memory_pages,
            pages,
            globals: &[],
            regions: &[],
        };
        let bytes = encode_into(SNAPSHOT_MAGIC, &body, Vec::new());
        assert!(matches!(
            decode_snapshot(&bytes, &Limits::default()),
            Err(WireError::Snapshot(SnapshotError::PagesOutOfOrder { .. }))
        ));
    }

    #[test]
    fn diff_round_trip_and_validation() {
        let diff = Diff {
            memory_pages: 1,
            runs: vec![
                Run {
                    addr: 5,
                    bytes: vec![1, 2],
                },
                Run {
                    addr: 4095,
                    bytes: vec![3],
                },
            ],
            globals: vec![(1, GlobalValue::I64(-1))],
        };
        let bytes = encode_diff(&diff);
        assert_eq!(decode_diff(&bytes, &Limits::default()).unwrap(), diff);
        let crossing = Diff {
            memory_pages: 1,
            runs: vec![Run {
                addr: 4095,
                bytes: vec![1, 2],
            }],
            globals: vec![],
        };
        assert!(matches!(
            decode_diff(&encode_diff(&crossing), &Limits::default()),
            Err(WireError::Diff(DiffError::BadRun { .. }))
        ));
    }
}
