#![no_main]
use assay_formats::tar::{TarLimits, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse(data, &TarLimits::default());
});
