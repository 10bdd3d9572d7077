#![no_main]
use assay_formats::safetensors::{looks_like, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like(data);
    let _ = parse(data);
});
