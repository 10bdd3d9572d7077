//! One module per command.

pub mod card;
pub mod convert;
pub mod diff;
pub mod firewall;
pub mod policy;
pub mod redteam;
pub mod registry;
pub mod rules;
pub mod scan;
pub mod sign;
pub mod weights;
