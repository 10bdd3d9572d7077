//! The whole router in process (tower `oneshot`), including adversarial requests. Every
//! test runs twice: on SQLite and on PostgreSQL (`ASSAY_TEST_POSTGRES`, see support/pg.rs).

#[path = "support/pg.rs"]
mod support_pg;

use assay_registry::{Config, Registry, app};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;

/// Where the registry keeps its metadata.
#[derive(Clone)]
enum Backend {
    Sqlite,
    /// The server URL; each registry gets its own database.
    Postgres(String),
}

/// Each named test as `NAME::sqlite` and `NAME::postgres` (skipped with a note without
/// `ASSAY_TEST_POSTGRES`, failed under CI=true).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if let Some(url) = super::support_pg::server_url() {
                    super::$name(super::Backend::Postgres(url)).await
                }
            }
        }
    )*};
}

on_both_backends!(
    quarantine_scan_admit_and_serve,
    other_tenants_get_the_same_not_found_as_for_nothing,
    path_tricks_and_case_folding,
    revision_confusion,
    tokens_scopes_and_replay,
    oversized_uploads_are_refused,
    blobs_are_encrypted_per_tenant_and_dedup_stays_inside,
    scan_loops_decide_queued_commits_and_stop_on_request,
    large_files_and_ranges_across_windows,
    tokens_expire_and_revoke,
);

struct Reg {
    reg: Arc<Registry>,
    admin: String,
    _dir: tempfile::TempDir,
    data: PathBuf,
    /// Dropped last: the registry's connections close first.
    db: Option<support_pg::TestDb>,
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn h(&self, k: &str) -> &str {
        self.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

impl Reg {
    fn new(backend: &Backend, max_file: u64) -> Reg {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut cfg = Config::new(&data);
        cfg.max_file_bytes = max_file;
        cfg.master_key = Some([7u8; 32]);
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres(server) => Some(support_pg::TestDb::create(server)),
        };
        cfg.database = db.as_ref().map(|d| d.url.clone());
        // Opened on this async test's worker thread on purpose: the PostgreSQL store must
        // not panic there.
        let opened = Registry::open(&cfg).unwrap();
        let admin = std::fs::read_to_string(data.join("admin-token"))
            .unwrap()
            .trim()
            .to_string();
        Reg {
            reg: opened.registry,
            admin,
            _dir: dir,
            data,
            db,
        }
    }

    async fn req(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let r = app(self.reg.clone())
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str, token: &str) -> Resp {
        self.req("GET", uri, Some(token), vec![], &[]).await
    }

    async fn tenant(&self, name: &str) -> String {
        let r = self
            .req(
                "POST",
                "/api/registry/tenants",
                Some(&self.admin),
                json!({"name": name}).to_string().into_bytes(),
                &[],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["token"].as_str().unwrap().to_string()
    }

    async fn token(&self, admin: &str, scope: &str) -> String {
        let r = self
            .req(
                "POST",
                "/api/registry/tokens",
                Some(admin),
                json!({"scope": scope}).to_string().into_bytes(),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        r.json()["token"].as_str().unwrap().to_string()
    }

    /// Uploads a folder and commits it; answers the commit id (not yet scanned).
    async fn push(&self, token: &str, dir: &Path, repo: &str, rev: &str) -> Resp {
        let mut files = vec![];
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            let r = self
                .req(
                    "POST",
                    "/api/registry/blobs",
                    Some(token),
                    bytes.clone(),
                    &[],
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{}",
                String::from_utf8_lossy(&r.body)
            );
            files.push(json!({"path": p.file_name().unwrap().to_str().unwrap(), "sha256": r.json()["sha256"], "size": bytes.len()}));
        }
        self.req(
            "POST",
            &format!("/api/registry/models/{repo}/commit/{rev}"),
            Some(token),
            json!({"files": files}).to_string().into_bytes(),
            &[],
        )
        .await
    }

    fn scan_all(&self) {
        while self.reg.scan_one() {}
    }
}

/// Two tenants, a clean model and a refused one in `acme`.
async fn setup(b: Backend) -> (Reg, String, String, String, String) {
    let r = Reg::new(&b, 1 << 20);
    let a = r.tenant("acme").await;
    let b = r.tenant("other").await;
    let c1 = r
        .push(&a, &examples().join("demo-model"), "acme/demo", "main")
        .await;
    assert_eq!(c1.status, StatusCode::CREATED);
    let c2 = r
        .push(
            &a,
            &examples().join("suspicious-model"),
            "acme/evil",
            "main",
        )
        .await;
    let good = c1.json()["commit"].as_str().unwrap().to_string();
    let bad = c2.json()["commit"].as_str().unwrap().to_string();
    (r, a, b, good, bad)
}

async fn quarantine_scan_admit_and_serve(b: Backend) {
    let (r, a, _b, good, bad) = setup(b).await;
    let read = r.token(&a, "read").await;
    // Before the scan: quarantined, gated.
    let q = r.get("/api/models/acme/demo", &read).await;
    assert_eq!(q.status, StatusCode::FORBIDDEN);
    assert_eq!(q.h("x-error-code"), "GatedRepo");
    assert!(q.h("x-error-message").contains("quarantined"));
    r.scan_all();

    let info = r.get("/api/models/acme/demo/revision/main", &read).await;
    assert_eq!(info.status, StatusCode::OK);
    let v = info.json();
    assert_eq!(v["sha"], good.as_str());
    assert_eq!(v["id"], "acme/demo");
    assert_eq!(v["siblings"].as_array().unwrap().len(), 3);

    let cfg = std::fs::read(examples().join("demo-model/config.json")).unwrap();
    let sha = assay_sign::sha256_hex(&cfg);
    let head = r
        .req(
            "HEAD",
            "/acme/demo/resolve/main/config.json",
            Some(&read),
            vec![],
            &[],
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.h("x-repo-commit"), good);
    assert_eq!(head.h("x-linked-etag"), format!("\"{sha}\""));
    assert_eq!(head.h("etag"), format!("\"{sha}\""));
    assert_eq!(head.h("x-linked-size"), cfg.len().to_string());
    assert_eq!(head.h("content-length"), cfg.len().to_string());
    assert_eq!(head.h("accept-ranges"), "bytes");
    let full = r
        .get(&format!("/acme/demo/resolve/{good}/config.json"), &read)
        .await;
    assert_eq!(full.body, cfg);
    let part = r
        .req(
            "GET",
            "/acme/demo/resolve/main/config.json",
            Some(&read),
            vec![],
            &[("range", "bytes=5-20")],
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, &cfg[5..21]);
    assert_eq!(part.h("content-range"), format!("bytes 5-20/{}", cfg.len()));
    let bad_range = r
        .req(
            "GET",
            "/acme/demo/resolve/main/config.json",
            Some(&read),
            vec![],
            &[("range", "bytes=99999-")],
        )
        .await;
    assert_eq!(bad_range.status, StatusCode::RANGE_NOT_SATISFIABLE);

    let tree = r
        .get("/api/models/acme/demo/tree/main?recursive=true", &read)
        .await;
    let t = tree.json();
    let e = t
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "config.json")
        .unwrap()
        .clone();
    assert_eq!(e["lfs"]["oid"], sha.as_str());
    assert_eq!(e["type"], "file");

    let missing = r.get("/acme/demo/resolve/main/nope.bin", &read).await;
    assert_eq!(
        (missing.status, missing.h("x-error-code")),
        (StatusCode::NOT_FOUND, "EntryNotFound")
    );
    let norev = r.get("/acme/demo/resolve/dev/config.json", &read).await;
    assert_eq!(
        (norev.status, norev.h("x-error-code")),
        (StatusCode::NOT_FOUND, "RevisionNotFound")
    );

    // The refused model: gated with its reasons, by branch and by commit id.
    for uri in [
        "/api/models/acme/evil".to_string(),
        format!("/api/models/acme/evil/revision/{bad}"),
        "/acme/evil/resolve/main/config.json".into(),
        format!("/acme/evil/resolve/{bad}/config.json"),
    ] {
        let g = r.get(&uri, &read).await;
        assert_eq!(g.status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(g.h("x-error-code"), "GatedRepo");
        assert!(
            g.h("x-error-message").contains("PKL001"),
            "{}",
            g.h("x-error-message")
        );
    }
    // Writers see the history with reasons.
    let st = r.get("/api/registry/models/acme/evil", &a).await.json();
    assert_eq!(st["commits"][0]["status"], "refused");
    assert!(
        st["commits"][0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("PKL001")
    );
    // Readers may not.
    assert_eq!(
        r.get("/api/registry/models/acme/evil", &read).await.status,
        StatusCode::FORBIDDEN
    );
    // Page and metrics.
    let page = r
        .req("GET", "/ui/acme/demo", Some(&read), vec![], &[])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page.body).contains("admitted"));
    let m = r.req("GET", "/metrics", None, vec![], &[]).await;
    assert!(String::from_utf8_lossy(&m.body).contains("assay_registry_admitted_total 1"));
}

async fn other_tenants_get_the_same_not_found_as_for_nothing(b: Backend) {
    let (r, _a, b, good, bad) = setup(b).await;
    r.scan_all();
    let uris = |repo: &str, c: &str| {
        vec![
            format!("/api/models/{repo}"),
            format!("/api/models/{repo}/revision/main"),
            format!("/api/models/{repo}/revision/{c}"),
            format!("/api/models/{repo}/tree/main?recursive=true"),
            format!("/{repo}/resolve/main/config.json"),
            format!("/{repo}/resolve/{c}/config.json"),
        ]
    };
    for (repo, c) in [("acme/demo", &good), ("acme/evil", &bad)] {
        let theirs = uris(repo, c);
        let nothing = uris("acme/does-not-exist", c);
        for (u, n) in theirs.iter().zip(nothing.iter()) {
            let x = r.get(u, &b).await;
            let y = r.get(n, &b).await;
            assert_eq!(x.status, StatusCode::NOT_FOUND, "{u}");
            assert_eq!(
                (
                    x.status,
                    x.h("x-error-code"),
                    x.h("x-error-message"),
                    &x.body
                ),
                (
                    y.status,
                    y.h("x-error-code"),
                    y.h("x-error-message"),
                    &y.body
                ),
                "{u} vs {n}"
            );
            assert_eq!(x.h("x-error-code"), "RepoNotFound");
        }
    }
    // The writer status API and the page do not tell either.
    let b_admin = b.clone();
    assert_eq!(
        r.get("/api/registry/models/acme/demo", &b_admin)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        r.get("/ui/acme/demo", &b_admin).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn path_tricks_and_case_folding(b: Backend) {
    let (r, a, _b, _good, _bad) = setup(b).await;
    r.scan_all();
    let read = r.token(&a, "read").await;
    for uri in [
        "/acme/demo/resolve/main/../evil/config.json",
        "/acme/demo/resolve/main/%2e%2e/%2e%2e/data/master-key",
        "/acme/demo/resolve/main/..%2F..%2Fmaster-key",
        "/acme/demo/resolve/main/sub%2F..%2Fconfig.json",
        "/acme/demo/resolve/main//config.json",
        "/acme/demo/resolve/main/%2Fetc%2Fpasswd",
    ] {
        let x = r.get(uri, &read).await;
        assert!(x.status == StatusCode::NOT_FOUND, "{uri}: {}", x.status);
        assert!(
            x.body.len() < 400 && !String::from_utf8_lossy(&x.body).contains("root:"),
            "{uri}"
        );
    }
    for uri in [
        "/api/models/acme%2Fdemo",
        "/api/models/ACME/demo",
        "/api/models/acme/DEMO",
        "/api/models/acme/..",
        "/api/models/%2e%2e/demo",
        "/api/models/acme%2F..%2Facme/demo",
    ] {
        let x = r.get(uri, &read).await;
        assert_eq!(x.status, StatusCode::NOT_FOUND, "{uri}");
    }
    // A look-alike differing only in case cannot be pushed beside the original.
    let c = r
        .push(&a, &examples().join("demo-model"), "acme/Demo", "main")
        .await;
    assert_eq!(c.status, StatusCode::CONFLICT);
    // Bad paths in a commit are refused.
    let blob = r
        .req("POST", "/api/registry/blobs", Some(&a), b"x".to_vec(), &[])
        .await
        .json();
    for p in ["../x", "/abs", "a/../../b", "a\\b", "", "a//b"] {
        let body = json!({"files": [{"path": p, "sha256": blob["sha256"], "size": 1}]}).to_string();
        let x = r
            .req(
                "POST",
                "/api/registry/models/acme/p/commit/main",
                Some(&a),
                body.into_bytes(),
                &[],
            )
            .await;
        assert_eq!(x.status, StatusCode::BAD_REQUEST, "{p:?}");
    }
}

async fn revision_confusion(b: Backend) {
    let (r, a, b, good, bad) = setup(b).await;
    r.scan_all();
    let read = r.token(&a, "read").await;
    // An admitted commit of one repository is not a revision of another.
    let x = r
        .get(&format!("/api/models/acme/evil/revision/{good}"), &read)
        .await;
    assert_eq!(
        (x.status, x.h("x-error-code")),
        (StatusCode::NOT_FOUND, "RevisionNotFound")
    );
    let x = r
        .get(&format!("/acme/evil/resolve/{good}/config.json"), &read)
        .await;
    assert_eq!(x.h("x-error-code"), "RevisionNotFound");
    // The refused commit stays refused when asked for by its id.
    let x = r
        .get(&format!("/acme/evil/resolve/{bad}/optimizer.pt"), &read)
        .await;
    assert_eq!(
        (x.status, x.h("x-error-code")),
        (StatusCode::FORBIDDEN, "GatedRepo")
    );
    // A branch cannot be named like a commit id, or a path.
    let blob = r
        .req("POST", "/api/registry/blobs", Some(&a), b"x".to_vec(), &[])
        .await
        .json();
    let body = json!({"files": [{"path": "x", "sha256": blob["sha256"], "size": 1}]}).to_string();
    for rev in [good.as_str(), "..", "refs%2Fpr%2F1"] {
        let x = r
            .req(
                "POST",
                &format!("/api/registry/models/acme/demo/commit/{rev}"),
                Some(&a),
                body.clone().into_bytes(),
                &[],
            )
            .await;
        assert_eq!(x.status, StatusCode::BAD_REQUEST, "{rev}");
    }
    // Another tenant cannot commit a blob it never uploaded, even knowing its sha256.
    let sha =
        assay_sign::sha256_hex(&std::fs::read(examples().join("demo-model/config.json")).unwrap());
    let body = json!({"files": [{"path": "config.json", "sha256": sha, "size": 1}]}).to_string();
    let x = r
        .req(
            "POST",
            "/api/registry/models/other/steal/commit/main",
            Some(&b),
            body.into_bytes(),
            &[],
        )
        .await;
    assert_eq!(x.status, StatusCode::BAD_REQUEST);
}

async fn tokens_scopes_and_replay(b: Backend) {
    let r = Reg::new(&b, 1 << 20);
    let a = r.tenant("acme").await;
    let read = r.token(&a, "read").await;
    let write = r.token(&a, "write").await;
    // Least privilege.
    let up = r
        .req(
            "POST",
            "/api/registry/blobs",
            Some(&read),
            b"abc".to_vec(),
            &[],
        )
        .await
        .status;
    assert_eq!(up, StatusCode::FORBIDDEN);
    let up = r
        .req(
            "POST",
            "/api/registry/blobs",
            Some(&write),
            b"abc".to_vec(),
            &[],
        )
        .await
        .status;
    assert_eq!(up, StatusCode::OK);
    let mk = r
        .req(
            "POST",
            "/api/registry/tokens",
            Some(&write),
            br#"{"scope":"admin"}"#.to_vec(),
            &[],
        )
        .await;
    assert_eq!(mk.status, StatusCode::FORBIDDEN);
    // A tenant admin is not the system admin.
    let t = r
        .req(
            "POST",
            "/api/registry/tenants",
            Some(&a),
            br#"{"name":"x"}"#.to_vec(),
            &[],
        )
        .await;
    assert_eq!(t.status, StatusCode::FORBIDDEN);
    // Forged, truncated or altered tokens.
    for t in [
        "",
        "asy_",
        &read[..read.len() - 1],
        &format!("{read}x"),
        "Bearer",
        &"a".repeat(10_000),
    ] {
        let x = r
            .req("GET", "/api/registry/whoami", Some(t), vec![], &[])
            .await;
        assert_eq!(x.status, StatusCode::UNAUTHORIZED, "{t}");
    }
    let who = r.get("/api/registry/whoami", &read).await.json();
    assert_eq!(who, json!({"tenant": "acme", "scope": "read"}));
    // Tenant names and duplicates.
    let d = r
        .req(
            "POST",
            "/api/registry/tenants",
            Some(&r.admin),
            br#"{"name":"acme"}"#.to_vec(),
            &[],
        )
        .await;
    assert_eq!(d.status, StatusCode::CONFLICT);
    let d = r
        .req(
            "POST",
            "/api/registry/tenants",
            Some(&r.admin),
            br#"{"name":"_system"}"#.to_vec(),
            &[],
        )
        .await;
    assert_eq!(d.status, StatusCode::BAD_REQUEST);
    // Tokens are stored hashed; the audit log holds no token.
    let (db, wal) = match &r.db {
        None => (
            std::fs::read(r.data.join("registry.db")).unwrap_or_default(),
            std::fs::read(r.data.join("registry.db-wal")).unwrap_or_default(),
        ),
        Some(pg) => {
            let mut all = String::new();
            for t in ["tenants", "tokens", "repos", "commits", "jobs"] {
                for row in pg.query_text(&format!("SELECT x::text FROM {t} x")) {
                    all.push_str(&row);
                    all.push('\n');
                }
            }
            assert!(all.contains(&assay_registry::auth::hash_token(&a)));
            (all.into_bytes(), vec![])
        }
    };
    let audit = std::fs::read_to_string(r.data.join("audit.log")).unwrap();
    for t in [&a, &read, &write, &r.admin] {
        let needle = t.as_bytes();
        assert!(!db.windows(needle.len()).any(|w| w == needle));
        assert!(!wal.windows(needle.len()).any(|w| w == needle));
        assert!(!audit.contains(t.as_str()));
    }
    assert!(
        audit
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(r.data.join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o600);
    }
}

async fn oversized_uploads_are_refused(b: Backend) {
    let r = Reg::new(&b, 1000);
    let a = r.tenant("acme").await;
    let x = r
        .req(
            "POST",
            "/api/registry/blobs",
            Some(&a),
            vec![0u8; 1001],
            &[],
        )
        .await;
    assert_eq!(x.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Without a Content-Length (streamed): cut off at the limit.
    let stream = futures_util::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 100]))),
    );
    let req = Request::builder()
        .method("POST")
        .uri("/api/registry/blobs")
        .header("authorization", format!("Bearer {a}"))
        .body(Body::from_stream(stream))
        .unwrap();
    let resp = app(r.reg.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let ok = r
        .req(
            "POST",
            "/api/registry/blobs",
            Some(&a),
            vec![0u8; 1000],
            &[],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    // Nothing half-written is left behind.
    assert_eq!(std::fs::read_dir(r.data.join("tmp")).unwrap().count(), 0);
    // Oversized JSON.
    let big = vec![b' '; assay_registry::MAX_JSON_BYTES + 10];
    let x = r
        .req(
            "POST",
            "/api/registry/models/acme/m/commit/main",
            Some(&a),
            big,
            &[],
        )
        .await;
    assert_eq!(x.status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn blobs_are_encrypted_per_tenant_and_dedup_stays_inside(b: Backend) {
    let r = Reg::new(&b, 1 << 20);
    let a = r.tenant("acme").await;
    let b = r.tenant("other").await;
    let secret =
        b"a very recognisable plaintext that must never be stored in clear ........".repeat(100);
    let x = r
        .req("POST", "/api/registry/blobs", Some(&a), secret.clone(), &[])
        .await
        .json();
    let y = r
        .req("POST", "/api/registry/blobs", Some(&b), secret.clone(), &[])
        .await
        .json();
    assert_eq!(x["sha256"], y["sha256"]);
    assert_eq!(y["new"], true, "dedup crossed tenants");
    let again = r
        .req("POST", "/api/registry/blobs", Some(&a), secret.clone(), &[])
        .await
        .json();
    assert_eq!(again["new"], false);
    let mut stored = vec![];
    for e in walk(&r.data.join("blobs")) {
        stored.push(std::fs::read(e).unwrap());
    }
    assert_eq!(stored.len(), 2);
    assert_ne!(stored[0], stored[1]);
    for s in &stored {
        assert!(!s.windows(32).any(|w| w == &secret[..32]));
    }
    // A custom Rego policy of one tenant applies to it alone.
    let pol = "package assay\nimport rego.v1\ndeny contains \"no models on Fridays or any day\" if { true }\n";
    let p = r
        .req(
            "PUT",
            "/api/registry/policy",
            Some(&a),
            pol.as_bytes().to_vec(),
            &[],
        )
        .await;
    assert_eq!(
        p.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&p.body)
    );
    let bad = r
        .req(
            "PUT",
            "/api/registry/policy",
            Some(&a),
            b"package nope".to_vec(),
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    r.push(&a, &examples().join("demo-model"), "acme/demo", "main")
        .await;
    r.push(&b, &examples().join("demo-model"), "acme/demo", "main")
        .await;
    r.scan_all();
    let sa = r.get("/api/registry/models/acme/demo", &a).await.json();
    let sb = r.get("/api/registry/models/acme/demo", &b).await.json();
    assert_eq!(sa["commits"][0]["status"], "refused");
    assert_eq!(
        sa["commits"][0]["reasons"][0],
        "no models on Fridays or any day"
    );
    assert_eq!(sb["commits"][0]["status"], "admitted");
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The scan loops (`serve --workers N`, `assay worker`): they take the queued commits,
/// decide them, report each step, and end when asked to stop.
async fn scan_loops_decide_queued_commits_and_stop_on_request(b: Backend) {
    use assay_registry::ScanEvent;
    let (r, a, _b, good, bad) = setup(b).await;
    let events = Arc::new(std::sync::Mutex::new(Vec::<ScanEvent>::new()));
    let ev = events.clone();
    let on: assay_registry::OnEvent = Arc::new(move |e| ev.lock().unwrap().push(e));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let loops = tokio::spawn(r.reg.clone().run_scans(2, stop_rx, on));
    let write = r.token(&a, "write").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = |v: &Value, id: &str| {
        v["commits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["commit"] == id)
            .map(|k| k["status"].as_str().unwrap().to_string())
    };
    loop {
        let d = r.get("/api/registry/models/acme/demo", &write).await.json();
        let e = r.get("/api/registry/models/acme/evil", &write).await.json();
        if status(&d, &good).as_deref() == Some("admitted")
            && status(&e, &bad).as_deref() == Some("refused")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{d} {e}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), loops)
        .await
        .expect("the scan loops stop when asked")
        .unwrap();
    let ev = events.lock().unwrap();
    let claimed = ev
        .iter()
        .filter(|e| matches!(e, ScanEvent::Claimed(_)))
        .count();
    let finished: Vec<(&str, &str)> = ev
        .iter()
        .filter_map(|e| match e {
            ScanEvent::Finished { job, status, .. } => {
                Some((job.commit_id.as_str(), status.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(claimed, 2, "{ev:?}");
    assert!(finished.contains(&(good.as_str(), "admitted")), "{ev:?}");
    assert!(finished.contains(&(bad.as_str(), "refused")), "{ev:?}");
    assert!(!r.reg.scan_one(), "nothing left in the queue");
}

/// A file of several download windows (1 MiB each) and a partial last chunk: the whole
/// file and ranges across chunk and window boundaries and in the last chunk.
async fn large_files_and_ranges_across_windows(b: Backend) {
    let r = Reg::new(&b, 8 << 20);
    let a = r.tenant("acme").await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    let mut i = 0u64;
    while text.len() < (2 << 20) + 3 * 65536 + 321 {
        text.extend_from_slice(format!("line {i} of a long notes file\n").as_bytes());
        i += 1;
    }
    std::fs::write(dir.path().join("notes.txt"), &text).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        b"{\"model_type\": \"bert\"}",
    )
    .unwrap();
    let c = r.push(&a, dir.path(), "acme/big", "main").await;
    assert_eq!(c.status, StatusCode::CREATED);
    r.scan_all();
    let url = "/acme/big/resolve/main/notes.txt";
    let full = r.get(url, &a).await;
    assert_eq!(
        full.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&full.body)
    );
    assert_eq!(full.h("content-length"), text.len().to_string());
    assert!(full.body == text, "the whole file differs");
    let n = text.len();
    let mib = 1 << 20;
    for (range, from, to) in [
        (format!("bytes={}-{}", mib - 6, mib + 5), mib - 6, mib + 6),
        (format!("bytes={}-{}", 65530, 65545), 65530, 65546),
        (
            format!("bytes={}-{}", 100, 2 * mib + 100),
            100,
            2 * mib + 101,
        ),
        ("bytes=-100".to_string(), n - 100, n),
        (format!("bytes={}-", n - 70_000), n - 70_000, n),
        (format!("bytes={}-{}", n - 2, n + 50), n - 2, n),
    ] {
        let part = r
            .req("GET", url, Some(&a), vec![], &[("range", &range)])
            .await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(part.h("content-length"), (to - from).to_string(), "{range}");
        assert!(part.body == text[from..to], "{range}");
        assert_eq!(
            part.h("content-range"),
            format!("bytes {from}-{}/{n}", to - 1)
        );
    }
}

/// Tokens with an expiry are refused once it passes; a revoked token is refused from the
/// next request on, with the same answer as an unknown token; only the token's own tenant
/// can list or revoke it.
async fn tokens_expire_and_revoke(b: Backend) {
    let r = Reg::new(&b, 1 << 20);
    let a = r.tenant("acme").await;
    let other = r.tenant("globex").await;
    let mk = |days: Value| {
        r.req(
            "POST",
            "/api/registry/tokens",
            Some(&a),
            json!({"scope": "read", "expires_in_days": days})
                .to_string()
                .into_bytes(),
            &[],
        )
    };
    for bad in [json!(0), json!(-1), json!(3651), json!("7"), json!(1.5)] {
        assert_eq!(
            mk(bad.clone()).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let made = mk(json!(30)).await;
    assert_eq!(made.status, StatusCode::CREATED);
    let v = made.json();
    let (id, tok) = (
        v["id"].as_i64().unwrap(),
        v["token"].as_str().unwrap().to_string(),
    );
    let expires = v["expires_at"].as_str().unwrap().to_string();
    assert!(expires > assay_registry::now_rfc3339(), "{expires}");
    const WHOAMI: &str = "/api/registry/whoami";
    assert_eq!(r.get(WHOAMI, &tok).await.status, StatusCode::OK);

    // An expired token (its expiry set in the past in the store) is refused like nothing.
    let hash = assay_registry::auth::hash_token(&r.token(&a, "read").await);
    let past = r.reg.meta.token_insert(
        r.reg.meta.token_by_hash(&hash).unwrap().unwrap().tenant_id,
        "read",
        &assay_registry::auth::hash_token("asy_expired_for_the_test"),
        &assay_registry::now_rfc3339(),
        Some(assay_registry::auth::unix_now() - 1),
    );
    assert!(past.is_ok());
    let unknown = r.get(WHOAMI, "asy_no_such_token_at_all").await;
    let expired = r.get(WHOAMI, "asy_expired_for_the_test").await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.body, unknown.body);

    // Another tenant cannot see or revoke it: 404, the same as for no token at all.
    let list = r.get("/api/registry/tokens", &other).await.json();
    assert!(
        list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != id),
        "{list}"
    );
    let uri = format!("/api/registry/tokens/{id}");
    let theirs = r.req("DELETE", &uri, Some(&other), vec![], &[]).await;
    let nothing = r
        .req(
            "DELETE",
            "/api/registry/tokens/999999",
            Some(&other),
            vec![],
            &[],
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(theirs.body, nothing.body);
    assert_eq!(r.get(WHOAMI, &tok).await.status, StatusCode::OK);
    // A read token cannot revoke; the tenant's admin can, once.
    let by_reader = r.req("DELETE", &uri, Some(&tok), vec![], &[]).await;
    assert_eq!(by_reader.status, StatusCode::FORBIDDEN);
    let done = r.req("DELETE", &uri, Some(&a), vec![], &[]).await;
    assert_eq!(done.status, StatusCode::OK);
    let again = r.req("DELETE", &uri, Some(&a), vec![], &[]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let revoked = r.get(WHOAMI, &tok).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(revoked.body, unknown.body);
    // The listing shows it revoked, with its expiry; never a token or a hash.
    let list = r.get("/api/registry/tokens", &a).await;
    let text = String::from_utf8_lossy(&list.body).to_string();
    let v = list.json();
    let t = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    assert!(
        t["revoked_at"].is_string() && t["expires_at"] == expires.as_str(),
        "{t}"
    );
    assert!(!text.contains("asy_") && !text.contains(&hash), "{text}");
}
