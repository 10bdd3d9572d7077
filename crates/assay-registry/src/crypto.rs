//! Envelope encryption of blobs at rest.
//!
//! Each tenant has a random 256-bit data key (DEK), stored wrapped (AES-256-GCM) by the
//! master key. Each blob gets a random 32-byte salt; its key is HMAC-SHA256(DEK, salt), so a
//! chunk's nonce can simply be its index (a key never encrypts two chunks with one nonce).
//! Blobs are cut into [`CHUNK`] plaintext chunks, each sealed on its own, so downloads
//! stream and `Range` requests decrypt only the chunks they touch. The chunk index and a
//! last-chunk flag are authenticated data: chunks cannot be reordered, dropped or cut off.
//!
//! Layout: `MAGIC (8) | salt (32) | plaintext size u64 BE (8) | chunk 0 | chunk 1 | ...`,
//! each chunk `ciphertext (<= CHUNK) | tag (16)`.

use hmac::{Hmac, Mac};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::Sha256;

/// Plaintext bytes per sealed chunk.
pub const CHUNK: usize = 64 * 1024;
/// AES-GCM tag length.
pub const TAG: usize = 16;
pub const MAGIC: &[u8; 8] = b"ASYBLOB1";
pub const HEADER: usize = 8 + 32 + 8;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("a key must be 32 bytes (64 hex digits)")]
    KeyLength,
    #[error("authentication failed: the data was altered or the key is wrong")]
    Auth,
    #[error("not an Assay blob")]
    Format,
}

pub type Key = [u8; 32];

pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS RNG does not fail on supported platforms; a failure here is fatal.
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b
}

pub fn parse_key(hex_text: &str) -> Result<Key, CryptoError> {
    let v = hex::decode(hex_text.trim()).map_err(|_| CryptoError::KeyLength)?;
    v.try_into().map_err(|_| CryptoError::KeyLength)
}

fn aead_key(key: &Key) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("AES-256-GCM takes a 32-byte key"))
}

/// Wraps a data key with the master key: hex(nonce | ciphertext | tag).
pub fn wrap(master: &Key, dek: &Key, tenant: &str) -> String {
    let nonce = random::<12>();
    let mut out = nonce.to_vec();
    let mut sealed = dek.to_vec();
    aead_key(master)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(tenant.as_bytes()),
            &mut sealed,
        )
        .expect("AES-GCM encryption of 32 bytes cannot fail");
    out.extend(sealed);
    hex::encode(out)
}

pub fn unwrap(master: &Key, wrapped: &str, tenant: &str) -> Result<Key, CryptoError> {
    let v = hex::decode(wrapped).map_err(|_| CryptoError::Format)?;
    if v.len() != 12 + 32 + TAG {
        return Err(CryptoError::Format);
    }
    let nonce: [u8; 12] = v[..12].try_into().map_err(|_| CryptoError::Format)?;
    let mut sealed = v[12..].to_vec();
    let plain = aead_key(master)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(tenant.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| CryptoError::Auth)?;
    <[u8; 32]>::try_from(&plain[..]).map_err(|_| CryptoError::Format)
}

/// The cipher for one blob.
pub struct BlobCipher {
    aead: LessSafeKey,
}

fn nonce(index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    // Unique: the blob key is fresh per blob (random salt) and each index seals one chunk.
    Nonce::assume_unique_for_key(n)
}

fn aad(index: u64, last: bool) -> Aad<[u8; 9]> {
    let mut a = [0u8; 9];
    a[..8].copy_from_slice(&index.to_be_bytes());
    a[8] = last as u8;
    Aad::from(a)
}

impl BlobCipher {
    pub fn new(dek: &Key, salt: &[u8; 32]) -> BlobCipher {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(dek).expect("HMAC takes keys of any length");
        mac.update(b"assay-blob-v1");
        mac.update(salt);
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        BlobCipher {
            aead: aead_key(&key),
        }
    }

    pub fn seal(&self, index: u64, last: bool, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + TAG);
        out.extend_from_slice(plain);
        self.aead
            .seal_in_place_append_tag(nonce(index), aad(index, last), &mut out)
            .expect("AES-GCM encryption of a chunk cannot fail");
        out
    }

    pub fn open(&self, index: u64, last: bool, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut buf = sealed.to_vec();
        let n = self.open_in_place(index, last, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Decrypts the sealed chunk in `buf` (ciphertext | tag) in place; answers the
    /// plaintext length (the plaintext is `buf[..len]`).
    pub fn open_in_place(
        &self,
        index: u64,
        last: bool,
        buf: &mut [u8],
    ) -> Result<usize, CryptoError> {
        self.aead
            .open_in_place(nonce(index), aad(index, last), buf)
            .map(|p| p.len())
            .map_err(|_| CryptoError::Auth)
    }
}

/// Number of chunks of a blob of `size` plaintext bytes (an empty blob has one empty chunk).
pub fn chunks(size: u64) -> u64 {
    size.div_ceil(CHUNK as u64).max(1)
}

/// Offset of sealed chunk `index` in the stored object.
pub fn chunk_offset(index: u64) -> u64 {
    HEADER as u64 + index * (CHUNK + TAG) as u64
}

/// Sealed length of chunk `index` of a blob of `size` bytes.
pub fn sealed_len(size: u64, index: u64) -> usize {
    let n = chunks(size);
    if index + 1 < n {
        CHUNK + TAG
    } else {
        (size - index * CHUNK as u64) as usize + TAG
    }
}

pub fn header(salt: &[u8; 32], size: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..40].copy_from_slice(salt);
    h[40..].copy_from_slice(&size.to_be_bytes());
    h
}

pub fn parse_header(h: &[u8]) -> Result<([u8; 32], u64), CryptoError> {
    if h.len() < HEADER || &h[..8] != MAGIC {
        return Err(CryptoError::Format);
    }
    let mut salt = [0u8; 32];
    salt.copy_from_slice(&h[8..40]);
    let size = u64::from_be_bytes(h[40..48].try_into().map_err(|_| CryptoError::Format)?);
    Ok((salt, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_roundtrip_and_tamper() {
        let m = random::<32>();
        let k = random::<32>();
        let w = wrap(&m, &k, "acme");
        assert_eq!(unwrap(&m, &w, "acme").unwrap(), k);
        assert!(unwrap(&m, &w, "other").is_err());
        assert!(unwrap(&random::<32>(), &w, "acme").is_err());
    }

    #[test]
    fn chunks_bind_index_and_end() {
        let c = BlobCipher::new(&random::<32>(), &random::<32>());
        let s = c.seal(3, false, b"hello");
        assert_eq!(c.open(3, false, &s).unwrap(), b"hello");
        assert!(c.open(4, false, &s).is_err());
        assert!(c.open(3, true, &s).is_err());
        assert_eq!(chunks(0), 1);
        assert_eq!(chunks(CHUNK as u64), 1);
        assert_eq!(chunks(CHUNK as u64 + 1), 2);
        assert_eq!(sealed_len(CHUNK as u64 + 1, 1), 1 + TAG);
    }

    /// The on-disk format, pinned by vectors computed independently (Python
    /// `cryptography`'s AESGCM with the same key derivation, nonce and AAD).
    #[test]
    fn known_answers() {
        let dek: Key = std::array::from_fn(|i| i as u8);
        let salt: [u8; 32] = std::array::from_fn(|i| 32 + i as u8);
        let c = BlobCipher::new(&dek, &salt);
        let sealed =
            hex::decode("68a51ff5805a3abfd889ed9e7cc9f6cf7b7357de858ccc76f0c5ed31a93fc16e8468")
                .unwrap();
        assert_eq!(c.seal(5, true, b"assay known answer"), sealed);
        assert_eq!(c.open(5, true, &sealed).unwrap(), b"assay known answer");
        let wrapped = "6465666768696a6b6c6d6e6fe4c8ea0e5ddd4690803304bee76f7b4800952de8\
                       091d096601b92e6e1afff7b896083fa05de22644e1ed56fa22e3a2ad";
        assert_eq!(unwrap(&[7u8; 32], wrapped, "acme").unwrap(), dek);
    }
}
