//! `put` of a large file streams: the process's peak memory grows by a bounded amount,
//! not by the file's size. Alone in its test binary so the peak belongs to this test.

use assay_registry::blob::{BlobStore, blob_key};
use assay_registry::objstore::ObjectBlobStore;

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn put_of_a_large_file_has_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("objects").display());
    let store = ObjectBlobStore::open_with_env(&url, []).unwrap();
    // 512 MiB, sparse (holes read as zeros): the size costs neither disk nor time to make.
    let size: u64 = 512 << 20;
    let src = dir.path().join("big");
    std::fs::File::create(&src).unwrap().set_len(size).unwrap();
    let key = blob_key(1, &"ab".repeat(32));
    let before = peak_rss();
    store.put(&key, &src).unwrap();
    let grown = peak_rss().saturating_sub(before);
    eprintln!("peak RSS grew by {} MiB for a 512 MiB put", grown >> 20);
    assert!(grown < 128 << 20, "put buffered {} MiB", grown >> 20);
    let mut last = [1u8; 1];
    store.read_at(&key, size - 1, &mut last).unwrap();
    assert_eq!(last, [0]);
    assert!(store.read_at(&key, size, &mut last).is_err());
}
