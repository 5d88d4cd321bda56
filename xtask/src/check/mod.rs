//! `cargo xtask check`: what would fail on Lambda, found before publishing: imports
//! (`imports.rs`), the ABI of compiled files (`abi.rs`) and the dependency closure across
//! a layer and the layers it requires (`closure.rs`), on zips unpacked within Lambda's
//! limits (`unpack.rs`); with `--deep`, every module before and after slimming (`deep.rs`).

pub mod abi;
pub mod closure;
pub mod deep;
pub mod imports;
pub mod run;
pub mod unpack;

use serde::Serialize;

/// Which check found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Import,
    Abi,
    Closure,
    /// `--deep`: a module slimming broke.
    Deep,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Kind::Import => "import",
            Kind::Abi => "abi",
            Kind::Closure => "closure",
            Kind::Deep => "deep",
        })
    }
}

/// One problem a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Kind,
    /// What the finding is about: a file inside the zip, a module or a distribution.
    pub subject: String,
    /// What is wrong, and what the runtime has or what would fix it.
    pub message: String,
    /// A requirement that no attached layer provides at all (a layer of the repo that
    /// does can then be suggested).
    #[serde(skip)]
    pub unprovided: bool,
}

impl Finding {
    pub fn new(check: Kind, subject: String, message: String) -> Finding {
        Finding { check, subject, message, unprovided: false }
    }
}
