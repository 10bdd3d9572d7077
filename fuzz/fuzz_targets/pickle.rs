#![no_main]
use assay_formats::pickle::{PickleLimits, analyze};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = analyze(data, &PickleLimits::default());
});
