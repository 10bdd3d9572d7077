//! Assay's model registry (`assay serve`): multi-tenant, zero trust, Hugging Face Hub
//! compatible for downloads, and serving only revisions the tenant's policy admitted.
//!
//! Phase 1 (this crate): SQLite metadata ([`meta::SqliteMeta`]), blobs in a folder
//! ([`blob::FsBlobStore`]), scans on a background task of the server. The seams for
//! phase 2 are the [`meta::MetaStore`] trait (PostgreSQL), the [`blob::BlobStore`] trait
//! (`object_store`: S3, Azure) and the job queue in the metadata store (`assay worker`).
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod blob;
pub mod crypto;
mod hf;
pub mod meta;
pub mod names;
pub mod scanjob;
mod server;
pub mod tls;

pub use server::app;

use crate::blob::{BlobStore, FsBlobStore};
use crate::crypto::Key;
use crate::meta::{MetaStore, SqliteMeta};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// Largest file accepted by an upload (`--max-file-size`).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 30;
/// Most files in one commit.
pub const MAX_COMMIT_FILES: usize = 100_000;
/// Largest JSON body of an API call (commit manifests included).
pub const MAX_JSON_BYTES: usize = 16 << 20;
/// Largest tenant policy.
pub const MAX_POLICY_BYTES: usize = 256 << 10;
/// Entries per page of a tree listing.
pub const TREE_PAGE: usize = 1000;
/// File name of the bootstrap admin token in the data folder.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
pub const MASTER_KEY_FILE: &str = "master-key";
pub const MASTER_KEY_ENV: &str = "ASSAY_MASTER_KEY";

#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    pub max_file_bytes: u64,
    /// Master key; `None`: `$ASSAY_MASTER_KEY`, else DATA/master-key (created 0600).
    pub master_key: Option<Key>,
}

impl Config {
    pub fn new(data: impl Into<PathBuf>) -> Config {
        Config {
            data: data.into(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            master_key: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("metadata: {0}")]
    Meta(#[from] meta::MetaError),
    #[error("master key: {0}")]
    Key(String),
    #[error("TLS: {0}")]
    Tls(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub denied: AtomicU64,
    pub not_found: AtomicU64,
    pub bytes_served: AtomicU64,
    pub bytes_ingested: AtomicU64,
    pub commits: AtomicU64,
    pub admitted: AtomicU64,
    pub refused: AtomicU64,
    pub scan_millis: AtomicU64,
}

/// The registry's state, shared by the handlers and the scan task.
pub struct Registry {
    pub data: PathBuf,
    pub max_file_bytes: u64,
    pub meta: Box<dyn MetaStore>,
    pub blobs: Box<dyn BlobStore>,
    pub audit: audit::Audit,
    pub metrics: Metrics,
    master: Key,
    wake: tokio::sync::Notify,
}

/// What the first start created.
pub struct Opened {
    pub registry: Arc<Registry>,
    /// The bootstrap admin token file, when this start created it.
    pub created_admin_token: Option<PathBuf>,
}

fn private_dir(p: &Path) -> Result<(), OpenError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(io_err(p))
}

fn write_secret(path: &Path, text: &str) -> Result<(), OpenError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(text.as_bytes()).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

impl Registry {
    /// Opens (creating on first start) the registry in `cfg.data`.
    pub fn open(cfg: &Config) -> Result<Opened, OpenError> {
        private_dir(&cfg.data)?;
        for sub in ["tmp", "work"] {
            private_dir(&cfg.data.join(sub))?;
        }
        let master = match cfg.master_key {
            Some(k) => k,
            None => match std::env::var(MASTER_KEY_ENV) {
                Ok(v) => crypto::parse_key(&v)
                    .map_err(|e| OpenError::Key(format!("${MASTER_KEY_ENV}: {e}")))?,
                Err(_) => {
                    let p = cfg.data.join(MASTER_KEY_FILE);
                    if !p.exists() {
                        write_secret(&p, &hex::encode(crypto::random::<32>()))?;
                    }
                    let text = fs::read_to_string(&p).map_err(io_err(&p))?;
                    crypto::parse_key(&text)
                        .map_err(|e| OpenError::Key(format!("{}: {e}", p.display())))?
                }
            },
        };
        let meta = SqliteMeta::open(&cfg.data.join("registry.db"))?;
        let blobs = FsBlobStore::new(cfg.data.join("blobs")).map_err(io_err(&cfg.data))?;
        let audit = audit::Audit::open(&cfg.data.join("audit.log")).map_err(io_err(&cfg.data))?;
        let registry = Registry {
            data: cfg.data.clone(),
            max_file_bytes: cfg.max_file_bytes,
            meta: Box::new(meta),
            blobs: Box::new(blobs),
            audit,
            metrics: Metrics::default(),
            master,
            wake: tokio::sync::Notify::new(),
        };
        let mut created_admin_token = None;
        let token_file = cfg.data.join(ADMIN_TOKEN_FILE);
        if !token_file.exists() {
            let now = now_rfc3339();
            let dek = crypto::random::<32>();
            let id = match registry.meta.tenant_create(
                auth::SYSTEM_TENANT,
                &crypto::wrap(&master, &dek, auth::SYSTEM_TENANT),
                &now,
            ) {
                Ok(id) => id,
                Err(meta::MetaError::Conflict) => 1,
                Err(e) => return Err(e.into()),
            };
            let token = auth::new_token();
            registry
                .meta
                .token_insert(id, "admin", &auth::hash_token(&token), &now)?;
            write_secret(&token_file, &format!("{token}\n"))?;
            registry
                .audit
                .log("bootstrap", None, "created", &[("file", ADMIN_TOKEN_FILE)]);
            created_admin_token = Some(token_file);
        }
        registry.meta.jobs_requeue_running()?;
        Ok(Opened {
            registry: Arc::new(registry),
            created_admin_token,
        })
    }

    /// The tenant's data key, unwrapped with the master key.
    pub fn tenant_key(&self, t: &meta::Tenant) -> Result<Key, crypto::CryptoError> {
        crypto::unwrap(&self.master, &t.wrapped_key, &t.name)
    }

    pub fn wrap_new_key(&self, tenant: &str) -> String {
        crypto::wrap(&self.master, &crypto::random::<32>(), tenant)
    }

    /// Wakes the scan task (a commit was queued).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Runs queued scan jobs until the process ends (phase 1: in-process worker).
    pub async fn run_scans(self: Arc<Self>) {
        loop {
            let reg = self.clone();
            let did = tokio::task::spawn_blocking(move || reg.scan_one())
                .await
                .unwrap_or(false);
            if !did {
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(2), self.wake.notified())
                        .await;
            }
        }
    }

    /// Claims and runs one job; false when the queue is empty.
    pub fn scan_one(&self) -> bool {
        let job = match self.meta.job_claim(&now_rfc3339()) {
            Ok(Some(j)) => j,
            Ok(None) => return false,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim a scan job");
                return false;
            }
        };
        let started = std::time::Instant::now();
        let outcome = scanjob::run(self, &job);
        let ms = started.elapsed().as_millis() as u64;
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.scan_millis.fetch_add(ms, Relaxed);
        if outcome.status == meta::ADMITTED {
            self.metrics.admitted.fetch_add(1, Relaxed);
        } else {
            self.metrics.refused.fetch_add(1, Relaxed);
        }
        if let Err(e) = self.meta.job_finish(&job, &outcome, &now_rfc3339()) {
            tracing::error!(error = %e, job = job.id, "cannot record a scan outcome");
        }
        let reasons = outcome.reasons.join("; ");
        self.audit.log(
            "admission",
            None,
            &outcome.status,
            &[
                ("tenant_id", &job.tenant_id.to_string()),
                ("commit", &job.commit_id),
                ("reasons", &reasons),
                ("scan_ms", &ms.to_string()),
            ],
        );
        tracing::info!(commit = %job.commit_id, status = %outcome.status, ms, "scan finished");
        true
    }
}

pub fn now_rfc3339() -> String {
    assay_sign::rfc3339_utc(std::time::SystemTime::now())
}

pub mod client;

/// Runs the server on `listen` until Ctrl-C: the HTTP router and the in-process scan
/// task, over TLS when `tls` names a certificate and key. `ready` is called with the bound
/// address.
pub fn serve(
    cfg: &Config,
    listen: &str,
    tls: Option<&tls::TlsFiles>,
    ready: impl FnOnce(std::net::SocketAddr, &Opened),
) -> Result<(), OpenError> {
    // Bad certificate or key files fail before anything is opened or bound.
    let tls_config = tls
        .map(tls::server_config)
        .transpose()
        .map_err(|e| OpenError::Tls(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io_err(&cfg.data))?;
    rt.block_on(async {
        let opened = Registry::open(cfg)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(io_err(Path::new(listen)))?;
        let addr = listener.local_addr().map_err(io_err(Path::new(listen)))?;
        ready(addr, &opened);
        let reg = opened.registry.clone();
        tokio::spawn(reg.clone().run_scans());
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match tls_config {
            Some(c) => {
                let listener =
                    tls::TlsListener::new(listener, c).map_err(io_err(Path::new(listen)))?;
                axum::serve(listener, app(reg))
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(listener, app(reg))
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
        .map_err(io_err(Path::new(listen)))
    })
}
