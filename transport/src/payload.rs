//! How a call's payloads (snapshots, modules, diffs, calls home and their
//! answers) travel: as they are, or zstd-compressed where that pays.
//!
//! ```text
//! empty payload: no bytes
//! otherwise:     body | tag (one byte: 0 the payload itself, 1 a zstd frame)
//! ```
//!
//! The tag trails the body so the receiver drops it without moving the
//! body, and a payload sent as it is goes out from where it lies. Memory
//! holds patterns compressors love (zeroed structs, repeated values,
//! integer tables): a snapshot of a program's matrices can shrink tenfold,
//! while random bytes cost one sampled attempt. Decoding is bounded: the
//! output never grows past the receiver's limit, and bytes after the zstd
//! frame are refused.

/// Payloads smaller than this go as they are: a compression would save
/// less than a round of its own overhead.
pub const MIN_COMPRESSED: usize = 4 << 10;
/// How much of a large payload is tried first: when that does not shrink
/// by a sixteenth, neither will the rest.
const SAMPLE: usize = 64 << 10;
/// zstd's fastest standard level: bulk memory compresses at hundreds of
/// MB/s per core, faster than most links carry it.
const LEVEL: i32 = 1;

const RAW: u8 = 0;
const ZSTD: u8 = 1;

/// Why a received payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("unknown payload encoding {0}")]
    UnknownEncoding(u8),
    #[error("malformed compressed payload: {0}")]
    Malformed(String),
    #[error("compressed payload unpacks past the limit of {0} bytes")]
    TooLarge(u64),
    #[error("{0} bytes follow the compressed payload")]
    Trailing(usize),
}

/// A payload ready to send: its body and the tag after it.
#[derive(Debug)]
pub enum Packed<'a> {
    /// The payload as it is (an empty payload has no tag).
    Raw(&'a [u8]),
    /// A zstd frame of it, its tag already after it.
    Compressed(Vec<u8>),
}

impl Packed<'_> {
    /// Bytes on the wire, tag included.
    pub fn wire_len(&self) -> usize {
        match self {
            Self::Raw([]) => 0,
            Self::Raw(body) => body.len() + 1,
            Self::Compressed(wire) => wire.len(),
        }
    }

    /// The body, then the tag (empty for an empty payload).
    pub fn pieces(&self) -> (&[u8], &'static [u8]) {
        match self {
            Self::Raw([]) => (&[], &[]),
            Self::Raw(body) => (body, &[RAW]),
            Self::Compressed(wire) => (wire, &[]),
        }
    }
}

/// Packs `payload`, compressed when that saves at least a sixteenth.
pub fn pack(payload: &[u8]) -> Packed<'_> {
    if payload.len() < MIN_COMPRESSED {
        return Packed::Raw(payload);
    }
    if payload.len() > 2 * SAMPLE {
        let sample = &payload[..SAMPLE];
        match zstd::bulk::compress(sample, LEVEL) {
            Ok(frame) if pays(sample.len(), frame.len()) => {}
            _ => return Packed::Raw(payload),
        }
    }
    match zstd::bulk::compress(payload, LEVEL) {
        Ok(mut frame) if pays(payload.len(), frame.len()) => {
            frame.push(ZSTD);
            Packed::Compressed(frame)
        }
        _ => Packed::Raw(payload),
    }
}

/// Whether a payload of which `sample` is a part is worth compressing (as
/// [`pack`] decides from its own sample).
pub fn worth_compressing(sample: &[u8]) -> bool {
    sample.len() >= MIN_COMPRESSED
        && matches!(zstd::bulk::compress(sample, LEVEL), Ok(frame) if pays(sample.len(), frame.len()))
}

fn pays(raw: usize, compressed: usize) -> bool {
    compressed < raw - raw / 16
}

/// Small writes are gathered up to this before they reach the compressor.
const STAGING: usize = 64 << 10;

/// A postcard flavor that compresses what is serialised into it, as
/// [`pack`] compresses a payload, without the payload ever existing whole
/// (a snapshot goes from its pages straight into the compressor). Its
/// output is the packed payload and the payload's own length.
pub struct Compressing {
    encoder: zstd::stream::write::Encoder<'static, Vec<u8>>,
    staged: Vec<u8>,
    len: usize,
}

impl std::fmt::Debug for Compressing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressing")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Compressing {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            encoder: zstd::stream::write::Encoder::new(Vec::new(), LEVEL)?,
            staged: Vec::with_capacity(STAGING),
            len: 0,
        })
    }

    fn flush_staged(&mut self) -> std::io::Result<()> {
        use std::io::Write as _;
        self.encoder.write_all(&self.staged)?;
        self.staged.clear();
        Ok(())
    }
}

impl postcard::ser_flavors::Flavor for Compressing {
    type Output = (Packed<'static>, usize);

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        use std::io::Write as _;
        let failed = |_| postcard::Error::SerializeBufferFull;
        self.len += data.len();
        if self.staged.len() + data.len() > STAGING {
            self.flush_staged().map_err(failed)?;
        }
        if data.len() >= STAGING / 2 {
            self.encoder.write_all(data).map_err(failed)
        } else {
            self.staged.extend_from_slice(data);
            Ok(())
        }
    }

    fn finalize(mut self) -> postcard::Result<Self::Output> {
        let failed = |_| postcard::Error::SerializeBufferFull;
        self.flush_staged().map_err(failed)?;
        let mut frame = self.encoder.finish().map_err(failed)?;
        frame.push(ZSTD);
        Ok((Packed::Compressed(frame), self.len))
    }
}

/// The payload `wire` carries (as [`pack`] made it), at most `limit` bytes.
pub fn unpack(wire: Vec<u8>, limit: u64) -> Result<Vec<u8>, PayloadError> {
    Arrived::check(wire, limit)?.unpack()
}

/// A payload as it arrived, still packed: its tag and framing checked,
/// its body unpacked only as it is read. A snapshot's payload may be
/// hundreds of MiB that compress to little; read through [`Arrived::reader`]
/// it never exists whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrived {
    /// The body, its tag taken off.
    body: Vec<u8>,
    compressed: bool,
    limit: u64,
}

impl Arrived {
    /// Checks `wire` (as [`pack`] made it) for a payload of at most
    /// `limit` bytes: a known tag, and for a zstd frame, no bytes after it
    /// and no declared size past the limit.
    pub fn check(mut wire: Vec<u8>, limit: u64) -> Result<Self, PayloadError> {
        let compressed = match wire.pop() {
            None | Some(RAW) => false,
            Some(ZSTD) => true,
            Some(other) => return Err(PayloadError::UnknownEncoding(other)),
        };
        if compressed {
            let framed = zstd::zstd_safe::find_frame_compressed_size(&wire)
                .map_err(|code| malformed(&zstd::zstd_safe::get_error_name(code)))?;
            if framed != wire.len() {
                return Err(PayloadError::Trailing(wire.len().saturating_sub(framed)));
            }
            if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(&wire)
                && size > limit
            {
                return Err(PayloadError::TooLarge(limit));
            }
        }
        Ok(Self {
            body: wire,
            compressed,
            limit,
        })
    }

    /// Whether the payload is known to be empty (a frame that does not
    /// say its size is read to find out).
    pub fn is_empty(&self) -> bool {
        match self.compressed {
            false => self.body.is_empty(),
            true => matches!(
                zstd::zstd_safe::get_frame_content_size(&self.body),
                Ok(Some(0))
            ),
        }
    }

    /// Bytes that arrived, tag excluded.
    pub fn wire_len(&self) -> usize {
        self.body.len()
    }

    /// The payload, unpacked as it is read: past the limit, a read fails.
    pub fn reader(&self) -> Result<Box<dyn std::io::Read + '_>, PayloadError> {
        if !self.compressed {
            return Ok(Box::new(&self.body[..]));
        }
        let decoder = zstd::stream::read::Decoder::with_buffer(&self.body[..])
            .map_err(|e| malformed(&e))?
            .single_frame();
        Ok(Box::new(Limited {
            inner: decoder,
            left: self.limit,
            limit: self.limit,
        }))
    }

    /// The whole payload.
    pub fn unpack(self) -> Result<Vec<u8>, PayloadError> {
        use std::io::Read as _;
        if !self.compressed {
            return Ok(self.body);
        }
        // The output grows as it decodes; a size the sender wrote is
        // believed only up to the limit (it saves the copies of a growing
        // buffer), and then only as address space until bytes arrive.
        let mut out = Vec::new();
        if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(&self.body) {
            let _ = out.try_reserve(size.min(self.limit) as usize);
        }
        let limit = self.limit;
        self.reader()?.read_to_end(&mut out).map_err(|e| {
            match e.get_ref().and_then(|e| e.downcast_ref::<PayloadError>()) {
                Some(error) => error.clone(),
                None => malformed(&e),
            }
        })?;
        debug_assert!(out.len() as u64 <= limit);
        Ok(out)
    }
}

fn malformed(e: &dyn std::fmt::Display) -> PayloadError {
    PayloadError::Malformed(e.to_string())
}

/// A reader that fails once more than `limit` bytes come out of `inner`.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: std::io::Read> std::io::Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte more than is left, so going past the limit is seen.
        let room = buf
            .len()
            .min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..room])?;
        if n as u64 > self.left {
            // A kind of its own, so that a reader above (the snapshot
            // decoder) can tell the limit from a corrupt frame.
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                PayloadError::TooLarge(self.limit),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(packed: &Packed<'_>) -> Vec<u8> {
        let (body, tag) = packed.pieces();
        [body, tag].concat()
    }

    #[test]
    fn small_and_random_payloads_go_as_they_are() {
        assert_eq!(pack(b"").wire_len(), 0);
        assert_eq!(unpack(Vec::new(), 0), Ok(Vec::new()));
        let small = vec![7u8; 100];
        let packed = pack(&small);
        assert!(matches!(packed, Packed::Raw(_)));
        assert_eq!(packed.wire_len(), 101);
        assert_eq!(unpack(wire(&packed), 100), Ok(small));
        // xorshift bytes: incompressible.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let random: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let packed = pack(&random);
        assert!(matches!(packed, Packed::Raw(_)));
        assert_eq!(unpack(wire(&packed), u64::MAX), Ok(random));
    }

    #[test]
    fn patterned_memory_shrinks_and_comes_back_whole() {
        let table: Vec<u8> = (0..1_000_000u32)
            .flat_map(|i| (f64::from(i % 7) - 3.0).to_le_bytes())
            .collect();
        let packed = pack(&table);
        assert!(
            packed.wire_len() < table.len() / 10,
            "{}",
            packed.wire_len()
        );
        assert_eq!(unpack(wire(&packed), table.len() as u64), Ok(table));
    }

    #[test]
    fn hostile_payloads_get_errors_within_the_limit() {
        let zeros = vec![0u8; 1 << 20];
        let packed = wire(&pack(&zeros));
        assert!(packed.len() < 1000);
        // A bomb: unpacks to far more than the receiver takes.
        assert_eq!(
            unpack(packed.clone(), 4096),
            Err(PayloadError::TooLarge(4096))
        );
        let mut trailing = packed.clone();
        trailing.insert(trailing.len() - 1, 0);
        assert_eq!(unpack(trailing, 1 << 20), Err(PayloadError::Trailing(1)));
        let mut torn = packed.clone();
        torn.remove(torn.len() / 2);
        assert!(unpack(torn, 1 << 20).is_err());
        assert_eq!(
            unpack(vec![1, 2, 3, 9], 10),
            Err(PayloadError::UnknownEncoding(9))
        );
        assert!(matches!(
            unpack(vec![1, 2, 3, ZSTD], 10),
            Err(PayloadError::Malformed(_))
        ));
    }
}
