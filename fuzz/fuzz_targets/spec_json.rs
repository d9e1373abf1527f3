//! Pipeline specs as JSON (`POST /api/v1/jobs` with `application/json`): see `queuelab_fuzz::spec`.
#![no_main]

use shared::spec::SpecFormat;

libfuzzer_sys::fuzz_target!(|data: &[u8]| queuelab_fuzz::spec(data, SpecFormat::Json));
