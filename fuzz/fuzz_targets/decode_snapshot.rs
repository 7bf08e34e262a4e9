//! Any bytes: decoding a snapshot returns a snapshot or an error, never
//! panics; a decoded snapshot re-encodes to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weft_snapshot::fuzz::decode_snapshot(data);
});
