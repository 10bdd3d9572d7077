#![no_main]
//! One OSV record (JSON or YAML) and the PEP 440 matching over what it says.
use assay_advisories::osv::parse_record;
use assay_advisories::version::{Requirement, intervals, is_affected, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(a)) = parse_record(data) {
        let v = parse("1.2.3").unwrap();
        let r = Requirement::parse("<1.16").unwrap();
        for af in &a.affected {
            let _ = intervals(af);
            let _ = is_affected(&v, af);
            let _ = r.verdict(af);
        }
    }
});
