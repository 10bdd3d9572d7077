//! PostgreSQL metadata (`assay serve --database postgres://…`, `assay worker`): the same
//! schema and semantics as [`crate::meta::SqliteMeta`], shared by any number of server and
//! worker processes.
//!
//! The client is the synchronous `postgres` crate. It drives its own small tokio runtime
//! and panics when called on a thread that is already running async tasks, so no caller
//! ever touches a connection: each connection lives on its own thread of a bounded pool
//! ([`PG_POOL_SIZE`]), calls are sent to the pool and the caller waits for the answer.
//! This is safe from any thread, async or not. A connection is opened on first use,
//! dropped when it breaks and opened again on the next call; a call whose connection was
//! found closed is retried once on a fresh one.
//!
//! Connections are plain TCP or Unix sockets without TLS: run PostgreSQL on a trusted
//! network or a Unix socket (`postgres:///assay?host=/run/postgresql`).

use crate::meta::{
    Commit, FileRow, Job, MetaError, MetaStore, Outcome, QUARANTINED, REFUSED, Repo, Result,
    SCHEMA_VERSION, Tenant, TokenInfo, TokenRow, gave_up_reason,
};
use postgres::error::SqlState;
use postgres::{Client, NoTls, Row};
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most connections (and pool threads) one process opens to PostgreSQL.
pub const PG_POOL_SIZE: usize = 8;
/// How long opening a connection may take.
pub const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Lock id (`pg_advisory_xact_lock`) that serialises schema creation between processes.
const SCHEMA_LOCK: i64 = 0x4153_5341_5952_4547; // "ASSAYREG"

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
  id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, wrapped_key TEXT NOT NULL,
  policy TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  id BIGSERIAL PRIMARY KEY, tenant_id BIGINT NOT NULL REFERENCES tenants(id),
  scope TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS repos (
  id BIGSERIAL PRIMARY KEY, tenant_id BIGINT NOT NULL REFERENCES tenants(id),
  org TEXT NOT NULL, name TEXT NOT NULL, folded TEXT NOT NULL, created_at TEXT NOT NULL,
  UNIQUE (tenant_id, folded));
CREATE TABLE IF NOT EXISTS blobs (
  tenant_id BIGINT NOT NULL, sha256 TEXT NOT NULL, size BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, sha256));
CREATE TABLE IF NOT EXISTS commits (
  repo_id BIGINT NOT NULL REFERENCES repos(id), id TEXT NOT NULL, revision TEXT NOT NULL,
  status TEXT NOT NULL, reasons TEXT NOT NULL, report TEXT, card TEXT, badge TEXT,
  created_at TEXT NOT NULL, finished_at TEXT, seq BIGSERIAL NOT NULL,
  PRIMARY KEY (repo_id, id));
CREATE TABLE IF NOT EXISTS files (
  repo_id BIGINT NOT NULL, commit_id TEXT NOT NULL, path TEXT NOT NULL,
  sha256 TEXT NOT NULL, size BIGINT NOT NULL, PRIMARY KEY (repo_id, commit_id, path));
CREATE TABLE IF NOT EXISTS refs (
  repo_id BIGINT NOT NULL, name TEXT NOT NULL, commit_id TEXT NOT NULL,
  PRIMARY KEY (repo_id, name));
CREATE TABLE IF NOT EXISTS jobs (
  id BIGSERIAL PRIMARY KEY, tenant_id BIGINT NOT NULL, repo_id BIGINT NOT NULL,
  commit_id TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL,
  started_at TEXT, finished_at TEXT, attempts BIGINT NOT NULL DEFAULT 0,
  lease_until BIGINT, claim TEXT);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (id) WHERE state IN ('queued', 'running');
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS revoked_at TEXT;
";

/// The database's clock in Unix milliseconds: leases do not depend on the clocks of the
/// machines the workers run on.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

type Task = Box<dyn FnOnce(&mut Conn) + Send>;

struct Conn {
    config: postgres::Config,
    client: Option<Client>,
}

impl Conn {
    /// Runs `f` on a live connection; a connection found closed is replaced and `f`
    /// retried once.
    fn run<T>(
        &mut self,
        mut f: impl FnMut(&mut Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        for attempt in 0..2 {
            if self.client.as_ref().is_none_or(|c| c.is_closed()) {
                self.client = Some(self.config.connect(NoTls).map_err(|e| {
                    MetaError::Db(format!("cannot connect to PostgreSQL: {}", describe(&e)))
                })?);
            }
            let Some(client) = self.client.as_mut() else {
                continue;
            };
            match f(client) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let broken = e.is_closed()
                        || client.is_closed()
                        || e.code().is_some_and(|c| {
                            let c = c.code();
                            c.starts_with("08") || c.starts_with("57P")
                        });
                    if broken {
                        self.client = None;
                        if attempt == 0 {
                            continue;
                        }
                    }
                    return Err(e.into());
                }
            }
        }
        Err(MetaError::Db("PostgreSQL connection lost".into()))
    }
}

impl From<postgres::Error> for MetaError {
    fn from(e: postgres::Error) -> Self {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            return MetaError::Conflict;
        }
        MetaError::Db(describe(&e))
    }
}

/// The server's message, or the error with its causes (a refused connection, a timeout).
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

/// PostgreSQL metadata behind a bounded pool of connection threads.
pub struct PgMeta {
    tx: Mutex<Option<mpsc::Sender<Task>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl PgMeta {
    /// Connects to `url` (`postgres://user@host:port/db`, or the key=value form), creates
    /// the schema when missing (idempotent; concurrent starts are serialised by an advisory
    /// lock) and checks its version.
    pub fn open(url: &str) -> Result<PgMeta> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| MetaError::Db(format!("invalid PostgreSQL URL: {e}")))?;
        config.connect_timeout(PG_CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("assay");
        }
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(PG_POOL_SIZE);
        for i in 0..PG_POOL_SIZE {
            let rx = rx.clone();
            let mut conn = Conn {
                config: config.clone(),
                client: None,
            };
            let h = std::thread::Builder::new()
                .name(format!("assay-pg-{i}"))
                .spawn(move || {
                    loop {
                        let task = {
                            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
                            rx.recv()
                        };
                        match task {
                            Ok(task) => task(&mut conn),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| MetaError::Db(format!("cannot start a PostgreSQL thread: {e}")))?;
            threads.push(h);
        }
        let meta = PgMeta {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
        };
        meta.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(SCHEMA)?;
            let v: Option<i64> = tx
                .query_one("SELECT max(version) FROM schema_version", &[])?
                .get(0);
            // The schema above brings an older database up to this version.
            if v.is_none_or(|v| v < SCHEMA_VERSION) {
                tx.execute("DELETE FROM schema_version", &[])?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )?;
            }
            tx.commit()?;
            Ok(v)
        })
        .and_then(|v| match v {
            Some(v) if v > SCHEMA_VERSION => Err(MetaError::Db(format!(
                "the database has schema version {v}, newer than this assay's {SCHEMA_VERSION}"
            ))),
            _ => Ok(()),
        })?;
        Ok(meta)
    }

    /// Runs `f` on a pooled connection and waits for its answer.
    fn with<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Client) -> std::result::Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T> {
        let (back, answer) = mpsc::sync_channel(1);
        let task: Task = Box::new(move |conn: &mut Conn| {
            let _ = back.send(conn.run(f));
        });
        {
            let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            let Some(tx) = tx.as_ref() else {
                return Err(MetaError::Db("the PostgreSQL pool is closed".into()));
            };
            tx.send(task)
                .map_err(|_| MetaError::Db("the PostgreSQL pool stopped".into()))?;
        }
        answer
            .recv()
            .map_err(|_| MetaError::Db("a PostgreSQL pool thread stopped".into()))?
    }
}

impl Drop for PgMeta {
    fn drop(&mut self) {
        // Closing the queue ends the threads (and their connections) after their call.
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for h in threads {
            let _ = h.join();
        }
    }
}

fn tenant_row(r: &Row) -> Tenant {
    Tenant {
        id: r.get(0),
        name: r.get(1),
        wrapped_key: r.get(2),
        policy: r.get(3),
    }
}

fn commit_row(r: &Row) -> Commit {
    let reasons: String = r.get(4);
    Commit {
        id: r.get(0),
        repo_id: r.get(1),
        revision: r.get(2),
        status: r.get(3),
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        created_at: r.get(5),
        finished_at: r.get(6),
    }
}

fn job_row(r: &Row, claim: &str) -> Job {
    Job {
        id: r.get(0),
        tenant_id: r.get(1),
        repo_id: r.get(2),
        commit_id: r.get(3),
        attempt: r.get(4),
        claim: claim.to_string(),
    }
}

const COMMIT_COLS: &str = "id, repo_id, revision, status, reasons, created_at, finished_at";

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl MetaStore for PgMeta {
    fn tenant_create(&self, name: &str, wrapped_key: &str, now: &str) -> Result<i64> {
        let (name, key, now) = (name.to_string(), wrapped_key.to_string(), now.to_string());
        self.with(move |c| {
            Ok(c.query_one(
                "INSERT INTO tenants (name, wrapped_key, created_at) VALUES ($1, $2, $3) RETURNING id",
                &[&name, &key, &now],
            )?
            .get(0))
        })
    }

    fn tenant(&self, id: i64) -> Result<Option<Tenant>> {
        self.with(move |c| {
            Ok(c.query_opt(
                "SELECT id, name, wrapped_key, policy FROM tenants WHERE id = $1",
                &[&id],
            )?
            .map(|r| tenant_row(&r)))
        })
    }

    fn tenant_named(&self, name: &str) -> Result<Option<Tenant>> {
        let name = name.to_string();
        self.with(move |c| {
            Ok(c.query_opt(
                "SELECT id, name, wrapped_key, policy FROM tenants WHERE name = $1",
                &[&name],
            )?
            .map(|r| tenant_row(&r)))
        })
    }

    fn set_policy(&self, tenant: i64, policy: Option<&str>) -> Result<()> {
        let policy = policy.map(str::to_string);
        self.with(move |c| {
            c.execute(
                "UPDATE tenants SET policy = $1 WHERE id = $2",
                &[&policy, &tenant],
            )?;
            Ok(())
        })
    }

    fn token_insert(
        &self,
        tenant: i64,
        scope: &str,
        hash: &str,
        now: &str,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        let (scope, hash, now) = (scope.to_string(), hash.to_string(), now.to_string());
        self.with(move |c| {
            Ok(c.query_one(
                "INSERT INTO tokens (tenant_id, scope, hash, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&tenant, &scope, &hash, &now, &expires_at],
            )?
            .get(0))
        })
    }

    fn tokens(&self, tenant: i64) -> Result<Vec<TokenInfo>> {
        self.with(move |c| {
            Ok(c.query(
                "SELECT id, scope, created_at, expires_at, revoked_at FROM tokens
                 WHERE tenant_id = $1 ORDER BY id",
                &[&tenant],
            )?
            .iter()
            .map(|r| TokenInfo {
                id: r.get(0),
                scope: r.get(1),
                created_at: r.get(2),
                expires_at: r.get(3),
                revoked_at: r.get(4),
            })
            .collect())
        })
    }

    fn token_revoke(&self, tenant: i64, id: i64, now: &str) -> Result<bool> {
        let now = now.to_string();
        self.with(move |c| {
            Ok(c.execute(
                "UPDATE tokens SET revoked_at = $1
                 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
                &[&now, &id, &tenant],
            )? == 1)
        })
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        let hash = hash.to_string();
        self.with(move |c| {
            Ok(c.query_opt(
                "SELECT k.id, k.tenant_id, t.name, k.scope, k.hash, k.expires_at,
                        k.revoked_at IS NOT NULL
                 FROM tokens k JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = $1",
                &[&hash],
            )?
            .map(|r| TokenRow {
                id: r.get(0),
                tenant_id: r.get(1),
                tenant_name: r.get(2),
                scope: r.get(3),
                hash: r.get(4),
                expires_at: r.get(5),
                revoked: r.get(6),
            }))
        })
    }

    fn repo(&self, tenant: i64, org: &str, name: &str) -> Result<Option<Repo>> {
        let (org, name) = (org.to_string(), name.to_string());
        self.with(move |c| {
            Ok(c.query_opt(
                "SELECT id, tenant_id, org, name FROM repos
                 WHERE tenant_id = $1 AND org = $2 AND name = $3",
                &[&tenant, &org, &name],
            )?
            .map(|r| Repo {
                id: r.get(0),
                tenant_id: r.get(1),
                org: r.get(2),
                name: r.get(3),
            }))
        })
    }

    fn repo_get_or_create(&self, tenant: i64, org: &str, name: &str, now: &str) -> Result<Repo> {
        if let Some(r) = self.repo(tenant, org, name)? {
            return Ok(r);
        }
        let folded = format!("{}/{}", org.to_lowercase(), name.to_lowercase());
        let (o, n, now) = (org.to_string(), name.to_string(), now.to_string());
        let id: i64 = self.with(move |c| {
            Ok(c.query_one(
                "INSERT INTO repos (tenant_id, org, name, folded, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&tenant, &o, &n, &folded, &now],
            )?
            .get(0))
        })?;
        Ok(Repo {
            id,
            tenant_id: tenant,
            org: org.to_string(),
            name: name.to_string(),
        })
    }

    fn blob_has(&self, tenant: i64, sha256: &str) -> Result<bool> {
        let sha = sha256.to_string();
        self.with(move |c| {
            Ok(c.query_opt(
                "SELECT 1 FROM blobs WHERE tenant_id = $1 AND sha256 = $2",
                &[&tenant, &sha],
            )?
            .is_some())
        })
    }

    fn blob_add(&self, tenant: i64, sha256: &str, size: u64) -> Result<()> {
        let sha = sha256.to_string();
        let size = size as i64;
        self.with(move |c| {
            c.execute(
                "INSERT INTO blobs (tenant_id, sha256, size) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, sha256) DO NOTHING",
                &[&tenant, &sha, &size],
            )?;
            Ok(())
        })
    }

    fn commit_create(
        &self,
        repo: &Repo,
        commit: &str,
        revision: &str,
        files: &[FileRow],
        now: &str,
    ) -> Result<()> {
        let (rid, tid) = (repo.id, repo.tenant_id);
        let (commit, revision, now) = (commit.to_string(), revision.to_string(), now.to_string());
        let files = files.to_vec();
        self.with(move |c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO commits (repo_id, id, revision, status, reasons, created_at)
                 VALUES ($1, $2, $3, $4, '[]', $5)",
                &[&rid, &commit, &revision, &QUARANTINED, &now],
            )?;
            let st = tx.prepare(
                "INSERT INTO files (repo_id, commit_id, path, sha256, size) VALUES ($1, $2, $3, $4, $5)",
            )?;
            for f in &files {
                tx.execute(&st, &[&rid, &commit, &f.path, &f.sha256, &(f.size as i64)])?;
            }
            tx.execute(
                "INSERT INTO refs (repo_id, name, commit_id) VALUES ($1, $2, $3)
                 ON CONFLICT (repo_id, name) DO UPDATE SET commit_id = excluded.commit_id",
                &[&rid, &revision, &commit],
            )?;
            tx.execute(
                "INSERT INTO jobs (tenant_id, repo_id, commit_id, state, created_at)
                 VALUES ($1, $2, $3, 'queued', $4)",
                &[&tid, &rid, &commit, &now],
            )?;
            tx.commit()
        })
    }

    fn commit(&self, repo: i64, id: &str) -> Result<Option<Commit>> {
        let id = id.to_string();
        self.with(move |c| {
            Ok(c.query_opt(
                &format!("SELECT {COMMIT_COLS} FROM commits WHERE repo_id = $1 AND id = $2"),
                &[&repo, &id],
            )?
            .map(|r| commit_row(&r)))
        })
    }

    fn commits(&self, repo: i64) -> Result<Vec<Commit>> {
        self.with(move |c| {
            Ok(c.query(
                &format!(
                    "SELECT {COMMIT_COLS} FROM commits WHERE repo_id = $1
                     ORDER BY created_at DESC, seq DESC"
                ),
                &[&repo],
            )?
            .iter()
            .map(commit_row)
            .collect())
        })
    }

    fn commit_artifacts(
        &self,
        repo: i64,
        id: &str,
    ) -> Result<(Option<String>, Option<String>, Option<String>)> {
        let id = id.to_string();
        self.with(move |c| {
            Ok(c.query_opt(
                "SELECT report, card, badge FROM commits WHERE repo_id = $1 AND id = $2",
                &[&repo, &id],
            )?
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .unwrap_or((None, None, None)))
        })
    }

    fn ref_target(&self, repo: i64, name: &str) -> Result<Option<String>> {
        let name = name.to_string();
        self.with(move |c| {
            Ok(c.query_opt(
                "SELECT commit_id FROM refs WHERE repo_id = $1 AND name = $2",
                &[&repo, &name],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn files(&self, repo: i64, commit: &str) -> Result<Vec<FileRow>> {
        let commit = commit.to_string();
        self.with(move |c| {
            Ok(c.query(
                "SELECT path, sha256, size FROM files WHERE repo_id = $1 AND commit_id = $2
                 ORDER BY path COLLATE \"C\"",
                &[&repo, &commit],
            )?
            .iter()
            .map(|r| FileRow {
                path: r.get(0),
                sha256: r.get(1),
                size: r.get::<_, i64>(2) as u64,
            })
            .collect())
        })
    }

    fn job_claim(&self, now: &str, lease: Duration, max_attempts: i64) -> Result<Option<Job>> {
        let now = now.to_string();
        let lease = ms(lease);
        let claim = crate::meta::new_claim();
        self.with(move |c| {
            let row = c.query_opt(
                &format!(
                    "WITH next AS (
                       SELECT id FROM jobs
                       WHERE (state = 'queued' OR (state = 'running' AND (lease_until IS NULL OR lease_until < {NOW_MS})))
                         AND attempts < $4
                       ORDER BY id LIMIT 1
                       FOR UPDATE SKIP LOCKED)
                     UPDATE jobs j SET state = 'running', started_at = $1,
                       attempts = j.attempts + 1, lease_until = {NOW_MS} + $2, claim = $3
                     FROM next WHERE j.id = next.id
                     RETURNING j.id, j.tenant_id, j.repo_id, j.commit_id, j.attempts"
                ),
                &[&now, &lease, &claim, &max_attempts],
            )?;
            Ok(row.map(|r| job_row(&r, &claim)))
        })
    }

    fn job_heartbeat(&self, job: &Job, lease: Duration) -> Result<bool> {
        let (id, claim, lease) = (job.id, job.claim.clone(), ms(lease));
        self.with(move |c| {
            Ok(c.execute(
                &format!(
                    "UPDATE jobs SET lease_until = {NOW_MS} + $1
                     WHERE id = $2 AND claim = $3 AND state = 'running'"
                ),
                &[&lease, &id, &claim],
            )? == 1)
        })
    }

    fn job_finish(&self, job: &Job, o: &Outcome, now: &str) -> Result<bool> {
        let job = job.clone();
        let o = o.clone();
        let now = now.to_string();
        let reasons = serde_json::to_string(&o.reasons).unwrap_or_else(|_| "[]".into());
        self.with(move |c| {
            let mut tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE jobs SET state = 'done', finished_at = $1
                 WHERE id = $2 AND claim = $3 AND state = 'running'",
                &[&now, &job.id, &job.claim],
            )?;
            if n != 1 {
                return Ok(false);
            }
            tx.execute(
                "UPDATE commits SET status = $1, reasons = $2, report = $3, card = $4, badge = $5,
                 finished_at = $6 WHERE repo_id = $7 AND id = $8",
                &[
                    &o.status,
                    &reasons,
                    &o.report,
                    &o.card,
                    &o.badge,
                    &now,
                    &job.repo_id,
                    &job.commit_id,
                ],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn job_release(&self, job: &Job, failed: bool) -> Result<()> {
        let (id, claim) = (job.id, job.claim.clone());
        let back: i64 = if failed { 0 } else { 1 };
        self.with(move |c| {
            c.execute(
                "UPDATE jobs SET state = 'queued', lease_until = NULL, claim = NULL,
                   attempts = attempts - $1
                 WHERE id = $2 AND claim = $3 AND state = 'running'",
                &[&back, &id, &claim],
            )?;
            Ok(())
        })
    }

    fn jobs_give_up(&self, now: &str, max_attempts: i64) -> Result<Vec<Job>> {
        let now = now.to_string();
        self.with(move |c| {
            let mut tx = c.transaction()?;
            let rows = tx.query(
                &format!(
                    "WITH dead AS (
                       SELECT id FROM jobs
                       WHERE (state = 'queued' OR (state = 'running' AND (lease_until IS NULL OR lease_until < {NOW_MS})))
                         AND attempts >= $2
                       FOR UPDATE SKIP LOCKED)
                     UPDATE jobs j SET state = 'failed', finished_at = $1, claim = NULL
                     FROM dead WHERE j.id = dead.id
                     RETURNING j.id, j.tenant_id, j.repo_id, j.commit_id, j.attempts"
                ),
                &[&now, &max_attempts],
            )?;
            let jobs: Vec<Job> = rows.iter().map(|r| job_row(r, "")).collect();
            for j in &jobs {
                let reasons = serde_json::to_string(&[gave_up_reason(j.attempt)])
                    .unwrap_or_else(|_| "[]".into());
                tx.execute(
                    "UPDATE commits SET status = $1, reasons = $2, finished_at = $3
                     WHERE repo_id = $4 AND id = $5 AND status = $6",
                    &[
                        &REFUSED,
                        &reasons,
                        &now,
                        &j.repo_id,
                        &j.commit_id,
                        &QUARANTINED,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(jobs)
        })
    }
}
