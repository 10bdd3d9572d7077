//! Tokens: `asy_` + 43 characters of base64url (256 random bits). Only the SHA-256 of a
//! token is stored; a request's token is hashed and looked up by hash, and the stored hash
//! is compared in constant time.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Name of the built-in tenant whose admin creates tenants.
pub const SYSTEM_TENANT: &str = "_system";
pub const TOKEN_PREFIX: &str = "asy_";
/// Longest token accepted in a header (anything longer is refused unhashed).
pub const MAX_TOKEN_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read = 1,
    Write = 2,
    Admin = 3,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

/// Who is calling: resolved from a valid token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: i64,
    pub tenant_id: i64,
    pub tenant: String,
    pub scope: Scope,
}

impl Caller {
    pub fn is_system_admin(&self) -> bool {
        self.tenant == SYSTEM_TENANT && self.scope == Scope::Admin
    }
}

pub fn new_token() -> String {
    let raw = crate::crypto::random::<32>();
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A well-formed tenant name: 1–63 of `a-z 0-9 -`, starting with a letter or digit.
pub fn valid_tenant_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// Longest lifetime a token can be given (`expires_in_days`).
pub const MAX_TOKEN_DAYS: u64 = 3650;

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    assay_sign::rfc3339_utc(t)
}
