//! What a remote chained call carries, inside the transport's payloads
//! (sans IO: pure encoding and decoding).
//!
//! The call's payload: `WFCI`, a version byte, a postcard [`CallHeader`]
//! (which thread, and whether the snapshot is whole or a delta against a
//! base the worker kept), then a `weft-snapshot` wire snapshot.
//! The result's payload: `WFCO`, a version byte, a postcard diff length,
//! the wire diff, then the thread's buffered output records.

use serde::{Deserialize, Serialize};
use weft_snapshot::{PAGE_SIZE, Snapshot, wire};

const INPUT_MAGIC: [u8; 4] = *b"WFCI";
const OUTPUT_MAGIC: [u8; 4] = *b"WFCO";
// 2: snapshots are named by a home identity and a counter.
// 3: a call says whether its threads must be stoppable anywhere.
const VERSION: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a weft {0} payload (bad magic)")]
    BadMagic(&'static str),
    #[error("{0} payload of version {1} (this host speaks {VERSION})")]
    Version(&'static str, u8),
    #[error("malformed {0} header")]
    Header(&'static str),
    #[error("the result's diff runs past its payload")]
    Truncated,
    #[error("delta snapshot: {0}")]
    Delta(&'static str),
}

/// A snapshot's name among all the snapshots any home sends: the home's
/// identity (128 random bits drawn when it starts) and its counter. A
/// worker serving many programs keeps their bases apart by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotId {
    pub home: [u8; 16],
    pub seq: u64,
}

/// Which thread a call runs, and how its snapshot is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHeader {
    pub tid: u32,
    /// wasi-libc's start arguments (`wasi_thread_start`'s second argument).
    pub start_arg: u32,
    /// The thread's heap arena (its first chunk).
    pub arena: u32,
    /// This snapshot's id: a later call may name it as its base.
    pub snapshot_id: SnapshotId,
    /// The snapshot is a delta against this earlier one (see [`delta`]).
    pub base: Option<SnapshotId>,
    /// The program has a time limit: its threads must stop anywhere, not
    /// only at a host call (a worker runs them with epoch checks).
    pub stoppable: bool,
}

fn split_header<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    magic: [u8; 4],
    what: &'static str,
) -> Result<(T, &'a [u8]), EnvelopeError> {
    let rest = bytes
        .strip_prefix(&magic)
        .ok_or(EnvelopeError::BadMagic(what))?;
    let (&version, rest) = rest.split_first().ok_or(EnvelopeError::Header(what))?;
    if version != VERSION {
        return Err(EnvelopeError::Version(what, version));
    }
    postcard::take_from_bytes(rest).map_err(|_| EnvelopeError::Header(what))
}

fn with_header<T: Serialize>(magic: [u8; 4], header: &T, extra: usize) -> Vec<u8> {
    let header = postcard::to_allocvec(header).expect("plain structs always serialise");
    let mut out = Vec::with_capacity(5 + header.len() + extra);
    out.extend_from_slice(&magic);
    out.push(VERSION);
    out.extend_from_slice(&header);
    out
}

pub fn encode_call(header: &CallHeader, snapshot: &[u8]) -> Vec<u8> {
    let mut out = with_header(INPUT_MAGIC, header, snapshot.len());
    out.extend_from_slice(snapshot);
    out
}

/// A call's payload with `snapshot` encoded straight after the header
/// (no separate encoding to copy: a snapshot may be hundreds of MiB).
pub fn encode_call_snapshot(header: &CallHeader, snapshot: &Snapshot) -> Vec<u8> {
    let out = with_header(INPUT_MAGIC, header, wire::encoded_len_bound(snapshot));
    wire::encode_snapshot_onto(snapshot, out)
}

/// A call's payload (its header and snapshot), ready for the wire.
#[derive(Debug)]
pub enum CallPayload {
    /// Compressed straight from the snapshot's pages, and the payload's
    /// own length.
    Packed(crate::payload::Packed<'static>, usize),
    /// Encoded as it is (its pages do not compress): packed when sent.
    Encoded(Vec<u8>),
}

impl CallPayload {
    /// The payload's own length (before packing).
    pub fn len(&self) -> usize {
        match self {
            Self::Packed(_, len) => *len,
            Self::Encoded(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Pages of a snapshot tried to decide whether its payload compresses.
const SAMPLE_PAGES: usize = 16;

/// A call's payload as [`encode_call_snapshot`] and then
/// [`payload::pack`](crate::payload::pack) would make it, but when the
/// snapshot's pages compress (a sample of them spread over the memory
/// decides), compressed straight from the pages: the encoded payload,
/// as large as the snapshot, never exists.
pub fn pack_call_snapshot(header: &CallHeader, snapshot: &Snapshot) -> CallPayload {
    let count = snapshot.page_count();
    let step = (count / SAMPLE_PAGES).max(1);
    let sample: Vec<u8> = snapshot
        .pages()
        .step_by(step)
        .take(SAMPLE_PAGES)
        .flat_map(|(_, page)| page.iter().copied())
        .collect();
    if !crate::payload::worth_compressing(&sample) {
        return CallPayload::Encoded(encode_call_snapshot(header, snapshot));
    }
    let compressed = crate::payload::Compressing::new()
        .ok()
        .and_then(|mut flavor| {
            use postcard::ser_flavors::Flavor as _;
            let prefix = with_header(INPUT_MAGIC, header, 0);
            flavor.try_extend(&prefix).ok()?;
            wire::encode_snapshot_with(snapshot, flavor).ok()
        });
    match compressed {
        Some((packed, len)) => CallPayload::Packed(packed, len),
        // The compressor failed (out of memory): as it is.
        None => CallPayload::Encoded(encode_call_snapshot(header, snapshot)),
    }
}

/// The header and the wire snapshot of a call.
pub fn decode_call(bytes: &[u8]) -> Result<(CallHeader, &[u8]), EnvelopeError> {
    split_header(bytes, INPUT_MAGIC, "call")
}

/// A call header's most bytes on the wire (magic, version and every
/// field at its widest varint), with room to spare.
const CALL_HEADER_MAX: usize = 128;

/// [`decode_call`] from a reader (an unpacking payload): the header, with
/// `input` left at the snapshot's first byte.
pub fn read_call_header(input: &mut dyn std::io::Read) -> Result<CallHeader, EnvelopeError> {
    const WHAT: &str = "call";
    // The header has no length of its own: it is read a byte at a time
    // until it decodes, so not one byte of the snapshot is taken.
    let mut bytes = Vec::with_capacity(CALL_HEADER_MAX);
    let mut byte = [0u8];
    while bytes.len() < CALL_HEADER_MAX {
        input
            .read_exact(&mut byte)
            .map_err(|_| EnvelopeError::Header(WHAT))?;
        bytes.push(byte[0]);
        match split_header::<CallHeader>(&bytes, INPUT_MAGIC, WHAT) {
            Ok((header, _)) => return Ok(header),
            // Only a header cut short is read on; the others are final.
            Err(EnvelopeError::Header(_)) => {}
            Err(other) if bytes.len() > INPUT_MAGIC.len() => return Err(other),
            Err(_) => {}
        }
    }
    Err(EnvelopeError::Header(WHAT))
}

/// What a result says besides its diff and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultHeader {
    pub diff_len: u64,
    /// CPU time the call's threads used on the worker, in nanoseconds:
    /// home counts it in the process's CPU time.
    pub cpu_ns: u64,
}

pub fn encode_result(diff: &[u8], output: &[u8], cpu_ns: u64) -> Vec<u8> {
    let header = ResultHeader {
        diff_len: diff.len() as u64,
        cpu_ns,
    };
    let mut out = with_header(OUTPUT_MAGIC, &header, diff.len() + output.len());
    out.extend_from_slice(diff);
    out.extend_from_slice(output);
    out
}

/// The wire diff, the output records and the CPU time of a result.
pub fn decode_result(bytes: &[u8]) -> Result<(&[u8], &[u8], u64), EnvelopeError> {
    let (header, rest): (ResultHeader, _) = split_header(bytes, OUTPUT_MAGIC, "result")?;
    if header.diff_len > rest.len() as u64 {
        return Err(EnvelopeError::Truncated);
    }
    let (diff, output) = rest.split_at(header.diff_len as usize);
    Ok((diff, output, header.cpu_ns))
}

/// What a thread running away from home asks its home host for, in a
/// `HomeCall` of the transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HomeRequest {
    /// `arena-grow`: a new chunk of at least `size` bytes for the thread's
    /// arena (the arena zone is home's).
    ArenaGrow { size: u32 },
    /// A chunk the worker could not use goes back to the zone.
    ArenaRelease { start: u32 },
    /// The first chunk of a new arena, for a thread the remote thread (or
    /// one of its own) starts on the worker.
    ArenaNew { size: u32 },
    /// A thread id for such a thread (home counts it as live).
    NewThread,
    /// `arena-lookup`: the arena the heap address belongs to (0: none).
    ArenaLookup { addr: u32 },
    /// Such a thread has ended.
    ThreadEnded { tid: u32 },
    /// An operation on the global state tier (home's choice of tier; the
    /// worker's local tier is its own).
    Global(GlobalCall),
    /// A `weft:chain` operation: the program's function input, output and
    /// calls are home's.
    Chain(ChainCall),
    /// `fd_fdstat_get` of stdout or stderr (libc asks it before the first
    /// write, to choose buffering): home's descriptors answer.
    FdStat { fd: u32 },
    /// A sync call of thread `tid` (release consistency over the call's
    /// stream): `released` is a `weft-snapshot` wire diff of what the
    /// thread wrote since its last sync point, against the copy of its
    /// snapshot both ends keep (empty for a call that is no sync point);
    /// `output` holds the output records the call's threads buffered
    /// since the last call that carried them (see [`output_records`]).
    /// Home prints the output and merges the diff first, then makes the
    /// call: what a thread wrote before a sync point comes before what
    /// others do after it. `cpu_ns`: the CPU time the thread has used so
    /// far (others read its CPU clock at home). `detached`: the thread
    /// went on without waiting for the answer (a release that returns no
    /// value it needs, such as an unlock): a failure ends the program.
    Sync {
        tid: u32,
        call: SyncCall,
        released: Vec<u8>,
        output: Vec<u8>,
        cpu_ns: u64,
        detached: bool,
    },
    /// Thread `tid` called `exit(code)` (`proc_exit`): the program ends
    /// with `code` once `output` (as for [`HomeRequest::Sync`]) is out.
    Exit {
        tid: u32,
        code: i32,
        output: Vec<u8>,
    },
    /// A CPU-time clock only home reads (`clock_time_get` id): the
    /// process's, or another thread's.
    CpuClock { id: u32 },
    /// A WASI preview1 call of thread `tid` that only home can make (files,
    /// directories, descriptors other than the output it buffers): `name`
    /// and its arguments (wasm values, widened). Home makes it on a copy of
    /// the thread's memory: its snapshot (the copy both ends keep) with
    /// `unreleased`, a wire diff of what the thread wrote since its last
    /// sync point, applied. That is no release: the call is no sync point.
    /// `output` as for [`HomeRequest::Sync`].
    Wasi {
        tid: u32,
        name: String,
        args: Vec<i64>,
        unreleased: Vec<u8>,
        output: Vec<u8>,
    },
    /// `register-merge-region`: the program's merge regions are home's
    /// (the threads started from now on merge with them).
    MergeRegion(weft_snapshot::MergeRegion),
}

/// A synchronisation operation of the `weft:threads` interface, as a
/// thread away from home asks its home to make it (the import's arguments,
/// see `wit/threads.wit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncCall {
    Lock {
        addr: u32,
        flags: u32,
        timeout_ns: i64,
    },
    Unlock {
        addr: u32,
        flags: u32,
    },
    Barrier {
        addr: u32,
        count: u32,
    },
    CondWait {
        cond: u32,
        mutex: u32,
        flags: u32,
        timeout_ns: i64,
    },
    CondWake {
        cond: u32,
        all: bool,
    },
    SemInit {
        addr: u32,
        value: u32,
    },
    SemWait {
        addr: u32,
        nonblocking: bool,
        timeout_ns: i64,
    },
    SemPost {
        addr: u32,
    },
    SemValue {
        addr: u32,
    },
    /// A release and an acquire with no object (OpenMP `flush`); the
    /// thread lets a queued one have its slot for a while.
    Point,
    /// A release and an acquire around a sleep or a yield: the thread
    /// keeps its slot.
    Pause,
    /// An atomic read-modify-write, store or compare-exchange on the one
    /// value every thread shares.
    Atomic {
        op: u32,
        bytes: u32,
        addr: u32,
        value: u64,
        expected: u64,
    },
    /// An atomic load's acquire.
    Load,
    /// A libweft routine run at home on the main memory as the calling
    /// thread, between its release and its acquire (a thread created,
    /// joined or detached by a chained thread: libc's thread list and the
    /// new thread's memory are the main memory's). Everything the routine
    /// reads comes with the call: home's copy of the thread's own bytes
    /// may be stale.
    AtHome(AtHomeCall),
}

/// What a [`SyncCall::AtHome`] runs: libweft's `routine` (a function-table
/// index) with the calling thread's TLS block at `tls`, on request `op`
/// about `thread`; a create's start routine, argument and attributes (the
/// `pthread_attr_t` bytes), a timed join's deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtHomeCall {
    pub routine: u32,
    pub tls: u32,
    pub op: u32,
    pub thread: u32,
    pub start: u32,
    pub arg: u32,
    pub attr: Option<Vec<u8>>,
    /// Nanoseconds since the epoch on the realtime clock; negative: none.
    pub deadline_ns: i64,
}

/// The bytes of a `pthread_attr_t` on wasm32 (musl's).
pub const ATTR_BYTES: usize = 36;

impl SyncCall {
    /// Whether the call may wait at home for another thread (the worker
    /// gives the thread's slot up meanwhile).
    pub fn may_wait(&self) -> bool {
        matches!(
            self,
            SyncCall::Lock { .. }
                | SyncCall::Barrier { .. }
                | SyncCall::CondWait { .. }
                | SyncCall::SemWait {
                    nonblocking: false,
                    ..
                }
                | SyncCall::AtHome { .. }
        )
    }

    /// Whether the call is a sync point (a release, an acquire or both)
    /// rather than a plain operation on home's sync objects (a wake, a
    /// semaphore's initial or current value): only a sync point carries
    /// what the thread released, and brings what it acquires.
    pub fn is_sync_point(&self) -> bool {
        !matches!(
            self,
            SyncCall::CondWake { .. } | SyncCall::SemInit { .. } | SyncCall::SemValue { .. }
        )
    }

    /// The import's name, for traces and messages.
    pub fn name(&self) -> &'static str {
        match self {
            SyncCall::Lock { .. } => "sync-lock",
            SyncCall::Unlock { .. } => "sync-unlock",
            SyncCall::Barrier { .. } => "sync-barrier",
            SyncCall::CondWait { .. } => "sync-cond-wait",
            SyncCall::CondWake { .. } => "sync-cond-wake",
            SyncCall::SemInit { .. } => "sync-sem-init",
            SyncCall::SemWait { .. } => "sync-sem-wait",
            SyncCall::SemPost { .. } => "sync-sem-post",
            SyncCall::SemValue { .. } => "sync-sem-value",
            SyncCall::Point => "sync-point",
            SyncCall::Pause => "sync-pause",
            SyncCall::Atomic { .. } => "sync-atomic",
            SyncCall::Load => "sync-load",
            SyncCall::AtHome { .. } => "sync-at-home",
        }
    }
}

/// The `weft:chain` operations of a thread away from home; what would
/// block (an await) is a try, and the worker polls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainCall {
    Input,
    SetOutput(Vec<u8>),
    Call { name: String, input: Vec<u8> },
    TryAwait { id: u32 },
    TryAwaitAll { ids: Vec<u32> },
    Output { id: u32 },
}

/// What a [`ChainCall`] gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainAnswer {
    Done,
    Bytes(Vec<u8>),
    Id(u32),
    /// An exit code, or `None` while the call runs.
    Code(Option<i32>),
    Codes(Option<Vec<i32>>),
}

/// The operations of `GlobalTier`, as a remote thread calls them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GlobalCall {
    Get {
        key: String,
    },
    GetRange {
        key: String,
        offset: u64,
        len: u32,
    },
    Set {
        key: String,
        value: Vec<u8>,
    },
    SetRanges {
        key: String,
        len: u64,
        ranges: Vec<(u64, Vec<u8>)>,
    },
    Delete {
        key: String,
    },
    Append {
        key: String,
        record: Vec<u8>,
    },
    AppendedCount {
        key: String,
    },
    ReadAppended {
        key: String,
        index: u32,
    },
    ClearAppended {
        key: String,
    },
    /// A lock for thread `tid`, waiting at most `wait_ms`.
    Lock {
        key: String,
        write: bool,
        wait_ms: u64,
        tid: u32,
    },
    Unlock {
        key: String,
        write: bool,
        tid: u32,
    },
}

impl GlobalCall {
    /// The thread a lock call is for.
    pub fn thread(&self) -> Option<u32> {
        match self {
            GlobalCall::Lock { tid, .. } | GlobalCall::Unlock { tid, .. } => Some(*tid),
            _ => None,
        }
    }

    /// Whether it changes what others see: a thread that made such a call
    /// cannot simply run again.
    pub fn has_effects(&self) -> bool {
        !matches!(
            self,
            GlobalCall::Get { .. }
                | GlobalCall::GetRange { .. }
                | GlobalCall::AppendedCount { .. }
                | GlobalCall::ReadAppended { .. }
        )
    }
}

/// What a [`GlobalCall`] gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GlobalAnswer {
    Done,
    Value(Option<Vec<u8>>),
    Bytes(Vec<u8>),
    Count(u32),
}

/// Home's answer to a [`HomeRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HomeReply {
    /// A chunk for the arena. `dirty`: it held data before, so the worker
    /// zeroes it in the thread's memory and snapshot, as home did on its
    /// side.
    Chunk {
        start: u32,
        len: u32,
        dirty: bool,
    },
    /// No memory left for it (the guest's `malloc` fails).
    NoChunk,
    /// The new thread's id.
    Thread(u32),
    /// The arena an address belongs to (0: none).
    Arena(u32),
    /// No more threads (`max-threads`).
    NoThread,
    Done,
    /// A global tier operation's answer, or its `state-error` code.
    Global(Result<GlobalAnswer, u8>),
    /// A `weft:chain` operation's answer, or its `call-error` code.
    Chain(Result<ChainAnswer, u8>),
    /// Home could not serve the request.
    Refused(String),
    /// The preview1 `fdstat` bytes, or the errno.
    FdStat(Result<Vec<u8>, u16>),
    /// A sync call's result (an errno, a value), and what the thread's
    /// copy takes from home: `weft-snapshot` wire diffs against the copy
    /// of its snapshot both ends keep, applied in order.
    Synced {
        value: i64,
        updates: Vec<Vec<u8>>,
    },
    /// The program has ended (this sync call may be what ended it: a
    /// deadlock, a conflict, a failed merge); the thread stops.
    ProgramEnded,
    /// A clock's nanoseconds, or `None` where it has none (an ended
    /// thread's).
    Nanos(Option<u64>),
    /// A WASI call's errno, and what it wrote into the thread's memory (a
    /// `weft-snapshot` wire diff against the thread's memory as it sent
    /// the call; the thread's own writes, to release at its next sync
    /// point).
    Wasi {
        errno: i32,
        written: Vec<u8>,
    },
    /// A merge region was registered, or why not (`region-error` code).
    Region(Result<(), u8>),
}

/// A home request or reply as bytes.
pub fn encode_home<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).expect("plain enums always serialise")
}

/// A home request or reply from bytes, used whole.
pub fn decode_home<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, EnvelopeError> {
    match postcard::take_from_bytes(bytes) {
        Ok((message, [])) => Ok(message),
        _ => Err(EnvelopeError::Header("home call")),
    }
}

const ZERO_PAGE: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

/// The pages of `next` that may differ from `base` (found by page
/// identity, so cheap when both were cut from one running image), as a
/// snapshot with `next`'s size and globals; a page `next` no longer has is
/// sent as zeros. `None` when the delta would not be smaller.
pub fn delta(base: &Snapshot, next: &Snapshot) -> Option<Snapshot> {
    if base.module != next.module || base.memory_pages > next.memory_pages {
        return None;
    }
    let changed = next.changed_pages(base);
    if changed.len() >= next.page_count() {
        return None;
    }
    let mut delta = Snapshot::from_pages(
        next.module,
        next.memory_pages,
        Vec::new(),
        next.globals.clone(),
        next.regions.clone(),
    );
    for index in changed {
        delta.set_page(index, Some(next.page(index).unwrap_or(&ZERO_PAGE)));
    }
    Some(delta)
}

/// `base` with `delta`'s pages, size and globals: the snapshot [`delta`]
/// was cut from. Unchanged pages are shared with `base`.
pub fn apply_delta(base: &Snapshot, delta: &Snapshot) -> Result<Snapshot, EnvelopeError> {
    if base.module != delta.module {
        return Err(EnvelopeError::Delta("its base is of another module"));
    }
    if base.memory_pages > delta.memory_pages {
        return Err(EnvelopeError::Delta("it shrinks the memory"));
    }
    let mut next = base.clone();
    next.memory_pages = delta.memory_pages;
    next.globals = delta.globals.clone();
    next.regions = delta.regions.clone();
    for (index, page) in delta.pages() {
        let zero = page.iter().all(|&b| b == 0);
        next.set_page(index, (!zero).then_some(page));
    }
    Ok(next)
}

/// Splits buffered output into its writes: `(fd, bytes)`. Refuses a
/// record that runs past the end or names another fd.
pub fn output_records(mut output: &[u8]) -> Result<Vec<(u8, &[u8])>, &'static str> {
    let mut records = Vec::new();
    while let [fd, rest @ ..] = output {
        if *fd != 1 && *fd != 2 {
            return Err("output for an fd other than stdout or stderr");
        }
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or("truncated output record")?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err("truncated output record");
        }
        records.push((*fd, &rest[..len]));
        output = &rest[len..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use weft_snapshot::{GlobalValue, ModuleHash, wire};

    use super::*;

    fn id(seq: u64) -> SnapshotId {
        SnapshotId {
            home: [0x5a; 16],
            seq,
        }
    }

    fn header(base: Option<u64>) -> CallHeader {
        CallHeader {
            tid: 7,
            start_arg: 0x1000,
            arena: 0x20_0000,
            snapshot_id: id(42),
            base: base.map(id),
            stoppable: base.is_some(),
        }
    }

    fn snapshot_of(memory: &[u8]) -> Snapshot {
        Snapshot::capture(ModuleHash::of(b"m"), memory, None, vec![], vec![])
    }

    /// What the receiver gets from a packed call payload.
    fn unpacked(payload: &CallPayload) -> Vec<u8> {
        let wire = match payload {
            CallPayload::Packed(packed, _) => {
                let (body, tag) = packed.pieces();
                [body, tag].concat()
            }
            CallPayload::Encoded(bytes) => {
                let packed = crate::payload::pack(bytes);
                let (body, tag) = packed.pieces();
                [body, tag].concat()
            }
        };
        crate::payload::unpack(wire, u64::MAX).unwrap()
    }

    #[test]
    fn a_call_packed_from_its_pages_unpacks_to_its_encoding() {
        // Integer tables compress: packed from the pages, never encoded
        // whole.
        let mut memory = vec![0u8; 4 * weft_snapshot::WASM_PAGE_SIZE as usize];
        for (i, byte) in memory.iter_mut().enumerate() {
            *byte = (i % 7) as u8;
        }
        let snapshot = snapshot_of(&memory);
        let payload = pack_call_snapshot(&header(None), &snapshot);
        let encoded = encode_call_snapshot(&header(None), &snapshot);
        assert!(matches!(payload, CallPayload::Packed(..)), "{payload:?}");
        assert_eq!(payload.len(), encoded.len());
        assert_eq!(unpacked(&payload), encoded);
        // Random pages go encoded as they are.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for byte in memory.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *byte = x as u8;
        }
        let snapshot = snapshot_of(&memory);
        let payload = pack_call_snapshot(&header(None), &snapshot);
        assert!(matches!(payload, CallPayload::Encoded(_)));
        assert_eq!(
            unpacked(&payload),
            encode_call_snapshot(&header(None), &snapshot)
        );
    }

    #[test]
    fn payloads_round_trip_and_damage_is_refused() {
        let call = encode_call(&header(Some(41)), b"snapshot bytes");
        assert_eq!(
            decode_call(&call).unwrap(),
            (header(Some(41)), &b"snapshot bytes"[..])
        );
        let result = encode_result(b"diff", b"out", 1234);
        assert_eq!(
            decode_result(&result).unwrap(),
            (&b"diff"[..], &b"out"[..], 1234)
        );

        assert_eq!(decode_call(&result), Err(EnvelopeError::BadMagic("call")));
        let mut future = call.clone();
        future[4] = 4;
        assert_eq!(decode_call(&future), Err(EnvelopeError::Version("call", 4)));
        for cut in 0..7 {
            assert!(decode_call(&call[..cut]).is_err(), "cut at {cut}");
        }
        // Read from a stream, the header leaves the stream at the snapshot.
        let mut stream = &call[..];
        assert_eq!(read_call_header(&mut stream), Ok(header(Some(41))));
        assert_eq!(stream, b"snapshot bytes");
        let header_len = call.len() - b"snapshot bytes".len();
        for cut in 0..header_len {
            assert!(read_call_header(&mut &call[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            read_call_header(&mut &result[..]),
            Err(EnvelopeError::BadMagic("call"))
        );
        assert_eq!(
            read_call_header(&mut &future[..]),
            Err(EnvelopeError::Version("call", 4))
        );
        // A diff length past the end.
        let mut long = encode_result(b"diff", b"", 0);
        long[5] = 100;
        assert_eq!(decode_result(&long), Err(EnvelopeError::Truncated));
    }

    #[test]
    fn home_calls_round_trip_and_trailing_bytes_are_refused() {
        for request in [
            HomeRequest::ArenaGrow { size: 1 << 20 },
            HomeRequest::ArenaRelease { start: 0x40_0000 },
            HomeRequest::ArenaNew { size: 1 << 20 },
            HomeRequest::NewThread,
            HomeRequest::ThreadEnded { tid: 7 },
            HomeRequest::FdStat { fd: 1 },
            HomeRequest::Global(GlobalCall::SetRanges {
                key: "k".into(),
                len: 9,
                ranges: vec![(1, vec![2, 3])],
            }),
            HomeRequest::Global(GlobalCall::Lock {
                key: "k".into(),
                write: true,
                wait_ms: 60_000,
                tid: 3,
            }),
            HomeRequest::Sync {
                tid: 4,
                call: SyncCall::CondWait {
                    cond: 16,
                    mutex: 32,
                    flags: 1,
                    timeout_ns: -1,
                },
                released: vec![1, 2, 3],
                output: vec![1, 1, 0, 0, 0, b'x'],
                cpu_ns: 30_000_000,
                detached: false,
            },
            HomeRequest::Sync {
                tid: 5,
                call: SyncCall::Atomic {
                    op: 16,
                    bytes: 8,
                    addr: 64,
                    value: u64::MAX,
                    expected: 0,
                },
                released: vec![],
                output: vec![],
                cpu_ns: 0,
                detached: true,
            },
            HomeRequest::Exit {
                tid: 2,
                code: 3,
                output: vec![],
            },
            HomeRequest::CpuClock { id: 0x8000_0001 },
            HomeRequest::ArenaLookup { addr: 0x40_0010 },
            HomeRequest::Wasi {
                tid: 6,
                name: "fd_read".into(),
                args: vec![3, 1024, 1, -8],
                unreleased: vec![],
                output: vec![],
            },
            HomeRequest::MergeRegion(weft_snapshot::MergeRegion {
                addr: 0x1000,
                len: 16,
                op: weft_snapshot::MergeOp::Sum,
                ty: weft_snapshot::ElemType::I64,
            }),
        ] {
            let bytes = encode_home(&request);
            assert_eq!(decode_home::<HomeRequest>(&bytes), Ok(request));
            let mut long = bytes.clone();
            long.push(0);
            assert!(decode_home::<HomeRequest>(&long).is_err());
        }
        let reply = HomeReply::Chunk {
            start: 1,
            len: 2,
            dirty: true,
        };
        assert_eq!(decode_home::<HomeReply>(&encode_home(&reply)), Ok(reply));
        let reply = HomeReply::Synced {
            value: -1,
            updates: vec![vec![9; 3], vec![]],
        };
        assert_eq!(decode_home::<HomeReply>(&encode_home(&reply)), Ok(reply));
        for reply in [HomeReply::Region(Ok(())), HomeReply::Region(Err(3))] {
            assert_eq!(decode_home::<HomeReply>(&encode_home(&reply)), Ok(reply));
        }
        assert!(decode_home::<HomeReply>(&[200]).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever a peer sends, decoding answers with a value or an
        /// error, never a panic; what decodes survives a round trip
        /// (postcard also takes over-long varints, so bytes may differ).
        #[test]
        fn any_bytes_decode_or_fail_cleanly(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            cut in 0usize..64,
        ) {
            let mut call = encode_call(&header(Some(3)), b"snap");
            let at = cut % call.len();
            call[at] ^= bytes.first().copied().unwrap_or(1) | 1;
            for input in [&bytes[..], &call[..]] {
                if let Ok((header, snapshot)) = decode_call(input) {
                    let again = encode_call(&header, snapshot);
                    proptest::prop_assert_eq!(decode_call(&again), Ok((header, snapshot)));
                }
                let _ = decode_result(input);
                let _ = decode_home::<HomeRequest>(input);
                let _ = decode_home::<HomeReply>(input);
            }
        }
    }

    fn page(fill: u8) -> [u8; PAGE_SIZE] {
        [fill; PAGE_SIZE]
    }

    #[test]
    fn a_delta_rebuilds_the_snapshot_from_its_base() {
        let module = ModuleHash([3; 32]);
        let base = Snapshot::from_pages(
            module,
            1,
            (0..8).map(|i| (i, page(i as u8 + 1))).collect(),
            vec![(0, GlobalValue::I32(5))],
            Vec::new(),
        );
        let mut next = base.clone();
        next.memory_pages = 2;
        next.set_page(1, Some(&page(9)));
        next.set_page(2, None);
        next.set_page(20, Some(&page(7)));
        next.globals = vec![(0, GlobalValue::I32(6))];

        let delta = delta(&base, &next).expect("three pages of eight changed");
        assert_eq!(delta.page_count(), 3, "pages 1, 2 and 20");
        // Through the wire, as a worker gets it.
        let limits = wire::Limits::default();
        let delta = wire::decode_snapshot(&wire::encode_snapshot(&delta), &limits).unwrap();
        let rebuilt = apply_delta(&base, &delta).unwrap();
        assert_eq!(rebuilt.to_memory(), next.to_memory());
        assert_eq!(rebuilt.globals, next.globals);
        assert_eq!(rebuilt.memory_pages, 2);
        assert_eq!(rebuilt.page(0), base.page(0));

        let other =
            Snapshot::from_pages(ModuleHash([4; 32]), 4, Vec::new(), Vec::new(), Vec::new());
        assert!(apply_delta(&other, &delta).is_err());
        assert!(delta_is_none_when_everything_changed(&base));
    }

    proptest::proptest! {
        /// A delta, when there is one, is never larger on the wire than
        /// the whole snapshot it stands for.
        #[test]
        fn a_delta_is_smaller_than_the_whole(
            changes in proptest::collection::vec((0u32..24, proptest::prelude::any::<Option<u8>>()), 0..24),
        ) {
            let module = ModuleHash([1; 32]);
            let base = Snapshot::from_pages(
                module,
                1,
                (0..12).map(|i| (i, page(i as u8 + 1))).collect(),
                Vec::new(),
                Vec::new(),
            );
            let mut next = base.clone();
            for (index, fill) in changes {
                next.set_page(index, fill.map(page).as_ref());
            }
            if let Some(delta) = delta(&base, &next) {
                let (delta, whole) = (wire::encode_snapshot(&delta), wire::encode_snapshot(&next));
                proptest::prop_assert!(delta.len() < whole.len(), "{} >= {}", delta.len(), whole.len());
            }
        }
    }

    fn delta_is_none_when_everything_changed(base: &Snapshot) -> bool {
        // Equal contents, but no page shared: nothing to save.
        let fresh = Snapshot::from_pages(
            base.module,
            1,
            (0..8).map(|i| (i, page(i as u8 + 1))).collect(),
            Vec::new(),
            Vec::new(),
        );
        delta(base, &fresh).is_none()
    }

    #[test]
    fn output_records_round_trip_and_refuse_damage() {
        let mut output = Vec::new();
        for (fd, text) in [(1u8, &b"one"[..]), (2, b""), (1, b"three")] {
            output.push(fd);
            output.extend_from_slice(&(text.len() as u32).to_le_bytes());
            output.extend_from_slice(text);
        }
        assert_eq!(
            output_records(&output).unwrap(),
            vec![(1, &b"one"[..]), (2, &b""[..]), (1, &b"three"[..])]
        );
        for cut in 1..output.len() {
            let whole_records = [0, 8, 13, output.len()];
            assert_eq!(
                output_records(&output[..cut]).is_ok(),
                whole_records.contains(&cut),
                "cut at {cut}"
            );
        }
        assert!(output_records(&[3, 0, 0, 0, 0]).is_err());
        assert!(output_records(&[1, 255, 255, 255, 255]).is_err());
    }
}
