//! The Hugging Face Hub download protocol, as `huggingface_hub` speaks it.
//!
//! Every lookup is scoped to the caller's tenant: another tenant's repository, a malformed
//! name and a missing repository give the same `404 RepoNotFound`. Only admitted commits
//! are served; quarantined and refused ones answer `403 GatedRepo` with the reason in
//! `X-Error-Message`, which `huggingface_hub` raises as `GatedRepoError`.

use crate::auth::{Caller, Scope};
use crate::blob::{
    BlobHeader, BlobReader, READ_AHEAD_WINDOWS, WINDOW_CHUNKS, blob_key, clip, windows,
};
use crate::meta::{ADMITTED, Commit, FileRow, QUARANTINED, Repo};
use crate::server::{St, authenticate, blocking, token_of};
use crate::{Registry, TREE_PAGE, names};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// An error as the Hub sends it: `X-Error-Code`, `X-Error-Message` and a JSON body.
pub fn err(status: StatusCode, code: &str, msg: &str) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": msg}).to_string(),
    )
        .into_response();
    r.headers_mut().insert(
        "x-error-code",
        HeaderValue::from_str(code).unwrap_or(HeaderValue::from_static("Error")),
    );
    // Header values must be visible ASCII; the message is shortened and cleaned.
    let clean: String = msg
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .take(2000)
        .collect();
    if let Ok(v) = HeaderValue::from_str(&clean) {
        r.headers_mut().insert("x-error-message", v);
    }
    r
}

fn repo_not_found() -> Response {
    err(
        StatusCode::NOT_FOUND,
        "RepoNotFound",
        "Repository not found: it does not exist or your token cannot read it",
    )
}

/// The caller's repository named exactly `org/name`, if any.
pub async fn find_repo(reg: &Arc<Registry>, c: &Caller, org: &str, name: &str) -> Option<Repo> {
    if !names::valid_name(org) || !names::valid_name(name) {
        return None;
    }
    let (t, o, n) = (c.tenant_id, org.to_string(), name.to_string());
    blocking(reg, move |r| r.meta.repo(t, &o, &n).ok().flatten()).await
}

/// Authenticates (read scope) and finds the repository, or the Hub error to send.
async fn open_repo(
    reg: &Arc<Registry>,
    headers: &HeaderMap,
    org: &str,
    name: &str,
    action: &str,
) -> Result<(Caller, Repo), Response> {
    let Some(c) = authenticate(reg, token_of(headers, None, false)).await else {
        reg.audit
            .log(action, None, "deny", &[("why", "no valid token")]);
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "RepoNotFound",
            "Invalid credentials: a valid token is required",
        ));
    };
    if c.scope < Scope::Read {
        return Err(repo_not_found());
    }
    match find_repo(reg, &c, org, name).await {
        Some(r) => Ok((c, r)),
        None => {
            reg.audit.log(
                action,
                Some(&c),
                "not_found",
                &[("repo", &format!("{org}/{name}"))],
            );
            Err(repo_not_found())
        }
    }
}

/// Resolves a revision (branch or commit id of THIS repository) to a servable commit.
async fn servable(
    reg: &Arc<Registry>,
    c: &Caller,
    repo: &Repo,
    rev: &str,
    action: &str,
) -> Result<Commit, Response> {
    let rid = repo.id;
    let rev_s = rev.to_string();
    let commit = blocking(reg, move |r| {
        let id = if names::is_commit_id(&rev_s) {
            Some(rev_s)
        } else if names::valid_branch(&rev_s) {
            r.meta.ref_target(rid, &rev_s).ok().flatten()
        } else {
            None
        };
        id.and_then(|id| r.meta.commit(rid, &id).ok().flatten())
    })
    .await;
    let repo_name = format!("{}/{}", repo.org, repo.name);
    let Some(commit) = commit else {
        reg.audit.log(
            action,
            Some(c),
            "not_found",
            &[("repo", &repo_name), ("revision", rev)],
        );
        return Err(err(
            StatusCode::NOT_FOUND,
            "RevisionNotFound",
            &format!("Invalid rev id: {rev}"),
        ));
    };
    if commit.status == ADMITTED {
        return Ok(commit);
    }
    let msg = if commit.status == QUARANTINED {
        format!(
            "{repo_name} revision {} is quarantined until its security scan finishes; try again shortly",
            commit.id
        )
    } else {
        format!(
            "{repo_name} revision {} was refused by the registry's policy: {}",
            commit.id,
            if commit.reasons.is_empty() {
                "no reason recorded".to_string()
            } else {
                commit.reasons.join("; ")
            }
        )
    };
    reg.audit.log(
        action,
        Some(c),
        "deny",
        &[
            ("repo", &repo_name),
            ("commit", &commit.id),
            ("status", &commit.status),
        ],
    );
    Err(err(StatusCode::FORBIDDEN, "GatedRepo", &msg))
}

fn lfs_pointer_size(sha: &str, size: u64) -> u64 {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n").len()
        as u64
}

fn info_json(repo: &Repo, commit: &Commit, files: &[FileRow]) -> Value {
    let id = format!("{}/{}", repo.org, repo.name);
    let siblings: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({"rfilename": f.path, "size": f.size, "blobId": &f.sha256[..40],
                   "lfs": {"sha256": f.sha256, "size": f.size, "pointerSize": lfs_pointer_size(&f.sha256, f.size)}})
        })
        .collect();
    let date = commit
        .finished_at
        .clone()
        .unwrap_or_else(|| commit.created_at.clone());
    json!({
        "_id": format!("{:024x}", repo.id),
        "id": id, "modelId": id, "author": repo.org,
        "sha": commit.id, "lastModified": date, "createdAt": commit.created_at,
        "private": true, "gated": false, "disabled": false,
        "downloads": 0, "likes": 0, "tags": ["assay:admitted"],
        "library_name": Value::Null, "pipeline_tag": Value::Null,
        "cardData": Value::Null,
        "siblings": siblings,
        "usedStorage": files.iter().map(|f| f.size).sum::<u64>(),
        "spaces": [],
    })
}

async fn info(
    reg: Arc<Registry>,
    headers: HeaderMap,
    org: String,
    name: String,
    rev: String,
) -> Response {
    let (c, repo) = match open_repo(&reg, &headers, &org, &name, "hf.info").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let commit = match servable(&reg, &c, &repo, &rev, "hf.info").await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let (rid, cid) = (repo.id, commit.id.clone());
    let files = blocking(&reg, move |r| r.meta.files(rid, &cid).unwrap_or_default()).await;
    reg.audit.log(
        "hf.info",
        Some(&c),
        "allow",
        &[("repo", &format!("{org}/{name}")), ("commit", &commit.id)],
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        info_json(&repo, &commit, &files).to_string(),
    )
        .into_response()
}

pub async fn model_info(
    State(reg): St,
    Path((org, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    info(reg, headers, org, name, "main".into()).await
}

pub async fn model_info_rev(
    State(reg): St,
    Path((org, name, rev)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    info(reg, headers, org, name, rev).await
}

pub async fn tree_root(
    State(reg): St,
    Path((org, name, rev)): Path<(String, String, String)>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let q = req.uri().query().unwrap_or("").to_string();
    tree(
        reg,
        headers,
        org,
        name,
        rev,
        String::new(),
        q,
        req.uri().path().to_string(),
    )
    .await
}

pub async fn tree_path(
    State(reg): St,
    Path((org, name, rev, path)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let q = req.uri().query().unwrap_or("").to_string();
    tree(
        reg,
        headers,
        org,
        name,
        rev,
        path,
        q,
        req.uri().path().to_string(),
    )
    .await
}

fn query_param<'a>(q: &'a str, key: &str) -> Option<&'a str> {
    q.split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

#[allow(clippy::too_many_arguments)]
async fn tree(
    reg: Arc<Registry>,
    headers: HeaderMap,
    org: String,
    name: String,
    rev: String,
    path: String,
    q: String,
    url_path: String,
) -> Response {
    let (c, repo) = match open_repo(&reg, &headers, &org, &name, "hf.tree").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let commit = match servable(&reg, &c, &repo, &rev, "hf.tree").await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let path = path.trim_end_matches('/').to_string();
    if !path.is_empty() && !names::valid_path(&path) {
        return err(StatusCode::NOT_FOUND, "EntryNotFound", "no such path");
    }
    let recursive = matches!(query_param(&q, "recursive"), Some("true" | "1" | "True"));
    let cursor: usize = query_param(&q, "cursor")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (rid, cid) = (repo.id, commit.id.clone());
    let files = blocking(&reg, move |r| r.meta.files(rid, &cid).unwrap_or_default()).await;
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let mut entries: Vec<Value> = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for f in &files {
        let Some(rest) = f.path.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        // Folders on the way (all of them when recursive, the first level otherwise).
        let depth = if recursive {
            parts.len() - 1
        } else {
            1.min(parts.len() - 1)
        };
        for i in 1..=depth {
            dirs.insert(format!("{prefix}{}", parts[..i].join("/")));
        }
        if recursive || parts.len() == 1 {
            entries.push(json!({"type": "file", "path": f.path, "size": f.size, "oid": &f.sha256[..40],
                "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": lfs_pointer_size(&f.sha256, f.size)}}));
        }
    }
    if entries.is_empty() && dirs.is_empty() && !path.is_empty() {
        return err(
            StatusCode::NOT_FOUND,
            "EntryNotFound",
            &format!("{path} does not exist at this revision"),
        );
    }
    let mut all: Vec<Value> = dirs
        .into_iter()
        .map(|d| json!({"type": "directory", "path": d, "size": 0, "oid": "0".repeat(40)}))
        .collect();
    all.extend(entries);
    let page: Vec<Value> = all.iter().skip(cursor).take(TREE_PAGE).cloned().collect();
    let mut resp = (
        [(header::CONTENT_TYPE, "application/json")],
        Value::Array(page).to_string(),
    )
        .into_response();
    if cursor + TREE_PAGE < all.len() {
        let next = format!(
            "<{url_path}?recursive={recursive}&cursor={}>; rel=\"next\"",
            cursor + TREE_PAGE
        );
        if let Ok(v) = HeaderValue::from_str(&next) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    reg.audit.log(
        "hf.tree",
        Some(&c),
        "allow",
        &[("repo", &format!("{org}/{name}")), ("commit", &commit.id)],
    );
    resp
}

/// One `bytes=` range of a file of `size` bytes, as `[start, end)`; `Err` when
/// unsatisfiable; `Ok(None)` when absent or not a single byte range (whole file).
fn parse_range(v: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(s) = v.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = s.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .saturating_add(1)
                .min(size)
        };
        (start, end)
    };
    if r.0 >= size || r.0 >= r.1 {
        return Err(());
    }
    Ok(Some(r))
}

pub async fn resolve(
    State(reg): St,
    Path((org, name, rev, path)): Path<(String, String, String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (c, repo) = match open_repo(&reg, &headers, &org, &name, "hf.resolve").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let commit = match servable(&reg, &c, &repo, &rev, "hf.resolve").await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let entry_missing = || {
        err(
            StatusCode::NOT_FOUND,
            "EntryNotFound",
            &format!("{path} does not exist at revision {}", commit.id),
        )
    };
    if !names::valid_path(&path) {
        return entry_missing();
    }
    let (rid, cid, p) = (repo.id, commit.id.clone(), path.clone());
    let file = blocking(&reg, move |r| {
        r.meta
            .files(rid, &cid)
            .ok()?
            .into_iter()
            .find(|f| f.path == p)
    })
    .await;
    let Some(file) = file else {
        return entry_missing();
    };
    let etag = format!("\"{}\"", file.sha256);
    let range = match parse_range(headers.get(header::RANGE), file.size) {
        Ok(r) => r,
        Err(()) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", file.size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let (start, end) = range.unwrap_or((0, file.size));
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    let hv = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::ETAG, hv(&etag));
    h.insert("x-linked-etag", hv(&etag));
    h.insert("x-linked-size", hv(&file.size.to_string()));
    h.insert("x-repo-commit", hv(&commit.id));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0"),
    );
    h.insert(header::CONTENT_LENGTH, hv(&(end - start).to_string()));
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        resp.headers_mut().insert(
            header::CONTENT_RANGE,
            hv(&format!("bytes {start}-{}/{}", end - 1, file.size)),
        );
    }
    if method == Method::HEAD {
        return resp;
    }
    reg.audit.log(
        "hf.download",
        Some(&c),
        "allow",
        &[
            ("repo", &format!("{org}/{name}")),
            ("commit", &commit.id),
            ("path", &path),
        ],
    );
    let tenant = blocking(&reg, {
        let t = c.tenant_id;
        move |r| r.meta.tenant(t).ok().flatten()
    })
    .await;
    let Some(dek) = tenant.and_then(|t| reg.tenant_key(&t).ok()) else {
        return err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "tenant key unavailable",
        );
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(
        READ_AHEAD_WINDOWS * WINDOW_CHUNKS as usize,
    );
    // A task feeds the body: each window (WINDOW_CHUNKS chunks, one storage read) is read
    // and decrypted on the blocking pool, then queued, at most READ_AHEAD_WINDOWS windows
    // ahead of the network. Waiting for a slow client holds no blocking thread.
    let key = blob_key(c.tenant_id, &file.sha256);
    tokio::spawn(feed(reg.clone(), key, dek, start, end, tx));
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    *resp.body_mut() = Body::from_stream(stream);
    resp
}

async fn blocking_io<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Feeds a download's body with the plaintext of `[start, end)` of blob `key`.
async fn feed(
    reg: Arc<Registry>,
    key: String,
    dek: crate::crypto::Key,
    start: u64,
    end: u64,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let header = {
        let (r, k) = (reg.clone(), key.clone());
        blocking_io(move || Ok(BlobReader::open(&*r.blobs, k, &dek)?.header())).await
    };
    let header: BlobHeader = match header {
        Ok(h) => h,
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            return;
        }
    };
    for (first, count) in windows(start, end) {
        let (r, k) = (reg.clone(), key.clone());
        let chunks = blocking_io(move || {
            BlobReader::with_header(&*r.blobs, k, &dek, &header).window(first, count)
        })
        .await;
        let chunks = match chunks {
            Ok(c) => c,
            Err(e) => {
                // Cuts the response off: a client never gets bytes that failed authentication.
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        for piece in clip(first, chunks, start, end) {
            reg.metrics
                .bytes_served
                .fetch_add(piece.len() as u64, Relaxed);
            if tx.send(Ok(piece)).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some(&h("bytes=0-3")), 10), Ok(Some((0, 4))));
        assert_eq!(parse_range(Some(&h("bytes=5-")), 10), Ok(Some((5, 10))));
        assert_eq!(parse_range(Some(&h("bytes=-3")), 10), Ok(Some((7, 10))));
        assert_eq!(parse_range(Some(&h("bytes=8-100")), 10), Ok(Some((8, 10))));
        assert_eq!(parse_range(Some(&h("bytes=10-")), 10), Err(()));
        assert_eq!(parse_range(Some(&h("bytes=x-")), 10), Err(()));
    }
}
