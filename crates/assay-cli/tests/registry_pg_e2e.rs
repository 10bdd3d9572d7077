//! The done-means flow on the scale-out configuration: `assay serve --database
//! postgres://… --workers 0` plus two `assay worker` processes sharing the queue, the data
//! folder (blobs) and a master key file; the real huggingface_hub client downloads.
//!
//! Needs `ASSAY_TEST_POSTGRES` (a PostgreSQL role that may CREATE DATABASE) and
//! `ASSAY_HF_PYTHON`; .ci/run provides both. Outside CI the test is skipped with a note
//! when one is unset; under CI=true it fails.

mod registry_common;
#[path = "../../assay-registry/tests/support/pg.rs"]
mod support_pg;

use registry_common::{
    Server, assay, done_means, downloads, hf_python, serve, spawn_logged, wait_for_line,
};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

fn write_key(path: &std::path::Path, hex: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    writeln!(f, "{hex}").unwrap();
}

/// SIGTERM, then the exit status within `limit`.
fn terminate(s: &mut Server, limit: Duration) -> std::process::ExitStatus {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &s.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = s.0.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "no exit {limit:?} after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn postgres_server_and_two_workers_admit_and_serve() {
    let Some(pg) = support_pg::server_url() else {
        return;
    };
    let Some(python) = hf_python() else {
        return;
    };
    let db = support_pg::TestDb::create(&pg);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry");
    let key = dir.path().join("master.key");
    write_key(&key, &"5a".repeat(32));
    let shared = [
        "--database".as_ref(),
        db.url.as_ref(),
        "--master-key-file".as_ref(),
        key.as_os_str(),
    ];
    let mut args = vec![
        "--data".as_ref(),
        data.as_os_str(),
        "--workers".as_ref(),
        "0".as_ref(),
    ];
    args.extend(shared);
    let (server, url, server_log) = serve(&args);

    // A worker with another master key refuses to start.
    let wrong = dir.path().join("wrong.key");
    write_key(&wrong, &"11".repeat(32));
    let out = assay()
        .args(["worker", "--database", &db.url, "--master-key-file"])
        .arg(&wrong)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("master key"), "{err}");

    let mut workers: Vec<_> = (0..2)
        .map(|_| spawn_logged(assay().arg("worker").args(shared).arg("--data").arg(&data)))
        .collect();
    for (w, log) in &mut workers {
        wait_for_line(log, "scanning jobs from", w);
    }

    let started = Instant::now();
    let tokens = done_means(&url, &data, &python);
    eprintln!(
        "done-means flow on PostgreSQL with 2 workers: {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The workers scanned (the server has no scan loop): the clean model was admitted and
    // the malicious one refused by a worker.
    let logs: Vec<String> = workers
        .iter()
        .flat_map(|(_, l)| l.lock().unwrap().clone())
        .collect();
    assert!(logs.iter().any(|l| l.contains(" admitted in ")), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains(" refused in ")), "{logs:?}");
    assert!(
        !server_log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("job ")),
        "the server scanned with --workers 0"
    );
    // The metadata is in PostgreSQL, not in a SQLite file.
    assert!(!data.join("registry.db").exists());
    let states = db.query_text("SELECT state FROM jobs ORDER BY id");
    assert_eq!(states, vec!["done", "done"]);
    let statuses = db.query_text("SELECT status FROM commits ORDER BY seq");
    assert_eq!(statuses, vec!["admitted", "refused"]);

    // A second server on the same database (and blob folder) serves the same registry.
    let mut args2 = vec![
        "--data".as_ref(),
        data.as_os_str(),
        "--workers".as_ref(),
        "0".as_ref(),
    ];
    args2.extend(shared);
    let (server2, url2, _log2) = serve(&args2);
    downloads(&url2, &tokens.reader, &tokens.other, &python);
    drop(server2);
    // A server without the key, or with another one, refuses to start on this database.
    let fresh = dir.path().join("fresh");
    for key_args in [
        vec![],
        vec!["--master-key-file".as_ref(), wrong.as_os_str()],
    ] {
        let out = assay()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                &db.url,
                "--data",
            ])
            .arg(&fresh)
            .args(key_args)
            .env_remove("ASSAY_MASTER_KEY")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("master key"), "{err}");
        assert!(!fresh.join("master-key").exists() && !fresh.join("admin-token").exists());
    }

    // Workers stop cleanly on SIGTERM.
    for (mut w, log) in workers {
        let st = terminate(&mut w, Duration::from_secs(10));
        assert!(st.success(), "{st}");
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            log.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("assay worker: stopped"))
        );
    }
    drop(server);
}
