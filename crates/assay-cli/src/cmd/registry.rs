//! `assay serve`, `assay tenant`, `assay token`, `assay push`: the model registry.

use anyhow::{Context, Result, bail};
use assay_registry::client::Client;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Data folder (created on first start, with DIR/admin-token, mode 0600).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8480", value_name = "ADDR")]
    pub listen: String,
    /// Largest file an upload may carry, in bytes (413 beyond).
    #[arg(long, default_value_t = assay_registry::DEFAULT_MAX_FILE_BYTES, value_name = "BYTES")]
    pub max_file_size: u64,
    #[command(flatten)]
    pub shared: SharedArgs,
    /// Scan loops in this process; 0 leaves scanning to `assay worker` processes.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=assay_registry::MAX_SCAN_LOOPS as u64))]
    pub workers: usize,
    /// Serve HTTPS: the certificate chain (PEM, leaf first). Needs --tls-key.
    #[arg(long, value_name = "CERT.pem", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// What every server and worker of one registry shares.
#[derive(Args, Debug)]
pub struct SharedArgs {
    /// Metadata in PostgreSQL (postgres://user@host:port/db or
    /// postgres:///db?host=/run/postgresql; no TLS: a trusted network or a Unix socket).
    /// Default: SQLite in DIR/registry.db.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// File holding the master key (64 hex digits). Default: $ASSAY_MASTER_KEY, else
    /// DIR/master-key (created on first start). Every server and worker of one registry
    /// needs the same key.
    #[arg(long, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Blob store: s3://BUCKET[/PREFIX], az://CONTAINER[/PREFIX] or file:///PATH, configured
    /// from the standard AWS_* / AZURE_* environment variables. Default: DIR/blobs.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

impl SharedArgs {
    /// Where blobs are, for the start-up line (no credentials).
    fn blobs(&self, data: &std::path::Path) -> String {
        match &self.store {
            Some(u) => assay_registry::objstore::public_url(u),
            None => data.join("blobs").display().to_string(),
        }
    }
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Data folder: the blob store unless --store is given (DIR/blobs, the server's folder
    /// on this machine or a shared mount), scratch folders and this worker's audit log.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub shared: SharedArgs,
    /// Scans at a time.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=assay_registry::MAX_SCAN_LOOPS as u64))]
    pub concurrency: usize,
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant and print its admin token (needs the bootstrap admin token).
    Create {
        /// Tenant name: a-z, 0-9 and -.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Set the tenant's admission policy (Rego, `package assay`); --default restores the
    /// built-in policy. Needs an admin token of the tenant.
    Policy {
        /// The policy file.
        #[arg(required_unless_present = "default")]
        policy: Option<PathBuf>,
        #[arg(long)]
        default: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Mint a token of the caller's tenant (needs an admin token).
    Create {
        #[arg(long, value_parser = ["read", "write", "admin"])]
        scope: String,
        /// Refuse the token after this many days (1 to 3650; default: until revoked).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the tenant's tokens: id, scope, created, expiry, revocation (needs an admin
    /// token; the tokens themselves are never shown again).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke a token of the tenant by its id (from `assay token list`); it is refused from
    /// the next request on. Needs an admin token.
    Revoke {
        id: i64,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Environment variable naming the CA certificate file when --ca-cert is not given.
pub const CA_CERT_ENV: &str = "ASSAY_CA_CERT";

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Registry URL, e.g. http://127.0.0.1:8480 or https://registry.example:8480.
    #[arg(long)]
    pub server: String,
    /// API token (or a file holding it, e.g. DIR/admin-token).
    #[arg(long)]
    pub token: String,
    /// For https: the CA certificate(s) (PEM) to verify the server with, for a private CA
    /// (default: $ASSAY_CA_CERT, else the Mozilla root certificates).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

impl ServerArgs {
    fn client(&self) -> Result<Client> {
        let p = std::path::Path::new(&self.token);
        let token = if !self.token.starts_with("asy_") && p.is_file() {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        } else {
            self.token.clone()
        };
        let ca = self
            .ca_cert
            .clone()
            .or_else(|| std::env::var_os(CA_CERT_ENV).map(PathBuf::from));
        Ok(Client::with_ca(&self.server, &token, ca.as_deref())?)
    }
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The model folder.
    pub model: PathBuf,
    /// Repository id, ORG/NAME.
    pub repo: String,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Branch to move to the new commit.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Return once uploaded instead of waiting for the scan and the admission decision.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the admission decision.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
}

fn config(data: &std::path::Path, shared: &SharedArgs) -> assay_registry::Config {
    let mut cfg = assay_registry::Config::new(data);
    cfg.database = shared.database.clone();
    cfg.master_key_file = shared.master_key_file.clone();
    cfg.store = shared.store.clone();
    cfg
}

/// One stderr line per scan event, prefixed with the command's name.
fn log_events(who: &'static str) -> assay_registry::OnEvent {
    use assay_registry::ScanEvent as E;
    std::sync::Arc::new(move |e| {
        let line = match e {
            E::Claimed(j) => format!(
                "job {} claimed: commit {} (attempt {})",
                j.id, j.commit_id, j.attempt
            ),
            E::Finished {
                job,
                status,
                reasons,
                millis,
            } => {
                let mut l = format!(
                    "job {} {status} in {:.1}s: commit {}",
                    job.id,
                    millis as f64 / 1000.0,
                    job.commit_id
                );
                if !reasons.is_empty() {
                    l.push_str(&format!(" ({} reasons)", reasons.len()));
                }
                l
            }
            E::Lost(j) => format!(
                "job {}: lease lost to another process; this result is dropped",
                j.id
            ),
            E::Released(j) => format!("job {}: released unfinished (shutting down)", j.id),
            E::Crashed(j) => format!("job {}: the scan crashed; back in the queue", j.id),
            E::GaveUp(j) => format!(
                "job {}: given up after {} attempts; commit {} refused",
                j.id, j.attempt, j.commit_id
            ),
            E::Error(m) => format!("error: {m}"),
        };
        eprintln!("assay {who}: {line}");
    })
}

/// Shows a database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub fn worker(a: WorkerArgs) -> Result<ExitCode> {
    let Some(data) = &a.data else {
        bail!("assay worker needs --data DIR: the folder whose blobs/ the server writes");
    };
    let cfg = config(data, &a.shared);
    let db = a
        .shared
        .database
        .as_deref()
        .map(redact)
        .unwrap_or_else(|| format!("sqlite {}", data.join("registry.db").display()));
    assay_registry::work(
        &cfg,
        a.concurrency,
        |_| {
            eprintln!(
                "assay worker: scanning jobs from {db} ({} at a time; data {}, blobs {})",
                a.concurrency.max(1),
                data.display(),
                a.shared.blobs(data)
            );
        },
        log_events("worker"),
    )
    .with_context(|| format!("worker on {db}"))?;
    eprintln!("assay worker: stopped");
    Ok(ExitCode::SUCCESS)
}

pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    let mut cfg = config(&a.data, &a.shared);
    cfg.max_file_bytes = a.max_file_size;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(assay_registry::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let workers = a.workers;
    assay_registry::serve(&cfg, &a.listen, workers, tls.as_ref(), |addr, opened| {
        let mut err = std::io::stderr().lock();
        if let Some(p) = &opened.created_admin_token {
            let _ = writeln!(
                err,
                "assay serve: new registry; bootstrap admin token written to {} (mode 0600)",
                p.display()
            );
        }
        let db = a
            .shared
            .database
            .as_deref()
            .map(redact)
            .unwrap_or_else(|| "sqlite".into());
        let _ = writeln!(
            err,
            "assay serve: listening on {scheme}://{addr} (data {}, metadata {db}, blobs {}, {workers} scan loops)",
            a.data.display(),
            a.shared.blobs(&a.data)
        );
    }, log_events("serve"))
    .with_context(|| format!("cannot serve from {}", a.data.display()))?;
    Ok(ExitCode::SUCCESS)
}

pub fn tenant(c: TenantCommand) -> Result<ExitCode> {
    match c {
        TenantCommand::Create { name, server } => {
            let v = server.client()?.create_tenant(&name)?;
            eprintln!("tenant {name} created; its admin token (shown once):");
            println!("{}", v["token"].as_str().unwrap_or(""));
        }
        TenantCommand::Policy {
            policy,
            default,
            server,
        } => {
            let c = server.client()?;
            if default {
                c.clear_policy()?;
                println!("policy: the built-in default");
                return Ok(ExitCode::SUCCESS);
            }
            let p = policy.unwrap_or_default();
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let v = c.set_policy(&text)?;
            println!("policy set (sha256 {})", v["sha256"].as_str().unwrap_or(""));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn token(c: TokenCommand) -> Result<ExitCode> {
    match c {
        TokenCommand::Create {
            scope,
            expires_in_days,
            server,
        } => {
            let v = server.client()?.create_token(&scope, expires_in_days)?;
            let until = v["expires_at"]
                .as_str()
                .map(|t| format!(", expires {t}"))
                .unwrap_or_default();
            eprintln!(
                "{scope} token {} for tenant {}{until} (shown once):",
                v["id"],
                v["tenant"].as_str().unwrap_or("?")
            );
            println!("{}", v["token"].as_str().unwrap_or(""));
        }
        TokenCommand::List { server } => {
            let v = server.client()?.list_tokens()?;
            println!(
                "{:>6}  {:<6}  {:<20}  {:<20}  revoked",
                "id", "scope", "created", "expires"
            );
            for t in v["tokens"].as_array().into_iter().flatten() {
                println!(
                    "{:>6}  {:<6}  {:<20}  {:<20}  {}{}",
                    t["id"].as_i64().unwrap_or(0),
                    t["scope"].as_str().unwrap_or("?"),
                    t["created_at"].as_str().unwrap_or(""),
                    t["expires_at"].as_str().unwrap_or("never"),
                    t["revoked_at"].as_str().unwrap_or("-"),
                    if t["current"] == true {
                        "  (this token)"
                    } else {
                        ""
                    }
                );
            }
        }
        TokenCommand::Revoke { id, server } => {
            server.client()?.revoke_token(id)?;
            eprintln!("token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit codes: 0 admitted (or uploaded with --no-wait), 1 refused, 2 error.
pub fn push(a: PushArgs) -> Result<ExitCode> {
    let Some((org, name)) = a.repo.split_once('/') else {
        bail!("the repository is ORG/NAME (got {})", a.repo);
    };
    if !a.model.is_dir() {
        bail!("{} is not a folder", a.model.display());
    }
    let c = a.server.client()?;
    let started = Instant::now();
    let commit = c.push(&a.model, org, name, &a.revision, |path, size| {
        eprintln!("upload {path} ({size} bytes)");
    })?;
    eprintln!(
        "commit {commit} on {} of {}: quarantined until its scan finishes",
        a.revision, a.repo
    );
    if a.no_wait {
        println!("{commit}");
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    loop {
        let v = c.status(org, name)?;
        let entry = v["commits"]
            .as_array()
            .and_then(|l| l.iter().find(|k| k["commit"] == commit.as_str()))
            .cloned()
            .unwrap_or_default();
        match entry["status"].as_str() {
            Some("admitted") => {
                println!(
                    "{commit} admitted ({:.1}s)",
                    started.elapsed().as_secs_f64()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Some("refused") => {
                println!("{commit} refused:");
                for r in entry["reasons"].as_array().into_iter().flatten() {
                    println!("  - {}", r.as_str().unwrap_or(""));
                }
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
        if Instant::now() > deadline {
            bail!("no admission decision for {commit} after {}s", a.timeout);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
