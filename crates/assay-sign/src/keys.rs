//! ECDSA keys on P-256, P-384 and P-521, as the reference tool uses them: the message
//! hash follows the curve (SHA-256, SHA-384, SHA-512), signatures are DER, and a public
//! key is named by its *hint*, the hex SHA-256 of its SubjectPublicKeyInfo PEM text.

use crate::error::KeyError;
use crate::pem;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::fmt;

/// The curves the OpenSSF model-signing format accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// `P-256`, `P-384` or `P-521`.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ECDSA {}", self.name())
    }
}

/// A hash named in a certificate's signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub(crate) fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => Sha256::digest(msg).to_vec(),
            HashAlg::Sha384 => Sha384::digest(msg).to_vec(),
            HashAlg::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }
}

/// A private signing key.
#[derive(Clone)]
pub struct PrivateKey(Private);

#[derive(Clone)]
enum Private {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.curve())
    }
}

impl PrivateKey {
    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`, with
    /// or without a preceding `EC PARAMETERS` block). Encrypted keys are refused.
    pub fn from_pem(text: &[u8]) -> Result<PrivateKey, KeyError> {
        let blocks = pem::parse(text)?;
        for b in &blocks {
            match b.label.as_str() {
                "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
                "EC PRIVATE KEY" if b.encrypted => return Err(KeyError::Encrypted),
                "EC PRIVATE KEY" => return Self::from_sec1_der(&b.der),
                "PRIVATE KEY" => return Self::from_pkcs8_der(&b.der),
                "RSA PRIVATE KEY" | "DSA PRIVATE KEY" | "OPENSSH PRIVATE KEY" => {
                    return Err(KeyError::Unsupported(format!("a `{}`", b.label)));
                }
                _ => {}
            }
        }
        Err(KeyError::NoPem {
            expected: "a `PRIVATE KEY` or `EC PRIVATE KEY` block",
        })
    }

    fn from_sec1_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
            return Ok(PrivateKey(Private::P256(k.into())));
        }
        if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
            return Ok(PrivateKey(Private::P384(k.into())));
        }
        if let Ok(k) = p521::SecretKey::from_sec1_der(der) {
            return Self::p521(k);
        }
        Err(KeyError::Unsupported(
            "an EC private key on another curve, or a malformed one".into(),
        ))
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey(Private::P256(k.into())));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey(Private::P384(k.into())));
        }
        if let Ok(k) = p521::SecretKey::from_pkcs8_der(der) {
            return Self::p521(k);
        }
        Err(KeyError::Unsupported(
            "a PKCS#8 key that is not ECDSA on P-256, P-384 or P-521".into(),
        ))
    }

    fn p521(k: p521::SecretKey) -> Result<PrivateKey, KeyError> {
        p521::ecdsa::SigningKey::from_bytes(&k.to_bytes())
            .map(|k| PrivateKey(Private::P521(k)))
            .map_err(|_| KeyError::Malformed {
                what: "P-521 private key",
                detail: "scalar out of range".into(),
            })
    }

    pub fn curve(&self) -> Curve {
        match &self.0 {
            Private::P256(_) => Curve::P256,
            Private::P384(_) => Curve::P384,
            Private::P521(_) => Curve::P521,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(match &self.0 {
            Private::P256(k) => Public::P256(*k.verifying_key()),
            Private::P384(k) => Public::P384(*k.verifying_key()),
            Private::P521(k) => Public::P521(p521::ecdsa::VerifyingKey::from(k)),
        })
    }

    /// ECDSA over `msg` with the curve's hash, DER-encoded.
    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match &self.0 {
            Private::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            Private::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            Private::P521(k) => {
                let s: p521::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
        }
    }
}

/// A public verification key.
#[derive(Clone)]
pub struct PublicKey(Public);

#[derive(Clone)]
enum Public {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der() == other.spki_der()
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, hint {})", self.curve(), self.hint())
    }
}

impl PublicKey {
    /// Reads a PEM SubjectPublicKeyInfo (`PUBLIC KEY`) block.
    pub fn from_pem(text: &[u8]) -> Result<PublicKey, KeyError> {
        let blocks = pem::parse(text)?;
        match blocks.iter().find(|b| b.label == "PUBLIC KEY") {
            Some(b) => Self::from_spki_der(&b.der),
            None if blocks.iter().any(|b| b.label.contains("PRIVATE KEY")) => {
                Err(KeyError::PrivateNotPublic)
            }
            None => Err(KeyError::NoPem {
                expected: "a `PUBLIC KEY` block",
            }),
        }
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey(Public::P256(k.into())));
        }
        if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey(Public::P384(k.into())));
        }
        if let Ok(k) = p521::PublicKey::from_public_key_der(der) {
            return p521::ecdsa::VerifyingKey::from_affine(*k.as_affine())
                .map(|k| PublicKey(Public::P521(k)))
                .map_err(|_| KeyError::Malformed {
                    what: "P-521 public key",
                    detail: "point at infinity".into(),
                });
        }
        Err(KeyError::Unsupported(
            "a public key that is not ECDSA on P-256, P-384 or P-521".into(),
        ))
    }

    pub fn curve(&self) -> Curve {
        match &self.0 {
            Public::P256(_) => Curve::P256,
            Public::P384(_) => Curve::P384,
            Public::P521(_) => Curve::P521,
        }
    }

    /// DER SubjectPublicKeyInfo with the uncompressed point, as OpenSSL writes it.
    pub fn spki_der(&self) -> Vec<u8> {
        let doc = match &self.0 {
            Public::P256(k) => p256::PublicKey::from(k).to_public_key_der(),
            Public::P384(k) => p384::PublicKey::from(k).to_public_key_der(),
            Public::P521(k) => p521::PublicKey::from_affine(*k.as_affine())
                .map_err(|_| p256::pkcs8::spki::Error::KeyMalformed)
                .and_then(|k| k.to_public_key_der()),
        };
        // Encoding a valid point into a fixed-shape SPKI cannot fail.
        doc.map(|d| d.as_bytes().to_vec()).unwrap_or_default()
    }

    pub fn to_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.spki_der())
    }

    /// The key hint the reference tool records in a bundle: hex SHA-256 of the PEM text.
    pub fn hint(&self) -> String {
        hex::encode(Sha256::digest(self.to_pem().as_bytes()))
    }

    /// Verifies a DER ECDSA signature over `msg`, hashed with the curve's hash.
    pub(crate) fn verify(&self, msg: &[u8], der_sig: &[u8]) -> Result<(), &'static str> {
        let not_der = "the signature is not a DER ECDSA signature for this curve";
        let ok = match &self.0 {
            Public::P256(k) => {
                let s = p256::ecdsa::Signature::from_der(der_sig).map_err(|_| not_der)?;
                k.verify(msg, &s)
            }
            Public::P384(k) => {
                let s = p384::ecdsa::Signature::from_der(der_sig).map_err(|_| not_der)?;
                k.verify(msg, &s)
            }
            Public::P521(k) => {
                let s = p521::ecdsa::Signature::from_der(der_sig).map_err(|_| not_der)?;
                k.verify(msg, &s)
            }
        };
        ok.map_err(|_| "ECDSA verification failed")
    }

    /// Verifies a DER ECDSA signature over `msg` hashed with `hash`, whatever the curve
    /// (certificates may pair, say, a P-384 issuer with SHA-256).
    pub(crate) fn verify_with_hash(
        &self,
        hash: HashAlg,
        msg: &[u8],
        der_sig: &[u8],
    ) -> Result<(), &'static str> {
        let mut prehash = hash.digest(msg);
        let bad = "ECDSA verification failed";
        match &self.0 {
            Public::P256(k) => {
                let s = p256::ecdsa::Signature::from_der(der_sig).map_err(|_| bad)?;
                k.verify_prehash(&prehash, &s).map_err(|_| bad)
            }
            Public::P384(k) => {
                let s = p384::ecdsa::Signature::from_der(der_sig).map_err(|_| bad)?;
                k.verify_prehash(&prehash, &s).map_err(|_| bad)
            }
            Public::P521(k) => {
                // The ecdsa crate wants a prehash of at least half the field (33 bytes);
                // leading zeros keep a SHA-256 value's integer unchanged (FIPS 186-4 6.4).
                while prehash.len() < 33 {
                    prehash.insert(0, 0);
                }
                let s = p521::ecdsa::Signature::from_der(der_sig).map_err(|_| bad)?;
                k.verify_prehash(&prehash, &s).map_err(|_| bad)
            }
        }
    }
}
