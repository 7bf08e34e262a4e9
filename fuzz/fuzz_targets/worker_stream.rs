//! Any bytes as a call's stream: a worker answers or fails the call, never
//! panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weft_transport::fuzz::worker_stream(data);
});
