//! WebSocket text frames from clients, as the hub parses them: see `queuelab_fuzz::ws_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| queuelab_fuzz::ws_frame(data));
