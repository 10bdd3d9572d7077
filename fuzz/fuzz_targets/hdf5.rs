#![no_main]
use assay_formats::hdf5::datasets::{Storage, datasets};
use assay_formats::hdf5::{Hdf5Limits, root_attributes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Hdf5Limits::default();
    let _ = root_attributes(data, &limits);
    if let Ok(found) = datasets(data, &limits) {
        for d in found.datasets {
            if let Storage::Contiguous(r) | Storage::Compact(r) = d.storage {
                assert!(r.start <= r.end && r.end <= data.len() as u64);
            }
        }
    }
});
