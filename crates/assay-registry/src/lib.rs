//! Assay's model registry (`assay serve`): multi-tenant, zero trust, Hugging Face Hub
//! compatible for downloads, and serving only revisions the tenant's policy admitted.
//!
//! Embedded by default: SQLite metadata ([`meta::SqliteMeta`]), blobs in a folder
//! ([`blob::FsBlobStore`]), scans on a task of the server. Scale-out is configuration:
//! PostgreSQL metadata ([`meta_pg::PgMeta`], `--database postgres://…`) shared by several
//! servers, and scans in any number of stateless `assay worker` processes
//! ([`Registry::open_worker`], [`work`]) that claim jobs from the queue in the database
//! (leases, heartbeats, an attempt limit: see [`meta`]). Every process of one registry
//! shares its master key (`--master-key-file` or `$ASSAY_MASTER_KEY`); a process with a
//! different key refuses to start.
//!
//! Blob storage: [`Config::store`] (`--store URL` of `assay serve` and `assay worker`)
//! selects [`objstore::ObjectBlobStore`], the `object_store` crate over S3
//! (`s3://BUCKET[/PREFIX]`), Azure Blob Storage (`az://CONTAINER[/PREFIX]`) or a folder
//! (`file:///PATH`), configured from the standard `AWS_*` / `AZURE_*` environment
//! variables; without it blobs stay in DATA/blobs. Every process that touches blobs builds
//! its store with [`open_blobs`].
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod blob;
pub mod crypto;
mod hf;
pub mod meta;
pub mod meta_pg;
pub mod names;
pub mod objstore;
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
use std::time::{Duration, Instant};

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

/// How long a claimed scan job stays claimed without a heartbeat.
pub const JOB_LEASE: Duration = Duration::from_secs(60);
/// How often a scanning process extends its job's lease.
pub const JOB_HEARTBEAT: Duration = Duration::from_secs(15);
/// Claims of one job before it is given up and its revision refused.
pub const MAX_JOB_ATTEMPTS: i64 = 3;
/// How often an idle scan loop looks for jobs queued by other processes.
pub const JOB_POLL: Duration = Duration::from_millis(500);
/// On shutdown, how long running scans may take to finish before their jobs are released.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// Most scan loops in one process (`--workers`, `--concurrency`).
pub const MAX_SCAN_LOOPS: usize = 64;

#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    pub max_file_bytes: u64,
    /// Master key; `None`: the file `master_key_file`, else `$ASSAY_MASTER_KEY`, else
    /// DATA/master-key (created 0600 when the database has no registry yet).
    pub master_key: Option<Key>,
    /// A file holding the master key (64 hex digits), shared by every server and worker
    /// of one database.
    pub master_key_file: Option<PathBuf>,
    /// `postgres://…`; `None`: SQLite in DATA/registry.db.
    pub database: Option<String>,
    /// Blob store URL (`s3://BUCKET[/PREFIX]`, `az://CONTAINER[/PREFIX]`,
    /// `file:///PATH`), configured from the environment; `None`: DATA/blobs.
    pub store: Option<String>,
}

impl Config {
    pub fn new(data: impl Into<PathBuf>) -> Config {
        Config {
            data: data.into(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            master_key: None,
            master_key_file: None,
            database: None,
            store: None,
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
    Meta(meta::MetaError),
    #[error("master key: {0}")]
    Key(String),
    #[error("TLS: {0}")]
    Tls(String),
}

impl From<meta::MetaError> for OpenError {
    fn from(e: meta::MetaError) -> Self {
        OpenError::Meta(e)
    }
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

/// The metadata store `cfg` names: PostgreSQL for `postgres://` URLs, else SQLite in
/// DATA/registry.db.
pub fn open_meta(cfg: &Config) -> Result<Box<dyn MetaStore>, OpenError> {
    match cfg.database.as_deref() {
        None => Ok(Box::new(SqliteMeta::open(&cfg.data.join("registry.db"))?)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Box::new(meta_pg::PgMeta::open(url)?))
        }
        Some(_) => Err(OpenError::Meta(meta::MetaError::Db(
            "--database takes a postgres:// or postgresql:// URL (without it: SQLite in the data folder)".into(),
        ))),
    }
}

/// The blob store `cfg` names (the one place that chooses it, for servers and workers):
/// `cfg.store` (see [`objstore`]: S3, Azure Blob or a folder through `object_store`,
/// configured from the URL and the environment), else DATA/blobs ([`FsBlobStore`]).
pub fn open_blobs(cfg: &Config) -> Result<Box<dyn BlobStore>, OpenError> {
    if let Some(url) = &cfg.store {
        let s = objstore::ObjectBlobStore::open(url).map_err(|source| OpenError::Io {
            path: format!("--store {}", objstore::public_url(url)),
            source,
        })?;
        return Ok(Box::new(s));
    }
    let root = cfg.data.join("blobs");
    Ok(Box::new(
        FsBlobStore::new(root.clone()).map_err(io_err(&root))?,
    ))
}

/// The master key from `cfg`, the file, the environment or DATA/master-key; `None` when
/// none is configured and DATA/master-key does not exist.
fn find_master_key(cfg: &Config) -> Result<Option<Key>, OpenError> {
    if let Some(k) = cfg.master_key {
        return Ok(Some(k));
    }
    if let Some(p) = &cfg.master_key_file {
        let text = fs::read_to_string(p).map_err(io_err(p))?;
        return crypto::parse_key(&text)
            .map(Some)
            .map_err(|e| OpenError::Key(format!("{}: {e}", p.display())));
    }
    if let Ok(v) = std::env::var(MASTER_KEY_ENV) {
        return crypto::parse_key(&v)
            .map(Some)
            .map_err(|e| OpenError::Key(format!("${MASTER_KEY_ENV}: {e}")));
    }
    let p = cfg.data.join(MASTER_KEY_FILE);
    if !p.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(&p).map_err(io_err(&p))?;
    crypto::parse_key(&text)
        .map(Some)
        .map_err(|e| OpenError::Key(format!("{}: {e}", p.display())))
}

const KEY_HELP: &str = "every server and worker of one registry needs its master key: --master-key-file FILE, $ASSAY_MASTER_KEY, or DATA/master-key";

/// Checks that `master` opens the keys of the database (the system tenant's key).
fn check_master_key(master: &Key, system: &meta::Tenant) -> Result<(), OpenError> {
    crypto::unwrap(master, &system.wrapped_key, auth::SYSTEM_TENANT)
        .map(|_| ())
        .map_err(|_| {
            OpenError::Key(format!(
                "this master key is not the one the registry's database was created with ({KEY_HELP})"
            ))
        })
}

/// What a scan loop did, for the caller's log lines.
#[derive(Debug, Clone)]
pub enum ScanEvent {
    Claimed(meta::Job),
    Finished {
        job: meta::Job,
        status: String,
        reasons: Vec<String>,
        millis: u64,
    },
    /// The claim was lost (lease expired, another process took the job): result dropped.
    Lost(meta::Job),
    /// Shutdown: the job went back to the queue unfinished.
    Released(meta::Job),
    /// The scan crashed (panicked); the job goes back to the queue, the attempt counts.
    Crashed(meta::Job),
    /// The job reached the attempt limit; its revision is refused.
    GaveUp(meta::Job),
    Error(String),
}

/// Receives [`ScanEvent`]s.
pub type OnEvent = Arc<dyn Fn(ScanEvent) + Send + Sync>;

impl Registry {
    fn assemble(
        cfg: &Config,
        master: Key,
        meta: Box<dyn MetaStore>,
    ) -> Result<Registry, OpenError> {
        Ok(Registry {
            data: cfg.data.clone(),
            max_file_bytes: cfg.max_file_bytes,
            meta,
            blobs: open_blobs(cfg)?,
            audit: audit::Audit::open(&cfg.data.join("audit.log")).map_err(io_err(&cfg.data))?,
            metrics: Metrics::default(),
            master,
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Opens (creating on first start) the registry in `cfg.data` and `cfg.database`.
    /// It blocks on the database (safe on any thread, but it stalls an async worker
    /// thread: `serve` calls it before starting its runtime).
    pub fn open(cfg: &Config) -> Result<Opened, OpenError> {
        private_dir(&cfg.data)?;
        for sub in ["tmp", "work"] {
            private_dir(&cfg.data.join(sub))?;
        }
        let meta = open_meta(cfg)?;
        let system = meta.tenant_named(auth::SYSTEM_TENANT)?;
        let master = match find_master_key(cfg)? {
            Some(k) => k,
            None if system.is_some() => {
                return Err(OpenError::Key(format!(
                    "no master key for an existing registry ({KEY_HELP})"
                )));
            }
            None => {
                let p = cfg.data.join(MASTER_KEY_FILE);
                let key = crypto::random::<32>();
                write_secret(&p, &hex::encode(key))?;
                key
            }
        };
        if let Some(t) = &system {
            check_master_key(&master, t)?;
        }
        let registry = Registry::assemble(cfg, master, meta)?;
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
                Err(meta::MetaError::Conflict) => {
                    // Another server of this database created it meanwhile.
                    let t = registry
                        .meta
                        .tenant_named(auth::SYSTEM_TENANT)?
                        .ok_or(meta::MetaError::Db("the system tenant vanished".into()))?;
                    check_master_key(&master, &t)?;
                    t.id
                }
                Err(e) => return Err(e.into()),
            };
            let token = auth::new_token();
            registry
                .meta
                .token_insert(id, "admin", &auth::hash_token(&token), &now, None)?;
            write_secret(&token_file, &format!("{token}\n"))?;
            registry
                .audit
                .log("bootstrap", None, "created", &[("file", ADMIN_TOKEN_FILE)]);
            created_admin_token = Some(token_file);
        }
        Ok(Opened {
            registry: Arc::new(registry),
            created_admin_token,
        })
    }

    /// Opens the registry for scanning only (`assay worker`): no bootstrap, no admin
    /// token; the database must hold a registry (an `assay serve` started on it) and the
    /// master key must be its key. DATA holds the worker's scratch folders and audit log.
    pub fn open_worker(cfg: &Config) -> Result<Arc<Registry>, OpenError> {
        private_dir(&cfg.data)?;
        for sub in ["tmp", "work"] {
            private_dir(&cfg.data.join(sub))?;
        }
        let meta = open_meta(cfg)?;
        let Some(system) = meta.tenant_named(auth::SYSTEM_TENANT)? else {
            return Err(OpenError::Meta(meta::MetaError::Db(
                "the database holds no registry yet: start `assay serve` on it first".into(),
            )));
        };
        let master = find_master_key(cfg)?
            .ok_or_else(|| OpenError::Key(format!("no master key ({KEY_HELP})")))?;
        check_master_key(&master, &system)?;
        Ok(Arc::new(Registry::assemble(cfg, master, meta)?))
    }

    /// The tenant's data key, unwrapped with the master key.
    pub fn tenant_key(&self, t: &meta::Tenant) -> Result<Key, crypto::CryptoError> {
        crypto::unwrap(&self.master, &t.wrapped_key, &t.name)
    }

    pub fn wrap_new_key(&self, tenant: &str) -> String {
        crypto::wrap(&self.master, &crypto::random::<32>(), tenant)
    }

    /// Wakes a scan loop (a commit was queued).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Gives up on exhausted jobs, then claims the next one.
    fn claim_next(&self, on: &OnEvent) -> Option<meta::Job> {
        let now = now_rfc3339();
        match self.meta.jobs_give_up(&now, MAX_JOB_ATTEMPTS) {
            Ok(jobs) => {
                for j in jobs {
                    use std::sync::atomic::Ordering::Relaxed;
                    self.metrics.refused.fetch_add(1, Relaxed);
                    self.audit.log(
                        "admission",
                        None,
                        meta::REFUSED,
                        &[
                            ("tenant_id", &j.tenant_id.to_string()),
                            ("commit", &j.commit_id),
                            ("reasons", &meta::gave_up_reason(j.attempt)),
                        ],
                    );
                    on(ScanEvent::GaveUp(j));
                }
            }
            Err(e) => on(ScanEvent::Error(format!(
                "cannot give up exhausted jobs: {e}"
            ))),
        }
        match self.meta.job_claim(&now, JOB_LEASE, MAX_JOB_ATTEMPTS) {
            Ok(j) => j,
            Err(e) => {
                on(ScanEvent::Error(format!("cannot claim a scan job: {e}")));
                None
            }
        }
    }

    /// Scans a claimed job and records its outcome (when the claim is still current).
    fn scan_claimed(&self, job: &meta::Job, on: &OnEvent) {
        let started = Instant::now();
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scanjob::run(self, job)));
        let outcome = match run {
            Ok(o) => o,
            Err(_) => {
                if let Err(e) = self.meta.job_release(job, true) {
                    on(ScanEvent::Error(format!(
                        "cannot release job {}: {e}",
                        job.id
                    )));
                }
                on(ScanEvent::Crashed(job.clone()));
                return;
            }
        };
        let ms = started.elapsed().as_millis() as u64;
        match self.meta.job_finish(job, &outcome, &now_rfc3339()) {
            Ok(true) => {}
            Ok(false) => {
                on(ScanEvent::Lost(job.clone()));
                return;
            }
            Err(e) => {
                on(ScanEvent::Error(format!(
                    "cannot record the outcome of job {}: {e}",
                    job.id
                )));
                return;
            }
        }
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.scan_millis.fetch_add(ms, Relaxed);
        if outcome.status == meta::ADMITTED {
            self.metrics.admitted.fetch_add(1, Relaxed);
        } else {
            self.metrics.refused.fetch_add(1, Relaxed);
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
                ("attempt", &job.attempt.to_string()),
            ],
        );
        tracing::info!(commit = %job.commit_id, status = %outcome.status, ms, "scan finished");
        on(ScanEvent::Finished {
            job: job.clone(),
            status: outcome.status,
            reasons: outcome.reasons,
            millis: ms,
        });
    }

    /// Claims and runs one job on this thread (no heartbeat); false when there is none.
    pub fn scan_one(&self) -> bool {
        let on: OnEvent = Arc::new(|_| {});
        match self.claim_next(&on) {
            Some(job) => {
                self.scan_claimed(&job, &on);
                true
            }
            None => false,
        }
    }

    /// Runs `loops` scan loops until `stop` turns true: each claims a job, scans it on
    /// the blocking pool while extending its lease, records the outcome, and claims the
    /// next. On stop, running scans get [`SHUTDOWN_GRACE`] to finish; then their jobs go
    /// back to the queue.
    pub async fn run_scans(
        self: Arc<Self>,
        loops: usize,
        stop: tokio::sync::watch::Receiver<bool>,
        on: OnEvent,
    ) {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..loops.min(MAX_SCAN_LOOPS) {
            set.spawn(self.clone().scan_loop(stop.clone(), on.clone()));
        }
        while set.join_next().await.is_some() {}
    }

    async fn scan_loop(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>, on: OnEvent) {
        loop {
            if *stop.borrow() {
                return;
            }
            let (reg, o) = (self.clone(), on.clone());
            let job = tokio::task::spawn_blocking(move || reg.claim_next(&o))
                .await
                .ok()
                .flatten();
            let Some(job) = job else {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(JOB_POLL) => {}
                    _ = stop.changed() => {}
                }
                continue;
            };
            on(ScanEvent::Claimed(job.clone()));
            let (reg, o, j) = (self.clone(), on.clone(), job.clone());
            let mut scan = tokio::task::spawn_blocking(move || reg.scan_claimed(&j, &o));
            let mut beat = tokio::time::interval(JOB_HEARTBEAT);
            beat.tick().await;
            let mut stopping = *stop.borrow();
            let mut lost = false;
            let deadline = tokio::time::sleep(if stopping {
                SHUTDOWN_GRACE
            } else {
                Duration::from_secs(365 * 86_400)
            });
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut scan => break,
                    _ = beat.tick(), if !lost => {
                        let (reg, j) = (self.clone(), job.clone());
                        match tokio::task::spawn_blocking(move || reg.meta.job_heartbeat(&j, JOB_LEASE)).await {
                            Ok(Ok(true)) => {}
                            Ok(Ok(false)) => {
                                // Reported once more when the result is dropped.
                                lost = true;
                            }
                            Ok(Err(e)) => on(ScanEvent::Error(format!("cannot extend the lease of job {}: {e}", job.id))),
                            Err(_) => {}
                        }
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        deadline.as_mut().reset(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                    }
                    _ = &mut deadline, if stopping => {
                        let (reg, j) = (self.clone(), job.clone());
                        let _ = tokio::task::spawn_blocking(move || reg.meta.job_release(&j, false)).await;
                        on(ScanEvent::Released(job.clone()));
                        return;
                    }
                }
            }
        }
    }
}

pub fn now_rfc3339() -> String {
    assay_sign::rfc3339_utc(std::time::SystemTime::now())
}

pub mod client;

/// A watch that turns true on Ctrl-C or SIGTERM.
fn shutdown_watch() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        let _ = tx.send(true);
    });
    rx
}

fn runtime(cfg: &Config) -> Result<tokio::runtime::Runtime, OpenError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io_err(&cfg.data))
}

/// Runs the server on `listen` until Ctrl-C or SIGTERM: the HTTP router (over TLS when
/// `tls` names a certificate and key) and `workers` scan loops (0: scanning is left to
/// `assay worker` processes). `ready` is called with the bound address.
pub fn serve(
    cfg: &Config,
    listen: &str,
    workers: usize,
    tls: Option<&tls::TlsFiles>,
    ready: impl FnOnce(std::net::SocketAddr, &Opened),
    on: OnEvent,
) -> Result<(), OpenError> {
    // Bad certificate or key files fail before anything is opened or bound.
    let tls_config = tls
        .map(tls::server_config)
        .transpose()
        .map_err(|e| OpenError::Tls(e.to_string()))?;
    // Opened before the runtime: the metadata store blocks.
    let opened = Registry::open(cfg)?;
    let rt = runtime(cfg)?;
    let res = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(io_err(Path::new(listen)))?;
        let addr = listener.local_addr().map_err(io_err(Path::new(listen)))?;
        ready(addr, &opened);
        let reg = opened.registry.clone();
        let stop = shutdown_watch();
        let scans = tokio::spawn(reg.clone().run_scans(workers, stop.clone(), on));
        let mut s2 = stop.clone();
        let shutdown = async move {
            let _ = s2.wait_for(|v| *v).await;
        };
        let served = match tls_config {
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
        .map_err(io_err(Path::new(listen)));
        let _ = scans.await;
        served
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    res
}

/// `assay worker`: runs `concurrency` scan loops on the registry's queue until Ctrl-C or
/// SIGTERM, then lets running scans finish ([`SHUTDOWN_GRACE`]) or releases their jobs.
pub fn work(
    cfg: &Config,
    concurrency: usize,
    ready: impl FnOnce(&Registry),
    on: OnEvent,
) -> Result<(), OpenError> {
    let reg = Registry::open_worker(cfg)?;
    let rt = runtime(cfg)?;
    rt.block_on(async {
        ready(&reg);
        let stop = shutdown_watch();
        reg.run_scans(concurrency.max(1), stop, on).await;
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
