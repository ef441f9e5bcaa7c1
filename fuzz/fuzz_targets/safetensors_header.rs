//! Any bytes through the safetensors header parser: `Ok` or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = model::import::safetensors::parse(data) {
        assert!(!e.is_empty());
    }
});
