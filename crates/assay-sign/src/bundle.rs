//! The Sigstore bundle (media type v0.3) around a DSSE envelope, written and read as the
//! reference's `sign_sigstore_pb` / `sign_ec_key` / `sign_certificate` modules do:
//!
//! ```json
//! {"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",
//!  "verificationMaterial":{"publicKey":{"hint":"<sha256 of the PEM public key>"},"tlogEntries":[]},
//!  "dsseEnvelope":{"payload":"<base64 statement>","payloadType":"application/vnd.in-toto+json",
//!                  "signatures":[{"sig":"<base64 DER ECDSA>","keyid":""}]}}
//! ```
//!
//! With a certificate, `verificationMaterial` holds `x509CertificateChain.certificates`
//! (`rawBytes`, base64 DER; signing certificate first) instead of `publicKey`. The
//! signature is ECDSA over the DSSE pre-authentication encoding of the payload, with
//! the hash that goes with the curve.

use crate::cert;
use crate::error::{KeyError, VerifyError};
use crate::keys::{Curve, PrivateKey, PublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Largest bundle read (a manifest of millions of files still fits).
pub const MAX_BUNDLE_BYTES: usize = 1 << 30;

/// DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// What signs: a bare key, or a key with its certificate chain.
#[derive(Debug, Clone)]
pub enum Signer {
    Key(PrivateKey),
    Certificate {
        key: PrivateKey,
        /// DER certificates, the signing certificate first, then the rest of the chain.
        chain: Vec<Vec<u8>>,
    },
}

impl Signer {
    /// A certificate signer. `signing_certificate` is the key's certificate; when it is
    /// `None`, the certificate in `chain` that holds the key's public key is used.
    pub fn with_certificates(
        key: PrivateKey,
        signing_certificate: Option<Vec<u8>>,
        chain: Vec<Vec<u8>>,
    ) -> Result<Signer, KeyError> {
        let public = key.public_key();
        let (leaf, rest) = match signing_certificate {
            Some(leaf) => {
                if cert::public_key_of(&leaf)? != public {
                    return Err(KeyError::CertificateKeyMismatch);
                }
                (leaf, chain)
            }
            None => {
                let pos = chain
                    .iter()
                    .position(|c| cert::public_key_of(c).is_ok_and(|k| k == public))
                    .ok_or(KeyError::NoSigningCertificate)?;
                let mut rest = chain;
                let leaf = rest.remove(pos);
                (leaf, rest)
            }
        };
        let mut all = vec![leaf];
        all.extend(rest);
        Ok(Signer::Certificate { key, chain: all })
    }

    fn key(&self) -> &PrivateKey {
        match self {
            Signer::Key(k) | Signer::Certificate { key: k, .. } => k,
        }
    }
}

/// What a verifier trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The signer's public key.
    Key(PublicKey),
    /// Root certificates (DER); the bundle's chain must lead to one of them.
    Roots(Vec<Vec<u8>>),
}

/// Who signed, as established by verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerIdentity {
    Key {
        curve: Curve,
        hint: String,
    },
    Certificate {
        curve: Curve,
        subject: String,
        issuer: String,
        /// Hex SHA-256 of the signing certificate's DER.
        fingerprint: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleJson {
    media_type: String,
    verification_material: MaterialJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsse_envelope: Option<EnvelopeJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_signature: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MaterialJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<PublicKeyIdJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x509_certificate_chain: Option<ChainJson>,
    /// A single certificate: Sigstore keyless bundles (v0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<serde_json::Value>,
    #[serde(default)]
    tlog_entries: Vec<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct PublicKeyIdJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ChainJson {
    #[serde(default)]
    certificates: Vec<CertJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertJson {
    raw_bytes: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeJson {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<SignatureJson>,
}

#[derive(Serialize, Deserialize)]
struct SignatureJson {
    sig: String,
    #[serde(default)]
    keyid: String,
}

/// Signs `payload` (an in-toto statement) into a bundle, as compact JSON.
pub(crate) fn sign(payload: &[u8], signer: &Signer) -> String {
    let sig = signer.key().sign(&pae(PAYLOAD_TYPE, payload));
    let verification_material = match signer {
        Signer::Key(k) => MaterialJson {
            public_key: Some(PublicKeyIdJson {
                hint: Some(k.public_key().hint()),
            }),
            x509_certificate_chain: None,
            certificate: None,
            tlog_entries: Vec::new(),
        },
        Signer::Certificate { chain, .. } => MaterialJson {
            public_key: None,
            x509_certificate_chain: Some(ChainJson {
                certificates: chain
                    .iter()
                    .map(|c| CertJson {
                        raw_bytes: B64.encode(c),
                    })
                    .collect(),
            }),
            certificate: None,
            tlog_entries: Vec::new(),
        },
    };
    let bundle = BundleJson {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material,
        dsse_envelope: Some(EnvelopeJson {
            payload: B64.encode(payload),
            payload_type: PAYLOAD_TYPE.into(),
            signatures: vec![SignatureJson {
                sig: B64.encode(sig),
                keyid: String::new(),
            }],
        }),
        message_signature: None,
    };
    // Plain structs of strings always serialize.
    serde_json::to_string(&bundle).unwrap_or_default()
}

/// Checks the bundle's signature against `trust` and returns the signed payload.
pub(crate) fn open(bundle: &[u8], trust: &Trust) -> Result<(Vec<u8>, SignerIdentity), VerifyError> {
    if bundle.len() > MAX_BUNDLE_BYTES {
        return Err(VerifyError::MalformedBundle(format!(
            "larger than {MAX_BUNDLE_BYTES} bytes"
        )));
    }
    let b: BundleJson = serde_json::from_slice(bundle)
        .map_err(|e| VerifyError::MalformedBundle(format!("not a Sigstore bundle: {e}")))?;
    if b.media_type != BUNDLE_MEDIA_TYPE {
        return Err(VerifyError::MediaType {
            found: b.media_type,
            expected: BUNDLE_MEDIA_TYPE,
        });
    }
    let m = &b.verification_material;
    if m.certificate.is_some() {
        return Err(VerifyError::Keyless);
    }
    let Some(env) = &b.dsse_envelope else {
        return Err(if b.message_signature.is_some() {
            VerifyError::MalformedBundle(
                "it holds a message signature, not a DSSE envelope (not a model signature)".into(),
            )
        } else {
            VerifyError::MalformedBundle("no dsseEnvelope".into())
        });
    };
    let payload = B64
        .decode(env.payload.as_bytes())
        .map_err(|e| VerifyError::MalformedBundle(format!("payload is not base64: {e}")))?;
    let first = env
        .signatures
        .first()
        .ok_or_else(|| VerifyError::MalformedBundle("the envelope has no signature".into()))?;
    let sig = B64
        .decode(first.sig.as_bytes())
        .map_err(|e| VerifyError::MalformedBundle(format!("signature is not base64: {e}")))?;
    // The signature covers the payload type too, so a changed type fails here.
    let signed = pae(&env.payload_type, &payload);
    let identity = match (trust, &m.public_key, &m.x509_certificate_chain) {
        (Trust::Key(key), Some(id), None) => {
            let given_hint = key.hint();
            if let Some(bundle_hint) = id.hint.as_deref().filter(|h| !h.is_empty())
                && bundle_hint != given_hint
            {
                return Err(VerifyError::WrongKey {
                    bundle_hint: bundle_hint.to_string(),
                    given_hint,
                });
            }
            key.verify(&signed, &sig)
                .map_err(VerifyError::BadSignature)?;
            SignerIdentity::Key {
                curve: key.curve(),
                hint: given_hint,
            }
        }
        (Trust::Roots(roots), None, Some(chain)) => {
            let ders = chain
                .certificates
                .iter()
                .map(|c| B64.decode(c.raw_bytes.as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    VerifyError::MalformedBundle(format!("a certificate is not base64: {e}"))
                })?;
            let leaf = cert::verify_chain(&ders, roots)?;
            leaf.public_key
                .verify(&signed, &sig)
                .map_err(VerifyError::BadSignature)?;
            SignerIdentity::Certificate {
                curve: leaf.public_key.curve(),
                subject: leaf.subject,
                issuer: leaf.issuer,
                fingerprint: leaf.fingerprint,
            }
        }
        (Trust::Key(_), None, Some(_)) => return Err(VerifyError::NeedsCertificates),
        (Trust::Roots(_), Some(_), None) => return Err(VerifyError::NeedsKey),
        (_, Some(_), Some(_)) => {
            return Err(VerifyError::MalformedBundle(
                "it holds both a public key and a certificate chain".into(),
            ));
        }
        (_, None, None) => {
            return Err(VerifyError::MalformedBundle(
                "no verification material (public key or certificate chain)".into(),
            ));
        }
    };
    if env.payload_type != PAYLOAD_TYPE {
        return Err(VerifyError::PayloadType(env.payload_type.clone()));
    }
    Ok((payload, identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec() {
        assert_eq!(
            pae(PAYLOAD_TYPE, b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}".to_vec()
        );
    }
}
