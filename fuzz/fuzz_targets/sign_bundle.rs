//! Signature bundles are untrusted input: the JSON, base64, DSSE envelope, in-toto
//! statement, predicate and (for the certificate method) DER certificates. Opening one
//! must return an error, never panic, whatever the bytes. The first byte picks the
//! trust (key or root certificates) so both paths are reached; the same bytes are also
//! read as a statement payload, which only a valid signature would otherwise reach.
//! Seeds: crates/assay-sign/tests/data/*.sig.
#![no_main]

use assay_sign::{PublicKey, Trust, certificates_from_pem, open_statement};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/assay-sign/tests/data/"
);

fn trusts() -> &'static [Trust; 2] {
    static T: OnceLock<[Trust; 2]> = OnceLock::new();
    T.get_or_init(|| {
        let key = std::fs::read(format!("{DATA}p256.pub.pem")).unwrap();
        let root = std::fs::read(format!("{DATA}root.pem")).unwrap();
        [
            Trust::Key(PublicKey::from_pem(&key).unwrap()),
            Trust::Roots(certificates_from_pem(&root).unwrap()),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bundle)) = data.split_first() else {
        return;
    };
    let trust = &trusts()[usize::from(pick & 1)];
    let _ = open_statement(bundle, trust);
    // What follows a valid signature: the statement and its predicate.
    if let Ok(s) = assay_sign::Statement::parse(bundle) {
        let _ = s.manifest();
    }
    let _ = certificates_from_pem(bundle);
    let _ = PublicKey::from_pem(bundle);
    let _ = assay_sign::PrivateKey::from_pem(bundle);
});
