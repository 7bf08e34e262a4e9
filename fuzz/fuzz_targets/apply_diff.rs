//! Any bytes: a diff decodes or fails cleanly; a decoded diff applies and
//! merges without panicking, and merging equals applying.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weft_snapshot::fuzz::apply_diff(data);
});
