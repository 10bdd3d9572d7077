//! The registry over TLS in process: the rustls listener with the committed test CA
//! (tests/data/tls, made by generate.sh), the client with `--ca-cert`, refusals of an
//! untrusted server, a plain-HTTP request to the TLS port, and bad certificate files.

use assay_registry::client::Client;
use assay_registry::tls::{TlsFiles, TlsListener, server_config};
use assay_registry::{Config, Registry, app};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

fn files() -> TlsFiles {
    TlsFiles {
        cert: data("server.pem"),
        key: data("server-key.pem"),
    }
}

/// Starts the registry with TLS on an ephemeral port; answers the port and the admin token.
fn start(dir: &Path) -> (u16, String) {
    let mut cfg = Config::new(dir.join("data"));
    cfg.master_key = Some([9u8; 32]);
    let opened = Registry::open(&cfg).unwrap();
    let admin = std::fs::read_to_string(dir.join("data/admin-token")).unwrap();
    let tls = server_config(&files()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(tcp.local_addr().unwrap().port()).unwrap();
            let reg = opened.registry;
            // Scans run until the test process ends (the sender is kept alive).
            let (_stop, stop_rx) = tokio::sync::watch::channel(false);
            let on: assay_registry::OnEvent = std::sync::Arc::new(|_| {});
            tokio::spawn(reg.clone().run_scans(1, stop_rx, on));
            let listener = TlsListener::new(tcp, tls).unwrap();
            axum::serve(listener, app(reg)).await.unwrap();
        });
    });
    (rx.recv().unwrap(), admin.trim().to_string())
}

#[test]
fn https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = start(dir.path());
    let url = format!("https://localhost:{port}");
    let ca = data("ca.pem");

    // Trusting the test CA: the API works, uploads included, by name and by IP address.
    let c = Client::with_ca(&url, &admin, Some(&ca)).unwrap();
    let t = c.create_tenant("acme").unwrap();
    let tok = t["token"].as_str().unwrap().to_string();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    let cfg = b"{\"model_type\": \"bert\"}";
    std::fs::write(model.join("config.json"), cfg).unwrap();
    let c = Client::with_ca(&format!("https://127.0.0.1:{port}"), &tok, Some(&ca)).unwrap();
    let commit = c.push(&model, "acme", "demo", "main", |_, _| {}).unwrap();
    assert_eq!(commit.len(), 40);
    let st = c.status("acme", "demo").unwrap();
    assert_eq!(st["commits"][0]["commit"], commit.as_str(), "{st}");

    // Not trusting it: the handshake fails with a certificate error, nothing is sent.
    for client in [
        Client::with_ca(&url, &admin, Some(&data("other-ca.pem"))).unwrap(),
        Client::new(&url, &admin).unwrap(),
    ] {
        let e = client.create_tenant("nope").unwrap_err().to_string();
        assert!(e.contains("certificate"), "{e}");
    }
    let c = Client::with_ca(&url, &admin, Some(&ca)).unwrap();
    let e = c.create_tenant("acme").unwrap_err().to_string();
    assert!(e.contains("409") || e.contains("exists"), "{e}");
    // The refused clients did not create 'nope' (this would be a conflict).
    c.create_tenant("nope").unwrap();

    // Plain HTTP to the TLS port: a clear 400, not a hang or a reset.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("https://"), "{answer}");
    // The same through the client, with an http:// URL.
    let plain = Client::new(&format!("http://127.0.0.1:{port}"), &admin).unwrap();
    let e = plain.create_tenant("x").unwrap_err().to_string();
    assert!(e.contains("400") && e.contains("HTTPS"), "{e}");
    // A client that connects and says nothing does not stop others.
    let _idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let c = Client::with_ca(&url, &admin, Some(&ca)).unwrap();
    c.create_tenant("later").unwrap();
}

#[test]
fn bad_certificate_and_key_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a pem file\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let cases = [
        (junk.clone(), data("server-key.pem"), "junk.pem"),
        (data("server.pem"), junk.clone(), "junk.pem"),
        (missing.clone(), data("server-key.pem"), "missing.pem"),
        // A key file given as the certificate.
        (
            data("server-key.pem"),
            data("server-key.pem"),
            "server-key.pem",
        ),
        // A certificate file given as the key.
        (data("server.pem"), data("server.pem"), "server.pem"),
    ];
    for (cert, key, named) in cases {
        let e = server_config(&TlsFiles { cert, key })
            .unwrap_err()
            .to_string();
        assert!(e.contains(named), "{e}");
    }
    // A key that does not belong to the certificate.
    let e = server_config(&TlsFiles {
        cert: data("server.pem"),
        key: data("other-key.pem"),
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("do not make a usable certificate and key"),
        "{e}"
    );
    // The client names a bad CA file too.
    let e = Client::with_ca("https://localhost:1", "t", Some(&junk))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("junk.pem"), "{e}");
}
