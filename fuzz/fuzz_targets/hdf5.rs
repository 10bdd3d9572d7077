#![no_main]
use assay_formats::hdf5::{Hdf5Limits, root_attributes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = root_attributes(data, &Hdf5Limits::default());
});
