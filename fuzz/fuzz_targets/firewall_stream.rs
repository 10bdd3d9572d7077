//! The firewall's SSE scanner on hostile upstream bytes, split at arbitrary points:
//! never panics, always ends with exactly one `[DONE]`, and every event it emits is JSON.
#![no_main]
use assay_firewall::Policy;
use assay_firewall::proxy::request::Endpoint;
use assay_firewall::proxy::response::OutputScan;
use assay_firewall::proxy::stream::StreamScanner;
use assay_firewall::redact::Vault;
use assay_firewall::scan::Scanners;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static SCANNERS: LazyLock<Scanners> = LazyLock::new(|| Scanners::new(Policy::default()));

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut vault = Vault::new(true);
    vault.placeholder("EMAIL", "a@b.org");
    let endpoint = if split & 1 == 0 {
        Endpoint::Chat
    } else {
        Endpoint::Completions
    };
    let mut sc = StreamScanner::new(
        endpoint,
        OutputScan::new(&SCANNERS, Some("CNRY-0123456789abcdef")),
        &vault,
    );
    let step = (split as usize >> 1).max(1);
    let mut out = Vec::new();
    for chunk in rest.chunks(step) {
        out.extend(sc.feed(chunk));
    }
    out.extend(sc.finish());
    let text = String::from_utf8(out).expect("output is UTF-8");
    let mut done = 0;
    for ev in text.split("\n\n").filter(|e| !e.is_empty()) {
        let d = ev.strip_prefix("data: ").expect("only data events");
        if d == "[DONE]" {
            done += 1;
        } else {
            serde_json::from_str::<serde_json::Value>(d).expect("events are JSON");
        }
    }
    assert_eq!(done, 1, "{text}");
});
