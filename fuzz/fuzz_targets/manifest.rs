#![no_main]
//! Every manifest parser of the vulnerability stage on the same bytes.
use assay_advisories::manifest::{Kind, parse};
use libfuzzer_sys::fuzz_target;

const KINDS: [Kind; 5] = [
    Kind::Requirements,
    Kind::Pyproject,
    Kind::SetupCfg,
    Kind::PipfileLock,
    Kind::Conda,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in KINDS {
        let p = parse(kind, text);
        // What a requirement lets pip install is computed for every one parsed.
        for d in &p.requirements {
            let _ = d.requirement.is_pinned();
        }
    }
});
