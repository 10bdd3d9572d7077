//! The HTTP surface: registry API (tenants, tokens, policy, uploads, commits), the Hugging
//! Face download protocol (in `hf`), the model page, health and metrics.

use crate::auth::{self, Caller, Scope};
use crate::blob::{SealingWriter, blob_key};
use crate::meta::{FileRow, MetaError};
use crate::{MAX_COMMIT_FILES, MAX_JSON_BYTES, MAX_POLICY_BYTES, Registry, hf, names, now_rfc3339};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub type St = State<Arc<Registry>>;

/// The whole router.
pub fn app(reg: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/registry/tenants", post(create_tenant))
        .route("/api/registry/tokens", post(create_token).get(list_tokens))
        .route("/api/registry/tokens/{id}", delete(revoke_token))
        .route("/api/registry/whoami", get(whoami))
        .route("/api/registry/policy", put(set_policy).delete(clear_policy))
        .route("/api/registry/blobs", post(upload_blob))
        .route(
            "/api/registry/models/{org}/{name}/commit/{rev}",
            post(create_commit),
        )
        .route("/api/registry/models/{org}/{name}", get(model_status))
        .route("/api/models/{org}/{name}", get(hf::model_info))
        .route(
            "/api/models/{org}/{name}/revision/{rev}",
            get(hf::model_info_rev),
        )
        .route("/api/models/{org}/{name}/tree/{rev}", get(hf::tree_root))
        .route(
            "/api/models/{org}/{name}/tree/{rev}/{*path}",
            get(hf::tree_path),
        )
        .route("/{org}/{name}/resolve/{rev}/{*path}", get(hf::resolve))
        .route("/ui/{org}/{name}", get(crate::server::page))
        .route("/ui/{org}/{name}/badge.svg", get(badge))
        .route("/{org}/{name}", get(page_or_404))
        .fallback(|| async { hf::err(StatusCode::NOT_FOUND, "EntryNotFound", "no such route") })
        .layer(axum::middleware::from_fn_with_state(reg.clone(), count))
        .with_state(reg)
}

async fn count(State(reg): St, req: Request, next: axum::middleware::Next) -> Response {
    reg.metrics.requests.fetch_add(1, Relaxed);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let r = next.run(req).await;
    match r.status() {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            reg.metrics.denied.fetch_add(1, Relaxed);
        }
        StatusCode::NOT_FOUND => {
            reg.metrics.not_found.fetch_add(1, Relaxed);
        }
        _ => {}
    }
    tracing::info!(%method, %path, status = r.status().as_u16(), "request");
    r
}

/// A JSON error for the registry API.
pub fn api_err(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": msg}).to_string(),
    )
        .into_response()
}

fn json_ok(status: StatusCode, v: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// The token of a request: `Authorization: Bearer`, else the `assay_token` cookie, else
/// (`allow_query`, the model page only) `?token=`.
pub fn token_of(headers: &HeaderMap, query: Option<&str>, allow_query: bool) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let t = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        return Some(t.trim().to_string());
    }
    if let Some(c) = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()) {
        for part in c.split(';') {
            if let Some(t) = part.trim().strip_prefix("assay_token=") {
                return Some(t.to_string());
            }
        }
    }
    if allow_query {
        for kv in query.unwrap_or("").split('&') {
            if let Some(t) = kv.strip_prefix("token=") {
                return Some(
                    percent_encoding::percent_decode_str(t)
                        .decode_utf8_lossy()
                        .into(),
                );
            }
        }
    }
    None
}

/// Resolves a token to its caller; `None` for a missing, malformed or unknown token.
pub async fn authenticate(reg: &Arc<Registry>, token: Option<String>) -> Option<Caller> {
    let token = token?;
    if token.len() > auth::MAX_TOKEN_LEN || !token.starts_with(auth::TOKEN_PREFIX) {
        return None;
    }
    let hash = auth::hash_token(&token);
    let r = reg.clone();
    let h = hash.clone();
    let row = tokio::task::spawn_blocking(move || r.meta.token_by_hash(&h))
        .await
        .ok()?
        .ok()??;
    if !auth::hashes_equal(&row.hash, &hash) {
        return None;
    }
    // A revoked or expired token is refused exactly like an unknown one.
    if row.revoked || row.expires_at.is_some_and(|t| t <= auth::unix_now()) {
        return None;
    }
    Some(Caller {
        token_id: row.id,
        tenant_id: row.tenant_id,
        tenant: row.tenant_name,
        scope: Scope::parse(&row.scope)?,
    })
}

/// The caller with at least `need`, or the response to send (audited).
async fn require(
    reg: &Arc<Registry>,
    headers: &HeaderMap,
    need: Scope,
    action: &str,
) -> Result<Caller, Response> {
    match authenticate(reg, token_of(headers, None, false)).await {
        None => {
            reg.audit
                .log(action, None, "deny", &[("why", "no valid token")]);
            Err(api_err(
                StatusCode::UNAUTHORIZED,
                "a valid token is required",
            ))
        }
        Some(c) if c.scope < need => {
            reg.audit.log(
                action,
                Some(&c),
                "deny",
                &[("why", "scope"), ("need", need.as_str())],
            );
            Err(api_err(
                StatusCode::FORBIDDEN,
                &format!("this needs a token with scope {}", need.as_str()),
            ))
        }
        Some(c) => Ok(c),
    }
}

/// Runs blocking metadata work.
pub async fn blocking<T: Send + 'static>(
    reg: &Arc<Registry>,
    f: impl FnOnce(&Registry) -> T + Send + 'static,
) -> T {
    let r = reg.clone();
    tokio::task::spawn_blocking(move || f(&r))
        .await
        .expect("a blocking registry task panicked")
}

async fn read_json(body: Body) -> Result<Value, Response> {
    let bytes = axum::body::to_bytes(body, MAX_JSON_BYTES)
        .await
        .map_err(|_| api_err(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| api_err(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")))
}

async fn create_tenant(State(reg): St, headers: HeaderMap, body: Body) -> Response {
    let c = match require(&reg, &headers, Scope::Admin, "tenant.create").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !c.is_system_admin() {
        reg.audit.log(
            "tenant.create",
            Some(&c),
            "deny",
            &[("why", "not the system admin")],
        );
        return api_err(
            StatusCode::FORBIDDEN,
            "only the bootstrap admin token creates tenants",
        );
    }
    let v = match read_json(body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let name = v["name"].as_str().unwrap_or("").to_string();
    if !auth::valid_tenant_name(&name) {
        return api_err(
            StatusCode::BAD_REQUEST,
            "a tenant name is 1-63 characters of a-z, 0-9 and -, not starting with -",
        );
    }
    let wrapped = reg.wrap_new_key(&name);
    let token = auth::new_token();
    let hash = auth::hash_token(&token);
    let n = name.clone();
    let res = blocking(&reg, move |r| {
        let now = now_rfc3339();
        let id = r.meta.tenant_create(&n, &wrapped, &now)?;
        r.meta.token_insert(id, "admin", &hash, &now, None)
    })
    .await;
    match res {
        Ok(_) => {
            reg.audit
                .log("tenant.create", Some(&c), "allow", &[("name", &name)]);
            json_ok(
                StatusCode::CREATED,
                json!({"tenant": name, "scope": "admin", "token": token}),
            )
        }
        Err(MetaError::Conflict) => api_err(StatusCode::CONFLICT, "that tenant exists"),
        Err(e) => api_err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn create_token(State(reg): St, headers: HeaderMap, body: Body) -> Response {
    let c = match require(&reg, &headers, Scope::Admin, "token.create").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let v = match read_json(body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(scope) = v["scope"].as_str().and_then(Scope::parse) else {
        return api_err(
            StatusCode::BAD_REQUEST,
            "scope must be read, write or admin",
        );
    };
    let expires_at = match &v["expires_in_days"] {
        Value::Null => None,
        d => match d
            .as_u64()
            .filter(|d| (1..=auth::MAX_TOKEN_DAYS).contains(d))
        {
            Some(d) => Some(auth::unix_now().saturating_add(d as i64 * 86_400)),
            None => {
                return api_err(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "expires_in_days must be a whole number of days from 1 to {}",
                        auth::MAX_TOKEN_DAYS
                    ),
                );
            }
        },
    };
    let token = auth::new_token();
    let hash = auth::hash_token(&token);
    let tenant = c.tenant_id;
    match blocking(&reg, move |r| {
        r.meta
            .token_insert(tenant, scope.as_str(), &hash, &now_rfc3339(), expires_at)
    })
    .await
    {
        Ok(id) => {
            reg.audit.log(
                "token.create",
                Some(&c),
                "allow",
                &[
                    ("new_token_id", &id.to_string()),
                    ("new_scope", scope.as_str()),
                ],
            );
            json_ok(
                StatusCode::CREATED,
                json!({"tenant": c.tenant, "id": id, "scope": scope.as_str(), "token": token,
                       "expires_at": expires_at.map(auth::rfc3339)}),
            )
        }
        Err(e) => api_err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /api/registry/tokens`: the caller's tenant's tokens (ids, scopes, dates; never the
/// tokens themselves).
async fn list_tokens(State(reg): St, headers: HeaderMap) -> Response {
    let c = match require(&reg, &headers, Scope::Admin, "token.list").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let tenant = c.tenant_id;
    match blocking(&reg, move |r| r.meta.tokens(tenant)).await {
        Ok(list) => {
            let tokens: Vec<Value> = list
                .iter()
                .map(|t| {
                    json!({"id": t.id, "scope": t.scope, "created_at": t.created_at,
                           "expires_at": t.expires_at.map(auth::rfc3339),
                           "revoked_at": t.revoked_at, "current": t.id == c.token_id})
                })
                .collect();
            json_ok(
                StatusCode::OK,
                json!({"tenant": c.tenant, "tokens": tokens}),
            )
        }
        Err(e) => api_err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `DELETE /api/registry/tokens/{id}`: revokes a token of the caller's tenant (a token of
/// another tenant, or none, is 404 alike).
async fn revoke_token(State(reg): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let c = match require(&reg, &headers, Scope::Admin, "token.revoke").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let tenant = c.tenant_id;
    let revoked = match id.parse::<i64>() {
        Ok(n) => {
            blocking(&reg, move |r| {
                r.meta.token_revoke(tenant, n, &now_rfc3339())
            })
            .await
        }
        Err(_) => Ok(false),
    };
    match revoked {
        Ok(true) => {
            reg.audit.log(
                "token.revoke",
                Some(&c),
                "allow",
                &[("revoked_token_id", &id)],
            );
            json_ok(StatusCode::OK, json!({"revoked": id}))
        }
        Ok(false) => api_err(
            StatusCode::NOT_FOUND,
            "no such token in this tenant (or already revoked)",
        ),
        Err(e) => api_err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn whoami(State(reg): St, headers: HeaderMap) -> Response {
    match require(&reg, &headers, Scope::Read, "whoami").await {
        Ok(c) => json_ok(
            StatusCode::OK,
            json!({"tenant": c.tenant, "scope": c.scope.as_str()}),
        ),
        Err(r) => r,
    }
}

async fn set_policy(State(reg): St, headers: HeaderMap, body: Body) -> Response {
    let c = match require(&reg, &headers, Scope::Admin, "policy.set").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_POLICY_BYTES).await else {
        return api_err(StatusCode::PAYLOAD_TOO_LARGE, "policy too large");
    };
    let Ok(text) = String::from_utf8(bytes.to_vec()) else {
        return api_err(StatusCode::BAD_REQUEST, "the policy is not UTF-8");
    };
    if let Err(e) = assay_policy::Policy::from_source("tenant.rego", &text) {
        return api_err(StatusCode::BAD_REQUEST, &format!("policy: {e}"));
    }
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    let tenant = c.tenant_id;
    if let Err(e) = blocking(&reg, move |r| r.meta.set_policy(tenant, Some(&text))).await {
        return api_err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    reg.audit
        .log("policy.set", Some(&c), "allow", &[("sha256", &digest)]);
    json_ok(
        StatusCode::OK,
        json!({"policy": "custom", "sha256": digest}),
    )
}

async fn clear_policy(State(reg): St, headers: HeaderMap) -> Response {
    let c = match require(&reg, &headers, Scope::Admin, "policy.clear").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let tenant = c.tenant_id;
    if let Err(e) = blocking(&reg, move |r| r.meta.set_policy(tenant, None)).await {
        return api_err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    reg.audit.log("policy.clear", Some(&c), "allow", &[]);
    json_ok(StatusCode::OK, json!({"policy": "default"}))
}

/// Streams one file into the tenant's encrypted blob store; answers its sha256 and size.
async fn upload_blob(State(reg): St, headers: HeaderMap, body: Body) -> Response {
    let c = match require(&reg, &headers, Scope::Write, "blob.upload").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let limit = reg.max_file_bytes;
    let too_large = || {
        api_err(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a file may be at most {limit} bytes (--max-file-size)"),
        )
    };
    if let Some(n) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && n > limit
    {
        reg.audit
            .log("blob.upload", Some(&c), "deny", &[("why", "too large")]);
        return too_large();
    }
    let tenant = match blocking(&reg, {
        let id = c.tenant_id;
        move |r| r.meta.tenant(id)
    })
    .await
    {
        Ok(Some(t)) => t,
        _ => return api_err(StatusCode::INTERNAL_SERVER_ERROR, "tenant unavailable"),
    };
    let dek = match reg.tenant_key(&tenant) {
        Ok(k) => k,
        Err(e) => return api_err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let tmp = reg
        .data
        .join("tmp")
        .join(hex::encode(crate::crypto::random::<16>()));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let tmp2 = tmp.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let mut w = SealingWriter::create(tmp2, &dek)?;
        while let Some(b) = rx.blocking_recv() {
            w.write(&b)?;
        }
        w.finish()
    });
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    let mut failed: Option<Response> = None;
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(b) => {
                total += b.len() as u64;
                if total > limit {
                    failed = Some(too_large());
                    break;
                }
                if tx.send(b).await.is_err() {
                    failed = Some(api_err(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "cannot store the upload",
                    ));
                    break;
                }
            }
            Err(_) => {
                failed = Some(api_err(StatusCode::BAD_REQUEST, "the upload was cut off"));
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await;
    if let Some(r) = failed {
        let _ = std::fs::remove_file(&tmp);
        reg.audit.log(
            "blob.upload",
            Some(&c),
            "deny",
            &[("why", "upload failed or too large")],
        );
        return r;
    }
    let (path, sha, size) = match written {
        Ok(Ok(x)) => x,
        _ => {
            let _ = std::fs::remove_file(&tmp);
            return api_err(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the upload");
        }
    };
    let tid = c.tenant_id;
    let sha2 = sha.clone();
    let stored = blocking(&reg, move |r| -> Result<bool, String> {
        let key = blob_key(tid, &sha2);
        // Dedup inside the tenant only: another tenant's identical file is another blob.
        if r.meta.blob_has(tid, &sha2).map_err(|e| e.to_string())?
            && r.blobs.exists(&key).map_err(|e| e.to_string())?
        {
            let _ = std::fs::remove_file(&path);
            return Ok(false);
        }
        r.blobs.put(&key, &path).map_err(|e| e.to_string())?;
        r.meta
            .blob_add(tid, &sha2, size)
            .map_err(|e| e.to_string())?;
        Ok(true)
    })
    .await;
    match stored {
        Ok(new) => {
            reg.metrics.bytes_ingested.fetch_add(size, Relaxed);
            reg.audit.log(
                "blob.upload",
                Some(&c),
                "allow",
                &[("sha256", &sha), ("size", &size.to_string())],
            );
            json_ok(
                StatusCode::OK,
                json!({"sha256": sha, "size": size, "new": new}),
            )
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            api_err(StatusCode::INTERNAL_SERVER_ERROR, &e)
        }
    }
}

/// A commit id: 40 hex digits of SHA-256 over the sorted manifest, the revision and the
/// time (so two pushes of the same files are two commits, like git).
fn commit_id(files: &[FileRow], revision: &str, now: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"assay-commit-v1\n");
    h.update(revision.as_bytes());
    h.update(b"\n");
    h.update(now.as_bytes());
    h.update(crate::crypto::random::<16>());
    for f in files {
        h.update(format!("\n{}\0{}\0{}", f.path, f.sha256, f.size).as_bytes());
    }
    hex::encode(h.finalize())[..40].to_string()
}

async fn create_commit(
    State(reg): St,
    Path((org, name, rev)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let c = match require(&reg, &headers, Scope::Write, "commit.create").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !names::valid_name(&org) || !names::valid_name(&name) {
        return api_err(
            StatusCode::BAD_REQUEST,
            "org and model names are A-Z a-z 0-9 - _ . (no .. or leading/trailing . -)",
        );
    }
    if !names::valid_branch(&rev) {
        return api_err(
            StatusCode::BAD_REQUEST,
            "a revision is a branch name (not 40 hex digits)",
        );
    }
    let v = match read_json(body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(list) = v["files"].as_array() else {
        return api_err(
            StatusCode::BAD_REQUEST,
            "expected {\"files\": [{path, sha256, size}]}",
        );
    };
    if list.is_empty() || list.len() > MAX_COMMIT_FILES {
        return api_err(
            StatusCode::BAD_REQUEST,
            &format!("a commit has 1 to {MAX_COMMIT_FILES} files"),
        );
    }
    let mut files = Vec::with_capacity(list.len());
    for f in list {
        let (Some(path), Some(sha), Some(size)) =
            (f["path"].as_str(), f["sha256"].as_str(), f["size"].as_u64())
        else {
            return api_err(
                StatusCode::BAD_REQUEST,
                "each file needs path, sha256 and size",
            );
        };
        if !names::valid_path(path) || !names::is_sha256(sha) {
            return api_err(
                StatusCode::BAD_REQUEST,
                &format!("invalid file entry {path:?}"),
            );
        }
        files.push(FileRow {
            path: path.to_string(),
            sha256: sha.to_string(),
            size,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if files.windows(2).any(|w| w[0].path == w[1].path) {
        return api_err(StatusCode::BAD_REQUEST, "a path appears twice");
    }
    // A file and a folder of the same name cannot both exist.
    for w in files.windows(2) {
        if w[1].path.starts_with(&format!("{}/", w[0].path)) {
            return api_err(
                StatusCode::BAD_REQUEST,
                &format!("{} is both a file and a folder", w[0].path),
            );
        }
    }
    let tid = c.tenant_id;
    let (o, n, r2) = (org.clone(), name.clone(), rev.clone());
    let res = blocking(&reg, move |r| -> Result<String, (StatusCode, String)> {
        for f in &files {
            // Only blobs this tenant uploaded count: a sha256 of another tenant's file
            // is unknown here.
            if !r
                .meta
                .blob_has(tid, &f.sha256)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("{}: blob {} was not uploaded", f.path, f.sha256),
                ));
            }
        }
        let now = now_rfc3339();
        let repo = match r.meta.repo_get_or_create(tid, &o, &n, &now) {
            Ok(repo) => repo,
            Err(MetaError::Conflict) => {
                return Err((
                    StatusCode::CONFLICT,
                    "a model whose name differs only in case exists; use its exact name".into(),
                ));
            }
            Err(e) => return Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        };
        let id = commit_id(&files, &r2, &now);
        r.meta
            .commit_create(&repo, &id, &r2, &files, &now)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(id)
    })
    .await;
    match res {
        Ok(id) => {
            reg.metrics.commits.fetch_add(1, Relaxed);
            reg.notify();
            reg.audit.log(
                "commit.create",
                Some(&c),
                "allow",
                &[
                    ("repo", &format!("{org}/{name}")),
                    ("revision", &rev),
                    ("commit", &id),
                ],
            );
            json_ok(
                StatusCode::CREATED,
                json!({"commit": id, "revision": rev, "status": crate::meta::QUARANTINED}),
            )
        }
        Err((status, msg)) => api_err(status, &msg),
    }
}

/// Status of a model for its tenant's writers: every commit with its state and reasons.
async fn model_status(
    State(reg): St,
    Path((org, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let c = match require(&reg, &headers, Scope::Write, "model.status").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(repo) = hf::find_repo(&reg, &c, &org, &name).await else {
        return api_err(StatusCode::NOT_FOUND, "repository not found");
    };
    let rid = repo.id;
    let (commits, refs) = blocking(&reg, move |r| {
        let commits = r.meta.commits(rid).unwrap_or_default();
        let main = r.meta.ref_target(rid, "main").ok().flatten();
        (commits, main)
    })
    .await;
    let list: Vec<Value> = commits
        .iter()
        .map(|k| {
            json!({"commit": k.id, "revision": k.revision, "status": k.status,
                   "reasons": k.reasons, "created_at": k.created_at, "finished_at": k.finished_at})
        })
        .collect();
    json_ok(
        StatusCode::OK,
        json!({"id": format!("{org}/{name}"), "main": refs, "commits": list}),
    )
}

async fn metrics(State(reg): St) -> Response {
    let m = &reg.metrics;
    let mut s = String::new();
    for (name, help, v) in [
        (
            "assay_registry_requests_total",
            "HTTP requests",
            m.requests.load(Relaxed),
        ),
        (
            "assay_registry_denied_total",
            "Requests answered 401 or 403",
            m.denied.load(Relaxed),
        ),
        (
            "assay_registry_not_found_total",
            "Requests answered 404",
            m.not_found.load(Relaxed),
        ),
        (
            "assay_registry_served_bytes_total",
            "File bytes served",
            m.bytes_served.load(Relaxed),
        ),
        (
            "assay_registry_ingested_bytes_total",
            "File bytes uploaded",
            m.bytes_ingested.load(Relaxed),
        ),
        (
            "assay_registry_commits_total",
            "Commits pushed",
            m.commits.load(Relaxed),
        ),
        (
            "assay_registry_admitted_total",
            "Revisions admitted",
            m.admitted.load(Relaxed),
        ),
        (
            "assay_registry_refused_total",
            "Revisions refused",
            m.refused.load(Relaxed),
        ),
        (
            "assay_registry_scan_milliseconds_total",
            "Time spent scanning",
            m.scan_millis.load(Relaxed),
        ),
    ] {
        s.push_str(&format!(
            "# HELP {name} {help}.\n# TYPE {name} counter\n{name} {v}\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s).into_response()
}

/// `GET /{org}/{name}`: the model page for browsers; a 404 RepoNotFound otherwise.
async fn page_or_404(
    st: St,
    p: Path<(String, String)>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if html {
        page(st, p, headers, req).await
    } else {
        hf::err(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            "Repository not found",
        )
    }
}

/// The card without its HTML comments (the machine-readable record is in the API).
fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        match rest[i..].find("-->") {
            Some(j) => rest = &rest[i + j + 3..],
            None => return out,
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The model page: badge, card, scan summary and revision history. Authenticated by the
/// `assay_token` cookie or `?token=` (which sets the cookie).
pub async fn page(
    State(reg): St,
    Path((org, name)): Path<(String, String)>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let query = req.uri().query().map(str::to_string);
    let token = token_of(&headers, query.as_deref(), true);
    let from_query = headers.get(header::COOKIE).is_none() && token.is_some();
    let Some(c) = authenticate(&reg, token.clone()).await else {
        return (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><title>Assay registry</title><p>Sign in: open this page with <code>?token=YOUR_TOKEN</code>.</p>").into_response();
    };
    let Some(repo) = hf::find_repo(&reg, &c, &org, &name).await else {
        reg.audit.log(
            "page",
            Some(&c),
            "not_found",
            &[("repo", &format!("{org}/{name}"))],
        );
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><title>Not found</title><p>Repository not found.</p>",
        )
            .into_response();
    };
    let rid = repo.id;
    let (commits, main) = blocking(&reg, move |r| {
        (
            r.meta.commits(rid).unwrap_or_default(),
            r.meta.ref_target(rid, "main").ok().flatten(),
        )
    })
    .await;
    let shown = main
        .clone()
        .or_else(|| commits.first().map(|k| k.id.clone()));
    let (report, card) = match shown.clone() {
        Some(id) => {
            let (rep, card, _) = blocking(&reg, move |r| {
                r.meta
                    .commit_artifacts(rid, &id)
                    .unwrap_or((None, None, None))
            })
            .await;
            (rep, card)
        }
        None => (None, None),
    };
    let writer = c.scope >= Scope::Write;
    let mut h = String::new();
    h.push_str(&format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{0}/{1} · Assay registry</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px}}
.admitted{{color:#2a7a2a;font-weight:bold}}.refused{{color:#b00020;font-weight:bold}}.quarantined{{color:#a06000;font-weight:bold}}
pre{{background:#f6f8fa;padding:1em;overflow:auto;white-space:pre-wrap}}code{{font-size:13px}}</style></head><body>
<h1>{0}/{1}</h1><p>Tenant <b>{2}</b> · private</p>",
        esc(&org), esc(&name), esc(&c.tenant)
    ));
    if let Some(id) = &shown {
        h.push_str(&format!(
            "<p><img alt=\"assay badge\" src=\"/ui/{}/{}/badge.svg?commit={}\"> commit <code>{}</code></p>",
            esc(&org), esc(&name), id, id
        ));
    }
    if let Some(r) = report
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
    {
        let s = &r["summary"];
        h.push_str(&format!(
            "<h2>Scan report</h2><p>Verdict <b>{}</b> (fail on {}) · files {} · findings {}</p>",
            esc(s["verdict"].as_str().unwrap_or("?")),
            esc(s["fail_on"].as_str().unwrap_or("?")),
            r["files"].as_array().map_or(0, |a| a.len()),
            esc(&s["findings"].to_string())
        ));
        if let Some(f) = r["findings"].as_array()
            && !f.is_empty()
        {
            h.push_str(
                "<table><tr><th>Severity</th><th>Rule</th><th>File</th><th>Message</th></tr>",
            );
            for x in f.iter().take(50) {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(x["severity"].as_str().unwrap_or("")),
                    esc(x["rule"].as_str().or(x["code"].as_str()).unwrap_or("")),
                    esc(x["path"].as_str().unwrap_or("")),
                    esc(x["message"].as_str().unwrap_or(""))
                ));
            }
            h.push_str("</table>");
        }
    }
    h.push_str("<h2>Revisions</h2><table><tr><th>Commit</th><th>Revision</th><th>Status</th><th>Pushed</th><th>Reasons</th></tr>");
    for k in &commits {
        let reasons = if writer {
            esc(&k.reasons.join("; "))
        } else {
            String::from("(writers only)")
        };
        h.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td class={}>{}</td><td>{}</td><td>{}</td></tr>",
            &k.id[..12], esc(&k.revision), esc(&k.status), esc(&k.status), esc(&k.created_at), reasons
        ));
    }
    h.push_str("</table>");
    if let Some(card) = card {
        h.push_str(&format!(
            "<h2>Model card</h2><pre>{}</pre>",
            esc(&strip_comments(&card))
        ));
    }
    h.push_str("</body></html>");
    reg.audit.log(
        "page",
        Some(&c),
        "allow",
        &[("repo", &format!("{org}/{name}"))],
    );
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        h,
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"),
    );
    if from_query
        && let Some(t) = token
        && let Ok(v) = HeaderValue::from_str(&format!(
            "assay_token={t}; HttpOnly; SameSite=Strict; Path=/"
        ))
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn badge(
    State(reg): St,
    Path((org, name)): Path<(String, String)>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let query = req.uri().query().unwrap_or("").to_string();
    let Some(c) = authenticate(&reg, token_of(&headers, Some(&query), true)).await else {
        return api_err(StatusCode::UNAUTHORIZED, "a valid token is required");
    };
    let Some(repo) = hf::find_repo(&reg, &c, &org, &name).await else {
        return api_err(StatusCode::NOT_FOUND, "repository not found");
    };
    let commit = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("commit="))
        .filter(|s| names::is_commit_id(s))
        .map(str::to_string);
    let rid = repo.id;
    let svg = blocking(&reg, move |r| {
        let id = commit.or_else(|| r.meta.ref_target(rid, "main").ok().flatten())?;
        r.meta.commit_artifacts(rid, &id).ok()?.2
    })
    .await;
    match svg {
        Some(s) => ([(header::CONTENT_TYPE, "image/svg+xml")], s).into_response(),
        None => api_err(StatusCode::NOT_FOUND, "no badge yet"),
    }
}
