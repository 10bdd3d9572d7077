#![no_main]
use assay_formats::zip::{ZipLimits, extract_to, parse};
use libfuzzer_sys::fuzz_target;

/// Small per-entry output limit: enough to exercise the decompressors, small enough
/// that every input stays fast.
const EXTRACT_LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(ar) = parse(data, &ZipLimits::default()) {
        for e in &ar.entries {
            let _ = extract_to(data, e, std::io::sink(), EXTRACT_LIMIT);
        }
    }
});
