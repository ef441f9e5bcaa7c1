//! Any bytes through the GGUF header and tensor-table parser: `Ok` or an error, never a panic;
//! every tensor range it accepts lies inside the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match model::import::gguf::parse(data) {
        Ok(g) => {
            for t in &g.tensors {
                if let Some((s, e)) = t.range {
                    assert!(s <= e && e <= data.len());
                }
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
