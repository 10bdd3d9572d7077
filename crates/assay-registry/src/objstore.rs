//! [`ObjectBlobStore`]: a [`BlobStore`] over the `object_store` crate, for
//! `assay serve --store s3://BUCKET[/PREFIX] | az://CONTAINER[/PREFIX] | file:///ABS/PATH`.
//!
//! Configuration is the URL plus the standard environment variables of each backend, read
//! the way `AmazonS3Builder::from_env` / `MicrosoftAzureBuilder::from_env` read them:
//!
//! - S3 (and S3-compatible servers): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT` (or
//!   `AWS_ENDPOINT_URL`) for MinIO/moto/…, `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint,
//!   `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, web identity / container credentials, …
//! - Azure Blob: `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY` (or a SAS, a
//!   bearer token, a service principal, managed identity, …), `AZURE_STORAGE_ENDPOINT`
//!   for a non-default endpoint, `AZURE_ALLOW_HTTP=true`, and
//!   `AZURE_STORAGE_USE_EMULATOR=true` (with `AZURITE_BLOB_STORAGE_URL`) for Azurite.
//! - Both: `*_TIMEOUT`, `*_CONNECT_TIMEOUT`, `*_PROXY_URL`, … (object_store's client keys
//!   with the `AWS_`/`AZURE_` prefix) override the defaults below.
//!
//! The [`BlobStore`] trait is synchronous: it is called from tokio's blocking pool and from
//! scan workers that may run outside any runtime. The store therefore owns a small
//! multi-threaded tokio runtime; each call spawns its future there and waits on a plain
//! channel, which is safe from any thread (unlike `Runtime::block_on`, which panics on an
//! async worker thread). HTTP connections live on that runtime too.
//!
//! `put` streams the local file as a multipart upload (bounded memory: at most
//! [`PUT_CONCURRENCY`] parts in flight); `read_at` is one ranged GET; `exists` is one HEAD.
//! Errors are `io::Error`s naming the store (scheme, bucket/container, prefix) and the key,
//! with `NotFound` kept as [`io::ErrorKind::NotFound`]; secrets from the environment and
//! URL query strings (SAS tokens) are removed from messages.

use crate::blob::{BlobStore, check_key};
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ClientOptions, GetOptions, GetRange, ObjectStore,
    ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Size of one part of a multipart upload (S3 needs at least 5 MiB; at most 10,000 parts,
/// so the part size grows for files beyond ~80 GB).
pub const PART_SIZE: usize = 8 << 20;
/// Parts of one upload in flight at once: memory per `put` stays under
/// `PART_SIZE * (PUT_CONCURRENCY + 1)`.
pub const PUT_CONCURRENCY: usize = 4;
/// Most parts in one multipart upload (S3's limit).
const MAX_PARTS: u64 = 10_000;
/// Defaults of the HTTP client (override with `AWS_TIMEOUT`, `AZURE_CONNECT_TIMEOUT`, …).
const CONNECT_TIMEOUT: &str = "10s";
/// Whole-request timeout: one part of an upload or one read window.
const REQUEST_TIMEOUT: &str = "300s";
/// Retries of a failed request (with exponential backoff), bounded in count and time.
const MAX_RETRIES: usize = 5;
const RETRY_TIMEOUT: Duration = Duration::from_secs(120);
/// Worker threads of the store's own runtime.
const RUNTIME_THREADS: usize = 2;

/// A [`BlobStore`] on S3, Azure Blob Storage or a local folder through `object_store`.
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    /// Key prefix inside the bucket/container/folder ("" or "a/b/").
    prefix: String,
    /// The URL without credentials, for messages.
    what: String,
    /// Secret values from the configuration, never shown in messages.
    secrets: Vec<String>,
    part_size: usize,
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBlobStore")
            .field("store", &self.what)
            .finish()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Is this environment variable's value a secret (never echoed)?
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["SECRET", "KEY", "TOKEN", "PASSWORD", "SAS", "SIGNATURE"]
        .iter()
        .any(|s| n.contains(s))
        && !n.ends_with("_ID")
        && !n.contains("KEY_ID")
}

/// `url` without a query string, fragment or user part (where credentials could hide).
pub fn public_url(url: &str) -> String {
    let cut = url.split(['?', '#']).next().unwrap_or("");
    match cut.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|a| a.rfind('@')) {
            Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
            None => cut.to_string(),
        },
        None => cut.to_string(),
    }
}

/// Splits `s3://bucket/a/b` into ("s3", "bucket", "a/b/").
fn split_url(url: &str) -> io::Result<(&str, &str, String)> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(format!(
            "--store {:?}: expected s3://BUCKET[/PREFIX], az://CONTAINER[/PREFIX] or file:///PATH",
            public_url(url)
        )));
    };
    if rest.contains(['?', '#', '@']) {
        return Err(invalid(format!(
            "--store {scheme}://…: no query, fragment or user part; credentials come from the environment"
        )));
    }
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_matches('/');
    if !path.is_empty()
        && (path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
            || !path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-.".contains(&b)))
    {
        return Err(invalid(format!(
            "--store {scheme}://{bucket}/{path}: the prefix may hold only letters, digits, '_', '-', '.' and '/'"
        )));
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    Ok((scheme, bucket, prefix))
}

fn client_defaults() -> ClientOptions {
    ClientOptions::new()
        .with_config(ClientConfigKey::ConnectTimeout, CONNECT_TIMEOUT)
        .with_config(ClientConfigKey::Timeout, REQUEST_TIMEOUT)
}

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: MAX_RETRIES,
        retry_timeout: RETRY_TIMEOUT,
    }
}

impl ObjectBlobStore {
    /// Opens the store named by `url`, configured from the process environment.
    pub fn open(url: &str) -> io::Result<ObjectBlobStore> {
        Self::open_with_env(url, std::env::vars())
    }

    /// Opens the store named by `url`, configured from `env` (name, value) pairs instead of
    /// the process environment (same names: `AWS_*`, `AZURE_*`).
    pub fn open_with_env(
        url: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> io::Result<ObjectBlobStore> {
        let (scheme, bucket, prefix) = split_url(url)?;
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut secrets: Vec<String> = Vec::new();
        let what = format!("{scheme}://{bucket}/{prefix}");
        let bad = |e: object_store::Error, secrets: &[String]| {
            invalid(redact(secrets, &format!("--store {what}: {e}")))
        };
        if bucket.is_empty() && scheme != "file" {
            return Err(invalid(format!(
                "--store {}: no bucket/container name",
                public_url(url)
            )));
        }
        let store: Arc<dyn ObjectStore> = match scheme {
            "s3" => {
                let mut b = AmazonS3Builder::new()
                    .with_client_options(client_defaults())
                    .with_retry(retry());
                for (k, v) in &env {
                    if k.starts_with("AWS_")
                        && let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
                    {
                        if secret_name(k) && !v.is_empty() {
                            secrets.push(v.clone());
                        }
                        b = b.with_config(key, v);
                    }
                }
                Arc::new(
                    b.with_bucket_name(bucket)
                        .build()
                        .map_err(|e| bad(e, &secrets))?,
                )
            }
            "az" | "azure" => {
                let mut b = MicrosoftAzureBuilder::new()
                    .with_client_options(client_defaults())
                    .with_retry(retry());
                for (k, v) in &env {
                    if k.starts_with("AZURE_")
                        && let Ok(key) = k.to_ascii_lowercase().parse::<AzureConfigKey>()
                    {
                        if secret_name(k) && !v.is_empty() {
                            secrets.push(v.clone());
                        }
                        b = b.with_config(key, v);
                    } else if k == "MSI_ENDPOINT" {
                        b = b.with_msi_endpoint(v);
                    }
                }
                Arc::new(
                    b.with_container_name(bucket)
                        .build()
                        .map_err(|e| bad(e, &secrets))?,
                )
            }
            "file" => {
                if !bucket.is_empty() {
                    return Err(invalid(format!(
                        "--store {url}: a file URL is file:///ABSOLUTE/PATH (no host)"
                    )));
                }
                if prefix.is_empty() {
                    return Err(invalid(
                        "--store file:///: name a folder, e.g. file:///srv/assay-blobs".into(),
                    ));
                }
                let root = PathBuf::from(format!("/{prefix}"));
                std::fs::create_dir_all(&root)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
                let fs = LocalFileSystem::new_with_prefix(&root).map_err(|e| bad(e, &[]))?;
                return Self::with_store(
                    Arc::new(fs),
                    String::new(),
                    format!("file://{}", root.display()),
                    secrets,
                );
            }
            _ => {
                return Err(invalid(format!(
                    "--store {}: unknown scheme {scheme:?} (s3://, az:// or file://)",
                    public_url(url)
                )));
            }
        };
        Self::with_store(store, prefix, what, secrets)
    }

    fn with_store(
        store: Arc<dyn ObjectStore>,
        prefix: String,
        what: String,
        secrets: Vec<String>,
    ) -> io::Result<ObjectBlobStore> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("assay-blob-store")
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        Ok(ObjectBlobStore {
            store,
            prefix,
            what,
            secrets,
            part_size: PART_SIZE,
            rt: Some(rt),
            handle,
        })
    }

    /// Sets the multipart part size (at least 5 MiB, S3's minimum).
    pub fn with_part_size(mut self, bytes: usize) -> ObjectBlobStore {
        self.part_size = bytes.max(5 << 20);
        self
    }

    /// Where the store is, without credentials (for logs).
    pub fn describe(&self) -> &str {
        &self.what
    }

    fn location(&self, key: &str) -> io::Result<ObjPath> {
        check_key(key)?;
        ObjPath::parse(format!("{}{key}", self.prefix)).map_err(|e| invalid(e.to_string()))
    }

    /// Runs `fut` on the store's runtime and waits for it from any thread (inside an async
    /// worker or not): the future is spawned, the caller blocks on a std channel.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> io::Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| io::Error::other(format!("blob store {}: task ended", self.what)))
    }

    /// An `io::Error` from an object_store error: NotFound kept, secrets removed.
    fn err(&self, op: &str, key: &str, e: object_store::Error) -> io::Error {
        let kind = match &e {
            object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
            object_store::Error::InvalidPath { .. } => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        let msg = format!("blob store {}: {op} {key}: {e}", self.what);
        io::Error::new(kind, self.redact(&msg))
    }

    fn redact(&self, msg: &str) -> String {
        redact(&self.secrets, msg)
    }
}

/// `msg` without URL query strings and without any of the `secrets`.
fn redact(secrets: &[String], msg: &str) -> String {
    let mut out = strip_queries(msg);
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// Removes `?query` parts of URLs in a message (a SAS token is a query string).
fn strip_queries(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut in_url = false;
    let mut skipping = false;
    for (i, c) in msg.char_indices() {
        if !in_url && (msg[i..].starts_with("http://") || msg[i..].starts_with("https://")) {
            in_url = true;
        }
        if in_url && (c.is_whitespace() || c == ')' || c == '"' || c == '\'') {
            in_url = false;
            skipping = false;
        }
        if in_url && c == '?' && !skipping {
            skipping = true;
            out.push_str("?…");
        }
        if !skipping {
            out.push(c);
        }
    }
    out
}

impl Drop for ObjectBlobStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks; `shutdown_background` does not, so the store may be
        // dropped anywhere, inside an async context included.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl BlobStore for ObjectBlobStore {
    fn put(&self, key: &str, src: &Path) -> io::Result<()> {
        let loc = self.location(key)?;
        let mut file = File::open(src)?;
        let len = file.metadata()?.len();
        // Grow the part size for very large files to stay within S3's part count.
        let part = (self.part_size as u64).max(len.div_ceil(MAX_PARTS - 1));
        let part = usize::try_from(part).map_err(|_| invalid("file too large".into()))?;
        let store = self.store.clone();
        if len <= part as u64 {
            // One part or less: a single PUT.
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf)?;
            self.run(async move { store.put(&loc, PutPayload::from(buf)).await })?
                .map_err(|e| self.err("put", key, e))?;
            std::fs::remove_file(src)?;
            return Ok(());
        }
        let started = self.run(async move { store.put_multipart(&loc).await })?;
        let mut w = Some(WriteMultipart::new_with_chunk_size(
            started.map_err(|e| self.err("put", key, e))?,
            part,
        ));
        // The file is read here (a plain thread or the blocking pool), one part at a time;
        // the runtime uploads at most PUT_CONCURRENCY parts at once.
        let mut sent = 0u64;
        let mut failure: Option<io::Error> = None;
        while sent < len {
            let n = (len - sent).min(part as u64) as usize;
            let mut buf = vec![0u8; n];
            if let Err(e) = file.read_exact(&mut buf) {
                failure = Some(io::Error::new(
                    e.kind(),
                    format!(
                        "blob store {}: put {key}: reading {}: {e}",
                        self.what,
                        src.display()
                    ),
                ));
                break;
            }
            sent += n as u64;
            let mut writer = w.take().expect("writer");
            let r = self.run(async move {
                let r = writer.wait_for_capacity(PUT_CONCURRENCY).await;
                if r.is_ok() {
                    writer.put(Bytes::from(buf));
                }
                (writer, r)
            })?;
            w = Some(r.0);
            if let Err(e) = r.1 {
                failure = Some(self.err("put", key, e));
                break;
            }
        }
        let writer = w.take().expect("writer");
        if let Some(e) = failure {
            let _ = self.run(async move { writer.abort().await });
            return Err(e);
        }
        self.run(async move { writer.finish().await })?
            .map_err(|e| self.err("put", key, e))?;
        // The store consumes the local file, as FsBlobStore's rename does.
        std::fs::remove_file(src)?;
        Ok(())
    }

    fn exists(&self, key: &str) -> io::Result<bool> {
        let loc = self.location(key)?;
        let store = self.store.clone();
        match self.run(async move { store.head(&loc).await })? {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("head", key, e)),
        }
    }

    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let loc = self.location(key)?;
        if buf.is_empty() {
            // A zero-length range is not a valid GET; still answer NotFound for a missing key.
            return if self.exists(key)? {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("blob store {}: {key}: not found", self.what),
                ))
            };
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| invalid("range overflows".into()))?;
        let store = self.store.clone();
        // One ranged GET; the body is collected on the runtime and copied here.
        let got = self.run(async move {
            let opts = GetOptions {
                range: Some(GetRange::Bounded(offset..end)),
                ..GetOptions::default()
            };
            let res = store.get_opts(&loc, opts).await?;
            let mut parts: Vec<Bytes> = Vec::new();
            let mut stream = res.into_stream();
            while let Some(b) = stream.next().await {
                parts.push(b?);
            }
            Ok::<_, object_store::Error>(parts)
        })?;
        let parts = got.map_err(|e| self.err("read", key, e))?;
        let mut pos = 0usize;
        for p in parts {
            let take = p.len().min(buf.len() - pos);
            buf[pos..pos + take].copy_from_slice(&p[..take]);
            pos += take;
        }
        if pos != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob store {}: read {key}: {} bytes at {offset}, the object has fewer",
                    self.what,
                    buf.len()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("s3://b/x/y/").unwrap(),
            ("s3", "b", "x/y/".to_string())
        );
        assert_eq!(split_url("az://c").unwrap(), ("az", "c", String::new()));
        assert!(split_url("s3://b/../x").is_err());
        assert!(split_url("s3://b/a b").is_err());
        assert!(split_url("az://c?sig=x").is_err());
        assert!(split_url("nothing").is_err());
        assert!(ObjectBlobStore::open_with_env("gs://b", []).is_err());
        assert!(ObjectBlobStore::open_with_env("file://host/x", []).is_err());
        assert!(ObjectBlobStore::open_with_env("file:///", []).is_err());
        // A malformed key is refused at construction without being echoed.
        let env = [
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "not base64 !!secret!!"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let e = ObjectBlobStore::open_with_env("az://c", env).unwrap_err();
        assert!(e.to_string().contains("az://c/"), "{e}");
        assert!(!e.to_string().contains("!!secret!!"), "{e}");
    }

    #[test]
    fn messages_hide_secrets() {
        assert_eq!(
            strip_queries("error sending request for url (https://a.blob/c/k?sv=1&sig=SECRET) x"),
            "error sending request for url (https://a.blob/c/k?…) x"
        );
        assert_eq!(public_url("az://c/p?sig=x"), "az://c/p");
        assert_eq!(public_url("s3://u:pw@b/p"), "s3://b/p");
        assert!(secret_name("AWS_SECRET_ACCESS_KEY"));
        assert!(secret_name("AZURE_STORAGE_ACCOUNT_KEY"));
        assert!(secret_name("AWS_SESSION_TOKEN"));
        assert!(!secret_name("AWS_ACCESS_KEY_ID"));
        assert!(!secret_name("AWS_ENDPOINT"));
    }
}
