//! `cargo xtask check`: what would fail on Lambda, found before publishing: imports
//! (`imports.rs`), the ABI of compiled files (`abi.rs`) and the dependency closure across
//! a layer and the layers it requires (`closure.rs`), on zips unpacked within Lambda's
//! limits (`unpack.rs`).

pub mod abi;
pub mod closure;
pub mod imports;
pub mod run;
pub mod unpack;

use serde::Serialize;

/// One problem a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `import`, `abi` or `closure`.
    pub check: &'static str,
    /// What the finding is about: a file inside the zip, a module or a distribution.
    pub subject: String,
    /// What is wrong, and what the runtime has or what would fix it.
    pub message: String,
}
