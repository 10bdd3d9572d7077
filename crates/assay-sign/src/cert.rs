//! Offline certificate-chain verification for the `certificate` signing method, doing
//! what the reference does with an OpenSSL `X509Store`:
//!
//! - the bundle carries the signing certificate first, then intermediates (untrusted);
//! - the verifier supplies trusted certificates (`--certificate-chain`); the chain must
//!   end at a trusted, self-issued certificate (OpenSSL without `PARTIAL_CHAIN`, so
//!   trusting only an intermediate fails with "unable to get issuer certificate");
//! - validity is checked at the signing certificate's `notBefore` (the reference sets
//!   the store's time to it), for every certificate on the path;
//! - issuers must be CAs (`basicConstraints cA`, `keyUsage keyCertSign` when present,
//!   path length), unknown critical extensions are refused;
//! - the signing certificate must allow signing: `keyUsage digitalSignature` or
//!   `extendedKeyUsage codeSigning`.
//!
//! Certificates must be signed with ECDSA (SHA-256/384/512 on P-256/384/521); other
//! algorithms are reported as unsupported rather than skipped.

use crate::error::{KeyError, VerifyError};
use crate::keys::{HashAlg, PublicKey};
use crate::pem;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier as Oid;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

/// Longest certificate path followed.
pub const MAX_CHAIN_DEPTH: usize = 10;
/// Most certificates taken from a bundle.
pub const MAX_BUNDLE_CERTIFICATES: usize = 32;

const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const EXT_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
const EXT_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
const KP_CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Extensions that carry no constraint Assay would have to enforce.
const HARMLESS_EXTENSIONS: [Oid; 5] = [
    Oid::new_unwrap("2.5.29.14"), // subjectKeyIdentifier
    Oid::new_unwrap("2.5.29.35"), // authorityKeyIdentifier
    Oid::new_unwrap("2.5.29.17"), // subjectAltName
    Oid::new_unwrap("2.5.29.18"), // issuerAltName
    Oid::new_unwrap("2.5.29.32"), // certificatePolicies
];

/// Reads every `CERTIFICATE` block of a PEM file, as DER.
pub fn certificates_from_pem(text: &[u8]) -> Result<Vec<Vec<u8>>, KeyError> {
    let ders: Vec<Vec<u8>> = pem::parse(text)?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der)
        .collect();
    if ders.is_empty() {
        return Err(KeyError::NoPem {
            expected: "a `CERTIFICATE` block",
        });
    }
    for d in &ders {
        parse(d).map_err(|detail| KeyError::Malformed {
            what: "certificate",
            detail,
        })?;
    }
    Ok(ders)
}

/// The public key a DER certificate holds.
pub(crate) fn public_key_of(der: &[u8]) -> Result<PublicKey, KeyError> {
    let c = parse(der).map_err(|detail| KeyError::Malformed {
        what: "certificate",
        detail,
    })?;
    spki_key(&c)
}

fn parse(der: &[u8]) -> Result<Certificate, String> {
    Certificate::from_der(der).map_err(|e| e.to_string())
}

fn spki_key(c: &Certificate) -> Result<PublicKey, KeyError> {
    let spki = c
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| KeyError::Malformed {
            what: "certificate public key",
            detail: e.to_string(),
        })?;
    PublicKey::from_spki_der(&spki)
}

/// The verified signing certificate.
pub(crate) struct Leaf {
    pub public_key: PublicKey,
    pub subject: String,
    pub issuer: String,
    pub fingerprint: String,
}

struct Cert {
    der: Vec<u8>,
    c: Certificate,
    subject: Vec<u8>,
    issuer: Vec<u8>,
}

impl Cert {
    fn new(der: &[u8], role: &str) -> Result<Cert, VerifyError> {
        let c = parse(der).map_err(|e| {
            VerifyError::MalformedBundle(format!("{role} certificate is malformed: {e}"))
        })?;
        let subject = c.tbs_certificate.subject.to_der().unwrap_or_default();
        let issuer = c.tbs_certificate.issuer.to_der().unwrap_or_default();
        Ok(Cert {
            der: der.to_vec(),
            c,
            subject,
            issuer,
        })
    }

    fn name(&self) -> String {
        self.c.tbs_certificate.subject.to_string()
    }

    fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    fn extension<T: for<'a> Decode<'a>>(&self, oid: Oid) -> Result<Option<T>, VerifyError> {
        let Some(exts) = &self.c.tbs_certificate.extensions else {
            return Ok(None);
        };
        match exts.iter().find(|e| e.extn_id == oid) {
            None => Ok(None),
            Some(e) => T::from_der(e.extn_value.as_bytes())
                .map(Some)
                .map_err(|err| {
                    VerifyError::UntrustedChain(format!(
                        "certificate '{}' has a malformed extension {oid}: {err}",
                        self.name()
                    ))
                }),
        }
    }

    /// Checks that `issuer` signed this certificate.
    fn signed_by(&self, issuer: &Cert) -> Result<(), String> {
        let hash = match self.c.signature_algorithm.oid {
            o if o == ECDSA_SHA256 => HashAlg::Sha256,
            o if o == ECDSA_SHA384 => HashAlg::Sha384,
            o if o == ECDSA_SHA512 => HashAlg::Sha512,
            o => {
                return Err(format!(
                    "certificate '{}' is signed with algorithm {o}; Assay verifies ECDSA-signed chains only",
                    self.name()
                ));
            }
        };
        let key = spki_key(&issuer.c).map_err(|e| format!("issuer '{}': {e}", issuer.name()))?;
        let tbs = self.c.tbs_certificate.to_der().map_err(|e| e.to_string())?;
        let sig = self
            .c
            .signature
            .as_bytes()
            .ok_or_else(|| "signature has unused bits".to_string())?;
        key.verify_with_hash(hash, &tbs, sig).map_err(|e| {
            format!(
                "'{}' was not signed by '{}': {e}",
                self.name(),
                issuer.name()
            )
        })
    }

    fn valid_at(&self, t: std::time::Duration) -> bool {
        let v = &self.c.tbs_certificate.validity;
        v.not_before.to_unix_duration() <= t && t <= v.not_after.to_unix_duration()
    }
}

/// Verifies `bundle_chain` (signing certificate first) against `roots`.
pub(crate) fn verify_chain(
    bundle_chain: &[Vec<u8>],
    roots: &[Vec<u8>],
) -> Result<Leaf, VerifyError> {
    if bundle_chain.is_empty() {
        return Err(VerifyError::MalformedBundle(
            "the certificate chain is empty".into(),
        ));
    }
    if bundle_chain.len() > MAX_BUNDLE_CERTIFICATES {
        return Err(VerifyError::MalformedBundle(format!(
            "more than {MAX_BUNDLE_CERTIFICATES} certificates"
        )));
    }
    let leaf = Cert::new(&bundle_chain[0], "the signing")?;
    let untrusted = bundle_chain[1..]
        .iter()
        .map(|d| Cert::new(d, "a chain"))
        .collect::<Result<Vec<_>, _>>()?;
    let trusted = roots
        .iter()
        .map(|d| Cert::new(d, "a trusted"))
        .collect::<Result<Vec<_>, _>>()?;
    let is_trusted = |c: &Cert| trusted.iter().any(|t| t.der == c.der);
    let at = leaf
        .c
        .tbs_certificate
        .validity
        .not_before
        .to_unix_duration();

    // Build the path upwards, trusted issuers first (OpenSSL's default).
    let mut path: Vec<&Cert> = vec![&leaf];
    loop {
        let current = path[path.len() - 1];
        if is_trusted(current) && current.self_issued() {
            break;
        }
        if current.self_issued() {
            return Err(VerifyError::UntrustedChain(format!(
                "self-signed certificate '{}' is not among the trusted certificates",
                current.name()
            )));
        }
        if path.len() > MAX_CHAIN_DEPTH {
            return Err(VerifyError::UntrustedChain(format!(
                "the chain is longer than {MAX_CHAIN_DEPTH} certificates"
            )));
        }
        let mut last_err = None;
        let issuer = trusted
            .iter()
            .chain(untrusted.iter())
            .filter(|c| c.subject == current.issuer && !std::ptr::eq(*c, current))
            .find(|c| match current.signed_by(c) {
                Ok(()) => true,
                Err(e) => {
                    last_err = Some(e);
                    false
                }
            });
        match (issuer, last_err) {
            (Some(i), _) => path.push(i),
            (None, Some(e)) => return Err(VerifyError::UntrustedChain(e)),
            (None, None) => {
                return Err(VerifyError::UntrustedChain(if is_trusted(current) {
                    format!(
                        "unable to get issuer certificate of trusted '{}' (pass the root certificate)",
                        current.name()
                    )
                } else {
                    format!(
                        "unable to get local issuer certificate: no trusted certificate issued '{}'",
                        current.name()
                    )
                }));
            }
        }
    }

    for (i, c) in path.iter().enumerate() {
        if !c.valid_at(at) {
            return Err(VerifyError::UntrustedChain(format!(
                "certificate '{}' was not valid when the signing certificate was issued",
                c.name()
            )));
        }
        check_critical_extensions(c)?;
        if i == 0 {
            continue;
        }
        // Issuers: must be CAs, within their path length.
        let bc: Option<BasicConstraints> = c.extension(EXT_BASIC_CONSTRAINTS)?;
        let is_v1_root = c.c.tbs_certificate.extensions.is_none() && c.self_issued();
        match bc {
            Some(b) if b.ca => {
                // Intermediates below this one (self-issued ones do not count).
                let below = path[1..i].iter().filter(|p| !p.self_issued()).count();
                if let Some(max) = b.path_len_constraint
                    && below > usize::from(max)
                {
                    return Err(VerifyError::UntrustedChain(format!(
                        "path length constraint of '{}' exceeded",
                        c.name()
                    )));
                }
            }
            None if is_v1_root => {}
            _ => {
                return Err(VerifyError::UntrustedChain(format!(
                    "'{}' issued a certificate but is not a CA",
                    c.name()
                )));
            }
        }
        if let Some(ku) = c.extension::<KeyUsage>(EXT_KEY_USAGE)?
            && !ku.key_cert_sign()
        {
            return Err(VerifyError::UntrustedChain(format!(
                "'{}' is not allowed to sign certificates (keyUsage)",
                c.name()
            )));
        }
    }

    // The reference's own check on the signing certificate.
    let ku: Option<KeyUsage> = leaf.extension(EXT_KEY_USAGE)?;
    let eku: Option<ExtendedKeyUsage> = leaf.extension(EXT_EXT_KEY_USAGE)?;
    let may_sign = ku.is_some_and(|k| k.digital_signature())
        || eku.is_some_and(|e| e.0.contains(&KP_CODE_SIGNING));
    if !may_sign {
        return Err(VerifyError::UntrustedChain(format!(
            "signing certificate '{}' cannot be used for signing (needs keyUsage digitalSignature or extendedKeyUsage codeSigning)",
            leaf.name()
        )));
    }
    let public_key = spki_key(&leaf.c).map_err(|e| {
        VerifyError::UntrustedChain(format!("signing certificate '{}': {e}", leaf.name()))
    })?;
    Ok(Leaf {
        public_key,
        subject: leaf.name(),
        issuer: leaf.c.tbs_certificate.issuer.to_string(),
        fingerprint: hex::encode(Sha256::digest(&leaf.der)),
    })
}

fn check_critical_extensions(c: &Cert) -> Result<(), VerifyError> {
    let known = [EXT_BASIC_CONSTRAINTS, EXT_KEY_USAGE, EXT_EXT_KEY_USAGE];
    for e in c.c.tbs_certificate.extensions.iter().flatten() {
        if e.critical && !known.contains(&e.extn_id) && !HARMLESS_EXTENSIONS.contains(&e.extn_id) {
            return Err(VerifyError::UntrustedChain(format!(
                "certificate '{}' has an unsupported critical extension {}",
                c.name(),
                e.extn_id
            )));
        }
    }
    Ok(())
}
