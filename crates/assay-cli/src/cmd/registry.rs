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
    /// Serve HTTPS: the certificate chain (PEM, leaf first). Needs --tls-key.
    #[arg(long, value_name = "CERT.pem", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
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

pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    let mut cfg = assay_registry::Config::new(&a.data);
    cfg.max_file_bytes = a.max_file_size;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(assay_registry::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    assay_registry::serve(&cfg, &a.listen, tls.as_ref(), |addr, opened| {
        let mut err = std::io::stderr().lock();
        if let Some(p) = &opened.created_admin_token {
            let _ = writeln!(
                err,
                "assay serve: new registry; bootstrap admin token written to {} (mode 0600)",
                p.display()
            );
        }
        let _ = writeln!(
            err,
            "assay serve: listening on {scheme}://{addr} (data {})",
            a.data.display()
        );
    })
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
        TokenCommand::Create { scope, server } => {
            let v = server.client()?.create_token(&scope)?;
            eprintln!(
                "{scope} token for tenant {} (shown once):",
                v["tenant"].as_str().unwrap_or("?")
            );
            println!("{}", v["token"].as_str().unwrap_or(""));
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
