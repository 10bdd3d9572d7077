//! A fresh PostgreSQL database per test, on the server `ASSAY_TEST_POSTGRES` names (a
//! role that may CREATE DATABASE; .ci/run starts one). Without it the test is skipped with
//! a note, except under CI=true where it fails. Shared by the registry's and the CLI's
//! tests (`#[path]`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

pub const ENV: &str = "ASSAY_TEST_POSTGRES";

/// The server URL, or `None` (skip) outside CI when it is not set.
pub fn server_url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{ENV} is not set; .ci/run must start PostgreSQL");
            }
            eprintln!("skipping: set {ENV} to a PostgreSQL URL of a role that may CREATE DATABASE");
            None
        }
    }
}

/// `url` with its database name replaced by `db`.
pub fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after..]
        .find('/')
        .map(|i| after + i)
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..host_end])
}

/// A database created for one test and dropped (with its connections) at the end.
pub struct TestDb {
    server: String,
    pub name: String,
    pub url: String,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    pub fn create(server: &str) -> TestDb {
        let name = format!(
            "assay_t{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let s = server.to_string();
        let n = name.clone();
        // The sync client must not run on an async worker thread: use a plain thread.
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&s, postgres::NoTls).expect("connect");
            c.batch_execute(&format!("CREATE DATABASE \"{n}\""))
                .expect("create database");
        })
        .join()
        .unwrap();
        TestDb {
            url: with_db(server, &name),
            server: server.to_string(),
            name,
        }
    }

    /// Runs SQL on this test's database and answers the first column of each row as text.
    pub fn query_text(&self, sql: &str) -> Vec<String> {
        let (u, q) = (self.url.clone(), sql.to_string());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&u, postgres::NoTls).expect("connect");
            c.query(&q, &[])
                .expect("query")
                .iter()
                .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
                .collect()
        })
        .join()
        .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (s, n) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&s, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{n}\" WITH (FORCE)"));
            }
        })
        .join();
    }
}
