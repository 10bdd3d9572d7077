//! Blob storage: a [`BlobStore`] holds opaque (already encrypted) objects by key.
//!
//! [`FsBlobStore`] is a folder (the default, DATA/blobs);
//! [`crate::objstore::ObjectBlobStore`] is `object_store` (S3, Azure, file://) behind the
//! same three calls: `put` a finished local file, read a byte range, and check existence
//! ([`crate::open_blobs`] picks one). Keys are `t{tenant}/{sha[..2]}/{sha}`
//! ([`check_key`]): deduplication is per tenant, never across tenants.

use crate::crypto::{self, BlobCipher, CHUNK, Key};
use bytes::{Bytes, BytesMut};
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

/// Chunks fetched with one [`BlobStore::read_at`] and decrypted together: 16 × 64 KiB =
/// 1 MiB of plaintext. Large enough that an object store (one ranged GET per read) and the
/// file system (one `open` + `pread` per read) are cheap per byte, small enough that memory
/// per download stays bounded.
pub const WINDOW_CHUNKS: u64 = 16;
/// Decrypted windows a download may queue ahead of the network: memory per download is at
/// most `READ_AHEAD_WINDOWS + 2` windows (the queued ones, the one being decrypted and the
/// one being written to the socket), about 4 MiB.
pub const READ_AHEAD_WINDOWS: usize = 2;

/// Reads plaintext ranges of a stored blob.
pub struct BlobReader<'s> {
    store: &'s dyn BlobStore,
    key: String,
    cipher: BlobCipher,
    salt: [u8; 32],
    pub size: u64,
}

/// What a blob's header says: its salt and plaintext size.
#[derive(Debug, Clone, Copy)]
pub struct BlobHeader {
    pub salt: [u8; 32],
    pub size: u64,
}

/// The windows (first chunk, chunk count) that cover the plaintext range `[start, end)` of
/// a blob, in order; [`WINDOW_CHUNKS`] at most each, never past the range's last chunk.
pub fn windows(start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> {
    let c = CHUNK as u64;
    let (first, last) = if start < end {
        (start / c, (end - 1) / c)
    } else {
        (1, 0)
    };
    (first..=last)
        .step_by(WINDOW_CHUNKS as usize)
        .map(move |i| (i, WINDOW_CHUNKS.min(last - i + 1)))
}

/// The parts of a window's chunks (chunk `first` onwards) inside `[start, end)`.
pub fn clip(first: u64, chunks: Vec<Bytes>, start: u64, end: u64) -> impl Iterator<Item = Bytes> {
    let c = CHUNK as u64;
    chunks
        .into_iter()
        .enumerate()
        .filter_map(move |(i, chunk)| {
            let base = (first + i as u64) * c;
            let len = chunk.len() as u64;
            let from = start.saturating_sub(base).min(len) as usize;
            let to = end.saturating_sub(base).min(len) as usize;
            if from >= to {
                None
            } else if from == 0 && to == chunk.len() {
                Some(chunk)
            } else {
                Some(chunk.slice(from..to))
            }
        })
}

impl<'s> BlobReader<'s> {
    pub fn open(store: &'s dyn BlobStore, key: String, dek: &Key) -> io::Result<BlobReader<'s>> {
        let mut h = [0u8; crypto::HEADER];
        store.read_at(&key, 0, &mut h)?;
        let (salt, size) = crypto::parse_header(&h).map_err(io::Error::other)?;
        Ok(BlobReader::with_header(
            store,
            key,
            dek,
            &BlobHeader { salt, size },
        ))
    }

    /// A reader from a header read before (no storage read).
    pub fn with_header(
        store: &'s dyn BlobStore,
        key: String,
        dek: &Key,
        header: &BlobHeader,
    ) -> BlobReader<'s> {
        BlobReader {
            store,
            key,
            cipher: BlobCipher::new(dek, &header.salt),
            salt: header.salt,
            size: header.size,
        }
    }

    pub fn header(&self) -> BlobHeader {
        BlobHeader {
            salt: self.salt,
            size: self.size,
        }
    }

    /// The plaintext of chunks `first..first + count` (clipped to the blob), one [`Bytes`]
    /// per chunk. One `read_at` fetches the sealed window; its chunks are authenticated and
    /// decrypted in place and handed out as slices of that one buffer (no copies). Fails if
    /// any chunk fails authentication. (Decryption runs on the download's blocking thread,
    /// overlapping the network writes of the previous window; ring's AES-GCM does several
    /// GB/s per core, so spreading one window over threads gained nothing measurable and
    /// rayon's idle spinning cost CPU that other downloads need.)
    pub fn window(&self, first: u64, count: u64) -> io::Result<Vec<Bytes>> {
        let n = crypto::chunks(self.size);
        if first >= n || count == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "past the end"));
        }
        let end = first.saturating_add(count).min(n);
        let offset = crypto::chunk_offset(first);
        let len = (crypto::chunk_offset(end - 1) - offset) as usize
            + crypto::sealed_len(self.size, end - 1);
        let mut buf = BytesMut::zeroed(len);
        self.store.read_at(&self.key, offset, &mut buf)?;
        let stride = CHUNK + crypto::TAG;
        let cipher = &self.cipher;
        let plain_lens = buf
            .chunks_mut(stride)
            .enumerate()
            .map(|(i, sealed)| {
                let index = first + i as u64;
                cipher.open_in_place(index, index + 1 == n, sealed)
            })
            .collect::<Result<Vec<usize>, _>>()
            .map_err(io::Error::other)?;
        let buf = buf.freeze();
        Ok(plain_lens
            .into_iter()
            .enumerate()
            .map(|(i, l)| buf.slice(i * stride..i * stride + l))
            .collect())
    }

    /// The plaintext of chunk `index`.
    pub fn chunk(&self, index: u64) -> io::Result<Bytes> {
        Ok(self.window(index, 1)?.swap_remove(0))
    }

    /// Calls `f` with the plaintext of `[start, end)` piece by piece (at most a chunk each),
    /// reading [`WINDOW_CHUNKS`] chunks at a time (never past the range's last chunk).
    /// Stops early when `f` answers false.
    pub fn for_range(
        &self,
        start: u64,
        end: u64,
        mut f: impl FnMut(Bytes) -> bool,
    ) -> io::Result<()> {
        let end = end.min(self.size);
        for (first, count) in windows(start, end) {
            for piece in clip(first, self.window(first, count)?, start, end) {
                if !f(piece) {
                    return Ok(());
                }
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

    fn sealed_blob(dir: &Path, data: &[u8], dek: &Key) -> (FsBlobStore, String) {
        let store = FsBlobStore::new(dir.join("blobs")).unwrap();
        let mut w = SealingWriter::create(dir.join("tmp"), dek).unwrap();
        for piece in data.chunks(300_001) {
            w.write(piece).unwrap();
        }
        let (p, sha, _) = w.finish().unwrap();
        let key = blob_key(1, &sha);
        store.put(&key, &p).unwrap();
        (store, key)
    }

    fn read(r: &BlobReader, a: u64, b: u64) -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        r.for_range(a, b, |p| {
            assert!(!p.is_empty() && p.len() <= CHUNK);
            got.extend_from_slice(&p);
            true
        })?;
        Ok(got)
    }

    /// Counts `read_at` calls and their sizes.
    struct Counting<'a>(&'a FsBlobStore, std::sync::Mutex<Vec<usize>>);
    impl BlobStore for Counting<'_> {
        fn put(&self, key: &str, src: &Path) -> io::Result<()> {
            self.0.put(key, src)
        }
        fn exists(&self, key: &str) -> io::Result<bool> {
            self.0.exists(key)
        }
        fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.1.lock().unwrap().push(buf.len());
            self.0.read_at(key, offset, buf)
        }
    }

    #[test]
    fn windows_straddle_chunks_and_end_in_the_last_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let dek = crypto::random::<32>();
        let w = WINDOW_CHUNKS as usize * CHUNK;
        // Two full windows and a short third one ending in a partial chunk.
        let data: Vec<u8> = (0..(2 * w + 3 * CHUNK + 777))
            .map(|i| (i * 31 % 253) as u8)
            .collect();
        let (store, key) = sealed_blob(dir.path(), &data, &dek);
        let counting = Counting(&store, Default::default());
        let r = BlobReader::open(&counting, key, &dek).unwrap();
        let len = data.len();
        for (a, b) in [
            (0, len),
            (1, len - 1),
            (w - 5, w + 5),              // across a window boundary
            (CHUNK - 1, CHUNK + 1),      // across a chunk boundary
            (w - CHUNK, 2 * w + CHUNK),  // several windows
            (len - 800, len),            // the last chunk only, to its end
            (len - CHUNK - 10, len - 1), // ends inside the last chunk
            (2 * w + 3 * CHUNK, len),    // exactly the last chunk
            (len - 1, len + 1000),       // clipped to the end
        ] {
            assert_eq!(
                read(&r, a as u64, b as u64).unwrap(),
                &data[a..b.min(len)],
                "{a}..{b}"
            );
        }
        // The whole blob is fetched one window per read, never more.
        counting.1.lock().unwrap().clear();
        read(&r, 0, len as u64).unwrap();
        let reads = counting.1.lock().unwrap().clone();
        assert_eq!(reads.len(), 3, "{reads:?}");
        assert_eq!(reads[0], WINDOW_CHUNKS as usize * (CHUNK + crypto::TAG));
        // A small range reads only the chunks it touches.
        counting.1.lock().unwrap().clear();
        read(&r, (w - 5) as u64, (w + 5) as u64).unwrap();
        assert_eq!(*counting.1.lock().unwrap(), vec![2 * (CHUNK + crypto::TAG)]);
        assert!(read(&r, 10, 10).unwrap().is_empty());
    }

    #[test]
    fn a_window_with_an_altered_chunk_fails_and_nothing_of_it_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let dek = crypto::random::<32>();
        let data: Vec<u8> = (0..(3 * CHUNK + 5)).map(|i| (i % 256) as u8).collect();
        let (store, key) = sealed_blob(dir.path(), &data, &dek);
        let path = dir.path().join("blobs").join(&key);
        let mut raw = fs::read(&path).unwrap();
        let pristine = raw.clone();
        // Flip one ciphertext byte of chunk 2.
        raw[crypto::chunk_offset(2) as usize + 7] ^= 1;
        fs::write(&path, &raw).unwrap();
        let r = BlobReader::open(&store, key.clone(), &dek).unwrap();
        let mut served = 0;
        let res = r.for_range(0, data.len() as u64, |_| {
            served += 1;
            true
        });
        assert!(res.is_err());
        assert_eq!(served, 0, "chunks of a window that failed were served");
        // Ranges that do not touch chunk 2 still read.
        assert_eq!(read(&r, 0, CHUNK as u64 * 2).unwrap(), &data[..2 * CHUNK]);
        // Cutting the blob short (a header claiming fewer chunks) fails: chunk 1 was not
        // sealed as the last one.
        let mut cut = pristine.clone();
        cut[40..48].copy_from_slice(&(2 * CHUNK as u64).to_be_bytes());
        fs::write(&path, &cut).unwrap();
        let r = BlobReader::open(&store, key.clone(), &dek).unwrap();
        assert!(read(&r, 0, 2 * CHUNK as u64).is_err());
        assert_eq!(read(&r, 0, CHUNK as u64).unwrap(), &data[..CHUNK]);
        // Swapping two chunks fails (the index is authenticated).
        let mut swapped = pristine;
        let (a, b) = (
            crypto::chunk_offset(0) as usize,
            crypto::chunk_offset(1) as usize,
        );
        let stride = CHUNK + crypto::TAG;
        let first = swapped[a..a + stride].to_vec();
        swapped.copy_within(b..b + stride, a);
        swapped[b..b + stride].copy_from_slice(&first);
        fs::write(&path, &swapped).unwrap();
        let r = BlobReader::open(&store, key, &dek).unwrap();
        assert!(read(&r, 0, 1).is_err());
        assert!(read(&r, CHUNK as u64, CHUNK as u64 + 1).is_err());
    }

    #[test]
    fn window_plan() {
        let c = CHUNK as u64;
        let w = WINDOW_CHUNKS;
        assert_eq!(windows(5, 5).count(), 0);
        assert_eq!(windows(9, 3).count(), 0);
        assert_eq!(windows(0, 1).collect::<Vec<_>>(), vec![(0, 1)]);
        assert_eq!(windows(c - 1, c + 1).collect::<Vec<_>>(), vec![(0, 2)]);
        assert_eq!(
            windows(c, (2 * w + 1) * c + 1).collect::<Vec<_>>(),
            vec![(1, w), (1 + w, w), (1 + 2 * w, 1)]
        );
    }
}
