//! One module per command.

pub mod convert;
pub mod diff;
pub mod firewall;
pub mod rules;
pub mod scan;
pub mod sign;
pub mod weights;
