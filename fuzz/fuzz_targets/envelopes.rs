//! Any bytes as a chained call's payloads (call, result, output records,
//! calls home and their replies): decoded or refused, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weft_transport::fuzz::envelopes(data);
});
