#![no_main]
use assay_formats::gguf::{Value, looks_like, parse_partial};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like(data);
    let (g, _) = parse_partial(data);
    for kv in &g.kvs {
        if let Value::Array(a) = &kv.value {
            for s in a.strings() {
                std::hint::black_box(s);
            }
        }
    }
});
