//! Blob storage: a [`BlobStore`] holds opaque (already encrypted) objects by key.
//!
//! [`FsBlobStore`] is a folder (the default, DATA/blobs);
//! [`crate::objstore::ObjectBlobStore`] is `object_store` (S3, Azure, file://) behind the
//! same three calls: `put` a finished local file, read a byte range, and check existence
//! ([`crate::open_blobs`] picks one). Keys are `t{tenant}/{sha[..2]}/{sha}`
//! ([`check_key`]): deduplication is per tenant, never across tenants.

use crate::crypto::{self, BlobCipher, CHUNK, Key};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub trait BlobStore: Send + Sync {
    /// Stores the finished local file `src` under `key` (consuming it).
    fn put(&self, key: &str, src: &Path) -> io::Result<()>;
    fn exists(&self, key: &str) -> io::Result<bool>;
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn new(root: PathBuf) -> io::Result<FsBlobStore> {
        fs::create_dir_all(&root)?;
        Ok(FsBlobStore { root })
    }
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

/// Keys are made by this crate; every store refuses anything else defensively (empty,
/// `.`/`..` components, characters other than ASCII letters, digits, `_` and `/`).
pub fn check_key(key: &str) -> io::Result<()> {
    if key
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'_')
    {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad blob key"));
    }
    Ok(())
}

impl BlobStore for FsBlobStore {
    fn put(&self, key: &str, src: &Path) -> io::Result<()> {
        let dst = self.path(key)?;
        if let Some(p) = dst.parent() {
            fs::create_dir_all(p)?;
        }
        fs::rename(src, dst)
    }
    fn exists(&self, key: &str) -> io::Result<bool> {
        Ok(self.path(key)?.is_file())
    }
    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        File::open(self.path(key)?)?.read_exact_at(buf, offset)
    }
}

pub fn blob_key(tenant: i64, sha256: &str) -> String {
    format!("t{tenant}/{}/{sha256}", &sha256[..2])
}

/// Encrypts a stream of plaintext into a local temporary file while hashing it.
pub struct SealingWriter {
    file: File,
    path: PathBuf,
    cipher: BlobCipher,
    salt: [u8; 32],
    buf: Vec<u8>,
    index: u64,
    size: u64,
    hash: Sha256,
}

impl SealingWriter {
    pub fn create(path: PathBuf, dek: &Key) -> io::Result<SealingWriter> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let salt = crypto::random::<32>();
        file.write_all(&crypto::header(&salt, 0))?;
        Ok(SealingWriter {
            file,
            path,
            cipher: BlobCipher::new(dek, &salt),
            salt,
            buf: Vec::with_capacity(CHUNK),
            index: 0,
            size: 0,
            hash: Sha256::new(),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.hash.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            // A full chunk is sealed only once more data arrives, so the last chunk is
            // always the one sealed by `finish` (with the last flag).
            if self.buf.len() == CHUNK {
                let sealed = self.cipher.seal(self.index, false, &self.buf);
                self.file.write_all(&sealed)?;
                self.index += 1;
                self.buf.clear();
            }
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals the last chunk and the header; returns (path, sha256 hex, size).
    pub fn finish(mut self) -> io::Result<(PathBuf, String, u64)> {
        let sealed = self.cipher.seal(self.index, true, &self.buf);
        self.file.write_all(&sealed)?;
        self.file
            .write_all_at(&crypto::header(&self.salt, self.size), 0)?;
        self.file.sync_data()?;
        Ok((self.path, hex::encode(self.hash.finalize()), self.size))
    }
}

/// Reads plaintext ranges of a stored blob.
pub struct BlobReader<'s> {
    store: &'s dyn BlobStore,
    key: String,
    cipher: BlobCipher,
    pub size: u64,
}

impl<'s> BlobReader<'s> {
    pub fn open(store: &'s dyn BlobStore, key: String, dek: &Key) -> io::Result<BlobReader<'s>> {
        let mut h = [0u8; crypto::HEADER];
        store.read_at(&key, 0, &mut h)?;
        let (salt, size) = crypto::parse_header(&h).map_err(io::Error::other)?;
        Ok(BlobReader {
            store,
            key,
            cipher: BlobCipher::new(dek, &salt),
            size,
        })
    }

    /// The plaintext of chunk `index`.
    pub fn chunk(&self, index: u64) -> io::Result<Vec<u8>> {
        let n = crypto::chunks(self.size);
        if index >= n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "past the end"));
        }
        let mut sealed = vec![0u8; crypto::sealed_len(self.size, index)];
        self.store
            .read_at(&self.key, crypto::chunk_offset(index), &mut sealed)?;
        self.cipher
            .open(index, index + 1 == n, &sealed)
            .map_err(io::Error::other)
    }

    /// Calls `f` with the plaintext of `[start, end)` piece by piece (at most a chunk each).
    pub fn for_range(
        &self,
        start: u64,
        end: u64,
        mut f: impl FnMut(Vec<u8>) -> bool,
    ) -> io::Result<()> {
        let mut pos = start;
        while pos < end {
            let index = pos / CHUNK as u64;
            let chunk = self.chunk(index)?;
            let base = index * CHUNK as u64;
            let from = (pos - base) as usize;
            let to = ((end - base) as usize).min(chunk.len());
            if from >= to {
                break;
            }
            let piece = if from == 0 && to == chunk.len() {
                chunk
            } else {
                chunk[from..to].to_vec()
            };
            pos = base + to as u64;
            if !f(piece) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_store_read_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().join("blobs")).unwrap();
        let dek = crypto::random::<32>();
        let data: Vec<u8> = (0..(CHUNK * 2 + 123))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut w = SealingWriter::create(dir.path().join("tmp"), &dek).unwrap();
        for piece in data.chunks(10_000) {
            w.write(piece).unwrap();
        }
        let (p, sha, size) = w.finish().unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(sha, hex::encode(Sha256::digest(&data)));
        let key = blob_key(1, &sha);
        store.put(&key, &p).unwrap();
        let raw = fs::read(dir.path().join("blobs").join(&key)).unwrap();
        assert!(
            !raw.windows(64).any(|w| w == &data[1000..1064]),
            "stored in clear"
        );
        let r = BlobReader::open(&store, key.clone(), &dek).unwrap();
        for (a, b) in [
            (0, data.len()),
            (5, 70_000),
            (CHUNK, CHUNK + 1),
            (CHUNK * 2, data.len()),
        ] {
            let mut got = Vec::new();
            r.for_range(a as u64, b as u64, |p| {
                got.extend(p);
                true
            })
            .unwrap();
            assert_eq!(got, &data[a..b]);
        }
        let wrong = BlobReader::open(&store, key, &crypto::random::<32>()).unwrap();
        assert!(wrong.chunk(0).is_err());
    }
}
