//! Running the firewall on a socket: its own Tokio runtime, so callers need none.

use crate::audit::Audit;
use crate::policy::Policy;
use crate::upstream::{Upstream, UpstreamError};
use crate::{Firewall, app};
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::path::PathBuf;

pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Base URL of the OpenAI-compatible upstream.
    pub upstream: String,
    pub policy: Policy,
    /// Overrides the policy's `audit_log`.
    pub audit_log: Option<PathBuf>,
    /// Runtime worker threads (default: one per core).
    pub workers: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("cannot open audit log {0}: {1}")]
    Audit(PathBuf, std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if let Some(n) = workers {
        b.worker_threads(n.max(1));
    }
    b.build()
}

/// Serves until SIGINT or SIGTERM. `on_ready` gets the bound address (useful with port 0).
pub fn serve_blocking(
    opts: ServeOptions,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let rt = runtime(opts.workers)?;
    rt.block_on(async move {
        let audit_path = opts.audit_log.or_else(|| opts.policy.audit_log.clone());
        let audit = match audit_path {
            Some(p) => Audit::file(&p).map_err(|e| ServeError::Audit(p.clone(), e))?,
            None => Audit::Off,
        };
        let upstream = Upstream::http(&opts.upstream)?;
        let fw = Firewall::new(opts.policy, upstream, audit);
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| ServeError::Listen(opts.listen, e))?;
        on_ready(listener.local_addr()?);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app(fw))
            .with_graceful_shutdown(shutdown())
            .await?;
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown() {
    let int = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = int.await;
                    return;
                }
            };
        tokio::select! {
            _ = int => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = int.await;
    }
}

/// Runs `fut` on a fresh runtime (for the mock upstream and other helpers).
pub(crate) fn block_on<F: std::future::Future>(
    workers: Option<usize>,
    fut: F,
) -> std::io::Result<F::Output> {
    Ok(runtime(workers)?.block_on(fut))
}
