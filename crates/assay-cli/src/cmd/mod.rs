//! One module per command.

pub mod card;
pub mod firewall;
pub mod policy;
pub mod rules;
pub mod scan;
pub mod sign;
