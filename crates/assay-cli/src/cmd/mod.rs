//! One module per command.

pub mod firewall;
pub mod redteam;
pub mod rules;
pub mod scan;
pub mod sign;
