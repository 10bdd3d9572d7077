//! The scan job queue under contention, on SQLite and on PostgreSQL: claims never overlap
//! (many connections racing), leases (a live claim is not stolen, an expired one is
//! reclaimed, a lost claim cannot record its result), releases, and the attempt limit.

#[path = "support/pg.rs"]
mod support_pg;

use assay_registry::meta::{self, FileRow, MetaStore, Outcome};
use assay_registry::{Config, MAX_JOB_ATTEMPTS, open_meta};
use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[derive(Clone)]
enum Backend {
    Sqlite,
    Postgres(String),
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(super::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                if let Some(url) = super::support_pg::server_url() {
                    super::$name(super::Backend::Postgres(url))
                }
            }
        }
    )*};
}

on_both_backends!(
    racing_claimers_never_share_a_job,
    a_live_lease_is_kept_and_an_expired_one_reclaimed,
    released_jobs_return_and_crashes_count,
    a_job_that_keeps_failing_is_given_up_and_refused,
);

/// A queue with its own database; `store()` opens another connection to it (another
/// process, as far as the database can tell).
struct Queue {
    cfg: Config,
    _dir: tempfile::TempDir,
    _db: Option<support_pg::TestDb>,
}

impl Queue {
    fn new(b: &Backend) -> Queue {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::new(dir.path());
        let db = match b {
            Backend::Sqlite => None,
            Backend::Postgres(server) => Some(support_pg::TestDb::create(server)),
        };
        cfg.database = db.as_ref().map(|d| d.url.clone());
        Queue {
            cfg,
            _dir: dir,
            _db: db,
        }
    }

    fn store(&self) -> Box<dyn MetaStore> {
        open_meta(&self.cfg).unwrap()
    }
}

const NOW: &str = "2026-01-01T00:00:00Z";

/// Queues `n` commits (one job each) in one repository; answers the repository id.
fn enqueue(m: &dyn MetaStore, n: usize) -> i64 {
    let t = m.tenant_create("acme", "k", NOW).unwrap();
    let repo = m.repo_get_or_create(t, "acme", "demo", NOW).unwrap();
    for i in 0..n {
        let f = FileRow {
            path: "config.json".into(),
            sha256: format!("{i:064x}"),
            size: 1,
        };
        m.commit_create(&repo, &format!("{i:040x}"), "main", &[f], NOW)
            .unwrap();
    }
    repo.id
}

fn outcome(status: &str, why: &str) -> Outcome {
    Outcome {
        status: status.into(),
        reasons: vec![why.into()],
        report: None,
        card: None,
        badge: None,
    }
}

const LONG: Duration = Duration::from_secs(60);

fn racing_claimers_never_share_a_job(b: Backend) {
    const JOBS: usize = 300;
    const CLAIMERS: usize = 8;
    let q = Arc::new(Queue::new(&b));
    let repo = enqueue(&*q.store(), JOBS);
    let barrier = Arc::new(Barrier::new(CLAIMERS));
    let started = Instant::now();
    let handles: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let (q, barrier) = (q.clone(), barrier.clone());
            std::thread::spawn(move || {
                let m = q.store();
                barrier.wait();
                let mut got = vec![];
                while let Some(j) = m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap() {
                    assert_eq!(j.attempt, 1);
                    assert!(
                        m.job_finish(&j, &outcome(meta::ADMITTED, "ok"), NOW)
                            .unwrap()
                    );
                    got.push(j.id);
                    // Off the lock for a moment, so that on a loaded machine one claimer
                    // does not take the whole queue before the others are scheduled.
                    std::thread::sleep(Duration::from_millis(1));
                }
                got
            })
        })
        .collect();
    let per: Vec<Vec<i64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let secs = started.elapsed().as_secs_f64();
    let all: Vec<i64> = per.iter().flatten().copied().collect();
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), JOBS, "every job claimed exactly once");
    assert_eq!(unique.len(), JOBS, "no job claimed twice");
    assert!(
        per.iter().filter(|v| !v.is_empty()).count() > 1,
        "the claimers raced"
    );
    eprintln!(
        "{JOBS} jobs claimed and finished by {CLAIMERS} connections in {secs:.2}s ({:.0} jobs/s)",
        JOBS as f64 / secs
    );
    let m = q.store();
    for c in m.commits(repo).unwrap() {
        assert_eq!(c.status, meta::ADMITTED);
    }
    assert!(m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().is_none());
}

fn a_live_lease_is_kept_and_an_expired_one_reclaimed(b: Backend) {
    let q = Queue::new(&b);
    let (a, other) = (q.store(), q.store());
    let repo = enqueue(&*a, 2);
    // A live lease: nobody else gets the job, heartbeats keep it.
    let first = a.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().unwrap();
    let second = other
        .job_claim(NOW, LONG, MAX_JOB_ATTEMPTS)
        .unwrap()
        .unwrap();
    assert_ne!(first.id, second.id);
    assert!(
        other
            .job_claim(NOW, LONG, MAX_JOB_ATTEMPTS)
            .unwrap()
            .is_none()
    );
    assert!(a.job_heartbeat(&first, LONG).unwrap());
    assert!(
        other
            .job_claim(NOW, LONG, MAX_JOB_ATTEMPTS)
            .unwrap()
            .is_none()
    );

    // A lease that runs out (the claimer died) is claimed again, as a new attempt.
    assert!(a.job_heartbeat(&first, Duration::from_millis(50)).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let again = other
        .job_claim(NOW, LONG, MAX_JOB_ATTEMPTS)
        .unwrap()
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.attempt, 2);
    assert_ne!(again.claim, first.claim);
    // The first claimer lost it: no heartbeat, and its late result is dropped.
    assert!(!a.job_heartbeat(&first, LONG).unwrap());
    assert!(
        !a.job_finish(&first, &outcome(meta::ADMITTED, "late"), NOW)
            .unwrap()
    );
    let c = a.commit(repo, &first.commit_id).unwrap().unwrap();
    assert_eq!(c.status, meta::QUARANTINED);
    assert!(
        other
            .job_finish(&again, &outcome(meta::REFUSED, "PKL001"), NOW)
            .unwrap()
    );
    let c = a.commit(repo, &first.commit_id).unwrap().unwrap();
    assert_eq!(c.status, meta::REFUSED);
    assert_eq!(c.reasons, vec!["PKL001".to_string()]);
    // A finished job is not claimed again, even after its lease time.
    assert!(!other.job_heartbeat(&again, LONG).unwrap());
    assert!(
        a.job_finish(&second, &outcome(meta::ADMITTED, "ok"), NOW)
            .unwrap()
    );
    assert!(
        other
            .job_claim(NOW, LONG, MAX_JOB_ATTEMPTS)
            .unwrap()
            .is_none()
    );
}

fn released_jobs_return_and_crashes_count(b: Backend) {
    let q = Queue::new(&b);
    let m = q.store();
    enqueue(&*m, 1);
    let j = m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().unwrap();
    assert_eq!(j.attempt, 1);
    // Shutdown: back in the queue at once, the attempt does not count.
    m.job_release(&j, false).unwrap();
    let j = m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().unwrap();
    assert_eq!(j.attempt, 1);
    // A stale claim cannot release the job again.
    m.job_release(&j, true).unwrap();
    m.job_release(&j, true).unwrap();
    let j = m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().unwrap();
    assert_eq!(j.attempt, 2, "a crash counts once");
}

fn a_job_that_keeps_failing_is_given_up_and_refused(b: Backend) {
    let q = Queue::new(&b);
    let m = q.store();
    let repo = enqueue(&*m, 1);
    // Each claimer dies (its lease runs out) before finishing.
    for attempt in 1..=MAX_JOB_ATTEMPTS {
        assert!(m.jobs_give_up(NOW, MAX_JOB_ATTEMPTS).unwrap().is_empty());
        let j = m
            .job_claim(NOW, Duration::from_millis(20), MAX_JOB_ATTEMPTS)
            .unwrap()
            .expect("claimable until the limit");
        assert_eq!(j.attempt, attempt);
        std::thread::sleep(Duration::from_millis(100));
    }
    // The limit is reached: no more claims; the job is given up and its revision refused.
    assert!(m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().is_none());
    let gone = m.jobs_give_up(NOW, MAX_JOB_ATTEMPTS).unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].attempt, MAX_JOB_ATTEMPTS);
    let c = m.commit(repo, &gone[0].commit_id).unwrap().unwrap();
    assert_eq!(c.status, meta::REFUSED);
    assert_eq!(c.reasons, vec![meta::gave_up_reason(MAX_JOB_ATTEMPTS)]);
    assert!(c.reasons[0].contains(&format!("{MAX_JOB_ATTEMPTS} attempts")));
    assert!(c.finished_at.is_some());
    assert!(m.jobs_give_up(NOW, MAX_JOB_ATTEMPTS).unwrap().is_empty());
    assert!(m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().is_none());
}

/// The PostgreSQL store is called from async code in the server and the tests: it must not
/// panic on a runtime's thread (the sync client would, if called there directly).
#[tokio::test(flavor = "current_thread")]
async fn postgres_calls_from_async_code_do_not_panic() {
    let Some(url) = support_pg::server_url() else {
        return;
    };
    let q = Queue::new(&Backend::Postgres(url));
    let m = q.store();
    enqueue(&*m, 1);
    let j = m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().unwrap();
    assert!(m.job_heartbeat(&j, LONG).unwrap());
    assert!(m.tenant_named("acme").unwrap().is_some());
    drop(m);
}

/// A database left by a newer assay is refused, not misread.
#[test]
fn postgres_refuses_a_newer_schema() {
    let Some(url) = support_pg::server_url() else {
        return;
    };
    let q = Queue::new(&Backend::Postgres(url));
    drop(q.store());
    let db = q._db.as_ref().unwrap();
    db.query_text("UPDATE schema_version SET version = 99 RETURNING 'x'");
    let err = open_meta(&q.cfg).err().expect("refused").to_string();
    assert!(err.contains("schema version 99"), "{err}");
}

/// One store shares a bounded pool however many threads call it, and survives its
/// connections being killed (a PostgreSQL restart or failover looks the same).
#[test]
fn postgres_pool_is_bounded_and_reconnects() {
    let Some(url) = support_pg::server_url() else {
        return;
    };
    let q = Queue::new(&Backend::Postgres(url));
    let m: Arc<dyn MetaStore> = Arc::from(q.store());
    enqueue(&*m, 1);
    let db = q._db.as_ref().unwrap();
    let count = format!(
        "SELECT count(*)::text FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'assay'",
        db.name
    );
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    assert!(m.tenant_named("acme").unwrap().is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let open: usize = db.query_text(&count)[0].parse().unwrap();
    assert!(
        (1..=assay_registry::meta_pg::PG_POOL_SIZE).contains(&open),
        "{open} connections"
    );
    // Kill every connection of the store; the next calls reconnect.
    let killed = db.query_text(&format!(
        "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity
         WHERE datname = '{}' AND application_name = 'assay'",
        db.name
    ));
    assert_eq!(killed.len(), open);
    for _ in 0..2 * assay_registry::meta_pg::PG_POOL_SIZE {
        assert!(m.tenant_named("acme").unwrap().is_some());
    }
    let j = m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().unwrap();
    assert!(
        m.job_finish(&j, &outcome(meta::ADMITTED, "ok"), NOW)
            .unwrap()
    );
}

/// A SQLite database of the first version (no leases; a job left running by a stopped
/// server) is migrated at open, and its job is scanned.
#[test]
fn sqlite_version_1_databases_are_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
               wrapped_key TEXT NOT NULL, policy TEXT, created_at TEXT NOT NULL);
             CREATE TABLE repos (id INTEGER PRIMARY KEY, tenant_id BIGINT NOT NULL REFERENCES tenants(id),
               org TEXT NOT NULL, name TEXT NOT NULL, folded TEXT NOT NULL, created_at TEXT NOT NULL,
               UNIQUE (tenant_id, folded));
             CREATE TABLE commits (repo_id BIGINT NOT NULL REFERENCES repos(id), id TEXT NOT NULL,
               revision TEXT NOT NULL, status TEXT NOT NULL, reasons TEXT NOT NULL, report TEXT,
               card TEXT, badge TEXT, created_at TEXT NOT NULL, finished_at TEXT,
               PRIMARY KEY (repo_id, id));
             CREATE TABLE jobs (id INTEGER PRIMARY KEY, tenant_id BIGINT NOT NULL,
               repo_id BIGINT NOT NULL, commit_id TEXT NOT NULL, state TEXT NOT NULL,
               created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT);
             INSERT INTO tenants VALUES (1, 'acme', 'k', NULL, 'then');
             INSERT INTO repos VALUES (1, 1, 'acme', 'demo', 'acme/demo', 'then');
             INSERT INTO commits VALUES (1, 'c1', 'main', 'quarantined', '[]', NULL, NULL, NULL, 'then', NULL);
             INSERT INTO jobs VALUES (1, 1, 1, 'c1', 'running', 'then', 'then', NULL);",
        )
        .unwrap();
    }
    let m = meta::SqliteMeta::open(&path).unwrap();
    let j = m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().unwrap();
    assert_eq!((j.id, j.commit_id.as_str(), j.attempt), (1, "c1", 1));
    assert!(
        m.job_finish(&j, &outcome(meta::ADMITTED, "ok"), NOW)
            .unwrap()
    );
    assert_eq!(m.commit(1, "c1").unwrap().unwrap().status, meta::ADMITTED);
    drop(m);
    // Opening again is a no-op.
    let m = meta::SqliteMeta::open(&path).unwrap();
    assert!(m.job_claim(NOW, LONG, MAX_JOB_ATTEMPTS).unwrap().is_none());
}
