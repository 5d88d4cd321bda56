//! Python packaging knowledge, in one place that everything else imports (as uv keeps
//! `uv-normalize`, `uv-pep508` and `uv-pep440`): distribution names (PEP 503),
//! requirements and markers (PEP 508, with `pep508_rs`), versions and specifiers
//! (PEP 440, with `pep440_rs`), installed distributions (`*.dist-info/METADATA`) and which
//! layer of the repo provides a distribution.

mod dist;
mod marker;
mod name;
mod provider;
mod record;
mod requirement;

pub use dist::{
    expand_wheel_tags, install_report, installed, installed_hashes, installed_wheel_tags, locked_hashes, read_dists,
    Dist, Package,
};
pub use marker::Env;
pub use name::{is_name_char, normalise};
pub use provider::providers;
pub use record::Owners;
pub use requirement::{requirement_name, Requirement};
