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

/// Feeds `data` to every decoder of a chained call's payloads, as a
/// worker and a home meet them from a hostile peer: the call envelope,
/// the result envelope and its output records, and the calls and replies
/// between a thread away from home and its home. Returns how many
/// decoded.
pub fn envelopes(data: &[u8]) -> usize {
    use crate::envelope::{
        HomeReply, HomeRequest, decode_call, decode_home, decode_result, output_records,
    };
    let mut decoded = 0;
    decoded += usize::from(decode_call(data).is_ok());
    if let Ok((_, output, _)) = decode_result(data) {
        decoded += 1;
        decoded += usize::from(output_records(output).is_ok());
    }
    decoded += usize::from(decode_home::<HomeRequest>(data).is_ok());
    decoded += usize::from(decode_home::<HomeReply>(data).is_ok());
    decoded += usize::from(output_records(data).is_ok());
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

    /// `input` with `edits` made: bit flips, cuts, insertions, overwrites.
    fn mutated(mut input: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
        for &(at, op, byte) in edits {
            let at = at % input.len();
            match op {
                0 => input[at] ^= 1 << (byte % 8),
                1 => input.truncate(at.max(1)),
                2 => input.insert(at, byte),
                _ => input[at] = byte,
            }
        }
        input
    }

    /// Real payloads of each kind, to mutate.
    fn envelope_seeds() -> Vec<Vec<u8>> {
        use crate::envelope::{
            CallHeader, HomeReply, HomeRequest, SnapshotId, encode_call, encode_home, encode_result,
        };
        let header = CallHeader {
            tid: 3,
            start_arg: 64,
            arena: 1 << 20,
            snapshot_id: SnapshotId {
                home: [9; 16],
                seq: 4,
            },
            base: None,
            stoppable: false,
        };
        let mut output = vec![1u8];
        output.extend_from_slice(&3u32.to_le_bytes());
        output.extend_from_slice(b"hi\n");
        vec![
            encode_call(&header, &[1, 2, 3]),
            encode_result(&[4, 5], &output, 77),
            encode_home(&HomeRequest::NewThread),
            encode_home(&HomeRequest::ArenaGrow { size: 4096 }),
            encode_home(&HomeReply::Thread(5)),
        ]
    }

    #[test]
    fn the_envelope_seeds_decode() {
        for seed in envelope_seeds() {
            assert!(envelopes(&seed) >= 1, "{seed:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Damaged payloads of every kind decode or fail, never panic.
        #[test]
        fn mutated_envelopes_never_panic(
            which in 0usize..5,
            edits in proptest::collection::vec((any::<usize>(), 0u8..4, any::<u8>()), 1..5)
        ) {
            envelopes(&mutated(envelope_seeds()[which].clone(), &edits));
        }

        /// Bit flips, cuts, insertions and overwrites of a real stream.
        #[test]
        fn mutated_streams_never_panic(
            edits in proptest::collection::vec((any::<usize>(), 0u8..4, any::<u8>()), 1..5)
        ) {
            worker_stream(&mutated(seed(), &edits));
        }
    }
}
