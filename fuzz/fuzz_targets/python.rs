#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        if let Ok(a) = assay_scan::analyse_python(src) {
            for h in &a.hits {
                assert!(h.offset <= src.len());
            }
        }
    }
});
