//! Pipeline specs as TOML (`application/toml` bodies, `queuelab run spec.toml`): see `queuelab_fuzz::spec`.
#![no_main]

use shared::spec::SpecFormat;

libfuzzer_sys::fuzz_target!(|data: &[u8]| queuelab_fuzz::spec(data, SpecFormat::Toml));
