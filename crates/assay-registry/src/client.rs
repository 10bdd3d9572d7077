//! A small blocking client for the registry API (`assay tenant`, `assay token`,
//! `assay push`), over the same hyper stack as the server, for `http://` and `https://`
//! servers (rustls with ring; a private CA with `--ca-cert`, else the Mozilla roots).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client as HyperClient, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server URL must look like http://HOST:PORT or https://HOST:PORT (got {0})")]
    Url(String),
    #[error("cannot reach {url}: {msg}")]
    Connect { url: String, msg: String },
    #[error("{status}: {msg}")]
    Status { status: u16, msg: String },
    #[error("{0}")]
    Other(String),
}

pub struct Client {
    base: String,
    token: String,
    http: HyperClient<HttpsConnector<HttpConnector>, Body>,
    rt: tokio::runtime::Runtime,
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|n| match n {}).boxed()
}

impl Client {
    /// A client of `server` (`http://` or `https://`; for https, the system's Mozilla
    /// roots verify the server's certificate).
    pub fn new(server: &str, token: &str) -> Result<Client, ClientError> {
        Client::with_ca(server, token, None)
    }

    /// A client that verifies an https server's certificate against the CA certificates
    /// of `ca_cert` (PEM) when given, else against the Mozilla roots.
    pub fn with_ca(
        server: &str,
        token: &str,
        ca_cert: Option<&Path>,
    ) -> Result<Client, ClientError> {
        let base = server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://"))
            || base.parse::<hyper::Uri>().is_err()
        {
            return Err(ClientError::Url(server.to_string()));
        }
        let tls =
            crate::tls::client_config(ca_cert).map_err(|e| ClientError::Other(e.to_string()))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| ClientError::Other(e.to_string()))?;
        let http = {
            let _g = rt.enter();
            HyperClient::builder(TokioExecutor::new()).build(connector)
        };
        Ok(Client {
            base,
            token: token.trim().to_string(),
            http,
            rt,
        })
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        body: Body,
        len: Option<u64>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token));
        if let Some(n) = len {
            req = req.header("content-length", n);
        }
        let req = req
            .body(body)
            .map_err(|e| ClientError::Other(e.to_string()))?;
        self.rt.block_on(async {
            let resp = self.http.request(req).await.map_err(|e| {
                let mut msg = error_chain(&e);
                if msg.contains("certificate") {
                    msg.push_str(
                        " (a private CA? give its certificate with --ca-cert or $ASSAY_CA_CERT)",
                    );
                }
                ClientError::Connect {
                    url: self.base.clone(),
                    msg,
                }
            })?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Other(e.to_string()))?
                .to_bytes();
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status.is_success() {
                Ok(v)
            } else {
                let msg = v["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
                Err(ClientError::Status {
                    status: status.as_u16(),
                    msg: if status == StatusCode::UNAUTHORIZED {
                        format!("{msg} (check --token)")
                    } else {
                        msg
                    },
                })
            }
        })
    }

    fn post_json(&self, path: &str, v: &Value) -> Result<Value, ClientError> {
        let b = v.to_string();
        let n = b.len() as u64;
        self.call(Method::POST, path, full(b), Some(n))
    }

    pub fn create_tenant(&self, name: &str) -> Result<Value, ClientError> {
        self.post_json("/api/registry/tenants", &json!({"name": name}))
    }

    /// A new token of the caller's tenant; `expires_in_days`: refused after that many days.
    pub fn create_token(
        &self,
        scope: &str,
        expires_in_days: Option<u64>,
    ) -> Result<Value, ClientError> {
        self.post_json(
            "/api/registry/tokens",
            &json!({"scope": scope, "expires_in_days": expires_in_days}),
        )
    }

    pub fn list_tokens(&self) -> Result<Value, ClientError> {
        self.call(Method::GET, "/api/registry/tokens", full(""), None)
    }

    pub fn revoke_token(&self, id: i64) -> Result<Value, ClientError> {
        self.call(
            Method::DELETE,
            &format!("/api/registry/tokens/{id}"),
            full(""),
            None,
        )
    }

    pub fn set_policy(&self, rego: &str) -> Result<Value, ClientError> {
        let n = rego.len() as u64;
        self.call(
            Method::PUT,
            "/api/registry/policy",
            full(rego.to_string()),
            Some(n),
        )
    }

    pub fn clear_policy(&self) -> Result<Value, ClientError> {
        self.call(Method::DELETE, "/api/registry/policy", full(""), None)
    }

    pub fn status(&self, org: &str, name: &str) -> Result<Value, ClientError> {
        self.call(
            Method::GET,
            &format!("/api/registry/models/{org}/{name}"),
            full(""),
            None,
        )
    }

    /// Streams one file to the server; answers its sha256.
    pub fn upload(&self, path: &Path) -> Result<String, ClientError> {
        let mut f = std::fs::File::open(path)
            .map_err(|e| ClientError::Other(format!("{}: {e}", path.display())))?;
        let len = f
            .metadata()
            .map_err(|e| ClientError::Other(format!("{}: {e}", path.display())))?
            .len();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        std::thread::spawn(move || {
            loop {
                let mut buf = vec![0u8; 1 << 20];
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(Frame::data(Bytes::from(buf)))).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        break;
                    }
                }
            }
        });
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
            );
        let body = BodyExt::boxed(StreamBody::new(stream));
        let v = self.call(Method::POST, "/api/registry/blobs", body, Some(len))?;
        v["sha256"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Other("the server did not answer a sha256".into()))
    }

    /// Uploads every file of `dir` and commits them as `revision` of `org/name`.
    /// `progress` is told each file as it goes. Answers the commit id.
    pub fn push(
        &self,
        dir: &Path,
        org: &str,
        name: &str,
        revision: &str,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<String, ClientError> {
        let files =
            list_files(dir).map_err(|e| ClientError::Other(format!("{}: {e}", dir.display())))?;
        if files.is_empty() {
            return Err(ClientError::Other(format!(
                "{} has no files",
                dir.display()
            )));
        }
        let mut manifest = Vec::new();
        for (rel, abs) in &files {
            let size = std::fs::metadata(abs).map(|m| m.len()).unwrap_or(0);
            progress(rel, size);
            let sha = self.upload(abs)?;
            manifest.push(json!({"path": rel, "sha256": sha, "size": size}));
        }
        let v = self.post_json(
            &format!("/api/registry/models/{org}/{name}/commit/{revision}"),
            &json!({"files": manifest}),
        )?;
        v["commit"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Other("the server did not answer a commit id".into()))
    }
}

/// An error and its causes ("client error (Connect): invalid peer certificate: …").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        cause = c.source();
    }
    msg
}

/// Regular files under `dir` (relative `/` paths, sorted); `.git` and symlinks are skipped.
pub fn list_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            let p = e.path();
            if e.file_name() == ".git" || t.is_symlink() {
                continue;
            }
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let rel = p
                    .strip_prefix(dir)
                    .map_err(std::io::Error::other)?
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, p));
            }
        }
    }
    out.sort();
    Ok(out)
}
