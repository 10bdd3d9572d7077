//! Middleware, one layer per file. The order is set in one place: [`crate::app`].

pub mod inflight;
pub mod request_id;
