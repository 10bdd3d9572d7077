#![no_main]
use assay_formats::keras::{KerasLimits, analyze_config, marshal, parse_json};
use libfuzzer_sys::fuzz_target;

// Bytes are tried as a config.json (Python-compatible JSON, then the walk) and as a
// marshalled code object (Lambda bytecode).
fuzz_target!(|data: &[u8]| {
    if let Ok(v) = parse_json(data) {
        let _ = analyze_config(&v, &KerasLimits::default());
    }
    let _ = marshal::summarize_code(data);
});
