//! One renderer per output format. Each writes a whole [`crate::Report`] to a writer.

mod cyclonedx;
mod human;
mod json;
mod sarif;

pub use cyclonedx::{
    CycloneDxOptions, SPEC_VERSION as CYCLONEDX_SPEC_VERSION, cyclonedx_value, render_cyclonedx,
};
pub use human::{HumanOptions, render_human};
pub use json::render_json;
pub use sarif::{render_sarif, sarif_value};
