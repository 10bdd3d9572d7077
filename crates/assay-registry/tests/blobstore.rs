//! The [`BlobStore`] contract, checked against every backend: the data folder
//! ([`FsBlobStore`]), `file://`, Azure Blob Storage (Azurite) and S3 (moto) through
//! `object_store`, plus the ways the synchronous trait is called (plain threads, tokio's
//! blocking pool, async worker threads) and the error messages.
//!
//! Azurite and S3 need `ASSAY_TEST_AZURITE` (the account URL, e.g.
//! `http://127.0.0.1:47100/devstoreaccount1`, with Azurite's well-known development key)
//! and `ASSAY_TEST_S3` (an S3 endpoint such as moto's, any credentials), each with the
//! container/bucket `assay-test`; `.ci/run` starts both. Outside CI the tests skip with a
//! note when they are unset; under CI=true they fail.

use assay_registry::blob::{BlobStore, FsBlobStore, blob_key};
use assay_registry::objstore::ObjectBlobStore;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Azurite's documented development account key (public, not a secret).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const PART: usize = 5 << 20;

fn remote(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{var} is not set; .ci/run must start the server");
            }
            eprintln!("skipping the {var} part: set {var} (see .ci/run)");
            None
        }
    }
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

fn azure_env(endpoint: &str, key: &str) -> Vec<(String, String)> {
    [
        ("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1"),
        ("AZURE_STORAGE_ACCOUNT_KEY", key),
        ("AZURE_STORAGE_ENDPOINT", endpoint),
        ("AZURE_ALLOW_HTTP", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn s3_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn azurite(tag: &str) -> Option<ObjectBlobStore> {
    let ep = remote("ASSAY_TEST_AZURITE")?;
    let url = format!("az://assay-test/{}", unique(tag));
    Some(
        ObjectBlobStore::open_with_env(&url, azure_env(&ep, AZURITE_KEY))
            .unwrap()
            .with_part_size(PART),
    )
}

fn s3(tag: &str) -> Option<ObjectBlobStore> {
    let ep = remote("ASSAY_TEST_S3")?;
    let url = format!("s3://assay-test/{}", unique(tag));
    Some(
        ObjectBlobStore::open_with_env(&url, s3_env(&ep))
            .unwrap()
            .with_part_size(PART),
    )
}

fn file_store(dir: &Path) -> ObjectBlobStore {
    let url = format!("file://{}", dir.join("objects").display());
    ObjectBlobStore::open_with_env(&url, [])
        .unwrap()
        .with_part_size(PART)
}

fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn local(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// The contract every store keeps.
fn conformance(name: &str, store: &dyn BlobStore) {
    let tmp = tempfile::tempdir().unwrap();
    let key = blob_key(7, &sha(0xab));

    // Missing keys: exists is false, reads fail with NotFound.
    assert!(!store.exists(&key).unwrap(), "{name}");
    let e = store.read_at(&key, 0, &mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{name}: {e}");

    // A file larger than two parts (multipart upload in the object stores).
    let big = data(2 * PART + 12_345, 1);
    let src = local(tmp.path(), "big", &big);
    store.put(&key, &src).unwrap();
    assert!(!src.exists(), "{name}: put consumes the local file");
    assert!(store.exists(&key).unwrap(), "{name}");
    let n = big.len();
    for (a, b) in [
        (0, 1),
        (0, 64),
        (n - 1, n),
        (PART - 10, PART + 10),
        (1 << 20, (1 << 20) + (8 << 20)),
        (0, n),
    ] {
        let mut buf = vec![0u8; b - a];
        store.read_at(&key, a as u64, &mut buf).unwrap();
        assert!(buf == big[a..b], "{name}: range {a}..{b}");
    }
    // Past the end: an error, never short or padded data.
    assert!(
        store.read_at(&key, n as u64 - 1, &mut [0u8; 2]).is_err(),
        "{name}"
    );
    assert!(
        store.read_at(&key, n as u64, &mut [0u8; 1]).is_err(),
        "{name}"
    );

    // A small file (one request), overwriting an existing key (same content) and an empty one.
    let small = data(1000, 2);
    let k2 = blob_key(7, &sha(0xcd));
    store.put(&k2, &local(tmp.path(), "s1", &small)).unwrap();
    store.put(&k2, &local(tmp.path(), "s2", &small)).unwrap();
    let mut buf = vec![0u8; 999];
    store.read_at(&k2, 1, &mut buf).unwrap();
    assert_eq!(buf, small[1..]);
    let k3 = blob_key(8, &sha(0xcd));
    assert!(!store.exists(&k3).unwrap(), "{name}: keys are per tenant");
    store.put(&k3, &local(tmp.path(), "e", b"")).unwrap();
    assert!(store.exists(&k3).unwrap(), "{name}");

    // Keys this crate would never make are refused before any I/O.
    let junk = local(tmp.path(), "junk", b"x");
    for bad in [
        "", "../x", "t1/../x", "t1/./x", "t1//x", "/t1/x", "t1/x/", "t1/a b", "t1/x%2f", "t1/x\\y",
        "t1/é",
    ] {
        let e = store.put(bad, &junk).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}: put {bad:?}");
        let e = store.exists(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}: exists {bad:?}");
        let e = store.read_at(bad, 0, &mut [0u8; 1]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}: read {bad:?}");
    }
    assert!(junk.exists(), "{name}: a refused put leaves the file");
}

#[test]
fn contract_fs_blob_store() {
    let dir = tempfile::tempdir().unwrap();
    conformance("fs", &FsBlobStore::new(dir.path().join("blobs")).unwrap());
}

#[test]
fn contract_file_url() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(dir.path());
    conformance("file://", &store);
    // The objects are where the URL says, under their keys.
    let key = blob_key(7, &sha(0xab));
    assert!(dir.path().join("objects").join(&key).is_file());
}

#[test]
fn contract_azurite() {
    if let Some(store) = azurite("conf") {
        conformance("azurite", &store);
    }
}

#[test]
fn contract_s3() {
    if let Some(store) = s3("conf") {
        conformance("s3", &store);
    }
}

/// One put and reads from the given context.
fn roundtrip(store: &dyn BlobStore, tag: u8) {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = data(PART + 77, tag as u64);
    let key = blob_key(9, &sha(tag));
    store.put(&key, &local(tmp.path(), "f", &bytes)).unwrap();
    assert!(store.exists(&key).unwrap());
    let mut buf = vec![0u8; 100];
    store.read_at(&key, PART as u64 - 23, &mut buf).unwrap();
    assert_eq!(buf, bytes[PART - 23..]);
}

fn callers(store: ObjectBlobStore) {
    let store = std::sync::Arc::new(store);
    // A plain thread (a scan worker outside any runtime).
    let s = store.clone();
    std::thread::spawn(move || roundtrip(&*s, 1))
        .join()
        .unwrap();
    // tokio's blocking pool, and an async worker thread itself (where Runtime::block_on
    // would panic), on a multi-thread and a current-thread runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    rt.block_on(async move {
        let s2 = s.clone();
        tokio::task::spawn_blocking(move || roundtrip(&*s2, 2))
            .await
            .unwrap();
        let s3 = s.clone();
        tokio::spawn(async move { roundtrip(&*s3, 3) })
            .await
            .unwrap();
        roundtrip(&*s, 4);
    });
    let rt1 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    rt1.block_on(async move { roundtrip(&*s, 5) });
    // The last owner may drop the store inside an async context without a panic.
    rt.block_on(async move { drop(store) });
}

#[test]
fn callers_file_url() {
    let dir = tempfile::tempdir().unwrap();
    callers(file_store(dir.path()));
}

#[test]
fn callers_azurite() {
    if let Some(store) = azurite("callers") {
        callers(store);
    }
}

#[test]
fn callers_s3() {
    if let Some(store) = s3("callers") {
        callers(store);
    }
}

#[test]
fn errors_are_clear_and_hold_no_secret() {
    let Some(ep) = remote("ASSAY_TEST_AZURITE") else {
        return;
    };
    // A wrong account key (valid base64): Azurite refuses the signature.
    let secret = "c2VjcmV0LWtleS1ub3QtdGhlLXJpZ2h0LW9uZS0xMjM0NTY3ODkw";
    let store =
        ObjectBlobStore::open_with_env("az://assay-test/x", azure_env(&ep, secret)).unwrap();
    let e = store.exists(&blob_key(1, &sha(1))).unwrap_err();
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("az://assay-test/x/"), "{msg}");
    assert!(msg.contains("t1/01/"), "{msg}");
    assert!(!msg.contains(secret), "{msg}");
    assert_ne!(e.kind(), ErrorKind::NotFound, "{msg}");
}

#[test]
fn unreachable_store_fails_in_bounded_time() {
    // Nothing listens on port 1: connection refused, retried a bounded number of times.
    let store = ObjectBlobStore::open_with_env("s3://b/p", s3_env("http://127.0.0.1:1")).unwrap();
    let t = Instant::now();
    let e = store.exists(&blob_key(1, &sha(1))).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(
        msg.contains("s3://b/p/") && msg.contains("head t1/01/"),
        "{msg}"
    );
    assert!(!msg.contains("testing-secret"), "{msg}");
}

#[test]
fn bad_store_urls_are_refused() {
    for url in [
        "gs://bucket",
        "s3://",
        "s3://b/../x",
        "az://c?sv=1&sig=abc",
        "file://host/x",
        "/plain/path",
    ] {
        let e = ObjectBlobStore::open_with_env(url, []).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{url}: {e}");
        assert!(!e.to_string().contains("sig=abc"), "{e}");
    }
}
