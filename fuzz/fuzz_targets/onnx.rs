#![no_main]
use assay_formats::onnx::{OnnxLimits, parse, sniff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sniff(data);
    let _ = parse(data, &OnnxLimits::default());
});
