//! Metadata: tenants, tokens, repositories, commits, refs, blobs and the scan job queue.
//!
//! Two implementations of [`MetaStore`]: [`SqliteMeta`] (rusqlite, bundled SQLite, the
//! default: nothing to install) and [`crate::meta_pg::PgMeta`] (`--database postgres://…`).
//! The SQL is the same schema in both (PostgreSQL: `BIGSERIAL`, `$1` placeholders).
//! Calls are synchronous; the server runs them on tokio's blocking pool.
//!
//! ## The job queue
//!
//! A commit queues one scan job. Any number of processes claim jobs (`assay serve
//! --workers N`, `assay worker`): a claim takes the oldest job that is queued, or running
//! with an expired lease, in one transaction (`FOR UPDATE SKIP LOCKED` in PostgreSQL,
//! `BEGIN IMMEDIATE` in SQLite), marks it running under a fresh claim id and sets its
//! lease. The claimer extends the lease while it scans ([`MetaStore::job_heartbeat`]);
//! a claimer that dies stops extending it and the job is claimed again once the lease
//! expires. Only the current claim may finish or release a job, so a late result of a lost
//! claim is dropped. Every claim counts an attempt; a job whose attempts reached the limit
//! is given up ([`MetaStore::jobs_give_up`]): its revision is refused with the reason.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// Version of the schema this build writes (stored in `schema_version`). A database
/// with a newer version is refused.
pub const SCHEMA_VERSION: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("already exists")]
    Conflict,
    #[error("database: {0}")]
    Db(String),
}

impl From<rusqlite::Error> for MetaError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && f.code == rusqlite::ErrorCode::ConstraintViolation
        {
            return MetaError::Conflict;
        }
        MetaError::Db(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, MetaError>;

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub wrapped_key: String,
    pub policy: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub tenant_id: i64,
    pub tenant_name: String,
    pub scope: String,
    pub hash: String,
    /// Unix seconds after which the token is refused; `None`: no expiry.
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

/// A token as its tenant's admins see it (never the token or its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub id: i64,
    pub scope: String,
    pub created_at: String,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub id: i64,
    pub tenant_id: i64,
    pub org: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub id: String,
    pub repo_id: i64,
    pub revision: String,
    pub status: String,
    pub reasons: Vec<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: String,
    pub reasons: Vec<String>,
    pub report: Option<String>,
    pub card: Option<String>,
    pub badge: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub tenant_id: i64,
    pub repo_id: i64,
    pub commit_id: String,
    /// 1 for the first claim of the job, 2 for the second, …
    pub attempt: i64,
    /// Random id of this claim: only its holder may heartbeat, finish or release the job.
    pub claim: String,
}

/// The reason a given-up job's revision is refused with.
pub fn gave_up_reason(attempts: i64) -> String {
    format!(
        "scan failed: no scan of this revision finished in {attempts} attempts (the scanning process crashed, was killed or lost its lease each time)"
    )
}

pub(crate) fn new_claim() -> String {
    hex::encode(crate::crypto::random::<16>())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Commit states.
pub const QUARANTINED: &str = "quarantined";
pub const ADMITTED: &str = "admitted";
pub const REFUSED: &str = "refused";

pub trait MetaStore: Send + Sync {
    fn tenant_create(&self, name: &str, wrapped_key: &str, now: &str) -> Result<i64>;
    fn tenant(&self, id: i64) -> Result<Option<Tenant>>;
    fn set_policy(&self, tenant: i64, policy: Option<&str>) -> Result<()>;
    /// `expires_at`: Unix seconds after which the token is refused.
    fn token_insert(
        &self,
        tenant: i64,
        scope: &str,
        hash: &str,
        now: &str,
        expires_at: Option<i64>,
    ) -> Result<i64>;
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>>;
    /// The tenant's tokens, oldest first.
    fn tokens(&self, tenant: i64) -> Result<Vec<TokenInfo>>;
    /// Revokes token `id` of `tenant`; false when the tenant has no such token (or it was
    /// already revoked).
    fn token_revoke(&self, tenant: i64, id: i64, now: &str) -> Result<bool>;
    /// The repository with exactly this org and name in this tenant.
    fn repo(&self, tenant: i64, org: &str, name: &str) -> Result<Option<Repo>>;
    /// The repository, created when missing. `Conflict` when another repository's name
    /// differs from this one only in case.
    fn repo_get_or_create(&self, tenant: i64, org: &str, name: &str, now: &str) -> Result<Repo>;
    fn blob_has(&self, tenant: i64, sha256: &str) -> Result<bool>;
    fn blob_add(&self, tenant: i64, sha256: &str, size: u64) -> Result<()>;
    /// Records a quarantined commit with its files, moves `revision` to it and queues its
    /// scan, atomically.
    fn commit_create(
        &self,
        repo: &Repo,
        commit: &str,
        revision: &str,
        files: &[FileRow],
        now: &str,
    ) -> Result<()>;
    fn commit(&self, repo: i64, id: &str) -> Result<Option<Commit>>;
    fn commits(&self, repo: i64) -> Result<Vec<Commit>>;
    /// (report, card, badge) of a finished commit.
    fn commit_artifacts(
        &self,
        repo: i64,
        id: &str,
    ) -> Result<(Option<String>, Option<String>, Option<String>)>;
    fn ref_target(&self, repo: i64, name: &str) -> Result<Option<String>>;
    fn files(&self, repo: i64, commit: &str) -> Result<Vec<FileRow>>;
    /// The tenant of this name.
    fn tenant_named(&self, name: &str) -> Result<Option<Tenant>>;
    /// Claims the oldest job that is queued or whose lease expired, and has been claimed
    /// fewer than `max_attempts` times; its lease runs for `lease` from now (the
    /// database's clock). `None` when there is no such job.
    fn job_claim(&self, now: &str, lease: Duration, max_attempts: i64) -> Result<Option<Job>>;
    /// Extends the lease of a claimed job; false when the claim is no longer current
    /// (its lease expired and another process claimed the job, or it finished).
    fn job_heartbeat(&self, job: &Job, lease: Duration) -> Result<bool>;
    /// Records the outcome on the commit and marks the job done, atomically; false (and
    /// nothing recorded) when the claim is no longer current.
    fn job_finish(&self, job: &Job, outcome: &Outcome, now: &str) -> Result<bool>;
    /// Puts a claimed job back in the queue (shutdown: `failed` false, the attempt does
    /// not count; a crash of the scan: `failed` true).
    fn job_release(&self, job: &Job, failed: bool) -> Result<()>;
    /// Gives up on jobs that were claimed `max_attempts` times and are queued again or
    /// whose lease expired: the job fails and its revision is refused with
    /// [`gave_up_reason`]. Answers the given-up jobs.
    fn jobs_give_up(&self, now: &str, max_attempts: i64) -> Result<Vec<Job>>;
}

pub struct SqliteMeta {
    conn: Mutex<Connection>,
}

/// How long a SQLite call waits for another process's write transaction.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tenants (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, wrapped_key TEXT NOT NULL,
  policy TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  id INTEGER PRIMARY KEY, tenant_id BIGINT NOT NULL REFERENCES tenants(id),
  scope TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS repos (
  id INTEGER PRIMARY KEY, tenant_id BIGINT NOT NULL REFERENCES tenants(id),
  org TEXT NOT NULL, name TEXT NOT NULL, folded TEXT NOT NULL, created_at TEXT NOT NULL,
  UNIQUE (tenant_id, folded));
CREATE TABLE IF NOT EXISTS blobs (
  tenant_id BIGINT NOT NULL, sha256 TEXT NOT NULL, size BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, sha256));
CREATE TABLE IF NOT EXISTS commits (
  repo_id BIGINT NOT NULL REFERENCES repos(id), id TEXT NOT NULL, revision TEXT NOT NULL,
  status TEXT NOT NULL, reasons TEXT NOT NULL, report TEXT, card TEXT, badge TEXT,
  created_at TEXT NOT NULL, finished_at TEXT, PRIMARY KEY (repo_id, id));
CREATE TABLE IF NOT EXISTS files (
  repo_id BIGINT NOT NULL, commit_id TEXT NOT NULL, path TEXT NOT NULL,
  sha256 TEXT NOT NULL, size BIGINT NOT NULL, PRIMARY KEY (repo_id, commit_id, path));
CREATE TABLE IF NOT EXISTS refs (
  repo_id BIGINT NOT NULL, name TEXT NOT NULL, commit_id TEXT NOT NULL,
  PRIMARY KEY (repo_id, name));
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY, tenant_id BIGINT NOT NULL, repo_id BIGINT NOT NULL,
  commit_id TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL,
  started_at TEXT, finished_at TEXT);
CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
";

/// Version 2: job leases (`lease_until`, Unix milliseconds), claim ids and attempts.
/// Version 1 had one process, which requeued its running jobs at start: so does this.
const MIGRATE_2: &str = "
UPDATE jobs SET state = 'queued', started_at = NULL WHERE state = 'running';
ALTER TABLE jobs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
ALTER TABLE jobs ADD COLUMN claim TEXT;
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (id) WHERE state IN ('queued', 'running');
";

/// Version 3: token expiry (Unix seconds) and revocation.
const MIGRATE_3: &str = "
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN revoked_at TEXT;
";

/// Milliseconds since the Unix epoch (SQLite's lease clock: one machine).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

impl SqliteMeta {
    pub fn open(path: &Path) -> Result<SqliteMeta> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Several processes (`assay serve`, `assay worker`) may share the file.
        conn.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
        let mut conn = conn;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let version: i64 = tx
            .query_row("SELECT max(version) FROM schema_version", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .unwrap_or(1);
        if version > SCHEMA_VERSION {
            return Err(MetaError::Db(format!(
                "the database has schema version {version}, newer than this assay's {SCHEMA_VERSION}"
            )));
        }
        if version < 2 {
            tx.execute_batch(MIGRATE_2)?;
        }
        if version < 3 {
            tx.execute_batch(MIGRATE_3)?;
        }
        tx.execute("DELETE FROM schema_version", [])?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            params![SCHEMA_VERSION],
        )?;
        tx.commit()?;
        Ok(SqliteMeta {
            conn: Mutex::new(conn),
        })
    }

    fn c(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn tenant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: r.get(0)?,
        name: r.get(1)?,
        wrapped_key: r.get(2)?,
        policy: r.get(3)?,
    })
}

fn commit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Commit> {
    let reasons: String = r.get(4)?;
    Ok(Commit {
        id: r.get(0)?,
        repo_id: r.get(1)?,
        revision: r.get(2)?,
        status: r.get(3)?,
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        created_at: r.get(5)?,
        finished_at: r.get(6)?,
    })
}

const COMMIT_COLS: &str = "id, repo_id, revision, status, reasons, created_at, finished_at";

impl MetaStore for SqliteMeta {
    fn tenant_create(&self, name: &str, wrapped_key: &str, now: &str) -> Result<i64> {
        let c = self.c();
        c.execute(
            "INSERT INTO tenants (name, wrapped_key, created_at) VALUES (?1, ?2, ?3)",
            params![name, wrapped_key, now],
        )?;
        Ok(c.last_insert_rowid())
    }

    fn tenant(&self, id: i64) -> Result<Option<Tenant>> {
        Ok(self
            .c()
            .query_row(
                "SELECT id, name, wrapped_key, policy FROM tenants WHERE id = ?1",
                params![id],
                tenant_row,
            )
            .optional()?)
    }

    fn set_policy(&self, tenant: i64, policy: Option<&str>) -> Result<()> {
        self.c().execute(
            "UPDATE tenants SET policy = ?1 WHERE id = ?2",
            params![policy, tenant],
        )?;
        Ok(())
    }

    fn token_insert(
        &self,
        tenant: i64,
        scope: &str,
        hash: &str,
        now: &str,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        let c = self.c();
        c.execute(
            "INSERT INTO tokens (tenant_id, scope, hash, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant, scope, hash, now, expires_at],
        )?;
        Ok(c.last_insert_rowid())
    }

    fn tokens(&self, tenant: i64) -> Result<Vec<TokenInfo>> {
        let c = self.c();
        let mut st = c.prepare(
            "SELECT id, scope, created_at, expires_at, revoked_at FROM tokens
             WHERE tenant_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![tenant], |r| {
            Ok(TokenInfo {
                id: r.get(0)?,
                scope: r.get(1)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn token_revoke(&self, tenant: i64, id: i64, now: &str) -> Result<bool> {
        Ok(self.c().execute(
            "UPDATE tokens SET revoked_at = ?1
             WHERE id = ?2 AND tenant_id = ?3 AND revoked_at IS NULL",
            params![now, id, tenant],
        )? == 1)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        Ok(self
            .c()
            .query_row(
                "SELECT k.id, k.tenant_id, t.name, k.scope, k.hash, k.expires_at,
                        k.revoked_at IS NOT NULL
                 FROM tokens k JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = ?1",
                params![hash],
                |r| {
                    Ok(TokenRow {
                        id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        tenant_name: r.get(2)?,
                        scope: r.get(3)?,
                        hash: r.get(4)?,
                        expires_at: r.get(5)?,
                        revoked: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    fn repo(&self, tenant: i64, org: &str, name: &str) -> Result<Option<Repo>> {
        Ok(self
            .c()
            .query_row(
                "SELECT id, tenant_id, org, name FROM repos
                 WHERE tenant_id = ?1 AND org = ?2 AND name = ?3",
                params![tenant, org, name],
                |r| {
                    Ok(Repo {
                        id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        org: r.get(2)?,
                        name: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn repo_get_or_create(&self, tenant: i64, org: &str, name: &str, now: &str) -> Result<Repo> {
        if let Some(r) = self.repo(tenant, org, name)? {
            return Ok(r);
        }
        let c = self.c();
        let folded = format!("{}/{}", org.to_lowercase(), name.to_lowercase());
        c.execute(
            "INSERT INTO repos (tenant_id, org, name, folded, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant, org, name, folded, now],
        )?;
        Ok(Repo {
            id: c.last_insert_rowid(),
            tenant_id: tenant,
            org: org.to_string(),
            name: name.to_string(),
        })
    }

    fn blob_has(&self, tenant: i64, sha256: &str) -> Result<bool> {
        Ok(self
            .c()
            .query_row(
                "SELECT 1 FROM blobs WHERE tenant_id = ?1 AND sha256 = ?2",
                params![tenant, sha256],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn blob_add(&self, tenant: i64, sha256: &str, size: u64) -> Result<()> {
        self.c().execute(
            "INSERT INTO blobs (tenant_id, sha256, size) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant_id, sha256) DO NOTHING",
            params![tenant, sha256, size as i64],
        )?;
        Ok(())
    }

    fn commit_create(
        &self,
        repo: &Repo,
        commit: &str,
        revision: &str,
        files: &[FileRow],
        now: &str,
    ) -> Result<()> {
        let mut c = self.c();
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO commits (repo_id, id, revision, status, reasons, created_at)
             VALUES (?1, ?2, ?3, ?4, '[]', ?5)",
            params![repo.id, commit, revision, QUARANTINED, now],
        )?;
        {
            let mut st = tx.prepare(
                "INSERT INTO files (repo_id, commit_id, path, sha256, size) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for f in files {
                st.execute(params![repo.id, commit, f.path, f.sha256, f.size as i64])?;
            }
        }
        tx.execute(
            "INSERT INTO refs (repo_id, name, commit_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (repo_id, name) DO UPDATE SET commit_id = excluded.commit_id",
            params![repo.id, revision, commit],
        )?;
        tx.execute(
            "INSERT INTO jobs (tenant_id, repo_id, commit_id, state, created_at)
             VALUES (?1, ?2, ?3, 'queued', ?4)",
            params![repo.tenant_id, repo.id, commit, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn commit(&self, repo: i64, id: &str) -> Result<Option<Commit>> {
        Ok(self
            .c()
            .query_row(
                &format!("SELECT {COMMIT_COLS} FROM commits WHERE repo_id = ?1 AND id = ?2"),
                params![repo, id],
                commit_row,
            )
            .optional()?)
    }

    fn commits(&self, repo: i64) -> Result<Vec<Commit>> {
        let c = self.c();
        let mut st = c.prepare(&format!(
            "SELECT {COMMIT_COLS} FROM commits WHERE repo_id = ?1 ORDER BY created_at DESC, rowid DESC"
        ))?;
        let rows = st.query_map(params![repo], commit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn commit_artifacts(
        &self,
        repo: i64,
        id: &str,
    ) -> Result<(Option<String>, Option<String>, Option<String>)> {
        Ok(self
            .c()
            .query_row(
                "SELECT report, card, badge FROM commits WHERE repo_id = ?1 AND id = ?2",
                params![repo, id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .unwrap_or((None, None, None)))
    }

    fn ref_target(&self, repo: i64, name: &str) -> Result<Option<String>> {
        Ok(self
            .c()
            .query_row(
                "SELECT commit_id FROM refs WHERE repo_id = ?1 AND name = ?2",
                params![repo, name],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn files(&self, repo: i64, commit: &str) -> Result<Vec<FileRow>> {
        let c = self.c();
        let mut st = c.prepare(
            "SELECT path, sha256, size FROM files WHERE repo_id = ?1 AND commit_id = ?2 ORDER BY path",
        )?;
        let rows = st.query_map(params![repo, commit], |r| {
            Ok(FileRow {
                path: r.get(0)?,
                sha256: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn tenant_named(&self, name: &str) -> Result<Option<Tenant>> {
        Ok(self
            .c()
            .query_row(
                "SELECT id, name, wrapped_key, policy FROM tenants WHERE name = ?1",
                params![name],
                tenant_row,
            )
            .optional()?)
    }

    fn job_claim(&self, now: &str, lease: Duration, max_attempts: i64) -> Result<Option<Job>> {
        let mut c = self.c();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let t = now_ms();
        let claim = new_claim();
        let job = tx
            .query_row(
                "UPDATE jobs SET state = 'running', started_at = ?1, attempts = attempts + 1,
                   lease_until = ?2, claim = ?3
                 WHERE id = (SELECT id FROM jobs
                   WHERE (state = 'queued' OR (state = 'running' AND (lease_until IS NULL OR lease_until < ?4)))
                     AND attempts < ?5
                   ORDER BY id LIMIT 1)
                 RETURNING id, tenant_id, repo_id, commit_id, attempts",
                params![now, t.saturating_add(millis(lease)), claim, t, max_attempts],
                |r| {
                    Ok(Job {
                        id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        repo_id: r.get(2)?,
                        commit_id: r.get(3)?,
                        attempt: r.get(4)?,
                        claim: claim.clone(),
                    })
                },
            )
            .optional()?;
        tx.commit()?;
        Ok(job)
    }

    fn job_heartbeat(&self, job: &Job, lease: Duration) -> Result<bool> {
        let n = self.c().execute(
            "UPDATE jobs SET lease_until = ?1 WHERE id = ?2 AND claim = ?3 AND state = 'running'",
            params![now_ms().saturating_add(millis(lease)), job.id, job.claim],
        )?;
        Ok(n == 1)
    }

    fn job_finish(&self, job: &Job, o: &Outcome, now: &str) -> Result<bool> {
        let mut c = self.c();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE jobs SET state = 'done', finished_at = ?1
             WHERE id = ?2 AND claim = ?3 AND state = 'running'",
            params![now, job.id, job.claim],
        )?;
        if n != 1 {
            return Ok(false);
        }
        let reasons = serde_json::to_string(&o.reasons).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "UPDATE commits SET status = ?1, reasons = ?2, report = ?3, card = ?4, badge = ?5,
             finished_at = ?6 WHERE repo_id = ?7 AND id = ?8",
            params![
                o.status,
                reasons,
                o.report,
                o.card,
                o.badge,
                now,
                job.repo_id,
                job.commit_id
            ],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn job_release(&self, job: &Job, failed: bool) -> Result<()> {
        self.c().execute(
            "UPDATE jobs SET state = 'queued', lease_until = NULL, claim = NULL,
               attempts = attempts - ?1
             WHERE id = ?2 AND claim = ?3 AND state = 'running'",
            params![if failed { 0 } else { 1 }, job.id, job.claim],
        )?;
        Ok(())
    }

    fn jobs_give_up(&self, now: &str, max_attempts: i64) -> Result<Vec<Job>> {
        let mut c = self.c();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let jobs = {
            let mut st = tx.prepare(
                "UPDATE jobs SET state = 'failed', finished_at = ?1, claim = NULL
                 WHERE (state = 'queued' OR (state = 'running' AND (lease_until IS NULL OR lease_until < ?2)))
                   AND attempts >= ?3
                 RETURNING id, tenant_id, repo_id, commit_id, attempts",
            )?;
            let rows = st.query_map(params![now, now_ms(), max_attempts], |r| {
                Ok(Job {
                    id: r.get(0)?,
                    tenant_id: r.get(1)?,
                    repo_id: r.get(2)?,
                    commit_id: r.get(3)?,
                    attempt: r.get(4)?,
                    claim: String::new(),
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        for j in &jobs {
            let reasons =
                serde_json::to_string(&[gave_up_reason(j.attempt)]).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "UPDATE commits SET status = ?1, reasons = ?2, finished_at = ?3
                 WHERE repo_id = ?4 AND id = ?5 AND status = ?6",
                params![REFUSED, reasons, now, j.repo_id, j.commit_id, QUARANTINED],
            )?;
        }
        tx.commit()?;
        Ok(jobs)
    }
}
