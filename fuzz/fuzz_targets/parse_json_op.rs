//! The engine's `parse_json` op on one line: see `queuelab_fuzz::parse_json_line`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| queuelab_fuzz::parse_json_line(data));
