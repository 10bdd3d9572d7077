//! Metadata: tenants, tokens, repositories, commits, refs, blobs and the scan job queue.
//!
//! [`MetaStore`] is the seam for phase 2. Phase 1 is [`SqliteMeta`] (rusqlite, bundled
//! SQLite). The SQL is kept portable (plain `CREATE TABLE`, `INTEGER`/`TEXT`/`BIGINT`
//! columns, `UPDATE ... RETURNING`); a PostgreSQL implementation changes the placeholders
//! (`?1` to `$1`), `INTEGER PRIMARY KEY` to `BIGSERIAL`, and claims jobs with
//! `SELECT ... FOR UPDATE SKIP LOCKED` so many `assay worker` processes can share the queue.
//! Calls are synchronous; the server runs them on the blocking pool.

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

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
}

/// Commit states.
pub const QUARANTINED: &str = "quarantined";
pub const ADMITTED: &str = "admitted";
pub const REFUSED: &str = "refused";

pub trait MetaStore: Send + Sync {
    fn tenant_create(&self, name: &str, wrapped_key: &str, now: &str) -> Result<i64>;
    fn tenant(&self, id: i64) -> Result<Option<Tenant>>;
    fn set_policy(&self, tenant: i64, policy: Option<&str>) -> Result<()>;
    fn token_insert(&self, tenant: i64, scope: &str, hash: &str, now: &str) -> Result<i64>;
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>>;
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
    /// Takes the oldest queued job (phase 2: `FOR UPDATE SKIP LOCKED`).
    fn job_claim(&self, now: &str) -> Result<Option<Job>>;
    fn job_finish(&self, job: &Job, outcome: &Outcome, now: &str) -> Result<()>;
    /// Puts jobs that were running when the process stopped back in the queue.
    fn jobs_requeue_running(&self) -> Result<usize>;
}

pub struct SqliteMeta {
    conn: Mutex<Connection>,
}

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
";

impl SqliteMeta {
    pub fn open(path: &Path) -> Result<SqliteMeta> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteMeta {
            conn: Mutex::new(conn),
        })
    }

    fn c(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
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
                |r| {
                    Ok(Tenant {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        wrapped_key: r.get(2)?,
                        policy: r.get(3)?,
                    })
                },
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

    fn token_insert(&self, tenant: i64, scope: &str, hash: &str, now: &str) -> Result<i64> {
        let c = self.c();
        c.execute(
            "INSERT INTO tokens (tenant_id, scope, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![tenant, scope, hash, now],
        )?;
        Ok(c.last_insert_rowid())
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        Ok(self
            .c()
            .query_row(
                "SELECT k.id, k.tenant_id, t.name, k.scope, k.hash FROM tokens k
                 JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = ?1",
                params![hash],
                |r| {
                    Ok(TokenRow {
                        id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        tenant_name: r.get(2)?,
                        scope: r.get(3)?,
                        hash: r.get(4)?,
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

    fn job_claim(&self, now: &str) -> Result<Option<Job>> {
        Ok(self
            .c()
            .query_row(
                "UPDATE jobs SET state = 'running', started_at = ?1
                 WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1)
                 RETURNING id, tenant_id, repo_id, commit_id",
                params![now],
                |r| {
                    Ok(Job {
                        id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        repo_id: r.get(2)?,
                        commit_id: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn job_finish(&self, job: &Job, o: &Outcome, now: &str) -> Result<()> {
        let mut c = self.c();
        let tx = c.transaction()?;
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
        tx.execute(
            "UPDATE jobs SET state = 'done', finished_at = ?1 WHERE id = ?2",
            params![now, job.id],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn jobs_requeue_running(&self) -> Result<usize> {
        Ok(self.c().execute(
            "UPDATE jobs SET state = 'queued', started_at = NULL WHERE state = 'running'",
            [],
        )?)
    }
}
