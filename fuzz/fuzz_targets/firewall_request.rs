//! The firewall's request side on arbitrary JSON bodies: never panics, and a body it does
//! not block stays a JSON object.
#![no_main]
use assay_firewall::Policy;
use assay_firewall::proxy::request::{Endpoint, inspect};
use assay_firewall::scan::Scanners;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static SCANNERS: LazyLock<Scanners> = LazyLock::new(|| Scanners::new(Policy::default()));

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let endpoint = match which % 3 {
        0 => Endpoint::Chat,
        1 => Endpoint::Completions,
        _ => Endpoint::Embeddings,
    };
    if let Ok(plan) = inspect(&SCANNERS, endpoint, &mut body) {
        assert!(body.is_object());
        let _ = plan.vault.restore("[EMAIL_1] [PHONE_1]");
    }
});
