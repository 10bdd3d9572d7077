#![no_main]
//! The tensor view over arbitrary bytes read as PytorchLegacy (see common/tensor.rs).
#[path = "common/tensor.rs"]
mod common;
use assay_tensor::TensorFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::view(TensorFormat::PytorchLegacy, data);
});
