//! Entry points for `fuzz/` (cargo-fuzz), also run as a smoke test here:
//! bytes from a hostile peer never panic the host.

use crate::call::Worker;
use crate::frame::{FrameDecoder, Limits};
use crate::message::Message;

/// Feeds `data` to a worker as the bytes of a call's stream, in pieces
/// whose sizes the data picks. Returns whether any message decoded.
pub fn worker_stream(data: &[u8]) -> bool {
    let limits = Limits {
        max_body: 4096,
        max_payload: 1 << 16,
    };
    let Some((&split, stream)) = data.split_first() else {
        return false;
    };
    let mut decoder = FrameDecoder::new(limits);
    let mut worker = Worker::new(limits);
    let mut out = Vec::new();
    let mut decoded = false;
    for piece in stream.chunks(split as usize + 1) {
        decoder.push(piece);
        while let Ok(Some(frame)) = decoder.next_frame() {
            if let Ok(message) = Message::decode(frame) {
                decoded = true;
                worker.on_message(message, &|module| module[0] % 2 == 0, &mut out);
            }
        }
    }
    let _ = decoder.finish();
    decoded
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::call::Requester;

    /// A whole call's stream: run, snapshot, module, cancel.
    fn seed() -> Vec<u8> {
        let mut seed = vec![7u8];
        Requester::start([2; 32], &[5; 300], Limits::default(), &mut seed);
        Message::Module { len: 3 }.encode(&mut seed);
        Message::Data(vec![1, 2, 3]).encode(&mut seed);
        Message::Cancel.encode(&mut seed);
        seed
    }

    #[test]
    fn the_seed_decodes() {
        assert!(worker_stream(&seed()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Bit flips, cuts, insertions and overwrites of a real stream.
        #[test]
        fn mutated_streams_never_panic(
            edits in proptest::collection::vec((any::<usize>(), 0u8..4, any::<u8>()), 1..5)
        ) {
            let mut input = seed();
            for (at, op, byte) in edits {
                let at = at % input.len();
                match op {
                    0 => input[at] ^= 1 << (byte % 8),
                    1 => input.truncate(at.max(1)),
                    2 => input.insert(at, byte),
                    _ => input[at] = byte,
                }
            }
            worker_stream(&input);
        }
    }
}
