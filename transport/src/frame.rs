//! Frames on a stream: `WFTP`, version, kind, body length (u32, little
//! endian), body. Every length is bounded before anything is allocated;
//! an unknown version or kind is an error, never skipped.

/// Stream magic.
pub const MAGIC: [u8; 4] = *b"WFTP";
/// Protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes before a frame's body.
pub const HEADER_LEN: usize = 10;

/// Bounds on what a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body.
    pub max_body: u32,
    /// Largest snapshot, module or diff one call may carry.
    pub max_payload: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1 << 20,
            max_payload: 4 << 30,
        }
    }
}

/// One frame: its kind and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("not a weft stream (bad magic)")]
    BadMagic,
    #[error("protocol version {0} (this host speaks {VERSION})")]
    Version(u8),
    #[error("frame body of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u32, max: u32 },
    #[error("the stream ended inside a frame")]
    Truncated,
}

/// Appends frame `kind` with `body` to `out`.
pub fn encode(kind: u8, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&header(kind, body.len()));
    out.extend_from_slice(body);
}

/// The header of a frame of `kind` whose body is `len` bytes: for senders
/// that write large bodies from where they lie instead of copying them.
pub fn header(kind: u8, len: usize) -> [u8; HEADER_LEN] {
    let len = u32::try_from(len).expect("frame bodies are bounded by their senders");
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC);
    header[4] = VERSION;
    header[5] = kind;
    header[6..].copy_from_slice(&len.to_le_bytes());
    header
}

/// Splits a byte stream into frames as bytes arrive in any pieces.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    limits: Limits,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    pub fn new(limits: Limits) -> Self {
        Self {
            buffer: Vec::new(),
            limits,
            failed: None,
        }
    }

    /// Adds bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed. After an
    /// error the stream is unusable: every later call returns it again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.parse() {
            Err(e) => {
                self.failed = Some(e.clone());
                self.buffer = Vec::new();
                Err(e)
            }
            other => other,
        }
    }

    fn parse(&mut self) -> Result<Option<Frame>, FrameError> {
        let have = self.buffer.len();
        // Check what has arrived of the header at once: a bad magic is
        // reported without waiting for the rest.
        if self.buffer[..have.min(4)] != MAGIC[..have.min(4)] {
            return Err(FrameError::BadMagic);
        }
        if have > 4 && self.buffer[4] != VERSION {
            return Err(FrameError::Version(self.buffer[4]));
        }
        if have < HEADER_LEN {
            return Ok(None);
        }
        let kind = self.buffer[5];
        let len = u32::from_le_bytes(self.buffer[6..10].try_into().expect("4 bytes"));
        if len > self.limits.max_body {
            return Err(FrameError::TooLarge {
                len,
                max: self.limits.max_body,
            });
        }
        let end = HEADER_LEN + len as usize;
        if have < end {
            return Ok(None);
        }
        let body = self.buffer[HEADER_LEN..end].to_vec();
        self.buffer.drain(..end);
        Ok(Some(Frame { kind, body }))
    }

    /// The stream ended: an error if it ended inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        match (&self.failed, self.buffer.is_empty()) {
            (Some(e), _) => Err(e.clone()),
            (None, true) => Ok(()),
            (None, false) => Err(FrameError::Truncated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_frames() -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(3, b"hello", &mut bytes);
        encode(7, b"", &mut bytes);
        bytes
    }

    #[test]
    fn frames_arrive_whole_whatever_the_pieces() {
        let bytes = two_frames();
        for piece in 1..=bytes.len() {
            let mut decoder = FrameDecoder::new(Limits::default());
            let mut frames = Vec::new();
            for chunk in bytes.chunks(piece) {
                decoder.push(chunk);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            assert_eq!(
                frames,
                [
                    Frame {
                        kind: 3,
                        body: b"hello".to_vec()
                    },
                    Frame {
                        kind: 7,
                        body: vec![]
                    }
                ],
                "pieces of {piece}"
            );
            decoder.finish().unwrap();
        }
    }

    #[test]
    fn bad_streams_fail_and_stay_failed() {
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.push(b"HTTP/1.1");
        assert_eq!(decoder.next_frame(), Err(FrameError::BadMagic));
        decoder.push(&two_frames());
        assert_eq!(decoder.next_frame(), Err(FrameError::BadMagic));

        let mut future = two_frames();
        future[4] = 2;
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.push(&future[..5]);
        assert_eq!(decoder.next_frame(), Err(FrameError::Version(2)));

        let mut huge = Vec::new();
        huge.extend_from_slice(&MAGIC);
        huge.extend_from_slice(&[VERSION, 1]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut decoder = FrameDecoder::new(Limits {
            max_body: 16,
            max_payload: 16,
        });
        decoder.push(&huge);
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge {
                len: u32::MAX,
                max: 16
            })
        );

        let bytes = two_frames();
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.push(&bytes[..bytes.len() - 3]);
        assert!(decoder.next_frame().unwrap().is_some());
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::Truncated));
    }
}
